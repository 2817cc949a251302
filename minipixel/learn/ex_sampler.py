"""Exercise "sampler": draw a level by inverse CDF, and the naive sampler, one sub-pixel per forward pass."""
import numpy as np

from .. import sampling
from ..data import labels_to_inputs
from ..model import PixelCNN, PixelCNNConfig
from .grade import Wrong, function, run_parts

NAME = "sampler"
TITLE = "draw a level by inverse CDF, and sample an image one sub-pixel at a time"
CHAPTER = "docs/learn/sampler.md"
SOLUTION = "minipixel/sampling.py, functions draw and sample_naive (with _start)"

SKELETON = '''"""Exercise sampler: write draw and sample_naive. Check them with: minipixel learn check sampler"""
import numpy as np

from minipixel.data import labels_to_inputs  # labels -> the network's inputs: labels / (levels - 1)


def draw(logits, u, temperature=1.0):
    """One level per row of logits, by inverse CDF: (n,) ints.

    logits: (n, levels) float; u: (n,) uniform numbers in [0, 1), drawn before.
    temperature: divides the logits (< 1 sharpens, > 1 flattens); 0 takes the argmax of each row.

    In float64: p = exp(z - max z) per row (not normalised), cdf = its cumulative
    sum, total = cdf's last entry. A row's level is the first level whose
    cumulative probability exceeds u strictly: the number of levels with
    cdf <= u * total (scale u by the total rather than dividing p by it). So
    level k takes u in [cdf[k-1], cdf[k]) / total, exactly its probability, and
    a level of probability 0 is never drawn. Clip the result to levels - 1: a
    guard for u * total rounding up to the total (u = 1 must give the last level).
    """
    raise NotImplementedError


def sample_naive(model, n, u):
    """n images from model, one sub-pixel at a time: (n, H, W, C) integer labels.

    model.forward(x) takes x: (n, H, W, C) inputs of model.dtype (labels_to_inputs(
    labels, levels, model.dtype)) and gives logits (n, H, W, C, levels), where the
    logits of sub-pixel (i, j, c) depend only on the sub-pixels before it.
    levels = model.config.levels; u: (n, H, W, C) uniform numbers, one per sub-pixel.

    Start from all labels 0. In raster order (rows, then columns, then colours)
    run the whole model on the current inputs, draw sub-pixel (i, j, c) of every
    image with draw(its logits, u[:, i, j, c]), and write the drawn label and
    its input value before going on to the next sub-pixel.
    """
    raise NotImplementedError
'''

HINTS = [
    "draw: z = logits.astype(np.float64) / temperature (argmax first when temperature == 0); "
    "p = np.exp(z - z.max(axis=1, keepdims=True)); cdf = np.cumsum(p, axis=1).",
    "draw: the level is (cdf <= u[:, None] * cdf[:, -1:]).sum(axis=1): <=, so a u on a boundary cdf[k] goes to "
    "the level above, whose probability is not 0; then np.minimum(level, levels - 1).",
    "sample_naive: labels = np.zeros(u.shape, np.uint8); x = labels_to_inputs(labels, L, model.dtype); "
    "for i in range(H): for j in range(W): for c in range(C): one model.forward(x) for each sub-pixel, "
    "even the colours of one pixel (green must see the red just drawn).",
    "sample_naive: after drawing, labels[:, i, j, c] = draw(model.forward(x)[:, i, j, c], u[:, i, j, c]) and "
    "x[:, i, j, c] = labels_to_inputs(labels[:, i, j, c], L, model.dtype).",
]

ROWS = 600  # random rows per (levels, temperature)
LEVELS = (2, 8, 256)
TEMPERATURES = (0.5, 2.0, 0.0)
GREY = PixelCNNConfig(height=4, width=4, channels=1, levels=4, filters=8, blocks=1)
COLOUR = PixelCNNConfig(height=3, width=3, channels=3, levels=4, filters=8, blocks=1)
IMAGES = 12


class _Bar:  # the library's samplers report progress; the grader has none to show
    def update(self, n):
        pass


