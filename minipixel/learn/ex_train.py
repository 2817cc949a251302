"""Exercise "train", the capstone: a PixelCNN assembled from the learner's own pieces learns the digits.

The learner writes the network's forward and backward and the training step, on
their files of the earlier exercises (``Yours``). The grader checks the pieces,
the whole network against the library's arithmetic and float64 central
differences, the autoregressive order, then trains it on the shipped digits
(the loss must fall to ``TARGET``) and draws digits with the learner's sampler.
"""
import time
import weakref
from pathlib import Path

import numpy as np

from .. import viz
from ..conv_reference import conv2d_reference
from ..datasets import registry
from ..losses import softmax_cross_entropy
from ..masks import conv_mask
from . import ex_adam, ex_conv_loops, ex_data, ex_masks, ex_residual, ex_sampler, ex_softmax_ce
from .grade import NotRun, NotWritten, Wrong, function, load, max_error, order_violation, run_parts

NAME = "train"
TITLE = "the capstone: your pieces make a PixelCNN that learns the digits and draws them"
CHAPTER = "docs/learn/train.md"
SLOW = True  # its check trains a network: the list shows the last check's verdict (runner.status)
SOLUTION = ("minipixel/step.py, function loss_and_gradients (forward, loss, backward) and train_step (the Adam "
            "step), on minipixel/model.py's PixelCNN.forward and PixelCNN.backward")

# The learner's files this one runs on, with their checks, in the order of the exercises.
_CHECKS = {ex.NAME: ex for ex in (ex_masks, ex_conv_loops, ex_residual, ex_softmax_ce, ex_adam, ex_data, ex_sampler)}
PIECES = tuple(_CHECKS)
STEPS, BATCH, LR, SEED = 500, 16, 3e-3, 0
VALID = 500  # validation images the loss is measured on
TARGET = 90.0  # nats per image on them after STEPS steps; a model that learned nothing is at 543 (784 ln 2)
DRAWN = 8  # digits drawn at the end
INK = (0.03, 0.35)  # the white fraction of drawn digits; the data's is about 0.13


class Yours:
    """The learner's files of the earlier exercises, in the folder of ``here``, each read when first used.

    ``Yours(__file__).residual`` is their residual.py with its given ``conv`` and
    ``conv_backward`` replaced by their own from conv_loops.py: the block runs on
    their convolution too.
    """

    def __init__(self, here):
        self._folder = Path(here).resolve().parent
        self._read = {}

    def __getattr__(self, name):
        if name.startswith("_") or name not in PIECES:
            raise AttributeError(name)
        if name not in self._read:
            path = self._folder / f"{name}.py"
            if not path.exists():
                raise NotWritten(f"train uses your {name}.py of exercise {name}: minipixel learn start {name}")
            module = load(path)
            if name == "residual":
                loops = self.conv_loops
                module.conv, module.conv_backward = loops.conv_forward, loops.conv_backward
            self._read[name] = module
        return self._read[name]


