"""Tests for minipixel.datasets.registry: named datasets, the data folder, and the not-found messages.

Small files in the real formats are put where a named dataset is looked for
(the data folder, its sub-folder, the bundled copy), then found through load().
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_files import REPO, amat_lines, csv_lines, random_binary, random_grey, write_idx, write_text

from minipixel.datasets import registry
from minipixel.datasets.class_names import class_names, class_number
from minipixel.datasets.registry import DATASETS, DEFAULT_DATA_DIR, bundled_data_dirs, data_dir, has_split, load


# ---------------------------------------------------------------- named datasets


def test_data_dir_explicit_env_default(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIPIXEL_DATA", raising=False)
    assert data_dir() == Path("data") == Path(DEFAULT_DATA_DIR)
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    assert data_dir("elsewhere") == Path("elsewhere")


def test_bundled_data_dirs():
    dirs = bundled_data_dirs()
    assert REPO / "data" in dirs
    assert Path(sys.prefix) / "share" / "minipixel" in dirs


def test_binarized_mnist_found_in_subfolder_then_root(tmp_path):
    sub = tmp_path / "binarized_mnist"
    sub.mkdir()
    in_sub, in_root = random_binary(2, seed=1), random_binary(3, seed=2)
    write_text(sub / "binarized_mnist_valid.amat.gz", amat_lines(in_sub))
    write_text(tmp_path / "binarized_mnist_valid.amat", amat_lines(in_root))
    write_text(tmp_path / "binarized_mnist_train.amat", amat_lines(in_root))
    got = load("binarized-mnist:valid", data_dir=tmp_path)  # the sub-folder wins
    np.testing.assert_array_equal(got.images[..., 0], in_sub)
    assert "binarized-mnist:valid" in got.source
    got = load("binarized-mnist:train", data_dir=str(tmp_path))  # only in the root
    np.testing.assert_array_equal(got.images[..., 0], in_root)


def test_mnist_and_fashion_mnist_from_idx(tmp_path):
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", random_grey(3))
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", [4, 5, 6])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", random_grey(2, seed=9))
    got = load("mnist:train", data_dir=tmp_path)
    assert got.images.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(got.classes, [4, 5, 6])
    got = load("fashion-mnist:test", data_dir=tmp_path)  # found in the root
    np.testing.assert_array_equal(got.images[..., 0], random_grey(2, seed=9))


def test_missing_named_dataset_lists_paths_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load("binarized-mnist:test", data_dir=tmp_path)
    message = str(info.value)
    for path in [tmp_path / "binarized_mnist" / "binarized_mnist_test.amat",
                 tmp_path / "binarized_mnist" / "binarized_mnist_test.amat.gz",
                 tmp_path / "binarized_mnist_test.amat",
                 tmp_path / "binarized_mnist_test.amat.gz"]:
        assert str(path) in message
    assert "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/" in message
    assert "--data-dir" in message and "MINIPIXEL_DATA" in message
    # One path a line, in the order tried; the files go in the dataset's own sub-folder.
    assert f"looked at:\n  {tmp_path / 'binarized_mnist' / 'binarized_mnist_test.amat'}\n  " in message
    assert f"\n  {tmp_path / 'binarized_mnist_test.amat.gz'}\nTo get it: " in message
    assert f"put it in {tmp_path / 'binarized_mnist'}/. " in message


def test_missing_dataset_without_a_sub_folder_goes_in_the_data_folder(tmp_path, monkeypatch):
    # mnist5k has no sub-folder; without the shipped copy (an install that lost it)
    # it is looked for, and belongs, in the data folder itself.
    monkeypatch.setattr(registry, "bundled_data_dirs", lambda: [])
    with pytest.raises(FileNotFoundError, match=rf"mnist5k:train: file not found; looked at:\n  "
                                                rf"{tmp_path / 'mnist_5k.csv.gz'}\nTo get it: .*, and put it in "
                                                rf"{tmp_path}/\. "):
        load("mnist5k:train", data_dir=tmp_path)


@pytest.mark.parametrize(
    "spec, url",
    [("mnist:test", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
     ("fashion-mnist:train", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")],
)
def test_missing_idx_dataset_says_where_to_get_it(tmp_path, spec, url):
    with pytest.raises(FileNotFoundError, match=url.replace(".", r"\.")):
        load(spec, data_dir=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "binarized-mnist", "cifar10"])
def test_missing_dataset_mentions_the_download_command(tmp_path, name):
    with pytest.raises(FileNotFoundError, match=f"or run `minipixel download {name}`"):
        load(f"{name}:train", data_dir=tmp_path)


@pytest.mark.parametrize("spec", ["cifar11:train", "mnist:valid", "binarized-mnist", "mnist5k:"])
def test_unknown_dataset_or_split(spec):
    with pytest.raises(ValueError, match=r"one of: mnist5k:train\|valid\|all, binarized-mnist:train\|valid\|test, "
                                         r"mnist:train\|test, fashion-mnist:train\|test, cifar10:train\|test$"):
        load(spec)
    assert not has_split(spec)


@pytest.mark.parametrize("spec", ["cifar11:valid", "nowhere/x.npz:valid", "C:/data/digits:valid", "mnist", ""])
def test_has_split_is_false_for_what_is_no_named_dataset(spec):
    # What prepare_data asks about a --data ending in ":train": a path is no dataset.
    assert has_split(spec) is False
    assert has_split("mnist:test") is True and has_split("binarized-mnist:valid") is True


def test_load_reads_paths_and_reports_missing_ones(tmp_path, monkeypatch):
    path = write_text(tmp_path / "x.amat", amat_lines(random_binary(2)))
    assert load(str(path)).images.shape == (2, 28, 28, 1)
    assert load(path).images.shape == (2, 28, 28, 1)
    with pytest.raises(FileNotFoundError, match=r"nowhere/y\.amat"):
        load("nowhere/y.amat")
    monkeypatch.chdir(tmp_path)
    assert load("x.amat").images.shape == (2, 28, 28, 1)  # no separator, but it exists
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        load("missing.npz")  # a known suffix makes it a path
    with pytest.raises(FileNotFoundError, match=r"nowhere/images"):
        load("nowhere/images")  # a separator makes it a path, with no suffix and though it does not exist
    (tmp_path / "digits").write_bytes(b"")
    with pytest.raises(ValueError, match=r"^digits: unknown file type"):
        load("digits")  # neither separator nor known suffix, but it exists: a path, read as one


def test_load_uses_minipixel_data_env(tmp_path, monkeypatch):
    write_text(tmp_path / "binarized_mnist_train.amat", amat_lines(random_binary(3)))
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path))
    assert load("binarized-mnist:train").images.shape == (3, 28, 28, 1)
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="empty"):
        load("binarized-mnist:train")


def test_datasets_table_is_complete():
    for name, entry in DATASETS.items():
        assert set(entry) >= {"files", "folder", "bundled", "read", "select", "get"}, name
        assert entry["files"] and all(entry["files"].values()), name
    assert set(DATASETS["binarized-mnist"]["files"]) == {"train", "valid", "test"}
    assert set(DATASETS["mnist"]["files"]) == {"train", "test"}
    assert set(DATASETS["mnist5k"]["files"]) == {"train", "valid", "all"}
    assert set(DATASETS["cifar10"]["files"]) == {"train", "test"}


@pytest.fixture(scope="module")
def mnist5k():
    """The three splits of the shipped mnist_5k.csv.gz, found through bundled_data_dirs()."""
    assert (REPO / "data" / "mnist_5k.csv.gz").is_file()
    empty = REPO / "tests" / "no-such-data-dir"  # nothing there: the bundled copy must be used
    return {split: load(f"mnist5k:{split}", data_dir=empty) for split in ("train", "valid", "all")}


def test_mnist5k_splits(mnist5k):
    train, valid, full = mnist5k["train"], mnist5k["valid"], mnist5k["all"]
    assert len(train.images) == 4500 and len(valid.images) == 500 and len(full.images) == 5000
    assert full.max_value == 255 and full.images.shape[1:] == (28, 28, 1)
    np.testing.assert_array_equal(np.bincount(valid.classes, minlength=10), [50] * 10)
    np.testing.assert_array_equal(np.bincount(train.classes, minlength=10), [450] * 10)
    np.testing.assert_array_equal(valid.images, full.images[9::10])
    keep = np.arange(5000) % 10 != 9
    np.testing.assert_array_equal(train.images, full.images[keep])
    for split, got in mnist5k.items():  # each split still names the file it came from
        assert got.source.startswith(f"mnist5k:{split} (") and got.source.endswith("mnist_5k.csv.gz)"), got.source


def test_mnist5k_data_dir_copy_comes_before_the_bundled_one(tmp_path):
    images = random_grey(20)
    write_text(tmp_path / "mnist_5k.csv.gz", csv_lines(images, [i // 2 for i in range(20)]))
    valid = load("mnist5k:valid", data_dir=tmp_path)
    assert len(valid.images) == 2
    np.testing.assert_array_equal(valid.images[..., 0], images[[9, 19]])
    assert len(load("mnist5k:train", data_dir=tmp_path).images) == 18

def test_cifar10_named_dataset_missing_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load("cifar10:train", data_dir=tmp_path)
    message = str(info.value)
    for path in (tmp_path / "cifar10" / "cifar-10-python.tar.gz", tmp_path / "cifar10" / "cifar-10-batches-py",
                 tmp_path / "cifar-10-python.tar.gz", tmp_path / "cifar-10-batches-py"):
        assert str(path) in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "c58f30108f718f92721af3b95e74349a" in message and "minipixel download cifar10" in message


# ---------------------------------------------------------------- class names


def test_the_class_names_of_a_data_spec():
    digits = tuple("0123456789")
    assert class_names("mnist:train") == class_names("mnist5k:test") == digits
    assert class_names("fashion-mnist:test")[::9] == ("T-shirt/top", "Ankle boot")
    assert class_names("cifar10:train")[:2] == ("airplane", "automobile")
    # a file, a dataset without names, or no data at all (a checkpoint's settings without one)
    for spec in ("bars.npz", "binarized-mnist:train", "", None):
        assert class_names(spec) is None


def test_a_class_by_number_by_name_or_by_the_unique_start_of_one():
    names = ("cat", "Catfish", "Dog")
    # a whole name wins over the names it starts: "cat" is cat, not ambiguous with catfish
    assert [class_number(given, names, 3) for given in ("cat", "CAT", "catf", " dog ", "do", "2")] == [0, 0, 1, 2, 2, 2]
    with pytest.raises(ValueError, match=r"^--class: expected a class number or name, got 'ca'; "
                                         r"this model's classes: 0 cat, 1 Catfish, 2 Dog$"):
        class_number("ca", names, 3)
    with pytest.raises(ValueError, match=r"^--class: expected a class number or name, got 'cat'; "
                                         r"this model's classes: 0 to 2 \(no names\)$"):
        class_number("cat", None, 3)
