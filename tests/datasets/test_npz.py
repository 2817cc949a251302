"""Tests for minipixel.datasets.npz: minipixel's own .npz format, written atomically.

Small files in the real format are written into a temporary folder (see
dataset_files.py); the tests check the arrays read back and that damaged
variants raise errors naming the file.
"""
import os

import numpy as np
import pytest
from dataset_files import random_binary, random_grey

from minipixel.data import ImageSet
from minipixel.datasets.npz import read_npz, write_npz


# ---------------------------------------------------------------- .npz


def test_npz_round_trip_is_atomic_and_leaves_no_temp_file(tmp_path):
    imageset = ImageSet(random_grey(3, shape=(8, 8, 3)), 255, "mem", classes=np.array([1, 0, 2]))
    path = tmp_path / "set.npz"
    write_npz(path, imageset)
    got = read_npz(path)
    np.testing.assert_array_equal(got.images, imageset.images)
    np.testing.assert_array_equal(got.classes, imageset.classes)
    assert got.max_value == 255 and got.source == str(path)
    assert sorted(os.listdir(tmp_path)) == ["set.npz"]
    # Overwriting replaces the file; without classes, none come back.
    write_npz(path, ImageSet(random_binary(2)[..., None], 1, "mem"))
    got = read_npz(path)
    assert got.max_value == 1 and got.classes is None and got.images.shape == (2, 28, 28, 1)


def test_write_npz_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "set.npz"
    old = ImageSet(random_grey(2, shape=(4, 4, 1)), 255, "old")
    write_npz(path, old)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_npz(path, ImageSet(random_grey(5, shape=(4, 4, 1)), 255, "new"))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["set.npz"]


def test_read_npz_missing_key_lists_found_keys(tmp_path):
    path = tmp_path / "k.npz"
    np.savez(path, pictures=np.zeros((1, 2, 2, 1), np.uint8), max_value=255)
    with pytest.raises(ValueError, match=r"k\.npz: expected arrays 'images' and 'max_value'.*missing \['images'\].*'pictures'"):
        read_npz(path)


@pytest.mark.parametrize(
    "arrays, message",
    [({"images": np.zeros((1, 2, 2, 1), np.float32), "max_value": 255}, r"uint8 array, got shape \(1, 2, 2, 1\) dtype float32"),
     ({"images": np.zeros((2, 2, 1), np.uint8), "max_value": 255}, r"uint8 array, got shape \(2, 2, 1\)"),
     ({"images": np.zeros((1, 2, 2, 1), np.uint8), "max_value": [1, 2]}, r"'max_value' to be one integer"),
     ({"images": np.zeros((1, 2, 2, 1), np.uint8), "max_value": 1, "classes": [1, 2]}, r"classes as \(1,\)")],
)
def test_read_npz_wrong_contents(tmp_path, arrays, message):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"w\.npz: .*" + message):
        read_npz(path)


def test_read_npz_not_a_zip(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(ValueError, match=r"junk\.npz: expected an \.npz file of images \(a zip archive\)"):
        read_npz(path)


def test_read_npz_truncated(tmp_path):
    path = tmp_path / "cut.npz"
    write_npz(path, ImageSet(random_grey(20)[..., None], 255, "mem"))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"cut\.npz: expected an \.npz file"):
        read_npz(path)


def test_read_npz_damaged_inside(tmp_path):
    path = tmp_path / "bent.npz"
    write_npz(path, ImageSet(random_grey(20)[..., None], 255, "mem"))
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(64)  # the zip directory survives, the compressed data does not
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"bent\.npz: cannot read an \.npz file of images \(BadZipFile"):
        read_npz(path)
