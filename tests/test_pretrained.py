"""--pretrained NAME and `minipixel pretrained`: installed models used by name, as checkpoints."""
import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minipixel import pretrained
from minipixel.checkpoint import read_checkpoint
from minipixel.cli import main


@pytest.fixture
def installed(tiny_npz, tmp_path, monkeypatch):
    """A models folder holding one small trained model, "bars", with its index entry."""
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--steps", "3", "--filters", "8", "--blocks", "1",
                 "--samples", "0", "--out", str(run), "--quiet"]) == 0
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(run / "checkpoint.npz", folder / "bars.npz")
    (folder / "index.json").write_text(json.dumps({"bars": {"file": "bars.npz", "about": "PixelCNN, 8 filters",
                                                            "results": "no claims"}}))
    monkeypatch.setattr(pretrained, "FOLDER", folder)
    return run / "checkpoint.npz"


def test_a_pretrained_model_samples_as_its_checkpoint_does(installed, tmp_path, capsys):
    by_name, by_file = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["sample", "--pretrained", "bars", "-n", "3", "--out", str(by_name)]) == 0
    assert main(["sample", "--checkpoint", str(installed), "-n", "3", "--out", str(by_file)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(by_name)), np.asarray(Image.open(by_file)))


def test_eval_complete_and_field_take_a_pretrained_model(installed, tiny_npz, tmp_path, capsys):
    results = []
    for model in (["--pretrained", "bars"], ["--checkpoint", str(installed)]):
        capsys.readouterr()
        assert main(["eval", *model, "--data", str(tiny_npz), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out)["nll_nats"])
    assert results[0] == results[1]
    assert main(["complete", "--pretrained", "bars", "--data", str(tiny_npz), "-n", "2", "--keep-rows", "4",
                 "--samples", "2", "--out", str(tmp_path / "c.png")]) == 0
    assert main(["show", "field", "--pretrained", "bars", "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "c.png").exists() and (tmp_path / "f.png").exists()


def test_the_list_and_the_errors(installed, tmp_path, capsys):
    assert main(["pretrained"]) == 0
    assert capsys.readouterr().out.splitlines() == ["bars", "    about:     PixelCNN, 8 filters",
                                                    "    results:   no claims"]
    assert main(["sample", "--pretrained", "digits"]) == 1
    assert capsys.readouterr().err.strip() == ("minipixel sample: error: --pretrained: no model named 'digits' "
                                               "(installed: bars; `minipixel pretrained` lists them)")
    with pytest.raises(SystemExit) as stop:  # one or the other, not both
        main(["sample", "--pretrained", "bars", "--checkpoint", str(installed)])
    assert stop.value.code == 2
    (pretrained.FOLDER / "bars.npz").unlink()
    assert main(["eval", "--pretrained", "bars", "--data", "x.npz"]) == 1
    assert "bars.npz is missing; reinstall minipixel" in capsys.readouterr().err
    (pretrained.FOLDER / "index.json").write_text("{not json")
    assert main(["pretrained"]) == 1
    assert "index.json: not valid JSON" in capsys.readouterr().err


def test_with_nothing_installed_the_list_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "nothing")
    assert main(["pretrained"]) == 0
    assert capsys.readouterr().out.startswith("No pretrained models are installed: ")
    assert main(["sample", "--pretrained", "binarized-mnist"]) == 1
    assert "(none is installed;" in capsys.readouterr().err


def test_install_puts_a_runs_best_model_in_with_the_figures_it_recorded(tiny_npz, tmp_path, monkeypatch, capsys):
    run, models = tmp_path / "run", tmp_path / "models"
    assert main(["train", "--data", str(tiny_npz), "--steps", "4", "--eval-every", "2", "--filters", "8",
                 "--blocks", "1", "--samples", "0", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "best.npz"), "--data", str(tiny_npz), "--json"]) == 0
    (run / "test.json").write_text(capsys.readouterr().out)
    script = Path(__file__).resolve().parents[1] / "scripts" / "install_pretrained.py"
    spec = importlib.util.spec_from_file_location("install_pretrained", script)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["bars", str(run), "--reproduce", "bash make-bars.sh", "--models-dir", str(models)]) == 0
    capsys.readouterr()
    best = read_checkpoint(run / "best.npz")
    config, params, optim, state = read_checkpoint(models / "bars.npz")
    assert config == best[0] and not optim and state["step"] == best[3]["step"]
    for name, value in best[1].items():
        np.testing.assert_array_equal(params[name], value)
    assert (models / "bars.npz").stat().st_size < (run / "best.npz").stat().st_size / 2  # no Adam moments
    assert _deflated(models / "bars.npz")
    monkeypatch.setattr(pretrained, "FOLDER", models)
    test = json.loads((run / "test.json").read_text())
    entry = pretrained.index()["bars"]
    assert entry["reproduce"] == "bash make-bars.sh" and entry["file"] == "bars.npz"
    assert entry["results"] == (f"{best[3]['best_valid_nll']:.2f} nats/image ({best[3]['best_valid_nll'] / (64 * np.log(2)):.4f}"
                                f" bits/dim) on the validation data; {test['nll_nats']:.2f} nats/image "
                                f"({test['bits_per_dim']:.4f} bits/dim) on {test['images']:,} test images")
    assert entry["about"].startswith("PixelCNN, 8 filters, a 7x7 mask-A layer and 1 residual blocks; 8x8x1, 2 levels")
    # the data by file name: where the file lay on the training machine is no use to a user
    assert entry["data"] == f"trained on {tiny_npz.name}, validated on a 10% hold-out of the training data"
    assert main(["pretrained"]) == 0 and capsys.readouterr().out.startswith("bars\n    about:     PixelCNN, 8 filters")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["sample", "--pretrained", "bars", "-n", "2", "--out", str(a)]) == 0
    assert main(["sample", "--checkpoint", str(run / "best.npz"), "-n", "2", "--out", str(b)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    # a second model joins the first; bad names and folders are refused with one line
    assert pretrained.install("bars-2", run, "again", models)["reproduce"] == "again"
    assert sorted(pretrained.index()) == ["bars", "bars-2"]
    with pytest.raises(ValueError, match="model name: expected letters, digits"):
        pretrained.install("../evil", run, "x", models)
    with pytest.raises(FileNotFoundError, match="no such file; install takes a run folder with a best.npz"):
        pretrained.install("none", tmp_path, "x", models)


def _deflated(path):
    """Every member of the .npz file ``path`` is deflated (``np.savez_compressed``)."""
    with zipfile.ZipFile(path) as archive:
        return all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())


def test_every_model_shipped_in_the_package_loads_and_draws_what_its_entry_says(tmp_path):
    shipped = pretrained.index()
    if not shipped:
        pytest.skip("no model is installed in minipixel/models yet")
    for name, entry in shipped.items():
        config, params, optim, state = read_checkpoint(pretrained.path(name))
        assert not optim, f"{name}: the shipped file should hold no optimizer state"
        # a few MB at most: the 64-filter, 20-layer binarized-MNIST model (1.76 M live
        # parameters, its masked taps stored as zeros) is 6.8 MiB deflated
        assert pretrained.path(name).stat().st_size < 8 * 2**20, f"{name}: a shipped model is a few MB at most"
        assert _deflated(pretrained.path(name)), f"{name}: shipped models are stored deflated (install does it)"
        assert f"{config.levels} levels" in entry["about"] and f"{config.filters} filters" in entry["about"]
        assert f"{state['best_valid_nll']:.2f} nats/image" in entry["results"]
        out = tmp_path / f"{name}.png"
        if config.classes:
            for k in (0, config.classes - 1):
                assert main(["sample", "--pretrained", name, "-n", "1", "--class", str(k), "--out", str(out)]) == 0
        else:
            assert main(["sample", "--pretrained", name, "-n", "1", "--out", str(out)]) == 0
        assert out.exists()
