"""Where the array module comes from: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op in minipixel is written once against an array module called ``xp``.
This file is the only place that decides which module that is, and the only
place that imports CuPy, and only when the GPU is asked for.
"""
import numpy as np


class DeviceError(RuntimeError):
    """The requested device cannot be used (no CuPy, or no GPU)."""


def get_xp(device="cpu"):
    """Return the array module for ``device``: ``numpy`` for "cpu", ``cupy`` for "gpu"."""
    if device == "cpu":
        return np
    if device != "gpu":
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    try:
        import cupy
    except ImportError as err:
        raise DeviceError(
            "--device gpu needs CuPy, which is not installed: install the GPU extra "
            "with `pip install -e .[gpu]` (it pulls cupy-cuda12x; pick the cupy "
            "wheel that matches your CUDA version), or use --device cpu"
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise DeviceError(f"--device gpu: CuPy is installed but no CUDA GPU can be used ({err})") from err
    if count == 0:
        raise DeviceError("--device gpu: CuPy is installed but it sees no CUDA GPU")
    return cupy


def chunk_rows(xp):
    """How many image positions a layer processes at once.

    On the CPU, a few thousand: small enough that a chunk's intermediate
    arrays (a 3x3 layer's im2col matrix of 1,568 rows x 640 columns is 4 MB)
    stay in the cache between the steps that use them, large enough that each
    matrix product is still efficient. On the GPU, everything at once: the
    GPU needs large products to keep its thousands of cores busy.
    """
    return 2048 if xp is np else 2**62


def array_module(a):
    """The module that owns array ``a`` (numpy or cupy), found without importing CuPy."""
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def device_of(a):
    """"gpu" for a CuPy array, "cpu" otherwise."""
    return "cpu" if array_module(a) is np else "gpu"


def to_numpy(a):
    """A NumPy copy (or view) of ``a``, wherever it lives."""
    if array_module(a) is np:
        return np.asarray(a)
    return a.get()


def synchronize(xp):
    """Wait until queued GPU work is done (nothing to wait for on the CPU), so a
    timer around GPU work measures the work and not just its launch."""
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()
