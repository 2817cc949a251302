"""The files of a run folder, besides its checkpoints (``checkpoint``):

    metrics.jsonl   one JSON line per evaluation (``read_metrics``, ``append_metrics``)
    steps.csv       one line per step: step, loss, learning rate, seconds (``append_step``)

Both are appended to as the run goes; a resumed run first cuts them back to its
checkpoint's step (``open_folder``), so they hold exactly one row per step or
evaluation of the run, however often it was stopped.
"""
import json
import time
from pathlib import Path

from .files import atomic_write


def default_run_dir(spec):
    """runs/<data>-<date>-<time> for a run on ``spec``, with -2, -3, ... if that folder exists."""
    name = spec.replace(":", "-").replace("/", "_").split("_")[-1].split(".")[0] or "run"
    base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def read_metrics(path):
    """The rows of a metrics.jsonl file, as dicts."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def trim_metrics(path, step):
    """Keep the metrics rows up to ``step`` (a resumed run rewrites what came after)."""
    if not path.exists():
        return
    rows = [row for row in read_metrics(path) if row["step"] <= step]
    with atomic_write(path, "w") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))


STEPS_HEADER = "step,loss_nats,lr,seconds\n"


def trim_steps(path, step):
    """Keep the steps.csv rows up to ``step`` (and drop a line a kill cut short)."""
    if not path.exists():
        return
    kept = [line + "\n" for line in path.read_text().splitlines()[1:]
            if line.count(",") == 3 and line.split(",", 1)[0].isdigit() and int(line.split(",", 1)[0]) <= step]
    with atomic_write(path, "w") as f:
        f.write(STEPS_HEADER + "".join(kept))


def append_metrics(path, row):
    """Append one evaluation's row to metrics.jsonl."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def append_step(path, step, loss, lr, seconds):
    """Append one step's line to steps.csv (with its header if the file is new)."""
    new = not path.exists()
    with open(path, "a") as f:
        f.write((STEPS_HEADER if new else "") + f"{step},{loss:.6f},{lr:.6g},{seconds:.2f}\n")


def open_folder(folder, step):
    """Make ``folder`` ready for a run at ``step`` (0 for a new run): delete the
    half-written files of a killed run (``files.atomic_write``) and cut
    metrics.jsonl and steps.csv back to ``step``. The caller holds the folder's lock."""
    for stale in folder.glob(".*.tmp"):
        stale.unlink()
    trim_metrics(folder / "metrics.jsonl", step)
    trim_steps(folder / "steps.csv", step)
