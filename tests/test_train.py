"""Training: the loss falls, checkpoints round-trip, resume is exact, failures lose nothing."""
import io
import json
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minipixel import train as train_module
from minipixel.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from minipixel.data import ImageSet
from minipixel.datasets import write_npz
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam, Average
from minipixel.train import TrainingError, TrainSettings, evaluate, train

from conftest import bars


def settings(data, **kw):
    base = dict(data=str(data), filters=8, blocks=1, batch=16, lr=5e-3, samples=0, seed=3)
    base.update(kw)
    return TrainSettings(**base)


def run(s, out, **kw):
    losses = []
    train(s, out=out, progress=False, log=lambda *a: None, on_step=lambda step, loss: losses.append(loss), **kw)
    return losses


def test_loss_falls_on_a_tiny_dataset(tiny_npz, tmp_path):
    losses = run(settings(tiny_npz, steps=60), tmp_path / "run")
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:3])
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # 58 training images (a 10% hold-out) at batch 16: 4 steps an epoch, evaluated every epoch and at the end
    assert [r["step"] for r in rows] == list(range(4, 61, 4))
    assert rows[-1]["valid_nll_nats"] < rows[0]["valid_nll_nats"]
    assert set(rows[0]) >= {"step", "epoch", "train_nll_nats", "valid_nll_nats", "valid_bits_per_dim"}


def test_run_folder_contents(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=4, samples=6), tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"checkpoint.npz", "metrics.jsonl", "samples.png",
                                                               "learning_curve.png", "best.npz", "steps.csv"}
    from PIL import Image

    assert Image.open(tmp_path / "run" / "samples.png").size[0] > 8 * 4 * 2


def test_learning_curve_png_is_the_picture_of_the_metrics(tiny_npz, tmp_path):
    from PIL import Image

    from minipixel.viz import learning_curve

    run(settings(tiny_npz, steps=4, eval_every=2), tmp_path / "run")
    rows = train_module.read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 2
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "run" / "learning_curve.png")),
                                  np.asarray(learning_curve(rows)))


def test_checkpoints_record_the_epoch_and_the_seed(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=6, seed=5), tmp_path / "run")
    state = read_checkpoint(tmp_path / "run")[3]
    assert state["step"] == 6 and state["epoch"] == 6 / 4  # 58 training images at batch 16: 4 steps an epoch
    assert state["seed"] == state["settings"]["seed"] == 5


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


def test_resume_continues_exactly(tiny_npz, tmp_path):
    # 58 images, batch 16: 4 steps an epoch. Stop mid-epoch (step 6), resume to 12.
    straight = run(settings(tiny_npz, steps=12), tmp_path / "a")
    first = run(settings(tiny_npz, steps=6), tmp_path / "b")
    second = run(settings(tiny_npz, steps=12), tmp_path / "b", resume=tmp_path / "b")
    assert first + second == straight
    _, pa, oa, sa = read_checkpoint(tmp_path / "a" / "checkpoint.npz")
    _, pb, ob, sb = read_checkpoint(tmp_path / "b" / "checkpoint.npz")
    assert sa["step"] == sb["step"] == 12
    assert all(np.array_equal(pa[k], pb[k]) for k in pa) and all(np.array_equal(oa[k], ob[k]) for k in oa)
    rows = lambda d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
    assert [r["valid_nll_nats"] for r in rows("a")][-1] == [r["valid_nll_nats"] for r in rows("b")][-1]


def _steps_csv(folder):
    """steps.csv rows as (step, loss, lr) tuples (the seconds column aside)."""
    lines = (folder / "steps.csv").read_text().splitlines()
    assert lines[0] == "step,loss_nats,lr,seconds"
    return [tuple(float(v) for v in line.split(",")[:3]) for line in lines[1:]]


def test_eval_every_save_every_best_and_steps_csv(tiny_npz, tmp_path, monkeypatch):
    # 58 images, batch 16: 4 steps an epoch. Evaluate every 3 steps, checkpoint every 5.
    saves = []
    real_save = train_module.Run.save
    monkeypatch.setattr(train_module.Run, "save", lambda self, path=None: (
        saves.append((self.step, (path or self.checkpoint_path).name)), real_save(self, path))[1])
    losses = run(settings(tiny_npz, steps=11, eval_every=3, save_every=5), tmp_path / "run")
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 9, 11]
    assert rows[0]["train_nll_nats"] == pytest.approx(np.mean(losses[:3]))  # the mean of the steps since the last
    assert rows[-1]["train_nll_nats"] == pytest.approx(np.mean(losses[9:]))
    assert [s for s, name in saves if name == "checkpoint.npz"] == [3, 5, 6, 9, 10, 11]
    assert [s for s, name in saves if name == "best.npz"][0] == 3  # the first evaluation is the best so far
    # steps.csv: one row a step, the loss and the learning rate of that step
    table = _steps_csv(tmp_path / "run")
    assert [int(r[0]) for r in table] == list(range(1, 12))
    assert [r[1] for r in table] == pytest.approx(losses, abs=1e-6)
    assert [r[2] for r in table] == pytest.approx([5e-3 * 0.9998 ** t for t in range(11)], rel=1e-5)


def test_default_run_folder_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clock = time.strptime("2026-11-25 14:30:00", "%Y-%m-%d %H:%M:%S")
    real = time.strftime
    monkeypatch.setattr(train_module.time, "strftime", lambda fmt: real(fmt, clock))
    assert train_module.default_run_dir("mnist5k:train") == Path("runs/mnist5k-train-20261125-143000")
    assert train_module.default_run_dir("some/where/digits.npz") == Path("runs/digits-20261125-143000")
    (tmp_path / "runs" / "digits-20261125-143000").mkdir(parents=True)  # taken: the next free name
    assert train_module.default_run_dir("digits.npz") == Path("runs/digits-20261125-143000-2")
    assert train_module.default_run_dir(".npz") == Path("runs/run-20261125-143000")


def test_ctrl_c_saves_and_draws_the_samples(tiny_npz, tmp_path):
    import os
    import signal

    def ctrl_c(step, loss):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    logged = []
    with pytest.raises(KeyboardInterrupt):
        train(settings(tiny_npz, steps=12, samples=4), out=tmp_path, progress=False, log=logged.append,
              on_step=ctrl_c)
    assert read_checkpoint(tmp_path)[3]["step"] == 3 and (tmp_path / "samples.png").exists()
    assert any("minipixel sample --checkpoint" in line for line in logged)


def test_best_npz_keeps_the_lowest_validation_nll(tiny_npz, tmp_path, monkeypatch):
    # Validation NLLs made up, in an order whose best is neither the first nor the last.
    made_up = iter([50.0, 40.0, 45.0, 42.0])
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: {"nll_nats": next(made_up), "bits_per_dim": 1.0,
                                                                    "images": 6})
    run(settings(tiny_npz, steps=8, eval_every=2), tmp_path / "run")
    _, best, _, state = read_checkpoint(tmp_path / "run" / "best.npz")
    assert state["step"] == 4 and state["best_valid_nll"] == 40.0
    assert read_checkpoint(tmp_path / "run")[3]["best_valid_nll"] == 40.0  # remembered for a resume
    assert not all(np.array_equal(best[k], v) for k, v in read_checkpoint(tmp_path / "run")[1].items())


def test_best_npz_stays_with_the_first_of_equal_validation_nlls(tiny_npz, tmp_path, monkeypatch):
    made_up = iter([50.0, 40.0, 40.0, 45.0])  # step 6 only equals step 4's: no improvement
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: {"nll_nats": next(made_up), "bits_per_dim": 1.0,
                                                                    "images": 6})
    run(settings(tiny_npz, steps=8, eval_every=2), tmp_path / "run")
    state = read_checkpoint(tmp_path / "run" / "best.npz")[3]
    assert state["step"] == 4 and state["best_valid_nll"] == 40.0


def test_a_resumed_run_remembers_its_best_validation_nll(tiny_npz, tmp_path, monkeypatch):
    # Evaluations at steps 2 and 4 give 40 then 50: best.npz is step 2's. Resumed for two
    # more steps, an evaluation of 45 is worse than the saved best and must not replace it.
    made_up = iter([40.0, 50.0, 45.0])
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: {"nll_nats": next(made_up), "bits_per_dim": 1.0,
                                                                    "images": 6})
    run(settings(tiny_npz, steps=4, eval_every=2), tmp_path / "run")
    assert read_checkpoint(tmp_path / "run" / "checkpoint.npz")[3]["best_valid_nll"] == 40.0
    run(settings(tiny_npz, steps=6, eval_every=2), tmp_path / "run", resume=tmp_path / "run")
    best = read_checkpoint(tmp_path / "run" / "best.npz")[3]
    assert best["step"] == 2 and best["best_valid_nll"] == 40.0
    assert read_checkpoint(tmp_path / "run" / "checkpoint.npz")[3]["best_valid_nll"] == 40.0


