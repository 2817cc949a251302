"""scripts/gpu_check.py goes on past a broken check and keeps what it has done.

Its first run on a GPU (an H200) ran out of its time limit inside the float64
gradient checks, which then came first, and wrote nothing. Now each check is saved
to the JSON as it ends, the gradient checks come last and are saved case by case,
and a check that raises is recorded as failed, with its traceback, while the next
ones run. These tests run the script in this process on the CuPy stand-in
(``--device strict --quick``), with failures planted where a GPU could raise.
(tests/test_strict_device.py runs it untouched, as a command.)
"""
import importlib.util
import json
import os
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest

from minipixel import bench, gradcheck

CHECKOUT = Path(__file__).resolve().parents[1]
QUICK_CASES = ["conv 3x3 mask B, RGB groups", "softmax cross-entropy, 7 levels", "gated layer, later, class bias"]
# The checks between the smoke test and the gradient checks, in their order (no NCCL: not a GPU).
BEFORE_THE_GRADIENT_CHECKS = [name for arch in ("pixelcnn", "gated") for name in (
    f"step_vs_cpu_{arch}_float64", f"step_vs_cpu_{arch}_float32", f"repeatable_{arch}", f"cached_equals_naive_{arch}",
    f"graph_equals_cached_{arch}")] + ["graph_equals_cached_gated_classes"]


