"""Evaluation: the logits and the NLL of a batch without keeping anything for
backward, the parts in parallel (``threads``), and the mean NLL of a data set.

    nll(model, inputs, labels)  -> -log p(image) in nats, (B,)
    evaluate(model, labels)     -> {"nll_nats", "bits_per_dim", "images"}
"""
import time

import numpy as np
from tqdm import tqdm

from . import memory, threads
from .backend import synchronize
from .options import say_estimate
from .data import labels_to_inputs
from .losses import bits_per_dim, nll_per_image


def _in_parts(model, inputs, classes, then):
    """``then(part, logits)`` of every part of the batch, the forward passes
    without caches (``Layer.inference``) and in parallel; the results joined."""
    batch = len(inputs)
    models = threads.replicas(model, batch)

    def part_forward(m, part):
        with m.inference():
            return then(part, m.forward(inputs[part], threads.part_of(classes, part)))

    parts = threads.split(batch, len(models))
    results = threads.run([lambda m=m, part=part: part_forward(m, part) for m, part in zip(models, parts)])
    return results[0] if len(results) == 1 else model.xp.concatenate(results)


def forward(model, inputs, classes=None):
    """The logits of a batch, (B, H, W, C, levels), keeping nothing for backward."""
    return _in_parts(model, inputs, classes, lambda part, logits: logits)


def nll(model, inputs, labels, classes=None):
    """-log p(image) in nats for every image of a batch, (B,) on the model's
    device, keeping nothing for backward."""
    return _in_parts(model, inputs, classes, lambda part, logits: nll_per_image(logits, labels[part]))


# Forward passes' worth of work per image: the cached sampler 2 to 3 (bench's per_two_forward_passes),
# the wavefront about 2, evaluation 1; the naive sampler a whole pass per sub-pixel; the graph
# sampler the cached one's arithmetic.
PASSES_PER_IMAGE = {"evaluate": 1, "cached": 2.5, "wavefront": 2, "graph": 2.5}


def estimate_seconds(model, images, work="evaluate", height=None, width=None):
    """About how long ``work`` (evaluating, or one of the samplers) takes on ``images``
    images of ``height x width``, from one forward pass of one blank image timed here."""
    cfg, xp = model.config, model.xp
    H, W = height or cfg.height, width or cfg.width
    x = xp.zeros((1, H, W, cfg.channels), dtype=model.dtype)
    classes = np.zeros(1, dtype=np.int64) if cfg.classes else None
    took = []
    for _ in range(2):  # the first pass also pays for its buffers and BLAS's start: the second is the one
        start = time.perf_counter()
        forward(model, x, classes)
        synchronize(xp)
        took.append(time.perf_counter() - start)
    passes = H * W * cfg.channels if work == "naive" else PASSES_PER_IMAGE[work]
    return min(took) * images * passes


def to_device(model, labels):
    """Host uint8 labels -> (network inputs, labels) on the model's device."""
    xp = model.xp
    labels = xp.asarray(labels)
    return labels_to_inputs(labels, model.config.levels, model.dtype, xp), labels


def evaluate(model, labels, batch_size=64, progress=False, classes=None):
    """Mean NLL of ``labels`` (N, H, W, C) under ``model``: nats per image and bits/dim.
    classes: (N,) ints, the true class of each image, for a class-conditional model."""
    if labels.ndim != 4 or labels.shape[3] != model.config.channels:
        raise ValueError(
            f"evaluation data: expected images (N, H, W, {model.config.channels}) for this model, got {labels.shape}"
        )
    if int(labels.max()) >= model.config.levels:
        raise ValueError(f"evaluation data has label {int(labels.max())}, but the model has {model.config.levels} levels")
    if model.xp is np:
        memory.check_memory(memory.inference_bytes(model.config, min(batch_size, len(labels))),
                            f"evaluating at batch {batch_size}")
    if progress:
        say_estimate(estimate_seconds(model, len(labels)), f"evaluating {len(labels)} images")
    total = 0.0
    for start in tqdm(range(0, len(labels), batch_size), desc="evaluating", leave=False, disable=not progress):
        x, y = to_device(model, labels[start : start + batch_size])
        given = None if classes is None else classes[start : start + batch_size]
        total += float(nll(model, x, y, given).sum())  # forward without caches, parts in parallel
    mean = total / len(labels)
    dims = int(np.prod(labels.shape[1:]))
    return {"nll_nats": mean, "bits_per_dim": bits_per_dim(mean, dims), "images": int(len(labels))}
