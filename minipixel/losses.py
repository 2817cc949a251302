"""Softmax cross-entropy over the ``levels`` of every sub-pixel.

PixelCNN treats each sub-pixel value as a class: the network gives ``levels``
logits per sub-pixel, a softmax turns them into a distribution, and the loss
is the negative log-probability of the true value. Summed over the sub-pixels
of an image that is -log p(image) in nats; we report its mean over the batch
("nats per image"). ``levels=2`` is the binary case (a two-way softmax is a
sigmoid of the difference of the two logits).
"""
import math


from .backend import array_module


def _check(logits, labels):
    xp = array_module(logits)
    if logits.ndim < 2:
        raise ValueError(f"logits: expected (B, ..., levels), got shape {tuple(logits.shape)}")
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"labels: expected shape {tuple(logits.shape[:-1])} (the logits' shape without the levels axis), "
            f"got {tuple(labels.shape)}"
        )
    if array_module(labels) is not xp:
        raise ValueError(f"labels: expected a {xp.__name__} array like the logits, got {type(labels).__module__}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected an integer dtype, got {labels.dtype}")
    if logits.dtype.kind != "f":
        raise ValueError(f"logits: expected a float dtype, got {logits.dtype}")
    levels = logits.shape[-1]
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= levels:
        raise ValueError(f"labels: expected values in 0..{levels - 1} (levels={levels}), got min {lo}, max {hi}")


def log_softmax(logits):
    """log softmax over the last axis, stable: subtract the max before exp."""
    xp = array_module(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def nll_per_image(logits, labels):
    """-log p(image) in nats for every image: (B,). logits (B, ..., L), labels (B, ...) int."""
    _check(logits, labels)
    xp = array_module(logits)
    logp = log_softmax(logits)
    picked = xp.take_along_axis(logp, labels[..., None].astype(xp.intp), axis=-1)
    return -picked.reshape(logits.shape[0], -1).sum(axis=1)


def softmax_cross_entropy(logits, labels, batch=None):
    """Mean over images of the summed NLL, and its gradient.

    logits: (B, H, W, C, levels) float (any shape ``(B, ..., levels)`` works)
    labels: (B, H, W, C) int in 0..levels-1
    batch:  the number of images the mean is over (default B); when these B images
            are one part of a larger batch (``threads``), that batch's size
    returns (loss, dlogits): loss a Python float in nats per image;
        dlogits (same shape as logits) = (softmax(logits) - onehot(labels)) / batch
    """
    _check(logits, labels)
    xp = array_module(logits)
    levels = logits.shape[-1]
    B = logits.shape[0] if batch is None else batch
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = xp.exp(shifted)
    total = e.sum(axis=-1, keepdims=True)
    flat_labels = labels.reshape(-1).astype(xp.intp)
    rows = xp.arange(flat_labels.size)
    shifted_true = shifted.reshape(-1, levels)[rows, flat_labels]
    loss = float((xp.log(total).sum() - shifted_true.sum()) / B)

    # d/dlogits of -log softmax(logits)[y] is softmax(logits) - onehot(y).
    dlogits = e
    dlogits /= total
    dflat = dlogits.reshape(-1, levels)
    dflat[rows, flat_labels] -= 1.0
    dlogits /= B
    return loss, dlogits


def bits_per_dim(nll_nats, dims):
    """Convert nats per image to bits per sub-pixel: divide by ln 2 and by H*W*C."""
    return nll_nats / (math.log(2.0) * dims)
