"""Checkpoint files: they round-trip, an interrupted save leaves the old one, damaged or mismatched files
(config, training state, parameters, optimizer state, Polyak average, npy headers) are refused by name before
anything is built, and a deflated checkpoint holds the same arrays and resumes exactly."""
import io
import json
import zipfile

import numpy as np
import pytest

from minipixel.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam, Average
from minipixel import memory

from train_helpers import run, settings


def test_checkpoint_round_trip(tmp_path):
    model = PixelCNN(PixelCNNConfig(height=5, width=5, channels=3, levels=4, filters=9, blocks=2), seed=1)
    opt = Adam(model.parameters(), lr=0.01)
    x = np.random.default_rng(0).random((2, 5, 5, 3)).astype(np.float32)
    from minipixel.losses import softmax_cross_entropy

    _, d = softmax_cross_entropy(model.forward(x), np.ones((2, 5, 5, 3), np.uint8))
    model.backward(d)
    opt.step(model.gradients())
    save_checkpoint(tmp_path / "c.npz", model, opt, {"step": 1})
    loaded, optim_state, state = load_model(tmp_path / "c.npz")
    assert loaded.config == model.config and state == {"step": 1}
    for name, p in model.parameters().items():
        assert np.array_equal(loaded.parameters()[name], p)
    opt2 = Adam(loaded.parameters())
    opt2.load_state_dict(optim_state)
    assert opt2.t == 1 and all(np.array_equal(opt2.v[k], opt.v[k]) for k in opt.v)
    assert np.array_equal(loaded.forward(x), model.forward(x))


def test_an_interrupted_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    model = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1))
    path = tmp_path / "c.npz"
    save_checkpoint(path, model, state={"step": 1})
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, state={"step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    model = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1))
    good = save_checkpoint(tmp_path / "good.npz", model, state={})
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.npz: expected a minipixel-checkpoint-1 file \(a zip archive\)"):
        load_model(tmp_path / "cut.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.npz"):
        load_model(tmp_path / "junk.npz")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "missing.npz")
    with pytest.raises(CheckpointError, match="channels: requested 3, checkpoint has 1"):
        load_model(good, expect={"channels": 3})
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="expected a minipixel-checkpoint-1 file"):
        load_model(tmp_path / "other.npz")
    # parameters of the wrong shape for the config
    arrays = dict(np.load(good))
    arrays["param/conv_in.W"] = np.zeros((3, 3, 1, 4), np.float32)
    np.savez(tmp_path / "shapes.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"conv_in.W: expected shape \(7, 7, 1, 4\), got \(3, 3, 1, 4\)"):
        load_model(tmp_path / "shapes.npz")


def _rewrite(path, out, fields=None, state=None, **arrays):
    """A copy of the checkpoint ``path`` with config fields, state fields or arrays replaced."""
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    if fields:
        data["config"] = np.array(json.dumps({**json.loads(str(data["config"])), **fields}))
    if state:
        data["state"] = np.array(json.dumps({**json.loads(str(data["state"])), **state}))
    data.update(arrays)
    np.savez(out, **data)
    return out


def test_damaged_checkpoints_are_refused_before_anything_is_built(tmp_path):
    from minipixel.settings import run_settings

    model = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1))
    optimizer = Adam(model.parameters())
    good = save_checkpoint(tmp_path / "good.npz", model, optimizer,
                           {"step": 2, "settings": {"data": "x.npz", "batch": 4, "filters": 4}})
    assert run_settings(good).batch == 4 and load_model(good)[2]["step"] == 2
    cases = [  # (what is changed, the words of the refusal)
        (dict(fields={"filters": 10**9}), r"config.filters: expected an int from 1 to 4096, got 1000000000"),
        (dict(fields={"filters": 4000, "blocks": 900}), r"config describes a model of about [\d,]+ numbers, but "
                                                        r"the file holds 310"),
        (dict(fields={"height": -1}), r"config.height: expected an int from 1 to 4096, got -1"),
        (dict(state={"step": "abc"}), r"expected the state's step to be an int >= 0, got 'abc'"),
        (dict(state={"settings": [1]}), r"expected the state's settings to be a JSON object, got list"),
        (dict(state={"pending_losses": [1.0, "x"]}), r"pending_losses to be a list of finite numbers"),
        (dict(state={"best_valid_nll": "low"}), r"best_valid_nll to be a finite number or null, got 'low'"),
        (dict(**{"param/conv_in.W": np.full((7, 7, 1, 4), np.nan, np.float32)}),
         r"parameter conv_in.W holds NaN or infinite values"),
        (dict(**{"param/conv_in.b": np.zeros(4, np.int8)}), r"parameter conv_in.b: expected floats, got dtype int8"),
        (dict(**{"optim/t": np.array(-3)}), r"expected the optimizer's step count t to be one int >= 0"),
        (dict(**{"optim/m/conv_in.W": np.zeros(3, np.float32)}),
         r"optimizer state m/conv_in.W: expected shape \(7, 7, 1, 4\), got \(3,\)"),
        (dict(**{"optim/m/extra": np.zeros(3, np.float32)}), r"unexpected \['m/extra'\]"),
        (dict(**{"format": np.array("minipixel-checkpoint-2")}),
         r"expected a minipixel-checkpoint-1 file, found minipixel-checkpoint-2"),
        (dict(**{"config": np.array([1, 2])}), r"expected 'config' to be one text value"),
        (dict(**{"param/conv_in.W": np.array([None], dtype=object)}), r"holds Python objects"),
    ]
    for index, (change, words) in enumerate(cases):
        bad = _rewrite(good, tmp_path / f"bad{index}.npz", **change)
        with pytest.raises(CheckpointError, match=rf"bad{index}.npz.*{words}"):
            load_model(bad)
    for index, (settings, words) in enumerate([({"batch": "4"}, r"settings.batch: expected int, got '4'"),
                                               ({"batch": 0}, r"batch: expected an int from 1 to 65536, got 0"),
                                               ({"binarize": "x"}, r"binarize: expected one of"),
                                               ({"lr": True}, r"settings.lr: expected float, got True")]):
        bad = _rewrite(good, tmp_path / f"settings{index}.npz", state={"settings": settings})
        with pytest.raises(CheckpointError, match=rf"settings{index}.npz: bad training settings.*{words}"):
            run_settings(bad)


