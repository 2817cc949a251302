"""Exercise "data": uint8 pixels to labels and inputs (quantize, binarize, labels_to_inputs), and bits per dim."""
import math

import numpy as np

from ..data import binarize, labels_to_inputs, quantize
from ..losses import bits_per_dim
from .grade import Wrong, function, max_error, run_parts

NAME = "data"
TITLE = "pixels to labels and inputs (quantize, binarize), and nats to bits per dim"
CHAPTER = "docs/learn/data.md"
SOLUTION = ("minipixel/data.py, functions quantize, binarize and labels_to_inputs (to_labels divides the uint8 "
            "images by 255 first); minipixel/losses.py, function bits_per_dim")

SKELETON = '''"""Exercise data: write quantize, binarize, labels_to_inputs and bits_per_dim.
Check them with: minipixel learn check data"""
import math

import numpy as np


def quantize(images, levels):
    """uint8 images (any shape, values 0..255) -> uint8 labels 0..levels-1, same shape.

    x = images / 255 is the intensity in [0, 1]. Cut [0, 1] into `levels` equal
    bins: bin k holds [k/levels, (k+1)/levels), so the label is floor(x * levels).
    x == 1.0 (the value 255) would be bin `levels`: it joins the last bin instead.
    Do not change images.
    """
    raise NotImplementedError


def binarize(images, threshold=0.5):
    """uint8 images (values 0..255) -> uint8 of 0 (black) and 1 (white), same shape.

    A value is 1 when its intensity x = images / 255 is at least `threshold`
    (x >= threshold). Do not change images.
    """
    raise NotImplementedError


def labels_to_inputs(labels, levels):
    """Integer labels 0..levels-1 -> the network's inputs: float32 in [0, 1], same shape.

    Spread the labels evenly: label 0 -> 0.0 and label levels-1 -> 1.0.
    Do not change labels.
    """
    raise NotImplementedError


def bits_per_dim(nll_nats, dims):
    """A negative log-likelihood in nats per image -> bits per dimension (a number).

    dims is the number of sub-pixels of an image, H * W * C. One bit is ln 2 nats.
    """
    raise NotImplementedError
'''

HINTS = [
    "quantize: x = images.astype(np.float32) / 255; labels = np.floor(x * levels), then "
    "np.minimum(labels, levels - 1) so that 255 joins the last bin; return labels.astype(np.uint8).",
    "binarize: (images.astype(np.float32) / 255 >= threshold).astype(np.uint8): at the threshold itself "
    "the value is white. labels_to_inputs: labels.astype(np.float32) / (levels - 1), so the top label is 1.0.",
    "bits_per_dim: a nat is a log base e, a bit a log base 2, and log2(p) = ln(p) / ln 2: "
    "nll_nats / (math.log(2) * dims), per sub-pixel rather than per image.",
]

LEVELS = (2, 4, 8, 256)
# The shapes of the images: each check also runs on every value 0..255 (the bin edges and the top)
SHAPES = ((2, 5, 5, 1), (3, 4, 6, 3), (7, 9), (256,))
THRESHOLDS = (None, 0.2, 0.6, 1.0)  # None: the default, 0.5; 0.2 = 51/255 and 0.6 = 153/255 are values exactly
# (nats per image, dims): MNIST-sized, CIFAR-sized, and exactly one bit per dim
BPD_CASES = ((543.25, 784), (6357.5, 3072), (784 * math.log(2.0), 784), (0.0, 12))


def _images(shape, seed):
    if shape == (256,):
        return np.arange(256, dtype=np.uint8)
    images = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    images.reshape(-1)[:2] = (0, 255)  # the edge values, in every case
    return images


def _intensities(images):
    """What the library's to_labels does with uint8 images: x = images / 255 in float32."""
    return images.astype(np.float32) / np.float32(255)


def _call(fn, name, array, *args):
    """The learner's ``fn(array, *args)``, checked to leave ``array`` as it was and to keep its shape."""
    before = array.copy()
    out = fn(array, *args)
    if not np.array_equal(array, before):
        raise Wrong(f"{name} changed its input: compute the result in a new array")
    if not isinstance(out, np.ndarray):
        raise Wrong(f"{name} should return a NumPy array, got {type(out).__name__}")
    if out.shape != array.shape:
        raise Wrong(f"{name} returned shape {out.shape} for input of shape {array.shape}: keep the shape")
    return out


