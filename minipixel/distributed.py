"""Data-parallel training on MPI: many processes (ranks) train one model.

    mpiexec -n 4 minipixel train --batch 64 ...   # 4 ranks, 16 images each a step

Every rank holds the whole model and the same data. Each step, rank r takes its
slice of the same global batch (``threads.split(B, size)[r]``), runs forward,
loss and backward on it, and then the ranks meet in one place, ``sum``: every
rank's gradients sit in one flat array (``model.packed``), the arrays of all
ranks are gathered, and each rank adds them up in rank order. So every rank
holds the same sum, bit for bit, and applies the same Adam step; and the sum
is grouped exactly as one process with one thread per slice groups it
(``step.train_step``), so a run on N ranks gives the parameters of
a one-process run with N threads, to the bit.

The step's loss and the stop signals (Ctrl-C, the --minutes budget) travel in
the same gathering (``agree``), so every rank stops after the same step. Only
rank 0 writes files and prints. An exception on one rank stops all of them
(``abort``): the others would otherwise wait for it forever.

On the GPU (``--device gpu``), rank r takes GPU r % (GPUs on its host) and the
gradients are summed by NCCL (``cupy.cuda.nccl``; the NCCL id is sent over MPI):
an all-reduce in NCCL's ring order, the same on every rank, not the CPU's order.
"""
import hashlib
import os
import sys
import time

import numpy as np

from . import threads

MPI_INSTALL = 'pip install -e ".[mpi]" (mpi4py and the mpich runtime, whose mpiexec lands in the virtual environment)'
# Set by the MPI launchers (MPICH/Hydra, Open MPI, PMIx) in every process they start.
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


def launched_by_mpi():
    """True in a process that ``mpiexec`` (or ``mpirun``, ``srun``) started."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def local_size():
    """How many ranks the launcher started on this host (1 outside ``mpiexec``)."""
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def share_cores(settings=None):
    """A CPU rank's share of its host's cores: the threads of a training step
    (``--threads``, else cores / ranks on this host) and as many BLAS threads."""
    if settings is not None and settings.device == "gpu":
        return
    if threads._threads is None:
        threads.set_threads(max(1, threads.cpu_count() // local_size()))
    threads.limit_blas(threads.threads())


class Single:
    """One process: nothing to meet."""

    rank, size = 0, 1

    def sum(self, flat):
        return flat

    def agree(self, values):
        return list(values)

    def abort(self, code=1):
        pass


class MPIRanks:
    """The ranks of ``mpiexec``, through mpi4py's COMM_WORLD."""

    def __init__(self):
        try:
            from mpi4py import MPI
        except ImportError as err:
            raise RuntimeError(f"this process was started by mpiexec, but mpi4py cannot be imported ({err}); "
                               f"install it with {MPI_INSTALL}") from None
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def sum(self, flat):
        """``flat`` (a 1-D array) summed over the ranks in rank order, in place: every rank
        gets the same numbers, grouped as (((g0 + g1) + g2) + ...)."""
        host = np.ascontiguousarray(flat)
        gathered = np.empty((self.size,) + host.shape, host.dtype)
        self.comm.Allgather(host, gathered)
        total = gathered[0]
        for k in range(1, self.size):
            total += gathered[k]
        flat[...] = total
        return flat

    def agree(self, values):
        """Each rank's list of numbers in, the same list out on every rank: the sum of
        the first (the loss), and of each other (flags) whether any rank set it."""
        rows = self.comm.allgather([float(v) for v in values])
        return [sum(row[0] for row in rows)] + [max(row[k] for row in rows) for k in range(1, len(values))]

    def check_same(self, flat, what):
        """Refuse to start when ``flat`` is not the same on every rank."""
        digest = hashlib.sha256(np.ascontiguousarray(flat).tobytes()).hexdigest()
        digests = self.comm.allgather(digest)
        if len(set(digests)) != 1:
            raise RuntimeError(f"the {what} differ between ranks; every rank must build the same model")

    def abort(self, code=1):
        # MPI_Abort tears every process down at once; the launcher may not yet have passed on
        # what this rank just wrote (its one-line error): give it a moment.
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.5)
        self.comm.Abort(code)


_ranks = None


def ranks(device="cpu"):
    """The ranks of this run: ``Single()`` for one process, else MPI's (NCCL's on the GPU)."""
    global _ranks
    if _ranks is None:
        _ranks = Single()
        if launched_by_mpi():
            found = MPIRanks() if device != "gpu" else NCCLRanks()
            if found.size > 1:
                _ranks = found
    return _ranks


# --- GPU ---------------------------------------------------------------------------
# This part runs only on GPUs under mpiexec (scripts/gpu_check.py runs it); no test
# elsewhere can reach it, so mutation testing leaves it out:
# pragma: no mutate block
class NCCLRanks(MPIRanks):
    """GPU ranks: MPI to start and to agree, NCCL to sum the gradients."""

    def __init__(self):
        super().__init__()
        import cupy
        from cupy.cuda import nccl

        cupy.cuda.Device(self.rank % cupy.cuda.runtime.getDeviceCount()).use()
        uid = self.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)

    def sum(self, flat):
        from cupy.cuda import nccl

        kind = {np.dtype("float32"): nccl.NCCL_FLOAT32, np.dtype("float64"): nccl.NCCL_FLOAT64}[flat.dtype]
        stream = __import__("cupy").cuda.get_current_stream()
        self.nccl.allReduce(flat.data.ptr, flat.data.ptr, flat.size, kind, nccl.NCCL_SUM, stream.ptr)
        return flat

    def check_same(self, flat, what):
        super().check_same(__import__("cupy").asnumpy(flat), what)
