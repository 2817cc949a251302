"""The README's performance table, from a folder of committed benchmark runs.

    python scripts/performance_table.py                       # the latest docs/journal/bench/DATE/
    python scripts/performance_table.py docs/journal/bench/2026-12-07 --detail

The folder holds the JSON of each round of the comparison on the CPU (README.md,
"Performance"; docs/performance.md, "Against PyTorch"): `minipixel-N.json`, what
`minipixel bench --repeat 5` printed, and `pytorch-N.json`, what
`scripts/pytorch_reference.py 16 64` printed, for rounds N = 1, 2, ... run in
alternation; where the bench ran with `--no-memory`, `memory-N.json` holds the peak
memory of its training process measured beside it (`minipixel.bench.peak_rss_training`,
as `{"64": {"train_peak_rss_mib": ...}}`). It prints the table's rows and the lines
under them that say where the figures come from; the README holds them as printed, and
tests/test_docs.py checks that they are still what this prints for the committed
folder. `--detail` prints,
instead, the longer table of a journal record: each median with the lowest and highest
of the rounds, and the median of the rounds' own ratios beside the ratio of the medians.

Each CPU figure is the median of the rounds (each round's figure is itself a median of
`--repeat` timings); a ratio is minipixel's figure over PyTorch's as the table shows
them, rounded to 2 decimals. No timing is taken here, and the same folder always gives
the same text. The GPU column is not measured on the CPU runs: it is the latest GPU
record's (docs/journal/gpu.md), kept as text with its date below.
"""
import argparse
import json
import re
import statistics
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "docs" / "journal" / "bench"

# The GPU column: one NVIDIA H200, 2026-11-27, the fused kernels, `scripts/gpu_check.py`,
# medians of 7 (docs/journal/gpu.md, "The fused kernels on a GPU"). Its JSON record was
# not committed (the committed docs/journal/gpu-check-h200-2026-11-26.json is the day
# before, without the fused kernels), so the figures stay as text.
GPU = {
    "train 16": "1,104 images/s",
    "train 64": "2,030 images/s",
    "forward 16": "4,031 images/s",
    "forward 64": "13,529 images/s",
    "memory": "",
    "sampling": "0.84 s cached",
}
GPU_NOTE = "GPU: 2026-11-27, one NVIDIA H200, `scripts/gpu_check.py`, medians of 7."


def latest(folder=BENCH):
    """The latest dated folder of runs under docs/journal/bench/."""
    dated = sorted(p for p in Path(folder).iterdir() if p.is_dir() and re.fullmatch(r"\d{4}-\d\d-\d\d", p.name))
    if not dated:
        raise SystemExit(f"{folder}: no dated folder of benchmark runs")
    return dated[-1]


def rounds(folder):
    """[(minipixel JSON, PyTorch JSON)] of each round, in round order; a round needs both."""
    folder = Path(folder)
    number = lambda p: int(re.search(r"-(\d+)\.json$", p.name).group(1))
    ours = {number(p): json.loads(p.read_text()) for p in folder.glob("minipixel-*.json")}
    theirs = {number(p): json.loads(p.read_text()) for p in folder.glob("pytorch-*.json")}
    if sorted(ours) != sorted(theirs) or not ours:
        raise SystemExit(f"{folder}: rounds {sorted(ours)} of minipixel and {sorted(theirs)} of PyTorch do not pair")
    for n, run in ours.items():  # memory measured beside a `--no-memory` bench: memory-N.json
        memory = folder / f"memory-{n}.json"
        if memory.exists():
            for batch, figures in json.loads(memory.read_text()).items():
                run["batches"].setdefault(batch, {}).update(figures)
    return [(ours[n], theirs[n]) for n in sorted(ours)]


# (key, label, minipixel's figure, PyTorch's figure or None, format)
MEASURES = [
    ("train 16", "training, batch 16", lambda m: m["batches"]["16"]["train_images_per_s"],
     lambda t: t["16"]["train_images_per_s"], "rate"),
    ("train 64", "training, batch 64", lambda m: m["batches"]["64"]["train_images_per_s"],
     lambda t: t["64"]["train_images_per_s"], "rate"),
    ("forward 16", "forward, batch 16", lambda m: m["batches"]["16"]["forward_images_per_s"],
     lambda t: t["16"]["forward_images_per_s"], "rate"),
    ("forward 64", "forward, batch 64", lambda m: m["batches"]["64"]["forward_images_per_s"],
     lambda t: t["64"]["forward_images_per_s"], "rate"),
    ("memory", "peak memory, training at batch 64", lambda m: m["batches"]["64"]["train_peak_rss_mib"],
     lambda t: t["peak_rss_mib"], "mib"),
]


def shown(value, kind):
    return f"{value:,.1f} images/s" if kind == "rate" else f"{value:,.0f} MiB"