def test_resume_from_a_save_between_evaluations_is_exact(tiny_npz, tmp_path):
    # A crash at step 8 (after the step-7 checkpoint of --save-every 7, mid-way between
    # evaluations every 5): the resumed run ends with the uninterrupted run's parameters,
    # metrics (training averages included) and steps.csv.
    kw = dict(steps=12, eval_every=5, save_every=7)
    run(settings(tiny_npz, **kw), tmp_path / "a")

    def crash(step, loss):
        if step == 8:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        train(settings(tiny_npz, **kw), out=tmp_path / "b", progress=False, log=lambda *a: None, on_step=crash)
    assert read_checkpoint(tmp_path / "b")[3]["step"] == 7
    train(None, resume=tmp_path / "b", progress=False, log=lambda *a: None)
    # A checkpoint from before the first evaluation (no best NLL yet) resumes too.
    with pytest.raises(RuntimeError, match="crash"):
        train(settings(tiny_npz, steps=12, eval_every=10, save_every=3), out=tmp_path / "c", progress=False,
              log=lambda *a: None, on_step=crash)
    assert read_checkpoint(tmp_path / "c")[3]["best_valid_nll"] is None
    train(None, resume=tmp_path / "c", progress=False, log=lambda *a: None)
    assert read_checkpoint(tmp_path / "c")[3]["step"] == 12
    _, pa, _, sa = read_checkpoint(tmp_path / "a")
    _, pb, _, sb = read_checkpoint(tmp_path / "b")
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    rows = lambda d: [{k: v for k, v in json.loads(x).items() if k != "seconds"}
                      for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
    assert rows("a") == rows("b") and [r["step"] for r in rows("a")] == [5, 10, 12]
    assert _steps_csv(tmp_path / "a") == _steps_csv(tmp_path / "b")
    assert sa["best_valid_nll"] == sb["best_valid_nll"]


def test_a_new_lr_on_resume_is_the_rate_of_the_next_step(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=6), tmp_path / "run")
    train(settings(tiny_npz, steps=9, lr=2e-4), resume=tmp_path / "run", progress=False, log=lambda *a: None)
    lrs = [r[2] for r in _steps_csv(tmp_path / "run")]
    assert lrs[5] == pytest.approx(5e-3 * 0.9998 ** 5, rel=1e-5)
    assert lrs[6:] == pytest.approx([2e-4, 2e-4 * 0.9998, 2e-4 * 0.9998 ** 2], rel=1e-5)
    # the same --lr asked for again is again the rate of the next step (the checkpoint keeps the base rate)
    train(settings(tiny_npz, steps=11, lr=2e-4), resume=tmp_path / "run", progress=False, log=lambda *a: None)
    assert [r[2] for r in _steps_csv(tmp_path / "run")][9:] == pytest.approx([2e-4, 2e-4 * 0.9998], rel=1e-5)


def test_metrics_seconds_count_the_time_before_a_resume(tiny_npz, tmp_path, monkeypatch):
    # A fake clock that moves 10 s per training step and not otherwise.
    now = [1000.0]
    monkeypatch.setattr(train_module.time, "time", lambda: now[0])
    tick = lambda step, loss: now.__setitem__(0, now[0] + 10)
    quiet = dict(progress=False, log=lambda *a: None, on_step=tick)
    train(settings(tiny_npz, steps=4), out=tmp_path, **quiet)   # 1 epoch: 40 s
    train(settings(tiny_npz, steps=8), out=tmp_path, resume=tmp_path, **quiet)
    seconds = [json.loads(x)["seconds"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert seconds == [40, 80]
    assert read_checkpoint(tmp_path / "checkpoint.npz")[3]["seconds"] == 80


def test_minutes_stop_training_with_an_evaluation_and_a_checkpoint(tiny_npz, tmp_path, monkeypatch):
    # The fake clock moves 10 s per step: 1 minute is 6 steps, mid-epoch (4 steps an epoch).
    now = [1000.0]
    monkeypatch.setattr(train_module.time, "time", lambda: now[0])
    tick = lambda step, loss: now.__setitem__(0, now[0] + 10)
    quiet = dict(progress=False, log=lambda *a: None, on_step=tick)
    train(settings(tiny_npz, steps=100, minutes=1), out=tmp_path, **quiet)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 6]
    assert read_checkpoint(tmp_path / "checkpoint.npz")[3]["step"] == 6
    # Resumed with a larger budget, it goes on where it stopped, counting the time before.
    train(settings(tiny_npz, steps=100, minutes=1.5), out=tmp_path, resume=tmp_path, **quiet)
    assert read_checkpoint(tmp_path / "checkpoint.npz")[3]["step"] == 9


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(tiny_npz, tmp_path, monkeypatch):
    real = train_module.parallel.loss_and_gradients
    calls = []

    def poisoned(*args):
        calls.append(1)
        loss = real(*args)
        return float("nan") if len(calls) == 6 else loss

    monkeypatch.setattr(train_module.parallel, "loss_and_gradients", poisoned)
    with pytest.raises(TrainingError, match="loss became nan at step 6.*checkpoint.npz"):
        run(settings(tiny_npz, steps=12), tmp_path / "run")
    _, _, _, state = read_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert state["step"] == 4  # the end of the first epoch: the last good one


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
    from minipixel.train import saved_run_settings

    model = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1))
    optimizer = Adam(model.parameters())
    good = save_checkpoint(tmp_path / "good.npz", model, optimizer,
                           {"step": 2, "settings": {"data": "x.npz", "batch": 4, "filters": 4}})
    assert saved_run_settings(good).batch == 4 and load_model(good)[2]["step"] == 2
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
            saved_run_settings(bad)


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
    from minipixel import checks

    past = set()
    for filters in (16, 17):  # an even and an odd parameter count
        config = PixelCNNConfig(height=8, width=8, filters=filters, blocks=0)
        described = checks.parameter_count(config)
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


