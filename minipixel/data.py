"""The data pipeline: reading datasets from disk, turning pixels into labels, batching.

A PixelCNN is a classifier run once per pixel: for every pixel it outputs a
probability for each of ``levels`` possible values (256 for 8-bit images, 2 for
black-and-white ones). So the data has to reach the model in two forms:

* **labels**: the integer class of every pixel, ``0 .. levels-1`` (``quantize``,
  ``binarize``, ``to_labels``). The loss compares the model's prediction with these.
* **inputs**: the same labels scaled back to floats in ``[0, 1]``
  (``labels_to_inputs``), which is what the network looks at.

Datasets come in several file formats, one reader each (``read_amat``,
``read_idx``, ``read_mnist_csv``, ``read_npz``, ``read_cifar10``, and
``read_image_folder`` for folders of PNG/JPEG files), all returning an
``ImageSet``: a ``(N, H, W, C) uint8`` array plus the value that means "full
intensity" (1 for binary data, 255 for 8-bit data). ``read_images`` picks the
reader from the file or folder name, and ``load`` also understands dataset names
like ``binarized-mnist:train`` or ``cifar10:test`` and finds their files in the
data folder. CIFAR-10's batches are pickles, which can run code when loaded;
they are read with an unpickler that allows only numpy arrays.

Batches are drawn from a permutation that is a pure function of
``(seed, epoch)`` (``epoch_permutation``), so a run stopped in the middle of an
epoch can resume at exactly the next batch.

Everything here runs on the CPU with NumPy; the training loop moves batches to
the GPU itself. The one exception is ``labels_to_inputs``, which works on
whichever array module it is given.
"""
import gzip
import io
import os
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from .files import atomic_write

# --------------------------------------------------------------------------
# Quantization: pixel intensities in [0, 1] <-> integer labels 0 .. levels-1
# --------------------------------------------------------------------------


def _check_levels(levels):
    """Raise ValueError unless ``levels`` is an int in 2..256 (labels must fit in uint8)."""
    is_int = isinstance(levels, (int, np.integer)) and not isinstance(levels, bool)
    if not is_int or not 2 <= levels <= 256:
        raise ValueError(f"levels must be an integer from 2 to 256, got {levels!r}")


def _check_unit_range(x, what):
    """Raise ValueError unless every value of ``x`` is in [0, 1].

    NaN fails too: comparisons with NaN are False, and min/max propagate NaN.
    """
    if x.size == 0:
        return
    low, high = x.min(), x.max()
    if not (low >= 0 and high <= 1):
        raise ValueError(f"{what}: expected values in [0, 1], got min {low} and max {high}")


def quantize(x, levels):
    """Cut intensities in [0, 1] into ``levels`` equal bins and return the bin numbers.

    x:      float array of any shape, values in [0, 1]
    levels: int, 2 <= levels <= 256
    returns: uint8 array, same shape as ``x``, values 0 .. levels-1

    Bin ``k`` holds the values in ``[k/levels, (k+1)/levels)``, so the label is
    ``floor(x * levels)``; ``x == 1.0`` would be bin ``levels``, and joins the last
    bin instead. This is the formulation of the Chainer PixelCNN,
    ``np.digitize(x, np.arange(levels) / levels) - 1``. When ``levels`` is a
    power of two, ``x * levels`` is exact in floating point and the two agree bit
    for bit; for other ``levels`` a value within one rounding error of a bin edge
    may land in the neighbouring bin.

    8-bit data round-trips: ``quantize(v / 255, 256) == v`` for every v in 0..255,
    because ``v / 255 * 256 = v + v/255`` never comes close to the next integer.
    """
    _check_levels(levels)
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"quantize: expected a float array, got dtype {x.dtype}")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    _check_unit_range(x, "quantize")
    # Multiplying in x's own dtype keeps float32 data in float32 (half the memory).
    scaled = x * x.dtype.type(levels)
    np.floor(scaled, out=scaled)
    np.minimum(scaled, levels - 1, out=scaled)
    return scaled.astype(np.uint8)


def labels_to_inputs(labels, levels, dtype=np.float32, xp=np):
    """Turn labels back into the network's input intensities: ``labels / (levels - 1)``.

    labels: integer array (NumPy or CuPy), values 0 .. levels-1, any shape
    levels: int, 2 <= levels <= 256
    dtype:  float dtype of the result (float32 by default)
    xp:     the array module (numpy or cupy) to build the result with
    returns: array of ``dtype``, same shape, label 0 -> 0.0 and label levels-1 -> 1.0

    This is not the exact inverse of ``quantize`` (which maps a whole bin to one
    label); it spreads the labels evenly over [0, 1] so that the darkest and the
    brightest value the network sees are always 0 and 1, whatever ``levels``.
    """
    _check_levels(levels)
    labels = xp.asarray(labels)
    # Divide (rather than multiply by 1/(levels-1)) so the top label gives exactly 1.0.
    return labels.astype(dtype) / (levels - 1)


