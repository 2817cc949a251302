"""Exercise "xp": make an op array-module agnostic, checked on the CuPy stand-in that refuses hidden host copies.

The learner rewrites two NumPy-only functions (a stable softmax and a bias + ReLU)
against ``xp = array_module(x)``. The grader runs them on NumPy arrays and on the
strict stand-in (``minipixel.testing.strict``), whose arrays refuse implicit copies
to the host; while the learner's code runs there, NumPy's own functions called on a
stand-in array are refused too (on CuPy some would dispatch, some would copy or fail:
the rule is to call ``xp``), and every number brought to the host is counted.
"""
import contextlib
import re
from pathlib import Path

import numpy as np

from .. import backend
from ..losses import log_softmax
from ..testing import strict
from .grade import Wrong, as_array, function, run_parts

NAME = "xp"
TITLE = "one op for the CPU and the GPU: write it against xp = array_module(x), with no hidden host copy"
CHAPTER = "docs/learn/xp.md"
SOLUTION = ("minipixel/backend.py, function array_module; an op written once against xp: "
            "minipixel/losses.py, function log_softmax")

SKELETON = '''"""Exercise xp: softmax and bias_relu on any array module. Check it with: minipixel learn check xp"""
import numpy as np

from minipixel.backend import array_module


# What you start from: right on NumPy arrays, wrong on a GPU. np.asarray copies a
# device array to the host (CuPy refuses it), np.exp is NumPy's, and the result
# would come back as a NumPy array.
def softmax_numpy(z):
    z = np.asarray(z)
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def bias_relu_numpy(x, b):
    return np.maximum(np.asarray(x) + np.asarray(b, dtype=x.dtype), 0)


def softmax(z):
    """softmax_numpy, on whatever array module z comes from (NumPy, CuPy, the stand-in).

    Stable: subtract each row's max before exp. Over the last axis. Keep z's dtype,
    do not change z, and return an array of z's module: no copy to the host, no float(...).

    Hint: xp = array_module(z), then xp.exp; z.max(axis=-1, keepdims=True) is a method of z.
    """
    raise NotImplementedError


def bias_relu(x, b):
    """max(x + b, 0), b (shape (C,)) added along the last axis of x; x's module and dtype.

    b comes from the same module as x. Hint: xp.maximum, and xp.asarray(b, dtype=x.dtype).
    """
    raise NotImplementedError
'''

HINTS = [
    "Start each function with xp = array_module(z) and call xp.exp, xp.maximum where the NumPy version calls np.*.",
    "No np.asarray(z) and no float(z.max()): each copies to the host. Keep the max an array: "
    "z.max(axis=-1, keepdims=True), and subtract it.",
    "xp.asarray(b, dtype=x.dtype) keeps b where it is (no copy for an array of xp already); "
    "return the array you computed, not to_numpy(...) or .get() of it.",
    "Never import cupy: array_module finds CuPy's module from the array, and your file runs where CuPy "
    "is not installed.",
]

SOFTMAX_SHAPES = [(7,), (4, 10), (2, 3, 256)]
X_SHAPE, B_SHAPE = (2, 3, 4, 8), (8,)
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-12}


class NumpyOnDevice(TypeError):
    """The learner called one of NumPy's functions on a device array."""


def _refusal(name):
    return NumpyOnDevice(f"np.{name} on a device array: use xp = array_module(x) and xp.{name}")


def _refuse_ufunc(self, ufunc, method, *inputs, **kwargs):
    if not isinstance(inputs[0], strict.ndarray):  # a NumPy scalar's operator (np.float32(2) * a): CuPy's too
        return _ORIGINAL[0](self, ufunc, method, *inputs, **kwargs)
    raise _refusal(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}")


def _refuse_function(self, func, types, args, kwargs):
    raise _refusal(func.__name__)


_ORIGINAL = (strict.ndarray.__array_ufunc__, strict.ndarray.__array_function__)


@contextlib.contextmanager
def _strict_device():
    """The stand-in registered as a device, NumPy's functions refused on its arrays, its counts cleared."""
    backend.register_device("strict", strict)
    strict.ndarray.__array_ufunc__, strict.ndarray.__array_function__ = _refuse_ufunc, _refuse_function
    strict.counts.clear()
    try:
        yield
    finally:
        strict.ndarray.__array_ufunc__, strict.ndarray.__array_function__ = _ORIGINAL


