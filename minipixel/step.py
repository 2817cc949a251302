"""One training step, top to bottom: forward, loss, backward, the gradient sum
across threads and MPI ranks, the Adam step.

Written out for one batch on one core, a step is four lines:

    logits = model.forward(inputs)                       # (B, H, W, C, levels)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.backward(dlogits)                              # fills model.gradients()
    optimizer.step(model.gradients())                    # updates model.parameters()

``train_step`` is those lines, with three things around them:

- on the CPU the batch is split into parts, one per thread (``threads``): each
  part's forward, loss and backward run on a replica of the model, and the
  replicas' gradients are added into the model's, in the order of the parts (the
  same thread count gives the same numbers, bit for bit; another count groups
  the sums differently, so it rounds differently, by about 1e-7 relative in
  float32);
- with MPI, each rank did its slice of the global batch: the ranks add their
  gradients (``distributed``) before anyone updates;
- a NaN or infinite loss stops the step before the update, so the parameters
  stay as they were; an update that overflows the parameters or Adam's moments
  stops the run too (it is never saved: the last checkpoint stays good).

Dropout (``layers.Dropout``) draws its masks from one key per image,
``dropout_keys(seed, step, positions)``, so the masks do not depend on how the
batch was cut into parts or ranks.
"""
import math

import numpy as np

from . import threads
from .layers import set_dropout
from .losses import softmax_cross_entropy


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def dropout_keys(seed, step, positions):
    """The dropout key of each image of a step's batch, (B, 3) ints: (seed, step, the
    image's place in the global batch); see ``layers.Dropout``."""
    positions = np.asarray(positions, dtype=np.int64)
    return np.stack([np.full_like(positions, seed), np.full_like(positions, step), positions], axis=1)


def loss_and_gradients(model, inputs, labels, classes=None, batch=None, dropout=None):
    """Forward, loss and backward of one batch: fills ``model.gradients()`` and
    returns the loss (mean NLL per image, nats), the parts in parallel.

    inputs (B, H, W, C) floats, labels (B, H, W, C) ints, classes (B,) ints or None.
    batch: the images the mean is over: B (the default), or with MPI the global
    batch of which these B images are one rank's slice.
    dropout: None, or (rate, keys (B, k) ints): each part's dropout layers get the
    keys of its images (``layers.set_dropout``), and are switched off again after.
    """
    batch = batch or len(inputs)
    if len(inputs) == 0:  # an MPI rank whose slice of a small last batch is empty adds nothing
        for g in model.gradients().values():
            g[...] = 0
        return 0.0
    models = threads.replicas(model, len(inputs))

    def part_step(m, part):  # the first three of the four lines, on one part
        if dropout is not None:
            set_dropout(m, dropout[0], dropout[1][part])
        try:
            logits = m.forward(inputs[part], threads.part_of(classes, part))
            loss, dlogits = softmax_cross_entropy(logits, labels[part], batch=batch)  # each part divides by the batch
            m.backward(dlogits)
        finally:
            if dropout is not None:
                set_dropout(m)
        return loss

    parts = threads.split(len(inputs), len(models))
    losses = threads.run([lambda m=m, part=part: part_step(m, part) for m, part in zip(models, parts)])
    if len(models) > 1:  # the gradient sum across threads, in the order of the parts
        total = model.gradients()
        for other in models[1:]:
            for name, g in other.gradients().items():
                total[name] += g
    return float(sum(losses))


def train_step(model, optimizer, inputs, labels, classes=None, ranks=None, batch=None, dropout=None):
    """One step of gradient descent on one batch; returns its loss in nats per image.

    inputs: (B, H, W, C) floats in [0, 1]; labels: (B, H, W, C) ints, on the model's device;
    classes: (B,) ints, each image's class, for a class-conditional model.
    ranks, batch: with MPI (``distributed``), the ranks, and the global batch of
    which these B images are this rank's slice.
    dropout: None, or (rate, keys): the dropout rate and the images' keys, (B, 3) ints
    (``dropout_keys``), for a model with dropout layers.
    """
    loss = loss_and_gradients(model, inputs, labels, classes, batch, dropout)  # forward, loss, backward
    if ranks is not None and ranks.size > 1:  # the gradient sum across ranks: every rank did its slice
        ranks.sum(model.packed[1])  # all the gradients, one flat array
        loss = ranks.agree([loss])[0]
    if not math.isfinite(loss):  # before the update: the parameters stay as they were
        raise TrainingError(f"the loss became {loss}")
    optimizer.step(model.gradients())  # the Adam step: updates model.parameters() in place
    finite = getattr(optimizer, "finite", None)  # Adam and SGD have it; any object with step() may train
    if finite is not None and not finite():  # an overflow in the update: the run stops before anything is saved
        raise TrainingError("the update made the parameters or the optimizer's moments infinite or NaN")
    return loss
