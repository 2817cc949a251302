"""Tests for minipixel.datasets.formats: read_images picks the reader from the file name."""
import re

import numpy as np
import pytest
from dataset_files import amat_lines, csv_lines, random_binary, random_grey, write_idx, write_text

from minipixel.data import ImageSet
from minipixel.datasets.cifar10 import read_cifar10
from minipixel.datasets.formats import reader_for, read_images
from minipixel.datasets.npz import write_npz


# ---------------------------------------------------------------- read_images


def test_read_images_dispatches_on_name(tmp_path):
    amat = write_text(tmp_path / "a.amat.gz", amat_lines(random_binary(1)))
    idx = write_idx(tmp_path / "x-images-idx3-ubyte", random_grey(2, shape=(3, 3)))
    csv = write_text(tmp_path / "c.csv", csv_lines(random_grey(3), [1, 2, 3]))
    npz = tmp_path / "n.npz"
    write_npz(npz, ImageSet(np.zeros((4, 2, 2, 3), np.uint8), 255, "mem"))
    assert read_images(amat).images.shape == (1, 28, 28, 1)
    assert read_images(idx).images.shape == (2, 3, 3, 1)
    assert read_images(csv).images.shape == (3, 28, 28, 1)
    assert read_images(str(npz)).images.shape == (4, 2, 2, 3)


def test_read_images_rejects_empty_directory_and_unknown_suffix(tmp_path):
    # A folder is read as a folder of images (see test_image_folder.py).
    with pytest.raises(ValueError, match=r"found no images \(\.png/\.jpg/\.jpeg"):
        read_images(tmp_path)
    other = tmp_path / "pic.txt"
    other.write_text("hello")
    with pytest.raises(ValueError, match=r"pic\.txt: unknown file type.*\.amat.*-ubyte.*\.csv.*\.npz.*"
                                         r"cifar-10-python\.tar\.gz.*folder of \.png/\.jpg/\.jpeg images"):
        read_images(other)
    with pytest.raises(FileNotFoundError, match=r"gone\.txt"):
        read_images(tmp_path / "gone.txt")


@pytest.mark.parametrize("name", ["images.tar.gz", "cifar-10-python.zip", "CIFAR-10-batches.tar"])
def test_only_a_cifar_10_tar_gz_is_taken_for_cifar_10(tmp_path, name):
    # Another .tar.gz, or a cifar-10 name that is no .tar.gz, is no format read_images knows.
    assert reader_for("cifar-10-python.tar.gz") is reader_for("CIFAR-10-Python.TAR.GZ") is read_cifar10
    path = tmp_path / name
    path.write_bytes(b"\x1f\x8b not really")
    assert reader_for(name) is None
    with pytest.raises(ValueError, match=rf"{re.escape(name)}: unknown file type; expected one of these formats"):
        read_images(path)


def test_an_image_folder_read_by_name_shows_its_progress_unless_asked_not_to(tmp_path, monkeypatch):
    from minipixel.datasets import formats

    asked = []
    monkeypatch.setattr(formats, "read_image_folder", lambda path, size, progress: asked.append((size, progress)))
    read_images(tmp_path)
    read_images(tmp_path, 16, progress=False)
    assert asked == [(None, True), (16, False)]
