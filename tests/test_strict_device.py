"""Training, evaluation and sampling on every device give the CPU's numbers.

The "strict" device (``minipixel.testing.strict``) is a CPU stand-in for CuPy
whose arrays refuse to become NumPy arrays implicitly: a hidden copy to the
host in the hot path, which passes on NumPy and breaks (or crawls) on a GPU,
fails here without a GPU. The ``device`` fixture (conftest.py) runs each test
on "cpu", "gpu" (when CuPy sees one) and "strict".
"""
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from minipixel import backend, threads as threads_module
from minipixel.data import labels_to_inputs
from minipixel.layers import ReLU
from minipixel.losses import softmax_cross_entropy
from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.optim import Adam
from minipixel.checkpoint import read_checkpoint
from minipixel.sampling import sample
from minipixel.testing import strict
from minipixel.train import TrainSettings, evaluate, train

# 8x8 images: 32 images fill one chunk of backend.chunk_rows on the CPU, so a
# batch of 40 takes two chunks, the loop that a one-chunk GPU pass never runs.
CONFIGS = {
    "grey": PixelCNNConfig(height=8, width=8, channels=1, levels=2, filters=8, blocks=1, input_kernel=3),
    "rgb": PixelCNNConfig(height=8, width=8, channels=3, levels=4, filters=12, blocks=1, input_kernel=3),
}
BATCH = 40


def labels_for(cfg, n=BATCH, seed=1):
    return np.random.default_rng(seed).integers(0, cfg.levels, (n, cfg.height, cfg.width, cfg.channels), dtype=np.uint8)


def run_everything(cfg, device):
    """One training step, an evaluation and both samplers on ``device``; NumPy results."""
    model = PixelCNN(cfg, seed=0, device=device)
    xp = model.xp
    labels = xp.asarray(labels_for(cfg))
    logits = model.forward(labels_to_inputs(labels, cfg.levels, model.dtype, xp))
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.input_grad = True  # the input gradient too, as viz.receptive_field asks for it
    dx = model.backward(dlogits)
    grads = {k: backend.to_numpy(g) for k, g in model.gradients().items()}
    grads["input"] = backend.to_numpy(dx)
    Adam(model.parameters()).step(model.gradients())
    return {
        "loss": loss,
        "grads": grads,
        "params": {k: backend.to_numpy(p) for k, p in model.parameters().items()},
        "eval": evaluate(model, labels_for(cfg, n=20, seed=2), batch_size=8),
        "cached": sample(model, 3, seed=0, method="cached"),
        "naive": sample(model, 3, seed=0, method="naive"),
        "completed": sample(model, 2, seed=0, known=labels_for(cfg, n=2), known_rows=3),
    }


