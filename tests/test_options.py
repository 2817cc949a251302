"""Bad values are refused at once: every numeric option of every command, the
training settings of the Python API, and --resume that keeps the run's own schedule."""
import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minipixel.checkpoint import read_checkpoint
from minipixel.cli import build_parser, main
from minipixel.train import TrainSettings, train
from minipixel import options
from minipixel import memory
from minipixel.model import PixelCNNConfig, build_model


def every_option(parser=None, words=()):
    """(command words, argparse action) for every option of every command."""
    for action in (parser or build_parser())._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_option(sub, [*words, name])
        else:
            yield list(words), action


def checked_options():
    """(command words, option string, range name) for every option of every command with a checked type."""
    return [(words, action.option_strings[0], action.type.__name__[: -len(" value")])
            for words, action in every_option()
            if getattr(action.type, "__name__", "").endswith(" value") and action.option_strings]


OPTIONS = checked_options()


def bad_values(name):
    kind, lo, hi, lo_open = options.RANGES[name]
    values = ["nan", "inf", "-inf", "abc", str(hi * 10 + 1), str(lo if lo_open else lo - 1)]
    if kind is int:
        values.append("2.5")
    return values


def test_every_numeric_option_is_checked():
    # Every option that takes a number has a range (an option added with a bare
    # type=int or type=float would not be in this list, and is caught here).
    unchecked = [(words, action.option_strings) for words, action in every_option()
                 if action.type in (int, float) and not action.choices]
    assert unchecked == []
    commands = {words[0] for words, _, _ in OPTIONS}
    assert commands >= {"train", "sample", "eval", "complete", "show", "bench"}
    assert len(OPTIONS) >= 40


@pytest.mark.parametrize("words,flag,name", OPTIONS, ids=[" ".join(w) + " " + f for w, f, _ in OPTIONS])
def test_a_bad_value_exits_2_with_one_line(words, flag, name, capsys):
    for value in bad_values(name):
        given = f"{flag}={value}" if flag.startswith("--") else flag + value  # "-inf" must not read as an option
        with pytest.raises(SystemExit) as exit_info:
            main(words + [given])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err  # one line
        assert flag in err and repr(value) in err and options.describe(name) in err, err


def test_the_first_bad_value_of_the_issue_stops_in_under_a_second():
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "minipixel.cli", "train", "--batch", "-3", "--steps", "1"],
                          capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert done.returncode == 2
    assert done.stderr == "minipixel train: error: argument --batch: expected an int from 1 to 65536, got '-3'\n"
    assert elapsed < 5  # the interpreter's start is most of it; nothing is read or allocated


@pytest.mark.parametrize("field,value", [("batch", 0), ("batch", -3), ("lr", float("nan")), ("lr_decay", 1.5),
                                         ("epochs", 0), ("steps", 10**12), ("minutes", float("inf")),
                                         ("levels", 300), ("temperature", -1.0), ("seed", -1), ("batch", 2.0)])
def test_the_api_refuses_the_same_values_with_the_same_words(field, value, tmp_path):
    settings = TrainSettings(data=str(tmp_path / "never-read.npz"), **{field: value})
    with pytest.raises(ValueError, match=re.escape(f"{field}: expected {options.describe(field)}, got")):
        settings.validate()
    with pytest.raises(ValueError, match=f"^{field}: expected"):  # before the data file is looked for
        train(settings, out=tmp_path / "run", progress=False, log=lambda *a: None)
    assert not (tmp_path / "run").exists()


