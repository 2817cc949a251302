"""Fused kernels: the cached sampler's work at one position in few GPU launches.

The cached sampler (``sampling``) computes each layer at one position at a
time: a (n, K) by (K, O) product with n = the images in the batch, then a
bias, maybe a residual, maybe a ReLU. On the CPU each of those is a NumPy call
of a few microseconds. On a GPU each array operation is a kernel launch, and a
launch costs about as much as the arithmetic of such a small layer: the
sampler is launch-bound. So on CuPy each function here is **one** kernel
(CUDA C, compiled once per dtype by NVRTC), where NumPy needs several calls:

- ``dense``: ``out = [relu]([relu](x) @ W + bias [+ residual])`` for one
  layer at one position (a 1x1 layer's input vector, or a k x k layer's
  current-row window of its input map);
- ``draw_into``: ``sampling.draw`` of one sub-pixel of every image, writing the
  labels and the network's input value (label / (levels - 1)) in place.

Each has a NumPy twin, written with the same array calls the layers would make
without it (``draw_into``'s does ``draw``'s arithmetic in reused buffers, the same
draws bit for bit): that twin is what runs on the CPU (so the CPU path is exactly the
NumPy code), and on the CuPy stand-in (``testing.strict``), which runs it and
counts it as one launch. The tests compare each CUDA kernel with its twin on a
GPU. The kernels sum in their own order (one thread per output, k = 0, 1, ...),
so they agree with NumPy and cuBLAS to rounding, not bit for bit.
"""
import threading

import numpy as np

from .backend import _is_cupy, array_module


def dense(x, W, bias, out, relu_in=False, relu=False, residual=None):
    """One layer at one position: ``out[...] = act(act_in(x) @ W + bias (+ residual))``.

    x: (n, K); W: (K, O), contiguous; bias: (O,), or (n, O) (one row per image);
    out: (n, O), written in place (a view is fine: rows may be strided, each row contiguous);
    relu_in: max(x, 0) first; relu: max(., 0) last; residual: optional (n, O), added before the ReLU.
    Returns ``out``.
    """
    if isinstance(out, np.ndarray):  # NumPy: the twin (checked first: the CPU sampler calls this 20 times a position)
        _dense_twin(x, W, bias, out, relu_in, relu, residual)
        return out
    xp = array_module(out)
    if _is_cupy(xp):
        _dense_cuda(xp, x, W, bias, out, relu_in, relu, residual)  # pragma: no mutate (a GPU only)
    else:  # the stand-in: the twin, counted as one launch
        xp.kernel("dense", _dense_twin, x, W, bias, out, relu_in, relu, residual)
    return out


def _dense_twin(x, W, bias, out, relu_in, relu, residual):
    if relu_in:
        x = np.maximum(x, 0)
    np.matmul(x, W, out=out)
    out += bias
    if residual is not None:
        out += residual
    if relu:
        np.maximum(out, 0, out=out)


def draw_into(logits, u, temperature, labels, inputs):
    """Draw one level per image (``sampling.draw``) and write it in place.

    logits: (n, levels); u: (n,) uniform numbers; labels: (n,) uint8, set to
    the levels drawn; inputs: (n,) floats, set to label / (levels - 1) (the
    network's input there, as ``data.labels_to_inputs``). Returns ``labels``.
    u must be float64 and inputs of the logits' dtype (the CUDA kernel's types).
    """
    if labels.dtype != np.uint8 or u.dtype != np.float64 or inputs.dtype != logits.dtype:
        raise TypeError(f"fused draw: expected uint8 labels, float64 u and inputs of the logits' dtype, "
                        f"got {labels.dtype}, {u.dtype}, {inputs.dtype}")
    if isinstance(labels, np.ndarray):
        _draw_twin(logits, u, temperature, labels, inputs)
        return labels
    xp = array_module(labels)
    if _is_cupy(xp):
        _draw_cuda(xp, logits, u, temperature, labels, inputs)  # pragma: no mutate (a GPU only)
    else:
        xp.kernel("draw_into", _draw_twin, logits, u, temperature, labels, inputs)
    return labels


def _draw_twin(logits, u, temperature, labels, inputs):
    """``sampling.draw`` step by step in reused buffers, then the input value.

    The same float64 arithmetic in the same order, so the same draws, bit for
    bit (tested against ``draw``); only the temporaries are gone: the CPU
    sampler calls this once per sub-pixel, where each allocation and extra call
    costs about a microsecond.
    """
    n, levels = logits.shape
    if temperature == 0:  # draw's argmax (its float64 copy of the logits changes no order)
        labels[...] = logits.argmax(axis=1)
    else:
        z, cdf, top, below = _draw_buffers(n, levels)
        np.copyto(z, logits)
        if temperature != 1:  # x / 1.0 is x exactly
            z /= temperature
        np.maximum.reduce(z, axis=1, keepdims=True, out=top)  # the ufunc methods: np.max's wrapper costs more here
        z -= top
        np.exp(z, out=z)
        np.add.accumulate(z, axis=1, out=cdf)  # cumsum
        np.multiply(u[:, None], cdf[:, -1:], out=top)
        # draw() counts cdf[k] <= u * total over every k and clips to levels - 1.
        # cdf[-1] <= u * total holds only where u * total reaches the total (u = 1:
        # for u < 1 the float64 product stays below it), and then every earlier k
        # counts too: counting the first levels - 1 gives the same, without the clip.
        np.less_equal(cdf[:, :-1], top, out=below)
        np.add.reduce(below, axis=1, out=labels)  # sum
    np.copyto(inputs, labels)  # labels_to_inputs: label / (levels - 1), divided in the inputs' dtype
    inputs /= levels - 1


