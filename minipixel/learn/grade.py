"""What every exercise's check shares: load the learner's file, run one part of
the check, and say in one line what is right or wrong.

A part is a function that returns the line to print when it is right and raises
``Wrong("what is wrong")`` when it is not. ``run_parts`` turns the learner's own
exceptions into words: a body that still raises NotImplementedError is "not
written yet"; any other exception is shown as the learner's traceback, with
only the frames of their file (the grader's frames would only be noise).
"""
import traceback
import types
from pathlib import Path

import numpy as np


class Wrong(Exception):
    """A part of a check failed; the message says what is wrong, in the learner's terms."""


class NotWritten(Exception):
    """The learner's file lacks a function the exercise asks for."""


def load(path):
    """The learner's file as a module (compiled afresh each time: no stale bytecode)."""
    path = Path(path)
    module = types.ModuleType(f"minipixel_exercise_{path.stem}")
    module.__file__ = str(path)
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return module


def function(module, name):
    fn = getattr(module, name, None)
    if not callable(fn):
        raise NotWritten(f"{name} is missing from your file")
    return fn


def learner_traceback(err, path):
    """The traceback of ``err`` cut to the frames in the learner's file ``path``."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename) == Path(path)]
    if isinstance(err, SyntaxError) and err.filename and Path(err.filename) == Path(path):
        return "".join(traceback.format_exception_only(type(err), err)).rstrip()
    if not frames:
        return f"{type(err).__name__}: {err}"
    lines = ["Traceback (your code):"] + [line.rstrip() for line in traceback.format_list(frames)]
    return "\n".join(lines + [f"{type(err).__name__}: {err}"])


def _from_learner(err, path):
    return any(Path(f.filename) == Path(path) for f in traceback.extract_tb(err.__traceback__))


def run_parts(parts, module):
    """Run ``[(name, fn)]`` in order, each ``fn(module)`` on the learner's module: ``(lines, passed)``."""
    lines, passed, path = [], True, module.__file__
    for name, fn in parts:
        try:
            lines.append(f"{name}: right: {fn(module)}")
        except Wrong as err:
            lines.append(f"{name}: WRONG: {err}")
            passed = False
        except NotWritten as err:
            lines.append(f"{name}: not written yet ({err})")
            passed = False
        except NotImplementedError as err:
            if _from_learner(err, path):
                lines.append(f"{name}: not written yet (a body still raises NotImplementedError)")
            else:
                lines.append(f"{name}: ERROR in your code:\n{learner_traceback(err, path)}")
            passed = False
        except Exception as err:  # the learner's bug, shown as theirs
            lines.append(f"{name}: ERROR in your code:\n{learner_traceback(err, path)}")
            passed = False
    return lines, passed


def as_array(value, what, shape, dtype=None):
    """``value`` as an ndarray of ``shape`` (and ``dtype``), else Wrong naming ``what``."""
    if not isinstance(value, np.ndarray):
        raise Wrong(f"{what} should be a NumPy array, got {type(value).__name__}")
    if value.shape != tuple(shape):
        raise Wrong(f"{what} has shape {value.shape}, expected {tuple(shape)}")
    if dtype is not None and value.dtype != dtype:
        raise Wrong(f"{what} has dtype {value.dtype}, expected {np.dtype(dtype)} (keep the input's dtype)")
    return value


def max_error(got, want):
    """The largest relative error, entries compared on the scale of the largest (as gradcheck does)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if not (np.isfinite(got).all() and np.isfinite(want).all()):  # a NaN is false with any tolerance: fail it
        return float("inf")
    size = np.abs(got) + np.abs(want)
    if size.max(initial=0) == 0:
        return 0.0
    return float(np.max(np.abs(got - want) / np.maximum(size, 0.01 * size.max())))
