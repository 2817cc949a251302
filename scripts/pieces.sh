# Sourced by the scripts that train a pretrained model in pieces (scripts/pretrained_*.sh).
#
#     read -r so_far step total < <(resume_plan FOLDER PIECE_MINUTES)
#
# reads the run's checkpoint.npz and prints the minutes it has trained so far, the step
# it stopped at, and where the next piece stops: so_far + PIECE_MINUTES, the value that
# `minipixel train --resume FOLDER --minutes` takes (it counts the run's whole time, not
# the piece's).
resume_plan() {
    python -c "import sys
from minipixel.checkpoint import read_checkpoint
state = read_checkpoint(sys.argv[1])[3]
so_far = state['seconds'] / 60
print(so_far, state['step'], round(so_far + float(sys.argv[2]), 1))" "$1" "$2"
}

#     minutes_left SO_FAR STOP_AT
#
# succeeds when a run that has trained SO_FAR minutes may go on before STOP_AT (a
# script that switches a setting in the middle of a piece starts its second part
# only then: a resume past its time would still take a step and an evaluation).
minutes_left() {
    python -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$1" "$2"
}

#     begin_piece FOLDER PIECE_MINUTES TRAIN_OPTIONS...
#
# the start of a piece: when FOLDER holds a checkpoint, says where the run stands;
# otherwise starts it with `minipixel train TRAIN_OPTIONS... --minutes PIECE_MINUTES
# --out FOLDER --quiet`. Either way it sets STOP_AT, the run's minutes at which this
# piece ends, for the run_phase calls that follow.
begin_piece() {
    local out=$1 piece=$2 so_far step
    shift 2
    if [[ -f $out/checkpoint.npz ]]; then
        read -r so_far step STOP_AT < <(resume_plan "$out" "$piece")
        echo "continuing $out at step $step: $so_far minutes trained so far, stopping at $STOP_AT"
    else
        STOP_AT=$piece
        minipixel train "$@" --minutes "$piece" --out "$out" --quiet
    fi
}

#     run_phase FOLDER FROM TO STOP_AT [TRAIN_OPTIONS...]
#
# one phase of a run whose settings change at set steps (averaging from one step on,
# dropout from another): when the run in FOLDER stands at a step in [FROM, TO) and has
# time left before STOP_AT, `minipixel train --resume FOLDER --steps TO --minutes
# STOP_AT TRAIN_OPTIONS...` takes it on to step TO or to the piece's end; otherwise
# nothing runs. A script calls it once per phase, in order.
run_phase() {
    local folder=$1 from=$2 to=$3 stop_at=$4 so_far step
    shift 4
    read -r so_far step _ < <(resume_plan "$folder" 0)
    if (( step >= from && step < to )) && minutes_left "$so_far" "$stop_at"; then
        minipixel train --resume "$folder" --steps "$to" --minutes "$stop_at" "$@"
    fi
}

#     deflate_run FOLDER
#
# deflates the run's .npz files in place (minipixel.files.deflate_npz; every array stays
# bit for bit): training writes them plainly, and deflated they take half the space (the
# 64-filter checkpoint: 33 -> 16.5 MB). A live run may commit its latest checkpoint only
# at the end of a day's work, and it leaves the tree when the run ends (CONTRIBUTING.md).
deflate_run() {
    python -c "import sys
from pathlib import Path
from minipixel.files import deflate_npz
for path in sorted(Path(sys.argv[1]).glob('*.npz')):
    before, after = deflate_npz(path)
    print(f'{path}: {before:,} -> {after:,} bytes')" "$1"
}

#     gated_late_dropout_run FOLDER FILTERS PIECE_MINUTES DATA DROPOUT_FROM [LAYERS]
#
# the whole of a binarized-MNIST run with dropout switched on late, started or
# continued for one more piece: scripts/pretrained_binarized_mnist_64x20.sh (FILTERS 64,
# LAYERS 20, dropout from step 6,253; docs/journal/pretrained-binarized-mnist.md has
# the runs that used it with other widths and steps). Every setting but the
# width, the depth and that step is fixed here: the gated PixelCNN with FILTERS
# filters per stack, a 7x7 first layer and LAYERS (12 unless given) more gated
# layers, batch 32, seed 0, 2 threads; Adam at 1e-3 decayed by 0.99991 a step (x0.87
# an epoch of 1,563 steps); Polyak averaging (--ema 0.9995) from the end of epoch 4
# (step 6,252) on; dropout 0.1 in the gated layers after step DROPOUT_FROM (at least
# 6,252); at most 20 epochs (31,260 steps); an evaluation on the 10,000 valid images
# ends every epoch and every piece. DATA is the folder that holds the .amat.gz files.
# The folder is deflated at the end (deflate_run).
gated_late_dropout_run() {
    local out=$1 filters=$2 piece=$3 data=$4 dropout_from=$5 layers=${6:-12} steps=31260 ema_from=6252 ema=0.9995
    local dropout=0.1
    begin_piece "$out" "$piece" --data "$data/binarized_mnist_train.amat.gz" \
        --valid "$data/binarized_mnist_valid.amat.gz" --arch gated --filters "$filters" --blocks "$layers" --batch 32 \
        --lr 1e-3 --lr-decay 0.99991 --steps "$ema_from" --seed 0 --threads 2 --samples 64
    run_phase "$out" 0 "$ema_from" "$STOP_AT" --threads 2 --quiet
    run_phase "$out" "$ema_from" "$dropout_from" "$STOP_AT" --ema "$ema" --threads 2 --quiet
    run_phase "$out" "$dropout_from" "$steps" "$STOP_AT" --ema "$ema" --dropout "$dropout" --threads 2 --quiet
    tail -n 3 "$out/metrics.jsonl"
    deflate_run "$out"
}
