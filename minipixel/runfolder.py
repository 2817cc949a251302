"""The files of a run folder, besides its checkpoints (``checkpoint``):

    metrics.jsonl   one JSON line per evaluation (``read_metrics``, ``append_metrics``)
    steps.csv       one line per step: step, loss, learning rate, seconds (``append_step``)

Both are appended to as the run goes; a resumed run first cuts them back to its
checkpoint's step (``open_folder``), so they hold exactly one row per step or
evaluation of the run, however often it was stopped.
"""
import json
import os
import time
import zipfile
from pathlib import Path

from .files import atomic_write, not_ordinary


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
    """The rows of a metrics.jsonl file, as dicts. A last line cut short (an append that
    failed halfway: a full disk, a kill) is left out, as steps.csv's is; any other line
    that is not a row is a ValueError naming the file and the line."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a metrics file (not UTF-8 text: {err.reason} at byte {err.start})") from None
    lines = text.split("\n")  # a whole file ends with a newline: then the last entry is ""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError("expected a JSON object with an int step")
        except ValueError as err:
            if number == len(lines):  # the last line, with no newline after it: cut short
                break
            raise ValueError(f"{path}: line {number} is not a metrics row ({err})") from None
        rows.append(row)
    return rows


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


# A run's own files. A folder with a checkpoint (the first two) holds a run; records without
# one are what a run killed before its first checkpoint left, and nothing can go on from them.
RUN_FILES = ("checkpoint.npz", "best.npz", "metrics.jsonl", "steps.csv", "samples.png", "learning_curve.png")
ASIDE = "replaced-run"  # where --overwrite puts the run it replaces, until the new run's first checkpoint


def holds_run(folder):
    """True when ``folder`` holds a run: its checkpoint (or its best.npz)."""
    return any((Path(folder) / name).exists() for name in RUN_FILES[:2])


def check_replaceable(folder, how, overwrite):
    """A FileExistsError unless ``folder`` may take a new run: it holds none (or
    ``overwrite`` says to replace it), and no earlier run put aside by --overwrite
    waits there. ``how`` names what would replace it."""
    folder = Path(folder)
    if (folder / ASIDE).exists():
        raise FileExistsError(f"{folder / ASIDE} holds a run put aside by an earlier --overwrite whose new run "
                              f"wrote no checkpoint; keep what you need from it and delete it first")
    if holds_run(folder) and not overwrite:
        raise FileExistsError(f"{folder} holds a run already ({how} would replace its checkpoint and records); "
                              f"continue it with --resume {folder}, choose another --out, or give --overwrite "
                              f"to replace it (its files are kept aside until the new run's first checkpoint)")


def put_aside(folder):
    """Move the run in ``folder`` into ``folder/replaced-run/``; returns that folder, or None
    when there was no run."""
    folder = Path(folder)
    present = [name for name in RUN_FILES if (folder / name).exists()]
    if not present:
        return None
    aside = folder / ASIDE
    aside.mkdir()
    for name in present:
        (folder / name).rename(aside / name)
    return aside


def check_output(path, reads=(), run_file=False):
    """``path`` as a Path, once it is known safe to write: a ValueError (one line) for
    a folder, anything but an ordinary file (a device, a FIFO, a socket, or a link to
    one), a file the command reads (``reads``), a minipixel checkpoint, or one of a
    run's own files (unless ``run_file``: ``show curve`` redraws a run's curve). An
    ordinary file there is replaced, atomically; a path that does not exist is fine."""
    path = Path(path)
    real = Path(os.path.realpath(path))
    if not real.exists():
        above = next(p for p in real.parents if p.exists())
        if not above.is_dir():
            raise ValueError(f"{path}: {above} is a file, not a folder")
        return path
    kind = not_ordinary(real.stat().st_mode)
    if kind == "a folder":
        raise ValueError(f"{path}: is a folder; give a file name")
    if kind:
        raise ValueError(f"{path}: is not an ordinary file ({kind}); minipixel writes only ordinary files")
    for read in reads:
        read = None if read is None else Path(read) / "checkpoint.npz" if Path(read).is_dir() else Path(read)
        if read is not None and read.is_file() and os.path.samefile(real, read):
            raise ValueError(f"{path}: is the file this command reads; choose another output")
    if zipfile.is_zipfile(real):
        with zipfile.ZipFile(real) as archive:
            if "format.npy" in archive.namelist():
                raise ValueError(f"{path}: is a minipixel checkpoint; choose another output")
    if not run_file and real.name in RUN_FILES and holds_run(real.parent):
        raise ValueError(f"{path}: is one of the files of the run in {real.parent}; choose another output")
    return path


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
