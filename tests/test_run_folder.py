"""The run folder: the files a run writes (checkpoint.npz, best.npz, metrics.jsonl, steps.csv, samples.png,
learning_curve.png) and what they hold, its default name, the half-written files a killed run left, and a
full disk."""
import json
import time
from pathlib import Path

import numpy as np
import pytest

from minipixel import train as train_module
from minipixel.checkpoint import load_model, read_checkpoint
from minipixel.data import ImageSet
from minipixel.datasets import write_npz
from minipixel.train import train
from minipixel import runfolder

from train_helpers import _new_run, _steps_csv, run, settings


def test_run_folder_contents(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=4, samples=6), tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"checkpoint.npz", "metrics.jsonl", "samples.png",
                                                               "learning_curve.png", "best.npz", "steps.csv"}
    from PIL import Image

    assert Image.open(tmp_path / "run" / "samples.png").size[0] > 8 * 4 * 2


def test_default_run_folder_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clock = time.strptime("2026-11-25 14:30:00", "%Y-%m-%d %H:%M:%S")
    real = time.strftime
    monkeypatch.setattr(train_module.time, "strftime", lambda fmt: real(fmt, clock))
    assert runfolder.default_run_dir("mnist5k:train") == Path("runs/mnist5k-train-20261125-143000")
    assert runfolder.default_run_dir("some/where/digits.npz") == Path("runs/digits-20261125-143000")
    (tmp_path / "runs" / "digits-20261125-143000").mkdir(parents=True)  # taken: the next free name
    assert runfolder.default_run_dir("digits.npz") == Path("runs/digits-20261125-143000-2")
    assert runfolder.default_run_dir(".npz") == Path("runs/run-20261125-143000")


def test_a_run_removes_the_half_written_files_a_killed_run_left(tiny_npz, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".checkpoint.npz.tmp").write_bytes(b"half")  # files.atomic_write's temporary name
    (folder / "notes.tmp").write_text("mine")  # not one of minipixel's: kept
    train_module.Run(settings(tiny_npz), folder, log=lambda *a: None, progress=False)
    assert not (folder / ".checkpoint.npz.tmp").exists() and (folder / "notes.tmp").exists()


def test_checkpoints_record_the_epoch_and_the_seed(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=6, seed=5), tmp_path / "run")
    state = read_checkpoint(tmp_path / "run")[3]
    assert state["step"] == 6 and state["epoch"] == 6 / 4  # 58 training images at batch 16: 4 steps an epoch
    assert state["seed"] == state["settings"]["seed"] == 5


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


def test_metrics_rows_give_epoch_lr_and_seconds_rounded(tiny_npz, tmp_path, monkeypatch):
    # 58 training images at batch 9: 7 steps an epoch, so epochs like 1/7 need rounding
    monkeypatch.setattr(train_module.Run, "seconds", lambda self: 12.345678)
    run(settings(tiny_npz, steps=9, batch=9, eval_every=2, lr=1e-2, lr_decay=0.9), tmp_path)
    rows = runfolder.read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 9]
    for r in rows:
        assert r["epoch"] == round(r["step"] / 7, 4)
        assert r["lr"] == pytest.approx(1e-2 * 0.9 ** (r["step"] - 1), rel=1e-12)
        assert r["seconds"] == 12.35


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


def test_learning_curve_png_is_the_picture_of_the_metrics(tiny_npz, tmp_path):
    from PIL import Image

    from minipixel.viz import learning_curve

    run(settings(tiny_npz, steps=4, eval_every=2), tmp_path / "run")
    rows = runfolder.read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 2
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "run" / "learning_curve.png")),
                                  np.asarray(learning_curve(rows)))


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
    expected = image_grid(sample(model, 3, seed=4, classes=np.arange(3)), 2, ncols=1, scale=4, row_names=[0, 1, 2])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "cond" / "samples.png")), expected)


def test_a_full_disk_stops_the_run_saying_what_is_left_and_how_to_go_on(tiny_npz, tmp_path, monkeypatch):
    import errno

    real, fail_at = train_module.Run.log_step, [None]  # the step whose steps.csv row finds the disk full

    def log_step(self, loss):
        if self.step == fail_at[0]:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.steps_path))
        real(self, loss)

    monkeypatch.setattr(train_module.Run, "log_step", log_step)
    for step, then in [(1, "no checkpoint was written yet; make room, then start the run again with --overwrite --out"),
                       (5, f"the last checkpoint {tmp_path / 'late' / 'checkpoint.npz'} is intact; make room, "
                           f"then continue with --resume")]:  # step 4's
        folder = tmp_path / ("early" if step == 1 else "late")
        fail_at[0] = step
        with pytest.raises(RuntimeError) as stopped:
            run(settings(tiny_npz, steps=8), folder)
        assert str(stopped.value) == (f"could not write into the run folder (No space left on device: "
                                      f"{folder / 'steps.csv'}); {then} {folder}")


