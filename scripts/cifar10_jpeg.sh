#!/usr/bin/env bash
# A colour model at 256 levels on CIFAR-10 as a folder of JPEGs (the
# ../shared/data/cifar10-jpg.tar.gz archive: train/<class>/*.jpg and
# test/<class>/*.jpg), trained on train/ and evaluated on test/.
# JPEG is lossy, so the bits/dim are not comparable with papers' CIFAR-10 figures.
set -euo pipefail
ARCHIVE=${1:-../shared/data/cifar10-jpg.tar.gz}
FOLDER=${FOLDER:-/tmp/cifar10-jpg}
OUT=${OUT:-runs/cifar10-jpg}
EPOCHS=${EPOCHS:-3}
if [[ ! -d "$FOLDER/train" ]]; then
    mkdir -p "$FOLDER" && tar -xzf "$ARCHIVE" -C "$FOLDER"
fi
minipixel train --data "$FOLDER/train" --valid "$FOLDER/test" --levels 256 \
    --filters 64 --blocks 8 --batch 16 --lr 1e-3 --lr-decay 0.99997 --epochs "$EPOCHS" --seed 0 \
    --samples 36 --out "$OUT"
minipixel eval --checkpoint "$OUT/checkpoint.npz" --data "$FOLDER/test" --json
