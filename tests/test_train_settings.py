"""A run's settings and what a new run builds from them: TrainSettings and its checks, the settings a
checkpoint keeps, the data a run reads (load_labels, load_labels_for, prepare_data) and the model it builds
(its seed, its live parameters, a batch that would not fit)."""
import numpy as np
import pytest

from minipixel import train as train_module
from minipixel.checkpoint import CheckpointError, save_checkpoint
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam
from minipixel.train import TrainSettings
from minipixel import rundata
from minipixel.settings import run_settings
from minipixel.rundata import run_labels
from minipixel import memory

from train_helpers import _FakeRanks, _new_run, labelled_npz, run, settings


def test_settings_check_a_value_given_for_a_setting_without_default_and_refuse_none_for_one_with(tiny_npz):
    with pytest.raises(ValueError, match="^steps"):
        TrainSettings(data=str(tiny_npz), steps=0).validate()  # steps defaults to None (use epochs)
    with pytest.raises(ValueError, match="^batch"):
        TrainSettings(data=str(tiny_npz), batch=None).validate()  # batch has a default: None is not one


def test_saved_settings_must_have_their_fields_types():
    assert TrainSettings.from_dict({"valid": None, "lr": 0.5}).lr == 0.5
    with pytest.raises(ValueError, match="settings.valid: expected str, got 5"):
        TrainSettings.from_dict({"valid": 5})
    with pytest.raises(ValueError, match="settings.lr: expected float, got None"):
        TrainSettings.from_dict({"lr": None})


def test_settings_of_a_checkpoint_saved_without_them_are_the_defaults(tmp_path):
    model = PixelCNN(PixelCNNConfig(height=8, width=8, levels=4, filters=4, blocks=0))
    s = run_settings("c.npz", {}, model)
    assert (s.levels, s.conditional, s.lr) == (4, False, TrainSettings().lr)
    from minipixel.gated import GatedPixelCNN

    gated = GatedPixelCNN(PixelCNNConfig(arch="gated", height=8, width=8, filters=4, blocks=0, classes=3))
    assert run_settings("c.npz", {"settings": {"levels": 2}}, gated).conditional is True
    with pytest.raises(CheckpointError, match=r"^c\.npz: bad training settings"):
        run_settings("c.npz", {"settings": {"lr": "fast"}}, model)
    save_checkpoint(tmp_path / "checkpoint.npz", model, Adam(model.parameters()), {"step": 0})
    assert run_settings(tmp_path) == TrainSettings()


def test_a_saved_lr_may_lie_above_the_range_but_must_be_positive_and_finite():
    # A run from before the schedule was kept stored lr / lr_decay**step, above the range a user may give.
    assert run_settings("c.npz", {"settings": {"lr": 500.0}}).lr == 500.0
    with pytest.raises(ValueError, match="^lr"):
        TrainSettings(lr=500.0).validate()  # given by a user, it must be in the range
    for bad in (0.0, -1e-3, float("inf"), float("nan")):
        with pytest.raises(CheckpointError, match=r"^c\.npz: bad training settings in the checkpoint: "
                                                  r"lr: expected a positive finite number, got"):
            run_settings("c.npz", {"settings": {"lr": bad}})


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
    labels, classes = run_labels("binarized-mnist:valid", TrainSettings(data_dir=str(root)))
    np.testing.assert_array_equal(labels, images[..., None])
    assert classes is None
    model = PixelCNN(PixelCNNConfig(height=28, width=28, filters=4, blocks=0))
    labels, _ = run_labels("binarized-mnist:valid", TrainSettings(data_dir=str(root)), model, "c.npz")
    np.testing.assert_array_equal(labels, images[..., None])


