"""Exercise "residual": the PixelCNN residual block's forward and backward, from its pieces (the chain rule)."""
import numpy as np

from ..conv_reference import conv2d_reference, conv2d_reference_backward
from ..gradcheck import numerical_gradient
from ..model import ResidualBlock
from .grade import Wrong, as_array, function, max_error, order_violation, order_words, run_parts

NAME = "residual"
TITLE = "the residual block's backward from its pieces: ReLU masks, layers in reverse, the skip connection"
CHAPTER = "docs/learn/residual.md"
SOLUTION = "minipixel/model.py, class ResidualBlock (forward and backward)"

SKELETON = '''"""Exercise residual: write residual_forward and residual_backward.

Check it with: minipixel learn check residual
"""
import numpy as np

from minipixel.conv_reference import conv2d_reference, conv2d_reference_backward


def conv(x, W, b, mask):
    """Given: the masked convolution, (B, H, W, C_in) -> (B, H, W, C_out)."""
    return conv2d_reference(x, W * mask, b)


def conv_backward(dy, x, W, mask):
    """Given: the gradients of conv(x, W, b, mask) from dy, its output's gradient: (dx, dW, db)."""
    if dy.shape[:3] != x.shape[:3] or dy.shape[3] != W.shape[3]:
        raise ValueError(f"conv_backward: dy has shape {dy.shape}, but this convolution's output has "
                         f"shape {x.shape[:3] + (W.shape[3],)}")
    return conv2d_reference_backward(dy, x, W * mask, mask)


def residual_forward(x, params):
    """The block's output, and a cache for the backward: (out, cache).

    x: (B, H, W, h). params: "W1", "b1", "mask1" (1x1, h -> m1), "W2", "b2", "mask2"
    (3x3, m1 -> m2), "W3", "b3", "mask3" (1x1, m2 -> h):

        out = x + conv3(relu(conv2(relu(conv1(relu(x))))))

    with convK(a) = conv(a, params["WK"], params["bK"], params["maskK"]) and
    relu(a) = np.maximum(a, 0). Do not change x. The cache is yours: keep in it
    whatever the backward needs (each conv's input, and what each ReLU's backward needs).
    """
    raise NotImplementedError


def residual_backward(dy, cache):
    """dy: the gradient of the loss with respect to out -> (dx, grads).

    dx: x's shape; grads: {"W1", "b1", "W2", "b2", "W3", "b3"}, each its parameter's
    shape. Use conv_backward for each convolution: the work here is the chain rule.
    """
    raise NotImplementedError
'''

HINTS = [
    "Keep every intermediate in the forward: a1 = relu(x), z1 = conv1(a1), a2 = relu(z1), z2 = conv2(a2), "
    "a3 = relu(z2), z3 = conv3(a3), out = x + z3; return out and (x, a1, z1, a2, z2, a3, params).",
    "Backward goes through the layers in reverse: conv3 first (its output's gradient is dy itself: out = x + z3), "
    "then the ReLU before it, then conv2, and so on down to conv1 and the first ReLU.",
    "A ReLU's backward passes the gradient where its own input was > 0: dz2 = da3 * (z2 > 0), dz1 = da2 * (z1 > 0), "
    "da1 -> da1 * (x > 0).",
    "The skip connection: out = x + f(x), so dx = (the gradient through the branch) + dy.",
]

# (B, H, W, h, widths, colors): the paper's "half" widths and the keras example's, one and three colour groups
CASES = [(2, 4, 4, 4, "half", 1), (1, 3, 5, 6, "keras", 3), (2, 5, 3, 6, "half", 3)]
GRADCHECK_CASE = (1, 4, 4, 4, "half", 1)  # with seed 5: z1 > 0 and z2 > 0 differ at half the entries
KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def _relu(a):
    return np.maximum(a, 0)


def _setup(case, seed):
    """The library's block in float64 with random biases, the learner's params, x and dy."""
    B, H, W, h, widths, colors = case
    rng = np.random.default_rng(seed)
    block = ResidualBlock(h, widths=widths, colors=colors, rng=rng, dtype=np.float64)
    params = {}
    for k, layer in enumerate((block.conv1, block.conv2, block.conv3), 1):
        layer.params["b"][...] = 0.5 * rng.standard_normal(layer.params["b"].shape)
        params.update({f"W{k}": layer.params["W"].copy(), f"b{k}": layer.params["b"].copy(),
                       f"mask{k}": layer.mask.copy()})
    x = rng.standard_normal((B, H, W, h))
    dy = rng.standard_normal((B, H, W, h))
    return block, params, x, dy


def _name(case):
    B, H, W, h, widths, colors = case
    return f"x {(B, H, W, h)}, widths {widths!r}, {colors} colour group(s)"