def number(text):
    return float(re.match(r"[\d,.]+", text).group().replace(",", ""))


def measures(runs):
    """{key: (minipixel's median, PyTorch's median, minipixel's figures, PyTorch's figures)}."""
    out = {}
    for key, _, ours, theirs, _ in MEASURES:
        a = [ours(m) for m, _ in runs]
        b = [theirs(t) for _, t in runs]
        out[key] = (statistics.median(a), statistics.median(b), a, b)
    return out


def sampling(runs):
    """Medians of the 16-image sampling times: (wavefront, cached) seconds."""
    wave = statistics.median(m["sampling"]["wavefront_s"] for m, _ in runs)
    cached = statistics.median(m["sampling"]["cached_s"] for m, _ in runs)
    return wave, cached


def version(text):
    """'2.13.0+cpu' -> '2.13'."""
    return ".".join(text.split("+")[0].split(".")[:2])


def caption(folder, runs):
    """The lines under the table: where the CPU figures come from, and the GPU's."""
    folder = Path(folder)
    m, t = runs[0]
    cpus = " / ".join(sorted({m["machine"]["cpu"] for m, _ in runs}))
    memory = " (memory beside it)" if list(folder.glob("memory-*.json")) else ""
    text = (f"CPU: {folder.name}, {cpus}, {m['machine']['cpu_count']} cores, NumPy {m['machine']['numpy']} "
            f"and PyTorch {t['torch']} on {m['threads']} threads each, medians of {len(runs)} rounds of "
            f"`minipixel bench --repeat {m['repeat']}`{memory} alternating with `scripts/pytorch_reference.py` "
            f"([runs, load](docs/journal/bench/{folder.name}/); table: `scripts/performance_table.py`). "
            f"{GPU_NOTE}")
    return textwrap.wrap(text, 88, break_on_hyphens=False, break_long_words=False)


def row(*cells):
    """A Markdown table row; an empty cell is written `| |`."""
    return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"


def table(folder):
    """The README's table and its caption, as lines of text."""
    runs = rounds(folder)
    stats = measures(runs)
    torch = version(runs[0][1]["torch"])
    lines = [f"| | CPU: minipixel | CPU: PyTorch {torch} | GPU: minipixel |", "| --- | --- | --- | --- |"]
    for i, (key, label, _, _, kind) in enumerate(MEASURES):
        ours, theirs = (shown(v, kind) for v in stats[key][:2])
        ratio = f"{number(ours) / number(theirs):.2f}x" + (" PyTorch" if i == 0 else "")
        lines.append(row(label, f"{ours} ({ratio})", theirs, GPU[key]))
    wave, cached = sampling(runs)
    lines.append(row("sampling 16 images", f"{wave:.3f} s wavefront, {cached:.3f} s cached", "", GPU["sampling"]))
    return lines + [""] + caption(folder, runs)


def detail(folder):
    """The journal's table: medians (lowest-highest), the ratio of the medians and the
    median of the rounds' own ratios."""
    runs = rounds(folder)
    stats = measures(runs)
    lines = [f"| | minipixel | PyTorch {runs[0][1]['torch']} | ratio of medians (median of the rounds' ratios) |",
             "| --- | --- | --- | --- |"]
    for key, label, _, _, kind in MEASURES:
        ours, theirs, a, b = stats[key]
        spread = lambda v, vs: f"{shown(v, kind)} ({shown(min(vs), kind).split()[0]}-{shown(max(vs), kind).split()[0]})"
        per_round = statistics.median(x / y for x, y in zip(a, b))
        lines.append(f"| {label} | {spread(ours, a)} | {spread(theirs, b)} | "
                     f"**{number(shown(ours, kind)) / number(shown(theirs, kind)):.2f}x** ({per_round:.2f}x) |")
    wave = [m["sampling"]["wavefront_s"] for m, _ in runs]
    cached = [m["sampling"]["cached_s"] for m, _ in runs]
    naive = [m["sampling"]["naive_s"] for m, _ in runs]
    two = [m["sampling"]["per_two_forward_passes"]["wavefront"] for m, _ in runs]
    lines.append(f"| sampling 16 images | wavefront {statistics.median(wave):.3f} s ({min(wave):.3f}-{max(wave):.3f}), "
                 f"cached {statistics.median(cached):.3f} s ({min(cached):.3f}-{max(cached):.3f}); naive "
                 f"{statistics.median(naive):.1f} s ({min(naive):.1f}-{max(naive):.1f}, extrapolated); wavefront "
                 f"{statistics.median(two):.2f}x two forward passes ({min(two):.2f}-{max(two):.2f}) | | |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", help="a folder of runs (default: the latest under docs/journal/bench/)")
    parser.add_argument("--detail", action="store_true", help="the journal's table, with ranges")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder else latest()
    print("\n".join(detail(folder) if args.detail else table(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