@pytest.fixture(scope="module")
def on_cpu():
    """The reference results, computed once per configuration."""
    return {name: run_everything(cfg, "cpu") for name, cfg in CONFIGS.items()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_training_evaluation_and_sampling_match_the_cpu(device, name, on_cpu):
    got, want = run_everything(CONFIGS[name], device), on_cpu[name]
    close = dict(rtol=1e-4, atol=1e-6)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    for key in ("grads", "params"):
        assert got[key].keys() == want[key].keys()
        for k in want[key]:
            assert isinstance(got[key][k], np.ndarray)
            np.testing.assert_allclose(got[key][k], want[key][k], **close, err_msg=f"{key} {k}")
    assert got["eval"]["images"] == want["eval"]["images"]
    assert got["eval"]["nll_nats"] == pytest.approx(want["eval"]["nll_nats"], rel=1e-5)
    assert got["eval"]["bits_per_dim"] == pytest.approx(want["eval"]["bits_per_dim"], rel=1e-5)
    for method in ("cached", "naive", "completed"):
        assert got[method].dtype == np.uint8 and isinstance(got[method], np.ndarray)
        np.testing.assert_array_equal(got[method], want[method], err_msg=method)



def test_a_training_run_with_a_resume_matches_the_cpu(device, tiny_npz, tmp_path, monkeypatch):
    """``train`` end to end: steps, evaluations, checkpoints, a resume, the final samples.

    On the device, a run resumed after 4 steps is the uninterrupted run, bit for bit.
    Against the CPU: the stand-in does NumPy's arithmetic in NumPy's order, so it agrees
    to float32 rounding; a real GPU sums in cuBLAS's order, and Adam's first steps move a
    weight by about lr whatever the size of its gradient, so float32 runs part by up to
    a few 1e-4 in the loss after 6 steps on a GPU: it is held to 2e-3 there.
    The device runs split each batch over two threads whatever the machine (one part on
    a device); the CPU run they are compared with takes each batch in one part, as the
    devices do: in two parts its float32 sums part from the stand-in's by 2.4e-4 after 6
    steps where OpenBLAS picks its SkylakeX (AVX-512) kernels (under 1e-5 with its Haswell ones)."""
    monkeypatch.setattr(threads_module, "_threads", 2)

    def run(device, out, steps, resume=None):
        losses = []
        settings = TrainSettings(data=str(tiny_npz), filters=8, blocks=1, batch=16, lr=5e-3, samples=2, seed=3,
                                 steps=steps, device=device)
        train(settings, out=out, resume=resume, progress=False, log=lambda *a: None,
              on_step=lambda step, loss: losses.append(loss))
        return losses

    whole = run(device, tmp_path / "whole", 6)
    resumed = run(device, tmp_path / device, 4) + run(device, tmp_path / device, 6, resume=tmp_path / device)
    assert resumed == whole
    _, whole_params, whole_optim, _ = read_checkpoint(tmp_path / "whole" / "checkpoint.npz")
    _, got_params, got_optim, _ = read_checkpoint(tmp_path / device / "checkpoint.npz")
    for k in whole_params:
        np.testing.assert_array_equal(got_params[k], whole_params[k], err_msg=k)
    for k in whole_optim:
        np.testing.assert_array_equal(got_optim[k], whole_optim[k], err_msg=k)

    if device == "cpu":
        return  # the CPU against itself: the checks above
    monkeypatch.setattr(threads_module, "_threads", 1)  # the batch in one part, as on the device
    want = run("cpu", tmp_path / "cpu", 6)
    _, want_params, want_optim, _ = read_checkpoint(tmp_path / "cpu" / "checkpoint.npz")
    assert got_params.keys() == want_params.keys() and got_optim.keys() == want_optim.keys()
    if device == "gpu":
        assert resumed == pytest.approx(want, rel=2e-3)
        return
    assert resumed == pytest.approx(want, rel=1e-5)
    for k in want_params:
        np.testing.assert_allclose(got_params[k], want_params[k], rtol=1e-4, atol=1e-6, err_msg=k)
    for k in want_optim:
        np.testing.assert_allclose(got_optim[k], want_optim[k], rtol=1e-4, atol=1e-7, err_msg=k)


# ------------------------------------------------------------- the stand-in itself


@pytest.fixture
def strict_device():
    backend.register_device("strict", strict)
    return "strict"


def test_the_stand_in_refuses_implicit_host_copies():
    a = strict.arange(6.0).reshape(2, 3)
    host = np.ones(3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + host  # mixing a device and a host array, either way round
    with pytest.raises(TypeError, match="Unsupported type"):
        host + a[0]
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        a[0] = host

    def hidden_round_trip(x):
        return np.asarray(x) * 2

    np.testing.assert_array_equal(hidden_round_trip(np.arange(3.0)), [0, 2, 4])
    with pytest.raises(TypeError, match="Implicit conversion"):
        hidden_round_trip(a)


def test_the_stand_in_allows_what_cupy_allows():
    host = np.arange(6.0).reshape(2, 3)
    a = strict.asarray(host)
    host[0, 0] = 99  # asarray copied (a host-to-device transfer is a copy)
    assert float(a[0, 0]) == 0.0 and int(a.sum()) == 15 and bool(a[1, 2] == 5)
    back = a.get()
    assert isinstance(back, np.ndarray) and back is not a.get()
    np.testing.assert_array_equal(back, np.arange(6.0).reshape(2, 3))
    # NumPy's functions on a device array stay on the device, as with CuPy.
    for result in (np.maximum(a, 3), np.count_nonzero(a), a.max(), 2.0 * a, np.float32(2) * a):
        assert isinstance(result, strict.ndarray)
    # Scalars mix, NumPy arrays may index, out= and in-place ops keep the array.
    a[np.array([0]), 1] = np.float64(7)
    out = strict.empty((2, 2))
    assert strict.matmul(a, a.T, out=out) is out
    b = a
    b += 1
    assert b is a and float(a[0, 1]) == 8.0


def test_a_hidden_host_copy_in_a_layer_fails_on_the_stand_in(strict_device, monkeypatch):
    """Break a layer on purpose: a ReLU that computes on the host passes on the CPU only."""
    cfg = CONFIGS["grey"]
    monkeypatch.setattr(ReLU, "forward", lambda self, x: np.maximum(np.asarray(x), 0))
    x = labels_for(cfg, n=2).astype(np.float32)
    PixelCNN(cfg, device="cpu").forward(x)
    model = PixelCNN(cfg, device=strict_device)
    with pytest.raises(TypeError, match="Implicit conversion"):
        model.forward(model.xp.asarray(x))


def test_the_loss_indexes_device_arrays_with_device_arrays_only(strict_device, monkeypatch):
    """CuPy takes a NumPy array as an index by copying it to the GPU first, at every
    use: the loss of a training step builds its indices on the device, so it copies
    nothing from the host. (The stand-in lets NumPy indices through; here it refuses them.)"""
    real = strict._index

    def device_indices_only(key):
        for k in key if isinstance(key, tuple) else (key,):
            if isinstance(k, np.ndarray) and k.ndim > 0:
                raise TypeError("a host (NumPy) index array: a copy to the device at every use")
        return real(key)

    monkeypatch.setattr(strict, "_index", device_indices_only)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 3, 3, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 3, 3, 3)).astype(np.uint8)
    want_loss, want_d = softmax_cross_entropy(logits, labels)
    loss, d = softmax_cross_entropy(strict.asarray(logits), strict.asarray(labels))
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(d.get(), want_d, rtol=1e-6, atol=1e-7)