def _forward_variants(x, p):
    """What a forward with a typical mistake gives: {mistake: out}."""
    def c(k, a):
        return conv2d_reference(a, p[f"W{k}"] * p[f"mask{k}"], p[f"b{k}"])
    right_branch = c(3, _relu(c(2, _relu(c(1, _relu(x))))))
    return {
        "no relu1": x + c(3, _relu(c(2, _relu(c(1, x))))),
        "no skip": right_branch,
        "no relu2": x + c(3, _relu(c(2, c(1, _relu(x))))),
        "no relu3": x + c(3, c(2, _relu(c(1, _relu(x))))),
    }


FORWARD_FAULTS = {
    "no relu1": "the ReLU before conv1 is missing: the block begins with relu(x), then conv1",
    "no skip": "the skip connection is missing: out = x + conv3(...), add x to the branch's output",
    "no relu2": "the ReLU between conv1 and conv2 is missing",
    "no relu3": "the ReLU between conv2 and conv3 is missing",
}


def _call_forward(fn, x, params, name):
    before = x.copy()
    out = fn(x, {k: v.copy() for k, v in params.items()})
    if not np.array_equal(x, before):
        raise Wrong("residual_forward changed x: the skip connection needs x as it was; compute relu(x) "
                    "in a new array (np.maximum(x, 0), not np.maximum(x, 0, out=x))")
    if not (isinstance(out, tuple) and len(out) == 2):
        raise Wrong("residual_forward must return a pair (out, cache)")
    return as_array(out[0], f"out ({name})", x.shape), out[1]


def _forward(module):
    fn = function(module, "residual_forward")
    worst = 0.0
    for index, case in enumerate(CASES):
        block, params, x, _ = _setup(case, index)
        name = _name(case)
        want = block.forward(x.copy())
        out, _ = _call_forward(fn, x, params, name)
        err = max_error(out, want)
        if err > 1e-9:
            for mistake, variant in _forward_variants(x, params).items():
                if max_error(out, variant) <= 1e-9:
                    raise Wrong(f"{FORWARD_FAULTS[mistake]} ({name})")
            raise Wrong(f"out differs from the library's ResidualBlock (max relative error {err:.1e}): "
                        f"out = x + conv3(relu(conv2(relu(conv1(relu(x)))))) ({name})")
        worst = max(worst, err)
    return (f"out same as the library's ResidualBlock on {len(CASES)} shapes, widths 'half' and 'keras' "
            f"(max error {worst:.0e})")


def _library_backward(block, x, dy):
    block.forward(x.copy())
    dx = block.backward(dy.copy())
    grads = {}
    for k, layer in enumerate((block.conv1, block.conv2, block.conv3), 1):
        grads[f"W{k}"], grads[f"b{k}"] = layer.grads["W"].copy(), layer.grads["b"].copy()
    return dx, grads


def _call_backward(module, x, params, dy, name):
    out, cache = _call_forward(function(module, "residual_forward"), x, params, name)
    fn = function(module, "residual_backward")
    try:
        result = fn(dy.copy(), cache)
    except ValueError as err:
        if "conv_backward:" not in str(err):
            raise
        raise Wrong(f"{err}: the backward must go through the layers in reverse order, conv3's backward first "
                    f"(the last layer of the forward is the first of the backward), then conv2's, then conv1's "
                    f"({name})") from None
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise Wrong("residual_backward must return a pair (dx, grads), grads a dict")
    dx, grads = result
    missing = [k for k in KEYS if k not in grads]
    if missing:
        raise Wrong(f"grads lacks {', '.join(missing)}: it holds W1, b1, W2, b2, W3, b3")
    as_array(dx, f"dx ({name})", x.shape)
    for k in KEYS:
        as_array(grads[k], f"grads[{k!r}] ({name})", params[k].shape)
    return dx, grads


def _da1(x, p, dy):
    """The gradient reaching relu(x), conv1's dx: the chain rule with the reference convolution."""
    def c(k, a):
        return conv2d_reference(a, p[f"W{k}"] * p[f"mask{k}"], p[f"b{k}"])

    def back(k, d, a):
        return conv2d_reference_backward(d, a, p[f"W{k}"] * p[f"mask{k}"])[0]
    a1 = _relu(x)
    z1 = c(1, a1)
    z2 = c(2, _relu(z1))
    d = back(3, dy, _relu(z2)) * (z2 > 0)
    return back(1, back(2, d, _relu(z1)) * (z1 > 0), a1)