def test_resume_alone_finishes_the_run_as_it_was_started(tiny_npz, tmp_path):
    # A 2-epoch run interrupted (Ctrl-C) at step 5, resumed with --resume alone,
    # ends after its 2 epochs (not the default 9), exactly as an uninterrupted run.
    run, whole = tmp_path / "run", tmp_path / "whole"
    assert main(["train", "--data", str(tiny_npz), "--filters", "8", "--blocks", "1", "--batch", "16",
                 "--samples", "0", "--epochs", "2", "--quiet", "--out", str(whole)]) == 0
    settings = TrainSettings(data=str(tiny_npz), filters=8, blocks=1, batch=16, samples=0, epochs=2)

    def ctrl_c(step, loss):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(settings, out=run, progress=False, log=lambda *a: None, on_step=ctrl_c)
    stopped = read_checkpoint(run)[3]["step"]
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    _, params, _, state = read_checkpoint(run)
    _, want, _, want_state = read_checkpoint(whole)
    assert 0 < stopped < state["step"] == want_state["step"]
    for name in want:
        assert (params[name] == want[name]).all(), name
    # An explicit --epochs still changes the schedule.
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    assert read_checkpoint(run)[3]["step"] == state["step"] * 3 // 2


def test_a_second_training_into_a_live_run_folder_is_refused(tiny_npz, tmp_path, capsys):
    # Another process (here: a child that sleeps) holds the folder's lock: a
    # training into that folder stops with one line, and writes nothing there.
    from minipixel.files import FolderLock

    folder = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from minipixel.files import FolderLock; "
                              f"FolderLock({str(folder)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        argv = ["train", "--data", str(tiny_npz), "--filters", "8", "--blocks", "1", "--steps", "2", "--samples", "0",
                "--quiet", "--out", str(folder)]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"another training (process {child.pid}) is writing this run folder" in err
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]
    finally:
        child.kill()
        child.wait()
    # Killed, it left its lock behind: the next training takes the folder over,
    # and lets the lock go when it is done.
    assert (folder / ".lock").exists()
    assert main(argv) == 0
    assert (folder / "checkpoint.npz").exists() and not (folder / ".lock").exists()
    with FolderLock(folder):
        assert (folder / ".lock").read_text().split()[0] == str(os.getpid())
    assert not (folder / ".lock").exists()


