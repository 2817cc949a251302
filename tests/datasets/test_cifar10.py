"""Tests for minipixel.datasets.cifar10: CIFAR-10's python version, read safely.

The tests write small batches laid out as the published ones are: a
dict with b"batch_label", b"labels", b"data" and b"filenames", pickled at
protocol 2, in cifar-10-batches-py/ (data_batch_1..5, test_batch), tarred and
gzipped. The published files were written by Python 2, whose pickles differ
from what Python 3 writes at protocol 2 (byte strings as BINSTRING opcodes
instead of _codecs.encode calls, numpy.core instead of numpy._core), so both
spellings are tested.
"""
import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from minipixel.datasets.cifar10 import read_cifar10
from minipixel.datasets.formats import read_images
from minipixel.datasets.registry import has_split, load

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
        got = read_cifar10(path, split)
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
    got = read_cifar10(folder, "test")
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
        np.testing.assert_array_equal(read_cifar10(path, "test").images, batches["test_batch"][0])
        with pytest.raises(ValueError, match=r"data_batch_1.*cannot be unpickled"):
            read_cifar10(path, "train")


def test_read_images_and_load_find_cifar10(cifar, tmp_path, monkeypatch):
    batches, folder, archive = cifar
    train_images, _ = expected_split(batches, "train")
    for path in (archive, folder, folder.parent):
        np.testing.assert_array_equal(read_images(path).images, train_images)
        np.testing.assert_array_equal(load(str(path), size=8).images, train_images)  # size is ignored
    renamed = archive.rename(tmp_path / "cifar-10-python-copy.tar.gz")
    assert load(str(renamed)).images.shape == train_images.shape
    monkeypatch.chdir(tmp_path)
    assert load("cifar-10-python-copy.tar.gz").images.shape == train_images.shape  # a path by its name


def test_cifar10_named_dataset(cifar, tmp_path):
    batches, folder, archive = cifar
    root = tmp_path / "data"
    (root / "cifar10").mkdir(parents=True)
    archive.rename(root / "cifar10" / "cifar-10-python.tar.gz")
    got = load("cifar10:test", data_dir=root)
    np.testing.assert_array_equal(got.images, batches["test_batch"][0])
    np.testing.assert_array_equal(got.classes, batches["test_batch"][1])
    assert "cifar10:test" in got.source
    # The extracted folder in the data folder itself is found too.
    folder.rename(root / "cifar-10-batches-py")
    (root / "cifar10" / "cifar-10-python.tar.gz").unlink()
    np.testing.assert_array_equal(load("cifar10:train", data_dir=root).images, expected_split(batches, "train")[0])
    assert has_split("cifar10:train") and has_split("cifar10:test") and not has_split("cifar10:valid")


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
        read_cifar10(folder, "test")
    assert not marker.exists()
    # The same from inside an archive.
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz \(member cifar-10-batches-py/test_batch\): .*refuses"):
        read_cifar10(archive, "test")
    assert not marker.exists()


@pytest.mark.parametrize("style", ["py3", "py2"])
def test_cifar10_refuses_numpy_asked_for_a_huge_array(tmp_path, style):
    # numpy's own reconstructor, which every pickled array names, asked for 2**40
    # bytes: allowed through, it would try to allocate a terabyte.
    reconstruct = np.ndarray((0,), np.uint8).__reduce__()[0]
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    huge = CallsOnLoad(reconstruct, np.ndarray, (2**40,), b"b")
    (folder / "test_batch").write_bytes(dumps_batch({b"data": huge, b"labels": []}, style))
    with pytest.raises(ValueError, match=r"test_batch: .*refuses _reconstruct\(ndarray, \(1099511627776,\)\)"):
        read_cifar10(folder, "test")
    # ... and the array class itself cannot be called either
    (folder / "test_batch").write_bytes(dumps_batch({b"data": CallsOnLoad(np.ndarray, (2**40,)), b"labels": []}, style))
    with pytest.raises(ValueError, match=r"test_batch: expected a CIFAR-10 batch \(a Python pickle\), but it cannot"):
        read_cifar10(folder, "test")