def _tiny_checkpoint(tmp_path, state=None):
    """A small model and its checkpoint (with Adam's state) at tmp_path / "good.npz"."""
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    return model, save_checkpoint(tmp_path / "good.npz", model, Adam(model.parameters()), state)


def _refusal(path):
    """The message load_model refuses the checkpoint ``path`` with."""
    with pytest.raises(CheckpointError) as refused:
        load_model(path)
    return str(refused.value)


def test_a_checkpoints_state_entry_does_not_depend_on_the_order_of_its_keys(tmp_path):
    # The same training state, filled in another order, is written as the same text.
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    state = {"step": 3, "seed": 1, "best_valid_nll": None}
    a = save_checkpoint(tmp_path / "a.npz", model, state=state)
    b = save_checkpoint(tmp_path / "b.npz", model, state=dict(reversed(state.items())))
    with np.load(a) as fa, np.load(b) as fb:
        assert str(fa["state"]) == str(fb["state"])
    assert read_checkpoint(a)[3] == read_checkpoint(b)[3] == state


def test_a_checkpoints_config_entry_is_json_with_its_keys_sorted(tmp_path):
    # As the state entry: the text does not follow the order in which PixelCNNConfig declares its fields.
    config = PixelCNNConfig(height=8, width=6, filters=4, blocks=0, levels=4)
    path = save_checkpoint(tmp_path / "c.npz", PixelCNN(config))
    with np.load(path) as f:
        text = str(f["config"])
    keys = list(json.loads(text))
    assert keys == sorted(keys) and set(keys) >= {"height", "width", "levels", "filters", "arch"}
    assert text == config.to_json() and PixelCNNConfig.from_json(text) == config
    with pytest.raises(ValueError, match=r"^model config: unknown fields \['bogus'\]; known: \["):
        PixelCNNConfig.from_json(text[:-1] + ', "bogus": 1}')


def test_a_training_state_with_a_bad_step_or_clock_is_refused_by_name(tmp_path):
    _, good = _tiny_checkpoint(tmp_path, {"step": 2, "seconds": 1.5})
    assert load_model(good)[2] == {"step": 2, "seconds": 1.5}
    assert load_model(_rewrite(good, tmp_path / "zero.npz", state={"step": 0, "seconds": 0}))[2]["seconds"] == 0
    cases = [("step", -1), ("step", True), ("step", 2.0),
             ("seconds", -5), ("seconds", True), ("seconds", "abc"), ("seconds", float("inf"))]
    for index, (field, value) in enumerate(cases):
        bad = _rewrite(good, tmp_path / f"state{index}.npz", state={field: value})
        kind = "an int" if field == "step" else "a number"
        assert _refusal(bad) == f"{bad}: expected the state's {field} to be {kind} >= 0, got {value!r}"


def test_checkpoint_entries_that_are_not_one_text_value_are_refused_by_name(tmp_path):
    _, good = _tiny_checkpoint(tmp_path)
    number = _rewrite(good, tmp_path / "format.npz", format=np.array(7))
    assert _refusal(number) == f"{number}: expected 'format' to be one text value, got shape () dtype int64"
    texts = np.array(["a", "b"])
    for key in ("config", "state"):
        bad = tmp_path / f"{key}.npz"
        with np.load(good) as f:
            np.savez(bad, **{**{k: f[k] for k in f.files}, key: texts})
        # the file named once (its entry's check is not wrapped in "bad model config: ...")
        assert _refusal(bad) == f"{bad}: expected '{key}' to be one text value, got shape (2,) dtype {texts.dtype}"


