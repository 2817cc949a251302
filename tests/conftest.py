import fnmatch
import functools
import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from minipixel.data import ImageSet
from minipixel.datasets import write_npz


def bars(n, size=8, seed=0):
    """Binary images with one vertical and one horizontal bar: easy structure a model learns fast."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 1), np.uint8)
    for k in range(n):
        images[k, :, rng.integers(size), 0] = 1
        images[k, rng.integers(size), :, 0] = 1
    return images


@pytest.fixture
def tiny_npz(tmp_path):
    """An .npz dataset of 64 binary 8x8 images in the project's own format."""
    path = tmp_path / "bars.npz"
    write_npz(path, ImageSet(images=bars(64), max_value=1, source="bars"))
    return path


def _gpu_skip_reason():
    """None if CuPy imports and sees a GPU, else why the "gpu" case is skipped."""
    from minipixel.backend import DeviceError, get_xp

    try:
        get_xp("gpu")  # imports CuPy: only reached when a test asks for the gpu case
    except DeviceError as err:
        return str(err)
    return None


@pytest.fixture(params=["cpu", "gpu", "strict"])
def device(request):
    """The device name a test runs on, once per device (Chainer-style):
    "cpu" (NumPy), "gpu" (CuPy; skipped without CuPy or a GPU) and "strict",
    the CPU stand-in for CuPy that fails on any implicit host copy
    (``minipixel.testing.strict``)."""
    if request.param == "gpu":
        reason = _gpu_skip_reason()
        if reason:
            pytest.skip(f"gpu: {reason}")
    if request.param == "strict":
        from minipixel import backend
        from minipixel.testing import strict

        backend.register_device("strict", strict)
    return request.param


@pytest.fixture
def held(monkeypatch):
    """minipixel serve's sampling streams: frames after the first wait until the test sets the
    event this returns (a minute at most in all), so that a test can hold samplings open."""
    import threading
    import time

    from minipixel import serve

    go, count, until = threading.Event(), [], time.monotonic() + 60
    send = serve.Handler._send_line

    def send_held(self, line):
        if line["type"] == "frame":
            count.append(line)
            if len(count) > 1:
                go.wait(max(0.0, until - time.monotonic()))
        send(self, line)

    monkeypatch.setattr(serve.Handler, "_send_line", send_held)
    return go


# --- Mutation runs (scripts/mutation.sh, mutmut) ------------------------------------
# mutmut names the mutant under test in MUTANT_UNDER_TEST ("stats" while it learns
# which tests reach which function). For a mutant of minipixel/<module>.py, only the
# test files MUTATION_TESTS lists for that module run (mutmut has already cut them to
# the tests that reach the mutated function), fastest first, so that -x stops at the
# first failure early; a test that runs far longer than it did on the unmutated code is
# failed, and the mutant counted as killed by time, as mutmut counts its own timeouts
# (the mutant's name goes to the file MUTATION_SLOW_LOG names). The whole-gated-model
# gradient checks (50 s each) run only for mutants of gated.py, the only module whose
# whole they check (the ops and layers they are made of have their own checks).
# A module's entry holds fnmatch patterns for a test file's path under tests/ without
# ".py" ("test_conv", "datasets/test_*"); the modules of minipixel.datasets share the
# entry "datasets". tests/test_mutation_keys.py checks that every module setup.cfg's
# [mutmut] mutates has an entry and that every pattern names a test file mutmut runs.
# tests/test_train.py was split by concern into these files:
TRAIN_TESTS = ("test_step", "test_train_ranks", "test_train_loop", "test_run_folder", "test_train_settings",
               "test_checkpoint", "test_train_ema", "test_scripts_runs", "test_train_safety", "test_faults")
# what runs the layers (layers, conv, canvas: once all in layers.py)
LAYER_TESTS = ("test_conv", "test_forward_at", "test_gradcheck", "test_autoregressive", "test_gated",
               "test_sampling", "test_threads", "test_strict_device", "test_dropout", "test_graph_sampler")
