"""distributed.py in one process: each rank is a thread, and mpi4py's COMM_WORLD is a stand-in
that passes arrays between the threads (tests/test_mpi.py runs the real thing under mpiexec)."""
import sys
import threading
import types

import numpy as np
import pytest

from minipixel import distributed, threads


class _World:
    """What the ranks share: one slot per rank, and a barrier to meet at."""

    def __init__(self, size):
        self.size, self.slots, self.aborted = size, [None] * size, []
        self.barrier = threading.Barrier(size, timeout=10)


class _Comm:
    """The part of mpi4py's communicator that distributed.py uses, for one rank."""

    def __init__(self, world, rank):
        self.world, self.rank = world, rank

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.world.size

    def _exchange(self, value):
        self.world.slots[self.rank] = value
        self.world.barrier.wait()
        every = list(self.world.slots)
        self.world.barrier.wait()  # nobody writes the next round before all have read this one
        return every

    def Allgather(self, send, receive):
        assert receive.shape == (self.world.size,) + send.shape and receive.dtype == send.dtype
        for k, part in enumerate(self._exchange(send.copy())):
            receive[k] = part

    def allgather(self, value):
        return self._exchange(value)

    def Abort(self, code):
        self.world.aborted.append((self.rank, code))


@pytest.fixture
def on_ranks(monkeypatch):
    """on_ranks(size, work): work(MPIRanks(), rank) on `size` threads, each its own rank;
    the results (or exceptions) in rank order."""
    local = threading.local()

    class MPI:  # mpi4py.MPI: each thread (rank) sees its own COMM_WORLD
        COMM_WORLD = property(lambda self: local.comm)

    monkeypatch.setitem(sys.modules, "mpi4py", types.SimpleNamespace(MPI=MPI()))

    def run(size, work):
        world = _World(size)
        results = [None] * size

        def rank_main(rank):
            local.comm = _Comm(world, rank)
            try:
                results[rank] = work(distributed.MPIRanks(), rank)
            except Exception as err:  # noqa: BLE001 - handed to the test
                results[rank] = err

        workers = [threading.Thread(target=rank_main, args=(rank,)) for rank in range(size)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        run.world = world
        return results

    return run


def test_the_ranks_know_their_rank_and_size(on_ranks):
    assert on_ranks(3, lambda r, rank: (r.rank, r.size)) == [(0, 3), (1, 3), (2, 3)]


def test_sum_gives_every_rank_the_rank_order_sum_in_place(on_ranks):
    # Numbers whose float32 sum depends on the grouping: only (g0 + g1) + g2 gives the expected bits.
    parts = [np.array([1e8, 1.0, -3.0], np.float32), np.array([-1e8, 1e-8, 2.5], np.float32),
             np.array([1.0, 3e-8, 0.25], np.float32)]
    expected = (parts[0] + parts[1]) + parts[2]
    assert not np.array_equal(expected, parts[0] + (parts[1] + parts[2]))

    def work(r, rank):
        flat = parts[rank].copy()
        out = r.sum(flat)
        assert out is flat
        return flat

    for got in on_ranks(3, work):
        assert got.dtype == np.float32 and got.tobytes() == expected.tobytes()


def test_sum_writes_into_a_view(on_ranks):
    def work(r, rank):
        grads = np.full((2, 4), float(rank + 1))
        r.sum(grads[:, 1])  # a strided view, as a gradient may be
        return grads

    for rank, got in enumerate(on_ranks(2, work)):
        np.testing.assert_array_equal(got, [[rank + 1, 3, rank + 1, rank + 1]] * 2)


def test_agree_sums_the_first_number_and_takes_any_flag(on_ranks):
    sent = [[0.5, 0, 0], [1.25, 1, 0], [2.0, 0, 0]]
    for got in on_ranks(3, lambda r, rank: r.agree(sent[rank])):
        assert got == [3.75, 1.0, 0.0]


def test_agree_with_the_loss_alone(on_ranks):
    assert on_ranks(2, lambda r, rank: r.agree([rank + 1.5])) == [[4.0], [4.0]]


def test_check_same_passes_equal_parameters_and_refuses_different_ones(on_ranks):
    assert on_ranks(2, lambda r, rank: r.check_same(np.arange(4.0), "parameters")) == [None, None]

    def work(r, rank):
        flat = np.arange(4.0)
        flat[3] += rank * 1e-12  # the last bit of one number
        r.check_same(flat, "parameters")

    for got in on_ranks(2, work):
        assert isinstance(got, RuntimeError)
        assert str(got) == "the parameters differ between ranks; every rank must build the same model"


def test_abort_flushes_waits_and_aborts_with_the_code(on_ranks, monkeypatch):
    done = []
    monkeypatch.setattr(distributed.time, "sleep", lambda s: done.append(("sleep", s)))
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(flush=lambda: done.append("stdout")))
    monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(flush=lambda: done.append("stderr")))
    on_ranks(1, lambda r, rank: r.abort(3))
    assert done == ["stdout", "stderr", ("sleep", 0.5)]
    assert on_ranks.world.aborted == [(0, 3)]
    on_ranks(1, lambda r, rank: r.abort())
    assert on_ranks.world.aborted == [(0, 1)]


