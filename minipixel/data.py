"""What the model sees: pixels turned into labels and inputs, and the order of the examples.

A PixelCNN is a classifier run once per pixel: for every pixel it outputs a
probability for each of ``levels`` possible values (256 for 8-bit images, 2 for
black-and-white ones). So the data has to reach the model in two forms:

* **labels**: the integer class of every pixel, ``0 .. levels-1`` (``quantize``,
  ``binarize``, ``to_labels``). The loss compares the model's prediction with these.
* **inputs**: the same labels scaled back to floats in ``[0, 1]``
  (``labels_to_inputs``), which is what the network looks at.

Images arrive as an ``ImageSet``: a ``(N, H, W, C) uint8`` array plus the value
that means "full intensity" (1 for binary data, 255 for 8-bit data). Reading
them from files (MNIST, CIFAR-10, folders of pictures, named datasets, the
data folder) is the job of the ``minipixel.datasets`` package; this module
only needs the array.

Batches are drawn from a permutation that is a pure function of
``(seed, epoch)`` (``epoch_permutation``), so a run stopped in the middle of an
epoch can resume at exactly the next batch. Data with no validation split of
its own gets one from ``split_holdout``.

Everything here runs on the CPU with NumPy; the training loop moves batches to
the GPU itself. The one exception is ``labels_to_inputs``, which works on
whichever array module it is given.
"""
from dataclasses import dataclass

import numpy as np

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
# The order of the examples
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


def subset(imageset, indices, source):
    """A new ImageSet holding only the images at ``indices`` (an int array), and their classes."""
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
        subset(imageset, train, f"{imageset.source} (hold-out train part, seed {seed})"),
        subset(imageset, valid, f"{imageset.source} (hold-out valid part, seed {seed})"),
    )
