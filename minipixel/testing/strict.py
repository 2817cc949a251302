"""A CPU stand-in for CuPy: arrays that refuse to become NumPy arrays behind your back.

On a GPU, ``np.asarray(cupy_array)`` raises, and so does an op that mixes a
CuPy array with a NumPy array: every copy between the GPU and the host must be
asked for. Code that passes its CPU tests can still do such a copy in the
middle of training or sampling, and nobody finds out until it runs on a GPU.
This module finds out on the CPU. It is an array module (use it as ``xp``)
whose ``ndarray`` wraps a NumPy array and behaves like CuPy's:

- ``np.asarray(a)`` / ``np.array(a)`` raise TypeError, as in CuPy;
- an op mixing ``a`` with a NumPy array (``a + host``, ``np.add(host, a)``,
  ``host += a``) raises TypeError; Python and NumPy scalars are fine;
- ``a[...] = host`` raises ValueError, as in CuPy ("non-scalar numpy.ndarray
  cannot be used for fill"); NumPy arrays as *indices* are allowed (CuPy
  copies them over);
- NumPy ufuncs and functions called on ``a`` (``np.maximum(a, 0)``,
  ``np.count_nonzero(a)``) run here and return strict arrays, as CuPy's
  ``__array_ufunc__`` / ``__array_function__`` do; reductions give 0-d arrays;
- ``float(a)``, ``int(a)``, ``bool(a)``, ``a.item()`` on one element are
  allowed (on a GPU they wait for the device, and copy one number);
- the explicit copies: ``asarray(host)`` (host to device, always a copy) and
  ``a.get()`` / ``asnumpy(a)`` (device to host, a copy).

Every op goes through ``_op``, which counts it by name in ``counts``; on CuPy
most ops are a kernel launch. Views (a ``reshape``, a slice) are counted too,
and again under ``counts["views"]``: they launch nothing; ``launches()`` is
the count of the others. ``counts["sync"]`` counts the numbers brought to the host
(``float(a)`` and the like: each one waits for the GPU), ``counts["get"]``
the explicit copies to the host.

Graph capture, as CUDA stream capture (``capture()``, ``Graph``): inside
``with strict.capture() as graph:`` the ops are recorded, not run, and
``graph.launch()`` runs them again, in order, on the same arrays. What a
captured CUDA graph cannot hold is refused there with ``CaptureError``: a BLAS
product (cuBLAS), a random draw, a copy to or from the host, a wait for the
device (``float(a)`` and the like) and an allocation (an op without ``out=``).
A view is made at once (it launches nothing). To use it as a device::

    from minipixel import backend
    from minipixel.testing import strict
    backend.register_device("strict", strict)
    model = PixelCNN(config, device="strict")
"""
import builtins
import collections
import contextlib

import numpy as np

counts = collections.Counter()  # op name -> calls since the last counts.clear()
dtypes = collections.Counter()  # float dtype name -> operands and results of that dtype, since dtypes.clear()
whole_batch = False  # True: layers take the whole batch as one chunk, as on a GPU (backend.chunk_rows)

# Dtypes and constants are NumPy's, as in CuPy.
bool_, uint8, int32, int64, intp = np.bool_, np.uint8, np.int32, np.int64, np.intp
float16, float32, float64 = np.float16, np.float32, np.float64
dtype, newaxis, inf, pi = np.dtype, np.newaxis, np.inf, np.pi

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")


def _unwrap(obj):
    """The NumPy array inside a strict array (also inside lists and tuples); a
    host array refused, as CuPy refuses one in a device op (a 0-d one passes, as a scalar)."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, np.ndarray) and obj.ndim > 0:
        raise TypeError(f"Unsupported type {type(obj)}: a host (NumPy) array in a device op; "
                        "copy it to the device with xp.asarray first")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(item) for item in obj)
    return obj


def _index(key):
    """An index with its strict arrays unwrapped; NumPy arrays may index (CuPy copies them over)."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    return key._a if isinstance(key, ndarray) else key


