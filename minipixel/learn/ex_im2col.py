"""Exercise "im2col": the masked im2col over the live taps, and col2im, its adjoint."""
import numpy as np

from ..conv import MaskedConv2d
from ..im2col import col2im_loop, im2col_loop
from ..masks import conv_mask, live_taps
from .grade import Wrong, as_array, function, max_error, order_violation, order_words, run_parts

NAME = "im2col"
TITLE = "masked im2col over the live taps, and col2im, its adjoint"
CHAPTER = "docs/learn/im2col.md"
SOLUTION = ("minipixel/im2col.py, functions im2col_loop and col2im_loop (the live taps: live_taps in "
            "minipixel/masks.py; the matmul that uses them: MaskedConv2d.forward in minipixel/conv.py)")

SKELETON = '''"""Exercise im2col: write im2col and col2im. Check them with: minipixel learn check im2col"""
import numpy as np


def im2col(x, taps, kernel):
    """Copy, for every output position, the input values its live taps read.

    x: (B, H, W, C); taps: a list of T kernel positions (ky, kx), 0 <= ky, kx < kernel
    (kernel odd); returns cols: (B, H, W, T, C), x's dtype. With c = kernel // 2:
        cols[n, i, j, t] = x[n, i + ky - c, j + kx - c]   for (ky, kx) = taps[t],
    and 0 where that position lies outside the image ("same" zero padding).
    Tap (ky, kx) reads ky - c rows and kx - c columns away: with a causal mask
    the live taps are above or left of the centre, the past. Keep the taps in
    the order given: column t of cols is taps[t]. Do not change x.

    Hint: a zero-padded copy of x, then one slice per tap.
    """
    raise NotImplementedError


def col2im(cols, taps, kernel, shape):
    """The adjoint of im2col: send every entry of cols back where it was copied from.

    cols: (B, H, W, T, C); shape: x's shape (B, H, W, C); returns dx: shape, cols' dtype.
        dx[n, i + ky - c, j + kx - c] += cols[n, i, j, t]   for every t, i, j inside the image
    One input position is read by several taps (through different output
    positions): their entries add up. Entries of taps outside the image are dropped.

    Hint: the same slices as im2col, on a zero-padded dx, with += ; then drop the padding.
    """
    raise NotImplementedError
'''

HINTS = [
    "im2col: p = kernel // 2; x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) pads with zeros; tap (ky, kx) "
    "reads x_pad[:, ky:ky + H, kx:kx + W] (x_pad's row ky + i is x's row i + ky - p).",
    "im2col: cols = np.zeros((B, H, W, len(taps), C), dtype=x.dtype); for t, (ky, kx) in enumerate(taps): "
    "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W].",
    "col2im: dx_pad = np.zeros((B, H + 2p, W + 2p, C), cols.dtype); dx_pad[:, ky:ky + H, kx:kx + W] += "
    "cols[:, :, :, t] for each tap (+=: taps overlap); return dx_pad[:, p:p + H, p:p + W].",
]

# (batch, height, width, channels, kernel, mask type, colors, C_out); the last is smaller than its kernel
CASES = [(2, 5, 5, 1, 3, "A", 1, 4), (2, 5, 6, 3, 3, "B", 3, 6), (1, 6, 5, 2, 5, "A", 1, 3),
         (2, 4, 7, 3, 5, "B", 3, 3), (1, 7, 6, 1, 7, "A", 1, 2), (1, 3, 4, 2, 7, "B", 1, 2)]
CONV_CASES = [CASES[1], CASES[2], CASES[4]]


def _taps(case):
    _, _, _, c, k, mask_type, colors, cout = case
    return live_taps(conv_mask(k, c, cout, mask_type, colors))


def _name(case, dtype):
    n, h, w, c, k, mask_type, _, _ = case
    return f"{k}x{k} mask {mask_type}, x {(n, h, w, c)}, {np.dtype(dtype).name}"


def _signed(v):
    return f"+{v}" if v > 0 else str(v)


def _away(oy, ox):
    """(+1, -2) -> "1 row below, 2 columns left"."""
    rows = f"{abs(oy)} row{'s' * (abs(oy) != 1)} {'below' if oy > 0 else 'above'}" if oy else ""
    cols = f"{abs(ox)} column{'s' * (abs(ox) != 1)} {'right' if ox > 0 else 'left'}" if ox else ""
    return ", ".join(w for w in (rows, cols) if w) or "the centre"


