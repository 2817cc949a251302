#!/usr/bin/env bash
# The binarized-MNIST run behind the NLL quoted in the README: train on the
# 50,000-image train split, validate on the 10,000-image valid split (both
# from ../shared/data, or pass the folder that holds them as $1), then
# evaluate the final model on the valid split.
set -euo pipefail
DATA=${1:-../shared/data/binarized_mnist}
OUT=${OUT:-runs/binarized-mnist}
minipixel train --data "$DATA/binarized_mnist_train.amat.gz" --valid "$DATA/binarized_mnist_valid.amat.gz" \
    --filters 64 --blocks 8 --batch 16 --lr 1e-3 --lr-decay 0.9999 --epochs 4 --seed 0 --out "$OUT"
minipixel eval --checkpoint "$OUT/checkpoint.npz" --data "$DATA/binarized_mnist_valid.amat.gz" --json
