"""Stopping a training run cleanly on a signal: Ctrl-C (INT), a job scheduler or
``timeout`` (TERM), a terminal or SSH session that went away (HUP).

Inside ``with stop_requests() as stop:`` the first such signal is only noted
(``stop`` holds it); the loop looks between steps, writes the checkpoint and
raises ``Stopped``, so the checkpoint on disk is never from the middle of an
update. A second signal stops at once.
"""
import contextlib
import os
import signal

# The signals that stop a run: Ctrl-C, a job scheduler or ``timeout`` (TERM), a
# terminal or SSH session that went away (HUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """The run stopped on a signal (``signum``) after writing its checkpoint."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


@contextlib.contextmanager
def stop_requests():
    """Turn the stop signals into a request that the loop honours between steps, so
    the checkpoint written on the way out is never from the middle of an update.
    Yields the list of signals received; a second one stops at once."""
    requested = []

    def handler(signum, frame):
        if requested:  # a second signal: stop at once
            raise Stopped(signum)
        requested.append(signum)
        if signum == getattr(signal, "SIGHUP", None):
            # The terminal is gone: a write to it would fail (EIO) before the checkpoint is saved.
            devnull = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)

    previous = {}
    for signum in STOP_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not in the main thread: no handler, the signal behaves as usual
            pass
    try:
        yield requested
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
