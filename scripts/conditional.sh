#!/usr/bin/env bash
# Class-conditional Gated PixelCNNs: the shipped MNIST-5k digits (2 levels) and
# Fashion-MNIST (8 grey levels), side by side (one process a core). Each
# run's samples.png has one row per class; eval gives the NLL given the true class.
# Fashion-MNIST: `apt-get install -y dataset-fashion-mnist` (files in
# /usr/share/datasets, the default here) or `minipixel download fashion-mnist` (pass data).
set -euo pipefail
DATA_DIR=${1:-/usr/share/datasets}
OUT=${OUT:-runs/conditional}
MINUTES=${MINUTES:-20}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
gated=(--arch gated --conditional --filters 32 --blocks 5 --batch 16 --lr 1e-3 --seed 0 --quiet)
minipixel train --data mnist5k:train "${gated[@]}" --lr-decay 0.9998 --epochs 12 --minutes "$MINUTES" \
    --samples 80 --out "$OUT/mnist5k" &
minipixel train --data fashion-mnist:train --valid fashion-mnist:test --data-dir "$DATA_DIR" --levels 8 \
    "${gated[@]}" --lr-decay 0.99995 --epochs 10 --minutes "$MINUTES" --samples 80 --out "$OUT/fashion-mnist-8" &
wait
minipixel eval --checkpoint "$OUT/fashion-mnist-8" --data fashion-mnist:test --data-dir "$DATA_DIR" --json