def test_evaluate_checks_channels_and_levels():
    model = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1))
    labels = np.zeros((3, 4, 4, 1), np.uint8)
    result = evaluate(model, labels)
    assert result["images"] == 3 and result["nll_nats"] > 0
    assert result["bits_per_dim"] == pytest.approx(result["nll_nats"] / (16 * np.log(2)))
    with pytest.raises(ValueError, match=r"expected images \(N, H, W, 1\)"):
        evaluate(model, np.zeros((3, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="label 5, but the model has 2 levels"):
        evaluate(model, labels + 5)


def _new_run(s, out):
    """A Run (data read, model built, folder locked) that has not trained yet."""
    return train_module.Run(s, out, log=lambda *a: None, progress=False)


class _FakeRanks:
    """Rank ``rank`` of ``size`` MPI ranks, in one process. ``sent`` (shared by the
    ranks) keeps what each rank last gave ``agree``; ``agree`` answers as
    ``distributed.MPIRanks.agree`` would over those values: the sum of the first,
    the max of each other."""

    def __init__(self, rank, size, sent):
        self.rank, self.size, self.sent = rank, size, sent

    def check_same(self, flat, what):
        """Every rank of one process builds the same model."""

    def agree(self, values):
        self.sent[self.rank] = [float(v) for v in values]
        rows = [self.sent.get(r, [0.0] * len(values)) for r in range(self.size)]
        return [sum(row[0] for row in rows)] + [max(row[k] for row in rows) for k in range(1, len(values))]


def _evaluate_split_on_ranks(r, size):
    """``r.evaluate_split()`` as each of ``size`` ranks returns it: a first pass over the
    ranks collects what each sends to ``agree``, a second answers each with all of them.
    Returns (each rank's result, {rank: the first value it sent})."""
    sent = {}
    for _ in range(2):
        results = []
        for rank in range(size):
            r.ranks = _FakeRanks(rank, size, sent)
            results.append(r.evaluate_split())
    return results, {rank: values[0] for rank, values in sent.items()}


def test_ranks_evaluate_their_slices_and_agree_on_the_whole_split(tiny_npz, tmp_path):
    from minipixel.parallel import split

    r = _new_run(settings(tiny_npz, steps=1, eval_batch=4), tmp_path / "run")
    whole = evaluate(r.model, r.valid_labels, 4)
    n = len(r.valid_labels)  # 6: a 10% hold-out of 64
    for size in (2, 3):
        results, sent = _evaluate_split_on_ranks(r, size)
        # every rank ends with the evaluation of the whole split
        for result in results:
            assert result.keys() == whole.keys() and result["images"] == n
            assert result["nll_nats"] == pytest.approx(whole["nll_nats"], rel=1e-6)  # float32 sums, grouped otherwise
            assert result["bits_per_dim"] == pytest.approx(whole["bits_per_dim"], rel=1e-6)
        # rank k sent the NLL summed over its own slice of the validation images
        assert sorted(sent) == list(range(size))
        for k, part in enumerate(split(n, size)):
            assert part.stop > part.start
            assert sent[k] == evaluate(r.model, r.valid_labels[part], 4)["nll_nats"] * (part.stop - part.start)
    r.lock.release()


def test_more_ranks_than_validation_images(tiny_npz, tmp_path):
    from minipixel.parallel import split

    valid = tmp_path / "two.npz"
    write_npz(valid, ImageSet(images=bars(2, seed=5), max_value=1, source="two"))
    r = _new_run(settings(tiny_npz, steps=1, valid=str(valid)), tmp_path / "run")
    whole = evaluate(r.model, r.valid_labels, 16)
    for size in (3, 5):
        results, sent = _evaluate_split_on_ranks(r, size)
        for result in results:
            assert result.keys() == whole.keys() and result["images"] == 2
            assert result["nll_nats"] == pytest.approx(whole["nll_nats"], rel=1e-6)  # float32 sums, grouped otherwise
            assert result["bits_per_dim"] == pytest.approx(whole["bits_per_dim"], rel=1e-6)
        empty = [k for k, part in enumerate(split(2, size)) if part.stop == part.start]
        assert len(empty) == size - 2 and sorted(sent) == list(range(size))
        assert all(sent[k] == 0.0 for k in empty)  # a rank with no images adds nothing
    r.lock.release()


def test_an_empty_validation_set_is_refused_before_training(tiny_npz, tmp_path):
    empty = tmp_path / "none.npz"
    write_npz(empty, ImageSet(images=np.zeros((0, 8, 8, 1), np.uint8), max_value=1, source="none"))
    with pytest.raises(ValueError, match=r"^validation data: .*none\.npz holds no images"):
        train(settings(tiny_npz, steps=1, valid=str(empty)), out=tmp_path / "run", progress=False, log=lambda *a: None)
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_one_process_evaluates_in_batches_of_eval_batch(tiny_npz, tmp_path, monkeypatch):
    passes = []
    real = train_module.parallel.nll
    monkeypatch.setattr(train_module.parallel, "nll", lambda model, x, *a: passes.append(len(x)) or real(model, x, *a))
    for eval_batch, expected in ((4, [4, 2]), (None, [5, 1])):  # None: the training batch, 5
        r = _new_run(settings(tiny_npz, steps=1, batch=5, eval_batch=eval_batch), tmp_path / f"run{eval_batch}")
        passes.clear()
        result = r.evaluate_split()
        assert passes == expected  # the 6 validation images
        # one process: exactly evaluate() of the whole split
        assert result == evaluate(r.model, r.valid_labels, eval_batch or 5)
        r.lock.release()


def test_the_batches_of_an_epoch_follow_its_order_once_and_ranks_share_them(tiny_npz, tmp_path, monkeypatch):
    from minipixel import parallel

    drawn = []
    real = train_module.data.epoch_permutation
    monkeypatch.setattr(train_module.data, "epoch_permutation",
                        lambda n, seed, epoch: drawn.append(epoch) or real(n, seed, epoch))
    r = _new_run(settings(tiny_npz, steps=1), tmp_path / "run")
    n, B = len(r.train_labels), r.settings.batch  # 58 at batch 16: 3 batches of 16, then 10
    for epoch in range(2):
        seen = []
        for k in range(r.steps_per_epoch):
            r.step = epoch * r.steps_per_epoch + k
            inputs, labels, classes = r.next_batch()
            assert len(inputs) == len(labels) == r.batch_size == min(B, n - k * B) and classes is None
            seen.append(labels)
        # the epoch's batches are its order (a function of seed and epoch), each image once
        np.testing.assert_array_equal(np.concatenate(seen), r.train_labels[real(n, r.settings.seed, epoch)])
    assert drawn == [0, 1]  # each epoch's order is drawn once, not at every step
    # Two ranks: each takes its half of the step's batch, and batch_size stays the global
    # batch, so that their losses (each a sum over its half / the global batch) add up.
    r.step = 1
    x, y, _ = r.next_batch()
    whole = parallel.loss_and_gradients(r.model, x, y)
    halves, losses = [], []
    for rank in range(2):
        r.ranks = _FakeRanks(rank, 2, {})
        x, y, _ = r.next_batch()
        assert r.batch_size == B and len(y) == B // 2
        halves.append(y)
        losses.append(parallel.loss_and_gradients(r.model, x, y, None, r.batch_size))
    np.testing.assert_array_equal(np.concatenate(halves), r.train_labels[real(n, r.settings.seed, 0)[B : 2 * B]])
    assert sum(losses) == pytest.approx(whole, rel=1e-5)
    r.lock.release()


class _Terminal(io.StringIO):
    """A stand-in for a terminal on stderr, ``columns`` wide (``os.get_terminal_size`` is pointed at it)."""

    columns = 60

    def fileno(self):
        return 2


def test_the_progress_bar_counts_the_steps_and_follows_the_terminal_width(tiny_npz, tmp_path, monkeypatch):
    import os

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(os, "get_terminal_size", lambda *fd: os.terminal_size((terminal.columns, 24)))

    def widen(step, loss):
        if step == 3:
            terminal.columns = 160  # the window is made wider mid-run

    train(settings(tiny_npz, steps=6), out=tmp_path / "run", progress=True, log=lambda *a: None, on_step=widen)
    bars = [line for line in re.split(r"[\r\n]", terminal.getvalue()) if line.startswith("training:")]
    assert bars and len(bars[0]) < 60 and 100 < len(bars[-1]) < 160  # the last bar, drawn after, is wider
    assert bars[-1].startswith("training: 100%") and "| 6/6 [" in bars[-1]


def _terminal_bars(terminal):
    """The lines of the training progress bar drawn on ``terminal``."""
    return [line for line in re.split(r"[\r\n]", terminal.getvalue()) if line.startswith("training:")]


def test_a_resumed_runs_progress_bar_starts_at_its_step_and_shows_the_loss_and_epoch(tiny_npz, tmp_path,
                                                                                      monkeypatch):
    import os

    run(settings(tiny_npz, steps=4), tmp_path / "run")
    terminal = _Terminal()
    terminal.columns = 200  # wide enough for the whole postfix
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(os, "get_terminal_size", lambda *fd: os.terminal_size((terminal.columns, 24)))
    losses = []
    train(settings(tiny_npz, steps=6), resume=tmp_path / "run", progress=True, log=lambda *a: None,
          on_step=lambda step, loss: losses.append(loss))
    bars = _terminal_bars(terminal)
    # drawn first at the step resumed from, counting steps; then each step's loss and epoch (4 steps an epoch)
    assert re.search(r"\| 4/6 \[00:00<\?, \?step/s\]$", bars[0])
    assert re.search(rf"\| 6/6 \[.*(step/s|s/step), epoch=1\.50, loss={losses[-1]:.2f} nats/img\]", bars[-1])


def test_train_shows_its_progress_bar_unless_told_not_to(tiny_npz, tmp_path, capsys):
    train(settings(tiny_npz, steps=1), out=tmp_path / "shown", log=lambda *a: None)  # progress by default
    assert "training: 100%" in capsys.readouterr().err
    train(settings(tiny_npz, steps=1), out=tmp_path / "quiet", progress=False, log=lambda *a: None)
    assert capsys.readouterr().err == ""


def test_train_with_no_arguments_trains_the_default_run(monkeypatch):
    calls = []
    monkeypatch.setattr(train_module, "_train", lambda *args: calls.append(args) or "runs/x")
    assert train() == "runs/x"
    assert calls == [(TrainSettings(), None, None, True, print, None)]


def test_a_nan_loss_before_any_checkpoint_says_none_was_written(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module.parallel, "loss_and_gradients", lambda *args: float("nan"))
    with pytest.raises(TrainingError) as stopped:
        run(settings(tiny_npz, steps=4), tmp_path / "run")
    assert str(stopped.value) == ("the loss became nan at step 1; stopping. The last good checkpoint is "
                                  "(none written yet); try a lower --lr")
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def _steps_on_this_rank_alone(monkeypatch):
    """Make train_step record what each step passes it, as (ranks, batch, images given), and step on
    this rank's images alone (no other rank to sum gradients with). Returns the record."""
    calls = []
    real = train_module.train_step

    def step(model, optimizer, inputs, labels, classes=None, ranks=None, batch=None, dropout=None):
        calls.append((ranks, batch, len(inputs)) + (() if dropout is None else (dropout[1].tolist(),)))
        return real(model, optimizer, inputs, labels, classes, dropout=dropout)

    monkeypatch.setattr(train_module, "train_step", step)
    return calls


def _loop_as_rank(r, rank, others, log=lambda *a: None, on_step=None):
    """The training loop of the Run ``r`` as rank ``rank`` of two, the other rank sending ``others``
    to every agreement (the loop's stop agreement: [0, its clock says time up, its Ctrl-C])."""
    r.ranks = _FakeRanks(rank, 2, {1 - rank: [float(v) for v in others]})
    try:
        return train_module._loop(r, False, log, on_step)
    finally:
        r.lock.release()


def test_every_step_gives_train_step_the_ranks_and_the_global_batch(tiny_npz, tmp_path, monkeypatch):
    calls = _steps_on_this_rank_alone(monkeypatch)
    r = _new_run(settings(tiny_npz, steps=2), tmp_path / "run")
    _loop_as_rank(r, 0, [0, 0, 0])
    # each rank steps on half of the batch of 16, and train_step is told the whole batch
    assert calls == [(r.ranks, 16, 8), (r.ranks, 16, 8)]


@pytest.mark.parametrize("rank", [0, 1])
def test_with_dropout_each_rank_gives_its_images_the_keys_of_their_place_in_the_global_batch(
        tiny_npz, tmp_path, monkeypatch, rank):
    calls = _steps_on_this_rank_alone(monkeypatch)
    r = _new_run(settings(tiny_npz, steps=2, arch="gated", filters=6, dropout=0.3), tmp_path / "run")
    _loop_as_rank(r, rank, [0, 0, 0])
    places = range(8 * rank, 8 * rank + 8)  # rank 0 has images 0-7 of each batch, rank 1 images 8-15
    assert calls == [(r.ranks, 16, 8, [[3, step, b] for b in places]) for step in (0, 1)]


def test_ranks_stop_together_after_the_step_any_of_them_was_interrupted(tiny_npz, tmp_path, monkeypatch):
    _steps_on_this_rank_alone(monkeypatch)
    r = _new_run(settings(tiny_npz, steps=8), tmp_path / "run")
    logged = []
    with pytest.raises(KeyboardInterrupt):
        _loop_as_rank(r, 0, [0, 0, 1], log=logged.append)  # Ctrl-C on the other rank
    assert r.step == 1 and read_checkpoint(tmp_path / "run")[3]["step"] == 1
    assert logged[0].startswith("interrupted at step 1: checkpoint")
    # no one interrupted, no time limit: rank 0 trains on to the end
    r = _new_run(settings(tiny_npz, steps=5), tmp_path / "calm")
    _loop_as_rank(r, 0, [0, 0, 0])
    assert r.step == 5


def test_rank_0s_clock_decides_when_the_ranks_stop(tiny_npz, tmp_path, monkeypatch):
    # The fake clock moves 10 s per step: every rank's own clock says 1 minute is up after step 6.
    _steps_on_this_rank_alone(monkeypatch)
    now = [1000.0]
    monkeypatch.setattr(train_module.time, "time", lambda: now[0])
    tick = lambda step, loss: now.__setitem__(0, now[0] + 10)
    s = settings(tiny_npz, steps=8, minutes=1)
    for rank, rank0_says, stopped_at in [(0, None, 6),  # rank 0: its own clock
                                         (1, 0, 8),     # rank 1: not its own clock, rank 0's says go on
                                         (1, 1, 1)]:    # rank 1: rank 0's clock says stop
        logged = []
        r = _new_run(s, tmp_path / f"rank{rank}-{rank0_says}")
        _loop_as_rank(r, rank, [0, rank0_says or 0, 0], log=logged.append, on_step=tick)
        assert r.step == stopped_at
        assert (f"stopped after 1 minutes of training, at step {stopped_at}" in logged) == (stopped_at < 8)


def test_a_rank_other_than_0_logs_nothing_and_reads_its_data_without_a_bar(tiny_npz, tmp_path, monkeypatch):
    asked, read = [], []
    monkeypatch.setattr(train_module.distributed, "ranks", lambda device: asked.append(device) or
                        _FakeRanks(rank, 2, {}))
    prepare = train_module.prepare_data
    monkeypatch.setattr(train_module, "prepare_data", lambda s, log, progress: read.append((log, progress)) or
                        prepare(s, log, progress))
    for rank in (0, 1):
        logged = []
        r = train_module.Run(settings(tiny_npz, device="cpu"), tmp_path / f"rank{rank}", log=logged.append,
                             progress=True)
        log, progress = read[-1]
        assert r.progress is progress is (rank == 0)
        r.log("a line")
        assert (logged[-1:] == ["a line"]) is (rank == 0) and (logged == []) is (rank == 1)
        assert log("x") is None and r.ranks.rank == rank
        assert (log == logged.append) is (rank == 0)
    assert asked == ["cpu", "cpu"]


def test_a_new_run_builds_the_model_asked_for_and_ranks_check_its_start(tiny_npz, tmp_path, monkeypatch):
    checked = []

    class Checking(_FakeRanks):
        def check_same(self, flat, what):
            checked.append((flat, what))

    monkeypatch.setattr(train_module.distributed, "ranks", lambda device: Checking(0, 2, {}))
    r = train_module.Run(settings(tiny_npz, filters=6, blocks=2, block="keras"), tmp_path / "run",
                         log=lambda *a: None, progress=False)
    cfg = r.model.config
    assert (cfg.filters, cfg.blocks, cfg.block) == (6, 2, "keras")
    assert r.optimizer.flat is r.model.packed  # Adam runs on the two flat arrays
    assert len(checked) == 1 and checked[0][0] is r.model.packed[0] and checked[0][1] == "initial parameters"


def test_a_new_run_starts_from_the_weights_of_its_seed_and_averages_the_flat_parameters(tiny_npz, tmp_path):
    from minipixel.model import build_model

    r = train_module.Run(settings(tiny_npz, seed=5, ema=0.9), tmp_path / "run", log=lambda *a: None, progress=False)
    r.lock.release()
    fresh = build_model(r.model.config, seed=5).parameters()
    assert all(np.array_equal(p, fresh[name]) for name, p in r.model.parameters().items())
    # Polyak averaging over the one flat array of parameters: a single pair, the model's own
    assert len(r.average._pairs) == 1 and r.average._pairs[0][1] is r.model.packed[0]


def test_a_run_removes_the_half_written_files_a_killed_run_left(tiny_npz, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".checkpoint.npz.tmp").write_bytes(b"half")  # files.atomic_write's temporary name
    (folder / "notes.tmp").write_text("mine")  # not one of minipixel's: kept
    train_module.Run(settings(tiny_npz), folder, log=lambda *a: None, progress=False)
    assert not (folder / ".checkpoint.npz.tmp").exists() and (folder / "notes.tmp").exists()


def test_only_rank_0_prints_the_evaluations(tiny_npz, tmp_path, monkeypatch, capsys):
    _steps_on_this_rank_alone(monkeypatch)
    printed = []
    for rank in range(2):
        _loop_as_rank(_new_run(settings(tiny_npz, steps=4), tmp_path / f"rank{rank}"), rank, [0, 0, 0])
        printed.append(capsys.readouterr().out)
    assert printed[0].startswith("step 4 epoch 1.00: train ") and "nats/image" in printed[0]
    assert printed[1] == ""


def test_a_run_stopped_by_its_minutes_draws_its_samples_and_returns_its_folder(tiny_npz, tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(train_module.time, "time", lambda: now[0])
    logged = []
    folder = train(settings(tiny_npz, steps=100, minutes=0.5, samples=1), out=tmp_path, progress=False,
                   log=logged.append, on_step=lambda step, loss: now.__setitem__(0, now[0] + 10))
    assert folder == tmp_path and (tmp_path / "samples.png").exists()
    assert read_checkpoint(tmp_path)[3]["step"] == 3
    assert logged[-1] == f"done in 30 s; run folder: {tmp_path}"


def test_ctrl_c_draws_samples_only_when_some_are_asked_for(tiny_npz, tmp_path):
    import os
    import signal

    for samples in (0, 1):
        logged = []
        with pytest.raises(KeyboardInterrupt):
            train(settings(tiny_npz, steps=12, samples=samples), out=tmp_path / f"{samples}", progress=False,
                  log=logged.append, on_step=lambda step, loss: os.kill(os.getpid(), signal.SIGINT))
        assert read_checkpoint(tmp_path / f"{samples}")[3]["step"] == 1
        assert (tmp_path / f"{samples}" / "samples.png").exists() == (samples > 0)
        assert any(line.startswith("drawing") for line in logged) == (samples > 0)


def test_a_single_process_error_is_raised_not_printed(tiny_npz, tmp_path, capsys):
    # (under mpiexec each rank prints its error and stops the others; one process leaves that to the caller)
    with pytest.raises(ValueError, match="--conditional needs class labels"):
        run(settings(tiny_npz, arch="gated", conditional=True, steps=1), tmp_path / "run")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("device, expected", [("cpu", "MPI"), ("gpu", "NCCL")])
def test_under_mpiexec_a_run_takes_the_ranks_and_the_cores_of_its_device(tmp_path, monkeypatch, device, expected):
    from minipixel import distributed, parallel

    class Launched:
        """Rank 0 of 2 that mpiexec started."""
        rank, size = 0, 2

    monkeypatch.setattr(distributed, "_ranks", None)  # no ranks found yet in this process
    monkeypatch.setattr(distributed, "launched_by_mpi", lambda: True)
    monkeypatch.setattr(distributed, "MPIRanks", type("MPI", (Launched,), {}))
    monkeypatch.setattr(distributed, "NCCLRanks", type("NCCL", (Launched,), {}))
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")  # two ranks on this host of 8 cores
    monkeypatch.setattr(parallel, "cpu_count", lambda: 8)
    monkeypatch.setattr(parallel, "_threads", None)
    blas = []
    monkeypatch.setattr(parallel, "limit_blas", blas.append)
    given = []
    monkeypatch.setattr(train_module, "_train", lambda *args: given.append(args) or distributed.ranks())
    s, log, on_step = TrainSettings(device=device), [].append, lambda step, loss: None
    assert type(train(s, out=tmp_path / "out", progress=False, log=log, on_step=on_step)).__name__ == expected
    assert given[0] == (s, tmp_path / "out", None, False, log, on_step)  # the run as asked for
    # a CPU rank: half of the host's cores for its steps and its BLAS; a GPU rank leaves them be
    assert (parallel._threads, blas) == ((4, [4]) if device == "cpu" else (None, []))
    # resuming without settings: the device saved in the checkpoint decides
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    save_checkpoint(tmp_path / "checkpoint.npz", model, Adam(model.parameters()), {"settings": {"device": device}})
    monkeypatch.setattr(distributed, "_ranks", None)
    monkeypatch.setattr(parallel, "_threads", None)
    blas.clear()
    assert type(train(None, resume=tmp_path)).__name__ == expected
    assert given[1] == (None, None, tmp_path, True, print, None)
    assert (parallel._threads, blas) == ((4, [4]) if device == "cpu" else (None, []))


def test_a_full_disk_stops_the_run_saying_what_is_left_and_how_to_go_on(tiny_npz, tmp_path, monkeypatch):
    import errno

    real, fail_at = train_module.Run.log_step, [None]  # the step whose steps.csv row finds the disk full

    def log_step(self, loss):
        if self.step == fail_at[0]:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.steps_path))
        real(self, loss)

    monkeypatch.setattr(train_module.Run, "log_step", log_step)
    for step, left in [(1, "no checkpoint was written yet"),
                       (5, f"the last checkpoint {tmp_path / 'late' / 'checkpoint.npz'} is intact")]:  # step 4's
        folder = tmp_path / ("early" if step == 1 else "late")
        fail_at[0] = step
        with pytest.raises(RuntimeError) as stopped:
            run(settings(tiny_npz, steps=8), folder)
        assert str(stopped.value) == (f"could not write into the run folder (No space left on device: "
                                      f"{folder / 'steps.csv'}); {left}; make room, then continue with --resume {folder}")


def test_an_error_on_one_rank_is_printed_with_its_rank_and_stops_them_all(tiny_npz, tmp_path, monkeypatch, capsys):
    from minipixel import distributed

    aborted = []

    class Launched:
        """Rank 1 of 2 that mpiexec started."""
        rank, size = 1, 2

        def abort(self, code=1):
            aborted.append(code)

    def fails(*args):
        raise ValueError("bad data")

    monkeypatch.setattr(distributed, "ranks", lambda device="cpu": Launched())
    monkeypatch.setattr(distributed, "share_cores", lambda settings=None: None)
    monkeypatch.setattr(train_module, "_train", fails)
    with pytest.raises(ValueError, match="bad data"):
        train(TrainSettings())
    assert capsys.readouterr().err == "minipixel train (rank 1 of 2): error: bad data\n"
    assert aborted == [1]  # every rank stops, with exit status 1


def test_resume_from_a_checkpoint_file_into_another_folder(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=4), tmp_path / "a")
    before = (tmp_path / "a" / "checkpoint.npz").read_bytes()
    run(settings(tiny_npz, steps=6), tmp_path / "b", resume=tmp_path / "a" / "checkpoint.npz")
    assert read_checkpoint(tmp_path / "b")[3]["step"] == 6
    assert (tmp_path / "a" / "checkpoint.npz").read_bytes() == before  # the run resumed from is left as it was


