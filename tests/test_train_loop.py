"""The training loop: the loss falls, a run stops at its steps, epochs or minutes or at Ctrl-C (saving, and
drawing its samples), resume is exact (from mid-epoch, from a save between evaluations, from a checkpoint file
into another folder), a new --lr takes effect at the next step, and the progress bar."""
import json
import re
import sys

import numpy as np
import pytest

from minipixel import train as train_module
from minipixel.checkpoint import load_model, read_checkpoint, save_checkpoint
from minipixel.data import ImageSet
from minipixel.datasets import write_npz
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam
from minipixel.train import TrainSettings, evaluate, train

from conftest import bars
from train_helpers import _steps_csv, _Terminal, labelled_npz, run, settings


def test_loss_falls_on_a_tiny_dataset(tiny_npz, tmp_path):
    losses = run(settings(tiny_npz, steps=60), tmp_path / "run")
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:3])
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # 58 training images (a 10% hold-out) at batch 16: 4 steps an epoch, evaluated every epoch and at the end
    assert [r["step"] for r in rows] == list(range(4, 61, 4))
    assert rows[-1]["valid_nll_nats"] < rows[0]["valid_nll_nats"]
    assert set(rows[0]) >= {"step", "epoch", "train_nll_nats", "valid_nll_nats", "valid_bits_per_dim"}


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


def test_a_run_without_steps_lasts_its_epochs_of_whole_batches(tiny_npz, tmp_path):
    logged = []
    r = train_module.Run(settings(tiny_npz, epochs=2, batch=20), tmp_path / "run", log=logged.append,
                         progress=False)
    assert len(r.train_labels) == 58 and (r.steps_per_epoch, r.total) == (3, 6)  # batches of 20, 20 and 18
    assert "; 6 steps of batch 20 (3 per epoch); " in logged[-1]


def test_train_with_no_arguments_trains_the_default_run(monkeypatch):
    calls = []
    monkeypatch.setattr(train_module, "_train", lambda *args: calls.append(args) or "runs/x")
    assert train() == "runs/x"
    assert calls == [(TrainSettings(), None, None, True, print, None, False)]


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


def test_a_finished_run_whose_samples_were_cut_short_draws_them_at_a_resume(tiny_npz, tmp_path):
    for samples in (0, 1):
        folder = tmp_path / f"{samples}"
        run(settings(tiny_npz, steps=2, samples=samples), folder)
        assert (folder / "samples.png").exists() == (samples > 0)
        if samples:  # samples.png there: a resume of the finished run leaves it as it is
            (folder / "samples.png").write_bytes(b"kept")
            run(settings(tiny_npz, steps=2, samples=samples), folder, resume=folder)
            assert (folder / "samples.png").read_bytes() == b"kept"
        (folder / "samples.png").unlink(missing_ok=True)  # as if the end was cut short
        run(settings(tiny_npz, steps=2, samples=samples), folder, resume=folder)  # finished: nothing to train
        assert read_checkpoint(folder)[3]["step"] == 2
        assert (folder / "samples.png").exists() == (samples > 0), samples


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


def test_a_run_stopped_by_its_minutes_draws_its_samples_and_returns_its_folder(tiny_npz, tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(train_module.time, "time", lambda: now[0])
    logged = []
    folder = train(settings(tiny_npz, steps=100, minutes=0.5, samples=1), out=tmp_path, progress=False,
                   log=logged.append, on_step=lambda step, loss: now.__setitem__(0, now[0] + 10))
    assert folder == tmp_path and (tmp_path / "samples.png").exists()
    assert read_checkpoint(tmp_path)[3]["step"] == 3
    assert logged[-1] == f"done in 30 s; run folder: {tmp_path}"


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


def test_a_new_lr_on_resume_is_the_rate_of_the_next_step(tiny_npz, tmp_path):
    run(settings(tiny_npz, steps=6), tmp_path / "run")
    train(settings(tiny_npz, steps=9, lr=2e-4), resume=tmp_path / "run", progress=False, log=lambda *a: None)
    lrs = [r[2] for r in _steps_csv(tmp_path / "run")]
    assert lrs[5] == pytest.approx(5e-3 * 0.9998 ** 5, rel=1e-5)
    assert lrs[6:] == pytest.approx([2e-4, 2e-4 * 0.9998, 2e-4 * 0.9998 ** 2], rel=1e-5)
    # the same --lr asked for again is again the rate of the next step (the settings keep the first rate)
    train(settings(tiny_npz, steps=11, lr=2e-4), resume=tmp_path / "run", progress=False, log=lambda *a: None)
    assert [r[2] for r in _steps_csv(tmp_path / "run")][9:] == pytest.approx([2e-4, 2e-4 * 0.9998], rel=1e-5)


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


def test_a_resume_whose_data_file_now_holds_images_of_another_size_says_both_sizes(tiny_npz, tmp_path):
    folder = train(settings(tiny_npz, steps=1), out=tmp_path / "run", progress=False, log=lambda *a: None)
    write_npz(tiny_npz, ImageSet(images=bars(64, size=12), max_value=1, source="bars"))  # the run's data, replaced
    with pytest.raises(ValueError, match=r"checkpoint\.npz: the model was trained on 8x8x1 images, "
                                         r"the data is 12x12x1$"):
        train_module.Run(None, resume=folder, log=lambda *a: None, progress=False)


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


def test_a_run_shows_its_progress_by_default(tiny_npz, tmp_path, capsys):
    r = train_module.Run(settings(tiny_npz, steps=1, samples=1), tmp_path / "run", log=lambda *a: None)
    capsys.readouterr()
    r.save_samples()
    r.lock.release()
    assert "sampling" in capsys.readouterr().err  # the samples' progress bar