def _call_on_device(fn, name, *args):
    """``fn(*args)`` on stand-in arrays; a hidden host copy or a NumPy function on them is Wrong, by name."""
    with _strict_device():
        try:
            out = fn(*args)
        except NumpyOnDevice as err:
            raise Wrong(f"{name}: {err}") from None
        except TypeError as err:
            if "Implicit conversion" in str(err) or "host (NumPy) array" in str(err):
                raise Wrong(f"{name}: a hidden copy to the host: np.asarray / np.array of a device array, or a "
                            "NumPy array mixed into a device op (CuPy refuses both): use xp and keep the "
                            "arrays on the device") from None
            raise
        except ValueError as err:
            if "cannot be used for fill" in str(err):
                raise Wrong(f"{name}: a NumPy array assigned into a device array: make it with xp") from None
            raise
        counts = dict(strict.counts)
    if counts.get("sync"):
        raise Wrong(f"{name}: brought a number to the host (float(...), int(...), .item() or an if on an array): "
                    "on a GPU each one waits for the device; keep it an array, e.g. z.max(axis=-1, keepdims=True)")
    if isinstance(out, np.ndarray):
        raise Wrong(f"{name}: returned a NumPy array for a device input: return the array of the input's "
                    "module (array_module(x)), not to_numpy(...) or .get() of it")
    if not isinstance(out, strict.ndarray):
        raise Wrong(f"{name}: on a device array it should return an array of the same module, "
                    f"got {type(out).__name__}")
    if counts.get("get") or counts.get("asarray"):
        raise Wrong(f"{name}: copied to the host and back (.get(), to_numpy, then xp.asarray): compute on the device")
    return out


def _softmax_reference(z):
    return np.exp(log_softmax(z.astype(np.float64)))  # the library's stable log softmax, in float64


def _inputs(rng, dtype):
    large = 3 * rng.standard_normal((2, 16))
    large[0] += 1000  # one row far up, one far down: the max must be each row's
    large[1] -= 1000
    zs = [large.astype(dtype)] + [(3 * rng.standard_normal(shape)).astype(dtype) for shape in SOFTMAX_SHAPES]
    x = rng.standard_normal(X_SHAPE).astype(dtype)
    b = rng.standard_normal(B_SHAPE).astype(dtype)
    return zs, x, b


def _check_softmax(got, z, dtype, where):
    p = as_array(got, f"softmax ({where}, {np.dtype(dtype).name}, z of shape {z.shape})", z.shape, dtype)
    if not np.isfinite(p).all():
        raise Wrong(f"softmax ({where}): inf/nan at z near +-1000: subtract each row's max "
                    "(z.max(axis=-1, keepdims=True)) before exp")
    want = _softmax_reference(z)
    if not np.allclose(p, want, rtol=0, atol=TOLERANCE[dtype]):
        if z.ndim > 1 and np.allclose(p.sum(axis=0), 1):
            raise Wrong(f"softmax ({where}): over the wrong axis: it is over the last axis (axis=-1)")
        raise Wrong(f"softmax ({where}): wrong values: exp(z - max) / sum of exp(z - max), over the last axis")


def _check_bias_relu(got, x, b, dtype, where):
    y = as_array(got, f"bias_relu ({where}, {np.dtype(dtype).name})", x.shape, dtype)
    if not np.array_equal(y, np.maximum(x + b, 0)):
        raise Wrong(f"bias_relu ({where}): wrong values: max(x + b, 0), b added along the last axis")


@np.errstate(all="ignore")  # an overflow is named below, not warned about
def _numpy(module):
    softmax, bias_relu = function(module, "softmax"), function(module, "bias_relu")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        zs, x, b = _inputs(rng, dtype)
        for z in zs:
            before = z.copy()
            got = softmax(z)
            if not np.array_equal(z, before):
                raise Wrong("softmax changed z: compute in new arrays")
            _check_softmax(got, before, dtype, "NumPy")
        _check_bias_relu(bias_relu(x.copy(), b.copy()), x, b, dtype, "NumPy")
    return "softmax and bias_relu equal the library's on NumPy arrays, float32 and float64, rows at +-1000 too"


@np.errstate(all="ignore")
def _device(module):
    softmax, bias_relu = function(module, "softmax"), function(module, "bias_relu")
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        zs, x, b = _inputs(rng, dtype)
        for z in zs:
            got = _call_on_device(softmax, "softmax", strict.asarray(z))
            _check_softmax(got.get(), z, dtype, "device")
        got = _call_on_device(bias_relu, "bias_relu", strict.asarray(x), strict.asarray(b))
        _check_bias_relu(got.get(), x, b, dtype, "device")
    return ("on the strict stand-in for CuPy: device arrays in, device arrays out, no host copy, "
            "no number brought to the host, no NumPy function on a device array; float32 and float64")


CUPY = re.compile(r"^\s*(import\s+cupy|from\s+cupy\b)", re.MULTILINE)


def _no_cupy(module):
    if CUPY.search(Path(module.__file__).read_text()):
        raise Wrong("your file imports cupy: it must run where CuPy is not installed; "
                    "array_module(x) finds the module from the array, without importing it")
    function(module, "softmax")(np.zeros(3)), function(module, "bias_relu")(np.zeros(3), np.zeros(3))  # written?
    return "no import of cupy: the array decides the module"


PARTS = [("numpy", _numpy), ("device", _device), ("no cupy", _no_cupy)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
