"""Tests for minipixel.datasets.mnist_csv: MNIST as CSV (the shipped mnist_5k.csv.gz).

Small files in the real format are written into a temporary folder (see
dataset_files.py); the tests check the arrays read back and that damaged
variants raise errors naming the file.
"""
import numpy as np
import pytest
from dataset_files import csv_lines, random_grey, write_text

from minipixel.datasets.mnist_csv import read_mnist_csv


# ---------------------------------------------------------------- MNIST CSV


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz"])
def test_read_mnist_csv(tmp_path, name):
    images = random_grey(4)
    classes = [0, 9, 3, 3]
    path = write_text(tmp_path / name, csv_lines(images, classes))
    got = read_mnist_csv(path)
    assert got.images.shape == (4, 28, 28, 1) and got.images.dtype == np.uint8 and got.max_value == 255
    np.testing.assert_array_equal(got.images[..., 0], images)
    np.testing.assert_array_equal(got.classes, classes)


def test_read_mnist_csv_wrong_count(tmp_path):
    lines = csv_lines(random_grey(3), [1, 2, 3])
    lines[2] += ",0"
    path = write_text(tmp_path / "long.csv", lines)
    with pytest.raises(ValueError, match=r"long\.csv: expected 785 comma-separated values .* line 3 has 786"):
        read_mnist_csv(path)


@pytest.mark.parametrize(
    "value, message",
    [("256", r"expected pixel values 0\.\.255, line 2 value 11 is 256"),
     ("-1", r"expected pixel values 0\.\.255, line 2 value 11 is -1"),
     ("1.5", r"line 2, value 11: cannot read '1\.5' as an integer")],
)
def test_read_mnist_csv_bad_value(tmp_path, value, message):
    lines = csv_lines(random_grey(3), [1, 2, 3])
    words = lines[1].split(",")
    words[10] = value
    lines[1] = ",".join(words)
    path = write_text(tmp_path / "bad.csv.gz", lines)
    with pytest.raises(ValueError, match=r"bad\.csv\.gz: " + message):
        read_mnist_csv(path)


# ---------------------------------------------------------------- edges: last pixel, class, empty file


def test_last_pixel_and_the_class_are_checked(tmp_path):
    images = random_grey(2)
    lines = csv_lines(images, [1, 2])
    path = write_text(tmp_path / "last.csv", [lines[0], lines[1].rsplit(",", 2)[0] + ",256,2"])
    with pytest.raises(ValueError, match=r"line 2 value 784 is 256"):
        read_mnist_csv(path)
    path = write_text(tmp_path / "class.csv", [lines[0], lines[1].rsplit(",", 1)[0] + ",-1"])
    with pytest.raises(ValueError, match=r"expected a class label >= 0 at the end of line 2, got -1"):
        read_mnist_csv(path)


def test_empty_file_is_named_and_a_good_one_is_the_source(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"\n\n")
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'empty.csv'}: expected one image a line"):
        read_mnist_csv(tmp_path / "empty.csv")
    path = write_text(tmp_path / "m.csv", csv_lines(random_grey(1), [7]))
    assert read_mnist_csv(path).source == str(path)