def test_backend_knows_the_registered_device(strict_device):
    a = strict.zeros(3)
    assert backend.get_xp(strict_device) is strict and backend.get_xp() is np  # the CPU unless asked
    assert backend.array_module(a) is strict and backend.device_of(a) == "strict"
    assert backend.array_module(np.zeros(3)) is np and backend.device_of(np.zeros(3)) == "cpu"
    assert isinstance(backend.to_numpy(a), np.ndarray)
    assert backend.chunk_rows(strict) == backend.chunk_rows(np)
    backend.synchronize(strict)  # nothing to wait for
    with pytest.raises(ValueError, match=r"^device must be one of 'cpu', 'gpu', 'strict', got 'tpu'$"):
        backend.get_xp("tpu")  # the GPU is named whether CuPy was loaded or not
    for name in ("cpu", "gpu"):
        with pytest.raises(ValueError, match=f"device '{name}' is built in and cannot be replaced"):
            backend.register_device(name, strict)


def _cupy(count, product=None):
    """A stand-in CuPy module: ``count`` GPUs (or the exception getDeviceCount raises), whose
    arrays are NumPy's; ``product`` (optional) raises in its matrix product, as a CuPy
    without its CUDA libraries does at the first kernel. It keeps the dtypes it was asked for."""
    def device_count():
        if isinstance(count, Exception):
            raise count
        return count

    def arange(n, dtype):
        cupy.dtypes.append(np.dtype(dtype))
        a = np.arange(n, dtype=dtype)
        return a if product is None else types.SimpleNamespace(reshape=lambda *shape: _Failing(product))

    cupy = types.ModuleType("cupy")
    cupy.__version__, cupy.float32, cupy.dtypes, cupy.arange = "13.6.0", np.float32, [], arange
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=device_count))
    return cupy


class _Failing:
    def __init__(self, error):
        self.error = error

    def __matmul__(self, other):
        raise self.error