MUTATION_TESTS = {
    "masks": ("test_masks", "test_conv", "test_autoregressive", "test_gradcheck", "test_gated"),
    "im2col": ("test_conv", "test_forward_at", "test_gradcheck", "test_autoregressive", "test_gated",
               "test_strict_device"),
    "conv_reference": ("test_conv", "test_gradcheck"),
    "layers": LAYER_TESTS,
    "conv": LAYER_TESTS,
    "canvas": LAYER_TESTS,
    "model": ("test_architecture", *LAYER_TESTS, "test_loss_optim", "test_cli", *TRAIN_TESTS),
    "gated": ("test_architecture", *LAYER_TESTS, *TRAIN_TESTS),
    "fused": ("test_fused", *LAYER_TESTS),
    "losses": ("test_loss_optim", "test_gradcheck", "test_sampling", "test_strict_device", *TRAIN_TESTS),
    "optim": ("test_loss_optim", "test_threads", "test_strict_device", "test_dropout", *TRAIN_TESTS),
    "sampling": ("test_sampling", "test_sample_cli", "test_gated", "test_fused", "test_cli", "test_strict_device",
                 "test_graph_sampler"),
    "backend": (*LAYER_TESTS, "test_fused", "test_loss_optim", *TRAIN_TESTS),
    "gradcheck": ("test_gradcheck", "test_gated", "test_dropout", "test_cli"),
    "data": ("test_data", "test_cli", "datasets/test_fuzz", *TRAIN_TESTS),
    "datasets": ("datasets/test_*", "test_data", "test_cli"),
    "files": ("test_npz_arrays", "test_options", "test_folder_lock", "test_data", "test_pretrained", "datasets/test_*",
              *TRAIN_TESTS),
    "checkpoint": ("test_cli", "test_sample_cli", "test_pretrained", "datasets/test_fuzz", *TRAIN_TESTS),
    "pretrained": ("test_pretrained", "test_cli"),
    "options": ("test_options", "test_cli", "test_sample_cli", "test_sampling", *TRAIN_TESTS),
    "memory": ("test_options", "test_cli", "test_sample_cli", *TRAIN_TESTS),
    "threads": ("test_threads", "test_loss_optim", "test_dropout", "test_strict_device", *TRAIN_TESTS),
    "distributed": ("test_distributed", "test_threads", *TRAIN_TESTS),
    "step": ("test_threads", "test_loss_optim", "test_dropout", "test_strict_device", *TRAIN_TESTS),
    "evaluate": ("test_threads", "test_strict_device", "test_cli", "test_sample_cli", *TRAIN_TESTS),
    "settings": ("test_options", "test_cli", "test_sample_cli", "datasets/test_fuzz", *TRAIN_TESTS),
    "rundata": ("test_data", "test_options", "test_cli", "test_sample_cli", *TRAIN_TESTS),
    "runfolder": ("test_options", "test_cli", "test_outputs", *TRAIN_TESTS),
    "stop": ("test_options", *TRAIN_TESTS),
    "serve": ("test_serve_pages", "test_serve_api_limits", "test_serve"),
    "serve_api": ("test_serve_api_limits", "test_serve"),
    "train": ("test_cli", "test_threads", "test_sample_cli", "test_strict_device", "test_dropout", "test_options",
              "test_folder_lock", *TRAIN_TESTS),
}
MUTATION_HEAVY = "test_backward_matches_central_differences[gated model, "


class MutantTooSlow(Exception):
    """A test ran far past its time on the unmutated code."""


def _mutation_module():
    """The mutated module's name under minipixel ("layers", "datasets.idx") during a mutant's run, "" during
    mutmut's other phases ("stats"), None outside mutmut."""
    mutant = os.environ.get("MUTANT_UNDER_TEST")
    if mutant is None:
        return None
    if "__mutmut_" not in mutant:
        return ""
    return _mutation_score().split_mutant(mutant)[0].removeprefix("minipixel.")


