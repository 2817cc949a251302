#!/bin/bash
# The 2026-12-07 measurement, as it was run: five rounds, each `minipixel bench --repeat 5
# --no-memory`, then the peak memory of the same training process as the bench measures it
# (memory-N.json), then scripts/pytorch_reference.py; from the repository's root with
# minipixel's venv active and PyTorch in /tmp/torch; every run's JSON beside this file, the
# load before and after each run in load.txt.
# Why --no-memory: at commit 8a2d233 `minipixel bench`'s memory runs pass the threads module
# instead of a thread count (bench.run: `threads=threads`) and fail; memory-N.json calls the
# same functions (minipixel.bench.peak_rss_training, peak_rss_train_command) with the
# default thread count, one per core, which is what the bench runs with.
# (load.txt's 'busiest now' reads top's first frame, which shows 0% for every process:
# top.txt, sampled beside the runs from top's second frame, is the record of what ran.)
set -euo pipefail
here=docs/journal/bench/2026-12-07
load() { echo "$(date -u +%H:%M:%S) $1 | load $(cut -d' ' -f1-3 /proc/loadavg) | busiest now: $(top -bn1 -w 200 | sed -n '8,10p' | awk '{printf "%s %s%%, ", $12, $9}')" >> $here/load.txt; }
memory='import json
from minipixel.bench import peak_rss_training, peak_rss_train_command
mib = lambda b: round(b / 2**20, 1)
print(json.dumps({str(batch): {"train_peak_rss_mib": mib(peak_rss_training(batch)),
                               "train_command_peak_rss_mib": mib(peak_rss_train_command(batch))}
                  for batch in (16, 64)}))'
for round in 1 2 3 4 5; do
    load "before minipixel-$round"
    minipixel bench --repeat 5 --no-memory > $here/minipixel-$round.json 2> /tmp/bench-$round.err
    load "after  minipixel-$round"
    python -c "$memory" > $here/memory-$round.json
    load "after  memory-$round   "
    /tmp/torch/bin/python scripts/pytorch_reference.py 16 64 > $here/pytorch-$round.json
    load "after  pytorch-$round  "
done