def test_the_gpu_is_tried_once_with_a_kernel_and_each_failure_says_what_to_do(monkeypatch):
    monkeypatch.setattr(backend, "_devices", {k: v for k, v in backend._devices.items() if k != "gpu"})
    failures = [(_cupy(RuntimeError("cudaErrorInsufficientDriver")),
                 r"^--device gpu: CuPy is installed but no CUDA GPU can be used \(cudaErrorInsufficientDriver\)$"),
                (_cupy(0), r"^--device gpu: CuPy is installed but it sees no CUDA GPU$"),
                (_cupy(2, product=OSError("libnvrtc.so.13 not found")),
                 r"^--device gpu: CuPy 13.6.0 sees 2 GPU\(s\) but cannot compile or run a kernel \(OSError: "
                 r"libnvrtc.so.13 not found\)\. CuPy needs the CUDA libraries NVRTC and cuBLAS")]
    for cupy, words in failures:
        monkeypatch.setitem(sys.modules, "cupy", cupy)
        with pytest.raises(backend.DeviceError, match=words):
            backend.get_xp("gpu")
        assert "gpu" not in backend._devices  # tried again at the next call
    for count in (1, 3):
        cupy = _cupy(count)
        monkeypatch.setitem(sys.modules, "cupy", cupy)
        assert backend.get_xp("gpu") is cupy and cupy.dtypes == [np.float32]  # cuBLAS's float32, as in training
        assert backend.get_xp("gpu") is cupy and cupy.dtypes == [np.float32]  # kept: not tried again
        del backend._devices["gpu"]


def test_a_cupy_array_is_on_the_gpu_before_the_gpu_was_asked_for(monkeypatch):
    """A CuPy array made by the caller, with no get_xp("gpu") before it: CuPy is recognised by
    its module, imported then (here a stand-in module in its place)."""
    cupy = types.ModuleType("cupy")
    cupy.ndarray = type("ndarray", (), {"__module__": "cupy._core.core"})
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.delitem(backend._devices, "gpu", raising=False)
    assert backend.array_module(cupy.ndarray()) is cupy and backend.device_of(cupy.ndarray()) == "gpu"


def test_adam_checks_a_devices_arrays_with_that_devices_own_functions(monkeypatch):
    """A registered device needs only the part of NumPy's API that minipixel calls on its module:
    its arrays need not take NumPy's own functions (these refuse them: ``__array_ufunc__ = None``)."""
    class Opaque:
        __array_ufunc__ = None

        def __init__(self, a):
            self.a = a

        def all(self):
            return Opaque(self.a.all())

        def get(self):
            return np.array(self.a)

    device = types.SimpleNamespace(ndarray=Opaque, zeros_like=lambda p: Opaque(np.zeros_like(p.a)),
                                   isfinite=lambda p: Opaque(np.isfinite(p.a)))
    monkeypatch.setitem(backend._devices, "opaque", device)
    for values, finite in (([1.0, -2.0], True), ([1.0, np.inf], False), ([np.nan, 0.0], False)):
        assert Adam({"w": Opaque(np.array(values))}).finite() is finite


def test_the_stand_in_counts_every_op(strict_device):
    model = PixelCNN(CONFIGS["grey"], device=strict_device)
    x = strict.zeros((2, 8, 8, 1), dtype=np.float32)
    strict.counts.clear()
    model.forward(x)
    assert strict.counts["matmul"] >= 5  # one per convolution and chunk, at least
    assert sum(strict.counts.values()) > strict.counts["matmul"]
    for method in ("cached", "naive"):
        strict.counts.clear()
        sample(model, 2, method=method)
        assert strict.counts["sync"] == 0, f"{method}: the sampler waits for the device during sampling"
        assert strict.counts["get"] == 1, f"{method}: the images should come back to the host once"


