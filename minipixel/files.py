"""Files: written so that a crash never leaves a half-written one behind
(``atomic_write``), one writer per run folder (``FolderLock``), ``.npz``
files read so that a damaged or hostile one is refused with one line
(``read_npz_arrays``), and deflated for keeping (``deflate_npz``)."""
import fcntl
import os
import stat
import tempfile
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success, flush it to disk and
    rename it over ``path`` in one step. On any error the temporary file is
    removed and ``path`` keeps its old contents (or stays absent).

        with atomic_write("runs/x/checkpoint.npz") as f:
            np.savez(f, ...)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file readable by its owner only; give it the
        # permissions an ordinary open() would (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # os.replace is atomic on POSIX and Windows when both are on one file system.
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def deflate_npz(path):
    """Rewrite the ``.npz`` file ``path`` with every member deflated (as
    ``np.savez_compressed`` writes them), atomically; the members' bytes, and so
    every array, stay exactly as they were. Returns (bytes before, bytes after).

    Training writes its checkpoints plainly (faster to write at every
    evaluation); a run folder that is kept in a repository is deflated before it
    is committed (the scripts in ``scripts/pretrained_*.sh`` do it), about half
    the size for a model whose masked taps and their Adam moments are zeros."""
    path = Path(path)
    before = path.stat().st_size
    with zipfile.ZipFile(path) as source, atomic_write(path) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                target.writestr(info.filename, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
    return before, path.stat().st_size


class FolderBusy(RuntimeError):
    """Another live process is writing this run folder."""


class FolderLock:
    """``with FolderLock(folder):`` this process alone writes into ``folder``.

    The lock is the kernel's (``flock``) on a file ``.lock`` in the folder, which
    also holds the owner's process id (for the message). Taking it is one atomic
    step, so two processes that try at once cannot both hold it; the kernel lets
    go of it when its process ends, however it ends, so a kill -9 never leaves a
    folder locked for good (the file stays; the next run takes it over).
    """

    def __init__(self, folder):
        self.path = Path(folder) / ".lock"
        self.held = False
        self._fd = None

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 64).decode(errors="replace").split()
                os.close(fd)
                if owner[:1] == [str(os.getpid())]:
                    raise FolderBusy(f"{self.path.parent}: this process is already writing this run folder") from None
                who = f"process {owner[0]}" if owner else "a process"
                raise FolderBusy(f"{self.path.parent}: another training ({who}) is writing this run folder; wait "
                                 "for it to finish or stop it, or choose another --out") from None
            try:  # the file may have been released (deleted) between our open and our lock: retry on the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError:  # a full disk, say: let the lock go, or the folder stays locked until we exit
                os.close(fd)
                raise
            self._fd, self.held = fd, True
            return self
        raise FolderBusy(f"{self.path.parent}: could not take the run folder's lock {self.path}")

    def release(self):
        if self.held:
            self.held = False
            try:
                self.path.unlink()  # while still locked: whoever opens the path next makes a new file
            except FileNotFoundError:
                pass
            os.close(self._fd)  # lets the lock go
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


# What a path that is not an ordinary file is, in words, for messages.
_KINDS = ((stat.S_ISDIR, "a folder"),
          (stat.S_ISFIFO, "a FIFO (named pipe), which waits for a writer"),
          (stat.S_ISCHR, "a character device, which may never end"),
          (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def not_ordinary(mode):
    """What a file of ``mode`` (an st_mode) is, in words, when it is not an ordinary file
    ("a folder", "a FIFO ..."); None for an ordinary file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a file")


# The first bytes of the files a user may give by mistake, and what they are.
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"\x1f\x8b", "a gzip file"), (b"\x93NUMPY", "a .npy array (not an .npz archive)"),
          (b"PK", "a zip archive cut short or damaged"))


def kind_of_file(path):
    """What the file ``path`` looks like from its first bytes, in words ("a PNG image"), for
    an error that says what a wrong file is; "not a zip file (damaged or cut short?)" otherwise."""
    with open(path, "rb") as f:
        head = f.read(512)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "not a zip file (damaged or cut short?)"


# Deflate cannot shrink data by more than about 1032:1, so a zip member that
# claims to unpack to more than this many times its stored size lies about it.
_MOST_DEFLATE_RATIO = 1100


def _read_npy(member, size, where):
    """One ``.npy`` member of an open zip: its header is checked before anything is
    allocated (object arrays refused, the claimed shape must match the bytes that
    follow), then exactly those bytes are read into the array."""
    try:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f".npy format version {version} (minipixel reads 1.0 and 2.0)")
        with warnings.catch_warnings():  # a garbled header can make Python's parser warn too
            warnings.simplefilter("ignore")
            shape, fortran_order, dtype = read_header[version](member)
    except Exception as err:  # noqa: BLE001 - numpy parses the header text with ast/tokenize; any failure is damage
        raise ValueError(f"{where}: not a readable .npy array header ({type(err).__name__}: {err})") from None
    if dtype.hasobject:
        raise ValueError(f"{where}: holds Python objects (dtype {dtype}); only plain numeric and text arrays are "
                         "read, because loading objects means unpickling, which can run code")
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: cannot overflow
    available = size - member.tell()
    if claimed != available:
        raise ValueError(f"{where}: the header says shape {shape} of {dtype} ({claimed:,} bytes), but {available:,} "
                         "bytes follow it (damaged or cut short)")
    buffer = bytearray(available)
    if member.readinto(buffer) != available:
        raise ValueError(f"{where}: cut short")
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape, order="F" if fortran_order else "C")


def read_npz_arrays(path, what="an .npz file"):
    """Every array of the ``.npz`` file ``path``, as ``{name: array}``, read safely.

    ``np.load`` would believe the file: a damaged header can make it allocate
    terabytes, and a non-zip file is tried as a pickle. Here nothing is unpickled
    (object arrays are refused), every member's claimed size is checked against
    the bytes it holds before anything is allocated, and every problem is a
    ValueError of one line that names ``path`` and says it is not ``what``.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: expected {what} (a zip archive), but it is {kind_of_file(path)}")
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                where = f"{path} (member {info.filename})"
                if info.compress_size > os.path.getsize(path) or info.file_size > _MOST_DEFLATE_RATIO * max(
                        info.compress_size, 1) + 1024:
                    raise ValueError(f"{where}: the zip directory gives impossible sizes ({info.compress_size:,} "
                                     f"bytes stored, {info.file_size:,} unpacked); the file is damaged")
                with archive.open(info) as member:
                    arrays[info.filename.removesuffix(".npy")] = _read_npy(member, info.file_size, where)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as err:
        raise ValueError(f"{path}: cannot read {what} ({type(err).__name__}: {err}); it may be damaged") from err
    return arrays
