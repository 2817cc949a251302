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
