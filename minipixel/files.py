"""Writing files so that a crash never leaves a half-written one behind."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


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