def test_load_labels_crops_image_folders_to_the_runs_size(tmp_path):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(np.full((12, 12), 100 * k, np.uint8)).save(folder / f"{k}.png")
    s = TrainSettings(levels=4, size=8)
    labels, _ = run_labels(str(folder), s)
    assert labels.shape == (3, 8, 8, 1)
    assert sorted(np.unique(labels)) == [0, 1, 3]  # 0, 100 and 200 of 255 at 4 levels
    model = PixelCNN(PixelCNNConfig(height=8, width=8, levels=4, filters=4, blocks=0))
    np.testing.assert_array_equal(run_labels(str(folder), s, model, "c.npz")[0], labels)


def test_load_labels_shows_progress_unless_told_not_to(tiny_npz, monkeypatch):
    seen = []
    real = rundata.datasets.load
    monkeypatch.setattr(rundata.datasets, "load", lambda *a, **kw: seen.append(kw["progress"]) or real(*a, **kw))
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    run_labels(str(tiny_npz), TrainSettings())
    run_labels(str(tiny_npz), TrainSettings(), progress=False)
    run_labels(str(tiny_npz), TrainSettings(), model, "c.npz")
    run_labels(str(tiny_npz), TrainSettings(), model, "c.npz", progress=False)
    assert seen == [True, False, True, False]
    seen.clear()  # prepare_data too (a hold-out of one file, then a named valid file)
    train_module.prepare_data(TrainSettings(data=str(tiny_npz)), log=lambda *a: None)
    train_module.prepare_data(TrainSettings(data=str(tiny_npz), valid=str(tiny_npz)), log=lambda *a: None)
    logged = []
    train_module.prepare_data(TrainSettings(data=str(tiny_npz), seed=4), log=logged.append, progress=False)
    assert seen == [True, True, True, False]
    assert logged[0].endswith(f"validation images from a 10% hold-out of {tiny_npz} (seed 4); 8x8x1, 2 levels")


def test_the_hold_out_of_a_run_is_drawn_with_its_seed(tmp_path):
    from minipixel.data import ImageSet, split_holdout, to_labels
    from minipixel.datasets import write_npz

    images = np.arange(40 * 4).reshape(40, 2, 2, 1).astype(np.uint8)  # every image another
    write_npz(tmp_path / "d.npz", ImageSet(images, max_value=255, source="d"))
    held = {}
    for seed in (0, 4):
        train, valid = train_module.prepare_data(TrainSettings(data=str(tmp_path / "d.npz"), levels=256, seed=seed),
                                                 log=lambda *a: None, progress=False)
        want = split_holdout(ImageSet(images, max_value=255, source="d"), 0.1, seed)
        for got, part in zip((train, valid), want):
            np.testing.assert_array_equal(got[0], to_labels(part, 256))
        held[seed] = valid[0]
    assert len(held[4]) == 4 and not np.array_equal(held[0], held[4])


def test_a_named_datasets_train_split_is_validated_on_its_valid_split(monkeypatch):
    class HeldOut(Exception):
        """prepare_data went for a 10% hold-out of the training data."""

    loaded, logged = [], []
    images = np.zeros((2, 8, 8, 1), np.uint8)
    monkeypatch.setattr(rundata, "run_labels", lambda spec, s, progress=True: loaded.append(spec) or (images, None))
    monkeypatch.setattr(rundata.datasets, "has_split", lambda spec: spec in ("digits:valid", "other:valid"))

    def hold_out(spec, **kw):
        raise HeldOut(spec)

    monkeypatch.setattr(rundata.datasets, "load", hold_out)
    train_module.prepare_data(TrainSettings(data="digits:train"), log=logged.append)
    assert loaded == ["digits:train", "digits:valid"] and "validation images from digits:valid;" in logged[0]
    loaded.clear()  # a valid file given: used as it is, whatever splits the dataset has
    train_module.prepare_data(TrainSettings(data="digits:train", valid="mine.npz"), log=logged.append)
    assert loaded == ["digits:train", "mine.npz"]
    for data in ("plain:train", "digits:test", "digits.npz", "train"):  # no valid split to take: a hold-out
        with pytest.raises(HeldOut, match=f"^{data}$"):
            train_module.prepare_data(TrainSettings(data=data), log=logged.append)
    # what the loaders are given: the run's data folder, size and progress
    monkeypatch.setattr(rundata, "run_labels", lambda spec, s, progress=None: loaded.append(progress) or (images, None))
    loaded.clear()
    train_module.prepare_data(TrainSettings(data="digits:train"), log=logged.append, progress=False)
    assert loaded == [False, False]
    asked = []
    monkeypatch.setattr(rundata.datasets, "load", lambda spec, **kw: asked.append(kw) or hold_out(spec))
    for progress in (True, False):
        with pytest.raises(HeldOut):
            train_module.prepare_data(TrainSettings(data="digits.npz", data_dir="dd", size=12), log=logged.append,
                                      progress=progress)
    assert asked == [{"data_dir": "dd", "size": 12, "progress": True}, {"data_dir": "dd", "size": 12, "progress": False}]


