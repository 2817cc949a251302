"""Images per second of training on MPI ranks, and the time the ranks spend meeting.

    python scripts/mpi_scaling.py                      # 1 process, all cores
    python scripts/mpi_scaling.py --threads 1          # 1 process, one core
    mpiexec -n 2 python scripts/mpi_scaling.py         # 2 ranks, one core each

The model of ``minipixel train`` (64 filters, 8 blocks, 28x28 binary), global batch
64, random labels; 3 warm-up steps, then --steps timed. Rank 0 prints one JSON line:
images/s, seconds a step, and the seconds a step spends in ``ranks.sum`` (all the
gradients, one flat array) and ``ranks.agree`` (the loss).
"""
import argparse
import json
import time

import numpy as np

from minipixel import distributed, threads as threads_module
from minipixel.data import labels_to_inputs
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam
from minipixel.train import train_step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, help="threads (and BLAS threads) per rank (default: its share of the cores)")
    args = parser.parse_args()
    ranks = distributed.ranks()
    if args.threads:
        threads_module.set_threads(args.threads)
        threads_module.limit_blas(args.threads)
    elif ranks.size > 1:
        distributed.share_cores()
    model = PixelCNN(PixelCNNConfig(filters=64, blocks=8), seed=0)
    adam = Adam(model.parameters(), flat=model.packed)
    labels = np.random.default_rng(0).integers(0, 2, (args.batch, 28, 28, 1))
    part = labels[threads_module.split(args.batch, ranks.size)[ranks.rank]]
    x = labels_to_inputs(part, 2, np.float32)
    meeting = [0.0]
    real_sum, real_agree = ranks.sum, ranks.agree

    def timed(function):
        def run(*a):
            start = time.perf_counter()
            try:
                return function(*a)
            finally:
                meeting[0] += time.perf_counter() - start
        return run

    ranks.sum, ranks.agree = timed(real_sum), timed(real_agree)
    for step in range(3 + args.steps):
        if step == 3:
            meeting[0], start = 0.0, time.perf_counter()
        train_step(model, adam, x, part, ranks=ranks, batch=args.batch)
    seconds = (time.perf_counter() - start) / args.steps
    if ranks.rank == 0:
        print(json.dumps({"ranks": ranks.size, "threads_per_rank": threads_module.threads(), "batch": args.batch,
                          "images_per_s": round(args.batch / seconds, 1), "step_s": round(seconds, 4),
                          "meeting_s": round(meeting[0] / args.steps, 5),
                          "parameters": int(model.packed[0].size)}))


if __name__ == "__main__":
    main()
