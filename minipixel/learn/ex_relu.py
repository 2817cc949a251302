"""Exercise "relu": ReLU forward and backward, CS231n style (a function pair and a cache)."""
import numpy as np

from ..gradcheck import numerical_gradient
from ..layers import ReLU
from .grade import Wrong, as_array, function, max_error, run_parts

NAME = "relu"
TITLE = "ReLU forward and backward: the gradient passes where x > 0"
CHAPTER = "docs/learn/relu.md"
SOLUTION = "minipixel/layers.py, class ReLU (methods forward and backward)"

SKELETON = '''"""Exercise relu: write relu_forward and relu_backward. Check them with: minipixel learn check relu"""
import numpy as np


def relu_forward(x):
    """y = max(x, 0), elementwise. Returns (y, cache).

    x: an array of any shape and float dtype; y: the same shape and dtype.
    Do not change x. cache: whatever relu_backward needs (x itself, or y).

    Hint: np.maximum.
    """
    raise NotImplementedError


def relu_backward(dy, cache):
    """The gradient of the loss with respect to x, given dy = dL/dy.

    dy: the shape of y. Returns dx, the shape of x.
    dy/dx is 1 where x > 0 and 0 where x < 0, so dx = dy where x > 0, else 0.

    Hint: a boolean mask from the cache, multiplied with dy.
    """
    raise NotImplementedError
'''

HINTS = [
    "Forward: y = np.maximum(x, 0) makes a new array (x stays as it was); return (y, x) to keep x as the cache.",
    "Backward: the slope of max(x, 0) is 1 for x > 0 and 0 for x < 0; dx = dy * (x > 0).",
    "Keep the dtype: dy * (x > 0) is dy's dtype, since a bool array multiplies without changing it.",
]

SHAPES = [(7,), (2, 3, 4), (2, 3, 3, 4)]


def _input(rng, shape, dtype):
    x = rng.standard_normal(shape)
    x = np.where(np.abs(x) < 0.05, 0.1 * np.sign(x) + 0.1 * (x == 0), x)  # away from the kink at 0
    return x.astype(dtype)


def _forward(module):
    fn = function(module, "relu_forward")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for shape in SHAPES:
            x = _input(rng, shape, dtype)
            before = x.copy()
            out = fn(x)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise Wrong("relu_forward must return a pair (y, cache)")
            y = as_array(out[0], f"y ({np.dtype(dtype).name}, x of shape {shape})", shape, dtype)
            if not np.array_equal(x, before):
                raise Wrong("relu_forward changed x: compute y in a new array")
            want = np.maximum(before, 0)
            if not np.array_equal(y[before < 0], want[before < 0]):
                raise Wrong("y wrong where x < 0: max(x, 0) is 0 there")
            if not np.array_equal(y[before > 0], want[before > 0]):
                raise Wrong("y wrong where x > 0: max(x, 0) is x there")
    return f"y = max(x, 0) on {len(SHAPES)} shapes, float32 and float64"


def _backward(module):
    forward, backward = function(module, "relu_forward"), function(module, "relu_backward")
    rng = np.random.default_rng(1)
    worst = 0.0
    for dtype in (np.float32, np.float64):
        for shape in SHAPES:
            x = _input(rng, shape, dtype)
            dy = rng.standard_normal(shape).astype(dtype)
            _, cache = forward(x.copy())
            dx = as_array(backward(dy.copy(), cache), f"dx ({np.dtype(dtype).name}, shape {shape})", shape, dtype)
            layer = ReLU()
            layer.forward(x.copy())
            want = layer.backward(dy.copy())  # the library's ReLU
            for where, name, rule in ((x < 0, "x < 0", "the gradient must be 0 there"),
                                      (x > 0, "x > 0", "it must be dy there: the slope is 1")):
                if not np.allclose(dx[where], want[where], rtol=1e-6, atol=0):
                    raise Wrong(f"dx wrong where {name} ({rule})")
            if dtype == np.float64:  # the gradient check: float64 central differences of sum(y * dy)
                x64 = x.copy()
                numeric = numerical_gradient(lambda: float((forward(x64.copy())[0] * dy).sum()), x64)
                worst = max(worst, max_error(dx, numeric))
    if worst > 1e-6:
        raise Wrong(f"dx disagrees with central differences (max relative error {worst:.1e})")
    return (f"dx = dy where x > 0, else 0, as the library's ReLU, float32 and float64; "
            f"max relative error {worst:.0e} against float64 central differences")


PARTS = [("forward", _forward), ("backward", _backward)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
