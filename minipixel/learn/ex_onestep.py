"""Exercise "onestep": a masked convolution at one position, and the cached sampler built from it."""
import numpy as np

from .. import sampling
from ..conv_reference import conv2d_reference
from ..masks import conv_mask, live_taps
from .grade import Wrong, as_array, function, max_error, run_parts

NAME = "onestep"
TITLE = "a masked convolution at one position, and the sampler that computes each layer only where it draws"
CHAPTER = "docs/learn/onestep.md"
SOLUTION = ("minipixel/conv.py, MaskedConv2d.start_at and MaskedConv2d.forward_at (one layer at one position); "
            "minipixel/sampling.py, sample_cached (with _sample_cached: the walk over the positions)")

SKELETON = '''"""Exercise onestep: write conv_at and sample_cached. Check them with: minipixel learn check onestep"""
import numpy as np

from minipixel.sampling import draw  # draw(logits, u): one level per row of logits (n, levels), by inverse CDF


def conv_at(x, W, b, mask, i, j):
    """The masked convolution's output at the one position (i, j): (B, C_out), in x's dtype.

    x: (B, H, W, C_in), the layer's whole input map; W and mask: (k, k, C_in, C_out),
    k odd, mask 0/1 (mask A or B of exercise masks, grey); b: (C_out,); i, j: ints.
    The result is the full masked convolution's output at (i, j), that is
    conv2d_reference(x, W * mask, b)[:, i, j] (minipixel/conv_reference.py):

        y = b + sum over the live taps (ky, kx) of x[:, i + ky - k//2, j + kx - k//2] @ (W * mask)[ky, kx]

    A tap (ky, kx) is live where mask[ky, kx] has a nonzero entry. A tap that
    falls outside the image adds nothing (zero padding; a negative index is not
    padding in NumPy, it counts from the end). Read x at the live taps only:
    when sampling, the positions a mask closes (every later position, and
    (i, j) itself under mask A) are not computed yet and may hold anything,
    NaN included, and 0 * NaN is NaN, so multiplying them by 0 is not enough.
    """
    raise NotImplementedError


def sample_cached(layers, u, levels):
    """Grey images drawn from a small masked network, one pixel at a time: (n, H, W) integer labels.

    layers: a list of dicts {"W": (k, k, C_in, C_out), "b": (C_out,), "mask": (k, k, C_in, C_out)}.
    layers[0] is a k x k mask A layer that reads the image (C_in = 1), the
    next ones are mask B layers, and the last is a 1x1 layer with `levels`
    outputs: the logits. A ReLU follows every layer but the last. All the
    arrays share one dtype, layers[0]["W"].dtype: keep the maps in it.
    u: (n, H, W) uniform numbers, one per pixel; levels: the number of grey levels.

    The network's input is the image as values, label / (levels - 1), in an
    (n, H, W, 1) map. Keep one map per layer input, all zero at the start:
    maps[0] the image, maps[l + 1] the output of layer l after its ReLU
    (n, H, W, C_out of layer l). In raster order (rows, then columns), at (i, j):
    compute each layer, first to last, at (i, j) only, with one call
    conv_at(maps[l], W, b, mask, i, j) per layer (len(layers) calls per
    position, no more), and write its output after the ReLU into maps[l + 1][:, i, j].
    The last layer's output, (n, levels), is the logits of pixel (i, j):
    labels[:, i, j] = draw(logits, u[:, i, j]); then write the drawn labels'
    input values into maps[0][:, i, j, 0] before going on to the next pixel.

    The images are those of the naive sampler (a full forward pass for every
    pixel) from the same uniforms: whatever conv_at reads at (i, j) is final.
    """
    raise NotImplementedError
'''