def binarize(x, threshold=0.5, rng=None):
    """Turn intensities in [0, 1] into black (0) and white (1).

    x:         float array of any shape, values in [0, 1]
    threshold: a value is 1 when ``x >= threshold`` (used only when ``rng`` is None)
    rng:       None, or a ``numpy.random.Generator`` for stochastic binarization
    returns:   uint8 array of 0 and 1, same shape as ``x``

    With the default threshold of 0.5 this equals ``quantize(x, 2)``.

    With a generator each value is 1 with probability ``x``
    (``rng.random(x.shape) < x``), as Salakhutdinov & Murray (2008) binarized
    MNIST; the published binarized MNIST .amat files are one such draw, made
    once and kept fixed ("static" binarization). The
    draws are float64, one per value in order, so binarizing an array in pieces
    with the same generator gives the same result as binarizing it whole.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"binarize: expected a float array, got dtype {x.dtype}")
    _check_unit_range(x, "binarize")
    if rng is None:
        return (x >= threshold).astype(np.uint8)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"binarize: rng must be None or a numpy.random.Generator, got {type(rng).__name__}")
    return (rng.random(x.shape) < x).astype(np.uint8)


# --------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------


def epoch_permutation(n, seed, epoch):
    """The order in which epoch ``epoch`` visits ``n`` examples.

    n, seed, epoch: non-negative ints
    returns: (n,) int64, a permutation of 0 .. n-1

    The permutation is a pure function of ``(seed, epoch)``: nothing carries
    over from one epoch to the next. So a training run can stop anywhere and
    resume exactly from ``(seed, epoch, batch index)``, without saving the
    random generator's state.
    """
    for name, value in (("n", n), ("seed", seed), ("epoch", epoch)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"epoch_permutation: {name} must be a non-negative integer, got {value!r}")
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(n, batch_size, seed, epoch, start=0):
    """Yield the example indices of one epoch, ``batch_size`` at a time.

    n:          number of examples
    batch_size: int >= 1; the last batch may be smaller
    seed, epoch: pick the permutation (see ``epoch_permutation``)
    start:      the batch number to begin at (0 for a fresh epoch; the number of
                batches already done when resuming). Past the end yields nothing.
    yields:     (batch_size,) int64 index arrays into the dataset

    This is a generator: argument errors are raised at the first ``next()``.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be an integer >= 1, got {batch_size!r}")
    if not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"batches: start must be an integer >= 0, got {start!r}")
    order = epoch_permutation(n, seed, epoch)
    for first in range(start * batch_size, n, batch_size):
        yield order[first:first + batch_size]


# --------------------------------------------------------------------------
# The images container
# --------------------------------------------------------------------------


@dataclass
class ImageSet:
    """A set of images as read from a file, before any quantization.

    images:    (N, H, W, C) uint8, values 0 .. max_value
    max_value: the value that means full intensity: 1 for binary data, 255 for 8-bit
    source:    the file (or dataset name) it came from, used in messages
    classes:   (N,) int64 class labels when the format has them, else None
    """

    images: np.ndarray
    max_value: int
    source: str
    classes: np.ndarray | None = None

    def __post_init__(self):
        # Checked once here so that every reader (and anyone building an
        # ImageSet by hand) gets the same clear message naming the source.
        images = self.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            got = f"{type(images).__name__}"
            if isinstance(images, np.ndarray):
                got = f"shape {images.shape} dtype {images.dtype}"
            raise ValueError(f"{self.source}: expected images as an (N, H, W, C) uint8 array, got {got}")
        max_value = self.max_value
        if not isinstance(max_value, (int, np.integer)) or isinstance(max_value, bool) or not 1 <= max_value <= 255:
            raise ValueError(f"{self.source}: expected max_value to be an integer from 1 to 255, got {max_value!r}")
        if images.size and images.max() > max_value:
            raise ValueError(
                f"{self.source}: max_value is {max_value} but the images hold values up to {images.max()}"
            )
        if self.classes is not None:
            classes = self.classes
            if not isinstance(classes, np.ndarray) or classes.shape != (len(images),) or classes.dtype.kind not in "iu":
                got = f"shape {getattr(classes, 'shape', None)} dtype {getattr(classes, 'dtype', type(classes).__name__)}"
                raise ValueError(
                    f"{self.source}: expected classes as ({len(images)},) integers, one per image, got {got}"
                )


def _subset(imageset, indices, source):
    """A new ImageSet holding only the images at ``indices`` (an int array)."""
    classes = None if imageset.classes is None else imageset.classes[indices]
    return ImageSet(imageset.images[indices], imageset.max_value, source, classes)


# Pixels converted to float per chunk in to_labels: 4M values = 16 MB of float32.
_CHUNK_VALUES = 1 << 22


