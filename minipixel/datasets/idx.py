"""IDX files, as MNIST and Fashion-MNIST ship: ``train-images-idx3-ubyte.gz`` and friends.

The layout: two zero bytes, a type code byte (0x08 for unsigned bytes), a
byte with the number of dimensions d, d big-endian uint32 sizes, then the
values in row-major order. An images file has 3 dimensions (N, rows, cols);
its labels file, ``train-labels-idx1-ubyte`` beside ``train-images-idx3-ubyte``
(``t10k`` for the test split), has one (N,). Either may be gzipped.

    images: (N, rows, cols, 1) uint8, max_value 255; classes (N,) int64 when
            the labels file is beside the images file
"""
from pathlib import Path

import numpy as np

from ..data import ImageSet
from ._files import read_file_bytes

# IDX type codes (the third byte of the file) and what they hold. minipixel
# reads only unsigned bytes, which is what MNIST and Fashion-MNIST use.
IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short (int16)",
    0x0C: "int (int32)",
    0x0D: "float (float32)",
    0x0E: "double (float64)",
}


def _read_idx_array(path):
    """The array stored in an IDX file (``.gz`` or not), as uint8 with the file's shape.

    The layout: two zero bytes, a type code byte, a byte with the number of
    dimensions d, d big-endian uint32 sizes, then the values in row-major order.
    """
    data = read_file_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: expected an IDX file of at least 4 header bytes, found {len(data)} bytes")
    zero1, zero2, type_code, ndim = data[:4]
    if zero1 != 0 or zero2 != 0:
        raise ValueError(
            f"{path}: not an IDX file: expected the first two bytes to be 0 (the magic number), "
            f"got {zero1:#04x} {zero2:#04x}"
        )
    if type_code not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file: type code {type_code:#04x} in the magic number is not an IDX type")
    if type_code != 0x08:
        raise ValueError(
            f"{path}: IDX type code {type_code:#04x} ({IDX_TYPES[type_code]}) is not supported, "
            "only 0x08 (unsigned byte)"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{path}: expected a {header_size}-byte header for {ndim} dimensions, the file has {len(data)} bytes"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=object))  # Python ints: a corrupt header cannot overflow
    found = len(data) - header_size
    if found != expected:
        raise ValueError(
            f"{path}: expected {expected} bytes of pixels after the header (shape {shape}), found {found}; "
            "a shorter file was probably cut short"
        )
    # A copy, because an array made from bytes is read-only.
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def _idx_labels_path(images_path):
    """The labels file that ships beside an IDX images file, or None.

    ``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``, and the same
    for ``t10k``; a gzipped or plain labels file is accepted either way.
    """
    name = images_path.name
    if "images" not in name or "idx3" not in name:
        return None
    labels_name = name.replace("images", "labels").replace("idx3", "idx1")
    plain = labels_name.removesuffix(".gz")
    for candidate in (plain, plain + ".gz"):
        if (images_path.parent / candidate).exists():  # a FIFO or a device there is refused by name
            return images_path.parent / candidate
    return None


def read_idx(path):
    """Read an IDX images file (``*-ubyte`` or ``*-ubyte.gz``), as MNIST and Fashion-MNIST ship.

    returns: ImageSet, images (N, rows, cols, 1) uint8, max_value 255, and
             classes (N,) int64 from the labels file beside it when there is one
             (``train-labels-idx1-ubyte[.gz]`` beside ``train-images-idx3-ubyte[.gz]``)
    """
    path = Path(path)
    pixels = _read_idx_array(path)
    if pixels.ndim != 3:
        raise ValueError(
            f"{path}: expected an images file (3 dimensions), got {pixels.ndim} "
            f"(shape {pixels.shape}); labels files are read beside their images file"
        )
    classes = None
    labels_path = _idx_labels_path(path)
    if labels_path is not None:
        labels = _read_idx_array(labels_path)
        if labels.shape != (len(pixels),):
            raise ValueError(
                f"{labels_path}: expected {len(pixels)} labels (one per image in {path.name}), "
                f"got an array of shape {labels.shape}"
            )
        classes = labels.astype(np.int64)
    return ImageSet(pixels[..., np.newaxis], max_value=255, source=str(path), classes=classes)