def test_a_file_that_is_not_a_minipixel_checkpoint_says_what_it_found(tmp_path):
    _, good = _tiny_checkpoint(tmp_path)
    with np.load(good) as f:
        np.savez(tmp_path / "unnamed.npz", **{k: f[k] for k in f.files if k != "format"})
    unnamed = tmp_path / "unnamed.npz"
    assert _refusal(unnamed) == f"{unnamed}: expected a minipixel-checkpoint-1 file, found no format key"
    other = _rewrite(good, tmp_path / "other.npz", format=np.array("pixelcnn-weights-1"))
    assert _refusal(other) == f"{other}: expected a minipixel-checkpoint-1 file, found pixelcnn-weights-1"
    newer = _rewrite(good, tmp_path / "newer.npz", format=np.array("minipixel-checkpoint-2"))
    assert _refusal(newer) == (f"{newer}: expected a minipixel-checkpoint-1 file, found minipixel-checkpoint-2 "
                               "(written by another version of minipixel)")


def test_a_config_may_describe_up_to_twice_the_numbers_held_plus_1000(tmp_path):
    # The file holds every parameter; the config's parameter_count (weights only)
    # is checked against them before a model is built: a config describing more
    # than 2 * held + 1000 numbers is damaged, one at that limit is accepted.

    past = set()
    for filters in (16, 17):  # an even and an odd parameter count
        config = PixelCNNConfig(height=8, width=8, filters=filters, blocks=0)
        described = memory.parameter_count(config)
        held = (described - 1000) // 2
        past.add(described - (2 * held + 1000))
        path = tmp_path / f"filters{filters}.npz"
        np.savez(path, format=np.array("minipixel-checkpoint-1"), config=np.array(config.to_json()),
                 state=np.array("{}"), **{"param/w": np.zeros(held, np.float32)})
        if described == 2 * held + 1000:
            assert read_checkpoint(path)[0] == config
        else:
            with pytest.raises(CheckpointError, match=rf"about {described:,} numbers, but the file holds {held:,};"):
                read_checkpoint(path)
    assert past == {0, 1}  # at the limit, and one past it


def test_a_damaged_optimizer_state_is_refused_by_name(tmp_path):
    model, good = _tiny_checkpoint(tmp_path)
    start = "the optimizer state does not match the model:"
    nested = _rewrite(good, tmp_path / "nested.npz", **{"optim/m/extra/conv_in.W": np.zeros((7, 7, 1, 4), np.float32)})
    assert _refusal(nested) == f"{nested}: {start} missing [], unexpected ['m/extra/conv_in.W']"
    # at most five names of each kind, the first in sorted order
    many = _rewrite(good, tmp_path / "many.npz", **{f"optim/m/extra{i}": np.zeros(1, np.float32) for i in range(6)})
    assert _refusal(many) == f"{many}: {start} missing [], unexpected {[f'm/extra{i}' for i in range(5)]}"
    dropped = sorted(f"v/{name}" for name in model.parameters())[:6]
    with np.load(good) as f:
        np.savez(tmp_path / "few.npz", **{k: f[k] for k in f.files if k.removeprefix("optim/") not in dropped})
    assert _refusal(tmp_path / "few.npz") == f"{tmp_path / 'few.npz'}: {start} missing {dropped[:5]}, unexpected []"
    for change, reason in [(np.full((7, 7, 1, 4), np.nan, np.float32), "m/conv_in.W holds NaN or infinite values; "
                                                                      "the checkpoint is damaged"),
                           (np.zeros((7, 7, 1, 4), np.int8), "m/conv_in.W: expected floats, got dtype int8")]:
        bad = _rewrite(good, tmp_path / "bad.npz", **{"optim/m/conv_in.W": change})
        assert _refusal(bad) == f"{bad}: optimizer state {reason}"


def test_a_checkpoint_of_the_model_alone_resumes_with_a_fresh_optimizer(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=2), tmp_path / "run")
    model, optim_state, state = load_model(tmp_path / "run" / "checkpoint.npz")
    assert optim_state["t"] == 2
    save_checkpoint(tmp_path / "alone" / "checkpoint.npz", model, state=state)  # no optimizer state, as shipped
    run(settings(tiny_npz, steps=4), tmp_path / "alone", resume=tmp_path / "alone")
    _, _, optim_state, state = read_checkpoint(tmp_path / "alone")
    assert state["step"] == 4 and optim_state["t"] == 2  # Adam started afresh at the resume