def test_a_checkpoint_saved_without_step_or_clock_resumes_from_step_0(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module.time, "time", lambda: 1000.0)  # a clock that stands still: no time passes
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=8, blocks=1))
    save_checkpoint(tmp_path / "checkpoint.npz", model, Adam(model.parameters()),
                    {"settings": {"data": str(tiny_npz), "filters": 8, "blocks": 1}})
    steps = []
    train(settings(tiny_npz, steps=2), resume=tmp_path, progress=False, log=lambda *a: None,
          on_step=lambda step, loss: steps.append(step))
    assert steps == [1, 2]
    state = read_checkpoint(tmp_path)[3]
    assert state["step"] == 2 and state["seconds"] == 0  # no time before the resume either


def test_a_run_shows_its_progress_by_default(tiny_npz, tmp_path, capsys):
    r = train_module.Run(settings(tiny_npz, steps=1, samples=1), tmp_path / "run", log=lambda *a: None)
    capsys.readouterr()
    r.draw()
    r.lock.release()
    assert "sampling" in capsys.readouterr().err  # the samples' progress bar


def test_colour_training_at_many_levels(tmp_path):
    # 48 tiny RGB images, each filled with one of four colours: once a model has
    # seen the first pixel, the rest is predictable, so the loss can fall fast.
    palette = np.array([[250, 20, 20], [20, 250, 20], [20, 20, 250], [200, 200, 40]], np.uint8)
    images = np.broadcast_to(palette[np.arange(48) % 4][:, None, None, :], (48, 6, 6, 3)).copy()
    write_npz(tmp_path / "rgb.npz", ImageSet(images=images, max_value=255, source="rgb"))
    losses = run(settings(tmp_path / "rgb.npz", levels=16, filters=12, blocks=2, steps=40, lr=1e-2, samples=4),
                 tmp_path / "run")
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    model, _, _ = load_model(tmp_path / "run" / "checkpoint.npz")
    assert model.config.channels == 3 and model.config.levels == 16
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["valid_bits_per_dim"] < 2.0  # log2(16) = 4 bits is a uniform guess


