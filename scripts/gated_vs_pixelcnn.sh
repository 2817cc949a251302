#!/usr/bin/env bash
# Gated PixelCNN against the masked PixelCNN on binarized MNIST, trained for the
# same wall-clock time side by side (one process on each core, one BLAS thread
# each, same seed), then both evaluated on the 10,000-image valid split.
# Data: ../shared/data/binarized_mnist (or pass the folder that holds it as $1).
set -euo pipefail
DATA=${1:-../shared/data/binarized_mnist}
OUT=${OUT:-runs/gated-vs-pixelcnn}
MINUTES=${MINUTES:-25}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
common=(--data "$DATA/binarized_mnist_train.amat.gz" --valid "$DATA/binarized_mnist_valid.amat.gz"
        --batch 16 --lr 1e-3 --lr-decay 0.9999 --epochs 100 --minutes "$MINUTES" --seed 0 --quiet)
minipixel train --arch pixelcnn --filters 64 --blocks 8 "${common[@]}" --out "$OUT/pixelcnn" &
minipixel train --arch gated --filters 32 --blocks 5 "${common[@]}" --out "$OUT/gated" &
wait
for arch in pixelcnn gated; do
    echo "$arch: $(tail -n 1 "$OUT/$arch/metrics.jsonl")"
done
