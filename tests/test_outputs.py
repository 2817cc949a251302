"""Output files: never written over a folder, a device, a FIFO, a link to one, a file the
command reads, a checkpoint or a run's own files; every failure to write is one line."""
import errno
import os

import pytest

from minipixel.cli import main


@pytest.fixture
def trained(tiny_npz, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--steps", "2", "--filters", "8", "--blocks", "1",
                 "--samples", "0", "--out", str(out), "--quiet"]) == 0
    return out


def _refused(capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    return err


def test_sample_refuses_outputs_it_must_not_write_over_before_it_samples(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("minipixel.sampling.sample", lambda *a, **k: pytest.fail("sampled before refusing"))
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    (tmp_path / "link.png").symlink_to(fifo)
    (tmp_path / "folder.png").mkdir()
    ckpt = trained / "checkpoint.npz"
    before = ckpt.read_bytes()
    sample = ["sample", "--checkpoint", str(trained), "-n", "1", "--out"]
    _refused(capsys, sample + [str(tmp_path / "folder.png")], "folder.png: is a folder; give a file name")
    _refused(capsys, sample + [str(fifo)], "fifo.png: is not an ordinary file")  # and does not hang on it
    _refused(capsys, sample + [str(tmp_path / "link.png")], "link.png: is not an ordinary file")
    _refused(capsys, sample + [str(ckpt)], "checkpoint.npz: is the file this command reads")
    (tmp_path / "other.npz").write_bytes(before)
    _refused(capsys, sample + [str(tmp_path / "other.npz")], "other.npz: is a minipixel checkpoint")
    _refused(capsys, sample + [str(trained / "metrics.jsonl")], "is one of the files of the run in")
    (tmp_path / "s.npy").mkdir()
    _refused(capsys, sample + [str(tmp_path / "s.png"), "--npy"], "s.npy: is a folder")
    (tmp_path / "afile").write_text("")
    _refused(capsys, sample + [str(tmp_path / "b.png"), "--png-dir", str(tmp_path / "afile")], "is a file; give a folder")
    assert ckpt.read_bytes() == before and os.path.exists(fifo) and not (tmp_path / "s.png").exists()


def test_an_ordinary_file_is_replaced(trained, tmp_path):
    out = tmp_path / "old.png"
    out.write_bytes(b"an old picture")
    assert main(["sample", "--checkpoint", str(trained), "-n", "1", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_complete_and_show_refuse_the_same(trained, tiny_npz, tmp_path, capsys):
    _refused(capsys, ["complete", "--checkpoint", str(trained), "--data", str(tiny_npz), "--keep-rows", "3",
                      "--out", str(tiny_npz)], "bars.npz: is the file this command reads")
    _refused(capsys, ["show", "masks", "--out", str(tmp_path)], "is a folder")
    _refused(capsys, ["show", "field", "--checkpoint", str(trained), "--out", str(trained / "checkpoint.npz")],
             "is the file this command reads")
    assert main(["show", "curve", "--run", str(trained)]) == 0  # the run's own curve, redrawn: its default
    _refused(capsys, ["show", "curve", "--run", str(trained), "--out", str(trained / "metrics.jsonl")], "files of the run")


def test_a_failed_write_is_one_line_naming_the_path(trained, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("")
    _refused(capsys, ["show", "masks", "--out", str(tmp_path / "file" / "masks.png")],
             f"masks.png: {tmp_path / 'file'} is a file, not a folder")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.png"))

    monkeypatch.setattr("minipixel.viz.atomic_write", full)
    _refused(capsys, ["show", "masks", "--out", str(tmp_path / "x.png")],
             f"minipixel show: error: {tmp_path / 'x.png'}: No space left on device")


def test_an_empty_pretrained_name_is_one_line(capsys):
    _refused(capsys, ["sample", "--pretrained", "", "-n", "1"], "--pretrained: no model named ''")


def test_long_work_states_its_estimate_before_it_starts(trained, tiny_npz, tmp_path, capsys, monkeypatch):
    from minipixel.evaluate import estimate_seconds
    from minipixel.model import PixelCNN, PixelCNNConfig

    model = PixelCNN(PixelCNNConfig(height=8, width=8, filters=4, blocks=0))
    one = estimate_seconds(model, 1)
    assert 0 < one and estimate_seconds(model, 10, "naive") > estimate_seconds(model, 10, "cached") > 10 * one / 2
    order = []
    monkeypatch.setattr("minipixel.sampling.estimate_seconds", lambda *a: 600.0)
    monkeypatch.setattr("minipixel.evaluate.estimate_seconds", lambda *a: 600.0)
    from minipixel.options import say_estimate

    def said(seconds, what):
        order.append(("said", what))
        say_estimate(seconds, what)

    monkeypatch.setattr("minipixel.sampling.say_estimate", said)
    monkeypatch.setattr("minipixel.evaluate.say_estimate", said)
    real_draw = __import__("minipixel.sampling", fromlist=["sample_cached"]).sample_cached
    monkeypatch.setattr("minipixel.sampling.sample_cached", lambda *a, **k: order.append("sampled") or real_draw(*a, **k))
    assert main(["sample", "--checkpoint", str(trained), "-n", "2", "--out", str(tmp_path / "s.png")]) == 0
    err = capsys.readouterr().err
    assert "sampling 2 images of 8x8 (cached): about 10 minutes (estimated from one forward pass)" in err
    assert order == [("said", "sampling 2 images of 8x8 (cached)"), "sampled"]
    assert main(["eval", "--checkpoint", str(trained), "--data", str(tiny_npz)]) == 0
    assert order[-1] == ("said", "evaluating 64 images")


def test_show_field_names_the_option_outside_the_models_images(capsys):
    for argv, message in ((["--row", "100"], "--row: expected an int from 0 to 27 for this model's 28x28x1 images, got 100"),
                          (["--channel", "2"], "--channel: expected an int from 0 to 0 for this model's 28x28x1 "
                                               "images, got 2")):
        assert main(["show", "field", "--pretrained", "binarized-mnist", *argv]) == 2
        assert capsys.readouterr().err == f"minipixel show: error: {message}\n"
