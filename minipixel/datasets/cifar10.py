"""CIFAR-10 in its "python version", as published at https://www.cs.toronto.edu/~kriz/cifar.html.

The download, ``cifar-10-python.tar.gz``, holds a folder ``cifar-10-batches-py``
with six batch files: ``data_batch_1`` .. ``data_batch_5`` (the train split,
10,000 images each) and ``test_batch`` (the test split, 10,000 images). The
archive is read as it is, nothing extracted; the extracted folder works too.

Each batch is a Python pickle of a dict: ``b"data"``, a (10000, 3072) uint8
array whose rows are one image each (the 1024 red values, then the 1024
green, then the 1024 blue, each plane 32x32 row by row), and ``b"labels"``,
10,000 ints 0..9 (airplane, automobile, bird, cat, deer, dog, frog, horse,
ship, truck).

Unpickling can run any code the file names, so a damaged or malicious file
could do anything on ``pickle.load``. The batches are therefore read with a
restricted unpickler that allows only numpy arrays, dtypes and bytes, and
raises ValueError for anything else.

    images: (N, 32, 32, 3) uint8 (RGB, channels last), max_value 255; classes (N,) int64
"""
import io
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from ..data import ImageSet

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
# The batch files of each split, in the order their images are concatenated.
CIFAR10_BATCHES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}
CIFAR10_VALUES = 3 * 32 * 32

# A pickle can call any function it names, so a batch is unpickled with only
# the few names it needs (see _Cifar10Unpickler). numpy pickles an array as
# _reconstruct(ndarray, ...) with a dtype; numpy 1.x (which wrote the
# published files) spells the module numpy.core.multiarray, numpy 2.x
# numpy._core.multiarray. Both map to the function the running numpy itself
# uses, so no module is imported under a name read from the file.
# numpy pickles every array as _reconstruct(ndarray, (0,), b"b"), an empty
# array, then fills it from the data that follows; the pickle gets stand-ins
# for both names, so it cannot ask numpy for an array of any other shape (a
# hostile file could otherwise ask for a terabyte) or call ndarray itself.
_NUMPY_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]


class _ArrayClass:
    """What a batch's pickle gets for ``numpy.ndarray``: only ``_reconstruct`` accepts it."""


_CIFAR10_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy", "ndarray"): _ArrayClass,
    ("numpy", "dtype"): np.dtype,
}


class _RefusedPickle(ValueError):
    """A pickle that names something a CIFAR-10 batch never holds."""


