"""Where the array module comes from: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op in minipixel is written once against an array module called ``xp``.
This file is the only place that decides which module that is, and the only
place that imports CuPy, and only when the GPU is asked for.

A device is a name for an array module: "cpu" is NumPy, "gpu" is CuPy, and
``register_device`` adds others. The tests register a CPU stand-in for CuPy
(``minipixel.testing.strict``) whose arrays, like CuPy's, refuse to turn into
NumPy arrays behind your back, so a hidden host round trip fails without a GPU.
"""
import contextlib

import numpy as np

# device name -> array module; "gpu" joins on the first successful get_xp("gpu").
_devices = {"cpu": np}


class DeviceError(RuntimeError):
    """The requested device cannot be used (no CuPy, or no GPU)."""


def register_device(name, module):
    """Make ``get_xp(name)`` return ``module``: an array module with the part of
    NumPy's API that minipixel uses, an ``ndarray`` type (how ``array_module``
    recognises its arrays) and arrays with a ``.get()`` that copies to the host."""
    if name in ("cpu", "gpu"):
        raise ValueError(f"device {name!r} is built in and cannot be replaced")
    _devices[name] = module


def get_xp(device="cpu"):
    """Return the array module for ``device``: ``numpy`` for "cpu", ``cupy`` for
    "gpu", or the module registered under that name."""
    if device in _devices:
        return _devices[device]
    if device != "gpu":
        names = ", ".join(repr(name) for name in sorted(set(_devices) | {"gpu"}))
        raise ValueError(f"device must be one of {names}, got {device!r}")
    try:
        import cupy
    except ImportError as err:
        raise DeviceError(
            "--device gpu needs CuPy, which is not installed: install the GPU extra with "
            "`pip install -e .[gpu]` (CUDA 12: cupy-cuda12x and its CUDA libraries) or "
            "`pip install -e .[gpu-cuda13]`, or use --device cpu"
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise DeviceError(f"--device gpu: CuPy is installed but no CUDA GPU can be used ({err})") from err
    if count == 0:
        raise DeviceError("--device gpu: CuPy is installed but it sees no CUDA GPU")
    try:  # a driver without the CUDA libraries passes the count, and fails at the first kernel
        a = cupy.arange(4, dtype=cupy.float32).reshape(2, 2)
        float(((a @ a) * 2).sum())  # NVRTC compiles the element-wise kernel, cuBLAS does the product
    except Exception as err:
        raise DeviceError(
            f"--device gpu: CuPy {cupy.__version__} sees {count} GPU(s) but cannot compile or run a kernel "
            f"({type(err).__name__}: {err}). CuPy needs the CUDA libraries NVRTC and cuBLAS of its CUDA "
            "version: `pip install \"cupy-cuda12x[ctk]\"` (or cupy-cuda13x[ctk]) brings them from the "
            "package index, or install the CUDA Toolkit; `python -c \"import cupy; cupy.show_config()\"` "
            "shows what CuPy found"
        ) from err
    _devices["gpu"] = cupy
    return cupy


def _is_cupy(xp):
    return xp.__name__ == "cupy"


def chunk_rows(xp):
    """How many image positions a layer processes at once.

    On the CPU, a few thousand: small enough that a chunk's intermediate
    arrays (a 3x3 layer's im2col matrix of 1,568 rows x 640 columns is 4 MB)
    stay in the cache between the steps that use them, large enough that each
    matrix product is still efficient. On the GPU, everything at once: the
    GPU needs large products to keep its thousands of cores busy.

    A registered stand-in runs on the CPU and gets the CPU's chunks: the loop
    over several chunks is the code that a one-chunk GPU pass does not reach,
    so a test on the stand-in covers both. A module with ``whole_batch = True``
    gets the GPU's one chunk (the stand-in, when it counts a GPU's launches).
    """
    return 2**62 if _is_cupy(xp) or getattr(xp, "whole_batch", False) else 2048


def array_module(a):
    """The module that owns array ``a`` (numpy, cupy or a registered one), found
    without importing CuPy. Anything that is not an array counts as NumPy's."""
    for xp in _devices.values():
        if isinstance(a, xp.ndarray):
            return xp
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def device_of(a):
    """The device name of array ``a``: "cpu" for NumPy, "gpu" for CuPy, or the registered name."""
    xp = array_module(a)
    return "gpu" if _is_cupy(xp) else next(name for name, module in _devices.items() if module is xp)


def to_numpy(a):
    """A NumPy copy (or view) of ``a``, wherever it lives: device arrays are copied
    to the host explicitly, by their ``.get()``."""
    if array_module(a) is np:
        return np.asarray(a)
    return a.get()


def synchronize(xp):
    """Wait until queued GPU work is done (nothing to wait for on the CPU or a
    stand-in, which run each op as it comes), so a timer around GPU work
    measures the work and not just its launch."""
    if _is_cupy(xp):
        xp.cuda.get_current_stream().synchronize()


def can_capture(xp):
    """Whether ``capture`` works on ``xp``: CuPy, or a stand-in with a capture mode."""
    return _is_cupy(xp) or hasattr(xp, "capture")


def own_stream(xp):
    """A context in which ``xp``'s ops go to a stream of their own: a new CuPy
    stream on a GPU (the default stream cannot be captured), nothing elsewhere."""
    return xp.cuda.Stream() if _is_cupy(xp) else contextlib.nullcontext()  # pragma: no mutate (CuPy: a GPU only)


def capture(xp):
    """A context that records the ops run inside it on ``xp``'s device, without
    running them, into the graph it yields; ``graph.launch()`` runs them all
    again, on the same arrays, in one launch.

    On CuPy, CUDA stream capture of the current stream (inside ``own_stream``).
    What a graph cannot hold must stay outside (on CuPy an error, or a graph
    that is wrong when replayed; the stand-in ``testing.strict`` refuses each
    with ``CaptureError``): cuBLAS and cuRAND calls, copies to or from the
    host, waits for the device, and allocations (a graph keeps the addresses
    it saw, so every array it writes must outlive it).
    """
    if _is_cupy(xp):
        return _cuda_capture(xp)  # pragma: no mutate (a GPU only)
    if hasattr(xp, "capture"):
        return xp.capture()
    raise ValueError(f"graph capture needs a GPU (CuPy) or a stand-in with a capture mode, not {xp.__name__}")


# The CUDA side, which only a GPU runs (scripts/gpu_check.py): not mutated.
# pragma: no mutate block


class _CudaGraph:
    def __init__(self, stream):
        self.stream, self.graph = stream, None

    def launch(self):
        self.graph.launch(self.stream)


@contextlib.contextmanager
def _cuda_capture(cp):
    stream = cp.cuda.get_current_stream()
    graph = _CudaGraph(stream)
    stream.begin_capture()
    try:
        yield graph
    finally:
        graph.graph = stream.end_capture()