def test_training_that_would_not_fit_in_memory_is_refused_before_anything_is_built(tiny_npz, tmp_path, monkeypatch,
                                                                                  capsys):

    monkeypatch.setattr(memory, "available_memory", lambda: 20 * 2**20)  # a machine with 20 MiB free
    argv = ["train", "--data", str(tiny_npz), "--filters", "64", "--blocks", "4", "--batch", "512", "--steps", "1",
            "--quiet", "--out", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at batch 512 needs about" in err and "0.02 GiB of memory is available" in err
    assert not (tmp_path / "run").exists()
    argv[argv.index("512")] = "2"  # a batch that fits runs
    assert main(argv) == 0


def test_the_memory_estimate_is_near_a_measured_peak():
    # The estimate of a training step against the peak resident size of a fresh
    # process that takes three steps of the benchmark's reference model (which
    # also holds the interpreter and NumPy, some 40-90 MiB).
    from minipixel import bench

    measured = bench.peak_rss_training(16, threads=1)
    estimate = memory.training_bytes(bench.REFERENCE, 16)
    assert 0.6 < estimate / measured < 1.4, (estimate / 2**20, measured / 2**20)


def test_kill_9_at_random_moments_loses_nothing(tiny_npz, tmp_path):
    # A real training process is killed with SIGKILL at seeded random moments
    # (some land during a checkpoint write), four times; after each kill the
    # folder holds a loadable checkpoint (once one was written) and readable
    # metrics. Then --resume alone (or a fresh start, if no checkpoint was
    # written yet) runs to the end, with exactly the parameters of an
    # uninterrupted run. The run is long enough (400 steps) that no killed
    # attempt can finish it.
    from minipixel.runfolder import read_metrics

    run, whole = tmp_path / "run", tmp_path / "whole"
    options = ["--data", str(tiny_npz), "--filters", "8", "--blocks", "1", "--batch", "16", "--samples", "0",
               "--epochs", "100", "--quiet", "--threads", "2"]
    assert main(["train", *options, "--out", str(whole)]) == 0
    rng = np.random.default_rng(0)
    kills = 0
    for attempt in range(5):
        resume = (run / "checkpoint.npz").exists()
        argv = ["--resume", str(run), "--quiet"] if resume else [*options, "--out", str(run)]
        child = subprocess.Popen([sys.executable, "-m", "minipixel.cli", "train", *argv],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if attempt < 4:
            try:
                child.wait(timeout=float(rng.uniform(0.5, 2.0)))
            except subprocess.TimeoutExpired:
                child.kill()
                kills += 1
        child.wait(timeout=300)
        if (run / "checkpoint.npz").exists():
            read_checkpoint(run)  # loadable
        if (run / "metrics.jsonl").exists():
            read_metrics(run / "metrics.jsonl")  # readable
    assert kills == 4
    assert child.returncode == 0, child.stderr.read()
    _, params, _, state = read_checkpoint(run)
    _, want, _, want_state = read_checkpoint(whole)
    assert state["step"] == want_state["step"] == 400
    for name in want:
        assert (params[name] == want[name]).all(), name
    steps = [row["step"] for row in read_metrics(run / "metrics.jsonl")]
    assert steps == [4 * k for k in range(1, 101)]  # one row per epoch, none twice, none lost
    assert not list(run.glob(".*.tmp")) and not (run / ".lock").exists()  # a killed write's leftovers cleared


@pytest.mark.parametrize("which", ["checkpoint.npz", "learning_curve.png"])
def test_a_full_disk_during_a_write_keeps_the_previous_checkpoint(which, tiny_npz, tmp_path, monkeypatch, capsys):
    # The disk fills up half-way through writing the second checkpoint (or the
    # learning curve before it): the command stops with one line that says so,
    # the first checkpoint is still there and loads, and --resume continues.
    import errno

    import minipixel.files

    run = tmp_path / "run"
    argv = ["train", "--data", str(tiny_npz), "--filters", "8", "--blocks", "1", "--batch", "16", "--samples", "0",
            "--epochs", "3", "--quiet", "--out", str(run)]
    real = minipixel.files.atomic_write
    writes = []

    class FullDisk:
        """A file that takes 100 bytes, then fails as a full disk does."""

        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written + len(data) > 100:
                raise OSError(errno.ENOSPC, "No space left on device", str(self.f.name))
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    from contextlib import contextmanager

    @contextmanager
    def filling_up(path, mode="wb"):
        writes.append(Path(path).name)
        with real(path, mode) as f:
            yield FullDisk(f) if writes.count(which) == 2 else f

    monkeypatch.setattr("minipixel.checkpoint.atomic_write", filling_up)
    monkeypatch.setattr("minipixel.viz.atomic_write", filling_up)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "is intact" in err and "--resume" in err
    step = read_checkpoint(run)[3]["step"]
    assert step == 4  # the end of the first epoch: the second write failed
    assert not list(run.glob(".*.tmp"))
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert read_checkpoint(run)[3]["step"] == 12


def test_evaluation_and_sampling_that_would_not_fit_are_refused(tiny_npz, tmp_path, monkeypatch, capsys):

    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--filters", "8", "--blocks", "1", "--steps", "1", "--samples", "0",
                 "--quiet", "--out", str(run)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(memory, "available_memory", lambda: 2**14)  # 16 KiB free
    assert main(["eval", "--checkpoint", str(run), "--data", str(tiny_npz), "--batch", "4096"]) == 1
    assert "evaluating at batch 4096 needs about" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(run), "-n", "100000", "--out", str(tmp_path / "s.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sampling 100000 images of 8x8 needs about" in err
    assert not (tmp_path / "s.png").exists()


def test_the_memory_estimate_of_sampling(tiny_npz, tmp_path, monkeypatch, capsys):

    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--filters", "8", "--blocks", "1", "--steps", "1", "--samples", "0",
                 "--quiet", "--out", str(run)]) == 0
    # 5 binary 8x8 images, 3 at a time: 5 * 64 sub-pixels * 9 bytes (a float64 uniform and a label each),
    # 3 * 64 positions * 3 layers * 2 * 8 channels * 4 bytes of maps, and twice a training step at batch 0
    # (11904 bytes: the parameters, their gradients and Adam's two moments)
    needed = 5 * 64 * 9 + 3 * 64 * 3 * 2 * 8 * 4 + 2 * 11904
    argv = ["sample", "--checkpoint", str(run), "-n", "5", "--batch", "3", "--out", str(tmp_path / "s.png")]
    monkeypatch.setattr(memory, "available_memory", lambda: needed)
    assert main(argv) == 0
    monkeypatch.setattr(memory, "available_memory", lambda: needed - 1)
    capsys.readouterr()
    assert main(argv) == 1
    assert "sampling 5 images of 8x8 needs about 0.00 GiB" in capsys.readouterr().err
    # in colour, at another size than the model's, 8-byte numbers: every factor of the estimate counts
    colour = PixelCNNConfig(height=4, width=6, channels=3, levels=4, filters=6, blocks=2)
    assert memory.training_bytes(colour, 0, itemsize=8) == 40320
    # The gated model keeps, per position, 9 h for each of its layers (v and h pre-activations, the
    # link, the two gates, the output), h for the head and C * L logits; its widest map is 2 h.
    gated = PixelCNNConfig(height=8, width=8, channels=3, levels=4, filters=8, blocks=2, input_kernel=3, arch="gated")
    per_image = memory.training_bytes(gated, 2) - memory.training_bytes(gated, 1)
    assert per_image == 8 * 8 * 4 * (1.25 * ((2 + 1) * 9 * 8 + 8 + 3 * 4) + 2 * 2 * 8)
    # The PixelCNN keeps h (the input layer), for each block m1 + h/2 + h, 2 h (the head) and C * L;
    # its widest map is h + m1, with m1 = h/2 in the paper's blocks and h in the keras ones.
    # With an odd h, h/2 is rounded down, as the layers' widths are.
    for h, block, m1, half in ((8, "half", 4, 4), (8, "keras", 8, 4), (9, "half", 4, 4), (9, "keras", 9, 4)):
        pixelcnn = PixelCNNConfig(height=8, width=8, channels=3, levels=4, filters=h, blocks=2, block=block)
        per_image = memory.training_bytes(pixelcnn, 2) - memory.training_bytes(pixelcnn, 1)
        assert per_image == 8 * 8 * 4 * (1.25 * (h + 2 * (m1 + half + h) + 2 * h + 3 * 4) + 2 * (h + m1)), (h, block)
    assert memory.sampling_bytes(colour, 5, 3, 4, 6, itemsize=8) == 5 * 72 * 9 + 3 * 24 * 4 * 2 * 6 * 8 + 2 * 40320


def test_a_subnormal_temperature_and_an_even_kernel_are_refused_by_the_parser(capsys):
    for argv, message in ((["sample", "--pretrained", "binarized-mnist", "--temperature", "1e-310"],
                           "argument --temperature: expected 0 (always the most likely level) or a number from "
                           "1e-06 to 100, got '1e-310'"),
                          (["show", "masks", "--kernel", "4"], "argument --kernel: expected an odd int from 1 to 15, "
                                                              "got '4'")):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert options.check("temperature", 0.0) == 0.0 and options.check("temperature", 1e-6) == 1e-6


def test_more_levels_than_binary_data_has_are_refused_before_training(tiny_npz, tmp_path):
    with pytest.raises(ValueError, match=r"bars.npz \(hold-out train part, seed 0\): the images are binary \(0/1\), and --levels 256 would train"):
        train(TrainSettings(data=str(tiny_npz), levels=256, steps=1, filters=4, blocks=0), out=tmp_path / "run",
              progress=False, log=lambda *a: None)
    assert not (tmp_path / "run").exists()


def test_an_unknown_option_is_named_by_its_own_command_with_the_nearest_known_one(capsys):
    sample = ["sample", "--pretrained", "binarized-mnist"]
    for argv, message in (
            (["show", "field", "--pretrained", "x", "--rwo", "3"],  # a command of a command names itself
             "minipixel show field: error: unrecognized arguments: --rwo 3 (did you mean --row?)"),
            ([*sample, "--n=4"], "minipixel sample: error: unrecognized arguments: --n=4 (did you mean -n?)"),
            ([*sample, "--n=4=5"], "minipixel sample: error: unrecognized arguments: --n=4=5 (did you mean -n?)"),
            ([*sample, "--q"], "minipixel sample: error: unrecognized arguments: --q"),  # no -q either
            ([*sample, "--no-such"], "minipixel sample: error: unrecognized arguments: --no-such")):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2 and capsys.readouterr().err == message + "\n", argv


def test_the_nearest_option_is_a_short_one_written_long_then_initials_then_spelling():
    parser = options.Parser(prog="tool")
    for flag in ("-n", "-X", "--lr", "--Xlm", "--e", "--epochs"):
        parser.add_argument(flag)
    assert {word: parser.nearest(word) for word in ("--X", "--n=3", "--learning-rate", "--X-large-model",
                                                    "--epoch", "--eagerness", "--no-such")} == {
        "--X": "-X", "--n=3": "-n", "--learning-rate": "--lr", "--X-large-model": "--Xlm",
        "--epoch": "--epochs",
        "--eagerness": None,  # one word: its initial alone is no hint
        "--no-such": None}


def test_a_parser_whose_sub_commands_keep_no_name_reports_an_unknown_option_itself(capsys):
    parser = options.Parser(prog="tool")
    parser.add_subparsers().add_parser("go")
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["go", "--bogus"])
    assert exited.value.code == 2 and capsys.readouterr().err == "tool: error: unrecognized arguments: --bogus\n"