def _backward_fault(dx, grads, want_dx, want, x, params, dy, name):
    """What a wrong backward most likely did: the first wrong gradient, going backward through the block."""
    ok = {k: max_error(grads[k], want[k]) <= 1e-9 for k in KEYS}
    if not (ok["W3"] and ok["b3"]):
        return (f"conv3's gradients (W3, b3) are wrong: conv3 is the first layer of the backward; the gradient "
                f"of its output is dy itself (out = x + conv3(a3)) and its input is a3 = relu(z2) ({name})")
    if not (ok["W2"] and ok["b2"]):
        return (f"W3 and b3 are right but W2, b2 are wrong: the gradient into conv2's output is conv3's dx times "
                f"the ReLU's mask (z2 > 0), z2 being conv2's output, the ReLU's own input ({name})")
    if not (ok["W1"] and ok["b1"]):
        return (f"W2, b2, W3 and b3 are right but W1, b1 are wrong: the gradient into conv1's output is conv2's "
                f"dx times the ReLU's mask (z1 > 0), z1 being conv1's output, the ReLU's own input ({name})")
    if max_error(dx, want_dx - dy) <= 1e-9:
        return f"the skip connection's dy is missing from dx: out = x + f(x), so dx = (dx through f) + dy ({name})"
    da1 = _da1(x, params, dy)
    if max_error(dx, da1 + dy) <= 1e-9 or max_error(dx, (da1 + dy) * (x > 0)) <= 1e-9:
        return (f"the first ReLU's backward is wrong: conv1's dx is masked where x > 0 (relu(x) comes "
                f"before conv1); the skip connection's dy is added unmasked ({name})")
    return f"dx is wrong (the weights' gradients are right): dx = (conv1's dx) * (x > 0) + dy ({name})"


def _backward(module):
    for index, case in enumerate(CASES):
        block, params, x, dy = _setup(case, index + 10)
        name = _name(case)
        want_dx, want = _library_backward(block, x, dy)
        dx, grads = _call_backward(module, x, params, dy, name)
        if max_error(dx, want_dx) > 1e-9 or any(max_error(grads[k], want[k]) > 1e-9 for k in KEYS):
            raise Wrong(_backward_fault(dx, grads, want_dx, want, x, params, dy, name))
    return f"dx and the six parameter gradients same as the library's ResidualBlock.backward on {len(CASES)} shapes"


def _gradcheck(module):
    forward = function(module, "residual_forward")
    _, params, x, dy = _setup(GRADCHECK_CASE, 5)
    name = _name(GRADCHECK_CASE)
    dx, grads = _call_backward(module, x, params, dy, name)

    def f():
        return float(np.sum(forward(x.copy(), {k: v.copy() for k, v in params.items()})[0] * dy))
    worst = 0.0
    for what, array, analytic in [("dx", x, dx)] + [(k, params[k], grads[k]) for k in KEYS]:
        err = max_error(analytic, numerical_gradient(f, array))
        if err > 1e-6:
            raise Wrong(f"your {what} disagrees with central differences of your forward "
                        f"(max relative error {err:.1e}) ({name})")
        worst = max(worst, err)
    return f"dx and grads agree with float64 central differences of your forward (max relative error {worst:.0e})"


def _block(x, p):
    """The block with the reference convolution: out = x + conv3(relu(conv2(relu(conv1(relu(x))))))."""
    a = x
    for k in (1, 2, 3):
        a = conv2d_reference(_relu(a), p[f"W{k}"] * p[f"mask{k}"], p[f"b{k}"])
    return x + a


def _order_cause(out, x, params):
    """Which conv's mask went wrong, found by giving one conv that mistake and comparing the outputs."""
    for k in (1, 2, 3):
        mask = params[f"mask{k}"]
        for words, wrong in (("without its mask", np.ones_like(mask)), ("with 1 - mask", 1 - mask),
                             ("with its mask flipped, reading below and right", mask[::-1, ::-1])):
            if not np.array_equal(wrong, mask) and max_error(out, _block(x, {**params, f"mask{k}": wrong})) <= 1e-9:
                return f"conv{k} runs {words}: conv{k}(a) = conv(a, params['W{k}'], params['b{k}'], params['mask{k}'])"
    return ("is every conv given its own mask, as it is (convK(a) = conv(a, params['WK'], params['bK'], "
            "params['maskK'])), and does the skip add x at the same position?")


def _order(module):
    fn = function(module, "residual_forward")
    for index, case in enumerate(CASES):
        _, params, x, _ = _setup(case, index + 20)
        rng = np.random.default_rng(index + 30)
        for k in (1, 2, 3):  # weights on the masked taps too: a conv without its mask then reads the future
            params[f"W{k}"] = rng.standard_normal(params[f"W{k}"].shape)
        name, colors = _name(case), case[5]
        found = order_violation(lambda a: _call_forward(fn, a, params, name)[0], x, "B", colors)
        if found:
            words = order_words(found, "B", colors, x.shape[3], x.shape[3], y="out")
            cause = _order_cause(_call_forward(fn, x, params, name)[0], x, params)
            raise Wrong(f"{words}, as each of the block's convs is; {cause} ({name})")
    return ("changing x at one sub-pixel (the centre, the first row, the first column, the last) never changes the "
            f"output at an earlier one, on {len(CASES)} shapes (one and three colour groups): every conv keeps the order")


PARTS = [("forward", _forward), ("backward", _backward), ("gradient check", _gradcheck),
         ("autoregressive order", _order)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