def test_the_stand_in_never_imports_cupy():
    code = (
        "import sys; from minipixel import backend; from minipixel.testing import strict; "
        "from minipixel.model import PixelCNN, PixelCNNConfig; "
        "backend.register_device('strict', strict); "
        "m = PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1), device='strict'); "
        "m.forward(strict.zeros((1, 4, 4, 1), dtype='float32')); "
        "assert 'cupy' not in sys.modules, 'cupy was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_a_float32_training_step_computes_in_float32_only(arch, monkeypatch):
    # Every operand and result of every op of a training step (forward, loss,
    # backward, Adam) is float32: no float64 array, and no float64 NumPy scalar
    # (which under NumPy 2's promotion rules, and CuPy's, turns an op into float64).
    from dataclasses import replace

    from minipixel.model import build_model
    from minipixel.train import train_step

    backend.register_device("strict", strict)
    cfg = replace(CONFIGS["grey"], arch=arch)
    model = build_model(cfg, device="strict")
    optimizer = Adam(model.parameters(), decay=0.999)
    labels = strict.asarray(labels_for(cfg))
    x = labels_to_inputs(labels, cfg.levels, model.dtype, strict)
    train_step(model, optimizer, x, labels)
    strict.dtypes.clear()
    train_step(model, optimizer, x, labels)
    assert strict.dtypes["float32"] > 100
    assert set(strict.dtypes) == {"float32"}, strict.dtypes


def test_gpu_launch_counts_of_the_reference_model():
    # Counted on the stand-in with the GPU's whole-batch chunks (bench.launch_counts):
    # each op but a view or an allocation is one kernel launch on CuPy. A training
    # step of the reference model at batch 64 (forward, loss, backward, Adam) takes
    # at most 250, against 1,377 before the one-gather im2col/col2im, the packed Adam
    # and the trimmed backward. A sampled sub-pixel: at most 25 (81 before the fused
    # kernels of ``fused``, 116 before the one-slice current-row taps).
    from minipixel.bench import launch_counts

    counts = launch_counts("pixelcnn", sample_images=4, sample_rows=2)
    assert counts["train_step"] <= 250, counts
    assert counts["per_sampled_sub_pixel"] <= 25, counts
    # The wavefront's launches cover several positions each: 13.3 per sub-pixel of a
    # whole image (21.6 before its indices were made once per image and its draw fused).
    assert counts["per_sampled_sub_pixel_wavefront"] <= 14, counts


def test_evaluation_on_the_gpu_hands_back_the_logits_without_copying_them(strict_device):
    # On the GPU the batch is one part: its logits (the largest array of a pass) come back as
    # the forward made them, with no launch and no memory spent joining one part to nothing.
    from minipixel import evaluate as evaluate_module

    cfg = CONFIGS["rgb"]
    model = PixelCNN(cfg, device=strict_device)
    labels = strict.asarray(labels_for(cfg, n=4))
    x = labels_to_inputs(labels, cfg.levels, model.dtype, strict)
    strict.counts.clear()
    with model.inference():
        want = model.forward(x)
    forward_launches = strict.launches()
    strict.counts.clear()
    got = evaluate_module.forward(model, x)
    assert strict.launches() == forward_launches and strict.counts["concatenate"] == 0, strict.counts
    np.testing.assert_array_equal(got.get(), want.get())


def test_the_stand_in_counts_in_place_ops_as_launches_and_views_as_none():
    a = strict.zeros((4, 3))  # one launch: a fill
    strict.counts.clear()
    a += 1  # a kernel, though it hands back a itself
    strict.maximum(a, 0, out=a)
    b = a.reshape(3, 4)[1:]  # two views
    b.T  # a view
    a[a > 1] = 0  # a compare, a masked assignment
    assert strict.launches() == 4, strict.counts


def test_the_gpu_check_script_runs_on_the_stand_in(tmp_path):
    # scripts/gpu_check.py is run for the first time on a lent GPU, with no
    # second chance: run it here end to end on the stand-in (its --quick set).
    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(script), "--device", "strict", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["finished"] and report["passed"] and len(report["checks"]) == 13
    assert list(report["checks"])[-1] == "gradcheck_float64" and report["timings"]["passed"]
    assert report["graph_sampler"]["passed"] and report["graph_sampler"]["images_equal"]
    assert all(check["passed"] for check in report["checks"].values())
    assert report["timings"]["batches"]["4"]["train_images_per_s"] > 0
