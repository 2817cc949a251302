#!/usr/bin/env bash
# A grey model at 8 levels: Fashion-MNIST (60,000 train, 10,000 test images),
# quantized to 8 grey levels, validated and evaluated on the test split.
# Data: `apt-get install -y dataset-fashion-mnist` puts the IDX files in
# /usr/share/datasets/fashion-mnist/ (the default here), or
# `minipixel download fashion-mnist` puts them in data/fashion-mnist/ (pass data).
set -euo pipefail
DATA_DIR=${1:-/usr/share/datasets}
OUT=${OUT:-runs/fashion-mnist-8}
EPOCHS=${EPOCHS:-2}
minipixel train --data fashion-mnist:train --valid fashion-mnist:test --data-dir "$DATA_DIR" --levels 8 \
    --filters 64 --blocks 8 --batch 16 --lr 1e-3 --lr-decay 0.99995 --epochs "$EPOCHS" --seed 0 --out "$OUT"
minipixel eval --checkpoint "$OUT/checkpoint.npz" --data fashion-mnist:test --data-dir "$DATA_DIR" --json
minipixel complete --checkpoint "$OUT/checkpoint.npz" --data fashion-mnist:test --data-dir "$DATA_DIR" \
    -n 8 --keep-rows 14 --samples 4 --out "$OUT/completions.png"
