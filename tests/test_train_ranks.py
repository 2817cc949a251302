"""Training on several ranks, each simulated in one process (train_helpers._FakeRanks): ranks evaluate their
slices of the validation split and agree on the whole, every step gives train_step the ranks and the global
batch (with dropout, each image the keys of its place in it), the ranks stop together, only rank 0 logs and
prints, and under mpiexec a run takes its ranks and cores, an error on one rank stopping them all."""
import pytest

from minipixel import train as train_module
from minipixel.checkpoint import read_checkpoint, save_checkpoint
from minipixel.data import ImageSet
from minipixel.datasets import write_npz
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam
from minipixel.train import TrainSettings, evaluate, train

from conftest import bars
from train_helpers import _FakeRanks, _new_run, run, settings


def _evaluate_split_on_ranks(r, size):
    """``r.evaluate_split()`` as each of ``size`` ranks returns it: a first pass over the
    ranks collects what each sends to ``agree``, a second answers each with all of them.
    Returns (each rank's result, {rank: the first value it sent})."""
    sent = {}
    for _ in range(2):
        results = []
        for rank in range(size):
            r.ranks = _FakeRanks(rank, size, sent)
            results.append(r.evaluate_split())
    return results, {rank: values[0] for rank, values in sent.items()}


def test_ranks_evaluate_their_slices_and_agree_on_the_whole_split(tiny_npz, tmp_path):
    from minipixel.threads import split

    r = _new_run(settings(tiny_npz, steps=1, eval_batch=4), tmp_path / "run")
    whole = evaluate(r.model, r.valid_labels, 4)
    n = len(r.valid_labels)  # 6: a 10% hold-out of 64
    for size in (2, 3):
        results, sent = _evaluate_split_on_ranks(r, size)
        # every rank ends with the evaluation of the whole split
        for result in results:
            assert result.keys() == whole.keys() and result["images"] == n
            assert result["nll_nats"] == pytest.approx(whole["nll_nats"], rel=1e-6)  # float32 sums, grouped otherwise
            assert result["bits_per_dim"] == pytest.approx(whole["bits_per_dim"], rel=1e-6)
        # rank k sent the NLL summed over its own slice of the validation images
        assert sorted(sent) == list(range(size))
        for k, part in enumerate(split(n, size)):
            assert part.stop > part.start
            assert sent[k] == evaluate(r.model, r.valid_labels[part], 4)["nll_nats"] * (part.stop - part.start)
    r.lock.release()


def test_more_ranks_than_validation_images(tiny_npz, tmp_path):
    from minipixel.threads import split

    valid = tmp_path / "two.npz"
    write_npz(valid, ImageSet(images=bars(2, seed=5), max_value=1, source="two"))
    r = _new_run(settings(tiny_npz, steps=1, valid=str(valid)), tmp_path / "run")
    whole = evaluate(r.model, r.valid_labels, 16)
    for size in (3, 5):
        results, sent = _evaluate_split_on_ranks(r, size)
        for result in results:
            assert result.keys() == whole.keys() and result["images"] == 2
            assert result["nll_nats"] == pytest.approx(whole["nll_nats"], rel=1e-6)  # float32 sums, grouped otherwise
            assert result["bits_per_dim"] == pytest.approx(whole["bits_per_dim"], rel=1e-6)
        empty = [k for k, part in enumerate(split(2, size)) if part.stop == part.start]
        assert len(empty) == size - 2 and sorted(sent) == list(range(size))
        assert all(sent[k] == 0.0 for k in empty)  # a rank with no images adds nothing
    r.lock.release()


def _steps_on_this_rank_alone(monkeypatch):
    """Make train_step record what each step passes it, as (ranks, batch, images given), and step on
    this rank's images alone (no other rank to sum gradients with). Returns the record."""
    calls = []
    real = train_module.train_step

    def step(model, optimizer, inputs, labels, classes=None, ranks=None, batch=None, dropout=None):
        calls.append((ranks, batch, len(inputs)) + (() if dropout is None else (dropout[1].tolist(),)))
        return real(model, optimizer, inputs, labels, classes, dropout=dropout)

    monkeypatch.setattr(train_module, "train_step", step)
    return calls


