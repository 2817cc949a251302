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
# bit for bit): training writes them plainly, and a run folder kept in the repository is
# committed deflated, half the size (the 64-filter checkpoint: 33 -> 16.5 MB). Commit a
# long run's checkpoint once a session, at its end: every commit of it adds its size
# to what the session submits.
deflate_run() {
    python -c "import sys
from pathlib import Path
from minipixel.files import deflate_npz
for path in sorted(Path(sys.argv[1]).glob('*.npz')):
    before, after = deflate_npz(path)
    print(f'{path}: {before:,} -> {after:,} bytes')" "$1"
}
