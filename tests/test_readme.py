"""The README and the reference pages in docs/ tell the truth: every ``minipixel`` command
line they show is one the program accepts, the Quick start's first picture is drawn by
exactly the command it gives, and the README's Python example runs.

Command lines are taken from the fenced ``bash`` blocks (continuation lines joined,
comments and shell redirections dropped, ``[--optional things]`` unbracketed, also
after ``mpiexec ...``) and from inline code spans that start with ``minipixel `` and
hold no placeholder (a word in capitals, such as ``RUN`` or ``NAME``, stands for what
the reader fills in). The journal (docs/journal/) keeps old commands as they were run
and is not checked."""
import os
import re
import shlex
from pathlib import Path

import pytest

from minipixel.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted(p for p in (ROOT / "docs").rglob("*.md") if "journal" not in p.relative_to(ROOT / "docs").parts)  # not the journal

PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$|<")
FENCE = re.compile(r"```(\w*)\n(.*?)```", flags=re.S)


def _command(part):
    """The ``minipixel ...`` command in one shell command (after an ``mpiexec`` launcher
    too), without its comment and redirections; None if there is none."""
    part = part.split(" #")[0]
    part = re.split(r"\s(?:\d?>|\|)\s?", part)[0].strip()
    match = re.match(r"(?:mpiexec\s.*?\s)?(minipixel(?:\s.*)?)$", part)
    if not match or match.group(1) == "minipixel":
        return None
    return " ".join(match.group(1).replace("[", "").replace("]", "").split())


def block_commands(path):
    """Every ``minipixel ...`` command in a Markdown file's ``bash`` blocks."""
    commands = []
    for lang, block in FENCE.findall(path.read_text()):
        if lang not in ("bash", "sh", ""):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                command = _command(part)
                if command:
                    commands.append(command)
    return commands


def inline_commands(path):
    """Every inline code span ``minipixel COMMAND OPTIONS...`` outside the fenced blocks; a
    span with a placeholder or ``...``, a message (``minipixel train: error: ...``) or the
    bare name of a command (``minipixel download``) is prose, not a command line."""
    text = FENCE.sub("", path.read_text())
    spans = [s.split() for s in re.findall(r"`(minipixel [^`\n]+)`", text)]
    return [" ".join(s) for s in spans
            if len(s) > 2 and not s[1].endswith(":") and "..." not in s
            and not any(PLACEHOLDER.search(word) for word in s)]


def readme_commands():
    return block_commands(README)


def doc_commands():
    """(file, command) for every command line in the README and the reference pages in docs/."""
    found = []
    for path in [README] + DOCS:
        name = path.relative_to(ROOT).as_posix()
        found += [(name, c) for c in block_commands(path) + inline_commands(path)]
    return found


def test_the_readme_and_the_docs_show_commands():
    assert len(readme_commands()) >= 4
    files = {name for name, _ in doc_commands()}
    assert {"README.md", "docs/cli.md", "docs/pretrained.md", "docs/performance.md"} <= files
    assert len(doc_commands()) > 40


@pytest.mark.parametrize("where, command", doc_commands(), ids=[f"{w}: {c}" for w, c in doc_commands()])
def test_every_command_in_the_readme_and_the_docs_is_accepted(where, command):
    args = shlex.split(command)[1:]
    if args == ["--version"]:
        return
    parsed = build_parser().parse_args(args)  # exits (a test failure) on an unknown option or a bad value
    assert parsed.handler is not None


def test_the_command_extraction_reads_launchers_redirections_and_placeholders(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\nmpiexec -n 2 minipixel train --batch 64   # two ranks\n"
                    "minipixel bench > runs/b.json\nminipixel sample \\\n  --pretrained x [--npy]\n"
                    "python3 -m venv .venv && minipixel pretrained\n```\n"
                    "Then `minipixel eval --checkpoint RUN --data d`, `minipixel download`, "
                    "`minipixel train: error: ...` and `minipixel show masks --kernel 5`.\n")
    assert block_commands(page) == ["minipixel train --batch 64", "minipixel bench",
                                    "minipixel sample --pretrained x --npy", "minipixel pretrained"]
    assert inline_commands(page) == ["minipixel show masks --kernel 5"]


def test_no_command_uses_a_development_machine_path():
    assert not [c for _, c in doc_commands() if "../shared" in c or "/work/" in c]


def test_the_quick_start_picture(tmp_path, monkeypatch):
    first = next(c for c in readme_commands() if c.startswith("minipixel train --steps"))
    args = shlex.split(first)[1:]
    out = Path(args[args.index("--out") + 1])
    assert out.parts[0] == "runs"  # under runs/, which git ignores
    monkeypatch.chdir(tmp_path)
    assert main(args + ["--quiet"]) == 0
    assert (tmp_path / out / "samples.png").exists() and (tmp_path / out / "checkpoint.npz").exists()
    # the learning curve has enough points to read
    assert len((tmp_path / out / "metrics.jsonl").read_text().splitlines()) >= 5


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    section = README.read_text().split("## The Python API", 1)[1]
    code = FENCE.search(section)
    assert code and code.group(1) == "python"
    monkeypatch.chdir(tmp_path)
    names = {}
    exec(compile(code.group(2), "README.md (The Python API)", "exec"), names)
    assert names["images"].shape == (16, 28, 28, 1) and names["sevens"].shape == (8, 28, 28, 1)
    assert names["sneakers"].shape == (4, 28, 28, 1) and names["sneakers"].max() < 8
    assert os.path.exists(tmp_path / "model.npz")
