"""A run folder's lock (``files.FolderLock``): one process at a time writes a run
folder, the lock goes when its process does, and a held lock names its owner."""
import os

import pytest


def _race_for_the_lock(folder, rounds, inside):
    """A child process: ``rounds`` times, take the folder's lock if it can, and while holding it
    create the file ``inside`` exclusively (a second holder would find it there), then let go."""
    from minipixel.files import FolderBusy, FolderLock

    overlaps = 0
    for _ in range(rounds):
        lock = FolderLock(folder)
        try:
            lock.acquire()
        except FolderBusy:
            continue
        try:
            fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            overlaps += 1
        else:
            os.close(fd)
            os.unlink(inside)
        lock.release()
    os._exit(min(overlaps, 100))



def test_processes_racing_for_the_lock_never_hold_it_together(tmp_path):
    import multiprocessing

    folder, inside = tmp_path / "run", tmp_path / "inside"
    folder.mkdir()
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_race_for_the_lock, args=(folder, 300, inside)) for _ in range(8)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0] * 8  # no child ever found another holder inside



def test_an_error_while_holding_a_folders_lock_goes_on_up_and_lets_the_folder_go(tmp_path):
    from minipixel.files import FolderLock

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in a training stops it, lock or no lock
        with FolderLock(tmp_path / "run"):
            raise KeyboardInterrupt
    assert not (tmp_path / "run" / ".lock").exists()
    with FolderLock(tmp_path / "run") as lock:
        assert lock.held



def test_a_lock_that_cannot_write_its_owner_lets_the_folder_go(tmp_path, monkeypatch):
    import errno

    from minipixel import files

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(files.os, "write", full)
        with pytest.raises(OSError, match="No space left"):
            files.FolderLock(tmp_path / "run").acquire()
    with files.FolderLock(tmp_path / "run") as lock:  # not "this process is already writing"
        assert lock.held



def test_a_folders_lock_makes_its_folders_mode_0644_and_lets_go_once(tmp_path):
    from minipixel.files import FolderLock

    lock = FolderLock(tmp_path / "a" / "b" / "run")  # folders that do not exist yet: made
    lock.release()  # never taken: nothing to let go
    assert not lock.held and not (tmp_path / "a").exists()
    umask = os.umask(0)
    try:
        lock.acquire()
    finally:
        os.umask(umask)
    assert lock.held and (tmp_path / "a" / "b" / "run" / ".lock").stat().st_mode & 0o777 == 0o644
    lock.release()
    lock.release()  # a second time: nothing
    assert not lock.held and not (tmp_path / "a" / "b" / "run" / ".lock").exists()



@pytest.mark.parametrize("new_file", [False, True])
def test_a_lock_file_released_between_its_open_and_its_lock_is_taken_again_on_the_new_one(tmp_path, monkeypatch,
                                                                                          new_file):
    import fcntl

    from minipixel.files import FolderLock

    path = tmp_path / "run" / ".lock"
    real, calls = fcntl.flock, []

    def released_first(fd, how):
        # the holder lets go just before our lock: it deletes the file we opened (and a third
        # process may already have made a new one there); our lock is then on a file no one sees
        calls.append(fd)
        if len(calls) == 1:
            path.unlink()
            if new_file:
                path.write_text("")
        return real(fd, how)

    monkeypatch.setattr(fcntl, "flock", released_first)
    lock = FolderLock(tmp_path / "run").acquire()
    assert lock.held and len(calls) == 2 and os.fstat(lock._fd).st_ino == path.stat().st_ino  # the file seen
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()



def test_a_lock_taken_over_from_a_killed_run_never_names_its_old_owner(tmp_path, monkeypatch):
    from minipixel.files import FolderBusy, FolderLock

    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / ".lock"
    path.write_text("99999999\n")  # left by a killed run
    real, said = os.ftruncate, []

    def emptied_then_looked_at(fd, length):
        real(fd, length)
        try:  # another training that tries the folder before our process id is written
            FolderLock(tmp_path / "run").acquire()
        except FolderBusy as busy:
            said.append(str(busy))

    monkeypatch.setattr(os, "ftruncate", emptied_then_looked_at)
    lock = FolderLock(tmp_path / "run").acquire()
    monkeypatch.undo()
    assert len(said) == 1 and "another training (a process) is writing" in said[0]
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()



@pytest.mark.parametrize("content, who", [
    (b"", "another training (a process) is writing"),
    (b"\xff\xfe 99\n", "another training (process \ufffd\ufffd) is writing"),  # not UTF-8: replaced
    (b"OWN extra\n", "this process is already writing"),  # the owner is the first word
    (b"OWN\n", "this process is already writing"),
])
def test_a_held_lock_names_its_owner_from_the_first_word_of_its_file(tmp_path, content, who):
    import fcntl

    from minipixel.files import FolderBusy, FolderLock

    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / ".lock"
    path.write_bytes(content.replace(b"OWN", str(os.getpid()).encode()))
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held through another open file: as by another process
    try:
        with pytest.raises(FolderBusy) as busy:
            FolderLock(tmp_path / "run").acquire()
    finally:
        os.close(fd)
    assert f"{tmp_path / 'run'}: {who}" in str(busy.value)