def _wrap(result):
    """NumPy results as strict arrays; a NumPy scalar as a 0-d array, as CuPy returns."""
    if isinstance(result, np.ndarray):
        return ndarray(result)
    if isinstance(result, np.generic):
        return ndarray(np.asarray(result))
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    return result


def _float_dtypes(values):
    """The float dtypes among an op's operands: strict arrays and NumPy scalars
    (Python floats have none: they take the array's precision)."""
    for v in values:
        if isinstance(v, (ndarray, np.ndarray, np.generic)) and v.dtype.kind in "fc":
            yield v.dtype.name


# The ops that may hand back a view of their input instead of computing anything.
# (An in-place op such as ``a += b`` also returns ``a``, but it runs a kernel.)
VIEW_OPS = {"__getitem__", "reshape", "transpose", "ravel", "squeeze", "view", "broadcast_to", "ascontiguousarray"}


def _count(name, result, source):
    """Count one op: also as ``views`` when it is a view op that made a view of
    ``source`` (no kernel on a GPU)."""
    counts[name] += 1
    if (name in VIEW_OPS and isinstance(result, np.ndarray) and isinstance(source, np.ndarray)
            and np.may_share_memory(result, source)):
        counts["views"] += 1


def launches():
    """The kernel launches counted since ``counts.clear()``: every op but the views,
    the uninitialised allocations, the copies to and from the host and the waits
    (CuPy launches nothing for a view or for ``empty``)."""
    others = ("views", "sync", "get", "asarray", "empty", "empty_like")  # an allocation launches nothing
    return builtins.sum(n for name, n in counts.items() if name not in others) - counts["views"]


class CaptureError(RuntimeError):
    """An op that a captured CUDA graph cannot hold, met inside ``capture()``."""


class Graph:
    """The ops recorded by ``capture()``; ``launch()`` runs them again, in order (``cupy.cuda.Graph``)."""

    def __init__(self):
        self.ops = []  # (function, args, kwargs) on the NumPy arrays inside

    def launch(self):
        counts["graph_launch"] += 1  # one launch on a GPU, however many ops it holds
        for fn, args, kwargs in self.ops:
            fn(*args, **kwargs)


_capturing = None  # the Graph being recorded, or None


@contextlib.contextmanager
def capture():
    """Record the ops run inside into the yielded ``Graph`` instead of running them."""
    global _capturing
    if _capturing is not None:
        raise CaptureError("already capturing: a capture cannot begin inside another")
    _capturing = graph = Graph()
    try:
        yield graph
    finally:
        _capturing = None


def _refuse(what):
    if _capturing is not None:
        raise CaptureError(f"{what} cannot be captured in a CUDA graph")


BLAS = {"matmul", "dot", "vdot", "inner", "outer", "tensordot", "einsum", "__matmul__", "__rmatmul__"}
IN_PLACE = {"fill"}  # methods that write their array and return nothing new (the __i*__ operators too)


def _record(fn, args, kwargs):
    """``_op`` inside ``capture()``: make a view now, record an op that writes an
    existing array, refuse the rest."""
    name = getattr(fn, "__name__", str(fn))
    if name in BLAS:
        raise CaptureError(f"a BLAS product ({name}: cuBLAS) cannot be captured in a CUDA graph; "
                           "use a fused kernel (minipixel.fused.dense)")
    raw_args, raw_kwargs = _unwrap(args), {k: _unwrap(v) for k, v in kwargs.items()}
    if name in VIEW_OPS:
        result = fn(*raw_args, **raw_kwargs)
        source = raw_args[0] if raw_args else None
        if not (isinstance(source, np.ndarray) and np.may_share_memory(result, source)):
            raise CaptureError(f"an allocation ({name} made a copy) cannot be captured in a CUDA graph")
        return _wrap(result)
    out = kwargs.get("out")
    if isinstance(out, tuple) and len(out) == 1:
        out = out[0]
    target = out if isinstance(out, ndarray) else None
    if target is None and (name in IN_PLACE or name.startswith("__i")) and args and isinstance(args[0], ndarray):
        target = args[0]
    if target is None:
        raise CaptureError(f"an allocation ({name} makes a new array) cannot be captured in a CUDA graph: "
                           "write into an array made before (out=)")
    _capturing.ops.append((fn, raw_args, raw_kwargs))
    return target


