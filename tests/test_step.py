"""A training step and an evaluation: what train_step computes on a slice of the global batch or on
several ranks, the batches a run gives it, the NaN guard, and evaluate() (its batches, its checks, its bar)."""
import sys

import numpy as np
import pytest

from minipixel import train as train_module
from minipixel.checkpoint import read_checkpoint
from minipixel.data import ImageSet
from minipixel.datasets import write_npz
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.train import TrainingError, evaluate, train
from minipixel import step as step_module
from minipixel import memory
from minipixel import evaluate as evaluate_module

from conftest import bars
from train_helpers import _FakeRanks, _new_run, _Terminal, run, settings


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


def test_ranks_of_one_image_add_up_to_the_batch_and_a_rank_with_none_adds_nothing():
    model, inputs, labels = _tiny_step()
    alone = _Recording()
    loss = train_module.train_step(model, alone, inputs, labels)
    # four ranks of one image each: each adds its image's share of the batch of 4
    shares, summed = [], {}
    for k in range(4):
        one = _Recording()
        shares.append(train_module.train_step(model, one, inputs[k : k + 1], labels[k : k + 1], batch=4))
        for name, g in one.grads.items():
            summed[name] = summed.get(name, 0) + g
    assert all(share > 0 for share in shares) and sum(shares) == pytest.approx(loss, rel=1e-5)
    for name, g in alone.grads.items():
        np.testing.assert_allclose(summed[name], g, rtol=1e-4, atol=1e-7)
    # a rank whose slice of a small last batch is empty: no loss and no gradient, whatever the last step left
    none = _Recording()
    assert train_module.train_step(model, none, inputs[:0], labels[:0], batch=4) == 0.0
    assert none.grads.keys() == alone.grads.keys()
    assert all(np.array_equal(g, np.zeros_like(g)) for g in none.grads.values())


def test_the_batches_of_an_epoch_follow_its_order_once_and_ranks_share_them(tiny_npz, tmp_path, monkeypatch):
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
    whole = step_module.loss_and_gradients(r.model, x, y)
    halves, losses = [], []
    for rank in range(2):
        r.ranks = _FakeRanks(rank, 2, {})
        x, y, _ = r.next_batch()
        assert r.batch_size == B and len(y) == B // 2
        halves.append(y)
        losses.append(step_module.loss_and_gradients(r.model, x, y, None, r.batch_size))
    np.testing.assert_array_equal(np.concatenate(halves), r.train_labels[real(n, r.settings.seed, 0)[B : 2 * B]])
    assert sum(losses) == pytest.approx(whole, rel=1e-5)
    r.lock.release()


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(tiny_npz, tmp_path, monkeypatch):
    real = step_module.loss_and_gradients
    calls = []

    def poisoned(*args):
        calls.append(1)
        loss = real(*args)
        return float("nan") if len(calls) == 6 else loss

    monkeypatch.setattr(step_module, "loss_and_gradients", poisoned)
    with pytest.raises(TrainingError, match="loss became nan at step 6.*checkpoint.npz"):
        run(settings(tiny_npz, steps=12), tmp_path / "run")
    _, _, _, state = read_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert state["step"] == 4  # the end of the first epoch: the last good one


def test_a_nan_loss_before_any_checkpoint_says_none_was_written(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.setattr(step_module, "loss_and_gradients", lambda *args: float("nan"))
    with pytest.raises(TrainingError) as stopped:
        run(settings(tiny_npz, steps=4), tmp_path / "run")
    assert str(stopped.value) == ("the loss became nan at step 1; stopping. The last good checkpoint is "
                                  "(none written yet); try a lower --lr")
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


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


def test_bits_per_dim_of_a_uniform_model_by_hand():
    # With the output layer zeroed every logit is 0: each of the 5*4*3 sub-pixels has
    # probability 1/8, so an image costs 60 ln 8 nats = 60 * 3 bits: exactly 3 bits/dim.
    model = PixelCNN(PixelCNNConfig(height=5, width=4, channels=3, levels=8, filters=6, blocks=1), dtype="float64")
    model.conv_out.params["W"][...] = 0
    labels = np.random.default_rng(0).integers(0, 8, (7, 5, 4, 3)).astype(np.uint8)
    result = evaluate(model, labels)
    assert result["nll_nats"] == pytest.approx(60 * np.log(8), rel=1e-12)
    assert result["bits_per_dim"] == pytest.approx(3.0, rel=1e-12)


def test_evaluate_reads_batches_of_64_by_default_and_refuses_labels_beyond_the_models_levels(tiny_npz, monkeypatch):
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    labels = np.zeros((100, 8, 8, 1), np.uint8)
    sizes = []
    real_nll = evaluate_module.nll
    monkeypatch.setattr(evaluate_module, "nll", lambda m, x, y, given: sizes.append(len(x)) or real_nll(m, x, y, given))
    evaluate(model, labels)
    assert sizes == [64, 36]
    labels[3, 2, 1, 0] = 2  # a two-level model knows 0 and 1
    with pytest.raises(ValueError, match="^evaluation data has label 2, but the model has 2 levels$"):
        evaluate(model, labels)


def test_evaluate_on_the_cpu_refuses_a_batch_that_would_not_fit(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)  # 1 KiB left
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    with pytest.raises(MemoryError, match=r"^evaluating at batch 32 needs about .* GiB, and 0\.00 GiB"):
        evaluate(model, np.zeros((5, 8, 8, 1), np.uint8), batch_size=32)


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


def test_one_process_evaluates_in_batches_of_eval_batch(tiny_npz, tmp_path, monkeypatch):
    passes = []
    real = evaluate_module.nll
    monkeypatch.setattr(evaluate_module, "nll", lambda model, x, *a: passes.append(len(x)) or real(model, x, *a))
    for eval_batch, expected in ((4, [4, 2]), (None, [5, 1])):  # None: the training batch, 5
        r = _new_run(settings(tiny_npz, steps=1, batch=5, eval_batch=eval_batch), tmp_path / f"run{eval_batch}")
        passes.clear()
        result = r.evaluate_split()
        assert passes == expected  # the 6 validation images
        # one process: exactly evaluate() of the whole split
        assert result == evaluate(r.model, r.valid_labels, eval_batch or 5)
        r.lock.release()


def test_an_empty_validation_set_is_refused_before_training(tiny_npz, tmp_path):
    empty = tmp_path / "none.npz"
    write_npz(empty, ImageSet(images=np.zeros((0, 8, 8, 1), np.uint8), max_value=1, source="none"))
    with pytest.raises(ValueError, match=r"^validation data: .*none\.npz holds no images"):
        train(settings(tiny_npz, steps=1, valid=str(empty)), out=tmp_path / "run", progress=False, log=lambda *a: None)
    assert not (tmp_path / "run" / "checkpoint.npz").exists()