class _Cifar10Unpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and refuses everything else.

    The published batches were written by Python 2, whose byte strings load as
    ``bytes`` with ``encoding="bytes"``. A batch re-saved by Python 3 at
    protocol 2 spells each bytes object as ``_codecs.encode(text, "latin1")``;
    that call is allowed for the latin-1 codec only.
    """

    def __init__(self, file, where):
        super().__init__(file, encoding="bytes")
        self.where = where

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return self._latin1_encode
        found = _CIFAR10_GLOBALS.get((module, name))
        if found == "_reconstruct":
            return self._reconstruct
        if found is None:
            raise _RefusedPickle(
                f"{self.where}: expected a CIFAR-10 batch, which holds only numpy arrays, lists and bytes; "
                f"the CIFAR-10 reader refuses to load {module}.{name} (the file may not be what it claims to be)"
            )
        return found

    def _reconstruct(self, cls, shape, dtype):
        if cls is not _ArrayClass or shape != (0,):
            shown = "ndarray" if cls is _ArrayClass else repr(cls)
            raise _RefusedPickle(
                f"{self.where}: expected numpy arrays pickled as numpy pickles them (an empty array, then its "
                f"data); the CIFAR-10 reader refuses _reconstruct({shown}, {shape!r})"
            )
        return _NUMPY_RECONSTRUCT(np.ndarray, (0,), dtype)

    def _latin1_encode(self, text, encoding):
        if encoding not in ("latin1", "latin-1"):
            raise _RefusedPickle(
                f"{self.where}: expected bytes spelled as latin-1 text in a CIFAR-10 batch; "
                f"the CIFAR-10 reader refuses to load _codecs.encode with the codec {encoding!r}"
            )
        return text.encode("latin1")


def _describe_array(value):
    """'shape (k, n) dtype uint8', or the type name of something that is not an array."""
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _read_cifar10_batch(raw, where):
    """Decode one CIFAR-10 batch file.

    raw:     the file's bytes, a pickled dict with b"data", a (k, 3072) uint8
             array (each row the 1024 red values, then 1024 green, then 1024
             blue of a 32x32 image, row-major), and b"labels", k ints 0..9
    where:   the file (or archive member) it came from, for messages
    returns: (images (k, 32, 32, 3) uint8 in channel-last order, classes (k,) int64)
    """
    try:
        batch = _Cifar10Unpickler(io.BytesIO(raw), where).load()
    except _RefusedPickle:
        raise
    except Exception as err:  # noqa: BLE001 - untrusted bytes: any failure (even OverflowError) means damage
        raise ValueError(
            f"{where}: expected a CIFAR-10 batch (a Python pickle), but it cannot be unpickled "
            f"({type(err).__name__}: {' '.join(str(err).split())}); it may be damaged, so download it again"
        ) from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        got = f"a dict with keys {sorted(batch, key=repr)}" if isinstance(batch, dict) else f"a {type(batch).__name__}"
        raise ValueError(f"{where}: expected a CIFAR-10 batch, a dict with b'data' and b'labels', got {got}")
    pixels = batch[b"data"]
    if (not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8
            or pixels.ndim != 2 or pixels.shape[1] != CIFAR10_VALUES):
        raise ValueError(
            f"{where}: expected b'data' to be a (k, {CIFAR10_VALUES}) uint8 array (k images of 3x32x32 values), "
            f"got {_describe_array(pixels)}"
        )
    try:
        labels = np.asarray(batch[b"labels"])
    except (ValueError, TypeError):  # a ragged list, say
        labels = batch[b"labels"]
    if not isinstance(labels, np.ndarray) or labels.shape != (len(pixels),) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: expected {len(pixels)} integer labels (one per image) in b'labels', "
            f"got {_describe_array(labels)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: expected labels 0..9, got values from {labels.min()} to {labels.max()}")
    # Row layout is plane by plane (R, G, B), each 32x32 row-major: to (k, 32, 32, 3).
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def _cifar10_batch_names_in(names):
    """The names among ``names`` that look like CIFAR-10 batch files, sorted."""
    return sorted(name for name in names if name.startswith(("data_batch", "test_batch")))


def _cifar10_from_folder(path, wanted):
    """Decode the batches ``wanted`` (names) from an extracted folder: {name: (images, classes)}."""
    folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        found = _cifar10_batch_names_in(p.name for p in folder.iterdir() if p.is_file())
        raise ValueError(
            f"{folder}: expected the CIFAR-10 batch files {wanted}, missing {missing}; "
            f"found {found if found else 'no batch files'}"
        )
    return {name: _read_cifar10_batch((folder / name).read_bytes(), folder / name) for name in wanted}


# A published batch is 31 MB; a member claiming far more is not a batch.
_MEMBER_MOST_BYTES = 256 * 2**20


def _check_member(path, member):
    """Refuse an archive member that would land outside the archive's own folder if
    it were unpacked (an absolute path, a '..', or a link pointing out), or that
    claims to be far larger than a batch. Nothing is unpacked here, but an archive
    holding such a member is not the published one."""
    for what, name in (("member", member.name), ("link target", member.linkname if member.issym() or member.islnk()
                                                  else "")):
        if name.startswith("/") or ".." in PurePosixPath(name).parts:
            raise ValueError(f"{path}: the archive holds a {what} {name!r} outside its own folder (an absolute path "
                             "or '..'); refusing it, as the published CIFAR-10 archive has none")
    if member.isfile() and member.size > _MEMBER_MOST_BYTES:
        raise ValueError(f"{path}: the archive member {member.name} claims {member.size:,} bytes, far more than a "
                         "CIFAR-10 batch (31 MB); the archive is damaged or not CIFAR-10")


def _cifar10_from_archive(path, wanted):
    """Decode the batches ``wanted`` (names) straight from the tar.gz: {name: (images, classes)}.

    The members are in no particular order in the published archive, so it is
    read from the start until every wanted batch has been seen (the test split
    usually stops early). Nothing is written to disk.
    """
    batches, seen = {}, []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                _check_member(path, member)
                name = PurePosixPath(member.name).name
                if not member.isfile():
                    continue
                seen.append(name)
                if name in wanted and name not in batches:
                    raw = archive.extractfile(member).read()
                    batches[name] = _read_cifar10_batch(raw, f"{path} (member {member.name})")
                    if len(batches) == len(wanted):
                        break
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        # OSError covers gzip.BadGzipFile (not gzip at all) and damaged data.
        raise ValueError(
            f"{path}: expected a complete tar.gz archive, but it cannot be read ({err}); "
            "it may be cut short or damaged, so download it again"
        ) from err
    missing = [name for name in wanted if name not in batches]
    if missing:
        found = _cifar10_batch_names_in(seen)
        raise ValueError(
            f"{path}: expected the CIFAR-10 batch files {wanted} in the archive, missing {missing}; "
            f"found {found if found else 'no batch files'}"
        )
    return batches


def read_cifar10(path, split="train"):
    """Read CIFAR-10 in its "python version", as published at https://www.cs.toronto.edu/~kriz/cifar.html.

    path:    the archive ``cifar-10-python.tar.gz`` (read in place, nothing is
             extracted), or the extracted folder ``cifar-10-batches-py`` or a
             folder holding it
    split:   "train" (data_batch_1 .. data_batch_5, 50,000 images) or "test"
             (test_batch, 10,000 images); only the split's batches are decoded
    returns: ImageSet, images (N, 32, 32, 3) uint8 (RGB), max_value 255,
             classes (N,) int64 in 0..9 (airplane, automobile, bird, cat, deer,
             dog, frog, horse, ship, truck)

    Each batch is a pickle, and unpickling can run code. Batches are therefore
    read with an unpickler that allows only numpy arrays, dtypes and bytes and
    raises ValueError for anything else.
    """
    if split not in CIFAR10_BATCHES:
        raise ValueError(f"read_cifar10: split must be one of {sorted(CIFAR10_BATCHES)}, got {split!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    wanted = CIFAR10_BATCHES[split]
    read = _cifar10_from_folder if path.is_dir() else _cifar10_from_archive
    batches = read(path, wanted)
    images = np.concatenate([batches[name][0] for name in wanted])
    classes = np.concatenate([batches[name][1] for name in wanted])
    return ImageSet(images, max_value=255, source=str(path), classes=classes)


def is_cifar10_folder(path):
    """True for the extracted CIFAR-10 folder (by its name or its batch files), or a folder holding it."""
    return (
        path.name == CIFAR10_FOLDER
        or (path / CIFAR10_FOLDER).is_dir()
        or any((path / name).is_file() for names in CIFAR10_BATCHES.values() for name in names)
    )

