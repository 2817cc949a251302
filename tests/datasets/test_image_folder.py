"""Tests for minipixel.datasets.image_folder: folders of PNG/JPEG images, and read_image.

The tests write PNG and JPEG files with Pillow into a temporary folder.
"""
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from minipixel.datasets import image_folder
from minipixel.datasets.formats import read_images
from minipixel.datasets.image_folder import read_image, read_image_folder
from minipixel.datasets.registry import load

REPO = Path(__file__).resolve().parents[2]
CIFAR10_JPG = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


# ---------------------------------------------------------------- image folder helpers


def save(path, pixels, **kwargs):
    """Write an (H, W) or (H, W, 3) uint8 array as an image file (format from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.asarray(pixels, np.uint8)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    Image.fromarray(pixels).save(path, format=fmt, **kwargs)
    return path


def random_image(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def solid(colour, shape=(8, 8)):
    return np.broadcast_to(np.asarray(colour, np.uint8), (*shape, len(colour))).copy()


# ---------------------------------------------------------------- image folder: good folders


def test_flat_folder_of_grey_pngs_in_name_order(tmp_path):
    names = ["b.png", "a.PNG", "c.png"]  # written out of order; read sorted by name
    pixels = {name: random_image((6, 5), seed) for seed, name in enumerate(names)}
    for name in names:
        save(tmp_path / name, pixels[name])
    (tmp_path / "notes.txt").write_text("not an image, skipped")
    (tmp_path / ".hidden.png").write_bytes(b"skipped: hidden")
    got = read_image_folder(tmp_path)
    assert got.images.shape == (3, 6, 5, 1) and got.images.dtype == np.uint8
    assert got.max_value == 255 and got.classes is None and got.source == str(tmp_path)
    for k, name in enumerate(sorted(names)):
        np.testing.assert_array_equal(got.images[k, ..., 0], pixels[name])


def test_read_image_converts_to_the_channels_asked_for(tmp_path):
    colour, grey = random_image((5, 4, 3), 0), random_image((5, 4), 1)
    save(tmp_path / "c.png", colour)
    save(tmp_path / "g.png", grey)
    np.testing.assert_array_equal(read_image(tmp_path / "c.png"), colour)
    expected_grey = np.asarray(Image.fromarray(colour).convert("L"))[..., None]
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", channels=1), expected_grey)
    np.testing.assert_array_equal(read_image(tmp_path / "g.png", channels=3), np.repeat(grey[..., None], 3, -1))
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), grey[..., None])
    with pytest.raises(ValueError, match="channels must be"):
        read_image(tmp_path / "g.png", channels=2)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png: cannot read it as an image"):
        read_image(tmp_path / "bad.png")


def test_reading_bar_can_be_turned_off(tmp_path, monkeypatch, capsys):
    for k in range(3):
        save(tmp_path / f"{k}.png", random_image((4, 4), k))
    monkeypatch.setattr(image_folder, "_PROGRESS_MIN_FILES", 1)  # a bar even for 3 files
    load(str(tmp_path))  # on by default
    assert "reading" in capsys.readouterr().err
    load(str(tmp_path), progress=True)
    assert "reading" in capsys.readouterr().err
    load(str(tmp_path), progress=False)
    assert capsys.readouterr().err == ""


def test_a_named_split_found_as_a_folder_is_read_with_the_size_and_progress_asked_for(tmp_path, monkeypatch,
                                                                                       capsys):
    # whatever exists at a named split's path (a folder too) is read as a path would be
    folder = tmp_path / "mnist" / "train-images-idx3-ubyte"
    save(folder / "a.png", random_image((12, 10), 0))
    save(folder / "b.png", random_image((9, 14), 1))  # another size: only --size makes them one
    monkeypatch.setattr(image_folder, "_PROGRESS_MIN_FILES", 1)  # a bar even for 2 files
    got = load("mnist:train", data_dir=tmp_path, size=6, progress=False)
    assert got.images.shape == (2, 6, 6, 1) and capsys.readouterr().err == ""
    assert load("mnist:train", data_dir=tmp_path, size=5).images.shape == (2, 5, 5, 1)
    assert "reading train-images-idx3-ubyte" in capsys.readouterr().err


def test_class_folders_of_colour_pngs(tmp_path):
    layout = {"zebra": ["2.png", "1.png"], "ant": ["x.png"], "moth": ["a.png", "b.PNG", "c.png"]}
    pixels = {}
    for seed, (cls, names) in enumerate(layout.items()):
        for k, name in enumerate(names):
            pixels[cls, name] = random_image((4, 7, 3), 10 * seed + k)
            save(tmp_path / cls / name, pixels[cls, name])
    (tmp_path / "README.md").write_text("a file beside the class folders is skipped")
    (tmp_path / ".git").mkdir()  # hidden folders are not classes
    got = read_image_folder(tmp_path)
    order = [(cls, name) for cls in sorted(layout) for name in sorted(layout[cls])]
    assert got.images.shape == (6, 4, 7, 3)
    np.testing.assert_array_equal(got.classes, [sorted(layout).index(cls) for cls, _ in order])  # ant 0, moth 1, zebra 2
    assert got.classes.dtype == np.int64
    for k, key in enumerate(order):
        np.testing.assert_array_equal(got.images[k], pixels[key])


def test_jpeg_colour_and_grey_values_are_close(tmp_path):
    colours = [(200, 30, 90), (10, 250, 128), (255, 255, 255)]
    for k, colour in enumerate(colours):
        save(tmp_path / "colour" / f"{k}.jpg", solid(colour, (16, 16)), quality=95)
    got = read_image_folder(tmp_path / "colour")
    assert got.images.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(got.images.mean(axis=(1, 2)), colours, atol=3)
    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    save(tmp_path / "grey" / "ramp.JPEG", ramp, quality=95)
    save(tmp_path / "grey" / "flat.jpeg", np.full((16, 16), 77, np.uint8), quality=95)
    got = read_image_folder(tmp_path / "grey")
    assert got.images.shape == (2, 16, 16, 1)
    assert np.abs(got.images[0, ..., 0].astype(int) - 77).max() <= 2
    assert np.abs(got.images[1, ..., 0].astype(int) - ramp).mean() < 3


def test_grey_and_colour_mixed_become_rgb(tmp_path):
    grey1, colour, grey2 = random_image((5, 5), 1), random_image((5, 5, 3), 2), random_image((5, 5), 3)
    save(tmp_path / "1.png", grey1)  # grey first: the array starts with one channel
    save(tmp_path / "2.png", colour)
    save(tmp_path / "3.png", grey2)
    binary = Image.fromarray(np.eye(5, dtype=bool))
    binary.save(tmp_path / "4.png")  # mode "1" counts as grey
    got = read_image_folder(tmp_path)
    assert got.images.shape == (4, 5, 5, 3)
    np.testing.assert_array_equal(got.images[0], np.repeat(grey1[..., None], 3, axis=2))
    np.testing.assert_array_equal(got.images[1], colour)
    np.testing.assert_array_equal(got.images[2], np.repeat(grey2[..., None], 3, axis=2))
    np.testing.assert_array_equal(got.images[3], np.repeat(np.eye(5, dtype=np.uint8)[..., None] * 255, 3, axis=2))


def test_palette_and_alpha_images_become_rgb(tmp_path):
    rgba = np.dstack([solid((10, 20, 30), (4, 4)), np.full((4, 4), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    palette = Image.new("P", (4, 4), 1)  # every pixel is palette entry 1
    palette.putpalette([0, 0, 0, 40, 50, 60])
    palette.save(tmp_path / "b.png")
    got = read_image_folder(tmp_path)
    assert got.images.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(got.images[0], solid((10, 20, 30), (4, 4)))  # alpha dropped
    np.testing.assert_array_equal(got.images[1], solid((40, 50, 60), (4, 4)))


def test_size_crops_the_centre_square_and_resizes(tmp_path):
    # 40 wide, 30 high: the centre 30x30 is blue, the 5 columns on each side red.
    wide = solid((0, 0, 255), (30, 40))
    wide[:, :5] = wide[:, -5:] = (255, 0, 0)
    tall = np.ascontiguousarray(wide.transpose(1, 0, 2))  # 30 wide, 40 high: red rows at top and bottom
    save(tmp_path / "wide.png", wide)
    save(tmp_path / "tall.png", tall)
    got = read_image_folder(tmp_path, size=16)
    assert got.images.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(got.images, solid((0, 0, 255), (16, 16))[None].repeat(2, axis=0))
    same = read_image_folder(tmp_path, size=30)  # a 30x30 crop is not resampled at all
    np.testing.assert_array_equal(same.images[1], wide[:, 5:35])
    # A detailed image is resized with a smooth filter: close to a 2x2 box average.
    detail = random_image((32, 32), 4)
    save(tmp_path / "detail" / "d.png", detail)
    small = read_image_folder(tmp_path / "detail", size=16).images[0, ..., 0].astype(float)
    box = detail.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    assert np.abs(small - box).mean() < np.abs(detail[::2, ::2] - box).mean() / 2


def test_size_must_be_a_positive_integer(tmp_path):
    save(tmp_path / "a.png", random_image((4, 4), 0))
    for bad in (0, -3, 2.5, True, "16"):
        with pytest.raises(ValueError, match=r"size must be None or an integer >= 1, got"):
            read_image_folder(tmp_path, size=bad)


def test_read_images_and_load_read_image_folders_with_size(tmp_path):
    save(tmp_path / "pics" / "cat" / "a.jpg", random_image((30, 40, 3), 0))
    save(tmp_path / "pics" / "dog" / "b.png", random_image((50, 20, 3), 1))
    got = read_images(tmp_path / "pics", size=12)
    assert got.images.shape == (2, 12, 12, 3)
    np.testing.assert_array_equal(got.classes, [0, 1])
    got = load(str(tmp_path / "pics"), size=8)
    assert got.images.shape == (2, 8, 8, 3) and "pics" in got.source
    with pytest.raises(ValueError, match=r"b\.png: is 20x50 pixels"):
        load(str(tmp_path / "pics"))


def test_progress_bar_only_for_many_files(tmp_path, capsys, monkeypatch):
    for k in range(3):
        save(tmp_path / f"{k}.png", random_image((4, 4), k))
    read_image_folder(tmp_path)
    assert "reading" not in capsys.readouterr().err
    monkeypatch.setattr(image_folder, "_PROGRESS_MIN_FILES", 2)
    read_image_folder(tmp_path)
    assert f"reading {tmp_path.name}" in capsys.readouterr().err
    read_images(tmp_path)  # the folder read by read_images shows it by default too
    assert f"reading {tmp_path.name}" in capsys.readouterr().err
    read_images(tmp_path, progress=False)
    assert "reading" not in capsys.readouterr().err


# ---------------------------------------------------------------- image folder: bad folders


def test_mixed_sizes_without_size_names_both_files(tmp_path):
    save(tmp_path / "a.png", random_image((30, 40, 3), 0))
    save(tmp_path / "b.png", random_image((30, 40, 3), 1))
    save(tmp_path / "c.png", random_image((32, 32, 3), 2))
    with pytest.raises(ValueError) as info:
        read_image_folder(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'c.png'}: is 32x32 pixels (width x height), but {tmp_path / 'a.png'} is 40x30")
    assert "--size S" in message
    assert read_image_folder(tmp_path, size=20).images.shape == (3, 20, 20, 3)


@pytest.mark.parametrize(
    "name, content",
    [("fake.png", b"this is text, not a PNG"),
     ("empty.jpg", b""),
     ("cut.png", "cut"),
     ("cut.jpg", "cut"),
     ("gif.png", "gif")],
)
def test_unreadable_image_names_the_file(tmp_path, name, content):
    save(tmp_path / "good.png", random_image((8, 8, 3), 0))
    path = tmp_path / name
    if content == "cut":
        save(path, random_image((64, 64, 3), 1))
        path.write_bytes(path.read_bytes()[:300])
    elif content == "gif":
        Image.fromarray(random_image((8, 8, 3), 2)).save(path, format="GIF")  # neither PNG nor JPEG
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{name.replace('.', r'[.]')}: cannot read it as an image .*PNG or JPEG"):
        read_image_folder(tmp_path)


@pytest.mark.parametrize("width, height", [(9000, 9000), (12_000, 12_000), (100_000, 100_000)])
def test_image_claiming_too_many_pixels_is_refused_before_it_is_decoded(tmp_path, width, height):
    # A small PNG whose header (checksum kept valid) claims a huge image: a
    # decompression bomb, or a damaged header. Decoding it would allocate it all.
    import struct
    import zlib

    raw = bytearray((save(tmp_path / "x" / "bomb.png", random_image((8, 8), 0))).read_bytes())
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    (tmp_path / "x" / "bomb.png").write_bytes(bytes(raw))
    refused = "decompression bomb" if width * height > 2 * Image.MAX_IMAGE_PIXELS else (  # Pillow's own limit
        rf"{width}x{height} pixels, more than the 67,108,864 an image may have")
    with pytest.raises(ValueError, match=rf"bomb\.png: cannot read it as an image \(.*{refused}"):
        read_image_folder(tmp_path / "x")


def test_16_bit_images_are_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match=r"deep\.png: image mode I;16.* is not supported"):
        read_image_folder(tmp_path)


@pytest.mark.parametrize("contents", [[], ["notes.txt"], ["sub/notes.txt"]])
def test_folder_without_images_says_what_was_looked_for(tmp_path, contents):
    for name in contents:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("text")
    with pytest.raises(ValueError, match=rf"{tmp_path.name}: found no images \(\.png/\.jpg/\.jpeg, any case\)"):
        read_image_folder(tmp_path)
    with pytest.raises(ValueError, match=r"found no images"):
        read_images(tmp_path)  # a folder that is not CIFAR-10 is an image folder


def test_images_beside_class_folders_or_empty_class(tmp_path):
    save(tmp_path / "cat" / "1.png", random_image((4, 4), 0))
    (tmp_path / "dog").mkdir()
    with pytest.raises(ValueError, match=r"expected images \(\.png/\.jpg/\.jpeg\) in every class sub-folder, found none in \['dog'\]"):
        read_image_folder(tmp_path)
    save(tmp_path / "dog" / "1.png", random_image((4, 4), 1))
    save(tmp_path / "stray.png", random_image((4, 4), 2))
    with pytest.raises(ValueError, match=r"either directly in the folder or in one sub-folder per class, found both \(e\.g\. stray\.png and cat/\)"):
        read_image_folder(tmp_path)


def test_image_folder_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_image_folder(tmp_path / "nowhere")
    path = save(tmp_path / "a.png", random_image((4, 4), 0))
    with pytest.raises(ValueError, match=r"a\.png: is a file, expected a folder of images"):
        read_image_folder(path)


# ---------------------------------------------------------------- the real JPEG folder, when present


@pytest.mark.skipif(not CIFAR10_JPG.is_file(), reason="the shared cifar10-jpg.tar.gz is not on this machine")
def test_real_cifar10_jpegs(tmp_path):
    """A few of the shared CIFAR-10 JPEGs (the first 3 of each of the first 2 test classes), read as a folder."""
    wanted, written = 3, {}
    with tarfile.open(CIFAR10_JPG, "r:gz") as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] != "test" or ".." in parts:
                continue
            if len(written.setdefault(parts[1], [])) < wanted:
                (tmp_path / parts[1]).mkdir(exist_ok=True)
                (tmp_path / parts[1] / parts[2]).write_bytes(archive.extractfile(member).read())
                written[parts[1]].append(parts[2])
            if len(written) == 3:  # a third class has begun: the first two are complete
                break
    classes = sorted(written)[:2]
    for extra in set(written) - set(classes):
        for name in written[extra]:
            (tmp_path / extra / name).unlink()
        (tmp_path / extra).rmdir()
    got = read_image_folder(tmp_path)
    assert got.images.shape == (2 * wanted, 32, 32, 3) and got.images.dtype == np.uint8
    np.testing.assert_array_equal(got.classes, [0] * wanted + [1] * wanted)
    assert 20 < got.images.mean() < 235 and got.images.std() > 10  # real photographs, not blank
    # The colour channels differ: the files are decoded as RGB, not as grey.
    assert np.abs(got.images[..., 0].astype(int) - got.images[..., 2]).mean() > 2


# ---------------------------------------------------------------- edges: crops, modes, limits, bars


def test_odd_margin_is_cropped_one_more_on_the_right_and_bottom(tmp_path):
    # 7 wide, 4 high: the centred 4x4 square leaves 3 columns, 1 on the left and 2 on the right.
    wide = random_image((4, 7), 0)
    save(tmp_path / "wide.png", wide)
    save(tmp_path / "tall.png", wide.T)
    np.testing.assert_array_equal(read_image(tmp_path / "wide.png", size=4)[..., 0], wide[:, 1:5])
    np.testing.assert_array_equal(read_image(tmp_path / "tall.png", size=4)[..., 0], wide.T[1:5])


def test_size_1_is_one_pixel_per_image(tmp_path):
    save(tmp_path / "a.png", random_image((4, 6, 3), 0))
    assert read_image_folder(tmp_path, size=1, progress=False).images.shape == (1, 1, 1, 3)


def test_resizing_works_without_image_resampling(tmp_path):
    # Pillow 9.0 (which setup.py allows) has no Image.Resampling, only Image.BICUBIC.
    class Pillow90(type(Image)):
        def __getattr__(self, name):
            if name == "Resampling":
                raise AttributeError(name)
            return getattr(Image, name)

    save(tmp_path / "a.png", random_image((12, 10, 3), 0))
    got = image_folder._decode_image(Pillow90("PIL.Image"), tmp_path / "a.png", 4)
    np.testing.assert_array_equal(got, read_image(tmp_path / "a.png", size=4))


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_grey_and_float_images_are_refused(tmp_path, monkeypatch, mode):
    # Pillow before 10 opened 16-bit grey PNGs as mode I: stand in for such a file.
    save(tmp_path / "deep.png", random_image((4, 4), 0))
    monkeypatch.setattr(Image, "open", lambda file, formats: Image.new(mode, (4, 4)))
    with pytest.raises(ValueError, match=rf"deep\.png: image mode {mode} \(16- or 32-bit values\) is not supported"):
        read_image(tmp_path / "deep.png")


def test_image_of_exactly_the_most_pixels_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    save(tmp_path / "a.png", random_image((25, 40), 0))  # 1,000 pixels: at the limit, not past it
    assert read_image_folder(tmp_path, progress=False).images.shape == (1, 25, 40, 1)


def test_pillows_other_warnings_about_a_file_are_not_silenced(tmp_path):
    # Only the decompression-bomb warning is silenced (our size check says more); an
    # APNG chunk announcing 0 frames still draws Pillow's warning.
    import struct
    import zlib

    raw = save(tmp_path / "a.png", random_image((4, 4), 0)).read_bytes()
    body = b"acTL" + struct.pack(">II", 0, 0)
    actl = struct.pack(">I", 8) + body + struct.pack(">I", zlib.crc32(body))
    (tmp_path / "a.png").write_bytes(raw[:33] + actl + raw[33:])  # after the 8-byte signature and IHDR
    with pytest.warns(UserWarning, match="Invalid APNG"):
        read_image(tmp_path / "a.png")


def test_folder_without_images_names_up_to_10_of_its_sub_folders(tmp_path):
    with pytest.raises(ValueError, match=r"found no images \(\.png/\.jpg/\.jpeg, any case\) in the folder; expected"):
        read_image_folder(tmp_path)
    for k in range(11):
        (tmp_path / f"c{k:02d}").mkdir()
    with pytest.raises(ValueError) as caught:
        read_image_folder(tmp_path)
    names = [f"c{k:02d}" for k in range(10)]
    assert f"in the folder or in its sub-folders {names}; expected" in str(caught.value)


def zero_pngs(folder, n, shape):
    for k in range(n):
        save(folder / f"{k}.png", np.zeros(shape, np.uint8))


def test_memory_budget_counts_the_three_channels_of_colour_images(tmp_path, monkeypatch):
    zero_pngs(tmp_path, 4, (100, 100, 3))  # 4 x 100 x 100 x 3 + 12 x 100 x 100 = 240,000 bytes
    monkeypatch.setattr(image_folder, "available_memory", lambda: 2 * 200_000)
    monkeypatch.setattr(image_folder, "_address_space_left", lambda: None)
    with pytest.raises(ValueError, match=r"its 4 images would take 0\.2 MiB decoded \(100x100 pixels, 3 channel"):
        read_image_folder(tmp_path, progress=False)


def test_headers_are_checked_before_anything_is_decoded(tmp_path, monkeypatch):
    zero_pngs(tmp_path, 4, (100, 100))
    cut = save(tmp_path / "0.png", random_image((100, 100), 0))  # a whole header, its pixels cut short
    cut.write_bytes(cut.read_bytes()[:300])
    monkeypatch.setattr(image_folder, "available_memory", lambda: 1000)
    monkeypatch.setattr(image_folder, "_address_space_left", lambda: None)
    with pytest.raises(ValueError, match=r"its 4 images would take"):
        read_image_folder(tmp_path, progress=False)


def test_without_a_known_memory_size_there_is_no_budget(tmp_path, monkeypatch):
    zero_pngs(tmp_path, 2, (5, 5))
    monkeypatch.setattr(image_folder, "available_memory", lambda: None)
    monkeypatch.setattr(image_folder, "_address_space_left", lambda: None)
    assert image_folder._memory_budget() is None
    assert read_image_folder(tmp_path, progress=False).images.shape == (2, 5, 5, 1)


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="needs Linux's /proc/self/statm")
def test_address_space_left_is_the_soft_limit_less_what_is_taken(monkeypatch):
    import os
    import resource

    def taken():
        return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")

    limit = taken() + 2**30
    monkeypatch.setattr(resource, "getrlimit", lambda which: (limit, resource.RLIM_INFINITY))  # soft, hard
    left = image_folder._address_space_left()
    assert abs(left - (limit - taken())) < 2**24, (left, limit, taken())
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1000, resource.RLIM_INFINITY))
    assert image_folder._address_space_left() == 0  # less than is taken already: nothing left
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY,) * 2)
    assert image_folder._address_space_left() is None


@pytest.mark.parametrize("n, text", [
    (2**30 - 2**19, "1023.5 MiB"),
    (2**30, "1.00 GiB"),
    (3 * 2**29, "1.50 GiB"),
    (2**31, "2.00 GiB"),
])
def test_size_text(n, text):
    assert image_folder._size_text(n) == text


def test_both_bars_name_the_folder_count_images_and_are_cleared(tmp_path, monkeypatch, capsys):
    zero_pngs(tmp_path / "pics", 3, (4, 4))
    monkeypatch.setattr(image_folder, "_PROGRESS_MIN_FILES", 3)  # a bar from 3 files on
    read_image_folder(tmp_path / "pics")
    err = capsys.readouterr().err
    for step in ("checking", "reading"):
        frames = [frame for frame in err.split("\r") if frame.startswith(f"{step} pics:")]
        assert frames and all("image/s" in frame for frame in frames), err
    assert "\n" not in err and err.endswith("\r")  # no bar left behind
    read_image_folder(tmp_path / "pics", progress=False)
    assert capsys.readouterr().err == ""