def _shift(x, oy, ox, mode):
    """out[:, i, j] = x[:, i + oy, j + ox], outside the image: 0, the nearest edge value, or wrapped around."""
    _, H, W, _ = x.shape
    if mode == "wrap":
        return np.roll(x, (-oy, -ox), axis=(1, 2))
    rows, cols = np.arange(H) + oy, np.arange(W) + ox
    out = x[:, np.clip(rows, 0, H - 1)][:, :, np.clip(cols, 0, W - 1)]
    if mode == "zero":
        out = out * (((rows >= 0) & (rows < H))[:, None] & ((cols >= 0) & (cols < W))[None, :])[None, :, :, None]
    return out


PADDING = {"edge": "it repeats the edge values (np.pad's mode='edge'?)", "wrap": "it wraps around (np.roll?)"}


def _im2col_fault(got, want, x, taps, kernel):
    """Which tap is wrong, and what it read instead."""
    c = kernel // 2
    t = next(t for t in range(len(taps)) if not np.array_equal(got[..., t, :], want[..., t, :]))
    ky, kx = taps[t]
    tap = f"tap (ky={ky}, kx={kx})"
    holds = [[u for u in range(len(taps)) if np.array_equal(got[..., s, :], want[..., u, :])] for s in range(len(taps))]
    if all(holds) and sorted(u[0] for u in holds) == list(range(len(taps))):  # the right columns, shuffled
        oy, ox = taps[holds[t][0]]
        return (f"{tap}: column t={t} of cols holds tap (ky={oy}, kx={ox})'s values: the taps are in the wrong order "
                f"(column t of cols is taps[t], in the order given)")
    for mode in ("zero", "edge", "wrap"):
        for oy in range(-kernel + 1, kernel):
            for ox in range(-kernel + 1, kernel):
                if not np.array_equal(got[..., t, :], _shift(x, oy, ox, mode)):
                    continue
                words = []
                if (oy, ox) != (ky - c, kx - c):
                    words.append(f"reads the wrong position: off by ({_signed(oy - ky + c)}, {_signed(ox - kx + c)})")
                    if (oy, ox) == (c - ky, c - kx):
                        words.append(f"the shift's sign is flipped, so it reads the future ({_away(oy, ox)}): "
                                     "tap (ky, kx) reads x[i + ky - c, j + kx - c]")
                if mode != "zero":
                    words.append(f"padding is not zero: {PADDING[mode]}; a position outside the image reads 0")
                if words:
                    return f"{tap}{' ' if words[0].startswith('reads') else ': '}" + "; ".join(words)
    bad = (got[..., t, :] != want[..., t, :]).any(axis=(0, 3))
    outside = _shift(np.ones_like(x[:1, :, :, :1]), ky - c, kx - c, "zero")[0, :, :, 0] == 0
    if (bad <= outside).all():
        return f"{tap}: padding is not zero: where the tap falls outside the image, cols must be 0"
    rows, cols = np.nonzero(bad)
    return (f"{tap} wrong at {bad.sum()} of {bad.size} positions, first at row {rows[0]}, column {cols[0]}: "
            f"cols[n, i, j, t] = x[n, i + ky - c, j + kx - c] (c = kernel // 2), 0 outside the image")


def _arrays(case, dtype, seed):
    n, h, w, c, k, _, _, _ = case
    rng = np.random.default_rng(seed)
    taps = _taps(case)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    cols = rng.standard_normal((n, h, w, len(taps), c)).astype(dtype)
    return x, cols, taps, k


def _im2col(module):
    fn = function(module, "im2col")
    for dtype in (np.float64, np.float32):
        for index, case in enumerate(CASES):
            x, _, taps, k = _arrays(case, dtype, index)
            want = im2col_loop(x, taps, k)
            given = x.copy()
            got = as_array(fn(given, list(taps), k), f"cols ({_name(case, dtype)})", want.shape, dtype)
            if not np.array_equal(given, x):
                raise Wrong(f"im2col changed x ({_name(case, dtype)}): copy out of it, never write into it")
            if not np.array_equal(got, want):
                raise Wrong(f"im2col ({_name(case, dtype)}): " + _im2col_fault(got, want, x, taps, k))
    return (f"same as the library on {len(CASES)} shapes (kernels 3, 5, 7; masks A and B; live taps only), "
            "float64 and float32")