def _op(fn, *args, **kwargs):
    """Run the NumPy function ``fn`` on strict arrays: the one door every op goes through."""
    if _capturing is not None:
        return _record(fn, args, kwargs)
    dtypes.update(_float_dtypes(args + tuple(kwargs.values())))
    result = fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
    _count(fn.__name__, result, args[0]._a if args and isinstance(args[0], ndarray) else None)
    dtypes.update(_float_dtypes(result if isinstance(result, tuple) else (result,)))
    out = kwargs.get("out")
    if isinstance(out, tuple) and len(out) == 1:  # how the ufunc protocol passes out=
        out = out[0]
    for given in (out, args[0] if args else None):  # out=, or an in-place operator: the same array
        if isinstance(given, ndarray) and result is given._a:
            return given
    return _wrap(result)


def _function(name):
    fn = getattr(np, name)

    def function(*args, **kwargs):
        return _op(fn, *args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``numpy.{name}`` on strict arrays."
    return function


def _method(name):
    fn = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        return _op(fn, self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


# The module's functions: what minipixel calls on ``xp``, and a little more.
zeros, ones, empty, full, arange = map(_function, ("zeros", "ones", "empty", "full", "arange"))
zeros_like, ones_like, empty_like = map(_function, ("zeros_like", "ones_like", "empty_like"))
add, subtract, multiply, divide = map(_function, ("add", "subtract", "multiply", "divide"))
matmul, maximum, minimum, where, clip = map(_function, ("matmul", "maximum", "minimum", "where", "clip"))
exp, log, sqrt, abs, tanh, pad = map(_function, ("exp", "log", "sqrt", "abs", "tanh", "pad"))
isfinite = _function("isfinite")
sum, prod, cumsum, argmax, count_nonzero = map(_function, ("sum", "prod", "cumsum", "argmax", "count_nonzero"))
take, take_along_axis, concatenate, stack = map(_function, ("take", "take_along_axis", "concatenate", "stack"))
ascontiguousarray, transpose, reshape, broadcast_to = map(
    _function, ("ascontiguousarray", "transpose", "reshape", "broadcast_to"))


def kernel(name, twin, *args):
    """A fused kernel (``minipixel.fused``), one launch on CuPy: here its NumPy
    twin runs on the arrays inside, counted as one op called ``name``. A host
    array among the arguments is refused, as in any op."""
    if _capturing is not None:
        _capturing.ops.append((twin, _unwrap(args), {}))
        return
    dtypes.update(_float_dtypes(args))
    twin(*_unwrap(args))
    counts[name] += 1


def asarray(a, dtype=None):
    """``a`` as a strict array: a strict array as it is, anything else copied
    over (the explicit host-to-device transfer; a copy, as on a GPU)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    _refuse("a copy from the host (asarray)")
    counts["asarray"] += 1
    return ndarray(np.array(a, dtype=dtype))


array = asarray


def asnumpy(a):
    """The explicit device-to-host copy, as ``cupy.asnumpy``."""
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


class _Random:
    """``xp.random``: uniform numbers made on the device, as ``cupy.random`` (cuRAND,
    which a capture refuses). The samplers draw theirs on the host, before."""

    def __init__(self):
        self._rng = np.random.default_rng(0)

    def random(self, size=None, dtype=np.float64):
        _refuse("a random draw (cuRAND)")
        counts["random"] += 1
        return ndarray(np.asarray(self._rng.random(size, dtype=dtype)))


random = _Random()


class ndarray:
    """A strict array: a NumPy array ``_a`` that only leaves through ``get()``."""

    def __init__(self, a):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"strict.ndarray wraps a numpy.ndarray, got {type(a).__name__}; use strict.asarray")
        self._a = a

    # -- the explicit ways out, and the refused implicit one
    def get(self):
        """A NumPy copy on the host (CuPy's explicit transfer)."""
        _refuse("a copy to the host (get)")
        counts["get"] += 1
        return self._a.copy()

    def item(self):
        return self._one().item()

    def tolist(self):
        _refuse("a copy to the host (tolist)")
        counts["get"] += 1
        return self._a.tolist()

    def __array__(self, *args, **kwargs):
        raise TypeError(IMPLICIT)

    def __float__(self):
        return float(self._one())

    def __int__(self):
        return int(self._one())

    def __bool__(self):
        return bool(self._one())

    def _one(self):
        _refuse("a wait for the device (a number brought to the host)")
        counts["sync"] += 1  # one number to the host: on a GPU, a wait for the device
        if self._a.size != 1:
            raise TypeError(f"only arrays of one element convert to Python scalars, got shape {self.shape}")
        return self._a.reshape(())

    def __format__(self, spec):
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __repr__(self):
        return "strict." + repr(self._a)

    # -- NumPy's functions on strict arrays stay strict (CuPy's protocols)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _op(ufunc if method == "__call__" else getattr(ufunc, method), *inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _op(func, *args, **kwargs)

    # -- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: self.transpose())

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # -- indexing
    def __getitem__(self, key):
        result = self._a[_index(key)]
        if _capturing is not None and isinstance(result, np.generic):  # CuPy: a 0-d view, not a copy
            result = self._a[(_index(key) if isinstance(key, tuple) else (_index(key),)) + (Ellipsis,)]
        if _capturing is not None and not np.may_share_memory(result, self._a):
            raise CaptureError("an allocation (indexing that copies) cannot be captured in a CUDA graph")
        _count("__getitem__", result, self._a)
        return _wrap(result)

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray) and value.ndim > 0:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill (a host array assigned "
                             "into a device array, which CuPy refuses: copy it over with xp.asarray)")
        if _capturing is not None:
            _capturing.ops.append((np.ndarray.__setitem__, (self._a, _index(key), _unwrap(value)), {}))
            return
        counts["__setitem__"] += 1
        self._a[_index(key)] = _unwrap(value)

    # -- methods and operators: NumPy's, through _op
    reshape, transpose, astype, copy, ravel, squeeze, fill, view = map(
        _method, ("reshape", "transpose", "astype", "copy", "ravel", "squeeze", "fill", "view"))
    sum, prod, mean, max, min, argmax, argmin, cumsum, any, all, clip, take = map(
        _method, ("sum", "prod", "mean", "max", "min", "argmax", "argmin", "cumsum", "any", "all", "clip", "take"))
    __neg__, __pos__, __abs__, __invert__ = map(_method, ("__neg__", "__pos__", "__abs__", "__invert__"))
    __lt__, __le__, __gt__, __ge__, __eq__, __ne__ = map(
        _method, ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"))
    __hash__ = None
    __add__, __radd__, __iadd__ = map(_method, ("__add__", "__radd__", "__iadd__"))
    __sub__, __rsub__, __isub__ = map(_method, ("__sub__", "__rsub__", "__isub__"))
    __mul__, __rmul__, __imul__ = map(_method, ("__mul__", "__rmul__", "__imul__"))
    __truediv__, __rtruediv__, __itruediv__ = map(_method, ("__truediv__", "__rtruediv__", "__itruediv__"))
    __floordiv__, __rfloordiv__, __ifloordiv__ = map(_method, ("__floordiv__", "__rfloordiv__", "__ifloordiv__"))
    __mod__, __rmod__, __imod__ = map(_method, ("__mod__", "__rmod__", "__imod__"))
    __pow__, __rpow__, __ipow__ = map(_method, ("__pow__", "__rpow__", "__ipow__"))
    __and__, __rand__, __iand__ = map(_method, ("__and__", "__rand__", "__iand__"))
    __or__, __ror__, __ior__ = map(_method, ("__or__", "__ror__", "__ior__"))
    __xor__, __rxor__, __ixor__ = map(_method, ("__xor__", "__rxor__", "__ixor__"))
    __matmul__, __rmatmul__ = map(_method, ("__matmul__", "__rmatmul__"))
