#!/usr/bin/env bash
# The pictures the README shows: the masks, and the receptive field of a fresh
# model and of a trained one (pass its checkpoint as $1).
set -euo pipefail
OUT=${OUT:-runs/pictures}
mkdir -p "$OUT"
minipixel show masks --kernel 5 --channels 3 --out "$OUT/masks.png"
minipixel show field --size 28 --blocks 8 --filters 32 --out "$OUT/field-fresh.png"
minipixel show field --size 28 --blocks 8 --filters 32 --arch gated --out "$OUT/field-gated.png"
if [[ $# -ge 1 ]]; then
    minipixel show field --checkpoint "$1" --out "$OUT/field-trained.png"
fi
