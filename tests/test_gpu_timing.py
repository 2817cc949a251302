"""scripts/gpu_timing.py: minipixel against PyTorch, and the per-layer timings, of
scripts/gpu_check.py, run here on the CuPy stand-in at its tiny sizes (their figures
mean nothing: what is tested is what they are, where they go and how they are taken).

torch is not a dependency (too big for CI): the tests of the PyTorch side skip without
it; the skip path and the choice between the sides' devices are tested with torch
hidden or faked.
"""
import importlib
import json
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from minipixel import backend, bench, conv, gradcheck, step
from minipixel.testing import strict

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
RATIO = "speed_ratio_minipixel_over_pytorch"
NO_TORCH = "torch is not installed here (not a dependency: too big for CI); `pip install torch` to run this test"


@pytest.fixture
def timing(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # where gpu_check.py finds it, and pytorch_reference beside it
    backend.register_device("strict", strict)
    return importlib.import_module("gpu_timing")


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason=NO_TORCH)


def test_alternate_takes_turns_after_a_warm_up_each(timing):
    calls = []
    sides = {"minipixel": lambda: calls.append("m"), "pytorch": lambda: calls.append("p")}
    warmups = {"minipixel": lambda: calls.append("m warm"), "pytorch": lambda: calls.append("p warm")}
    syncs = []

    times = timing.alternate(sides, 3, lambda: syncs.append(len(calls)), warmups)

    assert calls == ["m warm", "p warm", "m", "p", "p", "m", "m", "p"]
    assert syncs == [2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8]  # before and after every timed run, none in the warm-ups
    assert {side: len(runs) for side, runs in times.items()} == {"minipixel": 3, "pytorch": 3}


def test_compare_names_each_side_and_divides_pytorchs_time_by_minipixels(timing):
    times = {"minipixel": [0.3, 0.1, 0.2], "pytorch": [0.8, 0.4, 0.5]}  # seconds a run of 2 steps of 16 images

    got = timing.compare(times, "step_ms", per_run=2, images=16)

    assert got == {"minipixel_step_ms": 100.0, "minipixel_step_ms_range": [50.0, 150.0],
                   "minipixel_images_per_s": 160.0, "pytorch_step_ms": 250.0, "pytorch_step_ms_range": [200.0, 400.0],
                   "pytorch_images_per_s": 64.0, RATIO: 2.5}
    assert timing.compare(times, "s")["minipixel_s_range"] == [0.1, 0.3]


