"""Fault injection, the SQLite way (small): a short run in which the Nth write fails with a
full disk, for every N up to the run's number of writes; after each failure, going on as
the error says (``--resume``, or ``--overwrite`` when no checkpoint was written) ends with
the parameters and records of a run that never failed."""
import contextlib
import errno
import json

import numpy as np
import pytest
from train_helpers import settings

from minipixel import checkpoint, runfolder, viz
from minipixel.checkpoint import read_checkpoint
from minipixel.files import atomic_write
from minipixel.train import train


class FullDisk:
    """Every file write of a run counted (atomic writes, and appends to the records); the
    ``fail_at``-th one writes a little, then fails with ENOSPC."""

    def __init__(self, monkeypatch, fail_at=None):
        self.count, self.fail_at = 0, fail_at
        for module in (checkpoint, runfolder, viz):
            monkeypatch.setattr(module, "atomic_write", self.atomic_write)
        monkeypatch.setattr(runfolder, "open", self.open, raising=False)

    def _fails(self):
        self.count += 1
        return self.count == self.fail_at

    @contextlib.contextmanager
    def atomic_write(self, path, mode="wb"):
        with atomic_write(path, mode) as f:
            if self._fails():
                f.write(b"\0" if "b" in mode else "{")  # a part of it, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            yield f

    def open(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if "a" in mode and self._fails():
            f.write('{"step": 9')  # a torn line
            f.close()
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return f


def _records(folder):
    """What a run leaves: its parameters, its metrics and steps (without the clock)."""
    params = read_checkpoint(folder)[1]
    metrics = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (folder / "metrics.jsonl").read_text().splitlines()]
    steps = [line.rsplit(",", 1)[0] for line in (folder / "steps.csv").read_text().splitlines()]
    return params, metrics, steps


def test_a_run_whose_nth_write_fails_finishes_as_if_none_had(tiny_npz, tmp_path, monkeypatch):
    s = settings(tiny_npz, steps=6, eval_every=2, samples=2)
    quiet = dict(progress=False, log=lambda *a: None)
    with monkeypatch.context() as m:
        counting = FullDisk(m)
        train(s, out=tmp_path / "whole", **quiet)
    writes = counting.count
    assert writes >= 6 + 3 * 3 + 1  # a line per step; per evaluation a metrics line, a curve, a checkpoint; samples
    want_params, want_metrics, want_steps = _records(tmp_path / "whole")
    for n in range(1, writes + 1):
        folder = tmp_path / f"fail{n}"
        with monkeypatch.context() as m:
            FullDisk(m, fail_at=n)
            with pytest.raises((RuntimeError, OSError), match="No space left on device"):
                train(s, out=folder, **quiet)
        assert not list(folder.glob(".*.tmp"))  # no half-written file left behind
        if (folder / "checkpoint.npz").exists():
            read_checkpoint(folder)  # whatever was on disk is whole
            train(s, out=folder, resume=folder, **quiet)
        else:
            train(s, out=folder, overwrite=True, **quiet)
        params, metrics, steps = _records(folder)
        assert metrics == want_metrics and steps == want_steps, n
        assert all(np.array_equal(params[k], want_params[k]) for k in want_params), n
        assert (folder / "samples.png").exists() and not (folder / ".lock").exists()


def test_a_full_disk_while_a_resume_cuts_back_its_records_leaves_the_folder_free(tiny_npz, tmp_path, monkeypatch):
    s, quiet = settings(tiny_npz, steps=4, eval_every=2), dict(progress=False, log=lambda *a: None)
    train(s, out=tmp_path, **quiet)
    with monkeypatch.context() as m:
        FullDisk(m, fail_at=1)  # the resume's first write: cutting metrics.jsonl back to its step
        with pytest.raises(OSError, match="No space left on device"):
            train(settings(tiny_npz, steps=6, eval_every=2), out=tmp_path, resume=tmp_path, **quiet)
    assert not (tmp_path / ".lock").exists()
    train(settings(tiny_npz, steps=6, eval_every=2), out=tmp_path, resume=tmp_path, **quiet)  # this process again
    assert read_checkpoint(tmp_path)[3]["step"] == 6