def test_the_memory_available_is_the_kernels_memavailable_and_a_figure_given_is_used(monkeypatch):
    import io

    assert memory.available_memory() > 0  # this machine's
    read = []

    def meminfo(path):
        read.append(path)
        return io.StringIO("MemTotal:       24576000 kB\nMemFree:          100000 kB\nMemAvailable:   12345678 kB\n")

    monkeypatch.setattr(memory, "open", meminfo, raising=False)
    assert memory.available_memory() == 12345678 * 1024 and read == ["/proc/meminfo"]
    monkeypatch.setattr(memory, "open", lambda path: io.StringIO("MemTotal: 1 kB\n"), raising=False)
    assert memory.available_memory() is None  # an older kernel without the line: unknown
    monkeypatch.undo()
    with pytest.raises(MemoryError, match=r"^training needs about 0\.00 GiB, and 0\.00 GiB of memory is available"):
        memory.check_memory(10, "training", available=5)  # whatever this machine has
    memory.check_memory(5, "training", available=5)


def test_work_of_30_s_or_more_says_its_estimate_in_seconds_then_in_minutes(capsys):
    for seconds in (29.9, 30, 89, 90, 600):
        options.say_estimate(seconds, "sampling")
    assert capsys.readouterr().err.splitlines() == [
        f"sampling: about {took} (estimated from one forward pass); Ctrl-C stops it"
        for took in ("30 s", "89 s", "2 minutes", "10 minutes")]


