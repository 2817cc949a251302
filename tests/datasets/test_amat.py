"""Tests for minipixel.datasets.amat: binarized MNIST in the .amat text format.

Small files in the real format are written into a temporary folder (see
dataset_files.py); the tests check the arrays read back and that damaged
variants raise errors naming the file.
"""
import numpy as np
import pytest
from dataset_files import SHARED_DATA, amat_lines, random_binary, truncate_gzip, write_text

from minipixel.datasets.amat import read_amat
from minipixel.datasets.formats import read_images


# ---------------------------------------------------------------- .amat


@pytest.mark.parametrize("name", ["x.amat", "x.amat.gz"])
def test_read_amat(tmp_path, name):
    images = random_binary(5)
    path = write_text(tmp_path / name, amat_lines(images))
    got = read_amat(path)
    assert got.images.shape == (5, 28, 28, 1) and got.images.dtype == np.uint8
    assert got.max_value == 1 and got.classes is None and got.source == str(path)
    np.testing.assert_array_equal(got.images[..., 0], images)


def test_read_amat_accepts_float_spellings_crlf_and_blank_lines(tmp_path):
    images = random_binary(3, seed=1)
    lines = amat_lines(images[:2], one="1.000000", zero="0.") + [""] + amat_lines(images[2:], one="1.", zero="0.0")
    path = write_text(tmp_path / "f.amat", lines, newline="\r\n")
    np.testing.assert_array_equal(read_amat(path).images[..., 0], images)


def test_read_amat_wrong_count_names_file_and_line(tmp_path):
    lines = amat_lines(random_binary(3))
    lines[1] = lines[1][:-2]  # drop the last value
    path = write_text(tmp_path / "short.amat", lines)
    with pytest.raises(ValueError, match=r"short\.amat: expected 784 values per line in an \.amat file, line 2 has 783"):
        read_amat(path)


def test_read_amat_merged_values_are_not_split(tmp_path):
    # A lost space turns "0 1" into "01": still 784 characters, but 783 values.
    lines = amat_lines(random_binary(2))
    lines[0] = lines[0].replace(" ", "", 1)
    path = write_text(tmp_path / "merged.amat", lines)
    with pytest.raises(ValueError, match=r"merged\.amat: expected 784 values per line .* line 1 has 783"):
        read_amat(path)


@pytest.mark.parametrize(
    "value, message",
    [("2", r"expected only 0 and 1.*line 3 value 101 is '2'"), ("0.5", r"line 3 value 101 is '0.5'"),
     ("x", r"line 3, value 101: cannot read 'x' as a number")],
)
def test_read_amat_bad_value_names_file_line_and_value(tmp_path, value, message):
    images = random_binary(4)
    lines = amat_lines(images)
    words = lines[2].split()
    words[100] = value
    lines[2] = " ".join(words)
    path = write_text(tmp_path / "bad.amat.gz", lines)
    with pytest.raises(ValueError, match=r"bad\.amat\.gz: .*" + message):
        read_amat(path)


def test_read_amat_empty_file(tmp_path):
    path = tmp_path / "empty.amat"
    path.write_bytes(b"\n\n")
    with pytest.raises(ValueError, match=r"empty\.amat: .*empty file"):
        read_amat(path)


def test_read_amat_truncated_gzip(tmp_path):
    path = truncate_gzip(write_text(tmp_path / "cut.amat.gz", amat_lines(random_binary(50))))
    with pytest.raises(ValueError, match=r"cut\.amat\.gz: expected a complete gzip file"):
        read_amat(path)


def test_read_amat_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.amat"):
        read_amat(tmp_path / "nope.amat")

# ---------------------------------------------------------------- the real file, when present


@pytest.mark.skipif(
    not (SHARED_DATA / "binarized_mnist" / "binarized_mnist_valid.amat.gz").is_file(),
    reason="the shared binarized MNIST validation file is not on this machine",
)
def test_real_binarized_mnist_valid():
    path = SHARED_DATA / "binarized_mnist" / "binarized_mnist_valid.amat.gz"
    got = read_images(path)
    assert got.images.shape == (10000, 28, 28, 1) and got.images.dtype == np.uint8
    assert got.max_value == 1
    assert set(np.unique(got.images)) == {0, 1}
    assert 0.10 < got.images.mean() < 0.16  # MNIST strokes cover about 13% of the pixels


# ---------------------------------------------------------------- edges: spellings the quick path must not take


def test_values_of_two_digits_are_read_as_numbers(tmp_path):
    lines = amat_lines(random_binary(2))
    words = lines[1].split()
    path = write_text(tmp_path / "x.amat", [lines[0], " ".join(["01", "00", *words[2:]])])
    np.testing.assert_array_equal(read_amat(path).images[1].ravel()[:2], [1, 0])
    path = write_text(tmp_path / "y.amat", [lines[0], " ".join(["10", *words[1:]])])
    with pytest.raises(ValueError, match=r"line 2 value 1 is '10'"):
        read_amat(path)


def test_bytes_that_wrap_to_0_and_1_are_not_values(tmp_path):
    # 0xD0 and 0xD1 are "0" and "1" plus 160: a wrong sum would wrap a line of them into 0s and 1s.
    path = tmp_path / "x.amat"
    path.write_bytes(b" ".join(bytes([0xD0 + v]) for v in random_binary(1).ravel()) + b"\n")
    with pytest.raises(ValueError, match=r"line 1, value 1: cannot read"):
        read_amat(path)