def _loop_as_rank(r, rank, others, log=lambda *a: None, on_step=None):
    """The training loop of the Run ``r`` as rank ``rank`` of two, the other rank sending ``others``
    to every agreement (the loop's stop agreement: [0, its clock says time up, its Ctrl-C])."""
    r.ranks = _FakeRanks(rank, 2, {1 - rank: [float(v) for v in others]})
    try:
        return train_module._loop(r, False, log, on_step)
    finally:
        r.lock.release()


def test_every_step_gives_train_step_the_ranks_and_the_global_batch(tiny_npz, tmp_path, monkeypatch):
    calls = _steps_on_this_rank_alone(monkeypatch)
    r = _new_run(settings(tiny_npz, steps=2), tmp_path / "run")
    _loop_as_rank(r, 0, [0, 0, 0])
    # each rank steps on half of the batch of 16, and train_step is told the whole batch
    assert calls == [(r.ranks, 16, 8), (r.ranks, 16, 8)]


@pytest.mark.parametrize("rank", [0, 1])
def test_with_dropout_each_rank_gives_its_images_the_keys_of_their_place_in_the_global_batch(
        tiny_npz, tmp_path, monkeypatch, rank):
    calls = _steps_on_this_rank_alone(monkeypatch)
    r = _new_run(settings(tiny_npz, steps=2, arch="gated", filters=6, dropout=0.3), tmp_path / "run")
    _loop_as_rank(r, rank, [0, 0, 0])
    places = range(8 * rank, 8 * rank + 8)  # rank 0 has images 0-7 of each batch, rank 1 images 8-15
    assert calls == [(r.ranks, 16, 8, [[3, step, b] for b in places]) for step in (0, 1)]


def test_ranks_stop_together_after_the_step_any_of_them_was_interrupted(tiny_npz, tmp_path, monkeypatch):
    _steps_on_this_rank_alone(monkeypatch)
    r = _new_run(settings(tiny_npz, steps=8), tmp_path / "run")
    logged = []
    with pytest.raises(KeyboardInterrupt):
        _loop_as_rank(r, 0, [0, 0, 1], log=logged.append)  # Ctrl-C on the other rank
    assert r.step == 1 and read_checkpoint(tmp_path / "run")[3]["step"] == 1
    assert logged[0].startswith("stopped by SIGINT at step 1: checkpoint")
    # no one interrupted, no time limit: rank 0 trains on to the end
    r = _new_run(settings(tiny_npz, steps=5), tmp_path / "calm")
    _loop_as_rank(r, 0, [0, 0, 0])
    assert r.step == 5


def test_rank_0s_clock_decides_when_the_ranks_stop(tiny_npz, tmp_path, monkeypatch):
    # The fake clock moves 10 s per step: every rank's own clock says 1 minute is up after step 6.
    _steps_on_this_rank_alone(monkeypatch)
    now = [1000.0]
    monkeypatch.setattr(train_module.time, "time", lambda: now[0])
    tick = lambda step, loss: now.__setitem__(0, now[0] + 10)
    s = settings(tiny_npz, steps=8, minutes=1)
    for rank, rank0_says, stopped_at in [(0, None, 6),  # rank 0: its own clock
                                         (1, 0, 8),     # rank 1: not its own clock, rank 0's says go on
                                         (1, 1, 1)]:    # rank 1: rank 0's clock says stop
        logged = []
        r = _new_run(s, tmp_path / f"rank{rank}-{rank0_says}")
        _loop_as_rank(r, rank, [0, rank0_says or 0, 0], log=logged.append, on_step=tick)
        assert r.step == stopped_at
        assert (f"stopped after 1 minutes of training, at step {stopped_at}" in logged) == (stopped_at < 8)


def test_a_rank_other_than_0_logs_nothing_and_reads_its_data_without_a_bar(tiny_npz, tmp_path, monkeypatch):
    asked, read = [], []
    monkeypatch.setattr(train_module.distributed, "ranks", lambda device: asked.append(device) or
                        _FakeRanks(rank, 2, {}))
    prepare = train_module.prepare_data
    monkeypatch.setattr(train_module, "prepare_data", lambda s, log, progress: read.append((log, progress)) or
                        prepare(s, log, progress))
    for rank in (0, 1):
        logged = []
        r = train_module.Run(settings(tiny_npz, device="cpu"), tmp_path / f"rank{rank}", log=logged.append,
                             progress=True)
        log, progress = read[-1]
        assert r.progress is progress is (rank == 0)
        r.log("a line")
        assert (logged[-1:] == ["a line"]) is (rank == 0) and (logged == []) is (rank == 1)
        assert log("x") is None and r.ranks.rank == rank
        assert (log == logged.append) is (rank == 0)
    assert asked == ["cpu", "cpu"]


