"""Binarized MNIST in the ``.amat`` text format, as Hugo Larochelle publishes it.

The file: one image a line, 784 space-separated values, each 0 or 1, the
28x28 pixels row by row. The published files (train 50,000, valid 10,000,
test 10,000 lines) write each value as one character, ``0`` or ``1``; other
copies spell them as floats (``0.`` / ``1.000000``), which are read too.

These are MNIST digits binarized once by sampling (each pixel 1 with
probability its intensity, see ``minipixel.data.binarize``) and kept fixed,
so that every paper evaluates on the same bits.

    images: (N, 28, 28, 1) uint8 of 0/1, max_value 1, no classes
"""
from pathlib import Path

import numpy as np

from ..data import ImageSet
from ._files import first_unparsable, numbered_lines, read_file_bytes

AMAT_VALUES = 28 * 28


def _amat_line_fast(words):
    """The values of an .amat line written the usual way, one character a value.

    words:   the line's values as a list of bytes, e.g. [b"0", b"1", ...]
    returns: (784,) uint8 of 0 and 1, or None for any other spelling ("1.000000")
             or any error, which the careful parser then looks at
    """
    joined = b"".join(words)
    if len(words) != AMAT_VALUES or len(joined) != AMAT_VALUES:
        return None
    # Characters below "0" wrap around to large numbers, so one test catches them all.
    values = np.frombuffer(joined, dtype=np.uint8) - np.uint8(ord("0"))
    if values.max() > 1:
        return None
    return values


def _amat_line_careful(path, number, words):
    """The values of an .amat line in any spelling that parses to exactly 0 or 1.

    Slower than ``_amat_line_fast``, but says what is wrong and where.
    """
    if len(words) != AMAT_VALUES:
        raise ValueError(
            f"{path}: expected {AMAT_VALUES} values per line in an .amat file, line {number} has {len(words)}"
        )
    try:
        values = np.array(words, dtype=np.float64)
    except ValueError:
        index, word = first_unparsable(words, float)
        raise ValueError(f"{path}: line {number}, value {index + 1}: cannot read {word!r} as a number") from None
    bad = (values != 0) & (values != 1)
    if bad.any():
        index = int(np.argmax(bad))
        word = words[index].decode("ascii", "replace")
        raise ValueError(
            f"{path}: expected only 0 and 1 in an .amat file, line {number} value {index + 1} is {word!r}"
        )
    return values.astype(np.uint8)


def read_amat(path):
    """Read binarized MNIST in the ``.amat`` text format (``.amat`` or ``.amat.gz``).

    The format: one image a line, 784 space-separated values, each 0 or 1
    (written ``0``/``1`` or as floats like ``0.`` / ``1.000000``), row-major 28x28.

    returns: ImageSet, images (N, 28, 28, 1) uint8 of 0/1, max_value 1, no classes

    Parsing 39 million numbers as floats is slow in Python, so each line is
    first tried as the published files are written (one character per value),
    which is a byte copy; only lines written any other way are parsed as floats.
    """
    path = Path(path)
    data = read_file_bytes(path)
    lines = numbered_lines(path, data)
    images = np.empty((len(lines), AMAT_VALUES), dtype=np.uint8)
    for row, (number, line) in enumerate(lines):
        words = line.split()
        values = _amat_line_fast(words)
        if values is None:
            values = _amat_line_careful(path, number, words)
        images[row] = values
    return ImageSet(images.reshape(-1, 28, 28, 1), max_value=1, source=str(path))


