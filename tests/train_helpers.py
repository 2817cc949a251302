"""Helpers shared by the training tests, split by concern out of the former test_train.py
(test_step, test_train_ranks, test_train_loop, test_run_folder, test_train_settings, test_checkpoint,
test_train_ema, test_scripts_runs): the settings of a tiny run, a quiet run that returns its losses,
labelled data, the check that a resume is exact, steps.csv's rows, a Run that has not trained yet, and
stand-ins for MPI ranks and for a terminal, in one process."""
import io

import numpy as np

from minipixel import train as train_module
from minipixel.checkpoint import read_checkpoint
from minipixel.data import ImageSet
from minipixel.datasets import write_npz
from minipixel.train import TrainSettings, train


def settings(data, **kw):
    base = dict(data=str(data), filters=8, blocks=1, batch=16, lr=5e-3, samples=0, seed=3)
    base.update(kw)
    return TrainSettings(**base)


def run(s, out, **kw):
    losses = []
    train(s, out=out, progress=False, log=lambda *a: None, on_step=lambda step, loss: losses.append(loss), **kw)
    return losses


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


def _steps_csv(folder):
    """steps.csv rows as (step, loss, lr) tuples (the seconds column aside)."""
    lines = (folder / "steps.csv").read_text().splitlines()
    assert lines[0] == "step,loss_nats,lr,seconds"
    return [tuple(float(v) for v in line.split(",")[:3]) for line in lines[1:]]


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


class _Terminal(io.StringIO):
    """A stand-in for a terminal on stderr, ``columns`` wide (``os.get_terminal_size`` is pointed at it)."""

    columns = 60

    def fileno(self):
        return 2