def to_labels(imageset, levels, binarize_mode="threshold", seed=0):
    """The per-pixel labels the model is trained on.

    imageset:      an ImageSet, images (N, H, W, C) uint8 in 0 .. max_value
    levels:        int, 2 <= levels <= 256
    binarize_mode: "threshold" (x >= 0.5 is 1) or "sample" (1 with probability x,
                   seeded by ``seed``); only used when levels == 2
    seed:          seed of the stochastic binarization
    returns:       (N, H, W, C) uint8 labels in 0 .. levels-1 (a new array)

    Intensities are ``x = images / max_value`` and the labels ``quantize(x, levels)``.
    Binary data at levels 2 already is its labels and is returned as a copy.

    The conversion goes through float32 a chunk of images at a time, so that
    a large set (CIFAR-10: 50000x32x32x3) never has a whole float copy in memory.
    """
    _check_levels(levels)
    if binarize_mode not in ("threshold", "sample"):
        raise ValueError(f"binarize_mode must be 'threshold' or 'sample', got {binarize_mode!r}")
    images = imageset.images
    if imageset.max_value == 1 and levels == 2:
        return images.copy()
    # One generator for the whole set: chunks then draw the same numbers as one big call.
    rng = np.random.default_rng(seed) if (levels == 2 and binarize_mode == "sample") else None
    labels = np.empty(images.shape, dtype=np.uint8)
    values_per_image = max(1, int(np.prod(images.shape[1:])))
    chunk = max(1, _CHUNK_VALUES // values_per_image)
    for first in range(0, len(images), chunk):
        x = images[first:first + chunk].astype(np.float32) / np.float32(imageset.max_value)
        if rng is not None:
            labels[first:first + chunk] = binarize(x, rng=rng)
        else:
            labels[first:first + chunk] = quantize(x, levels)
    return labels


# --------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------


def _check_is_file(path):
    """Raise FileNotFoundError if ``path`` does not exist, ValueError if it is a folder."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file")


def _read_file_bytes(path):
    """The bytes of ``path``, gunzipped if its name ends with ``.gz``.

    A truncated or corrupt gzip raises one of three exception types depending
    on where the damage is; all become a ValueError naming the file.
    """
    _check_is_file(path)
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise ValueError(
                f"{path}: expected a complete gzip file, but it cannot be decompressed ({err}); "
                "it may be cut short or damaged, so download it again"
            ) from err
    return data


def _numbered_lines(path, data):
    """The non-blank lines of a text file as (line number, bytes) pairs, numbered from 1.

    Blank lines (a trailing newline, say) carry no image and are skipped, but
    still counted, so that error messages point at the right line.
    """
    lines = [(number, line) for number, line in enumerate(data.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: expected one image a line, but the file has no lines with values (empty file)")
    return lines


def _first_unparsable(words, parse):
    """Index and text of the first word that ``parse`` (float or int) rejects."""
    for index, word in enumerate(words):
        try:
            parse(word)
        except ValueError:
            return index, word.decode("ascii", "replace")
    return None, None


AMAT_VALUES = 28 * 28


def _amat_line_fast(words):
    """The values of an .amat line written the usual way, one character a value.

    words:   the line's values as a list of bytes, e.g. [b"0", b"1", ...]
    returns: (784,) uint8 of 0 and 1, or None for any other spelling ("1.000000")
             or any error, which the careful parser then looks at
    """
    joined = b"".join(words)
    if len(words) != AMAT_VALUES or len(joined) != AMAT_VALUES:
        return None
    # Characters below "0" wrap around to large numbers, so one test catches them all.
    values = np.frombuffer(joined, dtype=np.uint8) - np.uint8(ord("0"))
    if values.max() > 1:
        return None
    return values


def _amat_line_careful(path, number, words):
    """The values of an .amat line in any spelling that parses to exactly 0 or 1.

    Slower than ``_amat_line_fast``, but says what is wrong and where.
    """
    if len(words) != AMAT_VALUES:
        raise ValueError(
            f"{path}: expected {AMAT_VALUES} values per line in an .amat file, line {number} has {len(words)}"
        )
    try:
        values = np.array(words, dtype=np.float64)
    except ValueError:
        index, word = _first_unparsable(words, float)
        raise ValueError(f"{path}: line {number}, value {index + 1}: cannot read {word!r} as a number") from None
    bad = (values != 0) & (values != 1)
    if bad.any():
        index = int(np.argmax(bad))
        word = words[index].decode("ascii", "replace")
        raise ValueError(
            f"{path}: expected only 0 and 1 in an .amat file, line {number} value {index + 1} is {word!r}"
        )
    return values.astype(np.uint8)


def read_amat(path):
    """Read binarized MNIST in the ``.amat`` text format (``.amat`` or ``.amat.gz``).

    The format: one image a line, 784 space-separated values, each 0 or 1
    (written ``0``/``1`` or as floats like ``0.`` / ``1.000000``), row-major 28x28.

    returns: ImageSet, images (N, 28, 28, 1) uint8 of 0/1, max_value 1, no classes

    Parsing 39 million numbers as floats is slow in Python, so each line is
    first tried as the published files are written (one character per value),
    which is a byte copy; only lines written any other way are parsed as floats.
    """
    path = Path(path)
    data = _read_file_bytes(path)
    lines = _numbered_lines(path, data)
    images = np.empty((len(lines), AMAT_VALUES), dtype=np.uint8)
    for row, (number, line) in enumerate(lines):
        words = line.split()
        values = _amat_line_fast(words)
        if values is None:
            values = _amat_line_careful(path, number, words)
        images[row] = values
    return ImageSet(images.reshape(-1, 28, 28, 1), max_value=1, source=str(path))


# IDX type codes (the third byte of the file) and what they hold. minipixel
# reads only unsigned bytes, which is what MNIST and Fashion-MNIST use.
IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short (int16)",
    0x0C: "int (int32)",
    0x0D: "float (float32)",
    0x0E: "double (float64)",
}


def _read_idx_array(path):
    """The array stored in an IDX file (``.gz`` or not), as uint8 with the file's shape.

    The layout: two zero bytes, a type code byte, a byte with the number of
    dimensions d, d big-endian uint32 sizes, then the values in row-major order.
    """
    data = _read_file_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: expected an IDX file of at least 4 header bytes, found {len(data)} bytes")
    zero1, zero2, type_code, ndim = data[:4]
    if zero1 != 0 or zero2 != 0:
        raise ValueError(
            f"{path}: not an IDX file: expected the first two bytes to be 0 (the magic number), "
            f"got {zero1:#04x} {zero2:#04x}"
        )
    if type_code not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file: type code {type_code:#04x} in the magic number is not an IDX type")
    if type_code != 0x08:
        raise ValueError(
            f"{path}: IDX type code {type_code:#04x} ({IDX_TYPES[type_code]}) is not supported, "
            "only 0x08 (unsigned byte)"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{path}: expected a {header_size}-byte header for {ndim} dimensions, the file has {len(data)} bytes"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=object))  # Python ints: a corrupt header cannot overflow
    found = len(data) - header_size
    if found != expected:
        raise ValueError(
            f"{path}: expected {expected} bytes of pixels after the header (shape {shape}), found {found}; "
            "a shorter file was probably cut short"
        )
    # A copy, because an array made from bytes is read-only.
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def _idx_labels_path(images_path):
    """The labels file that ships beside an IDX images file, or None.

    ``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``, and the same
    for ``t10k``; a gzipped or plain labels file is accepted either way.
    """
    name = images_path.name
    if "images" not in name or "idx3" not in name:
        return None
    labels_name = name.replace("images", "labels").replace("idx3", "idx1")
    plain = labels_name.removesuffix(".gz")
    for candidate in (plain, plain + ".gz"):
        if (images_path.parent / candidate).is_file():
            return images_path.parent / candidate
    return None


def read_idx(path):
    """Read an IDX images file (``*-ubyte`` or ``*-ubyte.gz``), as MNIST and Fashion-MNIST ship.

    returns: ImageSet, images (N, rows, cols, 1) uint8, max_value 255, and
             classes (N,) int64 from the labels file beside it when there is one
             (``train-labels-idx1-ubyte[.gz]`` beside ``train-images-idx3-ubyte[.gz]``)
    """
    path = Path(path)
    pixels = _read_idx_array(path)
    if pixels.ndim != 3:
        raise ValueError(
            f"{path}: expected an images file (3 dimensions), got {pixels.ndim} "
            f"(shape {pixels.shape}); labels files are read beside their images file"
        )
    classes = None
    labels_path = _idx_labels_path(path)
    if labels_path is not None:
        labels = _read_idx_array(labels_path)
        if labels.shape != (len(pixels),):
            raise ValueError(
                f"{labels_path}: expected {len(pixels)} labels (one per image in {path.name}), "
                f"got an array of shape {labels.shape}"
            )
        classes = labels.astype(np.int64)
    return ImageSet(pixels[..., np.newaxis], max_value=255, source=str(path), classes=classes)


MNIST_CSV_VALUES = 28 * 28 + 1


def _mnist_csv_line(path, number, line):
    """The 785 integers of one CSV line (784 pixels then the class), checked."""
    words = line.split(b",")
    if len(words) != MNIST_CSV_VALUES:
        raise ValueError(
            f"{path}: expected {MNIST_CSV_VALUES} comma-separated values per line (784 pixels, then the class), "
            f"line {number} has {len(words)}"
        )
    try:
        values = np.array(words, dtype=np.int64)
    except ValueError:
        index, word = _first_unparsable(words, int)
        raise ValueError(f"{path}: line {number}, value {index + 1}: cannot read {word!r} as an integer") from None
    pixels = values[:-1]
    bad = (pixels < 0) | (pixels > 255)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(
            f"{path}: expected pixel values 0..255, line {number} value {index + 1} is {pixels[index]}"
        )
    if values[-1] < 0:
        raise ValueError(f"{path}: expected a class label >= 0 at the end of line {number}, got {values[-1]}")
    return values


def read_mnist_csv(path):
    """Read MNIST as CSV (``.csv`` or ``.csv.gz``), the format of the shipped ``data/mnist_5k.csv.gz``.

    The format: one image a line, 784 pixel values 0..255 (row-major 28x28),
    then the class label; no header line.

    returns: ImageSet, images (N, 28, 28, 1) uint8, max_value 255, classes (N,) int64
    """
    path = Path(path)
    data = _read_file_bytes(path)
    lines = _numbered_lines(path, data)
    table = np.empty((len(lines), MNIST_CSV_VALUES), dtype=np.int64)
    for row, (number, line) in enumerate(lines):
        table[row] = _mnist_csv_line(path, number, line)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
    return ImageSet(images, max_value=255, source=str(path), classes=table[:, -1].copy())


def _load_npz_arrays(path):
    """All arrays of an .npz file as a dict, with read errors turned into ValueError."""
    # np.load would try a non-zip file as .npy or pickle and fail confusingly.
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: expected an .npz file (a zip archive), but it is not a zip file (corrupt or cut short?)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the .npz file ({err}); it may be damaged") from err


def read_npz(path):
    """Read minipixel's own format: an ``.npz`` with ``images``, ``max_value`` and optionally ``classes``.

    images:    (N, H, W, C) uint8
    max_value: integer scalar, 1 for binary data, 255 for 8-bit data
    classes:   (N,) integers (optional)
    returns:   ImageSet
    """
    path = Path(path)
    _check_is_file(path)
    arrays = _load_npz_arrays(path)
    missing = [key for key in ("images", "max_value") if key not in arrays]
    if missing:
        raise ValueError(
            f"{path}: expected arrays 'images' and 'max_value' in the .npz, missing {missing}, "
            f"found {sorted(arrays)}"
        )
    max_value = arrays["max_value"]
    if max_value.shape != () or max_value.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: expected 'max_value' to be one integer, got shape {max_value.shape} dtype {max_value.dtype}"
        )
    # ImageSet checks the rest (dtype, shape, classes) and names the file.
    return ImageSet(arrays["images"], int(max_value), str(path), arrays.get("classes"))


def write_npz(path, imageset):
    """Write ``imageset`` to ``path`` in the format ``read_npz`` reads (compressed .npz).

    The write is atomic: the data goes to a temporary file in the same folder,
    is flushed to disk, and only then renamed over ``path``. A crash or a full
    disk leaves either the old file or the new one, never half a file.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: cannot write, the folder {path.parent} does not exist")
    arrays = {"images": imageset.images, "max_value": np.int64(imageset.max_value)}
    if imageset.classes is not None:
        arrays["classes"] = imageset.classes
    with atomic_write(path) as file:
        np.savez_compressed(file, **arrays)


# --------------------------------------------------------------------------
# CIFAR-10 (the "python version")
# --------------------------------------------------------------------------

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
# The batch files of each split, in the order their images are concatenated.
CIFAR10_BATCHES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}
CIFAR10_VALUES = 3 * 32 * 32

