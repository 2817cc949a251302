"""The README tells the truth: every command line it shows is one the program accepts,
and the Quick start's first picture is drawn by exactly the command it gives."""
import re
import shlex
from pathlib import Path

import pytest

from minipixel.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands():
    """Every ``minipixel ...`` command in the README's fenced code blocks, continuation
    lines joined, comments dropped, ``[--optional things]`` unbracketed."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.split(" #")[0].strip()
                if part.startswith("minipixel "):
                    commands.append(part.replace("[", "").replace("]", ""))
    return commands


def test_the_readme_shows_commands():
    assert len(readme_commands()) > 20


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_is_accepted(command):
    args = shlex.split(command)[1:]
    if args == ["--version"]:
        return
    parsed = build_parser().parse_args(args)  # exits (a test failure) on an unknown option or a bad value
    assert parsed.handler is not None


def test_no_readme_command_uses_a_development_machine_path():
    assert not [c for c in readme_commands() if "../shared" in c or "/work/" in c]


def test_the_quick_start_picture(tmp_path, monkeypatch):
    first = next(c for c in readme_commands() if c.startswith("minipixel train --steps"))
    args = shlex.split(first)[1:]
    monkeypatch.chdir(tmp_path)
    assert main(args + ["--quiet"]) == 0
    out = Path(args[args.index("--out") + 1])
    assert (tmp_path / out / "samples.png").exists() and (tmp_path / out / "checkpoint.npz").exists()