SKELETON = '''"""Exercise train, the capstone: a PixelCNN made of your own pieces learns the digits.

Check it with: minipixel learn check train (it trains for 500 steps and draws 8 digits, in under a minute).
It runs on your files of the earlier exercises, in this folder, each passing its own check:
masks, conv_loops, residual, softmax_ce, adam, data and sampler.
"""
import numpy as np

from minipixel.learn.ex_train import Yours

# Your files of the earlier exercises, read from this folder when first used:
#   mine.masks.conv_mask; mine.conv_loops.conv_forward and conv_backward;
#   mine.residual.residual_forward and residual_backward (running on your conv_loops convolution);
#   mine.softmax_ce.softmax_cross_entropy; mine.adam.adam_step.
# The grader makes the batches with your data.py and draws digits with your sampler.py.
mine = Yours(__file__)

FILTERS, BLOCKS, LEVELS = 16, 1, 2


def make_params(rng, dtype=np.float32):
    """Given: the network's parameters, a dict of layers, each a dict of arrays.

    "first": the 7x7 mask-A convolution, 1 -> FILTERS channels: "W", "b", "mask";
    "blocks": a list of BLOCKS residual blocks, each the dict residual_forward takes
        ("W1", "b1", "mask1", ..., "mask3": 1x1 FILTERS -> FILTERS/2, 3x3, 1x1 back to FILTERS; masks B);
    "hidden": 1x1 mask B, FILTERS -> FILTERS; "out": 1x1 mask B, FILTERS -> LEVELS.
    """
    def layer(k, c_in, c_out, kind, suffix=""):
        W = rng.standard_normal((k, k, c_in, c_out)) * np.sqrt(2 / (k * k * c_in))
        mask = mine.masks.conv_mask(k, c_in, c_out, kind)
        return {f"W{suffix}": W.astype(dtype), f"b{suffix}": np.zeros(c_out, dtype),
                f"mask{suffix}": np.asarray(mask, dtype)}

    half = FILTERS // 2
    blocks = [{**layer(1, FILTERS, half, "B", 1), **layer(3, half, half, "B", 2), **layer(1, half, FILTERS, "B", 3)}
              for _ in range(BLOCKS)]
    return {"first": layer(7, 1, FILTERS, "A"), "blocks": blocks,
            "hidden": layer(1, FILTERS, FILTERS, "B"), "out": layer(1, FILTERS, LEVELS, "B")}


def adam_state(params):
    """Given: Adam's state: the step count "t" (0 before the first step) and, for every weight
    and bias, its moving averages (m, v), zeros, in params' nesting."""
    def zeros(layer):
        return {k: (np.zeros_like(a), np.zeros_like(a)) for k, a in layer.items() if not k.startswith("mask")}

    return {"t": 0, "first": zeros(params["first"]), "blocks": [zeros(b) for b in params["blocks"]],
            "hidden": zeros(params["hidden"]), "out": zeros(params["out"])}


def pairs(params, grads, state):
    """Given: every weight and bias with its gradient and Adam's m and v, as (p, g, m, v)."""
    for name in ("first", "hidden", "out"):
        for key, (m, v) in state[name].items():
            yield params[name][key], grads[name][key], m, v
    for block, g, s in zip(params["blocks"], grads["blocks"], state["blocks"]):
        for key, (m, v) in s.items():
            yield block[key], g[key], m, v


def forward(params, x):
    """The network's logits and a cache for backward: (logits, cache).

    x: (B, H, W, 1) inputs (labels / (LEVELS - 1)); params: as make_params makes them.
        h = conv(x, "first")                  mask A: an output sees only the pixels before it
        h = residual_forward(h, block)        for each block, in order
        a = conv(relu(h), "hidden")
        y = conv(relu(a), "out")              (B, H, W, LEVELS), reshaped to (B, H, W, 1, LEVELS)
    with conv(a, name) = mine.conv_loops.conv_forward(a, W, b, mask) of params[name]'s arrays
    and relu(a) = np.maximum(a, 0). Keep in the cache what backward needs.
    """
    raise NotImplementedError


def backward(params, cache, dlogits):
    """The gradient of every weight and bias from dlogits ((B, H, W, 1, LEVELS)): grads.

    grads has params' nesting without the masks: {"first": {"W": .., "b": ..},
    "blocks": [{"W1": .., "b1": .., ..., "b3": ..}], "hidden": {..}, "out": {..}}.
    The forward in reverse: conv_backward for each convolution (it gives dx, dW, db),
    the ReLUs' backward, residual_backward for each block (the last block first).
    """
    raise NotImplementedError


def train_step(params, state, x, labels, lr):
    """One step of training on a batch, updating params in place: returns the loss (a float).

    labels: (B, H, W, 1) ints 0..LEVELS-1, x their inputs. forward; the loss (nats per
    image) and dlogits from mine.softmax_ce.softmax_cross_entropy; backward; then count
    the step (state["t"] += 1) and run mine.adam.adam_step(p, g, m, v, state["t"], lr,
    (0.9, 0.999), 1e-8) on every (p, g, m, v) of pairs(params, grads, state).
    """
    raise NotImplementedError
'''