# A pickle can call any function it names, so a batch is unpickled with only
# the few names it needs (see _Cifar10Unpickler). numpy pickles an array as
# _reconstruct(ndarray, ...) with a dtype; numpy 1.x (which wrote the
# published files) spells the module numpy.core.multiarray, numpy 2.x
# numpy._core.multiarray. Both map to the function the running numpy itself
# uses, so no module is imported under a name read from the file.
_NUMPY_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]
_CIFAR10_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RefusedPickle(ValueError):
    """A pickle that names something a CIFAR-10 batch never holds."""


class _Cifar10Unpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and refuses everything else.

    The published batches were written by Python 2, whose byte strings load as
    ``bytes`` with ``encoding="bytes"``. A batch re-saved by Python 3 at
    protocol 2 spells each bytes object as ``_codecs.encode(text, "latin1")``;
    that call is allowed for the latin-1 codec only.
    """

    def __init__(self, file, where):
        super().__init__(file, encoding="bytes")
        self.where = where

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return self._latin1_encode
        found = _CIFAR10_GLOBALS.get((module, name))
        if found is None:
            raise _RefusedPickle(
                f"{self.where}: expected a CIFAR-10 batch, which holds only numpy arrays, lists and bytes; "
                f"the CIFAR-10 reader refuses to load {module}.{name} (the file may not be what it claims to be)"
            )
        return found

    def _latin1_encode(self, text, encoding):
        if encoding not in ("latin1", "latin-1"):
            raise _RefusedPickle(
                f"{self.where}: expected bytes spelled as latin-1 text in a CIFAR-10 batch; "
                f"the CIFAR-10 reader refuses to load _codecs.encode with the codec {encoding!r}"
            )
        return text.encode("latin1")


def _describe_array(value):
    """'shape (k, n) dtype uint8', or the type name of something that is not an array."""
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _read_cifar10_batch(raw, where):
    """Decode one CIFAR-10 batch file.

    raw:     the file's bytes, a pickled dict with b"data", a (k, 3072) uint8
             array (each row the 1024 red values, then 1024 green, then 1024
             blue of a 32x32 image, row-major), and b"labels", k ints 0..9
    where:   the file (or archive member) it came from, for messages
    returns: (images (k, 32, 32, 3) uint8 in channel-last order, classes (k,) int64)
    """
    try:
        batch = _Cifar10Unpickler(io.BytesIO(raw), where).load()
    except _RefusedPickle:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise ValueError(
            f"{where}: expected a CIFAR-10 batch (a Python pickle), but it cannot be unpickled "
            f"({type(err).__name__}: {err}); it may be damaged, so download it again"
        ) from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        got = f"a dict with keys {sorted(batch, key=repr)}" if isinstance(batch, dict) else f"a {type(batch).__name__}"
        raise ValueError(f"{where}: expected a CIFAR-10 batch, a dict with b'data' and b'labels', got {got}")
    pixels = batch[b"data"]
    if (not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8
            or pixels.ndim != 2 or pixels.shape[1] != CIFAR10_VALUES):
        raise ValueError(
            f"{where}: expected b'data' to be a (k, {CIFAR10_VALUES}) uint8 array (k images of 3x32x32 values), "
            f"got {_describe_array(pixels)}"
        )
    try:
        labels = np.asarray(batch[b"labels"])
    except (ValueError, TypeError):  # a ragged list, say
        labels = batch[b"labels"]
    if not isinstance(labels, np.ndarray) or labels.shape != (len(pixels),) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: expected {len(pixels)} integer labels (one per image) in b'labels', "
            f"got {_describe_array(labels)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: expected labels 0..9, got values from {labels.min()} to {labels.max()}")
    # Row layout is plane by plane (R, G, B), each 32x32 row-major: to (k, 32, 32, 3).
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def _cifar10_batch_names_in(names):
    """The names among ``names`` that look like CIFAR-10 batch files, sorted."""
    return sorted(name for name in names if name.startswith(("data_batch", "test_batch")))


def _cifar10_from_folder(path, wanted):
    """Decode the batches ``wanted`` (names) from an extracted folder: {name: (images, classes)}."""
    folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        found = _cifar10_batch_names_in(p.name for p in folder.iterdir() if p.is_file())
        raise ValueError(
            f"{folder}: expected the CIFAR-10 batch files {wanted}, missing {missing}; "
            f"found {found if found else 'no batch files'}"
        )
    return {name: _read_cifar10_batch((folder / name).read_bytes(), folder / name) for name in wanted}


def _cifar10_from_archive(path, wanted):
    """Decode the batches ``wanted`` (names) straight from the tar.gz: {name: (images, classes)}.

    The members are in no particular order in the published archive, so it is
    read from the start until every wanted batch has been seen (the test split
    usually stops early). Nothing is written to disk.
    """
    batches, seen = {}, []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                name = PurePosixPath(member.name).name
                if not member.isfile():
                    continue
                seen.append(name)
                if name in wanted and name not in batches:
                    raw = archive.extractfile(member).read()
                    batches[name] = _read_cifar10_batch(raw, f"{path} (member {member.name})")
                    if len(batches) == len(wanted):
                        break
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        # OSError covers gzip.BadGzipFile (not gzip at all) and damaged data.
        raise ValueError(
            f"{path}: expected a complete tar.gz archive, but it cannot be read ({err}); "
            "it may be cut short or damaged, so download it again"
        ) from err
    missing = [name for name in wanted if name not in batches]
    if missing:
        found = _cifar10_batch_names_in(seen)
        raise ValueError(
            f"{path}: expected the CIFAR-10 batch files {wanted} in the archive, missing {missing}; "
            f"found {found if found else 'no batch files'}"
        )
    return batches


def read_cifar10(path, split="train"):
    """Read CIFAR-10 in its "python version", as published at https://www.cs.toronto.edu/~kriz/cifar.html.

    path:    the archive ``cifar-10-python.tar.gz`` (read in place, nothing is
             extracted), or the extracted folder ``cifar-10-batches-py`` or a
             folder holding it
    split:   "train" (data_batch_1 .. data_batch_5, 50,000 images) or "test"
             (test_batch, 10,000 images); only the split's batches are decoded
    returns: ImageSet, images (N, 32, 32, 3) uint8 (RGB), max_value 255,
             classes (N,) int64 in 0..9 (airplane, automobile, bird, cat, deer,
             dog, frog, horse, ship, truck)

    Each batch is a pickle, and unpickling can run code. Batches are therefore
    read with an unpickler that allows only numpy arrays, dtypes and bytes and
    raises ValueError for anything else.
    """
    if split not in CIFAR10_BATCHES:
        raise ValueError(f"read_cifar10: split must be one of {sorted(CIFAR10_BATCHES)}, got {split!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    wanted = CIFAR10_BATCHES[split]
    read = _cifar10_from_folder if path.is_dir() else _cifar10_from_archive
    batches = read(path, wanted)
    images = np.concatenate([batches[name][0] for name in wanted])
    classes = np.concatenate([batches[name][1] for name in wanted])
    return ImageSet(images, max_value=255, source=str(path), classes=classes)


def _is_cifar10_folder(path):
    """True for the extracted CIFAR-10 folder (by its name or its batch files), or a folder holding it."""
    return (
        path.name == CIFAR10_FOLDER
        or (path / CIFAR10_FOLDER).is_dir()
        or any((path / name).is_file() for names in CIFAR10_BATCHES.values() for name in names)
    )


# --------------------------------------------------------------------------
# Folders of PNG/JPEG images
# --------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Below this many files the reading is quick enough that a progress bar is noise.
_PROGRESS_MIN_FILES = 2000
# Pillow modes read as one grey channel; every other 8-bit mode becomes RGB.
_GREY_MODES = ("1", "L", "LA", "La")


def _image_names_in(folder):
    """The image files directly in ``folder``, sorted by name (hidden files skipped)."""
    return sorted(
        (p for p in folder.iterdir()
         if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )


def _image_folder_files(path):
    """The files of an image folder and their classes.

    returns: (files, classes): a list of Paths, and (N,) int64 class indices
             (the position of the file's sub-folder among the sorted sub-folder
             names), or None when the images are directly in ``path``
    """
    looked_for = "/".join(IMAGE_SUFFIXES)
    files = _image_names_in(path)
    folders = sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if files and folders:
        raise ValueError(
            f"{path}: expected images either directly in the folder or in one sub-folder per class, "
            f"found both (e.g. {files[0].name} and {folders[0].name}/)"
        )
    if files:
        return files, None
    per_class = [_image_names_in(folder) for folder in folders]
    if not any(per_class):
        where = f" or in its sub-folders {[f.name for f in folders][:10]}" if folders else ""
        raise ValueError(
            f"{path}: found no images ({looked_for}, any case) in the folder{where}; expected "
            "image files directly in it, or in one sub-folder per class (folder/<class>/<image>)"
        )
    empty = [folder.name for folder, names in zip(folders, per_class) if not names]
    if empty:
        raise ValueError(
            f"{path}: expected images ({looked_for}) in every class sub-folder, found none in {empty}"
        )
    classes = np.concatenate([np.full(len(names), k, np.int64) for k, names in enumerate(per_class)])
    return [file for names in per_class for file in names], classes


def _decode_image(Image, file, size, channels=None):
    """One image file as an (H, W, 1) or (H, W, 3) uint8 array, cropped and resized when ``size`` is given.

    channels None: grey images (modes 1, L, LA) stay one channel and every
    other mode is converted to RGB (alpha is dropped); 1 or 3: converted to
    grey or to RGB whatever the file holds. Damaged or non-image files raise
    ValueError naming the file.
    """
    image = None
    try:
        # Only the two decoders the folder format promises see the user's files.
        image = Image.open(file, formats=("PNG", "JPEG"))
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error,
            Image.DecompressionBombError) as err:
        if image is not None:
            image.close()
        raise ValueError(
            f"{file}: cannot read it as an image ({err}); expected a PNG or JPEG file, it may be damaged"
        ) from err
    with image:
        mode = image.mode
        if mode in ("I", "F") or mode.startswith("I;"):
            # Pillow would clip these to 0..255 rather than scale them.
            raise ValueError(
                f"{file}: image mode {mode} (16- or 32-bit values) is not supported; expected 8-bit grey or colour"
            )
        grey = mode in _GREY_MODES if channels is None else channels == 1
        image = image.convert("L" if grey else "RGB")
    if size is not None:
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        if side != size:
            # Image.Resampling is Pillow >= 9.1; the plain name is older and newer Pillow.
            image = image.resize((size, size), getattr(Image, "Resampling", Image).BICUBIC)
    pixels = np.asarray(image)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1)


def read_image(path, channels=None, size=None):
    """One PNG or JPEG file as an (H, W, C) uint8 array (C = 1 or 3).

    channels: None keeps grey files grey and makes the rest RGB; 1 or 3 converts to that
    size:     None, or crop to the centred square and resize to size x size
    """
    from PIL import Image

    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
    return _decode_image(Image, Path(path), size, channels)


def read_image_folder(path, size=None, progress=True):
    """Read a folder of PNG/JPEG images (``.png``, ``.jpg``, ``.jpeg``, any case).

    path:    a folder holding the images directly, or one sub-folder per
             class (``path/<class>/<image>``, as torchvision's ImageFolder)
    size:    None: every image must have the size of the first one.
             An int S: each image is cropped to its largest centred square and
             resized to S x S with Pillow's bicubic filter (which averages over
             the source pixels when shrinking, so it does not alias)
    returns: ImageSet, images (N, H, W, C) uint8, max_value 255; C is 1 when
             every image is grey, else 3 (RGB; grey images among colour ones
             get R = G = B). classes (N,) int64 when there are class
             sub-folders: the sorted sub-folder names are classes 0..K-1; else None.
    progress: show a progress bar for folders of 2,000 images or more

    Files are taken in name order (class folder by class folder), so the
    order is the same on every machine. Other files (a README, say) and names
    starting with "." are skipped; a file with an image suffix that is not a
    readable image is an error.
    """
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder")
    if not path.is_dir():
        raise ValueError(f"{path}: is a file, expected a folder of images")
    if size is not None and (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1):
        raise ValueError(f"{path}: size must be None or an integer >= 1, got {size!r}")
    files, classes = _image_folder_files(path)
    images = None
    bar = tqdm(files, desc=f"reading {path.name}", unit="image", leave=False,
               disable=not progress or len(files) < _PROGRESS_MIN_FILES)
    for index, file in enumerate(bar):
        pixels = _decode_image(Image, file, size)
        if images is None:
            # Preallocated once the first image gives the size: the uint8
            # array is all the memory the reading takes.
            first = file
            images = np.empty((len(files), *pixels.shape), np.uint8)
        elif pixels.shape[:2] != images.shape[1:3]:
            height, width = images.shape[1:3]
            raise ValueError(
                f"{file}: is {pixels.shape[1]}x{pixels.shape[0]} pixels (width x height), but {first} is "
                f"{width}x{height}; expected every image in {path} to have the same size. "
                "Pass --size S (size=S) to crop each image to a centred square and resize it to SxS"
            )
        if pixels.shape[2] > images.shape[3]:
            # The first colour image after grey ones: from here on all is RGB.
            coloured = np.empty((*images.shape[:3], 3), np.uint8)
            coloured[:index] = images[:index]  # grey -> R = G = B
            images = coloured
        images[index] = pixels  # a grey image among colour ones broadcasts to R = G = B
    return ImageSet(images, max_value=255, source=str(path), classes=classes)


# --------------------------------------------------------------------------
# Choosing the reader
# --------------------------------------------------------------------------

FORMATS = (
    "binarized MNIST text (.amat, .amat.gz), "
    "IDX as MNIST and Fashion-MNIST ship it (names containing -ubyte, .gz or not), "
    "MNIST CSV (.csv, .csv.gz), "
    "minipixel's own .npz, "
    "CIFAR-10's python version (cifar-10-python.tar.gz, or the extracted cifar-10-batches-py folder), "
    "a folder of .png/.jpg/.jpeg images (directly in it, or one sub-folder per class)"
)


def _reader_for(name):
    """The reader function for a file name, or None if the name matches no format."""
    name = name.lower()
    if name.endswith((".amat", ".amat.gz")):
        return read_amat
    if "-ubyte" in name:
        return read_idx
    if name.endswith((".csv", ".csv.gz")):
        return read_mnist_csv
    if name.endswith(".npz"):
        return read_npz
    if name.startswith("cifar-10") and name.endswith(".tar.gz"):
        return read_cifar10
    return None


def read_images(path, size=None, progress=True):
    """Read an images file or folder, choosing the reader from its name.

    .amat / .amat.gz -> read_amat;  names containing -ubyte -> read_idx;
    .csv / .csv.gz -> read_mnist_csv;  .npz -> read_npz;
    cifar-10*.tar.gz, or a folder that is cifar-10-batches-py (or holds it, or
    holds its batch files) -> read_cifar10 (train split);
    any other folder -> read_image_folder.
    size:    passed to read_image_folder (crop and resize to size x size);
             ignored by the fixed-size formats
    progress: passed to read_image_folder
    returns: ImageSet
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        if _is_cifar10_folder(path):
            return read_cifar10(path, "train")
        return read_image_folder(path, size, progress)
    reader = _reader_for(path.name)
    if reader is None:
        raise ValueError(f"{path}: unknown file type; expected one of these formats: {FORMATS}")
    return reader(path)