def test_a_damaged_polyak_average_in_a_checkpoint_is_refused_by_name(tmp_path):
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    average = Average(model.parameters(), 0.9)
    good = save_checkpoint(tmp_path / "good.npz", model, Adam(model.parameters()), average=average)
    assert int(load_model(good)[1]["average_t"]) == 0
    with np.load(good) as f:
        np.savez(tmp_path / "no_t.npz", **{k: f[k] for k in f.files if k != "optim/average_t"})
    assert _refusal(tmp_path / "no_t.npz") == (f"{tmp_path / 'no_t.npz'}: the optimizer state does not match the "
                                               f"model: missing ['average_t'], unexpected []")
    bad = _rewrite(good, tmp_path / "bad_t.npz", **{"optim/average_t": np.array(-1)})
    assert _refusal(bad) == f"{bad}: expected the optimizer's step count average_t to be one int >= 0, got array(-1)"
    bad = _rewrite(good, tmp_path / "nan.npz", **{"optim/average/conv_in.W": np.full((7, 7, 1, 4), np.nan, np.float32)})
    assert _refusal(bad) == f"{bad}: optimizer state average/conv_in.W holds NaN or infinite values; the checkpoint is damaged"


def test_load_model_names_every_mismatch_and_builds_the_dtype_asked_for(tmp_path):
    model, good = _tiny_checkpoint(tmp_path)
    with pytest.raises(CheckpointError) as refused:
        load_model(good, expect={"channels": 3, "filters": 4, "levels": 4})
    assert str(refused.value) == (f"{good}: the checkpoint does not match the requested model "
                                  "(channels: requested 3, checkpoint has 1, levels: requested 4, checkpoint has 2)")
    loaded = load_model(good, dtype="float64")[0]
    x = np.random.default_rng(0).random((2, 8, 8, 1))
    for name, p in model.parameters().items():
        assert loaded.parameters()[name].dtype == np.float64
        np.testing.assert_array_equal(loaded.parameters()[name], p)
    assert loaded.forward(x).dtype == np.float64
    np.testing.assert_allclose(loaded.forward(x), model.forward(x.astype(np.float32)), rtol=1e-4, atol=1e-5)


def test_a_npy_header_that_claims_more_than_the_file_holds_allocates_nothing(tmp_path):
    from minipixel.files import read_npz_arrays

    header = np.lib.format.header_data_from_array_1_0(np.zeros(3))
    header["shape"] = (2**40,)
    raw = io.BytesIO()
    np.lib.format.write_array_header_1_0(raw, header)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("param/x.npy", raw.getvalue() + np.zeros(3).tobytes())
    with pytest.raises(ValueError, match=r"huge.npz \(member param/x.npy\): the header says shape \(1099511627776,\) "
                                         r"of float64 \(8,796,093,022,208 bytes\), but 24 bytes follow it"):
        read_npz_arrays(tmp_path / "huge.npz")


@pytest.mark.parametrize("content, kind", [
    (b"", "an empty file"), (b"config = 1\n", "a text file"), (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\x00\x01\xfe\xff" * 8, "not a zip file (damaged or cut short?)"),
    # judged by its first 512 bytes (a text header here): what follows them is never read
    (b"#" * 511 + b"\n" + b"\xff\xfe" * 1000, "a text file")])
def test_a_checkpoint_that_is_no_zip_archive_is_named_by_what_it_is(content, kind, tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as refused:
        read_checkpoint(path)
    assert str(refused.value) == f"{path}: expected a minipixel-checkpoint-1 file (a zip archive), but it is {kind}"


def test_a_deflated_checkpoint_holds_the_same_arrays_and_resumes_exactly(tiny_npz, tmp_path):
    from minipixel.files import deflate_npz

    straight = run(settings(tiny_npz, steps=8, ema=0.9), tmp_path / "a")
    first = run(settings(tiny_npz, steps=4, ema=0.9), tmp_path / "b")
    plain = read_checkpoint(tmp_path / "b")
    before, after = deflate_npz(tmp_path / "b" / "checkpoint.npz")
    assert after < 0.8 * before and after == (tmp_path / "b" / "checkpoint.npz").stat().st_size
    with zipfile.ZipFile(tmp_path / "b" / "checkpoint.npz") as z:
        assert {info.compress_type for info in z.infolist()} == {zipfile.ZIP_DEFLATED}
    deflated = read_checkpoint(tmp_path / "b")
    assert plain[0] == deflated[0] and plain[3] == deflated[3]
    for k in (1, 2):
        assert sorted(plain[k]) == sorted(deflated[k])
        assert all(np.array_equal(plain[k][name], deflated[k][name]) for name in plain[k])
    assert first + run(settings(tiny_npz, steps=8, ema=0.9), tmp_path / "b", resume=tmp_path / "b") == straight
