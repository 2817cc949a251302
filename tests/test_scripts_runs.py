"""The shell functions of scripts/pieces.sh that the pretrained runs use: deflate_run deflates a run folder's
checkpoints, run_phase resumes a run only inside its steps and its time, and the gated runs start or resume a
run with their settings (with a stand-in `minipixel` that records its command lines)."""
import sys
from pathlib import Path

import pytest

from minipixel.checkpoint import read_checkpoint

from train_helpers import run, settings


def test_the_pretrained_scripts_deflate_every_npz_of_a_run_folder(tiny_npz, tmp_path):
    import subprocess

    run(settings(tiny_npz, steps=2), tmp_path / "run")
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "run").glob("*.npz")}
    assert sorted(sizes) == ["best.npz", "checkpoint.npz"]
    root = Path(__file__).resolve().parents[1]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    out = subprocess.run(["bash", "-c", f"source {root}/scripts/pieces.sh && deflate_run {tmp_path / 'run'}"],
                         capture_output=True, text=True, env=env, cwd=root, check=True).stdout
    for name, before in sizes.items():
        after = (tmp_path / "run" / name).stat().st_size
        assert after < 0.8 * before and f"{name}: {before:,} -> {after:,} bytes" in out
    assert read_checkpoint(tmp_path / "run")[3]["step"] == 2


def recording_minipixel(tmp_path):
    """The environment for a script whose `minipixel` only appends its command line to
    tmp_path/calls instead of training."""
    stub = tmp_path / "bin" / "minipixel"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "minipixel $*" >> {tmp_path / "calls"}\n')
    stub.chmod(0o755)
    return {"PATH": f"{stub.parent}:{Path(sys.executable).parent}:/usr/bin:/bin"}


def test_run_phase_resumes_a_run_only_inside_its_steps_and_its_time(tiny_npz, tmp_path):
    import subprocess

    run(settings(tiny_npz, steps=2), tmp_path / "run")  # stands at step 2, a few seconds trained
    root, env = Path(__file__).resolve().parents[1], recording_minipixel(tmp_path)
    folder = tmp_path / "run"
    phases = [f"0 5 100 --dropout 0.2 --quiet", "3 5 100", "0 2 100", "2 3 0", "2 3 90"]
    script = f"source {root}/scripts/pieces.sh && " + " && ".join(f"run_phase {folder} {p}" for p in phases)
    subprocess.run(["bash", "-c", script], env=env, cwd=root, check=True)
    assert (tmp_path / "calls").read_text().splitlines() == [
        f"minipixel train --resume {folder} --steps 5 --minutes 100 --dropout 0.2 --quiet",  # step 2 in [0, 5)
        # [3, 5) and [0, 2) leave out step 2; STOP_AT 0 leaves no time
        f"minipixel train --resume {folder} --steps 3 --minutes 90",
    ]


@pytest.mark.parametrize("call, dropout, layers", [("gated_late_dropout_run {} 96 30 DATA 10859", "", 12),
                                                   ("gated_late_dropout_run {} 96 30 DATA 6252 20", "", 20)])
def test_the_gated_runs_start_a_run_with_their_settings_and_resume_one_in_its_phase(tiny_npz, tmp_path, call,
                                                                                      dropout, layers):
    import subprocess

    root, env = Path(__file__).resolve().parents[1], recording_minipixel(tmp_path)
    fresh, started = tmp_path / "fresh", tmp_path / "started"
    run(settings(tiny_npz, steps=2), started)  # stands at step 2, a few seconds trained
    for folder in (fresh, started):
        subprocess.run(["bash", "-c", f"source {root}/scripts/pieces.sh && " + call.format(folder)],
                       env=env, cwd=root, capture_output=True)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == (
        "minipixel train --data DATA/binarized_mnist_train.amat.gz --valid DATA/binarized_mnist_valid.amat.gz "
        f"--arch gated --filters 96 --blocks {layers} --batch 32 --lr 1e-3 --lr-decay 0.99991 --steps 6252{dropout} "
        f"--seed 0 --threads 2 --samples 64 --minutes 30 --out {fresh} --quiet")
    minutes = round(read_checkpoint(started)[3]["seconds"] / 60 + 30, 1)
    # the started run is in the first phase: on to step 6,252 without averaging, for 30 more minutes
    assert calls[1:] == [f"minipixel train --resume {started} --steps 6252 --minutes {minutes}{dropout} "
                         "--threads 2 --quiet"]