# --- a run is never replaced unless the user asks ------------------------------------------


def test_a_new_run_refuses_a_folder_that_holds_a_run_and_changes_nothing(tiny_npz, tmp_path):
    from minipixel.cli import main

    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=4, samples=2), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(FileExistsError, match=r"run holds a run already \(a new run would replace its checkpoint "
                                              r"and records\); continue it with --resume .*run, choose another "
                                              r"--out, or give --overwrite"):
        run(settings(tiny_npz, steps=2), folder)
    assert main(["train", "--data", str(tiny_npz), "--filters", "8", "--blocks", "1", "--steps", "2",
                 "--out", str(folder), "--quiet"]) == 1
    with pytest.raises(FileExistsError, match="holds a run already"):
        _new_run(settings(tiny_npz, steps=2), folder)  # a Run replaces none by default either
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "best.npz").write_text("")  # a best.npz is a run too
    with pytest.raises(FileExistsError):
        run(settings(tiny_npz, steps=2), tmp_path / "best")
    # Records without a checkpoint are what a run killed before its first checkpoint left: nothing
    # can go on from them, and a new run there starts them again.
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "steps.csv").write_text("step,loss_nats,lr,seconds\n1,90.0,0.001,0.10\n2,80.0,0.001,0.20\n")
    run(settings(tiny_npz, steps=2), tmp_path / "killed")
    assert [row[0] for row in _steps_csv(tmp_path / "killed")] == [1, 2] and _steps_csv(tmp_path / "killed")[0][1] != 90.0
    run(settings(tiny_npz, steps=2), tmp_path / "empty")  # an empty or new folder is fine
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "mine.png").write_bytes(b"png")
    run(settings(tiny_npz, steps=2), tmp_path / "pictures")  # and so is one without a run


def test_resume_into_another_folder_refuses_a_run_there(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=4), tmp_path / "a")
    run(settings(tiny_npz, steps=2, seed=9), tmp_path / "b")
    before = (tmp_path / "b" / "checkpoint.npz").read_bytes()
    with pytest.raises(FileExistsError, match=r"b holds a run already \(--resume with --out would replace"):
        run(settings(tiny_npz, steps=6), tmp_path / "b", resume=tmp_path / "a")
    assert (tmp_path / "b" / "checkpoint.npz").read_bytes() == before
    run(settings(tiny_npz, steps=6), tmp_path / "a", resume=tmp_path / "a")  # its own folder: a plain resume


def test_a_folder_holds_a_run_when_it_holds_a_checkpoint_or_a_best_npz_only(tmp_path):
    for name in runfolder.RUN_FILES:
        folder = tmp_path / name
        folder.mkdir()
        (folder / name).write_bytes(b"")
        assert runfolder.holds_run(folder) == (name in ("checkpoint.npz", "best.npz")), name
        if not runfolder.holds_run(folder):  # records without a checkpoint: a new run may start there
            runfolder.check_replaceable(folder, "training", overwrite=False)


def test_overwrite_lets_the_old_run_go_at_the_new_runs_first_checkpoint_even_before_an_evaluation(tiny_npz,
                                                                                                   tmp_path):
    import os
    import signal

    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=2, samples=0), folder)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C at step 1: a checkpoint, no evaluation, no best.npz
        train(settings(tiny_npz, steps=8, eval_every=4, samples=0, seed=5), out=folder, progress=False,
              log=lambda *a: None, on_step=lambda step, loss: os.kill(os.getpid(), signal.SIGINT), overwrite=True)
    assert read_checkpoint(folder)[3]["step"] == 1 and not (folder / "best.npz").exists()
    assert not (folder / "replaced-run").exists()


