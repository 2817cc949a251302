"""The minipixel command, run in-process."""
import json
import os

import numpy as np
import pytest

from minipixel import gradcheck
from minipixel.checkpoint import read_checkpoint
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
    assert ("only --epochs, --steps, --minutes, --device, --lr, --lr-decay, --ema, --dropout, --eval-every, "
            "--save-every and --out may be given with it (got --filters)") in capsys.readouterr().err
    assert main(["train", "--resume", str(trained), "--steps", "8", "--quiet"]) == 0
    # Polyak averaging may start at a resume; its decay is checked like every number
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(trained), "--steps", "9", "--ema", "1.5", "--quiet"])
    assert "argument --ema: expected a number from 0 to 0.999999, got '1.5'" in capsys.readouterr().err
    assert main(["train", "--resume", str(trained), "--steps", "9", "--ema", "0.99", "--quiet"]) == 0
    assert read_checkpoint(trained)[3]["settings"]["ema"] == 0.99 and int(read_checkpoint(trained)[2]["average_t"]) == 1


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
    asked = []
    monkeypatch.setattr(gradcheck, "cases", lambda device: asked.append(device) or [("relu", cases["relu"])])
    assert main(["gradcheck"]) == 0
    assert "relu" in capsys.readouterr().out
    monkeypatch.setattr(gradcheck, "cases", lambda device: [("broken", lambda: {"x": 0.5})])
    assert main(["gradcheck"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert asked == ["cpu"]
    monkeypatch.undo()
    import importlib.util

    if importlib.util.find_spec("cupy") is None:  # without CuPy, --device gpu says how to get it, in one line
        assert main(["gradcheck", "--device", "gpu"]) == 1
        assert "needs CuPy" in capsys.readouterr().err


def test_complete_from_images_and_from_data(trained, tiny_npz, tmp_path, capsys):
    from PIL import Image

    from conftest import bars

    paths = []
    for k, image in enumerate(bars(2, seed=5)):
        paths.append(tmp_path / f"digit{k}.png")
        Image.fromarray(image[:, :, 0] * 255).save(paths[-1])
    out = tmp_path / "done.png"
    args = ["complete", "--checkpoint", str(trained), "--keep-rows", "3", "--samples", "3", "--out", str(out)]
    assert main(args + ["--image", str(paths[0]), "--image", str(paths[1])]) == 0
    grid = np.asarray(Image.open(out))
    # 2 rows of (given, 3 completions, original), 8x8 images scaled 4x with 1-pixel gaps, RGB for the hatch
    assert grid.shape == (2 * 33 + 1, 5 * 33 + 1, 3)
    original = np.asarray(Image.open(paths[0]))
    kept = grid[1 : 1 + 12 : 4, 1 + 33 : 1 + 33 + 32 : 4, 0]  # top 3 rows of the first completion
    assert np.array_equal(kept, original[:3])
    assert main(args + ["--data", str(tiny_npz), "-n", "2"]) == 0
    Image.new("L", (9, 8)).save(tmp_path / "wrong.png")
    assert main(args + ["--image", str(tmp_path / "wrong.png")]) == 1
    assert "expected a 8x8 image for this model, got 8x9" in capsys.readouterr().err
    assert main(args + ["--image", str(tmp_path / "nothere.png")]) == 1
    assert capsys.readouterr().err.strip().endswith("nothere.png: no such image file")


@pytest.mark.parametrize("levels", [2, 8])
def test_completion_picture_hatches_the_lost_rows_at_any_levels(levels):
    from minipixel.viz import HIDDEN_HATCH, completion_grid

    rng = np.random.default_rng(0)
    originals = rng.integers(0, levels, (2, 8, 8, 1)).astype(np.uint8)
    completed = rng.integers(0, levels, (2, 3, 8, 8, 1)).astype(np.uint8)
    grid = completion_grid(originals, completed, 5, levels)
    given = grid[1:33, 1:33]  # the first tile: 8x8 scaled 4x
    hatch = {tuple(c) for c in given[20:].reshape(-1, 3)}  # rows 5.. of the image
    assert hatch == set(HIDDEN_HATCH)  # both blues, and nothing else
    assert all(len(set(c)) == 1 for c in given[:20].reshape(-1, 3))  # the kept rows: grey levels
    assert all(len(set(c)) == 1 for c in grid[1:33, 34:66].reshape(-1, 3))  # completions have no hatch


def test_complete_takes_images_at_random_by_seed_or_by_index(trained, tmp_path, monkeypatch):
    from minipixel.data import ImageSet
    from minipixel.datasets import write_npz

    images = np.zeros((40, 8, 8, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(40) % 2  # tell the images apart by their class-ordered content
    write_npz(tmp_path / "ordered.npz", ImageSet(images, 1, "ordered", classes=np.repeat(np.arange(4), 10)))
    taken = []
    import minipixel.sampling as sampling

    original_complete = sampling.complete
    monkeypatch.setattr(sampling, "complete", lambda model, originals, *a, **k: (
        taken.append(originals.copy()), original_complete(model, originals, *a, **k))[1])
    args = ["complete", "--checkpoint", str(trained), "--data", str(tmp_path / "ordered.npz"), "--keep-rows", "3",
            "--samples", "1", "--out", str(tmp_path / "c.png")]
    assert main(args + ["-n", "8"]) == 0 and main(args + ["-n", "8", "--seed", "1"]) == 0
    first, other = np.random.default_rng(0).choice(40, 8, replace=False), np.random.default_rng(1).choice(40, 8, replace=False)
    assert np.array_equal(taken[0][:, 0, 0, 0], first % 2) and np.array_equal(taken[1][:, 0, 0, 0], other % 2)
    assert len(set(first // 10)) > 1  # not all from one class, as the first 8 would be
    assert main(args + ["--index", "3", "--index", "0"]) == 0
    assert taken[2][:, 0, 0, 0].tolist() == [1, 0]
    assert main(args + ["--index", "40"]) == 2  # a range the data sets: a usage error


def test_show_curve_takes_the_run_folder_or_its_checkpoint(trained, tmp_path, capsys):
    assert main(["show", "curve", "--run", str(trained / "checkpoint.npz"), "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").exists()
    assert main(["show", "curve", "--run", str(tmp_path / "nothere")]) == 1
    assert capsys.readouterr().err.strip().endswith("nothere: no such run folder; expected a run folder written by "
                                                    "minipixel train")


def test_learning_curve_says_what_train_is():
    # The caption under the title (grey text) explains the train curve: an average taken while learning.
    from minipixel.viz import learning_curve

    rows = [{"epoch": e, "train_nll_nats": 100 - e, "valid_nll_nats": 90 - e, "valid_bits_per_dim": 0.2}
            for e in (1, 2, 3)]
    band = np.asarray(learning_curve(rows))[30:48]
    assert (np.abs(band.astype(int) - 90).max(axis=2) < 40).sum() > 200  # grey caption pixels


def test_version(capsys):
    from minipixel import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"minipixel {__version__}"


def _all_options(parser, path=()):
    """(command path, action) for every option of every (sub)command."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_options(sub, path + (name,))
        elif action.option_strings:
            yield path, action


def test_every_option_says_its_default():
    # What --help promises (README: "lists every option with its default"): each option
    # that takes a value says what happens without it, "(default ...)" or "default: ...".
    import argparse

    from minipixel.cli import build_parser

    silent = []
    for path, action in _all_options(build_parser()):
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._StoreTrueAction,
                               argparse._StoreConstAction)) or action.required or path == ("complete",) and \
                action.dest in ("image", "data"):  # one of the two is required
            continue
        if "default" not in (action.help or ""):
            silent.append(f"{' '.join(path)} {action.option_strings[-1]}")
    assert not silent, silent


def test_data_that_does_not_fit_the_checkpoint_is_explained(trained, tmp_path, capsys):
    from minipixel.data import ImageSet
    from minipixel.datasets import write_npz

    rng = np.random.default_rng(0)
    files = {"rgb": ImageSet(rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8), 255, "rgb"),
             "big": ImageSet(rng.integers(0, 2, (4, 12, 12, 1), dtype=np.uint8), 1, "big")}
    for name, images in files.items():
        write_npz(tmp_path / f"{name}.npz", images)
    run = str(trained)
    wanted = {"rgb": rf"rgb.npz: the images are 8x8 RGB, but the checkpoint {run} was trained on 8x8 grey images; "
                     "the model draws grey images and needs grey data",
              "big": rf"big.npz: the images are 12x12 grey, but the checkpoint {run} was trained on 8x8 grey images; "
                     "for an image folder, --size 8 crops and resizes every image to fit"}
    for name, words in wanted.items():
        data = str(tmp_path / f"{name}.npz")
        for args in (["eval", "--checkpoint", run, "--data", data],
                     ["complete", "--checkpoint", run, "--data", data, "--keep-rows", "3", "--out",
                      str(tmp_path / "c.png")]):
            assert main(args) == 1
            err = capsys.readouterr().err.strip()
            assert err == f"minipixel {args[0]}: error: {data.rsplit('/', 1)[0]}/{words}", err
    # binary data under a model of more levels
    colour = tmp_path / "colour"
    assert main(["train", "--data", str(tmp_path / "rgb.npz"), "--levels", "4", "--filters", "6", "--blocks", "1",
                 "--steps", "1", "--samples", "0", "--out", str(colour), "--quiet"]) == 0
    write_npz(tmp_path / "binary.npz", ImageSet(rng.integers(0, 2, (4, 8, 8, 3), dtype=np.uint8), 1, "binary"))
    assert main(["eval", "--checkpoint", str(colour), "--data", str(tmp_path / "binary.npz")]) == 1
    assert "binary.npz: the images are binary (0/1), but the checkpoint" in capsys.readouterr().err
    # a checkpoint written by another version
    with np.load(trained / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["format"] = np.array("minipixel-checkpoint-2")
    np.savez(tmp_path / "v2.npz", **arrays)
    assert main(["sample", "--checkpoint", str(tmp_path / "v2.npz")]) == 1
    assert capsys.readouterr().err.strip().endswith("v2.npz: expected a minipixel-checkpoint-1 file, found "
                                                    "minipixel-checkpoint-2 (written by another version of minipixel)")


def test_show_pictures(trained, tmp_path):
    from PIL import Image

    assert main(["show", "masks", "--kernel", "5", "--channels", "3", "--out", str(tmp_path / "m.png")]) == 0
    assert main(["show", "field", "--size", "12", "--blocks", "2", "--filters", "8", "--out",
                 str(tmp_path / "f.png")]) == 0
    assert main(["show", "field", "--checkpoint", str(trained), "--out", str(tmp_path / "g.png")]) == 0
    assert main(["show", "curve", "--run", str(trained), "--out", str(tmp_path / "c.png")]) == 0
    for name in "mfgc":
        assert Image.open(tmp_path / f"{name}.png").size[0] > 100
    assert (trained / "learning_curve.png").exists()  # written by train itself


def test_receptive_field_is_causal_and_has_a_blind_spot():
    from minipixel.model import PixelCNN, PixelCNNConfig
    from minipixel.viz import receptive_field

    model = PixelCNN(PixelCNNConfig(height=12, width=12, filters=8, blocks=3, levels=3), dtype="float64")
    influence, (i, j) = receptive_field(model, 8, 6)
    rows, cols = np.nonzero(influence)
    assert all((r, c) < (i, j) for r, c in zip(rows, cols))  # nothing at or after the target
    assert influence[i, j - 1] > 0 and influence[i - 1, j] > 0  # its neighbours left and above
    # the blind spot: up and to the right, inside the reach of the stack, yet unseen
    assert influence[i - 1, j + 4] == 0 and influence[i - 3, j + 4] > 0


def test_download_without_network_says_what_to_fetch(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["download", "cifar10", "--data-dir", str(tmp_path), "--mirror", f"http://127.0.0.1:{port}/",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "cifar-10-python.tar.gz" in err and "c58f30108f718f92721af3b95e74349a" in err
    assert str(tmp_path / "cifar10") in err


def test_eval_and_complete_read_data_as_the_run_did(tmp_path, monkeypatch, capsys):
    # With --binarize sample, the binarization is drawn with the run's seed.
    # eval and complete must binarize their data with that seed too, or the
    # model is judged (and completes) on other images than training would see.
    import minipixel.sampling
    from minipixel.data import ImageSet, to_labels
    from minipixel.datasets import load, write_npz

    grey = np.random.default_rng(0).integers(0, 256, (24, 8, 8, 1)).astype(np.uint8)
    data = tmp_path / "grey.npz"
    write_npz(data, ImageSet(images=grey, max_value=255, source="grey"))
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--levels", "2", "--binarize", "sample", "--seed", "3", "--steps", "2",
                 "--filters", "8", "--blocks", "1", "--samples", "0", "--out", str(run), "--quiet"]) == 0
    expected = to_labels(load(str(data), progress=False), 2, binarize_mode="sample", seed=3)
    assert not np.array_equal(expected, to_labels(load(str(data), progress=False), 2, binarize_mode="sample", seed=0))

    given = []
    real_sample = minipixel.sampling.sample
    monkeypatch.setattr(minipixel.sampling, "sample", lambda *a, **kw: given.append(kw["known"]) or real_sample(*a, **kw))
    assert main(["complete", "--checkpoint", str(run), "--data", str(data), "-n", "5", "--keep-rows", "4",
                 "--samples", "2", "--out", str(tmp_path / "c.png")]) == 0
    chosen = np.random.default_rng(0).choice(24, 5, replace=False)  # -n 5 drawn by the default --seed 0
    assert np.array_equal(given[0][::2], expected[chosen])  # each image twice, as the run binarized it

    from minipixel.checkpoint import load_model
    from minipixel.train import evaluate

    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--data", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nll_nats"] == pytest.approx(evaluate(load_model(run)[0], expected)["nll_nats"], rel=1e-6)


def test_gated_conditional_from_the_command_line(tmp_path, capsys):
    from PIL import Image

    from train_helpers import labelled_npz

    data = labelled_npz(tmp_path / "bars.npz")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--arch", "gated", "--conditional", "--steps", "3", "--filters", "6",
                 "--blocks", "1", "--samples", "6", "--out", str(run), "--quiet"]) == 0
    # samples.png: one row per class (3 classes, 2 each), 8x8 images drawn 4x with 1-pixel gaps, after a
    # margin with the class of each row (the data's classes have no names: their numbers)
    width, height = Image.open(run / "samples.png").size
    assert height == 3 * 33 + 1 and width - (2 * 33 + 1) > 8
    assert main(["sample", "--checkpoint", str(run), "-n", "4", "--out", str(tmp_path / "s.png"), "--npy"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (12, 8, 8, 1)  # 4 per class, 3 classes
    assert main(["sample", "--checkpoint", str(run), "-n", "5", "--class", "2", "--out", str(tmp_path / "t.png"),
                 "--npy"]) == 0
    assert np.load(tmp_path / "t.npy").shape == (5, 8, 8, 1)
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(run), "--class", "3", "--out", str(tmp_path / "u.png")]) == 2
    assert "--class: expected a class from 0 to 2 for this model, got 3" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(run), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 96
    args = ["complete", "--checkpoint", str(run), "--keep-rows", "3", "--samples", "2", "--out", str(tmp_path / "c.png")]
    assert main(args + ["--data", str(data), "-n", "3"]) == 0
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "blank.png")
    assert main(args + ["--image", str(tmp_path / "blank.png")]) == 1
    assert "say which class the --image files show" in capsys.readouterr().err
    assert main(args + ["--image", str(tmp_path / "blank.png"), "--class", "1"]) == 0


def test_class_on_an_unconditional_model_is_refused(trained, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(trained), "--class", "1", "--out", str(tmp_path / "s.png")]) == 1
    assert "not class-conditional" in capsys.readouterr().err


def test_show_field_of_the_gated_model_has_no_blind_spot(tmp_path, capsys):
    common = ["--size", "12", "--blocks", "3", "--filters", "6", "--row", "8", "--col", "6"]
    assert main(["show", "field", "--arch", "gated", "--out", str(tmp_path / "g.png")] + common) == 0
    assert main(["show", "field", "--out", str(tmp_path / "p.png")] + common) == 0
    out = capsys.readouterr().out
    gated, masked = (int(line.split(": ")[1].split()[0]) for line in out.strip().splitlines())
    assert gated > masked


def test_the_command_line_guides(tiny_npz, tmp_path, capsys, monkeypatch):
    assert main([]) == 0  # minipixel alone: the commands, a line each
    out = capsys.readouterr().out
    assert out.startswith("usage: minipixel COMMAND") and all(f"\n  {c}" in out for c in ("train", "sample", "bench"))
    for argv, message in ((["train", "--learning-rate", "0.01"], "minipixel train: error: unrecognized arguments: "
                                                                  "--learning-rate 0.01 (did you mean --lr?)"),
                          (["sample", "--pretrained", "binarized-mnist", "--n", "4"], "(did you mean -n?)"),
                          (["sample", "--pretrained", "binarized-mnist", "--np"], "unrecognized arguments: --np"),
                          (["train", "--epoch", "3"], "(did you mean --epochs?)")):
        with pytest.raises(SystemExit) as exited:  # no abbreviation is taken for an option
            main(argv)
        assert exited.value.code == 2 and message in capsys.readouterr().err, argv
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--filters", "4", "--blocks", "0", "--steps", "2", "--samples", "0",
                 "--out", str(run), "--quiet"]) == 0
    assert main(["complete", "--checkpoint", str(run), "--data", str(tiny_npz), "--keep-rows", "8"]) == 2
    assert capsys.readouterr().err == ("minipixel complete: error: --keep-rows: expected an int from 1 to 7 for this "
                                       "8-row model, got 8\n")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert f"the run in {run} is finished already (step 2 of 2): nothing to train; to train on, give it more " \
           f"steps, e.g. minipixel train --resume {run} --steps 4" in capsys.readouterr().out
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    assert main(["sample", "--checkpoint", str(png)]) == 1
    assert "picture.png: expected a minipixel-checkpoint-1 file (a zip archive), but it is a PNG image" in \
           capsys.readouterr().err

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("minipixel.cli.cmd_pretrained", closed_pipe)
    monkeypatch.setattr("sys.stdout", open(os.devnull, "w"))
    import minipixel.cli as cli

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _with_handler(parser, "pretrained", closed_pipe))
    assert main(["pretrained"]) == 141 and capsys.readouterr().err == ""


def _with_handler(parser, command, handler):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action.choices[command].set_defaults(handler=handler)
    return parser


def test_bench_measures_memory_at_its_thread_count(monkeypatch):
    from dataclasses import replace

    from minipixel import bench

    monkeypatch.setattr(bench, "REFERENCES", {"pixelcnn": replace(bench.REFERENCE, height=6, width=6, filters=4,
                                                                  blocks=1)})
    asked = []
    for name in ("peak_rss_training", "peak_rss_train_command"):
        monkeypatch.setattr(bench, name, lambda batch, arch, threads: asked.append(threads) or 2**20)
    result = bench.run(batches=(2,), repeat=1, sample_images=1, naive_rows=1)
    assert asked == [result["threads"]] * 2 and isinstance(asked[0], int)
    assert result["batches"]["2"]["train_peak_rss_mib"] == 1.0