def _rows(levels, dtype, seed):
    rng = np.random.default_rng(seed)
    return (3.0 * rng.standard_normal((ROWS, levels))).astype(dtype), rng.random(ROWS)


def _call_draw(fn, logits, u, temperature, what):
    before_l, before_u = logits.copy(), u.copy()
    with np.errstate(all="ignore"):  # inf/nan are named below, not warned about
        got = fn(logits, u, temperature) if temperature != 1.0 else fn(logits, u)
    if not (np.array_equal(logits, before_l, equal_nan=True) and np.array_equal(u, before_u)):
        raise Wrong(f"draw changed its logits or u: compute in new arrays ({what})")
    if not isinstance(got, np.ndarray):
        raise Wrong(f"draw should return a NumPy array of levels, got {type(got).__name__} ({what})")
    if got.shape != (len(u),):
        raise Wrong(f"draw returned shape {got.shape}, expected ({len(u)},): one level per row ({what})")
    if got.dtype.kind not in "iu":
        raise Wrong(f"draw returned {got.dtype}, expected integer levels ({what})")
    return got


def _draw_like(logits, u, temperature, dtype=np.float64, strict=False, multiply=False):
    """The library's draw, or it with one typical mistake: to name what a wrong answer did."""
    z = logits.astype(dtype)
    with np.errstate(all="ignore"):
        z = z * temperature if multiply else z / temperature
        p = np.exp(z - z.max(axis=1, keepdims=True))
        cdf = np.cumsum(p, axis=1)
        scaled = (u[:, None] * cdf[:, -1:]).astype(dtype)
        label = (cdf < scaled if strict else cdf <= scaled).sum(axis=1)
    return np.minimum(label, logits.shape[1] - 1)


def _first_wrong(got, want, logits, u, what):
    k = int(np.flatnonzero(got != want)[0])
    return (f"row {k}: drew level {int(got[k])}, the library level {int(want[k])} "
            f"(u = {u[k]:.17g}; {what})")


def _draw(module):
    fn = function(module, "draw")
    for dtype in (np.float64, np.float32):
        for levels in LEVELS:
            logits, u = _rows(levels, dtype, levels)
            what = f"{levels} levels, temperature 1, {np.dtype(dtype).name} logits"
            got = _call_draw(fn, logits, u, 1.0, what)
            want = sampling.draw(logits, u)
            if np.array_equal(got, want):
                continue
            if np.array_equal(got, logits.argmax(axis=1)):
                raise Wrong(f"draw took the argmax: at temperature 1 it draws by inverse CDF from u ({what})")
            if np.array_equal(got, _draw_like(logits, u, 1.0, dtype=np.float32)) and dtype == np.float32:
                raise Wrong(f"draw computed in float32: convert the logits to float64 first, as the library "
                            f"does; {_first_wrong(got, want, logits, u, what)}")
            if np.array_equal(got, want + 1) or np.array_equal(got, want - 1):
                raise Wrong(f"every level is off by one: the level is the number of levels with cdf <= u * total "
                            f"(the first level whose cumulative probability exceeds u) ({what})")
            raise Wrong(f"not the inverse CDF: {_first_wrong(got, want, logits, u, what)}")
    return (f"same levels as the library on {ROWS} rows each of levels {', '.join(map(str, LEVELS))}, "
            "float64 and float32 logits")


def _boundary_rows():
    """Rows whose u sits exactly on a cumulative boundary, some beside levels of probability 0.

    exp(0) = 1 and exp(-inf) = 0 exactly, so every cdf here is a whole number and u * total is exact.
    """
    z, inf = 0.0, -np.inf
    rows = [([inf, z, z], 0.0), ([z, z, z, z], 0.25), ([z, z, z, z], 0.5), ([z, z, z, z], 0.75), ([z, z, z, z], 0.0),
            ([z, inf, z], 0.5), ([z, inf, inf, z], 0.5), ([z, z], 0.5),
            ([inf, inf, z, z, inf, z, z], 0.5), ([z, z, z], 1.0)]
    return np.array([r + [inf] * (7 - len(r)) for r, _ in rows]), np.array([u for _, u in rows]), \
        [len(r) for r, _ in rows]