def test_data_of_another_size_for_a_non_square_model_gets_no_hint(tiny_npz):
    model = PixelCNN(PixelCNNConfig(height=8, width=6, filters=4, blocks=0))
    with pytest.raises(ValueError, match=r"trained on 8x6 grey images$"):
        run_labels(str(tiny_npz), TrainSettings(), model, "c.npz")


def test_binary_data_is_refused_by_a_three_level_model(tiny_npz):
    model = PixelCNN(PixelCNNConfig(height=8, width=8, levels=3, filters=4, blocks=0))
    with pytest.raises(ValueError, match="binary .* has 3 levels"):
        run_labels(str(tiny_npz), TrainSettings(levels=3), model, "c.npz")
    with pytest.raises(ValueError, match=r"binary \(0/1\), and --levels 3 would train"):  # a new run's model too
        run_labels(str(tiny_npz), TrainSettings(levels=3))


def test_the_data_line_of_a_run_counts_the_classes_of_labelled_data(tmp_path):
    data = labelled_npz(tmp_path / "bars.npz", n=30)  # classes 0, 1, 2
    logged = []
    train_module.prepare_data(settings(data, valid=str(data), conditional=True), log=logged.append, progress=False)
    assert logged == [f"data: 30 training images from {data}, 30 validation images from {data}; 8x8x1, 2 levels, "
                      "3 classes"]


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


def test_a_new_run_logs_its_live_parameters_every_bias_and_the_unmasked_weights(tiny_npz, tmp_path):
    logged = []
    train_module.Run(settings(tiny_npz, filters=4, blocks=0), tmp_path / "run", log=logged.append, progress=False)
    # 7x7 mask A on one grey channel: 3 rows of 7 above and 3 taps to the left = 24 live taps;
    # weights 24 * 4 + two 1x1 layers of 4 * 4 + the output 4 * 2 = 136, biases 4 + 4 + 4 + 2 = 14
    assert logged[-1].startswith("model: pixelcnn, 150 live parameters, 4 filters, 0 blocks; ")
    for blocks, said in ((1, "1 block; "), (2, "2 blocks; ")):
        r = train_module.Run(settings(tiny_npz, filters=4, blocks=blocks), tmp_path / f"run{blocks}",
                             log=logged.append, progress=False)
        r.lock.release()
        assert f" 4 filters, {said}" in logged[-1]


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


def test_a_run_on_the_cpu_refuses_a_batch_that_would_not_fit_before_building_anything(tiny_npz, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)  # 1 KiB left
    built = []
    monkeypatch.setattr(train_module, "build_model", lambda *a, **kw: built.append(a))
    with pytest.raises(MemoryError, match=r"^training this model \(8 filters, 1 blocks, 8x8x1\) at batch 16 "
                                          r"needs about .* GiB, and 0\.00 GiB of memory is available"):
        _new_run(settings(tiny_npz), tmp_path / "run")
    assert built == []
