"""Tests for the colour readers of minipixel.data: CIFAR-10's python version and folders of PNG/JPEG images.

The CIFAR-10 tests write small batches laid out as the published ones are: a
dict with b"batch_label", b"labels", b"data" and b"filenames", pickled at
protocol 2, in cifar-10-batches-py/ (data_batch_1..5, test_batch), tarred and
gzipped. The published files were written by Python 2, whose pickles differ
from what Python 3 writes at protocol 2 (byte strings as BINSTRING opcodes
instead of _codecs.encode calls, numpy.core instead of numpy._core), so both
spellings are tested. The image-folder tests write PNG and JPEG files with Pillow.
"""
import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from minipixel import data

REPO = Path(__file__).resolve().parents[1]
CIFAR10_JPG = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


# ---------------------------------------------------------------- CIFAR-10 helpers


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did at protocol 2: every byte string (and
    text, which was a byte string there too) as a SHORT_BINSTRING/BINSTRING opcode."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin1")
        n = len(obj)
        opcode = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(opcode + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def dumps_batch(batch, style):
    """A batch dict pickled at protocol 2, as Python 3 ("py3") or Python 2 with numpy 1.x ("py2") writes it."""
    if style == "py3":
        return pickle.dumps(batch, protocol=2)
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(batch)
    return out.getvalue().replace(b"cnumpy._core.multiarray\n_reconstruct\n", b"cnumpy.core.multiarray\n_reconstruct\n")


def to_rows(images):
    """(k, 32, 32, 3) images -> (k, 3072) rows: the red plane, then green, then blue, each row-major."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), 3072)


def batch_dict(name, images, labels):
    return {
        b"batch_label": f"{name} of the fake CIFAR-10".encode(),
        b"labels": [int(v) for v in labels],
        b"data": to_rows(images),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }


def fake_cifar_batches(n=3):
    """{batch name: (images (n, 32, 32, 3) uint8, labels (n,))}, different in every batch."""
    rng = np.random.default_rng(0)
    return {name: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))
            for name in BATCHES}


def write_cifar_folder(root, batches, style="py3", skip=()):
    """Write root/cifar-10-batches-py/ with the given batches (and batches.meta, readme.html)."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in batches.items():
        if name not in skip:
            (folder / name).write_bytes(dumps_batch(batch_dict(name, images, labels), style))
    meta = {b"label_names": [b"airplane", b"automobile"], b"num_cases_per_batch": 10000, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(dumps_batch(meta, style))
    (folder / "readme.html").write_text("<html></html>")
    return folder


def write_cifar_archive(path, folder):
    """Tar and gzip ``folder`` as cifar-10-batches-py/..., members in a scrambled order like the real archive."""
    names = sorted(os.listdir(folder))
    order = [names[i] for i in np.random.default_rng(1).permutation(len(names))]
    with tarfile.open(path, "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-py", recursive=False)
        for name in order:
            archive.add(folder / name, arcname=f"cifar-10-batches-py/{name}")
    return path


def expected_split(batches, split):
    names = ["test_batch"] if split == "test" else BATCHES[:5]
    return np.concatenate([batches[n][0] for n in names]), np.concatenate([batches[n][1] for n in names])


@pytest.fixture
def cifar(tmp_path):
    """A fake CIFAR-10 both as an extracted folder and as cifar-10-python.tar.gz."""
    batches = fake_cifar_batches()
    folder = write_cifar_folder(tmp_path / "extracted", batches)
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    return batches, folder, archive


# ---------------------------------------------------------------- CIFAR-10: good files


@pytest.mark.parametrize("style", ["py3", "py2"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_read_cifar10_archive_and_folder(tmp_path, style, split):
    batches = fake_cifar_batches()
    raw = dumps_batch(batch_dict("test_batch", *batches["test_batch"]), style)
    if style == "py2":  # what the published files hold
        assert raw.startswith(b"\x80\x02}q\x00(U\x0bbatch_label") and b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    else:  # what Python 3 writes at protocol 2: bytes as _codecs.encode calls
        assert b"c_codecs\nencode\n" in raw and b"cnumpy._core.multiarray\n_reconstruct\n" in raw
    folder = write_cifar_folder(tmp_path / "extracted", batches, style=style)
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    images, classes = expected_split(batches, split)
    for path in (archive, folder, folder.parent, str(archive)):
        got = data.read_cifar10(path, split)
        assert got.images.shape == (len(images), 32, 32, 3) and got.images.dtype == np.uint8
        assert got.max_value == 255 and got.source == str(path)
        np.testing.assert_array_equal(got.images, images)
        np.testing.assert_array_equal(got.classes, classes)
        assert got.classes.dtype == np.int64


def test_cifar10_planes_are_red_green_blue_and_row_major(tmp_path):
    planes = np.zeros((2, 3072), np.uint8)
    planes[0, :1024], planes[0, 1024:2048], planes[0, 2048:] = 10, 20, 30
    # Image 1: three single pixels, at (row 5, column 7) in red, (31, 0) in green, (0, 31) in blue.
    planes[1, 0 * 1024 + 5 * 32 + 7] = 200
    planes[1, 1 * 1024 + 31 * 32 + 0] = 100
    planes[1, 2 * 1024 + 0 * 32 + 31] = 50
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": planes, b"labels": [3, 4]}, protocol=2))
    got = data.read_cifar10(folder, "test")
    np.testing.assert_array_equal(got.images[0].reshape(-1, 3), np.tile([10, 20, 30], (1024, 1)))
    image = got.images[1]
    assert image[5, 7, 0] == 200 and image[31, 0, 1] == 100 and image[0, 31, 2] == 50
    assert image.astype(int).sum() == 350
    np.testing.assert_array_equal(got.classes, [3, 4])


def test_cifar10_test_split_reads_only_test_batch(cifar, tmp_path):
    batches, folder, _ = cifar
    (folder / "data_batch_1").write_bytes(b"garbage, not a pickle")
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    for path in (folder, archive):
        np.testing.assert_array_equal(data.read_cifar10(path, "test").images, batches["test_batch"][0])
        with pytest.raises(ValueError, match=r"data_batch_1.*cannot be unpickled"):
            data.read_cifar10(path, "train")


def test_read_images_and_load_find_cifar10(cifar, tmp_path, monkeypatch):
    batches, folder, archive = cifar
    train_images, _ = expected_split(batches, "train")
    for path in (archive, folder, folder.parent):
        np.testing.assert_array_equal(data.read_images(path).images, train_images)
        np.testing.assert_array_equal(data.load(str(path), size=8).images, train_images)  # size is ignored
    renamed = archive.rename(tmp_path / "cifar-10-python-copy.tar.gz")
    assert data.load(str(renamed)).images.shape == train_images.shape
    monkeypatch.chdir(tmp_path)
    assert data.load("cifar-10-python-copy.tar.gz").images.shape == train_images.shape  # a path by its name


def test_cifar10_named_dataset(cifar, tmp_path):
    batches, folder, archive = cifar
    root = tmp_path / "data"
    (root / "cifar10").mkdir(parents=True)
    archive.rename(root / "cifar10" / "cifar-10-python.tar.gz")
    got = data.load("cifar10:test", data_dir=root)
    np.testing.assert_array_equal(got.images, batches["test_batch"][0])
    np.testing.assert_array_equal(got.classes, batches["test_batch"][1])
    assert "cifar10:test" in got.source
    # The extracted folder in the data folder itself is found too.
    folder.rename(root / "cifar-10-batches-py")
    (root / "cifar10" / "cifar-10-python.tar.gz").unlink()
    np.testing.assert_array_equal(data.load("cifar10:train", data_dir=root).images, expected_split(batches, "train")[0])
    assert data.has_split("cifar10:train") and data.has_split("cifar10:test") and not data.has_split("cifar10:valid")


def test_cifar10_named_dataset_missing_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load("cifar10:train", data_dir=tmp_path)
    message = str(info.value)
    for path in (tmp_path / "cifar10" / "cifar-10-python.tar.gz", tmp_path / "cifar10" / "cifar-10-batches-py",
                 tmp_path / "cifar-10-python.tar.gz", tmp_path / "cifar-10-batches-py"):
        assert str(path) in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "c58f30108f718f92721af3b95e74349a" in message and "minipixel download cifar10" in message


# ---------------------------------------------------------------- CIFAR-10: bad files


class CallsOnLoad:
    """Pickles as a call to ``function(*args)``, which plain pickle.load would make."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize(
    "evil, refused",
    [(CallsOnLoad(os.system, "touch {marker}"), r"(posix|nt|os)\.system"),
     (CallsOnLoad(eval, "open({marker!r}, 'w')"), r"(builtins|__builtin__)\.eval"),
     (CallsOnLoad(__import__("codecs").encode, "{marker}", "rot13"), r"_codecs\.encode with the codec b?'rot13'")],
)
@pytest.mark.parametrize("style", ["py3", "py2"])
def test_cifar10_refuses_pickles_that_call_anything_else(tmp_path, evil, refused, style):
    marker = tmp_path / "ran"
    evil.args = tuple(arg.format(marker=str(marker)) for arg in evil.args)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(dumps_batch({b"data": evil, b"labels": []}, style))
    with pytest.raises(ValueError, match=r"test_batch: .*refuses to load " + refused):
        data.read_cifar10(folder, "test")
    assert not marker.exists()
    # The same from inside an archive.
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz \(member cifar-10-batches-py/test_batch\): .*refuses"):
        data.read_cifar10(archive, "test")
    assert not marker.exists()


def test_cifar10_missing_batch(tmp_path):
    batches = fake_cifar_batches()
    folder = write_cifar_folder(tmp_path / "extracted", batches, skip=("data_batch_3",))
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    found = r"found \['data_batch_1', 'data_batch_2', 'data_batch_4', 'data_batch_5', 'test_batch'\]"
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz: expected the CIFAR-10 batch files .*"
                                         r"missing \['data_batch_3'\]; " + found):
        data.read_cifar10(archive, "train")
    with pytest.raises(ValueError, match=r"cifar-10-batches-py: expected the CIFAR-10 batch files .*"
                                         r"missing \['data_batch_3'\]; " + found):
        data.read_cifar10(folder.parent, "train")
    np.testing.assert_array_equal(data.read_cifar10(archive, "test").images, batches["test_batch"][0])


def test_cifar10_no_batches_at_all(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"missing \['test_batch'\]; found no batch files"):
        data.read_cifar10(folder, "test")


@pytest.mark.parametrize(
    "change, message",
    [({b"data": np.zeros((3, 3071), np.uint8)}, r"expected b'data' to be a \(k, 3072\) uint8 array .*got shape \(3, 3071\) dtype uint8"),
     ({b"data": np.zeros((3, 3072), np.float32)}, r"got shape \(3, 3072\) dtype float32"),
     ({b"data": [1, 2, 3]}, r"expected b'data' to be a \(k, 3072\) uint8 array .*got a list"),
     ({b"labels": [1, 2]}, r"expected 3 integer labels \(one per image\) in b'labels', got shape \(2,\)"),
     ({b"labels": [1.0, 2.0, 3.0]}, r"expected 3 integer labels .*dtype float64"),
     ({b"labels": [1, [2, 3], 4]}, r"expected 3 integer labels .*got a list"),
     ({b"labels": [1, 2, 10]}, r"expected labels 0\.\.9, got values from 1 to 10")],
)
def test_cifar10_wrong_contents(tmp_path, change, message):
    batches = fake_cifar_batches()
    folder = write_cifar_folder(tmp_path, batches)
    batch = batch_dict("data_batch_2", *batches["data_batch_2"])
    batch.update(change)
    (folder / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_2: .*" + message):
        data.read_cifar10(folder, "train")


def test_cifar10_not_a_dict(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match=r"test_batch: expected a CIFAR-10 batch, a dict with b'data' and b'labels', got a list"):
        data.read_cifar10(folder, "test")
    (folder / "test_batch").write_bytes(pickle.dumps({b"pixels": 1}, protocol=2))
    with pytest.raises(ValueError, match=r"got a dict with keys \[b'pixels'\]"):
        data.read_cifar10(folder, "test")


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_cifar10_unreadable_pickle(cifar, damage):
    _, folder, _ = cifar
    path = folder / "test_batch"
    raw = path.read_bytes()
    path.write_bytes(b"\x00\x01 not a pickle" if damage == "garbage" else raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"test_batch: expected a CIFAR-10 batch \(a Python pickle\), but it cannot be unpickled"):
        data.read_cifar10(folder, "test")


@pytest.mark.parametrize("cut", ["gzip", "tar"])
def test_cifar10_truncated_archive(cifar, cut):
    _, _, archive = cifar
    raw = archive.read_bytes()
    if cut == "gzip":  # an interrupted download: the gzip stream ends early
        archive.write_bytes(raw[: len(raw) // 2])
    else:  # a complete gzip of a tar that ends in the middle of a batch
        tar = gzip.decompress(raw)
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            member = t.getmember("cifar-10-batches-py/data_batch_4")
        archive.write_bytes(gzip.compress(tar[: member.offset_data + member.size // 2]))
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz: expected a complete tar\.gz archive, but it cannot be read"):
        data.read_cifar10(archive, "train")


def test_cifar10_archive_that_is_not_gzip(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz: expected a complete tar\.gz archive"):
        data.read_images(archive)


def test_cifar10_bad_split_and_missing_path(cifar, tmp_path):
    _, folder, _ = cifar
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'train'\], got 'valid'"):
        data.read_cifar10(folder, "valid")
    with pytest.raises(FileNotFoundError, match=r"nothing\.tar\.gz"):
        data.read_cifar10(tmp_path / "nothing.tar.gz")


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
    got = data.read_image_folder(tmp_path)
    assert got.images.shape == (3, 6, 5, 1) and got.images.dtype == np.uint8
    assert got.max_value == 255 and got.classes is None and got.source == str(tmp_path)
    for k, name in enumerate(sorted(names)):
        np.testing.assert_array_equal(got.images[k, ..., 0], pixels[name])


def test_read_image_converts_to_the_channels_asked_for(tmp_path):
    colour, grey = random_image((5, 4, 3), 0), random_image((5, 4), 1)
    save(tmp_path / "c.png", colour)
    save(tmp_path / "g.png", grey)
    np.testing.assert_array_equal(data.read_image(tmp_path / "c.png"), colour)
    expected_grey = np.asarray(Image.fromarray(colour).convert("L"))[..., None]
    np.testing.assert_array_equal(data.read_image(tmp_path / "c.png", channels=1), expected_grey)
    np.testing.assert_array_equal(data.read_image(tmp_path / "g.png", channels=3), np.repeat(grey[..., None], 3, -1))
    np.testing.assert_array_equal(data.read_image(tmp_path / "g.png"), grey[..., None])
    with pytest.raises(ValueError, match="channels must be"):
        data.read_image(tmp_path / "g.png", channels=2)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png: cannot read it as an image"):
        data.read_image(tmp_path / "bad.png")


def test_reading_bar_can_be_turned_off(tmp_path, monkeypatch, capsys):
    for k in range(3):
        save(tmp_path / f"{k}.png", random_image((4, 4), k))
    monkeypatch.setattr(data, "_PROGRESS_MIN_FILES", 1)  # a bar even for 3 files
    data.load(str(tmp_path), progress=True)
    assert "reading" in capsys.readouterr().err
    data.load(str(tmp_path), progress=False)
    assert capsys.readouterr().err == ""


def test_class_folders_of_colour_pngs(tmp_path):
    layout = {"zebra": ["2.png", "1.png"], "ant": ["x.png"], "moth": ["a.png", "b.PNG", "c.png"]}
    pixels = {}
    for seed, (cls, names) in enumerate(layout.items()):
        for k, name in enumerate(names):
            pixels[cls, name] = random_image((4, 7, 3), 10 * seed + k)
            save(tmp_path / cls / name, pixels[cls, name])
    (tmp_path / "README.md").write_text("a file beside the class folders is skipped")
    (tmp_path / ".git").mkdir()  # hidden folders are not classes
    got = data.read_image_folder(tmp_path)
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
    got = data.read_image_folder(tmp_path / "colour")
    assert got.images.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(got.images.mean(axis=(1, 2)), colours, atol=3)
    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    save(tmp_path / "grey" / "ramp.JPEG", ramp, quality=95)
    save(tmp_path / "grey" / "flat.jpeg", np.full((16, 16), 77, np.uint8), quality=95)
    got = data.read_image_folder(tmp_path / "grey")
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
    got = data.read_image_folder(tmp_path)
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
    got = data.read_image_folder(tmp_path)
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
    got = data.read_image_folder(tmp_path, size=16)
    assert got.images.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(got.images, solid((0, 0, 255), (16, 16))[None].repeat(2, axis=0))
    same = data.read_image_folder(tmp_path, size=30)  # a 30x30 crop is not resampled at all
    np.testing.assert_array_equal(same.images[1], wide[:, 5:35])
    # A detailed image is resized with a smooth filter: close to a 2x2 box average.
    detail = random_image((32, 32), 4)
    save(tmp_path / "detail" / "d.png", detail)
    small = data.read_image_folder(tmp_path / "detail", size=16).images[0, ..., 0].astype(float)
    box = detail.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    assert np.abs(small - box).mean() < np.abs(detail[::2, ::2] - box).mean() / 2


def test_size_must_be_a_positive_integer(tmp_path):
    save(tmp_path / "a.png", random_image((4, 4), 0))
    for bad in (0, -3, 2.5, True, "16"):
        with pytest.raises(ValueError, match=r"size must be None or an integer >= 1, got"):
            data.read_image_folder(tmp_path, size=bad)


def test_read_images_and_load_read_image_folders_with_size(tmp_path):
    save(tmp_path / "pics" / "cat" / "a.jpg", random_image((30, 40, 3), 0))
    save(tmp_path / "pics" / "dog" / "b.png", random_image((50, 20, 3), 1))
    got = data.read_images(tmp_path / "pics", size=12)
    assert got.images.shape == (2, 12, 12, 3)
    np.testing.assert_array_equal(got.classes, [0, 1])
    got = data.load(str(tmp_path / "pics"), size=8)
    assert got.images.shape == (2, 8, 8, 3) and "pics" in got.source
    with pytest.raises(ValueError, match=r"b\.png: is 20x50 pixels"):
        data.load(str(tmp_path / "pics"))


def test_progress_bar_only_for_many_files(tmp_path, capsys, monkeypatch):
    for k in range(3):
        save(tmp_path / f"{k}.png", random_image((4, 4), k))
    data.read_image_folder(tmp_path)
    assert "reading" not in capsys.readouterr().err
    monkeypatch.setattr(data, "_PROGRESS_MIN_FILES", 2)
    data.read_image_folder(tmp_path)
    assert f"reading {tmp_path.name}" in capsys.readouterr().err


# ---------------------------------------------------------------- image folder: bad folders


def test_mixed_sizes_without_size_names_both_files(tmp_path):
    save(tmp_path / "a.png", random_image((30, 40, 3), 0))
    save(tmp_path / "b.png", random_image((30, 40, 3), 1))
    save(tmp_path / "c.png", random_image((32, 32, 3), 2))
    with pytest.raises(ValueError) as info:
        data.read_image_folder(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'c.png'}: is 32x32 pixels (width x height), but {tmp_path / 'a.png'} is 40x30")
    assert "--size S" in message
    assert data.read_image_folder(tmp_path, size=20).images.shape == (3, 20, 20, 3)


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
        data.read_image_folder(tmp_path)


def test_16_bit_images_are_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match=r"deep\.png: image mode I;16.* is not supported"):
        data.read_image_folder(tmp_path)


@pytest.mark.parametrize("contents", [[], ["notes.txt"], ["sub/notes.txt"]])
def test_folder_without_images_says_what_was_looked_for(tmp_path, contents):
    for name in contents:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("text")
    with pytest.raises(ValueError, match=rf"{tmp_path.name}: found no images \(\.png/\.jpg/\.jpeg, any case\)"):
        data.read_image_folder(tmp_path)
    with pytest.raises(ValueError, match=r"found no images"):
        data.read_images(tmp_path)  # a folder that is not CIFAR-10 is an image folder


def test_images_beside_class_folders_or_empty_class(tmp_path):
    save(tmp_path / "cat" / "1.png", random_image((4, 4), 0))
    (tmp_path / "dog").mkdir()
    with pytest.raises(ValueError, match=r"expected images \(\.png/\.jpg/\.jpeg\) in every class sub-folder, found none in \['dog'\]"):
        data.read_image_folder(tmp_path)
    save(tmp_path / "dog" / "1.png", random_image((4, 4), 1))
    save(tmp_path / "stray.png", random_image((4, 4), 2))
    with pytest.raises(ValueError, match=r"either directly in the folder or in one sub-folder per class, found both \(e\.g\. stray\.png and cat/\)"):
        data.read_image_folder(tmp_path)


def test_image_folder_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.read_image_folder(tmp_path / "nowhere")
    path = save(tmp_path / "a.png", random_image((4, 4), 0))
    with pytest.raises(ValueError, match=r"a\.png: is a file, expected a folder of images"):
        data.read_image_folder(path)


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
    got = data.read_image_folder(tmp_path)
    assert got.images.shape == (2 * wanted, 32, 32, 3) and got.images.dtype == np.uint8
    np.testing.assert_array_equal(got.classes, [0] * wanted + [1] * wanted)
    assert 20 < got.images.mean() < 235 and got.images.std() > 10  # real photographs, not blank
    # The colour channels differ: the files are decoded as RGB, not as grey.
    assert np.abs(got.images[..., 0].astype(int) - got.images[..., 2]).mean() > 2
