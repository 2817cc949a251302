"""Run by tests/test_mpi.py under mpiexec (``mpiexec -n N python tests/mpi_worker.py MODE ...``).

float64 OUT: K float64 training steps of a small model, the batch's slices on the
    ranks; rank 0 then runs the same steps alone with N threads (no MPI) and writes
    the largest relative difference of the parameters to OUT.
fail DATA OUT: a training run in which rank 1 raises at step 3.
nccl OUT: the GPU path (scripts/gpu_check.py runs it where a GPU is lent): each rank
    sums a CuPy array through NCCL and writes whether the sum is right.

minipixel.train is imported only by the modes that train: it imports tqdm, which a
bare GPU machine may lack (gpu_check.py stands in for it in its own process only).
"""
import sys

import numpy as np

from minipixel import distributed, threads as threads_module
from minipixel.data import labels_to_inputs
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam


def float64_steps(out, steps=3, batch=7):
    from minipixel.train import train_step

    ranks = distributed.ranks()
    threads_module.set_threads(1)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (steps, batch, 6, 5, 1))

    def run(ranks, threads):
        threads_module.set_threads(threads)
        model = PixelCNN(PixelCNNConfig(height=6, width=5, levels=3, filters=8, blocks=2), seed=1, dtype="float64")
        adam = Adam(model.parameters(), lr=1e-2, flat=model.packed)
        for k in range(steps):
            part = threads_module.split(batch, ranks.size)[ranks.rank]
            y = labels[k][part]
            train_step(model, adam, labels_to_inputs(y, 3, np.float64), y, ranks=ranks, batch=batch)
        return model.packed[0].copy()

    together = run(ranks, 1)
    if ranks.rank == 0:
        alone = run(distributed.Single(), ranks.size)
        worst = float(np.max(np.abs(together - alone) / np.maximum(np.abs(alone), 1e-300)))
        with open(out, "w") as f:
            f.write(repr(worst))


def fail(data, out):
    from minipixel.train import TrainSettings, train

    def raise_on_rank_1(step, loss):
        if step == 3 and distributed.ranks().rank == 1:
            raise RuntimeError("rank 1 fails on purpose")

    train(TrainSettings(data=data, filters=8, blocks=1, batch=8, steps=20, samples=0, eval_every=2), out=out,
          progress=False, on_step=raise_on_rank_1)


def nccl(out):
    import cupy

    ranks = distributed.NCCLRanks()  # also with one rank: the NCCL path itself is what is checked
    flat = cupy.full(1000, ranks.rank + 1, dtype=cupy.float32)
    ranks.sum(flat)
    want = ranks.size * (ranks.size + 1) / 2
    if ranks.rank == 0:
        with open(out, "w") as f:
            f.write(repr({"ranks": ranks.size, "passed": bool((flat == want).all())}))


if __name__ == "__main__":
    {"float64": float64_steps, "fail": fail, "nccl": nccl}[sys.argv[1]](*sys.argv[2:])