def test_bits_per_dim_of_a_uniform_model_by_hand():
    # With the output layer zeroed every logit is 0: each of the 5*4*3 sub-pixels has
    # probability 1/8, so an image costs 60 ln 8 nats = 60 * 3 bits: exactly 3 bits/dim.
    model = PixelCNN(PixelCNNConfig(height=5, width=4, channels=3, levels=8, filters=6, blocks=1), dtype="float64")
    model.conv_out.params["W"][...] = 0
    labels = np.random.default_rng(0).integers(0, 8, (7, 5, 4, 3)).astype(np.uint8)
    result = evaluate(model, labels)
    assert result["nll_nats"] == pytest.approx(60 * np.log(8), rel=1e-12)
    assert result["bits_per_dim"] == pytest.approx(3.0, rel=1e-12)


def labelled_npz(path, n=96, size=8, seed=0):
    """Binary images whose class decides their look: 0 a vertical bar, 1 a horizontal bar, 2 both."""
    rng = np.random.default_rng(seed)
    classes = np.arange(n) % 3
    images = np.zeros((n, size, size, 1), np.uint8)
    for k, c in enumerate(classes):
        if c != 1:
            images[k, :, rng.integers(size), 0] = 1
        if c != 0:
            images[k, rng.integers(size), :, 0] = 1
    write_npz(path, ImageSet(images=images, max_value=1, source="labelled bars", classes=classes))
    return path


@pytest.mark.parametrize("conditional", [False, True])
def test_gated_resume_continues_exactly(tmp_path, conditional):
    data = labelled_npz(tmp_path / "bars.npz", n=64)
    kw = dict(arch="gated", conditional=conditional, filters=6)
    straight = run(settings(data, steps=12, **kw), tmp_path / "a")
    first = run(settings(data, steps=6, **kw), tmp_path / "b")
    second = run(settings(data, steps=12, **kw), tmp_path / "b", resume=tmp_path / "b")
    assert first + second == straight
    config, pa, oa, _ = read_checkpoint(tmp_path / "a" / "checkpoint.npz")
    _, pb, ob, _ = read_checkpoint(tmp_path / "b" / "checkpoint.npz")
    assert config.arch == "gated" and config.classes == (3 if conditional else 0)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa) and all(np.array_equal(oa[k], ob[k]) for k in oa)
    assert any(".bias_h.V" in k for k in pa) == conditional


def test_a_conditional_model_learns_the_class(tmp_path):
    # Trained a few hundred steps, the model must find each image more likely
    # under its own class than under the others.
    data = labelled_npz(tmp_path / "bars.npz")
    run(settings(data, arch="gated", conditional=True, filters=12, blocks=2, steps=300, lr=1e-2, samples=6),
        tmp_path / "run")
    model = load_model(tmp_path / "run")[0]
    from minipixel.data import ImageSet, to_labels
    from minipixel.losses import nll_per_image

    images = np.load(data)["images"]
    labels = to_labels(ImageSet(images=images, max_value=1, source="bars"), 2)
    x = labels.astype(np.float32)
    nll = np.stack([nll_per_image(model.forward(x, np.full(len(x), c)), labels) for c in range(3)], axis=1)
    true = np.arange(len(x)) % 3
    assert np.mean(nll.argmin(axis=1) == true) > 0.9
    # evaluate() with the true classes agrees with the per-class numbers
    assert evaluate(model, labels, classes=true)["nll_nats"] == pytest.approx(nll[np.arange(len(x)), true].mean(),
                                                                             rel=1e-5)


