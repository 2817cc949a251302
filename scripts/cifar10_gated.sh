#!/usr/bin/env bash
# A class-conditional Gated PixelCNN in colour (R -> G -> B within each pixel)
# on CIFAR-10 as a folder of JPEGs, 256 levels, for a short time budget;
# samples.png has one row per class. JPEG is lossy: the bits/dim are not
# comparable with papers' CIFAR-10 figures.
set -euo pipefail
ARCHIVE=${1:-../shared/data/cifar10-jpg.tar.gz}
FOLDER=${FOLDER:-/tmp/cifar10-jpg}
OUT=${OUT:-runs/cifar10-gated}
MINUTES=${MINUTES:-20}
if [[ ! -d "$FOLDER/train" ]]; then
    mkdir -p "$FOLDER" && tar -xzf "$ARCHIVE" -C "$FOLDER"
fi
minipixel train --data "$FOLDER/train" --valid "$FOLDER/test" --levels 256 --arch gated --conditional \
    --filters 48 --blocks 5 --batch 16 --lr 1e-3 --lr-decay 0.99997 --epochs 10 --minutes "$MINUTES" --seed 0 \
    --samples 40 --out "$OUT"
minipixel eval --checkpoint "$OUT/checkpoint.npz" --data "$FOLDER/test" --json
