"""The ``minipixel learn`` commands: list, start, check, hint, solution.

The learner's folder (default ``./minipixel-exercises/``) holds one file per
exercise started (``NAME.py``), ``.hints.json``, how many hints of each
exercise were shown, and ``.checks.json``, the last verdict of each slow
exercise (one whose ``SLOW`` is true: the capstone trains a network), which
the list shows instead of grading it again while the file is unchanged.
"""
import hashlib
import json
from pathlib import Path

from . import EXERCISES
from .grade import learner_traceback, load

DEFAULT_DIR = "minipixel-exercises"
HINTS_FILE = ".hints.json"
CHECKS_FILE = ".checks.json"


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


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _digest(name, folder):
    return hashlib.sha256(_path(name, folder).read_bytes()).hexdigest()


def _remember(name, folder, status_now):
    """Keep a slow exercise's verdict, for the file as it is now."""
    path = Path(folder or DEFAULT_DIR) / CHECKS_FILE
    checks = _read_json(path)
    checks[name] = {"sha256": _digest(name, folder), "status": status_now}
    path.write_text(json.dumps(checks, indent=1, sort_keys=True) + "\n")


def _status(lines, passed):
    if passed:
        return "passes"
    waiting = [line for line in lines if ": not run (" not in line]  # parts that wait on one not written
    return "fails (not written yet)" if all("not written yet" in line for line in waiting) else "fails"


def status(name, folder=None):
    if getattr(exercise(name), "SLOW", False) and _path(name, folder).exists():
        last = _read_json(Path(folder or DEFAULT_DIR) / CHECKS_FILE).get(name)
        if last is None:
            return "not checked yet"
        return last["status"] if last.get("sha256") == _digest(name, folder) else "edited since checked"
    result = grade(name, folder)
    if result is None:
        return "not started"
    return _status(*result)


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
    if getattr(exercise(name), "SLOW", False):
        _remember(name, folder, _status(lines, passed))
    verdict = f"{name}: PASSES" if passed else f"{name}: not yet (minipixel learn hint {name} for a hint)"
    return "\n".join(lines + [verdict]), 0 if passed else 1


def hint(name, folder=None):
    """The next hint of ``name``, remembered in the learner's folder; after the last, the last again."""
    hints = exercise(name).HINTS
    state_path = Path(folder or DEFAULT_DIR) / HINTS_FILE
    shown = _read_json(state_path)
    index = min(int(shown.get(name, 0)), len(hints) - 1)
    shown[name] = index + 1
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(shown, indent=1, sort_keys=True) + "\n")
    more = "" if index + 1 < len(hints) else " (the last one; minipixel learn solution " + name + " says where the library's is)"
    return f"hint {index + 1} of {len(hints)}: {hints[index]}{more}"


def solution(name):
    return f"{name}: the library's own implementation is in {exercise(name).SOLUTION}"