def test_without_torch_the_comparison_is_skipped_and_passes(timing, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as on a machine without torch: `import torch` raises
    saved = []
    record = timing.pytorch_check({}, lambda: saved.append(1), "strict")
    assert record["passed"] is True and list(record) == ["passed", "skipped"]
    assert record["skipped"].startswith("torch with CUDA is not importable: ")


def test_on_the_gpu_a_torch_without_cuda_is_skipped_before_anything_runs(timing, monkeypatch):
    fake = types.SimpleNamespace(__version__="9.9.9+cpu", version=types.SimpleNamespace(cuda=None),
                                 cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake)
    record = timing.pytorch_check({}, lambda: None, "gpu")  # returns before CuPy would be asked for
    assert record == {"passed": True, "skipped": "torch with CUDA is not importable: torch 9.9.9+cpu (CUDA None) "
                                                 "sees no GPU (torch.cuda.is_available() is False)"}


def test_the_comparison_on_the_stand_in_names_the_sides_and_saves_measure_by_measure(timing, torch):
    record, saved = {}, []
    timing.pytorch_check(record, lambda: saved.append(json.loads(json.dumps(record))), "strict", quick=True)

    assert record["passed"] is True
    settings = record["settings"]
    assert settings["torch_device"] == "cpu" and settings["torch"] == torch.__version__
    assert settings["torch.backends.cuda.matmul.allow_tf32"] is False
    assert settings["torch.backends.cudnn.allow_tf32"] is False
    assert settings["torch.backends.cudnn.benchmark"] is True and settings["minipixel_tf32"].startswith("off")
    assert '"filters": 8' in record["model"] and record["rounds"] == 2
    measures = {"train": ("4", "step_ms"), "forward": ("4", "forward_ms")}
    for measure, (batch, unit) in measures.items():
        figures = record[measure][batch]
        for side in ("minipixel", "pytorch"):
            low, high = figures[f"{side}_{unit}_range"]
            assert 0 < low <= figures[f"{side}_{unit}"] <= high
            per_s = int(batch) * 1e3 / figures[f"{side}_{unit}"]
            assert figures[f"{side}_images_per_s"] == pytest.approx(per_s, rel=2e-3, abs=0.1)
        assert figures[RATIO] == pytest.approx(figures[f"pytorch_{unit}"] / figures[f"minipixel_{unit}"], rel=1e-2)
    sampling = record["naive_sampling"]
    assert (sampling["images"], sampling["rows"], sampling["of_rows"]) == (2, 2, 8)
    assert sampling["minipixel_s"] > 0 and sampling["pytorch_s"] > 0 and sampling[RATIO] > 0
    # Saved as each measure ended: a time limit keeps the measures done.
    assert [sorted(set(s) & {"train", "forward", "naive_sampling"}) for s in saved] == [
        ["train"], ["forward", "train"]]
    assert "passed" not in saved[0]


def test_a_measure_that_raises_keeps_the_ones_before_it(tmp_path, monkeypatch, torch, timing):
    import pytorch_reference

    def sample_naive(*args, **kwargs):
        raise RuntimeError("planted in PyTorch's sampler")

    monkeypatch.setattr(pytorch_reference, "sample_naive", sample_naive)
    monkeypatch.setattr(bench, "REFERENCE", replace(bench.REFERENCE, filters=8, blocks=1))
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPTS / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    monkeypatch.setattr(gradcheck, "cases", lambda device: [])
    out = tmp_path / "check.json"

    assert gpu_check.main(["--device", "strict", "--quick", "--out", str(out)]) == 1

    report = json.loads(out.read_text())
    pytorch = report["pytorch"]
    assert pytorch["passed"] is False and "planted in PyTorch's sampler" in pytorch["error"]
    assert pytorch["train"]["4"][RATIO] > 0 and pytorch["forward"]["4"][RATIO] > 0 and "naive_sampling" not in pytorch
    assert report["checks"]["gradcheck_float64"]["passed"]  # and the next check ran


def test_pytorchs_draw_is_minipixels(torch, timing):
    import pytorch_reference
    from minipixel.sampling import draw

    rng = np.random.default_rng(0)
    logits, u = rng.normal(size=(500, 4)) * 3, rng.random(500)
    got = pytorch_reference.draw(torch.from_numpy(logits.astype(np.float32)), torch.from_numpy(u)).numpy()
    np.testing.assert_array_equal(got, draw(logits.astype(np.float32), u))
    assert len(set(got)) == 4

    net, _ = pytorch_reference.build(filters=8, blocks=1)
    x = pytorch_reference.sample_naive(net, torch.full((3, 5, 6), 1 - 1e-12, dtype=torch.float64), rows=2)
    assert x.shape == (3, 1, 5, 6)
    assert (x[:, :, :2] == 1).all() and (x[:, :, 2:] == 0).all()  # the last level, in the rows asked for only


def test_pytorch_reference_still_runs_as_a_command(torch):
    done = subprocess.run([sys.executable, str(SCRIPTS / "pytorch_reference.py"), "2"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["threads"] == 2 and result["torch"] == torch.__version__
    assert set(result["2"]) == {"forward_ms", "forward_images_per_s", "train_step_ms", "train_images_per_s",
                                "train_images_per_s_range"}


def test_layer_timings_split_the_step_and_leave_the_library_as_it_was(timing):
    from minipixel import im2col, losses

    matmul = strict.matmul
    record = timing.layer_timings("strict")

    assert record["passed"] and record["batch"] == 4 and record["steps"] == 2
    assert record["clock"].startswith("the wall clock")
    layers = record["layers"]
    assert list(layers) == ["conv_in", "blocks.0", "blocks.0.relu1", "blocks.0.conv1", "blocks.0.conv2",
                            "blocks.0.conv3", "relu_a", "head1", "head2", "conv_out"]
    # Each piece where it runs: im2col in the k x k convolutions only, col2im in those
    # that pass a gradient back (not conv_in, which faces the data), products in every one.
    assert set(layers["conv_in"]) == {"forward_ms", "forward_im2col_ms", "forward_matmul_ms", "backward_ms",
                                      "backward_im2col_ms", "backward_matmul_ms"}
    assert set(layers["blocks.0.conv2"]) == set(layers["conv_in"]) | {"backward_col2im_ms"}
    for one_by_one in ("blocks.0.conv1", "blocks.0.conv3", "head1", "head2", "conv_out"):
        assert set(layers[one_by_one]) == {"forward_ms", "forward_matmul_ms", "backward_ms", "backward_matmul_ms"}
    assert set(layers["relu_a"]) == set(layers["blocks.0"]) == {"forward_ms", "backward_ms"}
    assert set(record["step_split_ms"]) == {"forward", "loss", "backward", "optimizer", "optimizer_finite_check",
                                            "rest"}
    assert all(ms > 0 for ms in record["step_split_ms"].values() if ms != record["step_split_ms"]["rest"])
    split = record["convolution_split_ms"]
    assert split["matmul"] == pytest.approx(sum(v for layer in layers.values() for k, v in layer.items()
                                                if k.endswith("_matmul_ms")), abs=2e-3)
    assert record["step_ms"] > 0 and record["step_ms_untimed"] > 0
    # Nothing stays wrapped: the library runs as before, and pays nothing, once timing is done.
    assert conv.im2col is im2col.im2col and conv.col2im is im2col.col2im and strict.matmul is matmul
    assert step.softmax_cross_entropy is losses.softmax_cross_entropy and strict.whole_batch is False


def test_on_the_gpu_the_pieces_are_timed_by_cuda_events(timing, monkeypatch):
    """The GPU's branch, on a stand-in that plays CuPy: its events are what time the pieces."""
    events = []

    class Event:
        def __init__(self):
            events.append(self)

        def record(self):
            self.at = len(events)  # a clock that moves one tick per event made

        def synchronize(self):
            pass

    fake = types.ModuleType("fake_cupy")
    fake.__dict__.update({k: v for k, v in vars(strict).items() if not k.startswith("__")})
    fake.cuda = types.SimpleNamespace(Event=Event, get_elapsed_time=lambda start, end: float(end.at - start.at))
    monkeypatch.setitem(backend._devices, "gpu", fake)
    monkeypatch.delitem(backend._devices, "strict")  # so that the stand-in's arrays are the fake GPU's
    monkeypatch.setitem(timing.GPU_SIZES, "layer_batch", 2)
    monkeypatch.setattr(bench, "REFERENCE", replace(bench.REFERENCE, height=6, width=6, filters=4, blocks=1))

    record = timing.layer_timings("gpu", quick=True)

    assert record["clock"] == "CUDA events (cupy.cuda.Event)" and record["steps"] == 3 and record["batch"] == 2
    assert len(events) > 100
    # One tick per event: a 1x1 convolution's forward holds its product's two events, so spans three ticks.
    assert record["layers"]["head1"]["forward_ms"] == 3.0 and record["layers"]["head1"]["forward_matmul_ms"] == 1.0
    assert fake.matmul is strict.matmul and not fake.whole_batch  # unwrapped again
