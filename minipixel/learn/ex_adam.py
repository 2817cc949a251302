"""Exercise "adam": one Adam update with bias correction, in place."""
import numpy as np

from ..optim import Adam
from .grade import Wrong, function, max_error, run_parts

NAME = "adam"
TITLE = "Adam with bias correction: one update of p, m and v, in place"
CHAPTER = "docs/learn/adam.md"
SOLUTION = "minipixel/optim.py, class Adam (methods step and _update)"

SKELETON = '''"""Exercise adam: write adam_step. Check it with: minipixel learn check adam"""
import numpy as np


def adam_step(p, g, m, v, t, lr, betas, eps):
    """One Adam update of the parameters p from their gradient g, in place.

    p, g, m, v: arrays of one shape and float dtype. m and v are the moving
    averages of g and of g * g; they start as zeros, before step 1.
    t: this step's number, 1 for the first. lr: the learning rate;
    betas: (b1, b2), e.g. (0.9, 0.999); eps: e.g. 1e-8.

        m <- b1 m + (1 - b1) g
        v <- b2 v + (1 - b2) g^2
        p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    The divisions by 1 - b^t undo the pull of m and v towards their zero start.
    Update p, m and v in place (the caller keeps the same arrays: write
    m *= ..., m += ..., p -= ..., or m[...] = ...); do not change g. Return nothing.

    Hint: b1, b2 = betas; four in-place lines for m and v, then one for p.
    """
    raise NotImplementedError
'''

HINTS = [
    "The moments, in place: m *= b1; m += (1 - b1) * g; v *= b2; v += (1 - b2) * g * g.",
    "Bias correction: m_hat = m / (1 - b1 ** t), v_hat = v / (1 - b2 ** t); t is 1 at the first step, never 0.",
    "The update: p -= lr * m_hat / (np.sqrt(v_hat) + eps): eps is added after the square root.",
]

# (shape, lr, betas, eps, the gradients' scale): the third has eps on the gradients' scale, where it matters
CASES = [((5,), 1e-2, (0.9, 0.999), 1e-8, 1.0), ((3, 4), 1e-2, (0.8, 0.99), 1e-8, 1.0),
         ((2, 3, 4), 5e-2, (0.9, 0.999), 1e-3, 1e-3), ((4, 1), 1e-3, (0.5, 0.9), 1e-6, 10.0)]
STEPS = 5
DTYPES = (np.float64, np.float32)


def _close(got, want, dtype):
    return max_error(got, want) <= (1e-3 if dtype == np.float32 else 1e-9)


def _call(fn, p, g, m, v, t, lr, betas, eps, name):
    """Run the learner's step; a division by zero is named: a step counted from 0."""
    g_before = g.copy()
    try:
        with np.errstate(all="ignore"):  # an inf or nan is named by the checks, not printed as a warning
            fn(p, g, m, v, t, lr, betas, eps)
    except ZeroDivisionError:
        raise Wrong(f"division by zero at step t = {t}: the steps count from t = 1, so 1 - b1^t and 1 - b2^t "
                    f"are never 0; is t used as t - 1 (a count from 0)? ({name})") from None
    if not np.array_equal(g, g_before):
        raise Wrong(f"adam_step changed g: leave the gradient as it is ({name})")


def _finite(p, t, name):
    if not np.isfinite(p).all():
        raise Wrong(f"inf/nan in p after step t = {t}: the steps count from t = 1, so 1 - b1^t and 1 - b2^t are "
                    f"never 0; is t used as t - 1 (a count from 0)? ({name})")


def _moment_fault(which, got, before, want, g, beta, dtype, t, name):
    if np.array_equal(got, before):
        return (f"{which} is not updated in place: after step {t} the caller's {which} is as before; "
                f"write {which} *= ..., {which} += ... or {which}[...] = ..., not {which} = ... ({name})")
    if which == "v" and (_close(got, beta * before + (1 - beta) * g, dtype)
                         or _close(got, beta * before + (1 - beta) * np.abs(g), dtype)):
        return f"v accumulates g, not g^2: v <- b2 v + (1 - b2) g * g ({name})"
    rule = "m <- b1 m + (1 - b1) g" if which == "m" else "v <- b2 v + (1 - b2) g^2"
    if _close(got, beta * before + g * (g if which == "v" else 1), dtype):
        return f"{which}: the factor (1 - b{1 if which == 'm' else 2}) is missing: {rule} ({name})"
    return f"{which} wrong after step {t}: {rule} ({name})"