@pytest.mark.parametrize("name, link, refused", [
    ("../cifar-10-batches-py/test_batch", None, r"member '\.\./cifar-10-batches-py/test_batch' outside"),
    ("/tmp/cifar-10-batches-py/test_batch", None, r"member '/tmp/cifar-10-batches-py/test_batch' outside"),
    ("cifar-10-batches-py/test_batch", "../../etc/passwd", r"link target '\.\./\.\./etc/passwd' outside"),
    ("cifar-10-batches-py/readme.html", "/etc/passwd", r"link target '/etc/passwd' outside"),
])
def test_cifar10_archive_with_members_outside_its_folder_is_refused(cifar, tmp_path, name, link, refused):
    batches, folder, _ = cifar
    path = tmp_path / "hostile" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as archive:  # the hostile member first: reading stops at the last batch wanted
        info = tarfile.TarInfo(name)
        if link is None:
            raw = (folder / "test_batch").read_bytes()
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
        else:
            info.type, info.linkname = tarfile.SYMTYPE, link
            archive.addfile(info)
        for batch in BATCHES:
            archive.add(folder / batch, arcname=f"cifar-10-batches-py/{batch}")
    with pytest.raises(ValueError, match=r"hostile/cifar-10-python\.tar\.gz: the archive holds a " + refused):
        read_cifar10(path, "test")
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_cifar10_archive_member_claiming_too_much_is_refused(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
    info.size = 2**30  # a header that says a gigabyte follows; the data is not there
    path.write_bytes(gzip.compress(info.tobuf() + bytes(1024)))
    with pytest.raises(ValueError, match=r"member cifar-10-batches-py/test_batch claims 1,073,741,824 bytes"):
        read_cifar10(path, "test")


def test_cifar10_missing_batch(tmp_path):
    batches = fake_cifar_batches()
    folder = write_cifar_folder(tmp_path / "extracted", batches, skip=("data_batch_3",))
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    found = r"found \['data_batch_1', 'data_batch_2', 'data_batch_4', 'data_batch_5', 'test_batch'\]"
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz: expected the CIFAR-10 batch files .*"
                                         r"missing \['data_batch_3'\]; " + found):
        read_cifar10(archive, "train")
    with pytest.raises(ValueError, match=r"cifar-10-batches-py: expected the CIFAR-10 batch files .*"
                                         r"missing \['data_batch_3'\]; " + found):
        read_cifar10(folder.parent, "train")
    np.testing.assert_array_equal(read_cifar10(archive, "test").images, batches["test_batch"][0])


def test_cifar10_no_batches_at_all(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"missing \['test_batch'\]; found no batch files"):
        read_cifar10(folder, "test")


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
        read_cifar10(folder, "train")


def test_cifar10_not_a_dict(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match=r"test_batch: expected a CIFAR-10 batch, a dict with b'data' and b'labels', got a list"):
        read_cifar10(folder, "test")
    (folder / "test_batch").write_bytes(pickle.dumps({b"pixels": 1}, protocol=2))
    with pytest.raises(ValueError, match=r"got a dict with keys \[b'pixels'\]"):
        read_cifar10(folder, "test")


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_cifar10_unreadable_pickle(cifar, damage):
    _, folder, _ = cifar
    path = folder / "test_batch"
    raw = path.read_bytes()
    path.write_bytes(b"\x00\x01 not a pickle" if damage == "garbage" else raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"test_batch: expected a CIFAR-10 batch \(a Python pickle\), but it cannot be unpickled"):
        read_cifar10(folder, "test")


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
        read_cifar10(archive, "train")


def test_cifar10_archive_that_is_not_gzip(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz: expected a complete tar\.gz archive"):
        read_images(archive)


def test_cifar10_bad_split_and_missing_path(cifar, tmp_path):
    _, folder, _ = cifar
    with pytest.raises(ValueError, match=r"split must be one of \['test', 'train'\], got 'valid'"):
        read_cifar10(folder, "valid")
    with pytest.raises(FileNotFoundError, match=r"nothing\.tar\.gz"):
        read_cifar10(tmp_path / "nothing.tar.gz")
