#!/usr/bin/env bash
# The pretrained Fashion-MNIST models (issue: pretrained models): a class-conditional
# Gated PixelCNN, and the same model without the labels, whose test NLL is the
# yardstick for the conditional one. Both train side by side, one core each, and one
# command starts them or, when their folders already hold checkpoints, continues them
# exactly where they stopped:
#
#     bash scripts/pretrained_fashion_mnist.sh              # up to 150 more minutes each
#     PIECE_MINUTES=60 bash scripts/pretrained_fashion_mnist.sh
#
# When a run has taken all its steps, the script evaluates it on the 10,000 test images
# (test.json in its folder); a run already evaluated is left alone. To train the finished
# runs further: delete their test.json and raise STEPS (e.g. STEPS=8440, 5 epochs).
#
# Data: Fashion-MNIST's IDX files with their labels (`apt-get install -y
# dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist, the default
# here; or `minipixel download fashion-mnist`, then DATA_DIR=data). 60,000 training
# images, of which a seeded 10% (6,000) is held out for validation, and best.npz is the
# lowest validation NLL; the test split is only used at the end.
#
# The model: 8 grey levels, the gated PixelCNN with 32 filters per stack, a 7x7 first
# layer and 12 more gated layers (the binarized-MNIST model's shape; it sees 15 rows
# up), 10 classes for the conditional one; batch 32, Adam at 1e-3 decayed by 0.9998 a
# step, 3 epochs (5,064 steps of 32: 1,688 an epoch of 54,000 images), seed 0.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pieces.sh
DATA_DIR=${DATA_DIR:-/usr/share/datasets}
OUT=${OUT:-runs/pretrained}
PIECE=${PIECE_MINUTES:-150}
STEPS=${STEPS:-5064}  # 3 epochs (STEPS=20 for a quick try of the script)

run() {  # run FOLDER [--conditional]
    local out=$OUT/$1
    shift
    if [[ -f $out/test.json ]]; then
        echo "$out: finished (test.json)"
        return
    fi
    if [[ -f $out/checkpoint.npz ]]; then
        local so_far step total
        read -r so_far step total < <(resume_plan "$out" "$PIECE")
        echo "continuing $out at step $step: $so_far minutes trained so far, stopping at $total"
        minipixel train --resume "$out" --steps "$STEPS" --minutes "$total" --threads 1 --quiet
    else
        minipixel train --data fashion-mnist:train --data-dir "$DATA_DIR" --levels 8 --arch gated "$@" \
            --filters 32 --blocks 12 --batch 32 --lr 1e-3 --lr-decay 0.9998 --steps "$STEPS" --seed 0 \
            --threads 1 --samples 80 --minutes "$PIECE" --out "$out" --quiet
    fi
    local step_now
    read -r _ step_now _ < <(resume_plan "$out" 0)
    if (( step_now >= STEPS )); then
        minipixel eval --checkpoint "$out/best.npz" --data fashion-mnist:test --data-dir "$DATA_DIR" --threads 1 \
            --json > "$out/test.json.part"
        mv "$out/test.json.part" "$out/test.json"
    fi
    tail -n 1 "$out/metrics.jsonl"
}

run fashion-mnist-conditional --conditional &
conditional=$!
run fashion-mnist &
unconditional=$!
wait "$conditional"
wait "$unconditional"
deflate_run "$OUT/fashion-mnist-conditional"
deflate_run "$OUT/fashion-mnist"
