"""Which reader for which file: ``read_images`` looks at the name and picks one.

One module a format (amat, idx, mnist_csv, npz, cifar10, image_folder), each
with its own ``read_*`` function that returns a ``minipixel.data.ImageSet``.
Only the name is looked at, never the contents: a file in the wrong format
then fails in its reader, with a message that says what that format expected.
"""
from pathlib import Path

from ._files import check_is_file
from .amat import read_amat
from .cifar10 import is_cifar10_folder, read_cifar10
from .idx import read_idx
from .image_folder import read_image_folder
from .mnist_csv import read_mnist_csv
from .npz import read_npz

FORMATS = (
    "binarized MNIST text (.amat, .amat.gz), "
    "IDX as MNIST and Fashion-MNIST ship it (names containing -ubyte, .gz or not), "
    "MNIST CSV (.csv, .csv.gz), "
    "minipixel's own .npz, "
    "CIFAR-10's python version (cifar-10-python.tar.gz, or the extracted cifar-10-batches-py folder), "
    "a folder of .png/.jpg/.jpeg images (directly in it, or one sub-folder per class)"
)


def reader_for(name):
    """The reader function for a file name, or None if the name matches no format."""
    name = name.lower()
    if name.endswith((".amat", ".amat.gz")):
        return read_amat
    if "-ubyte" in name:
        return read_idx
    if name.endswith((".csv", ".csv.gz")):
        return read_mnist_csv
    if name.endswith(".npz"):
        return read_npz
    if name.startswith("cifar-10") and name.endswith(".tar.gz"):
        return read_cifar10
    return None


def read_images(path, size=None, progress=True):
    """Read an images file or folder, choosing the reader from its name.

    .amat / .amat.gz -> read_amat;  names containing -ubyte -> read_idx;
    .csv / .csv.gz -> read_mnist_csv;  .npz -> read_npz;
    cifar-10*.tar.gz, or a folder that is cifar-10-batches-py (or holds it, or
    holds its batch files) -> read_cifar10 (train split);
    any other folder -> read_image_folder.
    size:    passed to read_image_folder (crop and resize to size x size);
             ignored by the fixed-size formats
    progress: passed to read_image_folder
    returns: ImageSet
    """
    path = Path(path)
    if path.is_dir():
        if is_cifar10_folder(path):
            return read_cifar10(path, "train")
        return read_image_folder(path, size, progress)
    # The one check every file read by name passes: missing, or a FIFO or a
    # device (which would hang or never end), is one line before any reading.
    check_is_file(path)
    reader = reader_for(path.name)
    if reader is None:
        raise ValueError(f"{path}: unknown file type; expected one of these formats: {FORMATS}")
    return reader(path)