HINTS = [
    "conv_at: p = k // 2; y = np.zeros((B, C_out), dtype=x.dtype) + b; for ky in range(k): for kx in range(k): "
    "skip the tap unless mask[ky, kx].any(); r, c = i + ky - p, j + kx - p; skip it unless 0 <= r < H and "
    "0 <= c < W; y += x[:, r, c] @ (W[ky, kx] * mask[ky, kx]).",
    "conv_at must skip a closed tap, not multiply it by 0: the positions a mask closes are exactly those the "
    "sampler has not computed yet (0 * NaN is NaN). Under mask A that includes (i, j) itself.",
    "sample_cached: maps = [np.zeros((n, H, W, 1), dtype)] plus one np.zeros((n, H, W, layer['W'].shape[3]), "
    "dtype) per layer but the last; for i in range(H): for j in range(W): for l, layer in enumerate(layers): "
    "out = conv_at(maps[l], layer['W'], layer['b'], layer['mask'], i, j).",
    "sample_cached: the layers go first to last (layer l + 1 reads layer l at (i, j) itself, through mask B's "
    "centre tap); maps[l + 1][:, i, j] = np.maximum(out, 0) for all but the last, whose out is the logits as they "
    "are; then labels[:, i, j] = draw(logits, u[:, i, j]) and maps[0][:, i, j, 0] = labels[:, i, j] / (levels - 1).",
]

# (batch, height, width, in channels, out channels, kernel): every position of each is checked
SHAPES = [(2, 6, 5, 3, 2, 5), (2, 5, 6, 2, 3, 3), (3, 4, 4, 2, 3, 1)]
TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
# (kernels, widths, levels, height, width): a small network per entry
NETWORKS = [((3, 3, 1), (5, 5), 4, 5, 5), ((5, 3, 3, 1), (4, 4, 4), 3, 4, 6)]
IMAGES = 8


def _conv_at(x, W, b, mask, i, j, shift=0, flip=False, swap=False, wrap=False):
    """The output at (i, j) over the live taps; with one typical mistake (the keywords), to name it."""
    H, Wd, p = x.shape[1], x.shape[2], W.shape[0] // 2
    y = np.zeros((len(x), W.shape[3]), dtype=x.dtype) + b
    for ky, kx in live_taps(mask):
        dy, dx = (kx, ky) if swap else (ky, kx)
        dy, dx = dy - p + shift, dx - p + shift
        r, c = (i - dy, j - dx) if flip else (i + dy, j + dx)
        inside = (r < H and c < Wd) if wrap else (0 <= r < H and 0 <= c < Wd)
        if inside:
            y += x[:, r, c] @ (W[ky, kx] * mask[ky, kx])
    return y


def _case(shape, mask_type, dtype, seed):
    B, H, Wd, C_in, C_out, k = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, H, Wd, C_in)).astype(dtype)
    W = rng.standard_normal((k, k, C_in, C_out)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype)
    mask = conv_mask(k, C_in, C_out, mask_type).astype(dtype)
    return x, W, b, mask, f"{k}x{k} mask {mask_type}, {H}x{Wd} input, {np.dtype(dtype).name}"


def _cases():
    for shape in SHAPES:
        for mask_type in ("A", "B") if shape[5] > 1 else ("B",):  # a 1x1 mask A has no live tap at all
            for dtype in (np.float64, np.float32):
                yield _case(shape, mask_type, dtype, 100 * shape[5] + ord(mask_type))


def _call_conv_at(fn, x, W, b, mask, i, j, what):
    before = [a.copy() for a in (x, W, b, mask)]
    with np.errstate(all="ignore"):  # a NaN read is named by the part, not warned about
        y = fn(x, W, b, mask, i, j)
    if not all(np.array_equal(a, c, equal_nan=True) for a, c in zip((x, W, b, mask), before)):
        raise Wrong(f"conv_at changed its x, W, b or mask: compute in new arrays ({what})")
    return as_array(y, f"conv_at's output at (row {i}, column {j}) ({what})", (len(x), W.shape[3]), x.dtype)


