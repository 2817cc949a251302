"""``minipixel sample``: --animate, --size, --png-dir, --npy, run in-process."""
import numpy as np
import pytest
from PIL import Image

from minipixel.cli import build_parser, main
from minipixel.sampling import Recording, sample
from minipixel.viz import UNDRAWN, sampling_frame, to_uint8


@pytest.fixture
def trained(tiny_npz, tmp_path):
    """A pixelcnn of 8x8 binary images, 4 steps trained: its samples are varied."""
    out = tmp_path / "run"
    assert main(["train", "--data", str(tiny_npz), "--steps", "4", "--filters", "8", "--blocks", "1",
                 "--batch", "16", "--samples", "4", "--out", str(out), "--quiet"]) == 0
    return out


def run_sample(run, tmp_path, name, *options):
    """``minipixel sample`` writing tmp_path/<name>.png and .npy; returns the labels."""
    assert main(["sample", "--checkpoint", str(run), "--out", str(tmp_path / f"{name}.png"), "--npy", *options]) == 0
    return np.load(tmp_path / f"{name}.npy")


def gif_frames(path):
    """Every frame of a GIF as (rows, cols, 3) uint8."""
    with Image.open(path) as gif:
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB")))
    return frames


def as_rgb(png):
    grid = np.asarray(Image.open(png))
    return np.stack([grid] * 3, axis=-1) if grid.ndim == 2 else grid


@pytest.mark.parametrize("method,batch", [("cached", 64), ("naive", 2)])
def test_animation_shows_the_sampler_row_by_row(trained, tmp_path, method, batch):
    gif = tmp_path / "a.gif"
    images = run_sample(trained, tmp_path, "s", "-n", "5", "--method", method, "--batch", str(batch),
                        "--animate", str(gif))
    frames = gif_frames(gif)
    assert len(frames) == 8 + 1  # before the first draw, then after each row of the 8x8 images
    assert np.array_equal(frames[-1], as_rgb(tmp_path / "s.png"))  # the last frame is the PNG grid
    undrawn = np.all(frames[0] == UNDRAWN, axis=-1)
    assert undrawn.sum() == 5 * (8 * 4) ** 2  # every pixel of the 5 images (drawn 4x) is "not drawn yet"
    assert np.all(frames[0][~undrawn] == 128)  # and the rest is the grey between them
    for k, frame in enumerate(frames):  # frame k: the first k rows of every image, as in the final samples
        assert np.array_equal(frame, sampling_frame(images, 8 * k, 2, scale=4))


