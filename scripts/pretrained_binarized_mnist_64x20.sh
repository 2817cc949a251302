#!/usr/bin/env bash
# The binarized-MNIST run at 64 filters and 20 gated layers (issue: pretrained models at
# the paper's likelihood), from scratch and in pieces. One command starts the run or,
# when its folder already holds a checkpoint, continues it exactly where it stopped
# (same data order, dropout masks, optimizer state and learning-rate schedule):
#
#     bash scripts/pretrained_binarized_mnist_64x20.sh              # up to 150 more minutes
#     PIECE_MINUTES=60 bash scripts/pretrained_binarized_mnist_64x20.sh
#
# Why: every 64-filter recipe with 12 gated layers levels out near 82 nats on the valid
# split, above the target of 81.30 (docs/journal/pretrained-binarized-mnist.md), and doubling the
# width to 128 filters bought only 0.55 nats at epoch 1 (87.19 against 87.74) for 3.2
# times the arithmetic. Depth is the other way to grow: 20 gated layers after the 7x7
# one see 23 rows up the image instead of 15 (a digit is about 20 rows tall), for 1.6
# times the 12-layer step (2.07 against 1.29 s, measured side by side on 2026-12-04).
#
# The model and schedule, as the 128-filter run's but for the shape: the gated
# PixelCNN, 64 filters per stack, a 7x7 first layer and 20 more gated layers, batch 32,
# seed 0, 2 threads; Adam at 1e-3 decayed by 0.99991 a step (x0.87 an epoch of 1,563
# steps); Polyak averaging (--ema 0.9995) from the end of epoch 4 (step 6,252) on;
# dropout 0.1 in the gated layers from there too; at most 20 epochs (31,260 steps); an
# evaluation on the 10,000 valid images ends every epoch and every piece. The commands
# are gated_late_dropout_run's in scripts/pieces.sh.
#
# Data: the statically binarized MNIST of Larochelle & Murray, from
# ../shared/data/binarized_mnist or `minipixel download binarized-mnist` (pass the
# folder that holds the .amat files as DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pieces.sh
gated_late_dropout_run "${OUT:-runs/pretrained/binarized-mnist-64x20}" 64 "${PIECE_MINUTES:-150}" \
    "${DATA:-../shared/data/binarized_mnist}" 6252 20
