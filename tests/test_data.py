"""Tests for minipixel.data: quantization, batching, the file readers and named datasets.

The reader tests write small files in each real format into a temporary folder,
laid out byte for byte as the real files are (IDX headers with struct.pack,
gzip with the gzip module), then check the arrays read back and that damaged
variants raise errors naming the file.
"""
import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from minipixel import data

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# ---------------------------------------------------------------- helpers


def write_idx(path, array, type_code=0x08, gz=None):
    """Write ``array`` as an IDX file: 0, 0, type code, ndim, big-endian uint32 sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    path = Path(path)
    if gz if gz is not None else path.name.endswith(".gz"):
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_text(path, lines, newline="\n"):
    """Write text lines, gzipped when the name ends with .gz."""
    raw = (newline.join(lines) + newline).encode("ascii")
    path = Path(path)
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def amat_lines(images, one="1", zero="0"):
    """The .amat text lines of (N, 28, 28) 0/1 images."""
    return [" ".join(one if v else zero for v in image.ravel()) for image in images]


def csv_lines(images, classes):
    """The MNIST CSV lines of (N, 28, 28) uint8 images: 784 pixels then the class."""
    return [",".join(str(v) for v in image.ravel()) + f",{c}" for image, c in zip(images, classes)]


def random_binary(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=(n, 28, 28), dtype=np.uint8)


def random_grey(n, seed=0, shape=(28, 28)):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def truncate_gzip(path):
    """Cut a gzip file in half, as an interrupted download would."""
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


# ---------------------------------------------------------------- quantize


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_round_trips_every_8bit_value(dtype):
    v = np.arange(256)
    x = (v / 255).astype(dtype)
    labels = data.quantize(x, 256)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, v)


@pytest.mark.parametrize("levels", [2, 3, 7, 22, 255, 256])
def test_quantize_edges_zero_and_one(levels):
    labels = data.quantize(np.array([0.0, 1.0]), levels)
    np.testing.assert_array_equal(labels, [0, levels - 1])


@pytest.mark.parametrize("levels", [2, 4, 8, 16, 64, 256])
def test_quantize_matches_chainer_digitize_for_power_of_two_levels(levels):
    rng = np.random.default_rng(levels)
    edges = np.arange(levels) / levels
    x = np.concatenate([rng.random(5000), edges, [1.0], np.arange(256) / 255])
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        expected = np.digitize(xd, edges) - 1
        expected = np.minimum(expected, levels - 1)  # digitize puts 1.0 at `levels` only via the clip
        np.testing.assert_array_equal(data.quantize(xd, levels), expected)


def test_quantize_keeps_shape():
    x = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    labels = data.quantize(x, 16)
    assert labels.shape == x.shape and labels.dtype == np.uint8
    assert labels.min() >= 0 and labels.max() <= 15


@pytest.mark.parametrize("bad", [[-0.1, 0.5], [0.5, 1.01], [0.2, np.nan]])
def test_quantize_rejects_values_outside_unit_range(bad):
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\].*min .* max"):
        data.quantize(np.array(bad), 4)


@pytest.mark.parametrize("levels", [1, 0, 257, 2.5, True, "4"])
def test_quantize_rejects_bad_levels(levels):
    with pytest.raises(ValueError, match="levels must be an integer from 2 to 256"):
        data.quantize(np.array([0.5]), levels)


# ---------------------------------------------------------------- labels_to_inputs


@pytest.mark.parametrize("levels", [2, 3, 4, 22, 255, 256])
def test_labels_to_inputs_spans_zero_to_one_and_round_trips(levels):
    labels = np.arange(levels, dtype=np.uint8)
    x = data.labels_to_inputs(labels, levels)
    assert x.dtype == np.float32
    assert x[0] == 0.0 and x[-1] == 1.0
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(x, labels / (levels - 1), rtol=1e-6)
    # Feeding the inputs back through quantize gives the labels again.
    np.testing.assert_array_equal(data.quantize(x, levels), labels)


def test_labels_to_inputs_dtype_and_array_module():
    calls = []

    class RecordingXp:
        """Stands in for cupy: the function must build its result through xp."""

        @staticmethod
        def asarray(a):
            calls.append(a)
            return np.asarray(a)

    x = data.labels_to_inputs([[0, 1], [2, 3]], 4, dtype=np.float64, xp=RecordingXp)
    assert calls, "labels_to_inputs did not go through xp.asarray"
    assert x.dtype == np.float64 and x.shape == (2, 2)
    np.testing.assert_array_equal(x, [[0, 1 / 3], [2 / 3, 1]])


def test_labels_to_inputs_rejects_bad_levels():
    with pytest.raises(ValueError, match="levels"):
        data.labels_to_inputs(np.array([0]), 1)


# ---------------------------------------------------------------- binarize


def test_binarize_threshold_matches_quantize_two_levels():
    x = np.concatenate([np.random.default_rng(1).random(10000), [0.0, 0.5, 1.0, np.nextafter(0.5, 0)]])
    b = data.binarize(x)
    assert b.dtype == np.uint8
    np.testing.assert_array_equal(b, data.quantize(x, 2))
    np.testing.assert_array_equal(data.binarize(np.array([0.0, np.nextafter(0.5, 0), 0.5, 1.0])), [0, 0, 1, 1])


def test_binarize_custom_threshold():
    np.testing.assert_array_equal(data.binarize(np.array([0.1, 0.2, 0.3]), threshold=0.2), [0, 1, 1])


def test_binarize_sampling_is_seeded():
    x = np.random.default_rng(2).random((50, 28, 28))
    a = data.binarize(x, rng=np.random.default_rng(7))
    b = data.binarize(x, rng=np.random.default_rng(7))
    c = data.binarize(x, rng=np.random.default_rng(8))
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_binarize_sampling_fraction_tracks_x():
    rng = np.random.default_rng(3)
    for p in (0.0, 0.1, 0.3, 0.5, 0.9, 1.0):
        ones = data.binarize(np.full(200_000, p), rng=rng).mean()
        assert abs(ones - p) < 0.005, (p, ones)
    # A ramp: each value is 1 about as often as its intensity.
    x = np.repeat(np.linspace(0, 1, 11), 20_000)
    ones = data.binarize(x, rng=rng).reshape(11, -1).mean(axis=1)
    np.testing.assert_allclose(ones, np.linspace(0, 1, 11), atol=0.015)


def test_binarize_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.binarize(np.array([1.5]))
    with pytest.raises(ValueError, match="Generator"):
        data.binarize(np.array([0.5]), rng=42)


# ---------------------------------------------------------------- batching


def test_epoch_permutation_is_a_pure_function_of_seed_and_epoch():
    p = data.epoch_permutation(1000, seed=5, epoch=3)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    np.testing.assert_array_equal(p, data.epoch_permutation(1000, 5, 3))
    np.testing.assert_array_equal(p, np.random.default_rng([5, 3]).permutation(1000))
    assert (p != data.epoch_permutation(1000, 5, 4)).any()
    assert (p != data.epoch_permutation(1000, 6, 3)).any()


def test_epoch_permutation_rejects_negative():
    with pytest.raises(ValueError, match="non-negative"):
        data.epoch_permutation(10, -1, 0)


def test_batches_cover_every_index_once():
    got = list(data.batches(103, 10, seed=1, epoch=0))
    assert [len(b) for b in got] == [10] * 10 + [3]
    joined = np.concatenate(got)
    np.testing.assert_array_equal(joined, data.epoch_permutation(103, 1, 0))
    np.testing.assert_array_equal(np.sort(joined), np.arange(103))


def test_batches_differ_between_epochs():
    a = np.concatenate(list(data.batches(100, 16, seed=1, epoch=0)))
    b = np.concatenate(list(data.batches(100, 16, seed=1, epoch=1)))
    assert (a != b).any()
    np.testing.assert_array_equal(np.sort(a), np.sort(b))


def test_batches_start_skips_batches_for_resuming():
    full = list(data.batches(100, 16, seed=4, epoch=2))
    resumed = list(data.batches(100, 16, seed=4, epoch=2, start=3))
    assert len(resumed) == len(full) - 3
    for a, b in zip(resumed, full[3:]):
        np.testing.assert_array_equal(a, b)
    assert list(data.batches(100, 16, seed=4, epoch=2, start=7)) == []


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"batch_size": 4, "start": -1}])
def test_batches_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        list(data.batches(10, seed=0, epoch=0, **kwargs))


# ---------------------------------------------------------------- ImageSet and to_labels


def grey_set(n=3, seed=0, shape=(16, 16, 1)):
    images = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    images.reshape(-1)[:256] = np.arange(256)  # every 8-bit value appears
    return data.ImageSet(images, 255, "grey")


def test_imageset_checks_its_arrays():
    good = np.zeros((2, 4, 4, 1), np.uint8)
    with pytest.raises(ValueError, match=r"src: expected images as an \(N, H, W, C\) uint8"):
        data.ImageSet(good.astype(np.float32), 255, "src")
    with pytest.raises(ValueError, match=r"src: expected images"):
        data.ImageSet(good[0], 255, "src")
    with pytest.raises(ValueError, match="src: max_value is 1 but the images hold values up to 7"):
        data.ImageSet(good + 7, 1, "src")
    with pytest.raises(ValueError, match=r"src: expected classes as \(2,\)"):
        data.ImageSet(good, 1, "src", classes=np.array([1, 2, 3]))


@pytest.mark.parametrize("levels", [2, 4, 8, 16, 32, 64, 128, 256])
def test_to_labels_8bit_matches_exact_integer_bins(levels):
    imageset = grey_set()
    v = imageset.images.astype(np.int64)
    expected = np.minimum(v * levels // 255, levels - 1)  # floor(v / 255 * levels) in exact arithmetic
    labels = data.to_labels(imageset, levels)
    assert labels.dtype == np.uint8 and labels.shape == imageset.images.shape
    np.testing.assert_array_equal(labels, expected)


def test_to_labels_threshold_binarizes_at_half():
    imageset = grey_set()
    np.testing.assert_array_equal(data.to_labels(imageset, 2), imageset.images >= 128)


def test_to_labels_sample_is_seeded_and_chunking_does_not_change_it(monkeypatch):
    imageset = grey_set(n=10)
    whole = data.binarize(imageset.images.astype(np.float32) / 255, rng=np.random.default_rng(3))
    # Force many small chunks: the result must not depend on the chunk size.
    monkeypatch.setattr(data, "_CHUNK_VALUES", 300)
    chunked = data.to_labels(imageset, 2, binarize_mode="sample", seed=3)
    np.testing.assert_array_equal(chunked, whole)
    assert (chunked != data.to_labels(imageset, 2, binarize_mode="sample", seed=4)).any()
    assert (chunked != data.to_labels(imageset, 2)).any()


def test_to_labels_binary_data():
    images = random_binary(4)[..., None]
    imageset = data.ImageSet(images, 1, "bin")
    for mode in ("threshold", "sample"):
        labels = data.to_labels(imageset, 2, binarize_mode=mode)
        np.testing.assert_array_equal(labels, images)
        assert labels is not images
    np.testing.assert_array_equal(data.to_labels(imageset, 256), images * 255)


def test_to_labels_rejects_bad_mode_and_levels():
    with pytest.raises(ValueError, match="binarize_mode must be 'threshold' or 'sample', got 'random'"):
        data.to_labels(grey_set(), 2, binarize_mode="random")
    with pytest.raises(ValueError, match="levels"):
        data.to_labels(grey_set(), 300)


# ---------------------------------------------------------------- .amat


@pytest.mark.parametrize("name", ["x.amat", "x.amat.gz"])
def test_read_amat(tmp_path, name):
    images = random_binary(5)
    path = write_text(tmp_path / name, amat_lines(images))
    got = data.read_amat(path)
    assert got.images.shape == (5, 28, 28, 1) and got.images.dtype == np.uint8
    assert got.max_value == 1 and got.classes is None and got.source == str(path)
    np.testing.assert_array_equal(got.images[..., 0], images)


def test_read_amat_accepts_float_spellings_crlf_and_blank_lines(tmp_path):
    images = random_binary(3, seed=1)
    lines = amat_lines(images[:2], one="1.000000", zero="0.") + [""] + amat_lines(images[2:], one="1.", zero="0.0")
    path = write_text(tmp_path / "f.amat", lines, newline="\r\n")
    np.testing.assert_array_equal(data.read_amat(path).images[..., 0], images)


def test_read_amat_wrong_count_names_file_and_line(tmp_path):
    lines = amat_lines(random_binary(3))
    lines[1] = lines[1][:-2]  # drop the last value
    path = write_text(tmp_path / "short.amat", lines)
    with pytest.raises(ValueError, match=r"short\.amat: expected 784 values per line in an \.amat file, line 2 has 783"):
        data.read_amat(path)


def test_read_amat_merged_values_are_not_split(tmp_path):
    # A lost space turns "0 1" into "01": still 784 characters, but 783 values.
    lines = amat_lines(random_binary(2))
    lines[0] = lines[0].replace(" ", "", 1)
    path = write_text(tmp_path / "merged.amat", lines)
    with pytest.raises(ValueError, match=r"merged\.amat: expected 784 values per line .* line 1 has 783"):
        data.read_amat(path)


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
        data.read_amat(path)


def test_read_amat_empty_file(tmp_path):
    path = tmp_path / "empty.amat"
    path.write_bytes(b"\n\n")
    with pytest.raises(ValueError, match=r"empty\.amat: .*empty file"):
        data.read_amat(path)


def test_read_amat_truncated_gzip(tmp_path):
    path = truncate_gzip(write_text(tmp_path / "cut.amat.gz", amat_lines(random_binary(50))))
    with pytest.raises(ValueError, match=r"cut\.amat\.gz: expected a complete gzip file"):
        data.read_amat(path)


def test_read_amat_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.amat"):
        data.read_amat(tmp_path / "nope.amat")


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_with_labels_beside(tmp_path, gz):
    suffix = ".gz" if gz else ""
    images = random_grey(6, shape=(5, 4))
    labels = np.array([3, 1, 4, 1, 5, 9], np.uint8)
    path = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    got = data.read_idx(path)
    assert got.images.shape == (6, 5, 4, 1) and got.images.dtype == np.uint8 and got.max_value == 255
    np.testing.assert_array_equal(got.images[..., 0], images)
    np.testing.assert_array_equal(got.classes, labels)
    got.images[0, 0, 0, 0] = 1  # the arrays are ordinary writable arrays


def test_read_idx_labels_gz_beside_plain_images(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte", random_grey(2))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", [7, 2])
    np.testing.assert_array_equal(data.read_idx(path).classes, [7, 2])


def test_read_idx_without_labels_file(tmp_path):
    path = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", random_grey(2))
    assert data.read_idx(path).classes is None


def test_read_idx_labels_of_wrong_length(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", random_grey(3))
    write_idx(tmp_path / "train-labels-idx1-ubyte", [1, 2])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: expected 3 labels"):
        data.read_idx(path)


def test_read_idx_labels_file_as_images(tmp_path):
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", [1, 2, 3])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: expected an images file \(3 dimensions\), got 1"):
        data.read_idx(path)


@pytest.mark.parametrize("byte", [0, 1])
def test_read_idx_bad_magic(tmp_path, byte):
    path = write_idx(tmp_path / "a-ubyte", random_grey(2))
    raw = bytearray(path.read_bytes())
    raw[byte] = 0x1F
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"a-ubyte: not an IDX file: expected the first two bytes to be 0"):
        data.read_idx(path)


def test_read_idx_unknown_type_code(tmp_path):
    path = write_idx(tmp_path / "b-ubyte", random_grey(2), type_code=0x05)
    with pytest.raises(ValueError, match=r"b-ubyte: not an IDX file: type code 0x05"):
        data.read_idx(path)


def test_read_idx_unsupported_type_code(tmp_path):
    path = write_idx(tmp_path / "c-ubyte", random_grey(2), type_code=0x0D)
    with pytest.raises(ValueError, match=r"c-ubyte: IDX type code 0x0d \(float \(float32\)\) is not supported"):
        data.read_idx(path)


def test_read_idx_truncated_data(tmp_path):
    path = write_idx(tmp_path / "d-ubyte", random_grey(3, shape=(10, 20)))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"d-ubyte: expected 600 bytes of pixels after the header .*, found 599"):
        data.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "e-ubyte"
    path.write_bytes(struct.pack(">HBB", 0, 8, 3) + struct.pack(">I", 5))
    with pytest.raises(ValueError, match=r"e-ubyte: expected a 16-byte header for 3 dimensions"):
        data.read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    path = truncate_gzip(write_idx(tmp_path / "train-images-idx3-ubyte.gz", random_grey(20)))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: expected a complete gzip file"):
        data.read_idx(path)


# ---------------------------------------------------------------- MNIST CSV


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz"])
def test_read_mnist_csv(tmp_path, name):
    images = random_grey(4)
    classes = [0, 9, 3, 3]
    path = write_text(tmp_path / name, csv_lines(images, classes))
    got = data.read_mnist_csv(path)
    assert got.images.shape == (4, 28, 28, 1) and got.images.dtype == np.uint8 and got.max_value == 255
    np.testing.assert_array_equal(got.images[..., 0], images)
    np.testing.assert_array_equal(got.classes, classes)


def test_read_mnist_csv_wrong_count(tmp_path):
    lines = csv_lines(random_grey(3), [1, 2, 3])
    lines[2] += ",0"
    path = write_text(tmp_path / "long.csv", lines)
    with pytest.raises(ValueError, match=r"long\.csv: expected 785 comma-separated values .* line 3 has 786"):
        data.read_mnist_csv(path)


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
        data.read_mnist_csv(path)


# ---------------------------------------------------------------- .npz


def test_npz_round_trip_is_atomic_and_leaves_no_temp_file(tmp_path):
    imageset = data.ImageSet(random_grey(3, shape=(8, 8, 3)), 255, "mem", classes=np.array([1, 0, 2]))
    path = tmp_path / "set.npz"
    data.write_npz(path, imageset)
    got = data.read_npz(path)
    np.testing.assert_array_equal(got.images, imageset.images)
    np.testing.assert_array_equal(got.classes, imageset.classes)
    assert got.max_value == 255 and got.source == str(path)
    assert sorted(os.listdir(tmp_path)) == ["set.npz"]
    # Overwriting replaces the file; without classes, none come back.
    data.write_npz(path, data.ImageSet(random_binary(2)[..., None], 1, "mem"))
    got = data.read_npz(path)
    assert got.max_value == 1 and got.classes is None and got.images.shape == (2, 28, 28, 1)


def test_write_npz_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "set.npz"
    old = data.ImageSet(random_grey(2, shape=(4, 4, 1)), 255, "old")
    data.write_npz(path, old)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space"):
        data.write_npz(path, data.ImageSet(random_grey(5, shape=(4, 4, 1)), 255, "new"))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["set.npz"]


def test_read_npz_missing_key_lists_found_keys(tmp_path):
    path = tmp_path / "k.npz"
    np.savez(path, pictures=np.zeros((1, 2, 2, 1), np.uint8), max_value=255)
    with pytest.raises(ValueError, match=r"k\.npz: expected arrays 'images' and 'max_value'.*missing \['images'\].*'pictures'"):
        data.read_npz(path)


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
        data.read_npz(path)


def test_read_npz_not_a_zip(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(ValueError, match=r"junk\.npz: expected an \.npz file \(a zip archive\)"):
        data.read_npz(path)


def test_read_npz_truncated(tmp_path):
    path = tmp_path / "cut.npz"
    data.write_npz(path, data.ImageSet(random_grey(20)[..., None], 255, "mem"))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"cut\.npz: expected an \.npz file"):
        data.read_npz(path)


def test_read_npz_damaged_inside(tmp_path):
    path = tmp_path / "bent.npz"
    data.write_npz(path, data.ImageSet(random_grey(20)[..., None], 255, "mem"))
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(64)  # the zip directory survives, the compressed data does not
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"bent\.npz: cannot read the \.npz file"):
        data.read_npz(path)


# ---------------------------------------------------------------- read_images


def test_read_images_dispatches_on_name(tmp_path):
    amat = write_text(tmp_path / "a.amat.gz", amat_lines(random_binary(1)))
    idx = write_idx(tmp_path / "x-images-idx3-ubyte", random_grey(2, shape=(3, 3)))
    csv = write_text(tmp_path / "c.csv", csv_lines(random_grey(3), [1, 2, 3]))
    npz = tmp_path / "n.npz"
    data.write_npz(npz, data.ImageSet(np.zeros((4, 2, 2, 3), np.uint8), 255, "mem"))
    assert data.read_images(amat).images.shape == (1, 28, 28, 1)
    assert data.read_images(idx).images.shape == (2, 3, 3, 1)
    assert data.read_images(csv).images.shape == (3, 28, 28, 1)
    assert data.read_images(str(npz)).images.shape == (4, 2, 2, 3)


def test_read_images_rejects_empty_directory_and_unknown_suffix(tmp_path):
    # A folder is read as a folder of images (see tests/test_readers_colour.py).
    with pytest.raises(ValueError, match=r"found no images \(\.png/\.jpg/\.jpeg"):
        data.read_images(tmp_path)
    other = tmp_path / "pic.txt"
    other.write_text("hello")
    with pytest.raises(ValueError, match=r"pic\.txt: unknown file type.*\.amat.*-ubyte.*\.csv.*\.npz.*"
                                         r"cifar-10-python\.tar\.gz.*folder of \.png/\.jpg/\.jpeg images"):
        data.read_images(other)
    with pytest.raises(FileNotFoundError, match=r"gone\.txt"):
        data.read_images(tmp_path / "gone.txt")


# ---------------------------------------------------------------- named datasets


def test_data_dir_explicit_env_default(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIPIXEL_DATA", raising=False)
    assert data.data_dir() == Path("data") == Path(data.DEFAULT_DATA_DIR)
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path
    assert data.data_dir("elsewhere") == Path("elsewhere")


def test_bundled_data_dirs():
    dirs = data.bundled_data_dirs()
    assert REPO / "data" in dirs
    assert Path(sys.prefix) / "share" / "minipixel" in dirs


def test_binarized_mnist_found_in_subfolder_then_root(tmp_path):
    sub = tmp_path / "binarized_mnist"
    sub.mkdir()
    in_sub, in_root = random_binary(2, seed=1), random_binary(3, seed=2)
    write_text(sub / "binarized_mnist_valid.amat.gz", amat_lines(in_sub))
    write_text(tmp_path / "binarized_mnist_valid.amat", amat_lines(in_root))
    write_text(tmp_path / "binarized_mnist_train.amat", amat_lines(in_root))
    got = data.load("binarized-mnist:valid", data_dir=tmp_path)  # the sub-folder wins
    np.testing.assert_array_equal(got.images[..., 0], in_sub)
    assert "binarized-mnist:valid" in got.source
    got = data.load("binarized-mnist:train", data_dir=str(tmp_path))  # only in the root
    np.testing.assert_array_equal(got.images[..., 0], in_root)


def test_mnist_and_fashion_mnist_from_idx(tmp_path):
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", random_grey(3))
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", [4, 5, 6])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", random_grey(2, seed=9))
    got = data.load("mnist:train", data_dir=tmp_path)
    assert got.images.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(got.classes, [4, 5, 6])
    got = data.load("fashion-mnist:test", data_dir=tmp_path)  # found in the root
    np.testing.assert_array_equal(got.images[..., 0], random_grey(2, seed=9))


def test_missing_named_dataset_lists_paths_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load("binarized-mnist:test", data_dir=tmp_path)
    message = str(info.value)
    for path in [tmp_path / "binarized_mnist" / "binarized_mnist_test.amat",
                 tmp_path / "binarized_mnist" / "binarized_mnist_test.amat.gz",
                 tmp_path / "binarized_mnist_test.amat",
                 tmp_path / "binarized_mnist_test.amat.gz"]:
        assert str(path) in message
    assert "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/" in message
    assert "--data-dir" in message and "MINIPIXEL_DATA" in message


@pytest.mark.parametrize(
    "spec, url",
    [("mnist:test", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
     ("fashion-mnist:train", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")],
)
def test_missing_idx_dataset_says_where_to_get_it(tmp_path, spec, url):
    with pytest.raises(FileNotFoundError, match=url.replace(".", r"\.")):
        data.load(spec, data_dir=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "binarized-mnist", "cifar10"])
def test_missing_dataset_mentions_the_download_command(tmp_path, name):
    with pytest.raises(FileNotFoundError, match=f"or run `minipixel download {name}`"):
        data.load(f"{name}:train", data_dir=tmp_path)


@pytest.mark.parametrize("spec", ["cifar11:train", "mnist:valid", "binarized-mnist", "mnist5k:"])
def test_unknown_dataset_or_split(spec):
    with pytest.raises(ValueError, match=r"one of: .*mnist5k:train\|valid\|all.*binarized-mnist:train\|valid\|test"):
        data.load(spec)


def test_load_reads_paths_and_reports_missing_ones(tmp_path, monkeypatch):
    path = write_text(tmp_path / "x.amat", amat_lines(random_binary(2)))
    assert data.load(str(path)).images.shape == (2, 28, 28, 1)
    assert data.load(path).images.shape == (2, 28, 28, 1)
    with pytest.raises(FileNotFoundError, match=r"nowhere/y\.amat"):
        data.load("nowhere/y.amat")
    monkeypatch.chdir(tmp_path)
    assert data.load("x.amat").images.shape == (2, 28, 28, 1)  # no separator, but it exists
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        data.load("missing.npz")  # a known suffix makes it a path


def test_load_uses_minipixel_data_env(tmp_path, monkeypatch):
    write_text(tmp_path / "binarized_mnist_train.amat", amat_lines(random_binary(3)))
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path))
    assert data.load("binarized-mnist:train").images.shape == (3, 28, 28, 1)
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="empty"):
        data.load("binarized-mnist:train")


def test_datasets_table_is_complete():
    for name, entry in data.DATASETS.items():
        assert set(entry) >= {"files", "folder", "bundled", "read", "select", "get"}, name
        assert entry["files"] and all(entry["files"].values()), name
    assert set(data.DATASETS["binarized-mnist"]["files"]) == {"train", "valid", "test"}
    assert set(data.DATASETS["mnist"]["files"]) == {"train", "test"}
    assert set(data.DATASETS["mnist5k"]["files"]) == {"train", "valid", "all"}
    assert set(data.DATASETS["cifar10"]["files"]) == {"train", "test"}


@pytest.fixture(scope="module")
def mnist5k():
    """The three splits of the shipped mnist_5k.csv.gz, found through bundled_data_dirs()."""
    assert (REPO / "data" / "mnist_5k.csv.gz").is_file()
    empty = REPO / "tests" / "no-such-data-dir"  # nothing there: the bundled copy must be used
    return {split: data.load(f"mnist5k:{split}", data_dir=empty) for split in ("train", "valid", "all")}


def test_mnist5k_splits(mnist5k):
    train, valid, full = mnist5k["train"], mnist5k["valid"], mnist5k["all"]
    assert len(train.images) == 4500 and len(valid.images) == 500 and len(full.images) == 5000
    assert full.max_value == 255 and full.images.shape[1:] == (28, 28, 1)
    np.testing.assert_array_equal(np.bincount(valid.classes, minlength=10), [50] * 10)
    np.testing.assert_array_equal(np.bincount(train.classes, minlength=10), [450] * 10)
    np.testing.assert_array_equal(valid.images, full.images[9::10])
    keep = np.arange(5000) % 10 != 9
    np.testing.assert_array_equal(train.images, full.images[keep])


def test_mnist5k_data_dir_copy_comes_before_the_bundled_one(tmp_path):
    images = random_grey(20)
    write_text(tmp_path / "mnist_5k.csv.gz", csv_lines(images, [i // 2 for i in range(20)]))
    valid = data.load("mnist5k:valid", data_dir=tmp_path)
    assert len(valid.images) == 2
    np.testing.assert_array_equal(valid.images[..., 0], images[[9, 19]])
    assert len(data.load("mnist5k:train", data_dir=tmp_path).images) == 18


def test_split_holdout():
    imageset = data.ImageSet(random_grey(50)[..., None], 255, "src", classes=np.arange(50))
    train, valid = data.split_holdout(imageset, fraction=0.2, seed=1)
    assert len(train.images) == 40 and len(valid.images) == 10
    together = np.sort(np.concatenate([train.classes, valid.classes]))
    np.testing.assert_array_equal(together, np.arange(50))  # disjoint and complete
    np.testing.assert_array_equal(valid.images, imageset.images[valid.classes])  # classes follow images
    assert np.all(np.diff(train.classes) > 0) and np.all(np.diff(valid.classes) > 0)  # original order kept
    again = data.split_holdout(imageset, fraction=0.2, seed=1)[1]
    np.testing.assert_array_equal(again.classes, valid.classes)
    other = data.split_holdout(imageset, fraction=0.2, seed=2)[1]
    assert (other.classes != valid.classes).any()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_split_holdout_rejects_bad_fraction(fraction):
    imageset = data.ImageSet(random_grey(50)[..., None], 255, "src")
    with pytest.raises(ValueError, match="fraction"):
        data.split_holdout(imageset, fraction=fraction)


# ---------------------------------------------------------------- the real file, when present


@pytest.mark.skipif(
    not (SHARED_DATA / "binarized_mnist" / "binarized_mnist_valid.amat.gz").is_file(),
    reason="the shared binarized MNIST validation file is not on this machine",
)
def test_real_binarized_mnist_valid():
    path = SHARED_DATA / "binarized_mnist" / "binarized_mnist_valid.amat.gz"
    got = data.read_images(path)
    assert got.images.shape == (10000, 28, 28, 1) and got.images.dtype == np.uint8
    assert got.max_value == 1
    assert set(np.unique(got.images)) == {0, 1}
    assert 0.10 < got.images.mean() < 0.16  # MNIST strokes cover about 13% of the pixels
