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
restricted unpickler that allows only numpy arrays of plain numbers, and
bytes, and raises ValueError for anything else. Memory is bounded before it is
spent: the opcodes are walked first (no length past the file's end, no memo
slot beyond those written, at most ``_MOST_OPCODES`` of them), an array's
state must hold exactly the bytes its shape needs, and the labels must be a
flat list before numpy sees them (a list of shared references to itself would
otherwise unfold into gigabytes).

    images: (N, 32, 32, 3) uint8 (RGB, channels last), max_value 255; classes (N,) int64
"""
import io
import math
import pickle
import pickletools
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from ..data import ImageSet
from ._files import check_is_file, read_file_bytes

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
# The dtypes an array of a batch may have: plain numbers (uint8 pixels; int
# labels in a re-saved batch; others are refused later with the shape and
# dtype found). Never object arrays, whose state numpy fills from a list (a
# short list leaves holes that crash numpy), nor structured ones.
_DTYPES = ("b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8")
# A published batch is about 30,000 opcodes (10,000 labels, 10,000 file
# names); each opcode builds at most one object, so this bounds the objects.
_MOST_OPCODES = 2**20
_MEMO_PUTS = ("PUT", "BINPUT", "LONG_BINPUT")


class _BadState(ValueError):
    """An array or dtype state that a CIFAR-10 batch never holds (the message says which; no file name)."""


class _ArrayClass:
    """What a batch's pickle gets for ``numpy.ndarray``: only ``_reconstruct`` accepts it."""


class _Dtype:
    """What a batch's pickle gets for ``numpy.dtype(name)``: a stand-in that the
    array's state turns into the real dtype, for a name in ``_DTYPES`` only."""

    def __init__(self, name, order="|"):
        self.name, self.order = name, order

    def __setstate__(self, state):
        # numpy pickles a dtype's state as (version, byte order, subarray, names, fields, ...);
        # Python 2 wrote the byte order as a byte string.
        order = state[1] if isinstance(state, tuple) and len(state) >= 5 else None
        order = order.decode("latin1") if isinstance(order, bytes) else order
        if order not in ("<", ">", "|", "=") or any(part is not None for part in state[2:5]):
            raise _BadState(f"expected a plain number dtype's state, got {state!r:.80}")
        self.order = order

    def dtype(self):
        dtype = np.dtype(self.name)
        return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