HINTS = [
    "forward: def conv(a, layer): return mine.conv_loops.conv_forward(a, layer['W'], layer['b'], layer['mask']); "
    "keep every layer's input in the cache (backward needs the x of each conv_backward).",
    "forward: the blocks: h, block_cache = mine.residual.residual_forward(h, block); append each block_cache; "
    "the logits: y.reshape(y.shape[:3] + (1, LEVELS)).",
    "backward: start from dy = dlogits.reshape(dlogits.shape[:3] + (LEVELS,)); each ReLU's backward is "
    "d * (its input > 0); the blocks in reversed order: dh, grads_k = mine.residual.residual_backward(dh, cache_k).",
    "train_step: logits, cache = forward(params, x); loss, dlogits = mine.softmax_ce.softmax_cross_entropy(logits, "
    "labels); grads = backward(params, cache, dlogits); state['t'] += 1; then adam_step on every pairs(...) tuple.",
]


def _layer(rng, k, c_in, c_out, kind, suffix=""):
    W = rng.standard_normal((k, k, c_in, c_out)) * np.sqrt(2 / (k * k * c_in))
    return {f"W{suffix}": W, f"b{suffix}": 0.1 * rng.standard_normal(c_out),
            f"mask{suffix}": conv_mask(k, c_in, c_out, kind).astype(np.float64)}


def _small_params(seed, filters=4, blocks=2):
    """A small float64 network of the skeleton's shape (two blocks: the loop over blocks counts)."""
    rng, half = np.random.default_rng(seed), filters // 2
    return {"first": _layer(rng, 7, 1, filters, "A"),
            "blocks": [{**_layer(rng, 1, filters, half, "B", 1), **_layer(rng, 3, half, half, "B", 2),
                        **_layer(rng, 1, half, filters, "B", 3)} for _ in range(blocks)],
            "hidden": _layer(rng, 1, filters, filters, "B"), "out": _layer(rng, 1, filters, 2, "B")}


def _conv(a, layer, k=""):
    return conv2d_reference(a, layer[f"W{k}"] * layer[f"mask{k}"], layer[f"b{k}"])


def _logits(params, x):
    """The grader's forward, with the library's reference convolution."""
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    h = _conv(x, params["first"])
    for p in params["blocks"]:
        h = h + _conv(relu(_conv(relu(_conv(relu(h), p, 1)), p, 2)), p, 3)
    y = _conv(relu(_conv(relu(h), params["hidden"])), params["out"])
    return y.reshape(y.shape[:3] + (1, y.shape[3]))


def _learners_logits(fn, params, x, what):
    result = fn(params, x)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Wrong(f"forward should return (logits, cache), got {type(result).__name__} ({what})")
    logits = result[0]
    want = x.shape + (2,)
    if not isinstance(logits, np.ndarray) or logits.shape != want:
        raise Wrong(f"forward's logits have shape {getattr(logits, 'shape', type(logits).__name__)}, expected {want}: "
                    f"(B, H, W, 1, LEVELS) ({what})")
    return result


def _batch(seed, n=3, size=8):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (n, size, size, 1))
    return labels.astype(np.float64), labels


def _pieces(module):
    folder = Path(module.__file__).resolve().parent
    for name in PIECES:
        path = folder / f"{name}.py"
        if not path.exists():
            raise NotWritten(f"train uses your {name}.py of exercise {name}: minipixel learn start {name}")
        lines, passed = _CHECKS[name].check(load(path))
        if not passed:
            raise Wrong(f"your {name}.py does not pass its own check yet: minipixel learn check {name} says what "
                        "to mend; the capstone runs on it")
    return f"{', '.join(PIECES)}: each of your files passes its own check"


