"""The figures and links of the README and docs/ cannot drift silently: each figure the
README states is checked against where it comes from (a run record committed in
docs/journal/runs/, the installed models' index, the code's own rule, the other figures
of its table), every relative link and anchor resolves, scripts/README.md lists every
script, and the tree keeps no training checkpoint."""
import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from minipixel.train import train

from train_helpers import settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def test_the_readme_stays_short_and_says_what_is_true_now():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    # nothing about how the project was worked on: that is the journal's
    diary = [w for w in ("session", "piece", "lent", "borrowed", "flagship") if re.search(rf"\b{w}", text, re.I)]
    assert not diary, f"README.md: words of the diary {diary}; dated records go to docs/journal/"


def test_the_default_run_figure_is_the_committed_record():
    """The README's "ends at **71.38 nats**" is the last evaluation of the default run's
    record (`minipixel train`, its metrics.jsonl committed in docs/journal/runs/)."""
    stated = re.search(r"ends at \*\*([\d.]+) nats\*\*", README.read_text())
    assert stated, "README.md: the default run's figure ('ends at **N nats**') is missing"
    records = sorted((DOCS / "journal" / "runs").glob("default-*/metrics.jsonl"))
    assert records, "docs/journal/runs/default-<date>/metrics.jsonl: the default run's record is missing"
    last = json.loads(records[-1].read_text().splitlines()[-1])
    assert float(stated.group(1)) == round(last["valid_nll_nats"], 2)
    assert last["step"] == 2538 and last["epoch"] == 9.0  # 9 epochs of ceil(4,500 / 16) steps: the defaults


def test_the_epoch_length_the_docs_state_is_the_codes(tiny_npz):
    """docs/cli.md: one binarized-MNIST epoch (50,000 images) at batch 16 is 3,125 steps
    and at batch 32 1,563; a run's epoch is ceil(images / batch) steps."""
    found = re.search(r"one binarized-MNIST epoch\s+\(50,000 training images\) at batch 16 is ([\d,]+) steps, "
                      r"at batch 32 ([\d,]+)", (DOCS / "cli.md").read_text())
    assert found, "docs/cli.md: the sentence on the binarized-MNIST epoch length is missing"
    assert [int(n.replace(",", "")) for n in found.groups()] == [math.ceil(50_000 / 16), math.ceil(50_000 / 32)]
    log = []
    train(settings(tiny_npz, steps=1, batch=16), out=tiny_npz.parent / "run", progress=False, log=log.append)
    images = int(re.search(r"data: (\d+) training images", log[0]).group(1))
    per_epoch = int(re.search(r"\((\d+) per epoch\)", log[1]).group(1))
    assert images % 16 and per_epoch == math.ceil(images / 16)


def test_the_performance_ratios_are_those_of_the_table():
    """Each "(1.62x PyTorch)" of the README's performance table is minipixel's figure over
    PyTorch's in the same row, rounded."""
    section = README.read_text().split("## Performance", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("| ") and "x" in r and "(" in r]
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        ratio = re.search(r"\(([\d.]+)x", cells[1])
        if not ratio:
            continue
        ours, theirs = (float(re.match(r"[\d,.]+", c).group().replace(",", "")) for c in cells[1:3])
        assert round(ours / theirs, 2) == float(ratio.group(1)), row
        checked += 1
    assert checked >= 5


def test_the_performance_table_is_what_the_committed_runs_give():
    """The README's performance table and the lines under it are what
    scripts/performance_table.py prints for the latest committed folder of runs
    (docs/journal/bench/DATE/: each round's JSON of `minipixel bench` and of
    scripts/pytorch_reference.py), so a figure cannot change without its runs; the GPU
    column, kept as text in the script, is in the GPU record (docs/journal/gpu.md)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("performance_table", ROOT / "scripts" / "performance_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    printed = script.table(script.latest())
    section = README.read_text().split("## Performance", 1)[1].split("\n## ", 1)[0]
    assert [r for r in section.splitlines() if r.startswith("|")] == [r for r in printed if r.startswith("|")]
    assert "\n".join(printed) in section, "README.md: the lines under the performance table are not the script's"
    gpu = (DOCS / "journal" / "gpu.md").read_text()
    assert all(figure.split()[0] in gpu for figure in script.GPU.values() if figure)


def test_the_installed_models_table_is_the_index():
    index = json.loads((ROOT / "minipixel" / "models" / "index.json").read_text())
    section = README.read_text().split("## Pretrained models", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w-]+)` \|(.*)$", section, re.M)}
    assert sorted(rows) == sorted(index)
    for name, row in rows.items():
        nll = re.search(r"\*\*([\d.]+) nats\*\*", row).group(1)
        assert f"{nll} nats" in index[name]["results"], f"README.md, {name}: {nll} nats is not in index.json"


def test_the_architecture_layers_are_those_the_layout_test_enforces():
    from test_layout import LAYERS

    table = (DOCS / "architecture.md").read_text().split("**The package in layers.**", 1)[1]
    stated = {}
    for m in re.finditer(r"^\| (\d) \w+ \| (.*) \|$", table, re.M):
        stated[int(m.group(1))] = set(re.findall(r"`([\w/]+)`", m.group(2)))
    top = {layer: {m.split(".")[0] + ("/" if m.split(".")[0] in ("datasets", "testing") else "")
                   for m in modules if m} for layer, modules in LAYERS.items()}
    assert stated == top


def _slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path):
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", path.read_text(), re.M)}


PAGES = [README, ROOT / "CONTRIBUTING.md", ROOT / "scripts" / "README.md"] + sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    broken = []
    for target in targets:
        if re.match(r"\w+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links that lead nowhere: {broken}"


def test_scripts_readme_lists_every_script():
    listed = set(re.findall(r"^\| `([\w.]+)` \|", (ROOT / "scripts" / "README.md").read_text(), re.M))
    present = {p.name for p in (ROOT / "scripts").iterdir() if p.suffix in (".py", ".sh")}
    assert listed == present


def _git(*args):
    try:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("git is not available")
    if result.returncode:
        pytest.skip(f"not a git checkout: {result.stderr.strip()}")
    return result.stdout.split("\0")


def test_the_tree_keeps_no_training_checkpoint_and_ignores_nothing_it_tracks():
    tracked = [p for p in _git("ls-files", "-z") if p]
    # a live run may keep its latest checkpoint.npz in the tree (CONTRIBUTING.md, Long runs); nothing else
    checkpoints = [p for p in tracked if p.endswith(".npz") and not p.startswith("minipixel/models/")
                   and Path(p).name != "checkpoint.npz"]
    assert not checkpoints, f"training checkpoints in the tree (CONTRIBUTING.md, Long runs): {checkpoints}"
    ignored = [p for p in _git("ls-files", "-z", "-i", "-c", "--exclude-standard") if p]
    assert not ignored, f".gitignore ignores tracked files: {ignored}"