def test_conditional_needs_labels_and_the_gated_model(tiny_npz, tmp_path):
    with pytest.raises(ValueError, match="--conditional needs class labels, and this data has none"):
        run(settings(tiny_npz, arch="gated", conditional=True, steps=1), tmp_path / "a")
    data = labelled_npz(tmp_path / "bars.npz")
    with pytest.raises(ValueError, match="needs the gated architecture"):
        run(settings(data, conditional=True, steps=1), tmp_path / "b")


def _amat_folder(root, images):
    """A data folder holding binarized-mnist's valid split: the given (n, 28, 28) 0/1 images."""
    folder = root / "binarized_mnist"
    folder.mkdir(parents=True)
    lines = (" ".join(str(v) for v in image.ravel()) for image in images)
    (folder / "binarized_mnist_valid.amat").write_text("\n".join(lines) + "\n")
    return root


def test_load_labels_reads_named_data_from_the_runs_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path / "elsewhere"))  # not the run's folder
    images = (np.random.default_rng(0).random((3, 28, 28)) < 0.3).astype(np.uint8)
    root = _amat_folder(tmp_path / "data", images)
    labels, classes = train_module.load_labels("binarized-mnist:valid", TrainSettings(data_dir=str(root)))
    np.testing.assert_array_equal(labels, images[..., None])
    assert classes is None
    model = PixelCNN(PixelCNNConfig(height=28, width=28, filters=4, blocks=0))
    labels, _ = train_module.load_labels_for(model, "binarized-mnist:valid", TrainSettings(data_dir=str(root)), "c.npz")
    np.testing.assert_array_equal(labels, images[..., None])


def test_load_labels_crops_image_folders_to_the_runs_size(tmp_path):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(np.full((12, 12), 100 * k, np.uint8)).save(folder / f"{k}.png")
    s = TrainSettings(levels=4, size=8)
    labels, _ = train_module.load_labels(str(folder), s)
    assert labels.shape == (3, 8, 8, 1)
    assert sorted(np.unique(labels)) == [0, 1, 3]  # 0, 100 and 200 of 255 at 4 levels
    model = PixelCNN(PixelCNNConfig(height=8, width=8, levels=4, filters=4, blocks=0))
    np.testing.assert_array_equal(train_module.load_labels_for(model, str(folder), s, "c.npz")[0], labels)


def test_load_labels_shows_progress_unless_told_not_to(tiny_npz, monkeypatch):
    seen = []
    real = train_module.datasets.load
    monkeypatch.setattr(train_module.datasets, "load", lambda *a, **kw: seen.append(kw["progress"]) or real(*a, **kw))
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    train_module.load_labels(str(tiny_npz), TrainSettings())
    train_module.load_labels(str(tiny_npz), TrainSettings(), progress=False)
    train_module.load_labels_for(model, str(tiny_npz), TrainSettings(), "c.npz")
    train_module.load_labels_for(model, str(tiny_npz), TrainSettings(), "c.npz", progress=False)
    assert seen == [True, False, True, False]
    seen.clear()  # prepare_data too (a hold-out of one file, then a named valid file)
    train_module.prepare_data(TrainSettings(data=str(tiny_npz)), log=lambda *a: None)
    train_module.prepare_data(TrainSettings(data=str(tiny_npz), valid=str(tiny_npz)), log=lambda *a: None)
    logged = []
    train_module.prepare_data(TrainSettings(data=str(tiny_npz), seed=4), log=logged.append, progress=False)
    assert seen == [True, True, True, False]
    assert logged[0].endswith(f"validation images from a 10% hold-out of {tiny_npz} (seed 4); 8x8x1, 2 levels")


def test_a_named_datasets_train_split_is_validated_on_its_valid_split(monkeypatch):
    class HeldOut(Exception):
        """prepare_data went for a 10% hold-out of the training data."""

    loaded, logged = [], []
    images = np.zeros((2, 8, 8, 1), np.uint8)
    monkeypatch.setattr(train_module, "load_labels", lambda spec, s, progress=True: loaded.append(spec) or (images, None))
    monkeypatch.setattr(train_module.datasets, "has_split", lambda spec: spec in ("digits:valid", "other:valid"))

    def hold_out(spec, **kw):
        raise HeldOut(spec)

    monkeypatch.setattr(train_module.datasets, "load", hold_out)
    train_module.prepare_data(TrainSettings(data="digits:train"), log=logged.append)
    assert loaded == ["digits:train", "digits:valid"] and "validation images from digits:valid;" in logged[0]
    loaded.clear()  # a valid file given: used as it is, whatever splits the dataset has
    train_module.prepare_data(TrainSettings(data="digits:train", valid="mine.npz"), log=logged.append)
    assert loaded == ["digits:train", "mine.npz"]
    for data in ("plain:train", "digits:test", "digits.npz", "train"):  # no valid split to take: a hold-out
        with pytest.raises(HeldOut, match=f"^{data}$"):
            train_module.prepare_data(TrainSettings(data=data), log=logged.append)
    # what the loaders are given: the run's data folder, size and progress
    monkeypatch.setattr(train_module, "load_labels", lambda spec, s, progress=None: loaded.append(progress) or (images, None))
    loaded.clear()
    train_module.prepare_data(TrainSettings(data="digits:train"), log=logged.append, progress=False)
    assert loaded == [False, False]
    asked = []
    monkeypatch.setattr(train_module.datasets, "load", lambda spec, **kw: asked.append(kw) or hold_out(spec))
    for progress in (True, False):
        with pytest.raises(HeldOut):
            train_module.prepare_data(TrainSettings(data="digits.npz", data_dir="dd", size=12), log=logged.append,
                                      progress=progress)
    assert asked == [{"data_dir": "dd", "size": 12, "progress": True}, {"data_dir": "dd", "size": 12, "progress": False}]


def test_data_of_another_size_for_a_non_square_model_gets_no_hint(tiny_npz):
    model = PixelCNN(PixelCNNConfig(height=8, width=6, filters=4, blocks=0))
    with pytest.raises(ValueError, match=r"trained on 8x6 grey images$"):
        train_module.load_labels_for(model, str(tiny_npz), TrainSettings(), "c.npz")


def test_binary_data_is_refused_by_a_three_level_model(tiny_npz):
    model = PixelCNN(PixelCNNConfig(height=8, width=8, levels=3, filters=4, blocks=0))
    with pytest.raises(ValueError, match="binary .* has 3 levels"):
        train_module.load_labels_for(model, str(tiny_npz), TrainSettings(levels=3), "c.npz")


def test_settings_of_a_checkpoint_saved_without_them_are_the_defaults(tmp_path):
    model = PixelCNN(PixelCNNConfig(height=8, width=8, levels=4, filters=4, blocks=0))
    s = train_module.saved_settings(model, {}, "c.npz")
    assert (s.levels, s.conditional, s.lr) == (4, False, TrainSettings().lr)
    from minipixel.gated import GatedPixelCNN

    gated = GatedPixelCNN(PixelCNNConfig(arch="gated", height=8, width=8, filters=4, blocks=0, classes=3))
    assert train_module.saved_settings(gated, {"settings": {"levels": 2}}, "c.npz").conditional is True
    with pytest.raises(CheckpointError, match=r"^c\.npz: bad training settings"):
        train_module.saved_settings(model, {"settings": {"lr": "fast"}}, "c.npz")
    save_checkpoint(tmp_path / "checkpoint.npz", model, Adam(model.parameters()), {"step": 0})
    assert train_module.saved_run_settings(tmp_path) == TrainSettings()


def test_saved_settings_must_have_their_fields_types():
    assert TrainSettings.from_dict({"valid": None, "lr": 0.5}).lr == 0.5
    with pytest.raises(ValueError, match="settings.valid: expected str, got 5"):
        TrainSettings.from_dict({"valid": 5})
    with pytest.raises(ValueError, match="settings.lr: expected float, got None"):
        TrainSettings.from_dict({"lr": None})


def test_metrics_rows_give_epoch_lr_and_seconds_rounded(tiny_npz, tmp_path, monkeypatch):
    # 58 training images at batch 9: 7 steps an epoch, so epochs like 1/7 need rounding
    monkeypatch.setattr(train_module.Run, "seconds", lambda self: 12.345678)
    run(settings(tiny_npz, steps=9, batch=9, eval_every=2, lr=1e-2, lr_decay=0.9), tmp_path)
    rows = train_module.read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 9]
    for r in rows:
        assert r["epoch"] == round(r["step"] / 7, 4)
        assert r["lr"] == pytest.approx(1e-2 * 0.9 ** (r["step"] - 1), rel=1e-12)
        assert r["seconds"] == 12.35