@pytest.fixture
def gpu_check():
    """The script as a module, loaded afresh: its ``main(argv)`` runs in this process."""
    spec = importlib.util.spec_from_file_location("gpu_check", CHECKOUT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plant_in_gradient_case(monkeypatch, name, error):
    """The gradient case ``name`` raises ``error``; the others run as they are."""
    real = gradcheck.cases

    def raises():
        raise error

    monkeypatch.setattr(gradcheck, "cases", lambda device="cpu": [(n, raises if n == name else fn)
                                                                  for n, fn in real(device)])


def assert_raised_here(record, message):
    assert record["passed"] is False and "running" not in record, record
    assert message in record["error"], record
    assert record["traceback"].startswith("Traceback (most recent call last)") and message in record["traceback"]


def test_the_gpu_check_script_reports_a_broken_check_and_goes_on(gpu_check, tmp_path, monkeypatch, capsys):
    real_compare_step = gpu_check.compare_step

    def compare_step(cfg, device, dtype, tolerance):
        if cfg.arch == "pixelcnn" and dtype == "float32":
            raise RuntimeError("planted in the float32 step comparison")
        return real_compare_step(cfg, device, dtype, tolerance)

    def timings(*args):
        raise ValueError("planted in the timings")

    monkeypatch.setattr(gpu_check, "compare_step", compare_step)
    monkeypatch.setattr(gpu_check, "timings", timings)
    plant_in_gradient_case(monkeypatch, QUICK_CASES[1], FloatingPointError("planted in a gradient case"))
    out = tmp_path / "check.json"

    status = gpu_check.main(["--device", "strict", "--quick", "--out", str(out)])

    assert status == 1
    report = json.loads(out.read_text())
    assert report["finished"] is True and report["passed"] is False
    checks = report["checks"]
    assert list(checks) == ["smoke"] + BEFORE_THE_GRADIENT_CHECKS + ["gradcheck_float64"]
    assert_raised_here(checks["step_vs_cpu_pixelcnn_float32"], "planted in the float32 step comparison")
    assert_raised_here(report["timings"], "planted in the timings")
    # Every check after the first planted one ran, and passed.
    failed = {"step_vs_cpu_pixelcnn_float32", "gradcheck_float64"}
    assert {name for name, check in checks.items() if not check["passed"]} == failed, checks
    # The gradient case before the planted one is kept beside the error, with its figure.
    grad = checks["gradcheck_float64"]
    assert_raised_here(grad, "planted in a gradient case")
    assert list(grad["cases"]) == QUICK_CASES[:1] and grad["cases_to_run"] == 3
    assert 0 <= grad["cases"][QUICK_CASES[0]] < grad["tolerance"] == gradcheck.TOLERANCE
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"gpu_check: FAILED: step_vs_cpu_pixelcnn_float32, gradcheck_float64, timings; wrote {out}"
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_the_gpu_check_script_keeps_what_it_did_when_stopped(gpu_check, tmp_path, monkeypatch):
    """A time limit or a kill inside the gradient checks (here a KeyboardInterrupt in the
    third case, which the script lets through as it would a signal) leaves a JSON with
    every check before them, the timings among them, and the two cases done."""
    plant_in_gradient_case(monkeypatch, QUICK_CASES[2], KeyboardInterrupt())
    monkeypatch.setattr(bench, "REFERENCE", replace(bench.REFERENCE, height=8, width=8, filters=8, blocks=1))
    out = tmp_path / "check.json"

    with pytest.raises(KeyboardInterrupt):
        gpu_check.main(["--device", "strict", "--quick", "--out", str(out)])

    report = json.loads(out.read_text())
    assert report["finished"] is False and "passed" not in report
    checks = report["checks"]
    assert list(checks) == ["smoke"] + BEFORE_THE_GRADIENT_CHECKS + ["gradcheck_float64"]
    assert all(checks[name]["passed"] for name in ["smoke"] + BEFORE_THE_GRADIENT_CHECKS), checks
    assert report["timings"]["passed"] and report["timings"]["batches"]["4"]["train_images_per_s"] > 0
    # The layer timings and the comparison with PyTorch came before, whole (or skipped, without torch).
    assert report["layer_timings"]["passed"] and report["layer_timings"]["step_ms"] > 0
    pytorch = report["pytorch"]
    assert pytorch["passed"]
    assert "skipped" in pytorch or "speed_ratio_minipixel_over_pytorch" in pytorch["naive_sampling"]
    grad = checks["gradcheck_float64"]
    assert grad["running"] is True and grad["passed"] is False
    assert list(grad["cases"]) == QUICK_CASES[:2]


def test_the_measurements_run_after_the_timings_and_the_gradient_checks_last(gpu_check, tmp_path, monkeypatch, capsys):
    """The order of a call: the quick checks, the timings, the layer timings, the comparison
    with PyTorch (here skipped: torch hidden, as on a machine without it, and the call
    still passes), and the gradient checks last, so a time limit cuts only those."""
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    monkeypatch.setattr(bench, "REFERENCE", replace(bench.REFERENCE, height=8, width=8, filters=8, blocks=1))
    out = tmp_path / "check.json"

    assert gpu_check.main(["--device", "strict", "--quick", "--out", str(out)]) == 0

    printed = capsys.readouterr().out.splitlines()
    ran = [line.split()[0] for line in printed if line.endswith(" s)")]
    assert ran == BEFORE_THE_GRADIENT_CHECKS + ["timings", "layer_timings", "pytorch", "graph_sampler",
                                                "gradcheck_float64"]
    report = json.loads(out.read_text())
    assert report["finished"] and report["passed"]
    pytorch = report["pytorch"]
    assert pytorch["passed"] is True and set(pytorch) == {"passed", "skipped", "seconds"}, pytorch
    reason, why = pytorch["skipped"].split(": ", 1)
    assert reason == "torch with CUDA is not importable" and "torch" in why  # the import's own error
    layers = report["layer_timings"]
    assert layers["clock"].startswith("the wall clock") and layers["batch"] == 4
    assert json.loads(printed[-3])["pytorch"] == pytorch["skipped"]  # the summary says so too
    graph = report["graph_sampler"]
    assert json.loads(printed[-2]) == graph
    assert graph["passed"] and graph["images_equal"] and set(graph["models"]) == {"reference", "binarized-mnist"}
    for model in graph["models"].values():
        assert model["sub_pixels_differing"] == 0 and model["graph_s"] > 0 and "target_s" not in model  # no GPU
    assert json.loads(graph["models"]["binarized-mnist"]["model"])["arch"] == "gated"


def test_the_nccl_worker_gets_the_checkout_on_its_pythonpath(gpu_check, tmp_path, monkeypatch):
    """The worker is started from a checkout that may not be installed: the checkout
    goes first on its PYTHONPATH, and what was there stays after it."""
    real_find_spec, real_run = importlib.util.find_spec, subprocess.run
    started = []

    def run(command, env, **kwargs):  # the worker, as if it ran on one GPU
        started.append(env)
        Path(command[-1]).write_text(repr({"ranks": 1, "passed": True}))
        return types.SimpleNamespace(returncode=0, stderr="")

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: True if name == "mpi4py" else real_find_spec(name))
    monkeypatch.setattr(subprocess, "run", run)
    one_gpu = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1)))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert gpu_check.nccl_check(one_gpu) == {"ranks": 1, "passed": True}
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "elsewhere"))
    assert gpu_check.nccl_check(one_gpu) == {"ranks": 1, "passed": True}

    assert started[0]["PYTHONPATH"] == str(CHECKOUT)  # no empty entry, which would mean the current folder
    assert started[1]["PYTHONPATH"] == os.pathsep.join([str(CHECKOUT), str(tmp_path / "elsewhere")])
    # Without site-packages (-S), where an installed minipixel would be, it is found there only.
    find = "import importlib.util; print(importlib.util.find_spec('minipixel').origin)"
    for env in started:
        done = real_run([sys.executable, "-S", "-c", find], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert Path(done.stdout.strip()) == CHECKOUT / "minipixel" / "__init__.py"