def _dtype(out, want, name, fix):
    if out.dtype != want:
        raise Wrong(f"{name} returned dtype {out.dtype}, expected {np.dtype(want)}: {fix}")


def _first_wrong(images, got, want):
    """The first input value whose output differs, with both outputs."""
    index = tuple(int(i) for i in np.argwhere(got != want)[0])
    return int(images[index]), got[index], want[index]


def _quantize_fault(images, got, want, levels):
    value, mine, right = _first_wrong(images, got, want)
    x = value / 255
    if got.max() >= levels:
        return (f"255 (x = 1.0) gives label {got[images == 255].max()} with levels={levels}, but labels stop at "
                f"{levels - 1}: x = 1.0 would be bin levels, and joins the last bin (np.minimum(..., levels - 1))")
    if np.array_equal(got, np.round(images / 255 * (levels - 1))):
        return (f"{value} (x = {x:.4f}) gives label {mine}, the library's {right} (levels={levels}): you round "
                f"x * (levels - 1) to the nearest label; the labels are {levels} equal bins of [0, 1], "
                f"floor(x * levels)")
    return (f"{value} (x = {x:.4f}) gives label {mine}, expected {right} (levels={levels}): the label is "
            f"floor(x * levels) with x = images / 255, and 255 joins the last bin")


def _quantize(module):
    fn = function(module, "quantize")
    for levels in LEVELS:
        for index, shape in enumerate(SHAPES):
            images = _images(shape, index)
            want = quantize(_intensities(images), levels)
            got = _call(fn, "quantize", images, levels)
            if not np.array_equal(got, want):
                raise Wrong(_quantize_fault(images, got, want, levels))
            _dtype(got, np.uint8, "quantize", "labels fit in a byte (levels <= 256), .astype(np.uint8)")
    return (f"same labels as the library for every value 0..255 and {len(SHAPES)} shapes, levels "
            f"{', '.join(map(str, LEVELS))}, uint8")


def _binarize_fault(images, got, want, threshold):
    value, mine, right = _first_wrong(images, got, want)
    x = value / 255
    if np.array_equal(got, (_intensities(images) > threshold).astype(got.dtype)):
        return (f"{value} (x = {x:.4f}) at threshold {threshold} gives {mine}, expected {right}: a value exactly at "
                f"the threshold is white, x >= threshold (not >)")
    if np.array_equal(got, (images >= threshold).astype(got.dtype)):
        return (f"{value} gives {mine} at threshold {threshold}, expected {right}: compare the intensity "
                f"x = images / 255 with the threshold, not the raw 0..255 value")
    return (f"{value} (x = {x:.4f}) at threshold {threshold} gives {mine}, expected {right}: a value is 1 when "
            f"x = images / 255 >= threshold (threshold * 255 in floating point can land just above {value})")


def _binarize(module):
    fn = function(module, "binarize")
    for threshold in THRESHOLDS:
        for index, shape in enumerate(SHAPES):
            images = _images(shape, index + 10)
            args = () if threshold is None else (threshold,)
            want = binarize(_intensities(images), *args)
            got = _call(fn, "binarize", images, *args)
            if got.dtype == bool:
                raise Wrong("binarize returned dtype bool, expected uint8 of 0 and 1: .astype(np.uint8)")
            if not np.array_equal(got, want):
                raise Wrong(_binarize_fault(images, got, want, 0.5 if threshold is None else threshold))
            _dtype(got, np.uint8, "binarize", ".astype(np.uint8)")
    return (f"same as the library for every value 0..255 at thresholds 0.5 (the default), "
            f"{', '.join(str(t) for t in THRESHOLDS[1:])} (x >= threshold), uint8")