def test_overwrite_keeps_the_old_run_aside_until_the_new_runs_first_checkpoint(tiny_npz, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=4, samples=2), folder)
    old = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    logged = []

    def fails_before_a_checkpoint(step, loss):
        assert {p.name: p.read_bytes() for p in (folder / "replaced-run").iterdir()} == old
        raise RuntimeError("killed before the first checkpoint")

    with pytest.raises(RuntimeError, match="killed"):
        train(settings(tiny_npz, steps=8, eval_every=4, seed=5), out=folder, progress=False, log=logged.append,
              on_step=fails_before_a_checkpoint, overwrite=True)
    assert any("waits in" in line and "replaced-run" in line for line in logged)
    assert {p.name: p.read_bytes() for p in (folder / "replaced-run").iterdir()} == old  # nothing lost
    with pytest.raises(FileExistsError, match=r"replaced-run holds a run put aside by an earlier --overwrite"):
        train(settings(tiny_npz, steps=8, seed=5), out=folder, progress=False, log=logged.append, overwrite=True)
    (folder / "replaced-run" / "checkpoint.npz").rename(tmp_path / "kept.npz")
    for p in (folder / "replaced-run").iterdir():
        p.unlink()
    (folder / "replaced-run").rmdir()
    seen = []
    train(settings(tiny_npz, steps=8, eval_every=4, seed=5), out=folder, progress=False, log=lambda *a: None,
          on_step=lambda step, loss: seen.append((step, (folder / "replaced-run").exists())), overwrite=True)
    assert seen[3] == (4, True) and seen[4] == (5, False)  # gone once step 4's checkpoint was written
    assert read_checkpoint(folder)[3]["step"] == 8 and read_checkpoint(folder)[3]["settings"]["seed"] == 5
    assert [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()] == [4, 8]


def test_a_torn_last_metrics_line_is_dropped_and_the_resume_goes_on(tiny_npz, tmp_path):
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=4, eval_every=2), folder)
    whole = (folder / "metrics.jsonl").read_text()
    with open(folder / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "epoch": 1.5, "train_nll_na')  # an append that the disk cut short
    assert runfolder.read_metrics(folder / "metrics.jsonl") == [json.loads(x) for x in whole.splitlines()]
    run(settings(tiny_npz, steps=6, eval_every=2), folder, resume=folder)
    assert [json.loads(x)["step"] for x in (folder / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6]


@pytest.mark.parametrize("content, where", [('{"step": 2}\nnot json\n{"step": 4}\n', "line 2"),
                                            ('{"step": 2}\n[1, 2]\n', "line 2"), ('{"step": "2"}\n', "line 1"),
                                            (b"\xff\xfe\n", "not UTF-8")])
def test_a_damaged_metrics_file_is_named_with_its_line(tmp_path, content, where):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=f"^{path}: .*{where}"):
        runfolder.read_metrics(path)


def test_resume_with_out_naming_its_own_folder_another_way_is_a_plain_resume(tiny_npz, tmp_path, monkeypatch):
    run(settings(tiny_npz, steps=4), tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    run(settings(tiny_npz, steps=6), tmp_path / "a", resume=Path("a"))  # relative, then absolute: one folder
    assert read_checkpoint(tmp_path / "a")[3]["step"] == 6 and not (tmp_path / "a" / "replaced-run").exists()
    logged = []  # --overwrite replaces another run, never the one it resumes
    train(settings(tiny_npz, steps=8), out=tmp_path / "a", resume=tmp_path / "a", overwrite=True, progress=False,
          log=logged.append)
    assert [row[0] for row in _steps_csv(tmp_path / "a")] == list(range(1, 9))
    assert not (tmp_path / "a" / "replaced-run").exists() and not any("waits in" in line for line in logged)


def test_the_sample_rows_of_a_model_of_a_named_dataset_are_named_by_its_classes(tmp_path, monkeypatch):
    from minipixel import rundata
    from minipixel.datasets.class_names import CLASS_NAMES

    # fashion-mnist:train and :valid, here 8x8 pictures of 10 classes in place of the files
    classes = np.arange(40) % 10
    monkeypatch.setattr(rundata, "run_labels", lambda spec, s, progress=True: (_pictures(40, 8, 8), classes))
    monkeypatch.setattr(rundata.datasets, "has_split", lambda spec: spec == "fashion-mnist:valid")
    rows = []
    real = train_module.image_grid
    monkeypatch.setattr(train_module, "image_grid", lambda *a, **kw: rows.append(kw["row_names"]) or real(*a, **kw))
    run(settings("fashion-mnist:train", steps=1, samples=10, arch="gated", conditional=True, filters=4, blocks=0),
        tmp_path / "run")
    assert rows == [list(CLASS_NAMES["fashion-mnist"])]
