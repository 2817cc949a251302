"""Tests for minipixel.datasets.idx: IDX files as MNIST and Fashion-MNIST ship them.

Small files in the real format are written into a temporary folder (see
dataset_files.py); the tests check the arrays read back and that damaged
variants raise errors naming the file.
"""
import struct

import numpy as np
import pytest
from dataset_files import random_grey, truncate_gzip, write_idx

from minipixel.datasets.idx import read_idx


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_with_labels_beside(tmp_path, gz):
    suffix = ".gz" if gz else ""
    images = random_grey(6, shape=(5, 4))
    labels = np.array([3, 1, 4, 1, 5, 9], np.uint8)
    path = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    got = read_idx(path)
    assert got.images.shape == (6, 5, 4, 1) and got.images.dtype == np.uint8 and got.max_value == 255
    np.testing.assert_array_equal(got.images[..., 0], images)
    np.testing.assert_array_equal(got.classes, labels)
    got.images[0, 0, 0, 0] = 1  # the arrays are ordinary writable arrays


def test_read_idx_labels_gz_beside_plain_images(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", random_grey(2))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", [7, 2])
    np.testing.assert_array_equal(read_idx(path).classes, [7, 2])


def test_read_idx_without_labels_file(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", random_grey(2))
    assert read_idx(path).classes is None


def test_read_idx_labels_of_wrong_length(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", random_grey(3))
    write_idx(tmp_path / "train-labels-idx1-ubyte", [1, 2])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: expected 3 labels"):
        read_idx(path)


def test_read_idx_labels_file_as_images(tmp_path):
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", [1, 2, 3])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: expected an images file \(3 dimensions\), got 1"):
        read_idx(path)


@pytest.mark.parametrize("byte", [0, 1])
def test_read_idx_bad_magic(tmp_path, byte):
    path = write_idx(tmp_path / "a-ubyte", random_grey(2))
    raw = bytearray(path.read_bytes())
    raw[byte] = 0x1F
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"a-ubyte: not an IDX file: expected the first two bytes to be 0"):
        read_idx(path)


def test_read_idx_unknown_type_code(tmp_path):
    path = write_idx(tmp_path / "b-ubyte", random_grey(2), type_code=0x05)
    with pytest.raises(ValueError, match=r"b-ubyte: not an IDX file: type code 0x05"):
        read_idx(path)


def test_read_idx_unsupported_type_code(tmp_path):
    path = write_idx(tmp_path / "c-ubyte", random_grey(2), type_code=0x0D)
    with pytest.raises(ValueError, match=r"c-ubyte: IDX type code 0x0d \(float \(float32\)\) is not supported"):
        read_idx(path)


def test_read_idx_truncated_data(tmp_path):
    path = write_idx(tmp_path / "d-ubyte", random_grey(3, shape=(10, 20)))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"d-ubyte: expected 600 bytes of pixels after the header .*, found 599"):
        read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "e-ubyte"
    path.write_bytes(struct.pack(">HBB", 0, 8, 3) + struct.pack(">I", 5))
    with pytest.raises(ValueError, match=r"e-ubyte: expected a 16-byte header for 3 dimensions"):
        read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    path = truncate_gzip(write_idx(tmp_path / "train-images-idx3-ubyte.gz", random_grey(20)))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: expected a complete gzip file"):
        read_idx(path)