def test_only_rank_0_prints_the_evaluations(tiny_npz, tmp_path, monkeypatch, capsys):
    _steps_on_this_rank_alone(monkeypatch)
    printed = []
    for rank in range(2):
        _loop_as_rank(_new_run(settings(tiny_npz, steps=4), tmp_path / f"rank{rank}"), rank, [0, 0, 0])
        printed.append(capsys.readouterr().out)
    assert printed[0].startswith("step 4 epoch 1.00: train ") and "nats/image" in printed[0]
    assert printed[1] == ""


def test_a_single_process_error_is_raised_not_printed(tiny_npz, tmp_path, capsys):
    # (under mpiexec each rank prints its error and stops the others; one process leaves that to the caller)
    with pytest.raises(ValueError, match="--conditional needs class labels"):
        run(settings(tiny_npz, arch="gated", conditional=True, steps=1), tmp_path / "run")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("device, expected", [("cpu", "MPI"), ("gpu", "NCCL")])
def test_under_mpiexec_a_run_takes_the_ranks_and_the_cores_of_its_device(tmp_path, monkeypatch, device, expected):
    from minipixel import distributed, threads as threads_module

    class Launched:
        """Rank 0 of 2 that mpiexec started."""
        rank, size = 0, 2

    monkeypatch.setattr(distributed, "_ranks", None)  # no ranks found yet in this process
    monkeypatch.setattr(distributed, "launched_by_mpi", lambda: True)
    monkeypatch.setattr(distributed, "MPIRanks", type("MPI", (Launched,), {}))
    monkeypatch.setattr(distributed, "NCCLRanks", type("NCCL", (Launched,), {}))
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")  # two ranks on this host of 8 cores
    monkeypatch.setattr(threads_module, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads_module, "_threads", None)
    blas = []
    monkeypatch.setattr(threads_module, "limit_blas", blas.append)
    given = []
    monkeypatch.setattr(train_module, "_train", lambda *args: given.append(args) or distributed.ranks())
    s, log, on_step = TrainSettings(device=device), [].append, lambda step, loss: None
    assert type(train(s, out=tmp_path / "out", progress=False, log=log, on_step=on_step)).__name__ == expected
    assert given[0] == (s, tmp_path / "out", None, False, log, on_step, False)  # the run as asked for
    # a CPU rank: half of the host's cores for its steps and its BLAS; a GPU rank leaves them be
    assert (threads_module._threads, blas) == ((4, [4]) if device == "cpu" else (None, []))
    # resuming without settings: the device saved in the checkpoint decides
    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    save_checkpoint(tmp_path / "checkpoint.npz", model, Adam(model.parameters()), {"settings": {"device": device}})
    monkeypatch.setattr(distributed, "_ranks", None)
    monkeypatch.setattr(threads_module, "_threads", None)
    blas.clear()
    assert type(train(None, resume=tmp_path)).__name__ == expected
    assert given[1] == (None, None, tmp_path, True, print, None, False)
    assert (threads_module._threads, blas) == ((4, [4]) if device == "cpu" else (None, []))


def test_an_error_on_one_rank_is_printed_with_its_rank_and_stops_them_all(tiny_npz, tmp_path, monkeypatch, capsys):
    from minipixel import distributed

    aborted = []

    class Launched:
        """Rank 1 of 2 that mpiexec started."""
        rank, size = 1, 2

        def abort(self, code=1):
            aborted.append(code)

    def fails(*args):
        raise ValueError("bad data")

    monkeypatch.setattr(distributed, "ranks", lambda device="cpu": Launched())
    monkeypatch.setattr(distributed, "share_cores", lambda settings=None: None)
    monkeypatch.setattr(train_module, "_train", fails)
    with pytest.raises(ValueError, match="bad data"):
        train(TrainSettings())
    assert capsys.readouterr().err == "minipixel train (rank 1 of 2): error: bad data\n"
    assert aborted == [1]  # every rank stops, with exit status 1