# --------------------------------------------------------------------------
# Named datasets
# --------------------------------------------------------------------------

DEFAULT_DATA_DIR = "data"


def _choose_data_dir(explicit):
    """The data folder: ``explicit`` if given, else $MINIPIXEL_DATA, else "data"."""
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get("MINIPIXEL_DATA")
    if from_env:
        return Path(from_env)
    return Path(DEFAULT_DATA_DIR)


def data_dir(explicit=None):
    """The folder where named datasets are looked for, as a ``pathlib.Path``.

    In order: ``explicit`` (the ``--data-dir`` option) if given, else the
    ``MINIPIXEL_DATA`` environment variable if set, else ``"data"`` relative to
    the working directory.
    """
    return _choose_data_dir(explicit)


def bundled_data_dirs():
    """The folders where the shipped ``mnist_5k.csv.gz`` may be, as a list of Paths.

    The repository's ``data/`` folder (a source checkout or an editable
    install), then ``<sys.prefix>/share/minipixel`` (where setup.py's
    data_files puts it in a normal install).
    """
    return [
        Path(__file__).resolve().parent.parent / "data",
        Path(sys.prefix) / "share" / "minipixel",
    ]


def _plain_and_gz(name):
    """A file name and its gzipped twin: both are accepted."""
    return [name, name + ".gz"]