def _pictures(n, height, width, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, height, width, 1)) < 0.3).astype(np.uint8)


def test_samples_png_is_the_models_sample_at_the_runs_seed_and_temperature(tmp_path, capsys):
    from PIL import Image

    from minipixel.sampling import sample
    from minipixel.viz import image_grid

    # 28 rows, 6 columns: drawn at the scale of a 28-pixel-tall image (2), not of a 6-pixel one (4)
    path = tmp_path / "tall.npz"
    write_npz(path, ImageSet(images=_pictures(40, 28, 6), max_value=1, source="tall"))
    s = settings(path, steps=2, samples=5, temperature=0.7, seed=11, filters=4)
    train(s, out=tmp_path / "run", progress=True, log=lambda *a: None)
    assert "sampling" in capsys.readouterr().err  # the samples' progress bar, as the run's
    model = load_model(tmp_path / "run")[0]
    expected = image_grid(sample(model, 5, seed=11, temperature=0.7), 2, scale=2)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "run" / "samples.png")), expected)

    # a class-conditional model: one row per class, max(1, samples // classes) images each
    path = tmp_path / "classes.npz"
    write_npz(path, ImageSet(images=_pictures(40, 8, 8), max_value=1, source="classes", classes=np.arange(40) % 3))
    s = settings(path, steps=2, samples=2, arch="gated", conditional=True, filters=4, seed=4)
    run(s, tmp_path / "cond")
    model = load_model(tmp_path / "cond")[0]
    expected = image_grid(sample(model, 3, seed=4, classes=np.arange(3)), 2, ncols=1, scale=4)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "cond" / "samples.png")), expected)


def test_a_run_on_the_cpu_refuses_a_batch_that_would_not_fit_before_building_anything(tiny_npz, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(train_module.checks, "available_memory", lambda: 1024)  # 1 KiB left
    built = []
    monkeypatch.setattr(train_module, "build_model", lambda *a, **kw: built.append(a))
    with pytest.raises(MemoryError, match=r"^training this model \(8 filters, 1 blocks, 8x8x1\) at batch 16 "
                                          r"needs about .* GiB, and 0\.00 GiB of memory is available"):
        _new_run(settings(tiny_npz), tmp_path / "run")
    assert built == []


def test_a_resume_whose_data_file_now_holds_images_of_another_size_says_both_sizes(tiny_npz, tmp_path):
    folder = train(settings(tiny_npz, steps=1), out=tmp_path / "run", progress=False, log=lambda *a: None)
    write_npz(tiny_npz, ImageSet(images=bars(64, size=12), max_value=1, source="bars"))  # the run's data, replaced
    with pytest.raises(ValueError, match=r"checkpoint\.npz: the model was trained on 8x8x1 images, "
                                         r"the data is 12x12x1$"):
        train_module.Run(None, resume=folder, log=lambda *a: None, progress=False)


def test_a_run_without_steps_lasts_its_epochs_of_whole_batches(tiny_npz, tmp_path):
    logged = []
    r = train_module.Run(settings(tiny_npz, epochs=2, batch=20), tmp_path / "run", log=logged.append,
                         progress=False)
    assert len(r.train_labels) == 58 and (r.steps_per_epoch, r.total) == (3, 6)  # batches of 20, 20 and 18
    assert "; 6 steps of batch 20 (3 per epoch); " in logged[-1]


def test_the_data_line_of_a_run_counts_the_classes_of_labelled_data(tmp_path):
    data = labelled_npz(tmp_path / "bars.npz", n=30)  # classes 0, 1, 2
    logged = []
    train_module.prepare_data(settings(data, valid=str(data), conditional=True), log=logged.append, progress=False)
    assert logged == [f"data: 30 training images from {data}, 30 validation images from {data}; 8x8x1, 2 levels, "
                      "3 classes"]


def test_a_new_run_logs_its_live_parameters_every_bias_and_the_unmasked_weights(tiny_npz, tmp_path):
    logged = []
    train_module.Run(settings(tiny_npz, filters=4, blocks=0), tmp_path / "run", log=logged.append, progress=False)
    # 7x7 mask A on one grey channel: 3 rows of 7 above and 3 taps to the left = 24 live taps;
    # weights 24 * 4 + two 1x1 layers of 4 * 4 + the output 4 * 2 = 136, biases 4 + 4 + 4 + 2 = 14
    assert logged[-1].startswith("model: pixelcnn, 150 live parameters, 4 filters, 0 blocks; ")


def test_a_conditional_run_counts_its_class_biases_among_the_live_parameters(tmp_path):
    data = labelled_npz(tmp_path / "bars.npz", n=30)  # classes 0, 1, 2
    counts = {}
    for conditional in (False, True):
        logged = []
        r = train_module.Run(settings(data, valid=str(data), arch="gated", filters=4, blocks=1, conditional=conditional),
                             tmp_path / f"run{conditional}", log=logged.append, progress=False)
        counts[conditional] = int(logged[-1].split(" live parameters")[0].rsplit(" ", 1)[1])
    V = [p for name, p in r.model.parameters().items() if name.endswith(".V")]
    assert V and not any(v.any() for v in V)  # zero at the start, like the biases
    assert counts[True] == counts[False] + sum(v.size for v in V)


def test_evaluate_reads_batches_of_64_by_default_and_refuses_labels_beyond_the_models_levels(tiny_npz, monkeypatch):
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    labels = np.zeros((100, 8, 8, 1), np.uint8)
    sizes = []
    real_nll = train_module.parallel.nll
    monkeypatch.setattr(train_module.parallel, "nll", lambda m, x, y, given: sizes.append(len(x)) or real_nll(m, x, y, given))
    evaluate(model, labels)
    assert sizes == [64, 36]
    labels[3, 2, 1, 0] = 2  # a two-level model knows 0 and 1
    with pytest.raises(ValueError, match="^evaluation data has label 2, but the model has 2 levels$"):
        evaluate(model, labels)


def test_evaluate_on_the_cpu_refuses_a_batch_that_would_not_fit(monkeypatch):
    monkeypatch.setattr(train_module.checks, "available_memory", lambda: 1024)  # 1 KiB left
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    with pytest.raises(MemoryError, match=r"^evaluating at batch 32 needs about .* GiB, and 0\.00 GiB"):
        evaluate(model, np.zeros((5, 8, 8, 1), np.uint8), batch_size=32)


def test_settings_check_a_value_given_for_a_setting_without_default_and_refuse_none_for_one_with(tiny_npz):
    with pytest.raises(ValueError, match="^steps"):
        TrainSettings(data=str(tiny_npz), steps=0).validate()  # steps defaults to None (use epochs)
    with pytest.raises(ValueError, match="^batch"):
        TrainSettings(data=str(tiny_npz), batch=None).validate()  # batch has a default: None is not one


def test_evaluate_draws_a_bar_that_it_clears_when_done_and_none_unless_asked(monkeypatch):
    import os

    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    labels = np.zeros((100, 8, 8, 1), np.uint8)
    for progress in (True, False):
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(os, "get_terminal_size", lambda *fd: os.terminal_size((terminal.columns, 24)))
        evaluate(model, labels, progress=progress)
        drawn = terminal.getvalue()
        if progress:
            assert drawn.startswith("\revaluating:   0%|")
            assert drawn.endswith("\r") and drawn.split("\r")[-2].strip() == ""  # the line blanked, not kept
        else:
            assert drawn == ""


class _Recording:
    """An optimizer that keeps a copy of the gradients it is given and changes nothing."""

    def step(self, grads):
        self.grads = {k: g.copy() for k, g in grads.items()}


def _tiny_step():
    """A small model and a batch of 4 binary 8x8 images: (model, inputs, labels)."""
    labels = np.asarray(bars(4), np.int64)
    return PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0)), labels.astype(np.float32), labels


def test_a_train_step_on_a_slice_of_the_global_batch_scales_its_gradients_by_the_global_batch():
    model, inputs, labels = _tiny_step()
    alone, slice_of_8 = _Recording(), _Recording()
    loss = train_module.train_step(model, alone, inputs, labels)
    assert train_module.train_step(model, slice_of_8, inputs, labels, batch=8) == pytest.approx(loss / 2, rel=1e-6)
    for name, g in alone.grads.items():
        np.testing.assert_allclose(slice_of_8.grads[name], g / 2, rtol=1e-5, atol=1e-9)


