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


# ---------------------------------------------------------------- edges: headers, names, source


def test_header_of_no_dimensions_wants_one_value(tmp_path):
    # 4 bytes: a whole header for 0 dimensions (a single value), and no value after it.
    path = tmp_path / "x-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x00")
    with pytest.raises(ValueError, match=r"expected 1 bytes of pixels after the header \(shape \(\)\), found 0"):
        read_idx(path)


@pytest.mark.parametrize("shape", [(2**32 - 1, 1, 70_000), (2**32 - 1,) * 3])
def test_corrupt_sizes_are_reported_as_written(tmp_path, shape):
    # Sizes of up to 32 bits each, multiplied without overflow, and nothing allocated.
    path = tmp_path / "x-images-idx3-ubyte"
    path.write_bytes(struct.pack(">HBB3I", 0, 8, 3, *shape))
    expected = shape[0] * shape[1] * shape[2]
    with pytest.raises(ValueError, match=rf"expected {expected} bytes of pixels after the header "
                                         rf"\(shape \({shape[0]}, {shape[1]}, {shape[2]}\)\), found 0"):
        read_idx(path)


def test_gzipped_images_find_plain_labels_and_say_where_they_came_from(tmp_path):
    images = random_grey(3)
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", [4, 0, 9])
    got = read_idx(path)
    np.testing.assert_array_equal(got.classes, [4, 0, 9])
    assert got.source == str(path)


def test_labels_only_beside_files_named_as_mnist_names_them(tmp_path):
    # "idx3" without "images" in the name: not MNIST's naming, so no labels file is looked for.
    path = write_idx(tmp_path / "digits-idx3-ubyte", random_grey(2))
    write_idx(tmp_path / "digits-idx1-ubyte", [1, 2])
    assert read_idx(path).classes is None
