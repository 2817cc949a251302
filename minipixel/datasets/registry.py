"""The named datasets: for each, its files, its splits, its folder and where to download it.

A dataset can be named instead of given as a path: ``NAME:SPLIT``, e.g.
``mnist5k:train``, ``binarized-mnist:valid``, ``fashion-mnist:test``,
``cifar10:train``. ``load`` finds the split's file in the data folder, reads
it with the reader for its format, and keeps only the split's images when the
file holds several splits.

The data folder is ``--data-dir`` (``data_dir=``) if given, else the
``MINIPIXEL_DATA`` environment variable, else ``data/`` in the working
directory. Each dataset is looked for in its own sub-folder first
(``data/mnist/``), then in the data folder itself.

Everything about a dataset is one entry of ``DATASETS``: the file names of
each split, the sub-folder, and the ``RemoteFile`` list (URL and checksum of
every published file) that ``minipixel download NAME`` fetches. Because the
downloader and ``load`` read the same entry, downloaded files land exactly
where ``load`` looks for them.
"""
import os
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np

from ..data import subset
from .cifar10 import CIFAR10_ARCHIVE, CIFAR10_FOLDER, read_cifar10
from .formats import read_images, reader_for

# --------------------------------------------------------------------------
# The data folder
# --------------------------------------------------------------------------

DEFAULT_DATA_DIR = "data"


def data_dir(explicit=None):
    """The folder where named datasets are looked for, as a ``pathlib.Path``.

    In order: ``explicit`` (the ``--data-dir`` option) if given, else the
    ``MINIPIXEL_DATA`` environment variable if set, else ``"data"`` relative to
    the working directory.
    """
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get("MINIPIXEL_DATA")
    if from_env:
        return Path(from_env)
    return Path(DEFAULT_DATA_DIR)


def bundled_data_dirs():
    """The folders where the shipped ``mnist_5k.csv.gz`` may be, as a list of Paths.

    The repository's ``data/`` folder (a source checkout or an editable
    install), then ``<sys.prefix>/share/minipixel`` (where setup.py's
    data_files puts it in a normal install).
    """
    return [
        Path(__file__).resolve().parents[2] / "data",
        Path(sys.prefix) / "share" / "minipixel",
    ]


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

RemoteFile = namedtuple("RemoteFile", "name url algorithm checksum size")
RemoteFile.__doc__ = """One file of a dataset, as published.

name:      the file name in the data folder
url:       where it is downloaded from
algorithm: the checksum's hashlib name ("md5", "sha1", ...)
checksum:  the published checksum of the file, lower-case hex
size:      its size in bytes, or None when not known (used for the progress
           bar when the server does not say, and to spot an already whole .part)
"""

_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # mirror of http://yann.lecun.com/exdb/mnist/
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_BINARIZED = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_CIFAR = "https://www.cs.toronto.edu/~kriz/"


def _published(base, name, algorithm, checksum, size):
    """The RemoteFile ``name`` as published at ``base`` + ``name``."""
    return RemoteFile(name, base + name, algorithm, checksum, size)


def _plain_and_gz(name):
    """A file name and its gzipped twin: both are accepted."""
    return [name, name + ".gz"]


def _mnist5k_split(imageset, split):
    """Image i of mnist_5k is validation when i % 10 == 9: the file is sorted by
    class, 500 a class, so this puts 50 of each class in the validation split."""
    if split == "all":
        return imageset
    index = np.arange(len(imageset.images))
    keep = (index % 10 == 9) if split == "valid" else (index % 10 != 9)
    return subset(imageset, np.flatnonzero(keep), imageset.source)


