"""Exercise "conv_loops": the masked convolution and its backward, written as loops over the taps."""
import numpy as np

from ..conv_reference import conv2d_reference, conv2d_reference_backward
from ..gradcheck import numerical_gradient
from ..masks import conv_mask
from .grade import Wrong, as_array, function, max_error, order_violation, order_words, run_parts

NAME = "conv_loops"
TITLE = "the masked convolution and its backward (dx, dW, db), as loops over taps"
CHAPTER = "docs/learn/conv_loops.md"
SOLUTION = ("minipixel/conv_reference.py, functions conv2d_reference (forward, with Wm = W * mask) and "
            "conv2d_reference_backward (backward)")

SKELETON = '''"""Exercise conv_loops: write conv_forward and conv_backward. Check them with: minipixel learn check conv_loops"""
import numpy as np


def conv_forward(x, W, b, mask):
    """A masked convolution, stride 1, "same" size, zero padding.

    x: (B, H, W, C_in); W: (k, k, C_in, C_out), k odd; b: (C_out,);
    mask: (k, k, C_in, C_out) of 0/1. Returns y: (B, H, W, C_out), x's dtype.

    With Wm = W * mask, p = k // 2 and x_pad = x with p zeros on every side
    of the rows and columns:
        y[n, i, j, :] = b + sum over taps (ky, kx) of x_pad[n, i + ky, j + kx, :] @ Wm[ky, kx]
    Tap (ky, kx) reads the input ky - p rows and kx - p columns away: the kernel
    is not flipped.

    Hint: np.pad, then one loop over ky and kx; x_pad[:, ky:ky + H, kx:kx + W] @ Wm[ky, kx]
    does every position at once.
    """
    raise NotImplementedError


def conv_backward(dy, x, W, mask):
    """The gradients of conv_forward: (dx, dW, db).

    dy: (B, H, W, C_out) = dL/dy. dx: the shape of x; dW: the shape of W;
    db: (C_out,). Every product in the forward sum is linear, so:
        dWm[ky, kx] = sum over n, i, j of outer(x_pad[n, i + ky, j + kx], dy[n, i, j])
        db          = sum of dy over n, i, j
        dx_pad[n, i + ky, j + kx] += dy[n, i, j] @ Wm[ky, kx].T   (then drop the padding)
    and since Wm = W * mask, dW = dWm * mask (0 on every masked tap).

    Hint: the same loop over taps as the forward, with the same windows of x_pad.
    """
    raise NotImplementedError
'''

HINTS = [
    "Forward: Wm = W * mask; x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))); y starts as b broadcast to (B, H, W, C_out).",
    "Backward, dW: window = x_pad[:, ky:ky + H, kx:kx + W].reshape(-1, C_in); dW[ky, kx] = window.T @ dy.reshape(-1, C_out).",
    "Backward, dx: add dy @ Wm[ky, kx].T into dx_pad[:, ky:ky + H, kx:kx + W], then return dx_pad[:, p:p + H, p:p + W]; "
    "dW is multiplied by the mask at the end; db = dy.sum(axis=(0, 1, 2)).",
]

# (batch, height, width, C_in, C_out, kernel, mask type, colors)
CASES = [(2, 5, 5, 1, 4, 3, "A", 1), (2, 5, 6, 3, 4, 5, "B", 1), (1, 4, 4, 2, 3, 1, "B", 1),
         (2, 6, 5, 3, 6, 5, "A", 3), (2, 5, 5, 6, 6, 3, "B", 3)]
GRADCHECK_CASE = (1, 4, 4, 2, 3, 3, "B", 1)