def test_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails
    with pytest.raises(RuntimeError) as err:
        distributed.MPIRanks()
    assert str(err.value).startswith("this process was started by mpiexec, but mpi4py cannot be imported (")
    assert str(err.value).endswith("); install it with " + distributed.MPI_INSTALL)


def test_one_process_meets_nobody():
    one = distributed.Single()
    flat = np.arange(3.0)
    assert (one.rank, one.size) == (0, 1)
    assert one.sum(flat) is flat and one.agree((2.5, 1)) == [2.5, 1] and one.abort(2) is None


@pytest.fixture
def no_launcher(monkeypatch):
    for name in distributed.LAUNCHER_VARIABLES + ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE",
                                                  "PMIX_LOCAL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("variable", distributed.LAUNCHER_VARIABLES)
def test_any_launchers_variable_says_mpiexec_started_the_process(no_launcher, variable):
    assert not distributed.launched_by_mpi()
    no_launcher.setenv(variable, "0")
    assert distributed.launched_by_mpi()


@pytest.mark.parametrize("variable", ["MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE"])
def test_local_size_reads_the_launchers_count(no_launcher, variable):
    assert distributed.local_size() == 1
    no_launcher.setenv(variable, "x")  # not a number: not a count
    assert distributed.local_size() == 1
    no_launcher.setenv(variable, "6")
    assert distributed.local_size() == 6


@pytest.mark.parametrize("size, expected", [(1, "Single"), (2, "MPIRanks")])
def test_ranks_are_mpis_only_when_launched_with_more_than_one(no_launcher, on_ranks, size, expected):
    no_launcher.setattr(distributed, "_ranks", None)
    assert type(distributed.ranks()).__name__ == "Single"  # not launched
    no_launcher.setattr(distributed, "_ranks", None)
    no_launcher.setenv("PMI_SIZE", str(size))

    def work(r, rank):
        return distributed.ranks() if rank == 0 else None  # found once, by the first rank

    found = on_ranks(size, work)[0]
    assert type(found).__name__ == expected
    assert distributed.ranks() is found  # kept


@pytest.mark.parametrize("set_before, ranks_here, expected", [(None, 3, 2), (None, 16, 1), (5, 3, 5)])
def test_a_cpu_rank_takes_its_share_of_the_cores(no_launcher, set_before, ranks_here, expected):
    no_launcher.setattr(threads, "_threads", set_before)
    no_launcher.setattr(threads, "cpu_count", lambda: 8)
    no_launcher.setenv("MPI_LOCALNRANKS", str(ranks_here))
    blas = []
    no_launcher.setattr(threads, "limit_blas", blas.append)
    distributed.share_cores()
    assert threads.threads() == expected and blas == [expected]


def test_a_gpu_rank_leaves_the_cores_alone(no_launcher):
    no_launcher.setattr(threads, "_threads", None)
    blas = []
    no_launcher.setattr(threads, "limit_blas", blas.append)
    distributed.share_cores(types.SimpleNamespace(device="gpu"))
    assert threads._threads is None and blas == []
    distributed.share_cores(types.SimpleNamespace(device="cpu"))
    assert threads._threads is not None and blas == [threads._threads]
