"""minipixel's own format: a compressed ``.npz`` holding an ImageSet.

The arrays: ``images`` (N, H, W, C) uint8, ``max_value`` (an integer scalar,
1 for binary data, 255 for 8-bit data) and, when there are classes,
``classes`` (N,) integers. Any dataset, once read, can be saved this way
(``write_npz``) and read back fast, with no pickles (``files.read_npz_arrays``
refuses object arrays and checks every header before it allocates).
"""
from pathlib import Path

import numpy as np

from ..data import ImageSet
from ..files import atomic_write, read_npz_arrays
from ._files import check_is_file


def read_npz(path):
    """Read minipixel's own format: an ``.npz`` with ``images``, ``max_value`` and optionally ``classes``.

    images:    (N, H, W, C) uint8
    max_value: integer scalar, 1 for binary data, 255 for 8-bit data
    classes:   (N,) integers (optional)
    returns:   ImageSet
    """
    path = Path(path)
    check_is_file(path)
    arrays = read_npz_arrays(path, "an .npz file of images")
    missing = [key for key in ("images", "max_value") if key not in arrays]
    if missing:
        raise ValueError(
            f"{path}: expected arrays 'images' and 'max_value' in the .npz, missing {missing}, "
            f"found {sorted(arrays)}"
        )
    max_value = arrays["max_value"]
    if max_value.shape != () or max_value.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: expected 'max_value' to be one integer, got shape {max_value.shape} dtype {max_value.dtype}"
        )
    # ImageSet checks the rest (dtype, shape, classes) and names the file.
    return ImageSet(arrays["images"], int(max_value), str(path), arrays.get("classes"))


def write_npz(path, imageset):
    """Write ``imageset`` to ``path`` in the format ``read_npz`` reads (compressed .npz).

    The write is atomic: the data goes to a temporary file in the same folder,
    is flushed to disk, and only then renamed over ``path``. A crash or a full
    disk leaves either the old file or the new one, never half a file.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: cannot write, the folder {path.parent} does not exist")
    arrays = {"images": imageset.images, "max_value": np.int64(imageset.max_value)}
    if imageset.classes is not None:
        arrays["classes"] = imageset.classes
    with atomic_write(path) as file:
        np.savez_compressed(file, **arrays)

