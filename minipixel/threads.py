"""Both CPU cores at work: a batch split into parts, one thread per part.

NumPy runs its element-wise work (im2col, col2im, the bias, ReLU, the loss)
on one core; only its BLAS uses more. So on the CPU a training step (``step``)
and an evaluation (``evaluate``) split the batch into as many parts as there
are threads, and each thread runs the whole forward (and backward) of its
part, with a single-threaded BLAS: every kind of work then runs on every
core, and each matrix product is small enough to stay in one core's cache.
NumPy releases the GIL inside its loops and BLAS calls, so Python threads
really do run at the same time.

Each thread needs its own copy of what ``forward`` keeps for ``backward``
(and its own gradients): a *replica* of the model, which shares the
parameter arrays with it (an update by the optimizer is seen by all) and
owns everything else. Part ``k`` of the batch always goes to replica ``k``,
so the same thread count gives the same numbers, bit for bit, every time.

On the GPU (and on any device but the CPU's NumPy) there is one part: the
GPU parallelises inside each operation.

This module is the mechanism only (threads, parts, replicas, BLAS limits);
what each part computes is the caller's.
"""
import copy
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import options

_threads = None  # set_threads(); None: one per CPU core this process may use
_pool = None
_controller = None
_limits_lock = threading.Lock()
_limits = []  # the limits of the blas_limit blocks open now, in every thread
_original = None  # gives BLAS back as it was before the first of them


def cpu_count():
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(n=None):
    """Use ``n`` threads for training and evaluation on the CPU (None: one per core)."""
    global _threads
    _threads = None if n is None else int(options.check("threads", n))


def threads():
    """How many threads a CPU training step uses."""
    return _threads or cpu_count()


def blas_threads():
    """How many threads NumPy's BLAS uses outside a split step (None if it cannot be told)."""
    info = [lib for lib in _blas().info() if lib["user_api"] == "blas"]
    return info[0]["num_threads"] if info else None


def _blas():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def blas_threads_in(parts):
    """How many threads BLAS uses inside ``run`` of ``parts`` tasks (None if it cannot be told)."""
    if parts > 1:
        return 1
    now = blas_threads()
    return now if _threads is None or now is None else min(now, _threads)


def limit_blas(n):
    """From now on, NumPy's BLAS uses at most ``n`` threads in this process (an MPI
    rank shares the host's cores with the other ranks: more would fight over them)."""
    _blas().limit(limits=n, user_api="blas")


class blas_limit:
    """``with blas_limit(n):`` NumPy's BLAS uses at most ``n`` threads (None: as it is).

    The count belongs to the process, not to a thread: while blocks of several
    threads overlap (a server's requests), the lowest limit holds, and BLAS is as
    it was before them once the last one ends, whatever order they end in. (Each
    block giving back what it found would leave the count of whichever ended
    last: one thread, for good, after two requests overlapped.)
    """

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        global _original
        if self.n is None:
            return
        with _limits_lock:
            _limits.append(self.n)
            limiter = _blas().limit(limits=min(_limits), user_api="blas")
            if len(_limits) == 1:  # the first block open: its limiter knows BLAS as it was
                _original = limiter

    def __exit__(self, *error):
        if self.n is None:
            return
        with _limits_lock:
            _limits.remove(self.n)
            if _limits:
                _blas().limit(limits=min(_limits), user_api="blas")
            else:
                _original.restore_original_limits()


def single_threaded_blas():
    """``with single_threaded_blas():`` NumPy's matrix products run in the calling
    thread only (a product of a few thousand multiply-adds is slower when BLAS
    hands it to two threads)."""
    return blas_limit(1)


def split(n, parts):
    """``parts`` slices that cover ``range(n)`` in order, as equal as they can be."""
    bounds = [n * k // parts for k in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def replicas(model, batch):
    """The models that share a batch of ``batch`` images: ``[model]`` on the GPU
    or with one thread, else ``model`` and replicas of it, one per thread."""
    if model.xp is not np:
        return [model]
    n = min(threads(), batch)
    made = model.__dict__.setdefault("_replicas", [])
    while len(made) < n - 1:
        made.append(replica(model))
    return [model] + made[: n - 1]


def replica(model):
    """A twin of ``model`` that shares its parameter arrays and owns the rest
    (gradients, the caches of forward): a deep copy that does not copy the
    parameters, the array module, or the replicas already made."""
    memo = {id(p): p for p in model.parameters().values()}
    memo[id(model.xp)] = model.xp
    if model.packed is not None:  # the replica's gradients are its own arrays, not views of these
        memo[id(model.packed)] = None
    if "_replicas" in model.__dict__:
        memo[id(model._replicas)] = []
    for layer in model.layers():
        for name in layer.CACHE:
            value = getattr(layer, name)
            if value is not None:
                memo[id(value)] = None  # forward's caches: not worth copying
    return copy.deepcopy(model, memo)


def run(tasks):
    """Call every function of ``tasks`` (the first in this thread, the others
    in the pool) with BLAS single-threaded; return their results in order.

    One task runs in this thread with BLAS as it is, or, after ``set_threads(n)``,
    with at most ``n`` BLAS threads: ``--threads 1`` means one core, and more
    BLAS threads than cores left free by other processes spin against them, and
    everything slows down many times over.
    """
    global _pool
    if len(tasks) == 1:
        if _threads is None:
            return [tasks[0]()]
        with blas_limit(blas_threads_in(1)):
            return [tasks[0]()]
    if _pool is None or _pool._max_workers < len(tasks) - 1:
        _pool = ThreadPoolExecutor(max_workers=len(tasks) - 1, thread_name_prefix="minipixel")
    with single_threaded_blas():
        futures = [_pool.submit(task) for task in tasks[1:]]
        results = [tasks[0]()]
        results += [future.result() for future in futures]  # re-raises a thread's exception here
    return results


def _forget_pool():
    """After a fork: the child has none of the parent's threads, so a pool it
    inherited would take tasks and never run them (the child would hang)."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def part_of(values, part):
    """``values[part]``, or None for None (an optional per-image array, such as the classes)."""
    return None if values is None else values[part]