def _boundaries(module):
    fn = function(module, "draw")
    logits, u, sizes = _boundary_rows()
    for index, (row, size) in enumerate(zip(logits, sizes)):
        one, v = row[None, :size], u[index : index + 1]
        got = _call_draw(fn, one.copy(), v.copy(), 1.0, f"logits {row[:size].tolist()}, u = {v[0]}")
        want = sampling.draw(one, v)
        if got[0] == want[0]:
            continue
        p = np.exp(row[:size])
        where = f"logits {row[:size].tolist()} (probabilities {(p / p.sum()).tolist()}), u = {v[0]}"
        if not 0 <= got[0] < size:
            raise Wrong(f"drew level {int(got[0])} of {size} at {where}: clip the level to levels - 1 "
                        "(u * total can round up to the total)")
        if p[got[0]] == 0:
            raise Wrong(f"drew level {int(got[0])}, of probability 0, at {where}: on a boundary u * total == "
                        "cdf[k] the level is the one above (count cdf <= u * total, with <=, not <)")
        if got[0] == _draw_like(one, v, 1.0, strict=True)[0]:
            raise Wrong(f"drew level {int(got[0])}, the library {int(want[0])}, at {where}: u exactly on a "
                        "cumulative boundary goes to the level above: count cdf <= u * total (<=, not <)")
        raise Wrong(f"drew level {int(got[0])}, the library {int(want[0])}, at {where}")
    return f"right on {len(sizes)} rows with u exactly on a cumulative boundary (levels of probability 0, u = 1)"


def _temperature(module):
    fn = function(module, "draw")
    for temperature in TEMPERATURES:
        for levels in LEVELS:
            logits, u = _rows(levels, np.float32, 100 + levels)
            what = f"{levels} levels, temperature {temperature}"
            got = _call_draw(fn, logits, u, temperature, what)
            want = sampling.draw(logits, u, temperature)
            if np.array_equal(got, want):
                continue
            if temperature == 0:
                raise Wrong(f"temperature 0 must take each row's argmax (no division by 0): "
                            f"{_first_wrong(got, want, logits, u, what)}")
            if np.array_equal(got, _draw_like(logits, u, temperature, multiply=True)):
                raise Wrong(f"the temperature multiplies the logits: it divides them (logits / temperature: "
                            f"below 1 sharpens, above 1 flattens) ({what})")
            if np.array_equal(got, sampling.draw(logits, u)):
                raise Wrong(f"the temperature is ignored: divide the logits by it ({what})")
            raise Wrong(f"wrong at temperature {temperature}: {_first_wrong(got, want, logits, u, what)}")
    return "same levels as the library at temperatures 0 (argmax), 0.5 and 2, levels 2, 8, 256"


def _model(cfg):
    return PixelCNN(cfg, seed=3)


def _uniforms(cfg, seed):
    return np.random.default_rng(seed).random((IMAGES, cfg.height, cfg.width, cfg.channels))


def _naive_like(model, u, columns_first=False, per_pixel=False, colours_outer=False, update=True):
    """The naive sampler with one typical mistake (the library's draw): to name what a wrong answer did."""
    L, dtype = model.config.levels, model.dtype
    n, H, W, C = u.shape
    labels = np.zeros(u.shape, np.uint8)
    x = labels_to_inputs(labels, L, dtype)
    cells = [(i, j) for i in range(H) for j in range(W)]
    if columns_first:
        cells = sorted(cells, key=lambda cell: (cell[1], cell[0]))
    order = [(i, j, c) for c in range(C) for i, j in cells] if colours_outer else \
        [(i, j, c) for i, j in cells for c in range(C)]
    logits = None
    for i, j, c in order:
        if not (per_pixel and c > 0):
            logits = model.forward(x)
        labels[:, i, j, c] = sampling.draw(logits[:, i, j, c], u[:, i, j, c])
        if update:
            x[:, i, j, c] = labels_to_inputs(labels[:, i, j, c], L, dtype)
    return labels


