"""Nothing a run has made is lost: every stop signal saves, no non-finite state is
ever written, and a resumed run's learning-rate schedule stays valid (also for
checkpoints written before the schedule was kept)."""
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from train_helpers import run, settings

from minipixel import checkpoint as checkpoint_module
from minipixel import step as step_module
from minipixel.checkpoint import load_model, read_checkpoint, save_checkpoint
from minipixel.cli import main
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import SGD, Adam
from minipixel.settings import run_settings
from minipixel.step import TrainingError
from minipixel.stop import Stopped
from minipixel.train import train


def _steps_lr(folder):
    """The learning rate of every step, from steps.csv."""
    return [float(line.split(",")[2]) for line in (folder / "steps.csv").read_text().splitlines()[1:]]


def _rewrite_state(path, change):
    """Rewrite the JSON training state of the checkpoint ``path`` with ``change(state)``, as an
    older minipixel would have written it (the arrays untouched)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    state = json.loads(str(arrays["state"]))
    change(state)
    arrays["state"] = np.array(json.dumps(state, sort_keys=True))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# --- signals ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_term_and_hup_save_the_checkpoint_say_how_to_go_on_and_draw_nothing(tiny_npz, tmp_path, signum, monkeypatch):
    monkeypatch.setattr(os, "dup2", lambda *a: None)  # HUP sends output nowhere: not pytest's here
    before = signal.getsignal(signum)
    logged = []
    with pytest.raises(Stopped) as stopped:
        train(settings(tiny_npz, steps=12, samples=4), out=tmp_path, progress=False, log=logged.append,
              on_step=lambda step, loss: step == 3 and os.kill(os.getpid(), signum))
    assert stopped.value.signum == signum
    assert read_checkpoint(tmp_path)[3]["step"] == 3
    assert not (tmp_path / "samples.png").exists()  # a scheduler's TERM wants the process gone soon
    assert not (tmp_path / ".lock").exists()
    name = signal.Signals(signum).name
    assert logged[-1] == f"stopped by {name} at step 3: checkpoint {tmp_path / 'checkpoint.npz'}; " \
                         f"continue with --resume {tmp_path}"
    assert signal.getsignal(signum) == before  # the handler is put back


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_train_process_stopped_by_a_signal_exits_128_plus_it_with_its_checkpoint(tiny_npz, tmp_path, signum):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "minipixel.cli", "train", "--data", str(tiny_npz), "--filters", "8",
               "--blocks", "1", "--steps", "100000", "--eval-every", "2", "--samples", "0", "--out", str(out),
               "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=signum == signal.SIGHUP)  # a HUP as from a closed terminal
    try:
        deadline = time.time() + 60
        while not (out / "checkpoint.npz").exists() and time.time() < deadline:
            time.sleep(0.1)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr
    step = read_checkpoint(out)[3]["step"]
    assert step > 0 and len((out / "steps.csv").read_text().splitlines()) == 1 + step
    assert not (out / ".lock").exists()
    if signum != signal.SIGHUP:  # after a HUP the output goes nowhere
        assert f"stopped by {signal.Signals(signum).name} at step {step}" in stdout


def test_the_cli_exits_128_plus_the_signal_that_stopped_it(monkeypatch):
    def stopped(args):
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr("minipixel.cli.cmd_gradcheck", stopped)
    monkeypatch.setattr("minipixel.cli._gradcheck_parser", _parser_with(stopped))
    assert main(["gradcheck"]) == 143


def test_a_stop_names_its_signal():
    # what a traceback shows when a Python caller lets it through
    assert [str(Stopped(signum)) for signum in (signal.SIGTERM, signal.SIGHUP)] == ["SIGTERM", "SIGHUP"]
    assert str(Stopped()) == "SIGINT" and isinstance(Stopped(), KeyboardInterrupt)


def _parser_with(handler):
    def add(sub):
        sub.add_parser("gradcheck").set_defaults(handler=handler)
    return add


# --- non-finite state --------------------------------------------------------------------


def _huge_gradients_from(step, monkeypatch):
    """From training step ``step`` on, gradients of 1e25 (finite, with a finite loss): Adam's
    second moment, g**2, overflows float32, as a far too large --lr makes it do."""
    real, calls = step_module.loss_and_gradients, []

    def huge(model, *args):
        loss = real(model, *args)
        calls.append(1)
        if len(calls) >= step:
            for g in model.gradients().values():
                g *= 1e25
        return loss

    monkeypatch.setattr(step_module, "loss_and_gradients", huge)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("optimizer_state", ["moments", "parameters"])
def test_an_update_that_overflows_stops_the_run_and_keeps_the_good_checkpoint(tiny_npz, tmp_path, monkeypatch,
                                                                              optimizer_state):
    run(settings(tiny_npz, steps=4, eval_every=2), tmp_path / "run")
    good = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    if optimizer_state == "moments":
        _huge_gradients_from(1, monkeypatch)
    else:  # the update itself: p -= lr * m / sqrt(v), with lr at float32's largest
        monkeypatch.setattr(Adam, "current_lr", lambda self: 3e38)
    with pytest.raises(TrainingError, match=r"^the update made the parameters or the optimizer's moments infinite or "
                                            r"NaN at step 5; stopping.*checkpoint.npz; try a lower --lr$"):
        run(settings(tiny_npz, steps=8, eval_every=1), tmp_path / "run", resume=tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == good
    load_model(tmp_path / "run")  # still loads, and so does best.npz
    load_model(tmp_path / "run" / "best.npz")


def test_every_optimizer_tells_when_its_state_is_not_finite():
    model = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=0))
    for make in (lambda: Adam(model.parameters(), flat=model.packed), lambda: Adam(model.parameters()),
                 lambda: SGD(model.parameters(), momentum=0.9)):
        optimizer = make()
        assert optimizer.finite()
        moments = [optimizer.flat_v] if getattr(optimizer, "flat", None) is not None else list(optimizer.v.values())
        moments[-1][..., -1] = np.nan
        assert not optimizer.finite()
        moments[-1][..., -1] = 0
        next(iter(model.parameters().values()))[...] = -np.inf
        assert not optimizer.finite()
        next(iter(model.parameters().values()))[...] = 0


def test_save_checkpoint_refuses_non_finite_values_and_keeps_the_old_file(tmp_path):
    model = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=0))
    path = save_checkpoint(tmp_path / "c.npz", model)
    before = path.read_bytes()
    next(iter(model.parameters().values()))[...] = np.inf
    with pytest.raises(ValueError, match=r"c\.npz: not written: param/.* holds NaN or infinite values"):
        save_checkpoint(path, model)
    assert path.read_bytes() == before


# --- the learning-rate schedule -----------------------------------------------------------


def test_a_checkpoint_of_the_old_schedule_with_a_base_rate_out_of_range_still_resumes(tiny_npz, tmp_path):
    # Before the schedule was kept, `--resume --lr 5e-4` after 6 steps at decay 0.1 stored the
    # base rate 5e-4 / 0.1**6 = 500 as the run's lr, which every later resume, eval and
    # complete refused (the range of --lr ends at 10).
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=6, lr_decay=0.1), folder)

    def old(state):
        del state["lr_schedule"]
        state["settings"]["lr"] = 5e-4 / 0.1 ** 6

    _rewrite_state(folder / "checkpoint.npz", old)
    assert run_settings(folder).lr == pytest.approx(500)  # readable
    assert main(["eval", "--checkpoint", str(folder), "--data", str(tiny_npz), "--json"]) == 0
    assert main(["train", "--resume", str(folder), "--steps", "8", "--quiet"]) == 0  # its own schedule goes on
    assert _steps_lr(folder)[6:] == pytest.approx([5e-4, 5e-5], rel=1e-6)
    assert main(["train", "--resume", str(folder), "--steps", "10", "--lr", "1e-3", "--quiet"]) == 0  # a new rate
    assert _steps_lr(folder)[8:] == pytest.approx([1e-3, 1e-4], rel=1e-6)
    assert read_checkpoint(folder)[3]["lr_schedule"] == {"lr": 1e-3, "lr_step": 8}


def test_a_new_rate_after_the_decay_underflowed_is_the_rate_of_the_next_step(tiny_npz, tmp_path):
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=3, lr_decay=1e-200), folder)  # 1e-200 ** 2 is 0.0 in floats
    run(settings(tiny_npz, steps=5, lr_decay=1e-200, lr=1e-3), folder, resume=folder)
    assert _steps_lr(folder)[3] == 1e-3


def test_a_damaged_lr_schedule_is_refused_with_the_file_named(tiny_npz, tmp_path):
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=2), folder)
    for bad in ({"lr": -1.0, "lr_step": 0}, {"lr": 0.0, "lr_step": 0}, {"lr": 1e-3, "lr_step": 3}, {"lr": 1e-3},
                [1e-3, 0]):
        _rewrite_state(folder / "checkpoint.npz", lambda state: state.update(lr_schedule=bad))
        with pytest.raises(checkpoint_module.CheckpointError, match=r"checkpoint\.npz: expected the state's lr_schedule"):
            read_checkpoint(folder)
    assert zipfile.is_zipfile(folder / "checkpoint.npz")
    for good in ({"lr": 1e-3, "lr_step": 2}, {"lr": 1e-3, "lr_step": 0}):  # from the start up to the step itself
        _rewrite_state(folder / "checkpoint.npz", lambda state: state.update(lr_schedule=good))
        assert read_checkpoint(folder)[3]["lr_schedule"] == good


def test_a_resume_after_a_new_rate_goes_on_with_that_rate_decaying(tiny_npz, tmp_path):
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=6), folder)
    assert main(["train", "--resume", str(folder), "--steps", "8", "--lr", "2e-4", "--quiet"]) == 0
    assert main(["train", "--resume", str(folder), "--steps", "10", "--quiet"]) == 0
    assert _steps_lr(folder)[6:] == pytest.approx([2e-4 * 0.9998 ** k for k in range(4)], rel=1e-6)
    assert run_settings(folder).lr == 5e-3  # the settings keep the rate the run started with


def test_a_model_whose_validation_nll_is_nan_is_not_saved_over_a_good_checkpoint(tiny_npz, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    run(settings(tiny_npz, steps=4, eval_every=2), folder)
    good = (folder / "checkpoint.npz").read_bytes()
    rows = (folder / "metrics.jsonl").read_text()
    monkeypatch.setattr("minipixel.train.evaluate", lambda *a, **k: {"nll_nats": float("nan"), "bits_per_dim": 1.0,
                                                                    "images": 6})
    with pytest.raises(TrainingError, match=r"^the validation NLL became nan at step 6; stopping\. The last good "
                                            r"checkpoint is .*checkpoint\.npz; try a lower --lr$"):
        run(settings(tiny_npz, steps=8, eval_every=2), folder, resume=folder)
    assert (folder / "checkpoint.npz").read_bytes() == good and (folder / "metrics.jsonl").read_text() == rows