def _arrays(case, dtype, seed):
    n, h, w, cin, cout, k, mask_type, colors = case
    rng = np.random.default_rng(seed)
    mask = conv_mask(k, cin, cout, mask_type, colors).astype(dtype)
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    W = rng.standard_normal((k, k, cin, cout)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    dy = rng.standard_normal((n, h, w, cout)).astype(dtype)
    return x, W, b, mask, dy


def _name(case, dtype):
    n, h, w, cin, cout, k, mask_type, _ = case
    return f"{k}x{k} mask {mask_type}, x {(n, h, w, cin)}, C_out {cout}, {np.dtype(dtype).name}"


def _forward_fault(y, x, W, b, mask):
    """What a wrong forward most likely did."""
    if not np.isfinite(y).all():
        return f"y holds NaN or infinity at {int((~np.isfinite(y)).sum())} of its {y.size} entries"
    close = lambda other: np.allclose(y, other, rtol=1e-4, atol=1e-4)
    if close(conv2d_reference(x, (W * mask)[::-1, ::-1], b)):
        return ("it is the kernel flipped (a true convolution): tap (ky, kx) reads the input ky - k//2 rows and "
                "kx - k//2 columns away, so x_pad[:, ky:ky + H, kx:kx + W] goes with Wm[ky, kx]")
    if close(conv2d_reference(x, W, b)):
        return "the mask is not applied: use Wm = W * mask"
    if close(conv2d_reference(x, W * mask, 0 * b)) or close(conv2d_reference(x, W * mask, b) - 2 * b):
        return "the bias: add b once to every output position"
    bad = np.abs(y - conv2d_reference(x, W * mask, b)).max(axis=(0, 3)) > 1e-4
    rows, cols = np.nonzero(bad)
    return f"wrong at {bad.sum()} of {bad.size} positions, first at row {rows[0]}, column {cols[0]}"


def _forward(module):
    fn = function(module, "conv_forward")
    worst = 0.0
    for dtype in (np.float64, np.float32):
        for index, case in enumerate(CASES):
            x, W, b, mask, _ = _arrays(case, dtype, index)
            want = conv2d_reference(x, W * mask, b)
            y = as_array(fn(x.copy(), W.copy(), b.copy(), mask), f"y ({_name(case, dtype)})", want.shape, dtype)
            err = max_error(y, want)
            if err > (1e-4 if dtype == np.float32 else 1e-10):
                raise Wrong(f"y ({_name(case, dtype)}): " + _forward_fault(y, x, W, b, mask))
            worst = max(worst, err) if dtype == np.float64 else worst
    return f"same as the library on {len(CASES)} shapes (kernels 1, 3, 5; masks A and B), float64 and float32 (max error {worst:.0e} in float64)"


def _dW_fault(dW, want, mask):
    bad = np.abs(dW - want) > 1e-6 * (1 + np.abs(want).max())
    taps = sorted({(int(ky), int(kx)) for ky, kx in zip(*np.nonzero(bad.any(axis=(2, 3))))})
    ky, kx = taps[0]
    every = "for every channel" if bad[ky, kx].all() else "for some channels"
    tap = f"dW wrong at tap (ky={ky}, kx={kx}) {every}"
    if all(not mask[t].any() for t in taps) or np.allclose(dW * mask, want):
        return f"{tap}: is the mask applied to dW? (dW = dWm * mask: 0 on masked taps)"
    if np.allclose(dW[::-1, ::-1], want):
        return f"{tap}: dW is flipped; dW[ky, kx] goes with the window x_pad[:, ky:ky + H, kx:kx + W]"
    return f"{tap}: dW[ky, kx] = sum over n, i, j of outer(x_pad[n, i + ky, j + kx], dy[n, i, j])"


def _backward(module):
    fn = function(module, "conv_backward")
    for dtype in (np.float64, np.float32):
        tol = 1e-4 if dtype == np.float32 else 1e-9
        for index, case in enumerate(CASES):
            x, W, b, mask, dy = _arrays(case, dtype, index + 10)
            dx_want, dW_want, db_want = conv2d_reference_backward(dy, x, W * mask, mask)
            out = fn(dy.copy(), x.copy(), W.copy(), mask)
            if not (isinstance(out, tuple) and len(out) == 3):
                raise Wrong("conv_backward must return a triple (dx, dW, db)")
            name = _name(case, dtype)
            if np.shape(out[2]) != db_want.shape:
                raise Wrong(f"db has shape {np.shape(out[2])}, expected {db_want.shape}: "
                            f"db is the sum of dy over batch, rows and columns ({name})")
            dx, dW, db = (as_array(g, f"{n} ({name})", w.shape, dtype)
                          for g, n, w in zip(out, ("dx", "dW", "db"), (dx_want, dW_want, db_want)))
            if max_error(db, db_want) > tol:
                raise Wrong(f"db wrong: it is the sum of dy over batch, rows and columns ({name})")
            if max_error(dW, dW_want) > tol:
                raise Wrong(f"{_dW_fault(dW, dW_want, mask)} ({name})")
            if max_error(dx, dx_want) > tol:
                masked = conv2d_reference_backward(dy, x, W, None)[0]
                why = ("use Wm = W * mask, not W" if np.allclose(dx, masked, rtol=1e-4, atol=1e-4) else
                       "dx_pad[n, i + ky, j + kx] += dy[n, i, j] @ Wm[ky, kx].T, then drop the padding")
                raise Wrong(f"dx wrong: {why} ({name})")
    return f"dx, dW, db same as the library on {len(CASES)} shapes, float64 and float32"


def _gradcheck(module):
    forward, backward = function(module, "conv_forward"), function(module, "conv_backward")
    x, W, b, mask, dy = _arrays(GRADCHECK_CASE, np.float64, 99)
    dx, dW, db = backward(dy.copy(), x.copy(), W.copy(), mask)

    def f():
        return float((forward(x.copy(), W.copy(), b.copy(), mask) * dy).sum())

    errors = {"dx": max_error(dx, numerical_gradient(f, x)), "dW": max_error(dW, numerical_gradient(f, W)),
              "db": max_error(db, numerical_gradient(f, b))}
    wrong = [f"{name} (max relative error {e:.1e})" for name, e in errors.items() if e > 1e-6]
    if wrong:
        raise Wrong("your backward disagrees with central differences of your forward: " + ", ".join(wrong))
    return ("dx, dW, db agree with float64 central differences of your forward (max relative error "
            f"{max(errors.values()):.0e})")


def _order_cause(y, x, W, b, mask, same_position):
    """Why y depends on the present or the future: the likely mistake, as a question when unsure."""
    close = lambda other: np.allclose(y, other, rtol=1e-6, atol=1e-6)
    if close(conv2d_reference(x, W, b)):
        return "is the mask applied to W (Wm = W * mask)?"
    if close(conv2d_reference(x, W * (1 - mask), b)):
        return "the mask is inverted: Wm = W * mask keeps the taps where mask is 1, the past (not 1 - mask)"
    if close(conv2d_reference(x, (W * mask)[::-1, ::-1], b)):
        return ("the kernel is flipped, so the taps read below and right: tap (ky, kx) reads ky - k//2 rows and "
                "kx - k//2 columns away, x_pad[:, ky:ky + H, kx:kx + W] @ Wm[ky, kx]")
    if same_position:
        return "y reads x at its own position through the centre tap: is the mask applied there too (Wm = W * mask)?"
    return ("is the mask applied to W (Wm = W * mask), does tap (ky, kx) read x_pad[:, ky:ky + H, kx:kx + W] (the "
            "kernel not flipped), and is x_pad padded with zeros (np.pad's default)?")


def _order(module):
    fn = function(module, "conv_forward")
    for index, case in enumerate(CASES):
        x, W, b, mask, _ = _arrays(case, np.float64, index + 40)
        name, shape = _name(case, np.float64), x.shape[:3] + (W.shape[3],)
        forward = lambda a: as_array(fn(a.copy(), W.copy(), b.copy(), mask.copy()), f"y ({name})", shape, np.float64)
        found = order_violation(forward, x, case[6], case[7])
        if found:
            cause = _order_cause(forward(x), x, W, b, mask, found[0][:2] == found[1][:2])
            raise Wrong(f"{order_words(found, case[6], case[7], x.shape[3], W.shape[3])}; {cause} ({name})")
    return ("changing x at one sub-pixel (the centre, the first row, the first column, the last) never changes y at "
            f"an earlier one, nor with mask A at its own, on {len(CASES)} shapes (grey and colour groups)")


PARTS = [("forward", _forward), ("backward", _backward), ("gradient check", _gradcheck),
         ("autoregressive order", _order)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