def _call_sample(fn, model, u, what):
    before = u.copy()
    with np.errstate(all="ignore"):
        got = fn(model, len(u), u)
    if not np.array_equal(u, before):
        raise Wrong(f"sample_naive changed u ({what})")
    if not isinstance(got, np.ndarray):
        raise Wrong(f"sample_naive should return a NumPy array of labels, got {type(got).__name__} ({what})")
    if got.shape != u.shape:
        raise Wrong(f"sample_naive returned shape {got.shape}, expected {u.shape}: (n, H, W, C) ({what})")
    if got.dtype.kind not in "iu":
        raise Wrong(f"sample_naive returned {got.dtype}, expected integer labels ({what})")
    return got


MODEL_MISTAKES = [  # (the mistake, its words)
    (dict(columns_first=True), "the raster order runs down the columns first: it is rows, then columns, then "
     "colours (for i in rows: for j in columns: for c in colours)"),
    (dict(per_pixel=True), "all the colours of a pixel come from one forward pass: run the model again for "
     "each colour, so that green sees the red just drawn and blue both"),
    (dict(colours_outer=True), "the colours are the outer loop: each pixel's colours are drawn together, red, "
     "green, blue, before the next pixel"),
    (dict(update=False), "the drawn labels never reach the model's input: after each draw write "
     "x[:, i, j, c] = labels_to_inputs(label, levels, model.dtype)"),
]


def _compare_images(fn, cfg, what, seeds=(0, 1)):
    model = _model(cfg)
    for seed in seeds:
        u = _uniforms(cfg, seed)
        got = _call_sample(fn, model, u, what)
        want = sampling.sample_naive(model, u, 1.0, _Bar())
        if np.array_equal(got, want):
            continue
        for kwargs, words in MODEL_MISTAKES:
            if np.array_equal(got, _naive_like(model, u, **kwargs)) and not np.array_equal(got, want):
                raise Wrong(f"{words} ({what})")
        k, i, j, c = (int(a) for a in np.argwhere(got != want)[0])
        raise Wrong(f"image {k} differs from the library's naive sampler, first at row {i}, column {j}, colour "
                    f"{c}: yours {int(got[k, i, j, c])}, the library {int(want[k, i, j, c])} ({what})")
    return model


def _grey(module):
    fn = function(module, "sample_naive")
    _compare_images(fn, GREY, "grey 4x4, 4 levels")
    return f"same {IMAGES} images as the library's naive sampler from the same uniforms (grey 4x4, 4 levels, twice)"


def _colour(module):
    fn = function(module, "sample_naive")
    _compare_images(fn, COLOUR, "colour 3x3x3, 4 levels")
    return f"same {IMAGES} images as the library's naive sampler from the same uniforms (colour 3x3x3, 4 levels)"


def _order(module):
    fn = function(module, "sample_naive")
    for cfg, what in ((GREY, "grey 4x4"), (COLOUR, "colour 3x3x3")):
        model = _model(cfg)
        u = _uniforms(cfg, 5)
        base = _call_sample(fn, model, u, what)
        H, W, C = u.shape[1:]
        for later in (H * W * C - 1, H * W * C // 2):
            i, j, c = np.unravel_index(later, (H, W, C))
            changed = u.copy()
            changed[:, i, j, c] = 1.0 - u[:, i, j, c]  # the uniform of one later sub-pixel, nothing else
            got = _call_sample(fn, model, changed, what)
            earlier = base.reshape(len(u), -1)[:, :later] != got.reshape(len(u), -1)[:, :later]
            if earlier.any():
                first = np.unravel_index(int(np.flatnonzero(earlier.any(axis=0))[0]), (H, W, C))
                raise Wrong(f"changing only the uniform of sub-pixel (row {i}, column {j}, colour {c}) changed the "
                            f"earlier sub-pixel (row {first[0]}, column {first[1]}, colour {first[2]}): each "
                            f"sub-pixel's level comes from its own u[:, i, j, c] and the sub-pixels before it "
                            f"({what})")
    return "changing a later sub-pixel's uniform never changes an earlier sub-pixel (grey and colour)"


PARTS = [("draw", _draw), ("boundaries", _boundaries), ("temperature", _temperature), ("grey images", _grey),
         ("colour images", _colour), ("autoregressive order", _order)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