_local = threading.local()


def _draw_buffers(n, levels):
    """This thread's buffers for ``_draw_twin`` at n images and ``levels``: z, cdf, top, below."""
    key = (n, levels)
    if getattr(_local, "key", None) != key:
        _local.key = key
        _local.buffers = (np.empty((n, levels)), np.empty((n, levels)), np.empty((n, 1)),
                          np.empty((n, levels - 1), dtype=bool))
    return _local.buffers


# --- CUDA --------------------------------------------------------------------------
# This part runs only on a GPU, where scripts/gpu_check.py compares each kernel with its
# twin; no test elsewhere can reach it, so mutation testing leaves it out (the pragma
# covers every statement below it):
# pragma: no mutate block
# Strides are in elements; each row of every 2-D argument is contiguous.
SOURCE = r"""
template<typename T>
__global__ void dense(const T* x, long long xs, const T* W, const T* b, long long bs,
                      const T* r, long long rs, T* y, long long ys,
                      int n, int K, int O, int relu_in, int has_r, int relu)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y;
    if (o >= O || row >= n) return;
    const T* xr = x + row * xs;
    T acc = 0;
    for (int k = 0; k < K; ++k) {
        T v = xr[k];
        if (relu_in && v < 0) v = 0;
        acc += v * W[(long long)k * O + o];
    }
    acc += b[row * bs + o];
    if (has_r) acc += r[row * rs + o];
    if (relu && acc < 0) acc = 0;
    y[row * ys + o] = acc;
}

// One thread per image: the first level whose cumulative probability exceeds u,
// computed in double precision as sampling.draw computes it.
template<typename T>
__global__ void draw_into(const T* logits, long long ls, int L, const double* u, long long us,
                          double temperature, unsigned char* labels, long long lbs,
                          T* inputs, long long is, int n)
{
    int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= n) return;
    const T* z = logits + row * ls;
    int label = 0;
    if (temperature == 0.0) {
        double best = (double)z[0];
        for (int k = 1; k < L; ++k) {
            if ((double)z[k] > best) { best = (double)z[k]; label = k; }
        }
    } else {
        double top = (double)z[0] / temperature;
        for (int k = 1; k < L; ++k) top = fmax(top, (double)z[k] / temperature);
        double total = 0.0;
        for (int k = 0; k < L; ++k) total += exp((double)z[k] / temperature - top);
        double threshold = u[row * us] * total;
        double cdf = 0.0;
        for (int k = 0; k < L; ++k) {
            cdf += exp((double)z[k] / temperature - top);
            if (cdf <= threshold) ++label;
        }
        if (label > L - 1) label = L - 1;
    }
    labels[row * lbs] = (unsigned char)label;
    inputs[row * is] = (T)label / (T)(L - 1);
}
"""
_modules = {}  # CuPy's RawModule, compiled on first use (one per process)
_BLOCK = 128


def _module(cp):
    if "module" not in _modules:
        names = [f"{kernel}<{t}>" for kernel in ("dense", "draw_into") for t in ("float", "double")]
        _modules["module"] = (cp.RawModule(code=SOURCE, options=("--std=c++11",), name_expressions=names), names)
    return _modules["module"][0]


def _ctype(a):
    if a.dtype == np.float32:
        return "float"
    if a.dtype == np.float64:
        return "double"
    raise TypeError(f"fused kernels: expected float32 or float64 arrays, got {a.dtype}")


def _rows(a, name, n, width):
    """a as (n, width) with contiguous rows -> its row stride in elements (0: one row for every image)."""
    if a.ndim == 1:
        a = a[None]
    if a.shape[-1] != width or a.shape[0] not in (1, n) or a.ndim != 2:
        raise ValueError(f"fused kernel: {name}: expected ({n}, {width}) or ({width},), got shape {a.shape}")
    if width > 1 and a.strides[1] != a.itemsize:
        raise ValueError(f"fused kernel: {name}: each row must be contiguous, got strides {a.strides}")
    return np.int64(0 if a.shape[0] == 1 else a.strides[0] // a.itemsize)


def _dense_cuda(cp, x, W, bias, out, relu_in, relu, residual):
    n, O = out.shape
    K = x.shape[1]
    if W.shape != (K, O) or not W.flags.c_contiguous:
        raise ValueError(f"fused dense: W: expected a contiguous ({K}, {O}) matrix, got shape {W.shape}")
    T = _ctype(out)
    for a in (x, W, bias) + (() if residual is None else (residual,)):
        if a.dtype != out.dtype:
            raise TypeError(f"fused dense: every array must be {out.dtype}, got {a.dtype}")
    r = out if residual is None else residual
    kernel = _module(cp).get_function(f"dense<{T}>")
    grid = ((O + _BLOCK - 1) // _BLOCK, n)
    kernel(grid, (_BLOCK,), (x, _rows(x, "x", n, K), W, bias, _rows(bias, "bias", n, O), r, _rows(r, "residual", n, O),
                             out, _rows(out, "out", n, O), np.int32(n), np.int32(K), np.int32(O),
                             np.int32(relu_in), np.int32(residual is not None), np.int32(relu)))


def _draw_cuda(cp, logits, u, temperature, labels, inputs):
    n, L = logits.shape
    kernel = _module(cp).get_function(f"draw_into<{_ctype(logits)}>")
    stride = lambda a: np.int64(a.strides[0] // a.itemsize)  # noqa: E731
    kernel(((n + _BLOCK - 1) // _BLOCK,), (_BLOCK,),
           (logits, _rows(logits, "logits", n, L), np.int32(L), u, stride(u), np.float64(temperature),
            labels, stride(labels), inputs, stride(inputs), np.int32(n)))