def _forward(module):
    fn = function(module, "forward")
    for seed in (0, 1):
        params = _small_params(seed)
        x, _ = _batch(seed)
        what = f"a float64 network of 4 filters and 2 blocks, {x.shape[0]} images of 8x8"
        logits, _ = _learners_logits(fn, params, x.copy(), what)
        want = _logits(params, x)
        error = max_error(logits, want)
        if error > 1e-9:
            one_block = dict(params, blocks=params["blocks"][:1])
            if max_error(logits, _logits(one_block, x)) < 1e-9:
                raise Wrong(f"only the first block ran: run residual_forward on every block, in order ({what})")
            raise Wrong(f"the logits differ from the library's arithmetic by {error:.2g} (relative): check the "
                        f"order of the layers and the ReLUs before hidden and out ({what})")
    return "the logits of two small networks agree with the library's arithmetic (float64, to 1e-9)"


def _walk(grads, params):
    """(name, gradient, parameter) for every weight and bias, from the output layer back to the first."""
    for name in ("out", "hidden"):
        for key in ("W", "b"):
            yield f'grads["{name}"]["{key}"]', grads[name][key], params[name][key]
    for k in reversed(range(len(params["blocks"]))):
        for key in ("W3", "b3", "W2", "b2", "W1", "b1"):
            yield f'grads["blocks"][{k}]["{key}"]', grads["blocks"][k][key], params["blocks"][k][key]
    for key in ("W", "b"):
        yield f'grads["first"]["{key}"]', grads["first"][key], params["first"][key]


def _backward(module):
    forward_fn, backward_fn = function(module, "forward"), function(module, "backward")
    params = _small_params(2)
    x, labels = _batch(2)
    what = "a float64 network of 4 filters and 2 blocks"

    def loss():
        return softmax_cross_entropy(_learners_logits(forward_fn, params, x, what)[0], labels)[0]

    logits, cache = _learners_logits(forward_fn, params, x, what)
    _, dlogits = softmax_cross_entropy(logits, labels)
    grads = backward_fn(params, cache, dlogits)
    if not isinstance(grads, dict) or not {"first", "blocks", "hidden", "out"} <= set(grads):
        raise Wrong('backward should return a dict with "first", "blocks", "hidden" and "out"')
    rng, eps, right = np.random.default_rng(7), 1e-6, []
    for name, g, p in _walk(grads, params):
        if not isinstance(g, np.ndarray) or g.shape != p.shape:
            raise Wrong(f"{name} has shape {getattr(g, 'shape', type(g).__name__)}, expected {p.shape} ({what})")
        for index in {tuple(int(rng.integers(s)) for s in p.shape) for _ in range(4)}:
            keep = p[index]
            p[index] = keep + eps
            up = loss()
            p[index] = keep - eps
            down = loss()
            p[index] = keep
            numeric = (up - down) / (2 * eps)
            if max_error(g[index], numeric) > 1e-5:
                after = f"; every gradient after it is right ({', '.join(right[-2:])}, ...)" if right else ""
                raise Wrong(f"{name}{list(index)} is {float(g[index]):.6g}, central differences give {numeric:.6g}"
                            f"{after} ({what})")
        right.append(name)
    return f"every weight's and bias's gradient agrees with float64 central differences ({len(right)} arrays)"


def _order(module):
    fn = function(module, "forward")
    mine = function(module, "make_params")(np.random.default_rng(SEED), np.float64)
    for params, x, whose in ((_small_params(3), _batch(3, n=2)[0], "a small network of the grader's"),
                             (mine, _batch(3, n=2, size=28)[0], "the network of your make_params")):
        def logits(images):  # the levels as the output's channels: one colour, so one group
            out = _learners_logits(fn, params, images, whose)[0]
            return out.reshape(out.shape[:3] + (-1,))

        found = order_violation(logits, x, "A", 1)
        if found:
            (r, c, _), (i, j, _) = found
            where = "the same pixel" if (r, c) == (i, j) else f"row {r}, column {c}"
            raise Wrong(f"changing only the input at row {i}, column {j} changed the logits at {where}: an "
                        f"output may see only the pixels before it (is the first layer's mask A?) ({whose})")
    return ("changing one pixel never changes the logits at that pixel or before it (a small network, and the one "
            "your make_params makes)")


_trained = weakref.WeakKeyDictionary()  # a learner's module -> its trained params, for the samples


def _digits(split, data, count=None):
    images = registry.load(f"mnist5k:{split}", progress=False).images[:count]
    labels = np.asarray(data.binarize(images))
    return labels, np.asarray(data.labels_to_inputs(labels, 2))


