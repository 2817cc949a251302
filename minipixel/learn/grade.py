"""What every exercise's check shares: load the learner's file, run one part of
the check, and say in one line what is right or wrong.

A part is a function that returns the line to print when it is right and raises
``Wrong("what is wrong")`` when it is not (``NotRun`` when it needs an earlier
part to pass first). ``run_parts`` turns the learner's own
exceptions into words: a body that still raises NotImplementedError is "not
written yet"; any other exception is shown as the learner's traceback, with
only the frames of their file (the grader's frames would only be noise).
"""
import traceback
import types
from pathlib import Path

import numpy as np

from ..masks import channel_groups, conv_mask, group_slices


class Wrong(Exception):
    """A part of a check failed; the message says what is wrong, in the learner's terms."""


class NotWritten(Exception):
    """The learner's file lacks a function the exercise asks for."""


class NotRun(Exception):
    """A part that needs an earlier part to pass first (the message says which)."""


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
        except NotRun as err:
            lines.append(f"{name}: not run ({err})")
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


def order_cells(height, width):
    """The input positions an order check changes: the centre, one on the first row, one on the
    first column (where padding and wrapping around show) and the last."""
    return list(dict.fromkeys([(height // 2, width // 2), (0, width // 2), (height // 2, 0),
                               (height - 1, width - 1)]))


def order_violation(forward, x, mask_type, colors, seed=0):
    """The first output sub-pixel that the input at its own or a later sub-pixel changes, or None.

    ``forward``: x (B, H, W, C_in) -> y (B, H, W, C_out). Changing x at position (i, j), colour
    group g (``channel_groups``), may change y only at later positions and, at (i, j), only in the
    output channels that the library's mask lets see group g there: the centre tap of
    ``conv_mask(1, C_in, C_out, mask_type, colors)`` (mask A: the later groups; B: g too).
    Returns ``((row, column, group) of y, (row, column, group) of x)``.
    """
    base = forward(x)
    if not np.isfinite(base).all():
        raise Wrong("the output holds NaN or infinity, so which inputs it depends on cannot be checked")
    _, height, width, c_in = x.shape
    g_in, g_out = channel_groups(c_in, colors), channel_groups(base.shape[3], colors)
    sees = conv_mask(1, c_in, base.shape[3], mask_type, colors)[0, 0] > 0
    tol = 1e-9 * (1 + np.abs(base).max())
    rng = np.random.default_rng(seed)
    for i, j in order_cells(height, width):
        for g in range(colors):
            changed = x.copy()
            changed[:, i, j, g_in == g] += 2 * rng.standard_normal(changed[:, i, j, g_in == g].shape)
            moved = ~(np.abs(forward(changed) - base) <= tol).all(axis=0)  # NaN counts as a change
            earlier = np.zeros(moved.shape, bool)
            earlier.reshape(height * width, -1)[: i * width + j] = True
            earlier[i, j] = ~sees[g_in == g].any(axis=0)
            bad = np.argwhere(moved & earlier)  # raster order: the first is the earliest sub-pixel
            if len(bad):
                oi, oj, channel = (int(v) for v in bad[0])
                return (oi, oj, int(g_out[channel])), (i, j, g)
    return None


def sub_pixel(i, j, group, colors, channels):
    """(2, 3, 1) -> "row 2, column 3, colour 1 (channels 2-3)"; grey has no colour."""
    if colors == 1:
        return f"row {i}, column {j}"
    s = group_slices(channels, colors)[group]
    which = f"channel {s.start}" if s.stop - s.start == 1 else f"channels {s.start}-{s.stop - 1}"
    return f"row {i}, column {j}, colour {group} ({which})"


def order_words(found, mask_type, colors, c_in, c_out, y="y"):
    """What ``order_violation`` found, and the rule it breaks, in the learner's terms (``y``: the output's name)."""
    (oi, oj, go), (i, j, gi) = found
    own = {(False, "A"): ", never on x at its own position (mask A)",
           (False, "B"): " and on x at its own position (mask B)",
           (True, "A"): " and, at its own position, on the colours before its own (mask A)",
           (True, "B"): " and, at its own position, on its own colour and those before (mask B)"}[colors > 1, mask_type]
    return (f"changing only x at ({sub_pixel(i, j, gi, colors, c_in)}) changed {y} at "
            f"({sub_pixel(oi, oj, go, colors, c_out)}): {y} may depend only on x at earlier positions "
            f"(the rows above, the columns left in its row){own}")
