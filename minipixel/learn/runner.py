"""The ``minipixel learn`` commands: list, start, check, hint, solution.

The learner's folder (default ``./minipixel-exercises/``) holds one file per
exercise started (``NAME.py``) and ``.hints.json``, how many hints of each
exercise were shown.
"""
import json
from pathlib import Path

from . import EXERCISES
from .grade import learner_traceback, load

DEFAULT_DIR = "minipixel-exercises"
HINTS_FILE = ".hints.json"


def exercise(name):
    if name not in EXERCISES:
        raise ValueError(f"no exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def _path(name, folder):
    return Path(folder or DEFAULT_DIR) / f"{name}.py"


def grade(name, folder=None):
    """Grade the learner's file of exercise ``name``: ``(lines, passed)``; None if it is not started."""
    ex, path = exercise(name), _path(name, folder)
    if not path.exists():
        return None
    try:
        module = load(path)
    except Exception as err:  # a syntax error, or their code failing as the file is read
        return [f"your file could not be loaded:\n{learner_traceback(err, path)}"], False
    return ex.check(module)


def status(name, folder=None):
    result = grade(name, folder)
    if result is None:
        return "not started"
    lines, passed = result
    if passed:
        return "passes"
    return "fails (not written yet)" if all("not written yet" in line for line in lines) else "fails"


def list_exercises(folder=None):
    lines = [f"exercises (your folder: {Path(folder or DEFAULT_DIR)}):"]
    for number, (name, ex) in enumerate(EXERCISES.items(), 1):
        lines.append(f"  {number}. {name:<11} {status(name, folder):<24} {ex.TITLE}")
    lines.append("minipixel learn start NAME: write an exercise's skeleton; minipixel learn check NAME: grade it")
    return "\n".join(lines)


def start(name, folder=None):
    """Write the skeleton; never overwrite. Returns (message, exit status)."""
    ex, path = exercise(name), _path(name, folder)
    if path.exists():
        return f"{path} exists already: it is your work, left as it is (minipixel learn check {name} grades it)", 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x") as f:  # "x": never replaces a file, even one made just now
        f.write(ex.SKELETON)
    return f"wrote {path}: fill in the functions, then run: minipixel learn check {name}  (chapter: {ex.CHAPTER})", 0


def check(name, folder=None):
    """Grade and say what is right and wrong. Returns (text, exit status)."""
    result = grade(name, folder)
    if result is None:
        return f"{_path(name, folder)} does not exist: minipixel learn start {name} writes it", 1
    lines, passed = result
    verdict = f"{name}: PASSES" if passed else f"{name}: not yet (minipixel learn hint {name} for a hint)"
    return "\n".join(lines + [verdict]), 0 if passed else 1


def hint(name, folder=None):
    """The next hint of ``name``, remembered in the learner's folder; after the last, the last again."""
    hints = exercise(name).HINTS
    state_path = Path(folder or DEFAULT_DIR) / HINTS_FILE
    try:
        shown = json.loads(state_path.read_text())
    except (OSError, ValueError):
        shown = {}
    index = min(int(shown.get(name, 0)), len(hints) - 1)
    shown[name] = index + 1
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(shown, indent=1, sort_keys=True) + "\n")
    more = "" if index + 1 < len(hints) else " (the last one; minipixel learn solution " + name + " says where the library's is)"
    return f"hint {index + 1} of {len(hints)}: {hints[index]}{more}"


def solution(name):
    return f"{name}: the library's own implementation is in {exercise(name).SOLUTION}"