def _variants(mask):
    """(keywords of _conv_at, the mask it uses, what a learner did to match it)."""
    k, p = mask.shape[0], mask.shape[0] // 2
    opened = mask.copy()
    opened[p, p] = 1.0
    off = "tap (ky, kx) reads x[:, i + ky - k//2, j + kx - k//2] (x_pad[:, i + ky, j + kx] in a copy padded by k//2)"
    found = [({}, np.ones_like(mask), "the mask is not applied: this is the convolution with W alone at (i, j); "
              "the output is conv2d_reference(x, W * mask, b)[:, i, j]: read only the taps where the mask is nonzero")]
    if not mask[p, p].any():
        found.append(({}, opened, "the current position (i, j) is read under mask A: mask A closes the centre tap, "
                      "since the first layer must not see the pixel it predicts: read only the taps where the mask "
                      "is nonzero"))
    for shift in sorted({-1, 1, -p, p} - {0}):  # -p: the padding offset subtracted twice
        why = "the padding offset k//2 counted twice or not at all" if abs(shift) == p else "the offset off by one"
        found.append((dict(shift=shift), mask, f"the taps are off by {shift:+d} rows and columns ({why}): {off}"))
    found += [(dict(flip=True), mask, f"the taps are flipped (above for below, left for right): {off}"),
              (dict(swap=True), mask, f"the tap's row and column are swapped: ky is the row offset, kx the "
               f"column; {off}"),
              (dict(wrap=True), mask, "a tap above or left of the image read the other side of it: in NumPy x[:, -1] "
               "is the last row, not padding; a tap outside the image adds nothing (zero padding)")]
    return found


def _conv(module):
    fn = function(module, "conv_at")
    for x, W, b, mask, what in _cases():
        H, Wd = x.shape[1:3]
        got = np.stack([_call_conv_at(fn, x, W, b, mask, i, j, what) for i in range(H) for j in range(Wd)])
        x64, W64, b64, m64 = (a.astype(np.float64) for a in (x, W, b, mask))
        full = conv2d_reference(x64, W64 * m64, b64)
        want = np.stack([full[:, i, j] for i in range(H) for j in range(Wd)])  # (positions, B, C_out) like got
        tol = TOL[x.dtype]
        if max_error(got, want) < tol:
            continue
        if max_error(got, want - b64) < tol:
            raise Wrong(f"the bias is missing: add b once to every output ({what})")
        for keywords, m, words in _variants(m64):
            like = np.stack([_conv_at(x64, W64, b64, m, i, j, **keywords) for i in range(H) for j in range(Wd)])
            if max_error(got, like) < tol and max_error(like, want) >= tol:
                raise Wrong(f"{words} ({what})")
        errors = [max_error(g, w) for g, w in zip(got, want)]
        at = int(np.argmax(np.array(errors) >= tol))
        raise Wrong(f"conv_at at (row {at // Wd}, column {at % Wd}) is not conv2d_reference(x, W * mask, b) there: "
                    f"relative error {errors[at]:.3g} ({what})")
    return "the full masked convolution's output at every position, kernels 1, 3, 5, masks A and B, float64 and float32"


def _window(mask, i, j, H, Wd):
    """{(row, column): tap} of the input positions the live taps of (i, j) read."""
    p = mask.shape[0] // 2
    taps = {(i + ky - p, j + kx - p): (ky, kx) for ky, kx in live_taps(mask)}
    return {rc: tap for rc, tap in taps.items() if 0 <= rc[0] < H and 0 <= rc[1] < Wd}


def _nan_read(fn, x, W, b, mask, i, j, unread, what):
    """The first unread position whose NaN reaches conv_at's output: the current one first, then raster order."""
    for r, c in sorted(unread, key=lambda rc: (rc != (i, j), rc)):
        one = x.copy()
        one[:, r, c] = np.nan
        if not np.isfinite(_call_conv_at(fn, one, W, b, mask, i, j, what)).all():
            return r, c
    return None


