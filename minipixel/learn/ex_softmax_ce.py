"""Exercise "softmax_ce": softmax cross-entropy over the levels of every sub-pixel, stable, with its gradient."""
import numpy as np

from ..gradcheck import numerical_gradient
from ..losses import softmax_cross_entropy
from .grade import Wrong, as_array, function, max_error, run_parts

NAME = "softmax_ce"
TITLE = "softmax cross-entropy over the levels, stable, with its gradient"
CHAPTER = "docs/learn/softmax_ce.md"
SOLUTION = "minipixel/losses.py, function softmax_cross_entropy (and log_softmax for the max shift)"

SKELETON = '''"""Exercise softmax_ce: write softmax_cross_entropy. Check it with: minipixel learn check softmax_ce"""
import numpy as np


def softmax_cross_entropy(logits, labels, batch=None):
    """The loss in nats per image, and its gradient: (loss, dlogits).

    logits: (B, H, W, C, levels) float, the network's scores of every value a
    sub-pixel can take; labels: (B, H, W, C) int in 0..levels-1, the true values.
    batch: the number of images the mean is over (None: B).

    For each sub-pixel, softmax over the last axis (the levels):
        p[..., k] = exp(logits[..., k]) / sum over j of exp(logits[..., j])
    its NLL is -log p[..., label]. The loss sums the NLL over each image's
    sub-pixels (-log p(image)) and takes the mean over the batch: a Python float.
    dlogits (logits' shape and dtype) = (p - onehot(labels)) / batch.

    Do not change logits. Stable: exp(1000) overflows, so subtract each
    sub-pixel's max logit first (the softmax does not change).

    Hint: shifted = logits - logits.max(axis=-1, keepdims=True);
    log p = shifted - log(sum of exp(shifted) over the last axis).
    """
    raise NotImplementedError
'''

HINTS = [
    "Stable log-softmax: shifted = logits - logits.max(axis=-1, keepdims=True); "
    "logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)).",
    "Pick the true level's log-probability: np.take_along_axis(logp, labels[..., None], axis=-1); "
    "the loss is minus its sum over everything, divided by batch (B when batch is None).",
    "The gradient of -log p[y] with respect to the logits is p - onehot(y): p = np.exp(logp), subtract 1 "
    "at each label (np.put_along_axis, or index a (-1, levels) view), then divide by batch.",
]

# (logits' shape (B, H, W, C, levels), batch): levels 2, 8 and 256; the last passes a larger batch
CASES = [((2, 3, 3, 1, 2), None), ((3, 2, 4, 3, 8), None), ((2, 2, 3, 3, 256), None), ((1, 4, 3, 1, 256), None),
         ((2, 3, 2, 3, 8), 5)]
DTYPES = (np.float64, np.float32)
GRADCHECK_SHAPE = (2, 2, 2, 3, 4)
UNIFORM_SHAPE = (3, 2, 4, 5, 7)  # no two sizes alike: a sum over a wrong axis cannot pass by chance
LARGE = 1000.0


def _arrays(shape, dtype, seed, scale=2.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal(shape)).astype(dtype)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    return logits, labels


def _name(shape, batch, dtype):
    extra = f", batch={batch}" if batch is not None else ""
    return f"logits {shape}{extra}, {np.dtype(dtype).name}"


def _call(fn, logits, labels, batch, name):
    """The learner's (loss, dlogits), checked for form and for logits left as they were."""
    before = logits.copy()
    with np.errstate(all="ignore"):  # an overflow is reported by the check, not as a warning
        out = fn(logits, labels.copy(), batch) if batch is not None else fn(logits, labels.copy())
    if not np.array_equal(logits, before, equal_nan=True):
        raise Wrong("softmax_cross_entropy changed logits: compute the shifted logits in a new array")
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Wrong("softmax_cross_entropy must return a pair (loss, dlogits)")
    loss, dlogits = out
    if np.ndim(loss) != 0:
        raise Wrong(f"the loss should be one number (nats per image), got shape {np.shape(loss)} ({name})")
    return float(loss), as_array(dlogits, f"dlogits ({name})", logits.shape, logits.dtype)


def _close(got, want, dtype):
    return max_error(got, want) <= (1e-4 if dtype == np.float32 else 1e-9)


def _loss_fault(fn, loss, want, logits, labels, batch, name):
    """What a wrong loss most likely did."""
    B, subpixels = logits.shape[0], labels[0].size
    n = B if batch is None else batch
    if not np.isfinite(loss):
        return f"the loss is {loss} at ordinary logits ({name})"
    if batch is not None and _close(loss, want * n / B, logits.dtype):
        return f"batch={batch} was given: the mean is over batch images, not over the {B} passed ({name})"
    if _close(loss, want * n, logits.dtype):
        return f"the loss is summed over the batch: take the mean over images, divide by batch ({name})"
    if _close(loss, want / subpixels, logits.dtype):
        return (f"the loss is averaged over the sub-pixels: sum the NLL over each image's "
                f"{subpixels} sub-pixels (nats per image), then take the mean over the batch ({name})")
    if _close(loss, -want, logits.dtype):
        return f"the loss has the wrong sign: it is minus the log-probability of the labels ({name})"
    uniform, flat_labels = _arrays(UNIFORM_SHAPE, logits.dtype, 7, scale=0.0)  # every level equally likely
    flat_loss, _ = _call(fn, uniform, flat_labels, None, name)
    flat_want = flat_labels[0].size * np.log(UNIFORM_SHAPE[-1])  # -log p = log(levels) at every sub-pixel
    if not _close(flat_loss, flat_want, logits.dtype):
        return (f"the softmax is over the wrong axis: with all logits equal (shape {UNIFORM_SHAPE}), each "
                f"sub-pixel's softmax over its {UNIFORM_SHAPE[-1]} levels is uniform and the loss is "
                f"{flat_want:.4g} nats per image, yours {flat_loss:.4g}; normalize over the last axis only "
                f"(axis=-1, keepdims=True) ({name})")
    return f"loss wrong: -sum of log softmax(logits)[label] over each image, mean over the batch ({name})"