class _Array(np.ndarray):
    """What ``_reconstruct`` builds: an ndarray whose state (shape, dtype, bytes)
    is checked before numpy sees it; np.asarray turns it into a plain one."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _BadState(f"expected a numpy array's state, got {state!r:.80}")
        shape, dtype, fortran, raw = state[-4:]
        if not isinstance(dtype, _Dtype):
            raise _BadState(f"expected an array of plain numbers, got dtype {dtype!r:.80}")
        if (not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape)
                or not isinstance(raw, bytes) or math.prod(shape) * dtype.dtype().itemsize != len(raw)):
            raise _BadState(f"expected an array's shape and exactly the bytes it needs, got shape {shape!r:.80} "
                            f"with {len(raw) if isinstance(raw, bytes) else type(raw).__name__} bytes")
        super().__setstate__((*state[:-3], dtype.dtype(), fortran, raw))


_CIFAR10_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy", "ndarray"): _ArrayClass,
    ("numpy", "dtype"): "dtype",
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
        if found == "dtype":
            return self._dtype
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
        return _NUMPY_RECONSTRUCT(_Array, (0,), np.uint8)  # the state sets the real dtype, checked

    def _dtype(self, name, align=False, copy=False):
        name = name.decode("latin1") if isinstance(name, bytes) else name
        if name not in _DTYPES:
            raise _RefusedPickle(
                f"{self.where}: expected arrays of plain numbers in a CIFAR-10 batch; "
                f"the CIFAR-10 reader refuses numpy.dtype({name!r:.40})"
            )
        return _Dtype(name)

    def _latin1_encode(self, text, encoding):
        if encoding not in ("latin1", "latin-1"):
            raise _RefusedPickle(
                f"{self.where}: expected bytes spelled as latin-1 text in a CIFAR-10 batch; "
                f"the CIFAR-10 reader refuses to load _codecs.encode with the codec {encoding!r}"
            )
        return text.encode("latin1")


def _describe_array(value):
    """'shape (k, n) dtype uint8', or what else it is: 'a list of 2 items, not all numbers', 'a dict'."""
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} dtype {value.dtype}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value):,} items, not all numbers (a nested list, say)"
    return f"a {type(value).__name__}"


def _check_opcodes(raw, where):
    """Walk the pickle's opcodes before anything is built, and refuse one that
    would take memory out of proportion to its size: a length past the file's end
    (the unpickler allocates it first), a memo slot beyond those written so far
    (the unpickler's memo grows to it: 10 bytes can ask for gigabytes), more
    opcodes than a batch has (each builds an object)."""
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(raw)):
            if count >= _MOST_OPCODES:
                raise _RefusedPickle(f"{where}: expected a CIFAR-10 batch (about 30,000 pickle opcodes), but the "
                                     f"file holds more than {_MOST_OPCODES:,}; it is damaged or not CIFAR-10")
            if opcode.name in _MEMO_PUTS and not 0 <= arg <= count:
                raise _RefusedPickle(f"{where}: expected a CIFAR-10 batch, whose pickle numbers its memo in order, "
                                     f"but opcode {count:,} stores at slot {arg:,}; it is damaged or hostile")
    except _RefusedPickle:
        raise
    except Exception as err:  # noqa: BLE001 - untrusted bytes: pickletools raises what it meets
        raise ValueError(
            f"{where}: expected a CIFAR-10 batch (a Python pickle), but it cannot be unpickled "
            f"({type(err).__name__}: {' '.join(str(err).split())}); it may be damaged, so download it again"
        ) from err


def _labels_array(labels):
    """The labels as an array, when they are an array or a flat list (or tuple) of
    numbers; else as they are, for the caller to refuse. numpy never sees a nested
    list: one of shared references to itself is a few bytes pickled and unfolds
    into gigabytes."""
    if isinstance(labels, np.ndarray):
        return np.asarray(labels)
    if isinstance(labels, (list, tuple)) and all(type(value) in (int, float) for value in labels):
        try:
            return np.asarray(labels)
        except (ValueError, TypeError, OverflowError):
            pass
    return labels


def _read_cifar10_batch(raw, where):
    """Decode one CIFAR-10 batch file.

    raw:     the file's bytes, a pickled dict with b"data", a (k, 3072) uint8
             array (each row the 1024 red values, then 1024 green, then 1024
             blue of a 32x32 image, row-major), and b"labels", k ints 0..9
    where:   the file (or archive member) it came from, for messages
    returns: (images (k, 32, 32, 3) uint8 in channel-last order, classes (k,) int64)
    """
    _check_opcodes(raw, where)
    try:
        batch = _Cifar10Unpickler(io.BytesIO(raw), where).load()
    except _RefusedPickle:
        raise
    except _BadState as err:
        raise _RefusedPickle(f"{where}: the CIFAR-10 reader refuses an array: {err}") from err
    except Exception as err:  # noqa: BLE001 - untrusted bytes: any failure (even OverflowError) means damage
        raise ValueError(
            f"{where}: expected a CIFAR-10 batch (a Python pickle), but it cannot be unpickled "
            f"({type(err).__name__}: {' '.join(str(err).split())}); it may be damaged, so download it again"
        ) from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        got = f"a dict with keys {sorted(batch, key=repr)}" if isinstance(batch, dict) else f"a {type(batch).__name__}"
        raise ValueError(f"{where}: expected a CIFAR-10 batch, a dict with b'data' and b'labels', got {got}")
    pixels = np.asarray(batch[b"data"]) if isinstance(batch[b"data"], np.ndarray) else batch[b"data"]
    if (not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8
            or pixels.ndim != 2 or pixels.shape[1] != CIFAR10_VALUES):
        raise ValueError(
            f"{where}: expected b'data' to be a (k, {CIFAR10_VALUES}) uint8 array (k images of 3x32x32 values), "
            f"got {_describe_array(pixels)}"
        )
    labels = _labels_array(batch[b"labels"])
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
    # exists(), not is_file(): a FIFO or a device there is refused by name, not called missing.
    missing = [name for name in wanted if not (folder / name).exists()]
    if missing:
        found = _cifar10_batch_names_in(p.name for p in folder.iterdir() if p.is_file())
        raise ValueError(
            f"{folder}: expected the CIFAR-10 batch files {wanted}, missing {missing}; "
            f"found {found if found else 'no batch files'}"
        )
    return {name: _read_cifar10_batch(read_file_bytes(folder / name), folder / name) for name in wanted}


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
    if not path.is_dir():
        check_is_file(path)  # a FIFO or a device under the archive's name: one line, no hang
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