def _overwritten(cols, taps, kernel, shape):
    """col2im with = for += : the last tap to reach a position wins."""
    dx, c = np.zeros(shape, cols.dtype), kernel // 2
    for t, (ky, kx) in enumerate(taps):
        block = dx[:, max(0, ky - c):, max(0, kx - c):]
        src = cols[:, max(0, c - ky):, max(0, c - kx):, t]
        h, w = min(block.shape[1], src.shape[1]), min(block.shape[2], src.shape[2])
        block[:, :h, :w] = src[:, :h, :w]
    return dx


def _col2im(module):
    fn = function(module, "col2im")
    worst = 0.0
    for dtype in (np.float64, np.float32):
        tol = 1e-5 if dtype == np.float32 else 1e-12
        for index, case in enumerate(CASES):
            x, cols, taps, k = _arrays(case, dtype, index + 10)
            want = col2im_loop(cols, taps, k)
            name = _name(case, dtype)
            got = as_array(fn(cols.copy(), list(taps), k, x.shape), f"dx ({name})", x.shape, dtype)
            err = max_error(got, want)
            if err <= tol:
                worst = max(worst, err) if dtype == np.float64 else worst
                continue
            close = lambda other: max_error(got, other) <= tol
            c = k // 2
            if close(_overwritten(cols, taps, k, x.shape)):
                raise Wrong(f"col2im overwrites instead of adding where taps overlap ({name}): an input position "
                            "read by several taps gets the sum of their entries (+=, not =)")
            if close(col2im_loop(cols, [(2 * c - ky, 2 * c - kx) for ky, kx in taps], k)):
                raise Wrong(f"col2im sends the entries the wrong way: the shift's sign is flipped ({name}); "
                            "cols[n, i, j, t] came from x[n, i + ky - c, j + kx - c]")
            orders = (taps[::-1], sorted(taps, key=lambda tap: tap[::-1]))  # reversed, column by column
            if any(close(col2im_loop(cols, list(order), k)) for order in orders):
                raise Wrong(f"col2im: the taps are in the wrong order ({name}): column t of cols belongs to taps[t]")
            diff = np.nan_to_num(np.abs(got - want).max(axis=(0, 3)), nan=np.inf)
            bad = diff > tol * (1 + np.abs(want).max())
            bad = bad if bad.any() else diff == diff.max()
            rows, cs = np.nonzero(bad)
            raise Wrong(f"col2im ({name}): dx wrong at {bad.sum()} of {bad.size} positions, first at row {rows[0]}, "
                        f"column {cs[0]}: dx[n, i + ky - c, j + kx - c] += cols[n, i, j, t] where that is inside "
                        "the image")
    return f"same as the library on {len(CASES)} shapes, float64 and float32 (max error {worst:.0e} in float64)"


def _adjoint(module):
    im2col, col2im = function(module, "im2col"), function(module, "col2im")
    worst = 0.0
    for index, case in enumerate(CASES):
        x, cols, taps, k = _arrays(case, np.float64, index + 20)
        name = _name(case, np.float64)
        left = float(np.sum(as_array(im2col(x.copy(), list(taps), k), f"cols ({name})", cols.shape) * cols))
        right = float(np.sum(x * as_array(col2im(cols.copy(), list(taps), k, x.shape), f"dx ({name})", x.shape)))
        err = abs(left - right) / max(1.0, abs(left), abs(right))
        if not err <= 1e-10:  # NaN fails too
            raise Wrong(f"col2im is not the adjoint of your im2col ({name}): <im2col(x), c> = "
                        f"{left:.6g} but <x, col2im(c)> = {right:.6g}; col2im must send each entry back exactly "
                        "where im2col copied it from")
        worst = max(worst, err)
    return f"<im2col(x), c> = <x, col2im(c)> on {len(CASES)} shapes in float64 (max relative error {worst:.0e})"


def _layer(case, rng):
    """The library's layer with random W (zero on masked taps) and b, and Wm: its live taps of W * mask,
    one row per (tap, input channel), (T * C, C_out)."""
    _, _, _, c, k, mask_type, colors, cout = case
    layer = MaskedConv2d(c, cout, k, mask_type, colors, dtype=np.float64)
    layer.params["W"][...] = rng.standard_normal(layer.params["W"].shape) * layer.mask
    layer.params["b"][...] = rng.standard_normal(cout)
    Wm = np.stack([(layer.params["W"] * layer.mask)[ky, kx] for ky, kx in layer.taps]).reshape(-1, cout)
    return layer, Wm


