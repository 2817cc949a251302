"""Polyak averaging (--ema) in a run: it evaluates, keeps and draws the average while training goes on from
the weights as they are, resumes exactly, and can be switched on and off at a resume."""
import json

import numpy as np

from minipixel import train as train_module
from minipixel.checkpoint import read_checkpoint
from minipixel.train import TrainSettings, train

from train_helpers import resume_is_exact, run, settings


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
    assert f"resuming {folder / 'checkpoint.npz'} at step 6" in said
    assert "Polyak averaging (decay 0.9) from step 7 on, starting at the current weights" in said
    assert int(read_checkpoint(folder)[2]["average_t"]) == 4  # steps 7..10
    train(None, resume=folder, progress=False, log=lambda *a: None)  # its own settings: 10 steps, done
    run(TrainSettings(**{**read_checkpoint(folder)[3]["settings"], "steps": 12}), folder, resume=folder)
    assert int(read_checkpoint(folder)[2]["average_t"]) == 6  # kept on, and carried on
    said = []
    train(settings(tiny_npz, steps=13, ema=0.0), resume=folder, progress=False, log=said.append)
    assert "Polyak averaging switched off (--ema 0): evaluating the weights as they are from now on" in said
    assert "average_t" not in read_checkpoint(folder)[2]