@pytest.mark.parametrize("method", ["cached", "naive"])
def test_animating_does_not_change_the_samples(trained, tmp_path, method):
    plain = run_sample(trained, tmp_path, "plain", "-n", "5", "--method", method, "--batch", "2", "--seed", "7")
    watched = run_sample(trained, tmp_path, "watched", "-n", "5", "--method", method, "--batch", "2", "--seed", "7",
                         "--animate", str(tmp_path / "a.gif"), "--frame-every", "3")
    assert np.array_equal(plain, watched)
    assert len(gif_frames(tmp_path / "a.gif")) == -(-64 // 3) + 1
    assert len(np.unique(plain)) == 2  # varied samples: a hook that changed them would show


def test_conditional_model_animates_at_another_size(tmp_path, capsys):
    from train_helpers import labelled_npz

    run = tmp_path / "run"
    assert main(["train", "--data", str(labelled_npz(tmp_path / "bars.npz")), "--arch", "gated", "--conditional",
                 "--steps", "3", "--filters", "6", "--blocks", "1", "--samples", "3", "--out", str(run),
                 "--quiet"]) == 0
    common = ["-n", "2", "--size", "6x9", "--seed", "3"]
    cached = run_sample(run, tmp_path, "c", *common, "--animate", str(tmp_path / "c.gif"))
    naive = run_sample(run, tmp_path, "n", *common, "--method", "naive", "--animate", str(tmp_path / "n.gif"))
    assert cached.shape == (6, 6, 9, 1) and np.array_equal(cached, naive)  # 2 per class, 3 classes
    for name in "cn":
        frames = gif_frames(tmp_path / f"{name}.gif")
        assert len(frames) == 6 + 1
        assert np.array_equal(frames[-1], as_rgb(tmp_path / f"{name}.png"))
    assert "(6 images, 6x9x1, 2 levels, one row per class (3 classes))" in capsys.readouterr().out


def test_size_samples_images_of_another_size(trained, tmp_path, capsys):
    images = run_sample(trained, tmp_path, "a", "-n", "3", "--size", "12x10")
    assert images.shape == (3, 12, 10, 1)
    assert "(3 images, 12x10x1, 2 levels)" in capsys.readouterr().out
    assert Image.open(tmp_path / "a.png").size == (2 * (10 * 4 + 1) + 1, 2 * (12 * 4 + 1) + 1)  # 2x2 grid, 4x
    assert np.array_equal(run_sample(trained, tmp_path, "b", "-n", "3", "--size", "12x10", "--method", "naive"),
                          images)
    assert run_sample(trained, tmp_path, "c", "-n", "2", "--size", "5").shape == (2, 5, 5, 1)
    assert run_sample(trained, tmp_path, "d", "-n", "2", "--size", "1X3").shape == (2, 1, 3, 1)


@pytest.mark.parametrize("size", ["0", "4097", "0x5", "5x4097", "12x", "x", "3x4x5", "-2", "1.5", "twelve"])
def test_bad_sizes_are_refused_by_the_parser(trained, tmp_path, capsys, size):
    with pytest.raises(SystemExit) as exit_:
        main(["sample", "--checkpoint", str(trained), "--size", size, "--out", str(tmp_path / "s.png")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --size: expected HxW or S" in err and "1 to 4096" in err
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("options,message", [
    (["--animate", "a.png"], "--animate: expected a file name ending in .gif, got 'a.png'"),
    (["--frame-every", "4"], "--frame-every: sets the frames of --animate, which is not given"),
    (["--animate", "a.gif", "--size", "40", "--frame-every", "1"], "makes 1601 frames of 40x40x1 images, more than 500"),
])
def test_bad_animation_options_say_so_in_one_line(trained, tmp_path, capsys, options, message):
    assert main(["sample", "--checkpoint", str(trained), "--out", str(tmp_path / "s.png"), *options]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "s.png").exists()


def test_default_frames_are_capped(trained, tmp_path):
    run_sample(trained, tmp_path, "s", "-n", "1", "--size", "600x1", "--animate", str(tmp_path / "a.gif"))
    assert len(gif_frames(tmp_path / "a.gif")) <= 500  # one per row would be 601


def test_png_dir_writes_one_file_per_image(trained, tmp_path, capsys):
    images = run_sample(trained, tmp_path, "s", "-n", "5", "--png-dir", str(tmp_path / "each"))
    names = sorted(p.name for p in (tmp_path / "each").iterdir())
    assert names == ["000.png", "001.png", "002.png", "003.png", "004.png"]
    for k, name in enumerate(names):
        pixels = np.asarray(Image.open(tmp_path / "each" / name))
        assert pixels.shape == (8, 8) and pixels.dtype == np.uint8  # one pixel per pixel, no scaling
        assert set(np.unique(pixels)) <= {0, 255}
        assert np.array_equal(pixels, to_uint8(images[k, :, :, 0], 2))
    assert "wrote 5 PNG files in" in capsys.readouterr().out


def test_one_image_is_one_image(trained, tmp_path, capsys):
    run_sample(trained, tmp_path, "s", "-n", "1", "--png-dir", str(tmp_path / "each"))
    out = capsys.readouterr().out
    assert "(1 image, 8x8x1, 2 levels)" in out and "wrote 1 PNG file in" in out
    assert "1 images" not in out and "1 PNG files" not in out


def test_new_options_show_their_default():
    sample_parser = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices
                         and "sample" in a.choices).choices["sample"]
    helps = {a.dest: a.help for a in sample_parser._actions}
    for dest in ("npy", "png_dir", "size", "animate", "frame_every"):
        assert "(default" in helps[dest], dest
    assert "samples.npy" in helps["npy"]  # the name the code writes: --out with its suffix replaced


@pytest.mark.parametrize("method", ["cached", "naive"])
def test_recording_of_a_colour_model(method):
    from test_sampling import small_model

    model = small_model(3, 4)  # 6x5 images, 3 colours: 90 sub-pixels each
    recording = Recording(3, 6, 5, 3, every=7)
    images = sample(model, 3, seed=1, method=method, batch_size=2, snapshot=recording, snapshot_every=7)
    assert np.array_equal(images, sample(model, 3, seed=1, method=method))  # the same with or without looking
    assert recording.drawn == list(range(0, 90, 7)) + [90]
    order = np.arange(90).reshape(6, 5, 3)  # the sampler's order: row, column, colour
    for labels, drawn in zip(recording.labels, recording.drawn):
        # At each look: the drawn sub-pixels final, the others still zero (as the sampler starts them).
        assert np.array_equal(labels, np.where(order < drawn, images, 0))


@pytest.mark.parametrize("size,every", [
    ((8, 8, 1), 8),  # one row per look
    ((600, 1, 1), 2),  # 601 rows: 2 sub-pixels a look
    ((998, 1, 1), 2),  # 499 * 2: exactly MAX_FRAMES looks
    ((999, 1, 1), 3),  # just above a multiple of 499
    ((1000, 1, 1), 3),
    ((2000, 1, 3), 13),  # 6000 = 499 * 12 + 12
])
def test_recording_default_step_is_the_smallest_giving_at_most_max_frames(size, every):
    from minipixel.sampling import MAX_FRAMES

    H, W, C = size
    recording = Recording(1, H, W, C)
    assert recording.every == every
    assert len(recording.drawn) == len(recording.labels) <= MAX_FRAMES
    assert recording.drawn[0] == 0 and recording.drawn[-1] == H * W * C
    assert Recording(1, H, W, C, every=every).drawn == recording.drawn  # the step asked for explicitly
    if every > W * C:  # one sub-pixel less a look makes too many
        with pytest.raises(ValueError, match=rf"^every={every - 1} sub-pixel\(s\) makes \d+ frames of "
                                             rf"{H}x{W}x{C} images, more than {MAX_FRAMES}: take every={every} "):
            Recording(1, H, W, C, every=every - 1)


@pytest.mark.parametrize("every", [2.5, -1, -4, "3"])
def test_recording_refuses_a_step_that_is_not_a_positive_int(every):
    with pytest.raises(ValueError, match=rf"^every: expected a positive int, got {every!r}$"):
        Recording(2, 8, 8, 1, every=every)


def test_recording_labels_are_uint8_zeros_one_frame_per_look():
    recording = Recording(2, 3, 4, 1, every=np.int64(4))
    assert recording.drawn == [0, 4, 8, 12]
    assert recording.labels.dtype == np.uint8 and recording.labels.shape == (4, 2, 3, 4, 1)
    assert not recording.labels.any()


def test_recording_refuses_what_would_not_fit_in_memory(monkeypatch):
    import minipixel.memory

    # 10 images of 10x10x1, a look per row: 11 frames of 10 * 100 bytes = 11000 bytes.
    monkeypatch.setattr(minipixel.memory, "available_memory", lambda: 11_000)
    assert len(Recording(10, 10, 10, 1).drawn) == 11
    monkeypatch.setattr(minipixel.memory, "available_memory", lambda: 10_999)
    with pytest.raises(MemoryError, match=r"^recording 11 frames of 10 images needs about"):
        Recording(10, 10, 10, 1)


@pytest.mark.parametrize("drawn", [1, 5, 11, 13, 16, 100])
def test_recording_refuses_a_look_that_is_not_one_of_its_frames(drawn):
    recording = Recording(2, 3, 4, 1, every=4)  # looks after 0, 4, 8 and 12 sub-pixels
    labels = np.ones((2, 3, 4, 1), np.uint8)
    with pytest.raises(ValueError, match=r"^Recording: expected a look after one of \[0, 4, 8, 12\] sub-pixels, "
                                         rf"got {drawn}$"):
        recording(0, labels, drawn)
    assert not recording.labels.any()
    recording(0, labels, 12)
    assert recording.labels[3].all() and not recording.labels[:3].any()


def test_sampling_frame_paints_what_is_not_drawn():
    labels = np.array([[[[3, 0, 3], [1, 2, 3]]]])  # one 1x2 colour image, 4 levels
    frame = sampling_frame(labels, 4, 4)  # the first pixel and the red of the second are drawn
    assert frame.shape == (3, 4, 3)  # with the 1-pixel border
    assert frame[1, 1].tolist() == [255, 0, 255]
    assert frame[1, 2].tolist() == [85, UNDRAWN[1], UNDRAWN[2]]
    grey = sampling_frame(np.ones((1, 1, 2, 1), int), 1, 2)
    assert grey[1, 1].tolist() == [255] * 3 and grey[1, 2].tolist() == list(UNDRAWN)


def test_the_wavefront_sampler_from_the_command_line(trained, tmp_path, capsys):
    cached = run_sample(trained, tmp_path, "c", "-n", "6", "--seed", "3")
    assert np.array_equal(run_sample(trained, tmp_path, "w", "-n", "6", "--seed", "3", "--method", "wavefront"), cached)
    assert main(["sample", "--checkpoint", str(trained), "--out", str(tmp_path / "a.png"), "--method", "wavefront",
                 "--animate", str(tmp_path / "a.gif")]) == 1
    err = capsys.readouterr().err
    assert err.endswith("error: snapshot (--animate) needs method 'cached' or 'naive': the wavefront sampler draws "
                        "several rows side by side, not in raster order\n")
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "a.gif").exists()


def test_the_graph_sampler_from_the_command_line_asks_for_a_gpu(trained, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(trained), "--out", str(tmp_path / "g.png"), "--method", "graph"]) == 1
    assert capsys.readouterr().err.endswith("error: the graph sampler replays a CUDA graph: it needs device 'gpu', "
                                            "not 'cpu'; on the CPU use method 'cached'\n")
    assert not (tmp_path / "g.png").exists()


