"""The minipixel command, run in-process."""
import json

import numpy as np
import pytest

from minipixel import gradcheck
from minipixel.cli import main


@pytest.fixture
def trained(tiny_npz, tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_npz), "--steps", "4", "--filters", "8", "--blocks", "1",
                 "--batch", "16", "--samples", "4", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_train_sample_eval(trained, tiny_npz, tmp_path, capsys):
    assert (trained / "checkpoint.npz").exists() and (trained / "samples.png").exists()
    png = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", str(trained / "checkpoint.npz"), "-n", "5", "--seed", "0",
                 "--out", str(png), "--npy"]) == 0
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (5, 8, 8, 1) and images.max() <= 1
    assert main(["sample", "--checkpoint", str(trained), "-n", "5", "--seed", "0", "--out",
                 str(tmp_path / "t.png"), "--npy", "--method", "naive"]) == 0
    assert np.array_equal(np.load(tmp_path / "t.npy"), images)  # same seed, either sampler
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(trained / "checkpoint.npz"), "--data", str(tiny_npz), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 64 and result["nll_nats"] > 0
    assert result["bits_per_dim"] == pytest.approx(result["nll_nats"] / (64 * np.log(2)))


def test_resume_refuses_changed_settings(trained, capsys):
    code = main(["train", "--resume", str(trained), "--filters", "16", "--steps", "8", "--quiet"])
    assert code == 1
    assert "only --epochs, --steps, --device and --out" in capsys.readouterr().err
    assert main(["train", "--resume", str(trained), "--steps", "8", "--quiet"]) == 0


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "nope.npz"), "--data", "x.npz"]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["train", "--data", "binarized-mnist:train", "--data-dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "binarized_mnist_train.amat" in err and "http://www.cs.toronto.edu" in err


def test_gpu_without_cupy_says_so(trained, capsys):
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    assert main(["sample", "--checkpoint", str(trained), "--device", "gpu", "--out", "x.png"]) == 1
    assert "needs CuPy" in capsys.readouterr().err


def test_gradcheck_command(monkeypatch, capsys):
    cases = dict(gradcheck.cases())
    monkeypatch.setattr(gradcheck, "cases", lambda: [("relu", cases["relu"])])
    assert main(["gradcheck"]) == 0
    assert "relu" in capsys.readouterr().out
    monkeypatch.setattr(gradcheck, "cases", lambda: [("broken", lambda: {"x": 0.5})])
    assert main(["gradcheck"]) == 1
    assert "FAIL" in capsys.readouterr().out