def _mnist5k_split(imageset, split):
    """Image i of mnist_5k is validation when i % 10 == 9: the file is sorted by
    class, 500 a class, so this puts 50 of each class in the validation split."""
    if split == "all":
        return imageset
    index = np.arange(len(imageset.images))
    keep = (index % 10 == 9) if split == "valid" else (index % 10 != 9)
    return _subset(imageset, np.flatnonzero(keep), imageset.source)


# The named datasets. For each name:
#   files:    split -> the file (or folder) names that hold it, tried in order
#   folder:   sub-folder of the data folder looked in first (then the data folder itself)
#   bundled:  also look in bundled_data_dirs()
#   read:     function(path, split) -> ImageSet, for files that hold several
#             splits and can read one alone; None: read_images(path)
#   select:   function(imageset, split) -> the split's part of the file, or None
#   get:      where to get the files, for the "not found" message
DATASETS = {
    "mnist5k": {
        "files": {
            "train": ["mnist_5k.csv.gz"],
            "valid": ["mnist_5k.csv.gz"],
            "all": ["mnist_5k.csv.gz"],
        },
        "folder": None,
        "bundled": True,
        "read": None,
        "select": _mnist5k_split,
        "get": (
            "mnist_5k.csv.gz ships with minipixel (data/ in the repository, share/minipixel/ "
            "when installed); reinstall minipixel or copy the file into the data folder"
        ),
    },
    "binarized-mnist": {
        "files": {
            "train": _plain_and_gz("binarized_mnist_train.amat"),
            "valid": _plain_and_gz("binarized_mnist_valid.amat"),
            "test": _plain_and_gz("binarized_mnist_test.amat"),
        },
        "folder": "binarized_mnist",
        "bundled": False,
        "read": None,
        "select": None,
        "get": (
            "download binarized MNIST from http://www.cs.toronto.edu/~larocheh/public/datasets/"
            "binarized_mnist/binarized_mnist_{train,valid,test}.amat (gzipped copies work too), "
            "or run `minipixel download binarized-mnist`"
        ),
    },
    "mnist": {
        "files": {
            "train": _plain_and_gz("train-images-idx3-ubyte"),
            "test": _plain_and_gz("t10k-images-idx3-ubyte"),
        },
        "folder": "mnist",
        "bundled": False,
        "read": None,
        "select": None,
        "get": (
            "download MNIST from https://ossci-datasets.s3.amazonaws.com/mnist/ "
            "(the *-ubyte.gz files, images and labels; also at http://yann.lecun.com/exdb/mnist/), "
            "or run `minipixel download mnist`"
        ),
    },
    "fashion-mnist": {
        "files": {
            "train": _plain_and_gz("train-images-idx3-ubyte"),
            "test": _plain_and_gz("t10k-images-idx3-ubyte"),
        },
        "folder": "fashion-mnist",
        "bundled": False,
        "read": None,
        "select": None,
        "get": (
            "download Fashion-MNIST from http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ "
            "(the *-ubyte.gz files, images and labels), or on Debian `apt-get install dataset-fashion-mnist` "
            "(`dpkg -L dataset-fashion-mnist` shows where the files went), "
            "or run `minipixel download fashion-mnist`"
        ),
    },
    "cifar10": {
        # The extracted folder first: reading it skips un-gzipping 163 MB.
        "files": {
            "train": [CIFAR10_FOLDER, CIFAR10_ARCHIVE],
            "test": [CIFAR10_FOLDER, CIFAR10_ARCHIVE],
        },
        "folder": "cifar10",
        "bundled": False,
        "read": read_cifar10,  # decodes only the split's batches
        "select": None,
        "get": (
            "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
            "(md5 c58f30108f718f92721af3b95e74349a; it is read as it is, or extracted as cifar-10-batches-py/), "
            "or run `minipixel download cifar10`"
        ),
    },
}


