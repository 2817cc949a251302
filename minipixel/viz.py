"""Pictures: sample grids as PNG files (Pillow, no plotting library)."""
import math

import numpy as np
from PIL import Image

from .files import atomic_write


def to_uint8(labels, levels):
    """Labels 0..levels-1 -> pixel values 0..255 (0 -> black, levels-1 -> white)."""
    labels = np.asarray(labels)
    return (labels.astype(np.int64) * 255 // (levels - 1)).astype(np.uint8)


def image_grid(labels, levels, ncols=None, scale=1, pad=1, pad_value=128):
    """Tile images into one picture.

    labels: (n, H, W, C) ints in 0..levels-1, C = 1 or 3
    ncols:  images per row (default: a square-ish grid)
    scale:  each pixel becomes a scale x scale block (so a 32x32 image is visible)
    returns (rows, cols) uint8 for grey, (rows, cols, 3) for colour
    """
    labels = np.asarray(labels)
    if labels.ndim != 4 or labels.shape[3] not in (1, 3):
        raise ValueError(f"expected images of shape (n, H, W, 1 or 3), got {labels.shape}")
    n, H, W, C = labels.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    pixels = to_uint8(labels, levels)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
        H, W = H * scale, W * scale
    grid = np.full((nrows * (H + pad) + pad, ncols * (W + pad) + pad, C), pad_value, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, ncols)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        grid[y : y + H, x : x + W] = pixels[k]
    return grid[:, :, 0] if C == 1 else grid


def save_png(path, pixels):
    """Write a uint8 (rows, cols) or (rows, cols, 3) array as a PNG, atomically."""
    with atomic_write(path) as f:
        Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(f, format="PNG")
    return path
