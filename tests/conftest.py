import numpy as np
import pytest

from minipixel.data import ImageSet
from minipixel.datasets import write_npz


def bars(n, size=8, seed=0):
    """Binary images with one vertical and one horizontal bar: easy structure a model learns fast."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 1), np.uint8)
    for k in range(n):
        images[k, :, rng.integers(size), 0] = 1
        images[k, rng.integers(size), :, 0] = 1
    return images


@pytest.fixture
def tiny_npz(tmp_path):
    """An .npz dataset of 64 binary 8x8 images in the project's own format."""
    path = tmp_path / "bars.npz"
    write_npz(path, ImageSet(images=bars(64), max_value=1, source="bars"))
    return path


def _gpu_skip_reason():
    """None if CuPy imports and sees a GPU, else why the "gpu" case is skipped."""
    from minipixel.backend import DeviceError, get_xp

    try:
        get_xp("gpu")  # imports CuPy: only reached when a test asks for the gpu case
    except DeviceError as err:
        return str(err)
    return None


@pytest.fixture(params=["cpu", "gpu", "strict"])
def device(request):
    """The device name a test runs on, once per device (Chainer-style):
    "cpu" (NumPy), "gpu" (CuPy; skipped without CuPy or a GPU) and "strict",
    the CPU stand-in for CuPy that fails on any implicit host copy
    (``minipixel.testing.strict``)."""
    if request.param == "gpu":
        reason = _gpu_skip_reason()
        if reason:
            pytest.skip(f"gpu: {reason}")
    if request.param == "strict":
        from minipixel import backend
        from minipixel.testing import strict

        backend.register_device("strict", strict)
    return request.param