def _loss(module):
    fn = function(module, "softmax_cross_entropy")
    worst = 0.0
    for dtype in DTYPES:
        for index, (shape, batch) in enumerate(CASES):
            logits, labels = _arrays(shape, dtype, index)
            name = _name(shape, batch, dtype)
            want, _ = softmax_cross_entropy(logits.copy(), labels, batch)
            loss, _ = _call(fn, logits, labels, batch, name)
            if not _close(loss, want, dtype):
                raise Wrong(_loss_fault(fn, loss, want, logits, labels, batch, name))
            worst = max(worst, max_error(loss, want)) if dtype == np.float64 else worst
    return (f"nats per image same as the library on {len(CASES)} shapes (levels 2, 8, 256), "
            f"float64 and float32 (max error {worst:.0e} in float64)")


def _gradient_fault(d, want, logits, labels, batch, name):
    """What a wrong dlogits most likely did."""
    n = logits.shape[0] if batch is None else batch
    onehot = np.eye(logits.shape[-1])[labels]
    if not np.isfinite(d).all():
        return f"dlogits holds inf or nan at ordinary logits ({name})"
    if _close(d, want * n, logits.dtype):
        return (f"dlogits not divided by the batch: the loss is a mean over images, so "
                f"dlogits = (softmax - onehot) / batch ({name})")
    if _close(d, want / labels[0].size, logits.dtype):
        return f"dlogits divided by the sub-pixels too: the loss sums over them, divide by batch only ({name})"
    if _close(d, -want, logits.dtype):
        return f"dlogits has the wrong sign: it is (softmax - onehot) / batch ({name})"
    if _close(np.asarray(d, np.float64) * n, want * n + onehot, logits.dtype):
        return f"the one-hot of the label is not subtracted: dlogits = (softmax - onehot) / batch ({name})"
    q = np.asarray(d, np.float64) * n + onehot  # your softmax, if dlogits = (softmax - onehot) / batch
    for axis in range(logits.ndim - 1):
        if np.allclose(q.sum(axis=axis), 1.0, atol=1e-3):
            return (f"the softmax is over the wrong axis: your probabilities sum to 1 over axis {axis}; "
                    f"each sub-pixel's probabilities over the levels (the last axis) must sum to 1 ({name})")
    bad = np.argwhere(np.abs(d - want).max(axis=-1) > 1e-4 * np.abs(want).max())
    where = tuple(int(i) for i in bad[0])
    return f"dlogits wrong: (softmax - onehot) / batch; first wrong at sub-pixel {where} ({name})"


def _gradient(module):
    fn = function(module, "softmax_cross_entropy")
    for dtype in DTYPES:
        for index, (shape, batch) in enumerate(CASES):
            logits, labels = _arrays(shape, dtype, index + 10)
            name = _name(shape, batch, dtype)
            _, want = softmax_cross_entropy(logits.copy(), labels, batch)
            _, d = _call(fn, logits, labels, batch, name)
            if not _close(d, want, dtype):
                raise Wrong(_gradient_fault(d, want, logits, labels, batch, name))
    return f"dlogits same as the library on {len(CASES)} shapes, float64 and float32"


def _large(module):
    fn = function(module, "softmax_cross_entropy")
    for dtype in DTYPES:
        for index, (shape, batch) in enumerate(CASES[:3]):
            logits, labels = _arrays(shape, dtype, index + 20, scale=LARGE / 3)
            logits[..., 0] = LARGE  # every sub-pixel has a logit of 1000
            name = _name(shape, batch, dtype)
            want_loss, want_d = softmax_cross_entropy(logits.copy(), labels, batch)
            loss, d = _call(fn, logits, labels, batch, name)
            if not (np.isfinite(loss) and np.isfinite(d).all()):
                raise Wrong(f"inf/nan at logits of {LARGE:.0f}: subtract the max before exp "
                            f"(softmax(z) = softmax(z - max z), and exp(z - max z) <= 1) ({name})")
            if not (_close(loss, want_loss, dtype) and _close(d, want_d, dtype)):
                raise Wrong(f"finite but wrong at logits of {LARGE:.0f}: is each sub-pixel's own max "
                            f"subtracted (logits.max(axis=-1, keepdims=True))? ({name})")
    return f"finite and right at logits of {LARGE:.0f}, float64 and float32"


def _gradcheck(module):
    fn = function(module, "softmax_cross_entropy")
    logits, labels = _arrays(GRADCHECK_SHAPE, np.float64, 99)
    _, d = _call(fn, logits, labels, None, _name(GRADCHECK_SHAPE, None, np.float64))
    err = max_error(d, numerical_gradient(lambda: float(fn(logits.copy(), labels.copy())[0]), logits))
    if err > 1e-6:
        raise Wrong(f"your dlogits disagrees with central differences of your loss (max relative error {err:.1e})")
    return f"dlogits agrees with float64 central differences of your loss (max relative error {err:.0e})"


PARTS = [("loss", _loss), ("gradient", _gradient), ("large logits", _large), ("gradient check", _gradcheck)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