def _inputs_fault(labels, got, want, levels):
    top = labels == levels - 1
    top_value = float(np.asarray(got, np.float64)[top][0]) if top.any() else None
    if top_value is not None and abs(top_value - (levels - 1) / levels) < 1e-6:
        return (f"the top level maps to {top_value:g}, not 1.0 (levels={levels}): divide by levels - 1, "
                f"not by levels")
    if np.array_equal(got, labels // (levels - 1)):
        return (f"only the top label gives 1, the others 0 (levels={levels}): labels // (levels - 1) is integer "
                f"division; convert to float32 first (labels.astype(np.float32) / (levels - 1))")
    if top_value is not None and abs(top_value - 1.0) > 1e-6:
        return f"the top level maps to {top_value:g}, not 1.0 (levels={levels}): label / (levels - 1)"
    bad = np.argwhere(np.abs(np.asarray(got, np.float64) - want) > 1e-6)[0]
    index = tuple(int(i) for i in bad)
    return (f"label {labels[index]} gives {float(got[index]):g}, expected {float(want[index]):g} "
            f"(levels={levels}): label / (levels - 1)")


def _inputs(module):
    fn = function(module, "labels_to_inputs")
    for levels in LEVELS:
        for index, shape in enumerate(SHAPES):
            for dtype in (np.uint8, np.int64):  # quantize's labels, and plain integers
                labels = quantize(_intensities(_images(shape, index + 20)), levels).astype(dtype)
                want = labels_to_inputs(labels, levels)
                got = _call(fn, "labels_to_inputs", labels, levels)
                if max_error(got, want) > 1e-6:
                    raise Wrong(_inputs_fault(labels, got, want, levels))
                if got.dtype.kind in "iub":
                    raise Wrong(f"labels_to_inputs returned dtype {got.dtype}, expected float32: // is integer "
                                f"division; convert first (labels.astype(np.float32) / (levels - 1))")
                _dtype(got, np.float32, "labels_to_inputs",
                       "the network's inputs are float32 (labels.astype(np.float32), then divide)")
    return (f"same as the library (label / (levels - 1), 0 -> 0.0, top -> 1.0) on {len(SHAPES)} shapes, "
            f"levels {', '.join(map(str, LEVELS))}, uint8 and int64 labels, float32")


def _bpd_fault(got, nats, dims):
    def near(value):
        return abs(got - value) <= 1e-9 * max(abs(value), 1.0)

    if near(nats / (math.log(10.0) * dims)):
        return (f"bits_per_dim({nats:g}, {dims}) = {got:.6g}: that divides by ln 10 (log10); a bit is a log base 2, "
                f"divide by ln 2 = {math.log(2.0):.6g}")
    if near(nats / math.log(2.0)):
        return (f"bits_per_dim({nats:g}, {dims}) = {got:.6g}: that is bits per image; divide by dims = {dims} "
                f"(the H * W * C sub-pixels) too")
    if near(nats * math.log(2.0) / dims):
        return (f"bits_per_dim({nats:g}, {dims}) = {got:.6g}: that multiplies by ln 2; one bit is ln 2 nats, "
                f"so divide by it")
    if near(nats / dims):
        return (f"bits_per_dim({nats:g}, {dims}) = {got:.6g}: that is nats per dimension; divide by "
                f"ln 2 as well to get bits")
    return f"bits_per_dim({nats:g}, {dims}) = {got:.6g}, expected {bits_per_dim(nats, dims):.6g}: nats / (ln 2 * dims)"


def _bpd(module):
    fn = function(module, "bits_per_dim")
    for nats, dims in BPD_CASES:
        got = fn(nats, dims)
        if np.ndim(got) != 0:
            raise Wrong(f"bits_per_dim({nats:g}, {dims}) should be one number, got shape {np.shape(got)}")
        got, want = float(got), bits_per_dim(nats, dims)
        if not (np.isfinite(got) and abs(got - want) <= 1e-9 * max(abs(want), 1.0)):
            raise Wrong(_bpd_fault(got, nats, dims))
    return f"same as the library on {len(BPD_CASES)} numbers (784 * ln 2 nats over 784 dims is 1 bit per dim)"


PARTS = [("quantize", _quantize), ("binarize", _binarize), ("labels_to_inputs", _inputs),
         ("bits_per_dim", _bpd)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
