"""--pretrained NAME and `minipixel pretrained`: installed models used by name, as checkpoints."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from minipixel import pretrained
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
    assert capsys.readouterr().out.startswith("No pretrained models are installed yet")
    assert main(["sample", "--pretrained", "binarized-mnist"]) == 1
    assert "(none is installed yet;" in capsys.readouterr().err
