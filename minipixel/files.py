"""Files: written so that a crash never leaves a half-written one behind
(``atomic_write``), one writer per run folder (``FolderLock``), ``.npz``
files read so that a damaged or hostile one is refused with one line
(``read_npz_arrays``), and deflated for keeping (``deflate_npz``)."""
import os
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


def _process_start(pid):
    """When process ``pid`` started (clock ticks since boot, from /proc), or None
    where /proc is not there: with the pid, it tells a live process from a later
    one that reused its number."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid, started):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return started is None or _process_start(pid) in (None, started)


class FolderLock:
    """``with FolderLock(folder):`` this process alone writes into ``folder``.

    The lock is a file ``.lock`` in the folder holding the owner's pid and start
    time, created atomically (O_EXCL). A second process that finds it, with its
    owner still running, stops with ``FolderBusy``; a lock left by a process that
    was killed (no such process any more) is taken over, so a kill -9 never
    leaves a folder locked for good.
    """

    def __init__(self, folder):
        self.path = Path(folder) / ".lock"
        self.held = False

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = f"{os.getpid()} {_process_start(os.getpid())}\n"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid, started = self.path.read_text().split()[:2]
                    pid = int(pid)
                except (OSError, ValueError):
                    pid = started = None  # unreadable or half-written: treated as left behind
                if pid == os.getpid():
                    raise FolderBusy(f"{self.path.parent}: this process is already writing this run folder")
                if pid is not None and _alive(pid, None if started == "None" else started):
                    raise FolderBusy(f"{self.path.parent}: another training (process {pid}) is writing this run "
                                     "folder; wait for it to finish or stop it, or choose another --out")
                try:
                    self.path.unlink()  # left by a process that no longer runs
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(mine)
            self.held = True
            return self
        raise FolderBusy(f"{self.path.parent}: could not take the run folder's lock {self.path}")

    def release(self):
        if self.held:
            self.held = False
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


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
        raise ValueError(f"{path}: expected {what} (a zip archive), but it is not a zip file (corrupt or cut short?)")
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