def _known_datasets():
    """'name:split|split, ...' for messages."""
    return ", ".join(f"{name}:{'|'.join(entry['files'])}" for name, entry in DATASETS.items())


def has_split(spec):
    """True when ``spec`` is ``NAME:SPLIT`` for a known dataset that has that split."""
    name, _, split = str(spec).partition(":")
    return split in DATASETS.get(name, {}).get("files", {})


def _looks_like_path(spec):
    """True when ``spec`` names a file rather than a NAME:SPLIT dataset."""
    separators = [sep for sep in ("/", os.sep, os.altsep) if sep]
    return (
        Path(spec).exists()
        or any(sep in spec for sep in separators)
        or _reader_for(Path(spec).name) is not None
    )


def _candidate_paths(entry, split, root):
    """Every path where a named dataset's split may be, in the order they are tried."""
    folders = []
    if entry["folder"]:
        folders.append(root / entry["folder"])
    folders.append(root)
    if entry["bundled"]:
        folders.extend(bundled_data_dirs())
    return [folder / name for folder in folders for name in entry["files"][split]]


def load(spec, data_dir=None, size=None, progress=True):
    """Load a dataset given as a file or folder path or as ``NAME:SPLIT``.

    spec:     a path to a file or folder in a format ``read_images`` understands,
              or a dataset name and split, e.g. ``mnist5k:train``, ``binarized-mnist:valid``,
              ``mnist:test``, ``fashion-mnist:train``, ``cifar10:test`` (see ``DATASETS``)
    data_dir: the folder to look for named datasets in (default: see ``data_dir()``)
    size:     for a folder of images: crop and resize each to size x size
              (see ``read_image_folder``); ignored by the fixed-size formats
              (MNIST, CIFAR-10, .npz, ...)
    progress: show a progress bar while reading a large folder of images
    returns:  ImageSet

    A spec is a path when the file exists, or when it contains a path
    separator or a known file suffix; a missing path raises FileNotFoundError.
    A named dataset whose file is not found raises FileNotFoundError listing
    every path tried and where to download the data.
    """
    spec = str(spec)
    if _looks_like_path(spec):
        return read_images(spec, size, progress)
    name, _, split = spec.partition(":")
    entry = DATASETS.get(name)
    if entry is None or split not in entry["files"]:
        raise ValueError(
            f"{spec!r} is neither an existing file nor a known dataset; expected a file path or "
            f"NAME:SPLIT, one of: {_known_datasets()}"
        )
    # The parameter data_dir hides the function of that name here, hence the helper.
    root = _choose_data_dir(data_dir)
    tried = _candidate_paths(entry, split, root)
    # exists(), not is_file(): some datasets (CIFAR-10) may be an extracted folder.
    found = next((path for path in tried if path.exists()), None)
    if found is None:
        looked = "\n  ".join(str(path) for path in tried)
        target = root / entry["folder"] if entry["folder"] else root
        raise FileNotFoundError(
            f"{spec}: file not found; looked at:\n  {looked}\n"
            f"To get it: {entry['get']}, and put it in {target}/. "
            "To use another data folder, pass --data-dir DIR or set the MINIPIXEL_DATA environment variable."
        )
    read = entry.get("read")
    imageset = read(found, split) if read is not None else read_images(found, size, progress)
    imageset.source = f"{spec} ({found})"
    if entry["select"] is not None:
        imageset = entry["select"](imageset, split)
    return imageset


def split_holdout(imageset, fraction=0.1, seed=0):
    """Split off a random hold-out set, for data that comes as one file with no validation split.

    imageset: ImageSet with N images
    fraction: the share of images held out, 0 < fraction < 1 (rounded to whole images,
              at least one on each side)
    seed:     seed of the random choice
    returns:  (train ImageSet, valid ImageSet); each keeps the images' original order
    """
    n = len(imageset.images)
    if not 0 < fraction < 1:
        raise ValueError(f"split_holdout: fraction must be between 0 and 1 (exclusive), got {fraction!r}")
    n_valid = int(round(n * fraction))
    if not 1 <= n_valid <= n - 1:
        raise ValueError(
            f"{imageset.source}: a hold-out fraction of {fraction} of {n} images leaves {n_valid} for validation "
            f"and {n - n_valid} for training; expected at least one in each"
        )
    order = np.random.default_rng(seed).permutation(n)
    valid = np.sort(order[:n_valid])
    train = np.sort(order[n_valid:])
    return (
        _subset(imageset, train, f"{imageset.source} (hold-out train part, seed {seed})"),
        _subset(imageset, valid, f"{imageset.source} (hold-out valid part, seed {seed})"),
    )
