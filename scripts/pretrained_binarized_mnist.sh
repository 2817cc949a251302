#!/usr/bin/env bash
# The pretrained binarized-MNIST model (issue: pretrained models at the paper's
# likelihood), reproduced from scratch and trained in pieces. One command starts the
# run or, when its folder already holds a checkpoint, continues it exactly where it
# stopped (same data order, optimizer state and learning-rate schedule):
#
#     bash scripts/pretrained_binarized_mnist.sh             # up to 150 more minutes
#     PIECE_MINUTES=60 bash scripts/pretrained_binarized_mnist.sh
#
# Each piece ends with an evaluation on the valid split, checkpoint.npz, best.npz
# (the lowest validation NLL so far), metrics.jsonl, steps.csv, learning_curve.png and samples.png in
# $OUT. Training minutes add up across pieces (--minutes counts them all).
#
# Data: the statically binarized MNIST of Larochelle & Murray (50,000 train and 10,000
# valid images), from ../shared/data/binarized_mnist or `minipixel download
# binarized-mnist` (pass the folder that holds the .amat files as DATA).
#
# The model and schedule, chosen from pilot runs (see the README's "Pretrained
# models"): the gated PixelCNN, 32 filters per stack, a 7x7 first layer and 12 more
# gated layers (390,272 parameters), batch 32, Adam at 1e-3 decayed by 0.99997 a step
# (x0.23 per 50,000 steps, about 32 epochs), seed 0, 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/binarized_mnist}
OUT=${OUT:-pretrained/binarized-mnist}
PIECE=${PIECE_MINUTES:-150}
if [[ -f $OUT/checkpoint.npz ]]; then
    so_far=$(python -c "from minipixel.checkpoint import read_checkpoint as r; print(r('$OUT')[3]['seconds'] / 60)")
    total=$(python -c "print(round($so_far + $PIECE, 1))")
    echo "continuing $OUT: $so_far minutes trained so far, stopping at $total"
    minipixel train --resume "$OUT" --minutes "$total" --threads 2 --quiet
else
    minipixel train --data "$DATA/binarized_mnist_train.amat.gz" --valid "$DATA/binarized_mnist_valid.amat.gz" \
        --arch gated --filters 32 --blocks 12 --batch 32 --lr 1e-3 --lr-decay 0.99997 --epochs 100 \
        --seed 0 --threads 2 --samples 64 --minutes "$PIECE" --out "$OUT" --quiet
fi
tail -n 3 "$OUT/metrics.jsonl"