def _step_fault(p, before, m, v, t, lr, betas, eps, dtype, name):
    """What a wrong update of p most likely did; m and v are right (they were checked first)."""
    (b1, b2), delta = betas, np.asarray(before, np.float64) - p
    if np.array_equal(p, before):
        return f"p is not updated in place: after step {t} the caller's p is as before; write p -= ... ({name})"

    def update(c1=1 - b1 ** t, c2=1 - b2 ** t, inside=False):
        return lr * (m / c1) / (np.sqrt(v / c2 + eps) if inside else np.sqrt(v / c2) + eps)

    if _close(-delta, update(), dtype):
        return f"p moves along the gradient: p -= lr * m_hat / (sqrt(v_hat) + eps), not += ({name})"
    if _close(delta, update(c1=1), dtype):
        moved = "lr * (1 - b1) instead of about lr" if t == 1 else f"{1 - b1 ** t:.2g} times as far as it should"
        return f"step {t} moves p by {moved}: is m divided by 1 - b1^t? ({name})"
    if _close(delta, update(c2=1), dtype):
        return f"step {t} moves p too far: is v divided by 1 - b2^t before the square root? ({name})"
    if _close(delta, update(c1=1, c2=1), dtype):
        return (f"no bias correction: step {t} moves p by lr (1 - b1^t) / sqrt(1 - b2^t) instead of about lr; "
                f"divide m by 1 - b1^t and v by 1 - b2^t ({name})")
    if _close(delta, update(inside=True), dtype):
        return f"eps is inside the square root: the denominator is sqrt(v_hat) + eps, eps added after ({name})"
    if t > 1 and _close(delta, update(1 - b1 ** (t - 1), 1 - b2 ** (t - 1)), dtype):
        return f"the bias correction uses t - 1: t is this step's number, 1 at the first step ({name})"
    if _close(delta, update(1 - b1 ** (t + 1), 1 - b2 ** (t + 1)), dtype):
        return f"the bias correction uses t + 1: t is this step's number, 1 at the first step ({name})"
    return f"p wrong after step {t}: p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) ({name})"


def _name(case, dtype):
    shape, lr, betas, eps, scale = case
    return f"shape {shape}, lr {lr:g}, betas {betas}, eps {eps:g}, |g| ~ {scale:g}, {np.dtype(dtype).name}"


def _steps(module):
    fn = function(module, "adam_step")
    for dtype in DTYPES:
        for index, case in enumerate(CASES):
            shape, lr, betas, eps, scale = case
            name = _name(case, dtype)
            rng = np.random.default_rng(index)
            p = rng.standard_normal(shape).astype(dtype)
            m, v = np.zeros_like(p), np.zeros_like(p)
            library = Adam({"p": p.copy()}, lr=lr, betas=betas, eps=eps)
            for t in range(1, STEPS + 1):
                g = (scale * rng.standard_normal(shape)).astype(dtype)
                before = [a.copy() for a in (p, m, v)]
                library.step({"p": g.copy()})
                _call(fn, p, g, m, v, t, lr, betas, eps, name)
                for which, got, prior, want, beta in (("m", m, before[1], library.m["p"], betas[0]),
                                                      ("v", v, before[2], library.v["p"], betas[1])):
                    if got.dtype != dtype:
                        raise Wrong(f"{which} changed dtype to {got.dtype}: keep {np.dtype(dtype).name} ({name})")
                    if not _close(got, want, dtype):
                        raise Wrong(_moment_fault(which, got, prior, want, g, beta, dtype, t, name))
                _finite(p, t, name)
                if p.dtype != dtype:
                    raise Wrong(f"p changed dtype to {p.dtype}: keep {np.dtype(dtype).name} ({name})")
                want_delta = before[0].astype(np.float64) - library.params["p"]
                if not _close(before[0].astype(np.float64) - p, want_delta, dtype):
                    m64, v64 = (np.asarray(a, np.float64) for a in (library.m["p"], library.v["p"]))
                    raise Wrong(_step_fault(p, before[0], m64, v64, t, lr, betas, eps, dtype, name))
                # the next step starts from the library's state, whatever the rounding
                p[...], m[...], v[...] = library.params["p"], library.m["p"], library.v["p"]
    return (f"p, m, v same as the library's Adam for steps t = 1..{STEPS} on {len(CASES)} shapes and settings, "
            "float64 and float32")


def _quadratic(module):
    fn = function(module, "adam_step")
    rng = np.random.default_rng(5)
    a, c = rng.uniform(0.5, 5.0, 6), rng.standard_normal(6)
    p = c + rng.standard_normal(6)
    m, v = np.zeros_like(p), np.zeros_like(p)
    f = lambda: float(0.5 * (a * (p - c) ** 2).sum())
    start = f()
    for t in range(1, 101):
        _call(fn, p, a * (p - c), m, v, t, 0.05, (0.9, 0.999), 1e-8, "the quadratic")
        _finite(p, t, "the quadratic")
    if not f() < 0.05 * start:
        raise Wrong(f"100 steps of your Adam (lr 0.05) on f(p) = 0.5 * sum(a (p - c)^2) took f from {start:.3g} "
                    f"to {f():.3g}: it should fall below 5% of where it started; does p move against the gradient?")
    return f"100 steps (lr 0.05) take f(p) = 0.5 * sum(a (p - c)^2) from {start:.3g} to {f():.1e}"


PARTS = [("steps", _steps), ("a quadratic", _quadratic)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
