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
from minipixel.checkpoint import read_checkpoint, save_checkpoint
from minipixel.cli import main
from minipixel.model import PixelCNNConfig, build_model


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


def test_an_index_of_other_shapes_is_refused_and_an_unknown_name_lists_every_model(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    for entries in ([{"file": "a.npz"}], {"a": "a.npz"}, {"a": {"file": "a.npz"}, "b": {"about": "no file"}}):
        (tmp_path / "index.json").write_text(json.dumps(entries))
        with pytest.raises(ValueError, match="expected an object of models, each with a 'file'; reinstall"):
            pretrained.index()
    (tmp_path / "index.json").write_text(json.dumps({"b": {"file": "b.npz"}, "a": {"file": "a.npz"}}))
    with pytest.raises(ValueError, match=r"no model named 'c' \(installed: a, b; `minipixel pretrained`"):
        pretrained.path("c")


def test_with_nothing_installed_the_list_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "nothing")
    assert main(["pretrained"]) == 0
    assert capsys.readouterr().out == (f"No pretrained models are installed: {tmp_path / 'nothing' / 'index.json'} "
                                       "is missing or empty (minipixel ships them; reinstall it). See the README's "
                                       "\"Pretrained models\".\n")
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


def _run(folder, config, state):
    """A run folder whose best.npz holds an untrained model of ``config`` and the training ``state``."""
    folder.mkdir()
    save_checkpoint(folder / "best.npz", build_model(config), state=state)
    return folder


def test_install_describes_a_gated_conditional_colour_run_line_by_line(tmp_path, monkeypatch):
    config = PixelCNNConfig(height=6, width=5, channels=3, levels=4, filters=6, blocks=2, input_kernel=5,
                            arch="gated", classes=10)
    state = {"step": 12345, "epoch": 2.5, "seconds": 5400.0, "seed": 3, "best_valid_nll": 100.0,
             "pending_losses": [1.5], "settings": {"data": "fashion-mnist:train", "valid": "/far/away/valid.npz",
                                                   "batch": 16}}
    run = _run(tmp_path / "run", config, state)
    models = tmp_path / "new" / "models"  # made with the folders above it
    entry = pretrained.install("fashion", run, "bash make.sh", models)
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    expected = {
        "file": "fashion.npz",
        "about": ("Gated PixelCNN, 6 filters per stack, a 5x5 first layer and 2 more gated layers; 6x5x3, 4 levels, "
                  "conditional on 10 classes (sample --class K)"),
        "classes": ", ".join(f"{k} {name}" for k, name in enumerate(names)),
        "data": "trained on fashion-mnist:train, validated on valid.npz",
        "training": "12,345 steps of batch 16 (2.50 epochs), 90 minutes on the CPU",
        "results": f"100.00 nats/image ({100 / (6 * 5 * 3 * np.log(2)):.4f} bits/dim) on the validation data",
        "reproduce": "bash make.sh"}
    assert entry == expected
    # the shipped file keeps what describes the run, not the losses pending at its last step
    assert read_checkpoint(models / "fashion.npz")[3] == {k: v for k, v in state.items() if k != "pending_losses"}
    monkeypatch.setattr(pretrained, "FOLDER", models)
    assert pretrained.index() == {"fashion": expected}
    assert pretrained.describe() == [
        "fashion", f"    about:     {expected['about']}", f"    classes:   {expected['classes']}",
        f"    data:      {expected['data']}", f"    training:  {expected['training']}",
        f"    results:   {expected['results']}", "    reproduce: bash make.sh"]


def test_a_run_that_recorded_little_is_described_with_question_marks(tmp_path):
    plain = PixelCNNConfig(height=4, width=4, filters=4, blocks=1, input_kernel=3)
    bare = pretrained.install("bare", _run(tmp_path / "bare", plain, {"step": 7}), "x", tmp_path)
    assert {k: bare[k] for k in ("data", "training", "results")} == {
        "data": "trained on ?, validated on a 10% hold-out of the training data",
        "training": "7 steps of batch ? (0.00 epochs), 0 minutes on the CPU", "results": "not evaluated"}
    # a dataset with class names, but an unconditional model: no classes to list
    named = pretrained.install("named", _run(tmp_path / "named", plain, {"step": 7, "settings": {"data": "mnist:train"}}),
                               "x", tmp_path)
    assert "classes" not in named and named["data"].startswith("trained on mnist:train, ")
    assert named["about"] == "PixelCNN, 4 filters, a 3x3 mask-A layer and 1 residual blocks; 4x4x1, 2 levels"


def test_the_index_file_is_written_sorted_and_indented(tmp_path):
    """index.json is kept in the repository: one stable layout, so that a new model is a small diff."""
    plain = PixelCNNConfig(height=4, width=4, filters=4, blocks=1, input_kernel=3)
    run = _run(tmp_path / "run", plain, {"step": 1})
    for name in ("zeta", "alpha"):
        pretrained.install(name, run, "x", tmp_path / "models")
    text = (tmp_path / "models" / "index.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert text.startswith('{\n  "alpha": {\n    "about": "PixelCNN, 4 filters')