def _through(im2col, x, layer, Wm, name):
    """The convolution made of the learner's im2col: im2col(x) @ Wm + b, (B, H, W, C_out)."""
    n, h, w, c = x.shape
    cols = as_array(im2col(x.copy(), list(layer.taps), layer.kernel), f"cols ({name})", (n, h, w, len(layer.taps), c))
    return (cols.reshape(n * h * w, -1) @ Wm + layer.params["b"]).reshape(n, h, w, -1)


def _as_conv(module):
    im2col, col2im = function(module, "im2col"), function(module, "col2im")
    for index, case in enumerate(CONV_CASES):
        n, h, w, c, k, mask_type, colors, cout = case
        rng = np.random.default_rng(index + 30)
        layer, Wm = _layer(case, rng)
        x, dy = rng.standard_normal((n, h, w, c)), rng.standard_normal((n, h, w, cout))
        taps, name = layer.taps, _name(case, np.float64)
        if not max_error(_through(im2col, x, layer, Wm, name), layer.forward(x)) <= 1e-10:
            raise Wrong(f"im2col(x) as a (B*H*W, T*C) matrix, times the live taps of W * mask as a (T*C, C_out) "
                        f"matrix, plus b, is not MaskedConv2d's output ({name})")
        dcols = (dy.reshape(n * h * w, cout) @ Wm.T).reshape(n, h, w, len(taps), c)
        dx = as_array(col2im(dcols, list(taps), k, x.shape), f"dx ({name})", x.shape)
        if not max_error(dx, layer.backward(dy)) <= 1e-10:
            raise Wrong(f"col2im(dy @ Wm.T) is not MaskedConv2d's dx ({name})")
    return (f"im2col(x) @ Wm + b is MaskedConv2d's forward and col2im(dy @ Wm.T) its dx, on {len(CONV_CASES)} "
            "layers: the whole convolution is one matmul over the live taps")


def _order_cause(im2col, x, taps, kernel, found):
    """Which tap of the output position read the later input, and where that tap should read."""
    (oi, oj, _), (i, j, _) = found
    changed = x.copy()
    changed[:, i, j] += 1.0
    moved = (im2col(changed, list(taps), kernel) != im2col(x.copy(), list(taps), kernel))[:, oi, oj].any(axis=(0, 2))
    if not moved.any():
        return "cols[n, i, j, t] = x[n, i + ky - c, j + kx - c], 0 outside the image"
    c = kernel // 2
    ky, kx = taps[int(np.flatnonzero(moved)[0])]
    read, should = (i - oi, j - oj), (ky - c, kx - c)
    tap = (f"tap (ky={ky}, kx={kx}) at row {oi}, column {oj} read x at row {i}, column {j} "
           f"({_away(*read) if read != (0, 0) else 'its own position'})")
    if read == should:
        return f"{tap}, its place, but with the channels out of order: cols[n, i, j, t] copies x's channels as they are"
    outside = not (0 <= oi + ky - c < x.shape[1] and 0 <= oj + kx - c < x.shape[2])
    why = (", the shift's sign flipped" if read == (-should[0], -should[1]) else
           ", the place of another tap (are the taps in the order given?)" if (read[0] + c, read[1] + c) in taps else "")
    return (f"{tap}{why}; it reads {_away(*should)}{', outside the image, so 0' if outside else ''}: "
            "cols[n, i, j, t] = x[n, i + ky - c, j + kx - c]")


def _order(module):
    im2col = function(module, "im2col")
    for index, case in enumerate(CASES):
        layer, Wm = _layer(case, np.random.default_rng(index + 40))
        x = np.random.default_rng(index + 50).standard_normal(case[:4])
        name, mask_type, colors = _name(case, np.float64), case[5], case[6]
        found = order_violation(lambda a: _through(im2col, a, layer, Wm, name), x, mask_type, colors)
        if found:
            words = order_words(found, mask_type, colors, x.shape[3], Wm.shape[1])
            raise Wrong(f"through im2col(x) @ Wm + b, {words}; {_order_cause(im2col, x, layer.taps, case[4], found)} "
                        f"({name})")
    return (f"through im2col(x) @ Wm + b, changing x at one sub-pixel (the centre, the first row, the first column, "
            f"the last) never changes y at an earlier one, nor with mask A at its own, on {len(CASES)} shapes")


PARTS = [("im2col", _im2col), ("col2im", _col2im), ("adjoint", _adjoint), ("as a convolution", _as_conv),
         ("autoregressive order", _order)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