def _live(module):
    fn = function(module, "conv_at")
    for x, W, b, mask, what in sorted(_cases(), key=lambda case: "mask B" in case[4]):  # mask A first
        H, Wd, k, p = x.shape[1], x.shape[2], W.shape[0], W.shape[0] // 2
        for i in range(H):
            for j in range(Wd):
                read = _window(mask, i, j, H, Wd)
                unread = [(r, c) for r in range(H) for c in range(Wd) if (r, c) not in read]
                blank = x.copy()
                for r, c in unread:
                    blank[:, r, c] = np.nan
                got = _call_conv_at(fn, blank, W, b, mask, i, j, what)
                plain = _call_conv_at(fn, x, W, b, mask, i, j, what)  # their own output, right or not
                if np.array_equal(got, plain):
                    continue
                if np.isfinite(got).all():
                    raise Wrong(f"conv_at at (row {i}, column {j}) changed when the input it must not read was NaN, "
                                f"but holds no NaN: read the live taps only, and leave NaN as it is ({what})")
                bad = _nan_read(fn, x, W, b, mask, i, j, unread, what)
                where = f"conv_at at (row {i}, column {j}) read the input at (row {bad[0]}, column {bad[1]})" \
                    if bad else f"conv_at at (row {i}, column {j}) read the input where no live tap is"
                if bad == (i, j):
                    raise Wrong(f"{where}, the current position, under mask A: mask A closes the centre tap (the "
                                f"first layer must not see the pixel it predicts, which is not drawn yet): read x "
                                f"only at the taps where the mask is nonzero ({what})")
                if bad and abs(bad[0] - i) <= p and abs(bad[1] - j) <= p:
                    tap = (bad[0] - i + p, bad[1] - j + p)
                    raise Wrong(f"{where} through tap {tap}, which the mask closes: when sampling, that position is "
                                f"not computed yet and may hold anything (here NaN, and 0 * NaN is NaN): skip the "
                                f"closed taps rather than multiplying them by 0 ({what})")
                raise Wrong(f"{where}, outside the {k}x{k} window around it: only the live taps are read, no "
                            f"further than k//2 = {p} away (taking one position of a whole map reads them all) "
                            f"({what})")
    return "reads only the input its live taps see: everything else set to NaN leaves the output unchanged"