# The named datasets. For each name:
#   files:    split -> the file (or folder) names that hold it, tried in order
#   folder:   sub-folder of the data folder looked in first (then the data folder itself),
#             and where `minipixel download` puts the files
#   bundled:  also look in bundled_data_dirs()
#   read:     function(path, split) -> ImageSet, for files that hold several
#             splits and can read one alone; None: read_images(path)
#   select:   function(imageset, split) -> the split's part of the file, or None
#   get:      where to get the files, for the "not found" message
#   download: the RemoteFiles `minipixel download` fetches, in order; () when
#             there is nothing to download
DATASETS = {
    "mnist5k": {
        "files": {
            "train": ["mnist_5k.csv.gz"],
            "valid": ["mnist_5k.csv.gz"],
            "all": ["mnist_5k.csv.gz"],
        },
        "folder": None,
        "bundled": True,
        "read": None,
        "select": _mnist5k_split,
        "get": (
            "mnist_5k.csv.gz ships with minipixel (data/ in the repository, share/minipixel/ "
            "when installed); reinstall minipixel or copy the file into the data folder"
        ),
        "download": (),
    },
    "binarized-mnist": {
        "files": {
            "train": _plain_and_gz("binarized_mnist_train.amat"),
            "valid": _plain_and_gz("binarized_mnist_valid.amat"),
            "test": _plain_and_gz("binarized_mnist_test.amat"),
        },
        "folder": "binarized_mnist",
        "bundled": False,
        "read": None,
        "select": None,
        "get": (
            "download binarized MNIST from http://www.cs.toronto.edu/~larocheh/public/datasets/"
            "binarized_mnist/binarized_mnist_{train,valid,test}.amat (gzipped copies work too), "
            "or run `minipixel download binarized-mnist`"
        ),
        # The checksums are of the uncompressed .amat text files, as served.
        "download": (
            _published(_BINARIZED, "binarized_mnist_train.amat", "sha1",
                       "cf70514ec5f481e54ad3eb0e6c03c83326ff96f8", 78_400_000),
            _published(_BINARIZED, "binarized_mnist_valid.amat", "sha1",
                       "13418487742e6ea6d48db7b5187353a20b1b1f8c", 15_680_000),
            _published(_BINARIZED, "binarized_mnist_test.amat", "sha1",
                       "ca70bd7775e182596dec148d4dc1bc6bd6c4c5f4", 15_680_000),
        ),
    },
    "mnist": {
        "files": {
            "train": _plain_and_gz("train-images-idx3-ubyte"),
            "test": _plain_and_gz("t10k-images-idx3-ubyte"),
        },
        "folder": "mnist",
        "bundled": False,
        "read": None,
        "select": None,
        "get": (
            "download MNIST from https://ossci-datasets.s3.amazonaws.com/mnist/ "
            "(the *-ubyte.gz files, images and labels; also at http://yann.lecun.com/exdb/mnist/), "
            "or run `minipixel download mnist`"
        ),
        "download": (
            _published(_MNIST, "train-images-idx3-ubyte.gz", "md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
            _published(_MNIST, "train-labels-idx1-ubyte.gz", "md5", "d53e105ee54ea40749a09fcbcd1e9432", 28_881),
            _published(_MNIST, "t10k-images-idx3-ubyte.gz", "md5", "9fb629c4189551a2d022fa330f9573f3", 1_648_877),
            _published(_MNIST, "t10k-labels-idx1-ubyte.gz", "md5", "ec29112dd5afa0611ce80d1b7f02629c", 4_542),
        ),
    },
    "fashion-mnist": {
        "files": {
            "train": _plain_and_gz("train-images-idx3-ubyte"),
            "test": _plain_and_gz("t10k-images-idx3-ubyte"),
        },
        "folder": "fashion-mnist",
        "bundled": False,
        "read": None,
        "select": None,
        "get": (
            "download Fashion-MNIST from http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ "
            "(the *-ubyte.gz files, images and labels), or on Debian `apt-get install dataset-fashion-mnist` "
            "(`dpkg -L dataset-fashion-mnist` shows where the files went), "
            "or run `minipixel download fashion-mnist`"
        ),
        # Debian's dataset-fashion-mnist package holds the same images, but its
        # .gz files were recompressed and have other checksums.
        "download": (
            _published(_FASHION, "train-images-idx3-ubyte.gz", "md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26_421_880),
            _published(_FASHION, "train-labels-idx1-ubyte.gz", "md5", "25c81989df183df01b3e8a0aad5dffbe", 29_515),
            _published(_FASHION, "t10k-images-idx3-ubyte.gz", "md5", "bef4ecab320f06d8554ea6380940ec79", 4_422_102),
            _published(_FASHION, "t10k-labels-idx1-ubyte.gz", "md5", "bb300cfdad3c16e7a12a480ee83cd310", 5_148),
        ),
    },
    "cifar10": {
        # The extracted folder first: reading it skips un-gzipping 163 MB.
        "files": {
            "train": [CIFAR10_FOLDER, CIFAR10_ARCHIVE],
            "test": [CIFAR10_FOLDER, CIFAR10_ARCHIVE],
        },
        "folder": "cifar10",
        "bundled": False,
        "read": read_cifar10,  # decodes only the split's batches
        "select": None,
        "get": (
            "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
            "(md5 c58f30108f718f92721af3b95e74349a; it is read as it is, or extracted as cifar-10-batches-py/), "
            "or run `minipixel download cifar10`"
        ),
        # Kept as the .tar.gz: the reader reads the batches straight from it.
        "download": (
            _published(_CIFAR, CIFAR10_ARCHIVE, "md5", "c58f30108f718f92721af3b95e74349a", 170_498_071),
        ),
    },
}

# The names `minipixel download` accepts.
DOWNLOADABLE = tuple(name for name, entry in DATASETS.items() if entry["download"])


# --------------------------------------------------------------------------
# Loading by name
# --------------------------------------------------------------------------


def _known_datasets():
    """'name:split|split, ...' for messages."""
    return ", ".join(f"{name}:{'|'.join(entry['files'])}" for name, entry in DATASETS.items())


def has_split(spec):
    """True when ``spec`` is ``NAME:SPLIT`` for a known dataset that has that split."""
    name, _, split = str(spec).partition(":")
    return split in DATASETS.get(name, {}).get("files", {})


def _looks_like_path(spec):
    """True when ``spec`` names a file rather than a NAME:SPLIT dataset."""
    separators = [sep for sep in ("/", os.sep, os.altsep) if sep]
    return (
        Path(spec).exists()
        or any(sep in spec for sep in separators)
        or reader_for(Path(spec).name) is not None
    )


def _candidate_paths(entry, split, root):
    """Every path where a named dataset's split may be, in the order they are tried."""
    folders = []
    if entry["folder"]:
        folders.append(root / entry["folder"])
    folders.append(root)
    if entry["bundled"]:
        folders.extend(bundled_data_dirs())
    return [folder / name for folder in folders for name in entry["files"][split]]


def _find(spec, entry, split, explicit_dir):
    """The first existing path of a named dataset's split, looked for in ``data_dir(explicit_dir)``.

    Raises FileNotFoundError listing every path tried and where to get the files.
    """
    root = data_dir(explicit_dir)
    tried = _candidate_paths(entry, split, root)
    # exists(), not is_file(): some datasets (CIFAR-10) may be an extracted folder.
    found = next((path for path in tried if path.exists()), None)
    if found is None:
        looked = "\n  ".join(str(path) for path in tried)
        target = root / entry["folder"] if entry["folder"] else root
        raise FileNotFoundError(
            f"{spec}: file not found; looked at:\n  {looked}\n"
            f"To get it: {entry['get']}, and put it in {target}/. "
            "To use another data folder, pass --data-dir DIR or set the MINIPIXEL_DATA environment variable."
        )
    return found


def load(spec, data_dir=None, size=None, progress=True):
    """Load a dataset given as a file or folder path or as ``NAME:SPLIT``.

    spec:     a path to a file or folder in a format ``read_images`` understands,
              or a dataset name and split, e.g. ``mnist5k:train``, ``binarized-mnist:valid``,
              ``mnist:test``, ``fashion-mnist:train``, ``cifar10:test`` (see ``DATASETS``)
    data_dir: the folder to look for named datasets in (default: see ``data_dir()``)
    size:     for a folder of images: crop and resize each to size x size
              (see ``read_image_folder``); ignored by the fixed-size formats
              (MNIST, CIFAR-10, .npz, ...)
    progress: show a progress bar while reading a large folder of images
    returns:  ImageSet

    A spec is a path when the file exists, or when it contains a path
    separator or a known file suffix; a missing path raises FileNotFoundError.
    A named dataset whose file is not found raises FileNotFoundError listing
    every path tried and where to download the data.
    """
    spec = str(spec)
    if _looks_like_path(spec):
        return read_images(spec, size, progress)
    name, _, split = spec.partition(":")
    entry = DATASETS.get(name)
    if entry is None or split not in entry["files"]:
        raise ValueError(
            f"{spec!r} is neither an existing file nor a known dataset; expected a file path or "
            f"NAME:SPLIT, one of: {_known_datasets()}"
        )
    # The parameter data_dir hides the function of that name here; _find calls it.
    found = _find(spec, entry, split, data_dir)
    read = entry.get("read")
    imageset = read(found, split) if read is not None else read_images(found, size, progress)
    imageset.source = f"{spec} ({found})"
    if entry["select"] is not None:
        imageset = entry["select"](imageset, split)
    return imageset