def test_classes_by_name_in_sample_in_pretrained_and_beside_the_rows(tmp_path, capsys):
    from minipixel.datasets.class_names import class_number

    fashion = ["sample", "--pretrained", "fashion-mnist-conditional", "-n", "1", "--npy"]
    assert main(fashion + ["--class", "7", "--out", str(tmp_path / "seven.png")]) == 0
    assert main(fashion + ["--class", "sneaker", "--out", str(tmp_path / "sneaker.png")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "seven.npy"), np.load(tmp_path / "sneaker.npy"))
    capsys.readouterr()
    assert main(fashion + ["--class", "shoe", "--out", str(tmp_path / "x.png")]) == 2
    assert "--class: expected a class number or name, got 'shoe'; this model's classes: 0 T-shirt/top, 1 Trouser" \
           in capsys.readouterr().err
    assert main(["pretrained"]) == 0
    assert "    classes:   0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, " \
           "9 Ankle boot" in capsys.readouterr().out
    # every class, a row each: the names in a margin on the left, white on the grid's grey
    assert main(["sample", "--pretrained", "fashion-mnist-conditional", "-n", "1", "--out", str(tmp_path / "all.png")]) == 0
    grid = np.asarray(Image.open(tmp_path / "all.png"))
    margin = grid.shape[1] - (1 + 29 * 2)  # one 28x28 image at scale 2, padded
    assert margin > 30 and (grid[:, :margin] > 200).sum() > 100  # the letters: near white, on grey
    assert (class_number("Ankle", FASHION, 10), class_number("3", FASHION, 10), class_number("bag", FASHION, 10)) == (9, 3, 8)
    for bad in ("s", "boot", "11x"):  # "s" starts Sandal, Shirt and Sneaker; no name is "boot"
        with pytest.raises(ValueError, match="expected a class number or name"):
            class_number(bad, FASHION, 10)


FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