def _network(kernels, widths, levels, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    sizes = [1, *widths, levels]
    layers = []
    for n, k in enumerate(kernels):
        mask = conv_mask(k, sizes[n], sizes[n + 1], "A" if n == 0 else "B")
        fan_in = max(mask[..., 0].sum(), 1.0)  # the inputs one output really sees
        W = rng.standard_normal(mask.shape) * (2.0 if n == len(kernels) - 1 else 1.5) / np.sqrt(fan_in)
        layers.append({"W": W.astype(dtype), "b": (0.3 * rng.standard_normal(sizes[n + 1])).astype(dtype),
                       "mask": mask.astype(dtype)})
    return layers


def _naive(layers, u, levels):
    """The grader's naive sampler: the whole network on the whole image for every pixel."""
    n, H, W = u.shape
    labels = np.zeros(u.shape, dtype=np.int64)
    x = np.zeros((n, H, W, 1), dtype=layers[0]["W"].dtype)
    for i in range(H):
        for j in range(W):
            h = x
            for number, layer in enumerate(layers):
                h = conv2d_reference(h, layer["W"] * layer["mask"], layer["b"])
                h = h if number == len(layers) - 1 else np.maximum(h, 0)
            labels[:, i, j] = sampling.draw(h[:, i, j], u[:, i, j])
            x[:, i, j, 0] = labels[:, i, j] / (levels - 1)
    return labels


def _cached_like(layers, u, levels, order=None, relu=True, relu_last=False, write=True, scale=True):
    """The cached sampler with one typical mistake (the keywords): to name what a wrong answer did."""
    n, H, W = u.shape
    dtype, last = layers[0]["W"].dtype, len(layers) - 1
    labels = np.zeros(u.shape, dtype=np.int64)
    maps = [np.zeros((n, H, W, 1), dtype)] + [np.zeros((n, H, W, a["W"].shape[3]), dtype) for a in layers[:-1]]
    order = order or list(range(len(layers)))
    for i in range(H):
        for j in range(W):
            for number in order:
                a = layers[number]
                out = _conv_at(maps[number], a["W"], a["b"], a["mask"], i, j)
                if number < last:
                    maps[number + 1][:, i, j] = np.maximum(out, 0) if relu else out
                else:
                    logits = np.maximum(out, 0) if relu_last else out
            labels[:, i, j] = sampling.draw(logits, u[:, i, j])
            if write:
                maps[0][:, i, j, 0] = labels[:, i, j] / (levels - 1) if scale else labels[:, i, j]
    return labels


STALE = ("layer l + 1 reads layer l's output at (i, j) itself (mask B's centre tap), so layer l must be computed "
         "there first: compute the layers first to last at each position")


def _sampler_mistakes(count):
    return [(dict(relu_last=True), "a ReLU after the last layer: the logits are the last layer's output as it is "
             "(a ReLU there turns every negative logit into 0); the ReLU goes after every layer but the last"),
            (dict(relu=False), "no ReLU between the layers: every layer but the last is followed by a ReLU, and "
             "its map holds the output after it"),
            (dict(order=list(range(count))[::-1]), f"a layer read a stale value of the layer below at (i, j): {STALE}"),
            (dict(order=list(range(count - 1))[::-1] + [count - 1]),
             f"a layer read a stale value of the layer below at (i, j): {STALE}"),
            (dict(write=False), "the drawn labels never reach the input map: after drawing (i, j) write "
             "maps[0][:, i, j, 0] = labels[:, i, j] / (levels - 1)"),
            (dict(scale=False), "the input map holds the labels themselves: the network's input is "
             "label / (levels - 1), in [0, 1]")]


class _Swapped:
    """The grader's conv_at in place of the learner's while their sample_cached runs.

    So the sampler's parts grade the sampler alone (a wrong conv_at fails its own
    parts only), and ``calls`` records (layer, i, j) of every call, the layer
    known by its masked weights (-1 for weights of no layer).
    """

    def __init__(self, module, layers):
        self.module, self.layers, self.calls = module, layers, []

    def conv_at(self, x, W, b, mask, i, j):
        number = next((n for n, a in enumerate(self.layers) if np.shape(W) == a["W"].shape
                       and np.array_equal(np.asarray(W) * mask, a["W"] * a["mask"])), -1)
        self.calls.append((number, int(i), int(j)))
        return _conv_at(x, W, b, mask, i, j)

    def __enter__(self):
        self.before = self.module.__dict__.get("conv_at")
        self.module.conv_at = self.conv_at
        return self

    def __exit__(self, *exc):
        if self.before is None:
            del self.module.conv_at
        else:
            self.module.conv_at = self.before


def _run(module, layers, u, levels, what):
    fn = function(module, "sample_cached")
    before = u.copy()
    with _Swapped(module, layers) as swapped, np.errstate(all="ignore"):
        got = fn(layers, u, levels)
    if not np.array_equal(u, before):
        raise Wrong(f"sample_cached changed u ({what})")
    as_array(got, f"sample_cached's labels, (n, H, W) ({what})", u.shape)
    if got.dtype.kind not in "iu":
        raise Wrong(f"sample_cached returned {got.dtype}, expected integer labels ({what})")
    return got, swapped.calls


def _networks():
    for number, (kernels, widths, levels, H, W) in enumerate(NETWORKS):
        u = np.random.default_rng(10 + number).random((IMAGES, H, W))
        what = f"{len(kernels)} layers, kernels {', '.join(map(str, kernels))}, {H}x{W}, {levels} levels"
        yield _network(kernels, widths, levels, seed=number), u, levels, what


def _images(module):
    for layers, u, levels, what in _networks():
        got, _ = _run(module, layers, u, levels, what)
        want = _naive(layers, u, levels)
        if np.array_equal(got, want):
            continue
        for keywords, words in _sampler_mistakes(len(layers)):
            like = _cached_like(layers, u, levels, **keywords)
            if np.array_equal(got, like) and not np.array_equal(like, want):
                raise Wrong(f"{words} ({what})")
        k, i, j = (int(a) for a in np.argwhere(got != want)[0])
        raise Wrong(f"image {k} differs from the naive sampler's, first at row {i}, column {j}: yours "
                    f"{int(got[k, i, j])}, the naive sampler {int(want[k, i, j])}: at (i, j) each layer must read "
                    f"maps that hold everything before (i, j), and the previous layer at (i, j) itself ({what})")
    return (f"the naive sampler's {IMAGES} images from the same uniforms (a full pass per pixel), two networks "
            "of 3 and 4 layers, 5x5 and 4x6")


def _calls(module):
    for layers, u, levels, what in _networks():
        _, calls = _run(module, layers, u, levels, what)
        H, W, count = u.shape[1], u.shape[2], len(layers)
        per = len(calls) / (H * W)
        if not calls:
            raise Wrong(f"sample_cached never called conv_at: compute each layer at (i, j) with conv_at ({what})")
        if len(calls) > H * W * count:
            raise Wrong(f"conv_at was called {len(calls)} times for {H * W} pixels: {per:g} per pixel, for "
                        f"{count} layers: compute each layer at (i, j) only, once; its earlier positions are in its "
                        f"map already (whole maps at every pixel are the naive sampler's full passes) ({what})")
        if len(calls) < H * W * count:
            raise Wrong(f"conv_at was called {per:g} times per pixel, for {count} layers: call it once per layer "
                        f"at every pixel, the last 1x1 layer too ({what})")
        for step in range(H * W):
            i, j = divmod(step, W)
            here = calls[step * count : (step + 1) * count]
            wrong = next(((r, c) for _, r, c in here if (r, c) != (i, j)), None)
            if wrong:
                raise Wrong(f"while drawing (row {i}, column {j}), conv_at was called at (row {wrong[0]}, column "
                            f"{wrong[1]}): every layer is computed at the pixel being drawn, in raster order ({what})")
            order = [n for n, _, _ in here]
            if -1 in order:
                raise Wrong(f"at (row {i}, column {j}) conv_at was given weights that are none of the layers': pass "
                            f"each layer's own W, b and mask ({what})")
            if order != list(range(count)):
                raise Wrong(f"at (row {i}, column {j}) the layers were computed in the order "
                            f"{', '.join(map(str, order))}: {STALE} ({what})")
    return "exactly one conv_at per layer at each pixel, the layers first to last, in raster order"


def _order(module):
    layers, u, levels, what = next(_networks())
    base, _ = _run(module, layers, u, levels, what)
    H, W = u.shape[1:]
    for later in (H * W - 2, H * W // 2):  # (4, 3) and (2, 2): one off the diagonal, so a transpose shows
        i, j = divmod(later, W)
        changed = u.copy()
        changed[:, i, j] = 1.0 - u[:, i, j]  # the uniform of one later pixel, nothing else
        got, _ = _run(module, layers, changed, levels, what)
        earlier = (base != got).reshape(len(u), -1)[:, :later].any(axis=0)
        if earlier.any():
            r, c = divmod(int(np.flatnonzero(earlier)[0]), W)
            raise Wrong(f"changing only the uniform of pixel (row {i}, column {j}) changed the earlier pixel (row {r}, "
                        f"column {c}): each pixel's label comes from its own u[:, i, j] and the pixels before it "
                        f"({what})")
    return "changing a later pixel's uniform never changes an earlier pixel"


PARTS = [("conv_at", _conv), ("live taps only", _live), ("images", _images), ("one position per layer", _calls),
         ("autoregressive order", _order)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