def test_a_train_step_on_two_ranks_sums_their_gradients_and_losses_and_on_one_does_not():
    model, inputs, labels = _tiny_step()

    class TwinRanks:  # two ranks that hold the same images: the other rank's part equals this one's
        def __init__(self, size):
            self.size, self.sums = size, 0

        def sum(self, flat):
            assert flat is model.packed[1] and self.size > 1
            flat *= 2
            self.sums += 1

        def agree(self, values):
            return [2 * v for v in values]

    alone = _Recording()
    loss = train_module.train_step(model, alone, inputs, labels, batch=8)
    one, two = TwinRanks(1), TwinRanks(2)
    assert train_module.train_step(model, _Recording(), inputs, labels, ranks=one, batch=8) == loss
    both = _Recording()
    assert train_module.train_step(model, both, inputs, labels, ranks=two, batch=8) == pytest.approx(2 * loss,
                                                                                                      rel=1e-6)
    assert (one.sums, two.sums) == (0, 1)
    for name, g in alone.grads.items():
        np.testing.assert_allclose(both.grads[name], 2 * g, rtol=1e-5, atol=1e-9)


def _record_params(monkeypatch, name):
    """Wrap train_module.<name> (evaluate or sample) to record a copy of the model's
    parameters at every call; returns the list of copies."""
    seen, original = [], getattr(train_module, name)

    def recording(model, *args, **kwargs):
        seen.append({k: p.copy() for k, p in model.parameters().items()})
        return original(model, *args, **kwargs)

    monkeypatch.setattr(train_module, name, recording)
    return seen


def test_with_ema_a_run_evaluates_keeps_and_draws_the_average_of_its_weights(tiny_npz, tmp_path, monkeypatch):
    evaluated, drawn = _record_params(monkeypatch, "evaluate"), _record_params(monkeypatch, "sample")
    run(settings(tiny_npz, steps=8, eval_every=4, ema=0.9, samples=2), tmp_path / "run")
    _, raw, optim, state = read_checkpoint(tmp_path / "run")
    assert int(optim["average_t"]) == 8 and state["settings"]["ema"] == 0.9
    average = {k[len("average/"):]: v for k, v in optim.items() if k.startswith("average/")}
    assert sorted(average) == sorted(raw)
    assert not all(np.array_equal(raw[k], average[k]) for k in raw)  # the average is not the last weights
    assert len(evaluated) == 2 and all(np.array_equal(evaluated[-1][k], average[k]) for k in raw)
    assert all(np.array_equal(drawn[-1][k], average[k]) for k in raw)
    # best.npz holds the weights that were evaluated at its step
    _, best, _, best_state = read_checkpoint(tmp_path / "run" / "best.npz")
    assert all(np.array_equal(best[k], evaluated[best_state["step"] // 4 - 1][k]) for k in best)
    # and the training went on from the weights as they were, not from the average
    straight = tmp_path / "plain"
    run(settings(tiny_npz, steps=8, eval_every=4, samples=0), straight)
    assert all(np.array_equal(raw[k], v) for k, v in read_checkpoint(straight)[1].items())


def resume_is_exact(settings_for, tmp_path, steps=12):
    """Train ``settings_for(steps)`` straight into tmp_path/a, and in two halves (the second a
    resume) into tmp_path/b; assert the same losses and the same parameters and optimizer state
    bit for bit. Returns the losses and both checkpoints' optimizer states."""
    straight = run(settings_for(steps), tmp_path / "a")
    first = run(settings_for(steps // 2), tmp_path / "b")
    second = run(settings_for(steps), tmp_path / "b", resume=tmp_path / "b")
    assert first + second == straight
    _, pa, oa, _ = read_checkpoint(tmp_path / "a")
    _, pb, ob, _ = read_checkpoint(tmp_path / "b")
    assert sorted(pa) == sorted(pb) and sorted(oa) == sorted(ob)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa) and all(np.array_equal(oa[k], ob[k]) for k in oa)
    return straight, oa, ob


def test_a_run_with_ema_resumes_exactly(tiny_npz, tmp_path):
    _, oa, _ = resume_is_exact(lambda steps: settings(tiny_npz, steps=steps, ema=0.8), tmp_path)
    assert "average_t" in oa
    rows = lambda d: [json.loads(x)["valid_nll_nats"] for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
    assert rows("a")[-1] == rows("b")[-1]


def test_ema_can_be_switched_on_and_off_at_a_resume(tiny_npz, tmp_path):
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=6), folder)
    assert "average_t" not in read_checkpoint(folder)[2]
    said = []
    train(settings(tiny_npz, steps=10, ema=0.9), resume=folder, progress=False, log=said.append)
    assert "Polyak averaging (decay 0.9) from step 7 on, starting at the current weights" in said
    assert int(read_checkpoint(folder)[2]["average_t"]) == 4  # steps 7..10
    train(None, resume=folder, progress=False, log=lambda *a: None)  # its own settings: 10 steps, done
    run(TrainSettings(**{**read_checkpoint(folder)[3]["settings"], "steps": 12}), folder, resume=folder)
    assert int(read_checkpoint(folder)[2]["average_t"]) == 6  # kept on, and carried on
    said = []
    train(settings(tiny_npz, steps=13, ema=0.0), resume=folder, progress=False, log=said.append)
    assert "Polyak averaging switched off (--ema 0): evaluating the weights as they are from now on" in said
    assert "average_t" not in read_checkpoint(folder)[2]


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


def test_the_pretrained_scripts_deflate_every_npz_of_a_run_folder(tiny_npz, tmp_path):
    import subprocess

    run(settings(tiny_npz, steps=2), tmp_path / "run")
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "run").glob("*.npz")}
    assert sorted(sizes) == ["best.npz", "checkpoint.npz"]
    root = Path(__file__).resolve().parents[1]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    out = subprocess.run(["bash", "-c", f"source {root}/scripts/pieces.sh && deflate_run {tmp_path / 'run'}"],
                         capture_output=True, text=True, env=env, cwd=root, check=True).stdout
    for name, before in sizes.items():
        after = (tmp_path / "run" / name).stat().st_size
        assert after < 0.8 * before and f"{name}: {before:,} -> {after:,} bytes" in out
    assert read_checkpoint(tmp_path / "run")[3]["step"] == 2


def recording_minipixel(tmp_path):
    """The environment for a script whose `minipixel` only appends its command line to
    tmp_path/calls instead of training."""
    stub = tmp_path / "bin" / "minipixel"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "minipixel $*" >> {tmp_path / "calls"}\n')
    stub.chmod(0o755)
    return {"PATH": f"{stub.parent}:{Path(sys.executable).parent}:/usr/bin:/bin"}


def test_run_phase_resumes_a_run_only_inside_its_steps_and_its_time(tiny_npz, tmp_path):
    import subprocess

    run(settings(tiny_npz, steps=2), tmp_path / "run")  # stands at step 2, a few seconds trained
    root, env = Path(__file__).resolve().parents[1], recording_minipixel(tmp_path)
    folder = tmp_path / "run"
    phases = [f"0 5 100 --dropout 0.2 --quiet", "3 5 100", "0 2 100", "2 3 0", "2 3 90"]
    script = f"source {root}/scripts/pieces.sh && " + " && ".join(f"run_phase {folder} {p}" for p in phases)
    subprocess.run(["bash", "-c", script], env=env, cwd=root, check=True)
    assert (tmp_path / "calls").read_text().splitlines() == [
        f"minipixel train --resume {folder} --steps 5 --minutes 100 --dropout 0.2 --quiet",  # step 2 in [0, 5)
        # [3, 5) and [0, 2) leave out step 2; STOP_AT 0 leaves no time
        f"minipixel train --resume {folder} --steps 3 --minutes 90",
    ]


@pytest.mark.parametrize("call, dropout, layers", [("gated_dropout_run {} 96 30 DATA", " --dropout 0.2", 12),
                                                   ("gated_late_dropout_run {} 96 30 DATA 10859", "", 12),
                                                   ("gated_late_dropout_run {} 96 30 DATA 6252 20", "", 20)])
def test_the_gated_runs_start_a_run_with_their_settings_and_resume_one_in_its_phase(tiny_npz, tmp_path, call,
                                                                                      dropout, layers):
    import subprocess

    root, env = Path(__file__).resolve().parents[1], recording_minipixel(tmp_path)
    fresh, started = tmp_path / "fresh", tmp_path / "started"
    run(settings(tiny_npz, steps=2), started)  # stands at step 2, a few seconds trained
    for folder in (fresh, started):
        subprocess.run(["bash", "-c", f"source {root}/scripts/pieces.sh && " + call.format(folder)],
                       env=env, cwd=root, capture_output=True)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == (
        "minipixel train --data DATA/binarized_mnist_train.amat.gz --valid DATA/binarized_mnist_valid.amat.gz "
        f"--arch gated --filters 96 --blocks {layers} --batch 32 --lr 1e-3 --lr-decay 0.99991 --steps 6252{dropout} "
        f"--seed 0 --threads 2 --samples 64 --minutes 30 --out {fresh} --quiet")
    minutes = round(read_checkpoint(started)[3]["seconds"] / 60 + 30, 1)
    # the started run is in the first phase: on to step 6,252 without averaging, for 30 more minutes
    assert calls[1:] == [f"minipixel train --resume {started} --steps 6252 --minutes {minutes}{dropout} "
                         "--threads 2 --quiet"]
