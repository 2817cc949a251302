"""Data-parallel training on MPI (``minipixel.distributed``), run under a real
``mpiexec`` (the mpich wheel's, installed with the test extra).

N ranks split each global batch as one process with N threads splits it, and sum
the gradients in the same order, so the parameters are equal to the bit."""
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minipixel.checkpoint import read_checkpoint

HERE = Path(__file__).resolve().parent
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
if importlib.util.find_spec("mpi4py") is None:
    MPIEXEC = None
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason='needs mpi4py and mpiexec: pip install -e ".[mpi]"')


def mpi(n, *args, timeout=180):
    """Run ``args`` under ``mpiexec -n n``; the CompletedProcess."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([MPIEXEC, "-n", str(n), *args], capture_output=True, text=True, timeout=timeout, env=env)


def minipixel(n, *args):
    """``minipixel ARGS`` on n ranks (n = 0: one process, no mpiexec)."""
    command = [sys.executable, "-m", "minipixel.cli", *args, "--quiet"]
    if n == 0:
        return subprocess.run(command, capture_output=True, text=True, timeout=180)
    return mpi(n, *command)


def params(folder):
    return read_checkpoint(folder)[1]


def assert_same(a, b):
    worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
    assert all(np.array_equal(a[k], b[k]) for k in a), f"largest difference {worst}"


def train_args(data, out, steps, **extra):
    args = ["train", "--data", str(data), "--filters", "8", "--blocks", "1", "--batch", "8", "--samples", "4",
            "--steps", str(steps), "--out", str(out)]
    for name, value in extra.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_train_the_parameters_of_one_process(tiny_npz, tmp_path, ranks):
    alone = minipixel(0, *train_args(tiny_npz, tmp_path / "alone", 6, threads=ranks))
    together = minipixel(ranks, *train_args(tiny_npz, tmp_path / "together", 6))
    assert alone.returncode == 0 and together.returncode == 0, together.stderr
    assert_same(params(tmp_path / "alone"), params(tmp_path / "together"))
    # Only rank 0 wrote and printed: one line a step, one "done".
    assert {p.name for p in (tmp_path / "together").iterdir()} == {p.name for p in (tmp_path / "alone").iterdir()}
    assert len((tmp_path / "together" / "steps.csv").read_text().splitlines()) == 1 + 6
    assert together.stdout.count("done in") == 1
    metrics = lambda d: [line.split('"seconds"')[0] for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics("together")) == len(metrics("alone"))


@needs_mpi
def test_float64_steps_on_ranks_equal_one_process(tmp_path):
    out = tmp_path / "worst.txt"
    done = mpi(3, sys.executable, str(HERE / "mpi_worker.py"), "float64", str(out))
    assert done.returncode == 0, done.stderr
    assert float(out.read_text()) <= 1e-10  # in fact 0: the same sums in the same order


@needs_mpi
def test_resume_on_another_number_of_ranks(tiny_npz, tmp_path):
    # 4 steps on 2 ranks, then 4 more on 1 rank (2 threads) or on 3 ranks: the same
    # parameters as one process that changes its thread count the same way.
    first = minipixel(2, *train_args(tiny_npz, tmp_path / "two", 4))
    assert first.returncode == 0, first.stderr
    for n, threads in ((0, 2), (3, 3)):
        folder = tmp_path / f"then{n}"
        shutil.copytree(tmp_path / "two", folder)
        extra = ["--threads", str(threads)] if n == 0 else []
        done = minipixel(n, "train", "--resume", str(folder), "--steps", "8", *extra)
        assert done.returncode == 0, done.stderr
        reference = tmp_path / f"reference{n}"
        assert minipixel(0, *train_args(tiny_npz, reference, 4, threads=2)).returncode == 0
        assert minipixel(0, "train", "--resume", str(reference), "--steps", "8", "--threads", str(threads)).returncode == 0
        assert_same(params(reference), params(folder))
        assert read_checkpoint(folder)[3]["step"] == 8


@needs_mpi
def test_an_error_on_one_rank_stops_every_rank(tiny_npz, tmp_path):
    start = time.time()
    done = mpi(2, sys.executable, str(HERE / "mpi_worker.py"), "fail", str(tiny_npz), str(tmp_path / "run"),
               timeout=120)
    assert done.returncode != 0 and time.time() - start < 60
    assert "minipixel train (rank 1 of 2): error: rank 1 fails on purpose" in done.stderr
    assert read_checkpoint(tmp_path / "run")[3]["step"] == 2  # the last good checkpoint (evaluations every 2)


@needs_mpi
def test_a_batch_that_does_not_split_evenly_is_split_as_threads_split_it(tiny_npz, tmp_path):
    # A batch of 7 on 2 ranks: 3 and 4 images, the loss divided by 7, as one process with 2 threads.
    alone = minipixel(0, *train_args(tiny_npz, tmp_path / "alone", 5, threads=2, batch=7))
    together = minipixel(2, *train_args(tiny_npz, tmp_path / "together", 5, batch=7))
    assert alone.returncode == 0 and together.returncode == 0, together.stderr
    assert_same(params(tmp_path / "alone"), params(tmp_path / "together"))


def test_under_mpiexec_without_mpi4py_the_message_says_what_to_install(tiny_npz, tmp_path):
    # Not skipped without MPI: the launcher's variables are set by hand, and mpi4py is
    # replaced by a package that cannot be imported, as on a machine without it.
    fake = tmp_path / "fake" / "mpi4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('libmpi.so.12: cannot open shared object file')\n")
    env = dict(os.environ, PMI_SIZE="2", PMI_RANK="0", PYTHONPATH=str(tmp_path / "fake"))
    done = subprocess.run([sys.executable, "-m", "minipixel.cli", *train_args(tiny_npz, tmp_path / "run", 2)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "minipixel train: error: this process was started by mpiexec, but mpi4py cannot be imported (libmpi.so.12: "
        "cannot open shared object file); install it with pip install -e \".[mpi]\" (mpi4py and the mpich runtime, "
        "whose mpiexec lands in the virtual environment)")


@needs_mpi
def test_ctrl_c_under_mpiexec_stops_every_rank_after_the_same_step(tiny_npz, tmp_path):
    import signal

    run = tmp_path / "run"
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "minipixel.cli",
               *train_args(tiny_npz, run, 100000, eval_every=50), "--quiet"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run / "checkpoint.npz").exists() and time.time() < deadline:
            time.sleep(0.2)
        launcher.send_signal(signal.SIGINT)  # mpiexec passes it to every rank
        out, err = launcher.communicate(timeout=60)
    finally:
        launcher.kill()
    assert launcher.returncode == 130, err
    step = read_checkpoint(run)[3]["step"]
    assert step > 0 and f"stopped by SIGINT at step {step}" in out
    assert len((run / "steps.csv").read_text().splitlines()) == 1 + step  # both stopped there; one writer