_UNCOUNTED = ('count each step in train_step (state["t"] += 1) before adam_step: Adam\'s bias correction '
              'divides by 1 - b^t, which is 0 at t = 0')


def _training(module):
    make, step, state_of = (function(module, n) for n in ("make_params", "train_step", "adam_state"))
    mine = Yours(module.__file__)
    began = time.perf_counter()
    labels, x = _digits("train", mine.data)
    params = make(np.random.default_rng(SEED))
    state = state_of(params)
    order = np.random.default_rng(SEED).permutation(len(labels))
    losses = []
    for k in range(STEPS):
        batch = order[(k * BATCH) % len(order):][:BATCH]
        try:
            loss = step(params, state, x[batch], labels[batch], LR)
        except ZeroDivisionError:
            if state["t"] != 0:
                raise
            raise Wrong(_UNCOUNTED) from None
        if state["t"] != k + 1:
            raise Wrong(f'state["t"] is {state["t"]} after step {k + 1}: {_UNCOUNTED}')
        if not isinstance(loss, (float, np.floating)) or not np.isfinite(loss):
            raise Wrong(f"train_step returned {loss!r} at step {k + 1}: the loss, a finite float")
        losses.append(float(loss))
    valid_labels, valid_x = _digits("valid", mine.data, VALID)
    forward = function(module, "forward")
    nll = np.mean([softmax_cross_entropy(forward(params, valid_x[s:s + 100])[0], valid_labels[s:s + 100])[0]
                   for s in range(0, VALID, 100)])
    seconds = time.perf_counter() - began
    curve = ", ".join(f"{losses[k]:.0f}" for k in (0, 99, 199, 299, 399, STEPS - 1))
    if not nll <= TARGET:
        raise Wrong(f"after {STEPS} steps the loss on {VALID} validation digits is {nll:.1f} nats per image, above "
                    f"{TARGET:.0f} (the training loss at steps 1, 100, ..., {STEPS}: {curve})")
    _trained[module] = params
    return (f"{STEPS} steps of {BATCH} digits in {seconds:.0f} s, training loss {curve} at steps 1, 100, ..., "
            f"{STEPS}; {nll:.1f} nats per image on {VALID} validation digits (at most {TARGET:.0f} passes)")


class _Net:
    """The learner's trained network as the sampler exercise's model: forward(x) -> logits."""

    def __init__(self, forward, params):
        self.forward_fn, self.params = forward, params
        self.config, self.dtype = type("Config", (), {"levels": 2})(), np.float32

    def forward(self, x):
        return self.forward_fn(self.params, x)[0]


def _samples(module):
    if module not in _trained:
        raise NotRun("it draws from the trained network: training must pass first")
    mine = Yours(module.__file__)
    began = time.perf_counter()
    u = np.random.default_rng(SEED).random((DRAWN, 28, 28, 1))
    drawn = np.asarray(mine.sampler.sample_naive(_Net(function(module, "forward"), _trained[module]), DRAWN, u))
    if drawn.shape != u.shape or not np.isin(drawn, (0, 1)).all():
        raise Wrong(f"your sample_naive gave shape {drawn.shape} with values {np.unique(drawn)[:5]}, expected "
                    f"{u.shape} of 0 and 1")
    path = Path(module.__file__).resolve().parent / "train-samples.png"
    viz.save_png(path, viz.image_grid(drawn, 2, ncols=DRAWN, scale=4))
    ink = float(drawn.mean())
    if not INK[0] <= ink <= INK[1]:
        raise Wrong(f"the {DRAWN} digits drawn are {ink:.0%} white (look at {path}); the training digits are about "
                    f"13% white")
    return (f"{DRAWN} digits drawn by your sampler in {time.perf_counter() - began:.0f} s, {ink:.0%} white: "
            f"look at {path}")


PARTS = [("your pieces", _pieces), ("forward", _forward), ("backward", _backward),
         ("autoregressive order", _order), ("training", _training), ("samples", _samples)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
