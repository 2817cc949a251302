"""Small files in each real format, for the reader tests: laid out byte for byte as
the real files are (IDX headers with struct.pack, gzip with the gzip module).

A plain module beside the tests (pytest puts this folder on sys.path), imported as
``from dataset_files import write_idx, ...``.
"""
import gzip
import struct
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_idx(path, array, type_code=0x08, gz=None):
    """Write ``array`` as an IDX file: 0, 0, type code, ndim, big-endian uint32 sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    path = Path(path)
    if gz if gz is not None else path.name.endswith(".gz"):
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_text(path, lines, newline="\n"):
    """Write text lines, gzipped when the name ends with .gz."""
    raw = (newline.join(lines) + newline).encode("ascii")
    path = Path(path)
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def amat_lines(images, one="1", zero="0"):
    """The .amat text lines of (N, 28, 28) 0/1 images."""
    return [" ".join(one if v else zero for v in image.ravel()) for image in images]


def csv_lines(images, classes):
    """The MNIST CSV lines of (N, 28, 28) uint8 images: 784 pixels then the class."""
    return [",".join(str(v) for v in image.ravel()) + f",{c}" for image, c in zip(images, classes)]


def random_binary(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=(n, 28, 28), dtype=np.uint8)


def random_grey(n, seed=0, shape=(28, 28)):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def truncate_gzip(path):
    """Cut a gzip file in half, as an interrupted download would."""
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path