def mutation_test_patterns(module):
    """MUTATION_TESTS's patterns for a module under minipixel ("conv", "datasets.idx"), None where it has none."""
    return MUTATION_TESTS.get(module, MUTATION_TESTS.get(module.partition(".")[0]))


def mutation_test_name(path):
    """What MUTATION_TESTS's patterns match: a test file's path under tests/ without ".py" ("datasets/test_npz")."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(__file__).resolve().parent).with_suffix("").as_posix()
    except ValueError:  # a test file outside tests/
        return path.stem


def pytest_collection_modifyitems(config, items):
    module = _mutation_module()
    if module is None:
        return
    # the heavy checks run in mutmut's first pass too, so that it learns which gated functions they reach
    keep = [item for item in items if module in ("", "gated") or MUTATION_HEAVY not in item.nodeid]
    score = _mutation_score()
    if module and score.mutant_key(os.environ["MUTANT_UNDER_TEST"]) in score.EQUIVALENT:
        keep = []  # it cannot be killed: no test runs (pytest's "no tests": mutmut counts it apart, the score leaves it out)
    elif module:
        patterns = mutation_test_patterns(module)
        if patterns is not None:  # a module without an entry runs every test mutmut saw reach the function
            listed = [item for item in keep
                      if any(fnmatch.fnmatchcase(mutation_test_name(item.path), p) for p in patterns)]
            # None of its files reaches the function: every test that does runs (none at all would
            # make pytest exit 5, which mutmut counts as a surviving mutant).
            keep = listed or keep
        durations = _mutation_durations()
        keep.sort(key=lambda item: durations.get(item.nodeid, 0.0))
    if len(keep) < len(items):
        kept = set(keep)
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = keep


@functools.lru_cache(maxsize=1)
def _mutation_score():
    """scripts/mutation_score.py as a module: the one place of EQUIVALENT (the equivalent mutants, keyed by
    place in the code without the module, each with its reason) and of split_mutant / mutant_key, which turn
    mutmut's names of mutants into those keys."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "mutation_score.py"
    spec = importlib.util.spec_from_file_location("mutation_score", path)
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    return score


_started = pytest.StashKey[float]()  # when this pytest session began


def pytest_sessionstart(session):
    session.config.stash[_started] = time.perf_counter()


def pytest_sessionfinish(session, exitstatus):
    """During a mutation run, one line per mutant in $MUTATION_TIME_LOG: name, seconds, pytest's exit status
    (mutmut 3.8 records no times of its own in this mode)."""
    log = os.environ.get("MUTATION_TIME_LOG")
    if log and _mutation_module():
        seconds = time.perf_counter() - session.config.stash[_started]
        with open(log, "a") as f:
            f.write(f"{os.environ['MUTANT_UNDER_TEST']}\t{seconds:.2f}\t{int(exitstatus)}\n")


@functools.lru_cache(maxsize=1)
def _mutation_durations():
    """Each test's time on the unmutated code, from mutmut's first pass (run in mutants/)."""
    try:
        stats = json.loads(Path("mutmut-stats.json").read_text())
    except (OSError, ValueError):
        return {}
    return {name.removeprefix("mutants/"): seconds for name, seconds in stats.get("duration_by_test", {}).items()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if not _mutation_module():
        yield
        return
    limit = 4.0 * _mutation_durations().get(item.nodeid, 5.0) + 3.0

    def too_slow(signum, frame):
        log = os.environ.get("MUTATION_SLOW_LOG")
        if log:
            with open(log, "a") as f:
                f.write(os.environ["MUTANT_UNDER_TEST"] + "\n")
        raise MutantTooSlow(f"{item.nodeid} ran past {limit:.1f} s of CPU time")

    previous = signal.signal(signal.SIGPROF, too_slow)
    signal.setitimer(signal.ITIMER_PROF, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
