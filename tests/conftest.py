import numpy as np
import pytest

from minipixel.data import ImageSet, write_npz


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