def _command(*words):
    """The parser of ``minipixel WORDS...`` (a command, or a command of a command)."""
    parser = build_parser()
    for word in words:
        parser = next(action for action in parser._actions
                      if isinstance(action, argparse._SubParsersAction)).choices[word]
    return parser


def test_a_command_that_needs_a_model_refuses_to_start_without_one_and_its_help_says_so(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["sample"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == ("minipixel sample: error: one of the arguments --checkpoint --pretrained "
                                       "is required\n")
    helps = {action.dest: action.help for action in _command("sample")._actions}
    assert helps["checkpoint"] == "checkpoint.npz (or its run folder) (no default: give it or --pretrained)"
    assert helps["pretrained"] == ("a model installed with minipixel, by name (`minipixel pretrained` lists them) "
                                   "(default: none)")
    assert "--pretrained NAME" in _command("sample").format_usage()
    # show field draws a fresh model when given none
    assert build_parser().parse_args(["show", "field"]).checkpoint is None
    helps = {action.dest: action.help for action in _command("show", "field")._actions}
    assert helps["checkpoint"] == ("checkpoint.npz (or its run folder) (default: a fresh random model with the "
                                   "options below)")


def test_the_help_of_a_checked_option_ends_with_its_range():
    threads = next(action for action in _command("train")._actions if action.dest == "threads")
    assert threads.help == ("CPU threads, each running a part of every batch (default: one per core this process "
                            "may use) [an int from 1 to 256]")
    parser = options.Parser(prog="tool")
    parser.add_argument("--seed", type=options.option("seed"))  # no help of its own: the range alone
    parser.add_argument("--name", type=str.upper)  # not a checked type: left as it is
    options.document(parser)
    assert [action.help for action in parser._actions[1:]] == ["[an int from 0 to 4294967295]", None]


def test_the_parser_takes_argparses_arguments_and_namespace():
    parser = options.Parser("tool", "tool [--seed N]")  # prog and usage, by position as for argparse
    parser.add_argument("--seed", type=options.option("seed"))
    assert (parser.prog, parser.format_usage()) == ("tool", "usage: tool [--seed N]\n")
    into = argparse.Namespace(kept=1)
    assert parser.parse_args(["--seed", "3"], namespace=into) is into and vars(into) == {"kept": 1, "seed": 3}


def test_every_unknown_option_gets_its_own_hint(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--pretrained", "binarized-mnist", "--n=4", "--seeed", "3"])
    assert capsys.readouterr().err == ("minipixel sample: error: unrecognized arguments: --n=4 --seeed 3 "
                                       "(did you mean -n, --seed?)\n")


def test_the_memory_estimate_of_evaluation():

    # at each position of the batch, 4-byte numbers: 6 of the widest maps (2 * filters wide in a gated
    # model, filters in a PixelCNN) and the logits twice; and twice a training step at batch 0 (the
    # parameters, their gradients and Adam's two moments)
    for arch, widest in (("pixelcnn", 6), ("gated", 12)):
        config = PixelCNNConfig(height=4, width=7, channels=3, levels=4, filters=6, blocks=2, arch=arch)
        assert memory.inference_bytes(config, 5) == (5 * 28 * 4 * (6 * widest + 2 * 3 * 4)
                                                     + 2 * memory.training_bytes(config, 0)), arch


@pytest.mark.parametrize("options", [
    {}, {"block": "keras"}, {"filters": 9}, {"channels": 3, "levels": 4, "input_kernel": 5},
    {"arch": "gated"}, {"arch": "gated", "blocks": 0}, {"arch": "gated", "filters": 9, "blocks": 3},
    {"arch": "gated", "channels": 3, "levels": 4, "filters": 6, "input_kernel": 3},
    {"arch": "gated", "classes": 3}])
def test_the_parameter_count_is_the_number_of_weights_the_model_holds(options):
    config = PixelCNNConfig(height=6, width=5, **{"filters": 8, "blocks": 2, **options})
    weights = {name: p for name, p in build_model(config).parameters().items()
               if p.ndim > 1 and ".bias_" not in name}  # the class biases are (classes, 2 h) arrays
    assert memory.parameter_count(config) == sum(p.size for p in weights.values())


def test_numpy_numbers_pass_as_python_ones_and_what_is_no_number_is_refused_with_words():
    assert options.check("batch", np.int64(4)) == 4 and options.check("batch", np.uint8(4)) == 4
    assert options.check("lr", np.float32(0.5)) == 0.5
    for name, bad in (("batch", np.float64(4.0)), ("batch", 4.0), ("batch", True), ("lr", "0.5"), ("lr", None),
                      ("lr", [0.5]), ("lr", False)):
        with pytest.raises(ValueError, match=f"^{name}: expected an? .*, got {re.escape(repr(bad))}$"):
            options.check(name, bad)
