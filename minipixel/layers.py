"""The base of every layer (``Layer``), and the layers without parameters: ReLU, Dropout.

Every layer (and the whole ``model.PixelCNN``) keeps one contract:

- ``params[name]`` holds its parameters and ``grads[name]`` their gradients
  (same shapes), so an optimizer can walk both dicts;
- ``forward(x)`` computes the output for a batch of images and keeps what
  ``backward`` will need (the cache attributes, declared in ``__init__``);
- ``backward(dy)`` takes the gradient of the loss with respect to the output,
  fills ``grads`` and returns the gradient with respect to the input (``None``
  for a layer built with ``input_grad=False``: the first layer of a model,
  whose input is the data, needs no gradient);
- ``start_at(n, height, width)`` and ``forward_at(x, i, j, g)``: the same layer
  computed at one position only, for the samplers (``conv`` explains them).

Composite layers call their children forward in order and backward in
reverse order, so the chain rule is written out line by line.

Images are ``(B, H, W, C)`` arrays: batch, rows, columns, channels.

The masked convolution is ``conv.MaskedConv2d``; the residual block is ``model.ResidualBlock``.
"""
import contextlib

import numpy as np

from .backend import array_module


def check_array(x, name, ndim, last_dim, dtype, xp):
    """Raise a ValueError that says what was expected and what came."""
    if not hasattr(x, "ndim") or array_module(x) is not xp:
        raise ValueError(
            f"{name}: expected a {xp.__name__} array (the layer lives there), got {type(x).__module__}.{type(x).__name__}"
        )
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions (B, H, W, C), got shape {tuple(x.shape)}")
    if last_dim is not None and x.shape[-1] != last_dim:
        raise ValueError(f"{name}: expected {last_dim} channels in the last axis, got shape {tuple(x.shape)}")
    if x.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype).name}, got {x.dtype}")


class Layer:
    """Base class: ``params`` / ``grads`` dicts, a walk over named children, and
    the contract every layer keeps (see the module docstring)."""

    CACHE = ()  # the attributes in which forward keeps what backward needs
    caching = True  # False inside ``inference()``
    packed = None  # (flat parameters, flat gradients) after ``pack_parameters()``

    def __init__(self):
        self.params = {}
        self.grads = {}

    def children(self):
        """Named sub-layers, in forward order (composite layers override this)."""
        return {}

    def named_parameters(self, prefix=""):
        """Yield ``(name, param, grad)`` for this layer and all its children, e.g. ``blocks.0.conv2.W``."""
        for name, p in self.params.items():
            yield prefix + name, p, self.grads[name]
        for child_name, child in self.children().items():
            yield from child.named_parameters(f"{prefix}{child_name}.")

    def parameters(self):
        """``{name: array}`` for every parameter, e.g. ``blocks.0.conv2.W`` (the arrays themselves)."""
        return {name: p for name, p, _ in self.named_parameters()}

    def gradients(self):
        """``{name: array}``: the gradients that the last ``backward`` filled, same keys."""
        return {name: g for name, _, g in self.named_parameters()}

    def load_parameters(self, arrays, source="parameters"):
        """Copy ``{name: array}`` into the layer, checking every name and shape."""
        own = self.parameters()
        missing = sorted(set(own) - set(arrays))
        extra = sorted(set(arrays) - set(own))
        if missing or extra:
            raise ValueError(f"{source}: parameters do not match the model: missing {missing}, unexpected {extra}")
        for name, p in own.items():
            a = arrays[name]
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"{source}: parameter {name}: expected shape {tuple(p.shape)}, got {tuple(a.shape)}")
            p[...] = array_module(p).asarray(a, dtype=p.dtype)

    def pack_parameters(self):
        """Move every parameter of this layer and its children into one flat array,
        and every gradient into another; ``params`` and ``grads`` then hold views
        of them (same names, shapes and values). An optimizer given the two flat
        arrays (``Adam(..., flat=model.packed)``) updates all the parameters in a
        few array operations instead of a few per parameter: on a GPU, each
        operation is a kernel launch. Sets and returns ``packed = (params, grads)``."""
        own = [(layer, name) for layer in self.layers() for name in layer.params]
        first = own[0][0].params[own[0][1]]
        xp = array_module(first)
        total = sum(int(layer.params[name].size) for layer, name in own)
        flat_params = xp.empty(total, dtype=first.dtype)
        flat_grads = xp.zeros(total, dtype=first.dtype)
        start = 0
        for layer, name in own:
            p = layer.params[name]
            stop = start + int(p.size)
            flat_params[start:stop] = p.reshape(-1)
            layer.params[name] = flat_params[start:stop].reshape(p.shape)
            layer.grads[name] = flat_grads[start:stop].reshape(p.shape)
            start = stop
        self.packed = (flat_params, flat_grads)
        return self.packed

    def layers(self):
        """This layer and every layer inside it, depth first in forward order."""
        yield self
        for child in self.children().values():
            yield from child.layers()

    @contextlib.contextmanager
    def inference(self):
        """``with model.inference(): model.forward(x)``: forward without keeping
        anything for backward, for evaluation. Only one layer's input and output
        are alive at a time, instead of every layer's, and the caches of the last
        training step are let go on the way in (a backward after this needs a new
        forward first)."""
        layers = list(self.layers())
        for layer in layers:
            for name in layer.CACHE:
                setattr(layer, name, None)
            layer.caching = False
        try:
            yield self
        finally:
            for layer in layers:
                layer.caching = True

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def start_at(self, n, height, width):
        """Get ready for ``forward_at`` on ``n`` images of ``height x width`` (after
        any change of the parameters): children first, then the layer's own state."""
        for child in self.children().values():
            child.start_at(n, height, width)

    def forward_at(self, x, i, j, g):
        raise NotImplementedError


class ReLU(Layer):
    """y = max(x, 0); dx = dy where y > 0, else 0.

    With ``inplace=True`` the output overwrites the input, and in backward the
    input gradient overwrites ``dy``: safe when nothing else needs them (the
    output of a layer that does not keep it; a gradient made for this call).
    Backward needs only the output: y > 0 exactly where x > 0.
    """

    CACHE = ("y",)

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.y = None  # kept by forward for backward
        self.y_at = None  # forward_at's output vector

    def forward(self, x):
        xp = array_module(x)
        y = xp.maximum(x, 0, out=x if self.inplace else None)
        if self.caching:
            self.y = y
        return y

    def backward(self, dy):
        if self.y is None:
            raise RuntimeError("ReLU.backward: no forward to go back through (none yet, or it ran inside "
                               "inference(), which keeps nothing for backward)")
        if dy.shape != self.y.shape:
            raise ValueError(f"ReLU: output gradient shape {dy.shape} does not match output shape {self.y.shape}")
        xp = array_module(dy)
        return xp.multiply(dy, self.y > 0, out=dy if self.inplace else None)

    def start_at(self, n, height, width):
        self.y_at = None

    def forward_at(self, x, i, j, g):
        """x: (n, C) at one position -> max(x, 0), in the layer's own vector (x belongs to the layer before)."""
        xp = array_module(x)
        if self.y_at is None or self.y_at.shape != x.shape:
            self.y_at = xp.empty_like(x)
        return xp.maximum(x, 0, out=self.y_at)


class Dropout(Layer):
    """Inverted dropout, for training only: y = x * keep / (1 - rate), where
    ``keep`` is 1 with probability 1 - rate, drawn anew for every image, step and
    layer; dx = dy * keep / (1 - rate). Outside training it is the identity.

    It is on only while a training step has given it a ``rate`` and one key per
    image (``set_dropout``); the mask of image b is drawn from
    ``np.random.default_rng([*keys[b], index])``, the key of the image (the run's
    seed, the step, the image's place in the global batch) and the layer's place
    in the model. So the masks of a step do not depend on how the batch was cut
    into parts (threads, MPI ranks), and a resumed run draws the ones it would
    have drawn. Drawn on the host (NumPy's generator) and copied to the device.
    Inside ``inference()``, with rate 0 or without keys, ``forward`` returns x
    itself: evaluation, sampling and the gradient checks see the whole network.
    """

    CACHE = ("scaled_keep",)

    def __init__(self):
        super().__init__()
        self.rate, self.keys, self.index = 0.0, None, 0  # set by set_dropout
        self.scaled_keep = None  # kept by forward for backward: keep / (1 - rate), or None (identity)

    def active(self):
        return self.caching and self.rate > 0 and self.keys is not None

    def mask(self, shape, dtype):
        """keep / (1 - rate) for a batch of ``shape`` (B, ...), as a host array."""
        if len(self.keys) != shape[0]:
            raise ValueError(f"Dropout: expected a key for each of the {shape[0]} images, got {len(self.keys)} keys")
        keep = np.empty(shape, dtype=dtype)
        for b, key in enumerate(self.keys):
            rng = np.random.default_rng([int(k) for k in key] + [self.index])
            keep[b] = rng.random(shape[1:], dtype=np.float32) >= self.rate
        keep *= 1 / (1 - self.rate)
        return keep

    def forward(self, x):
        if not self.active():
            self.scaled_keep = None
            return x
        self.scaled_keep = array_module(x).asarray(self.mask(x.shape, x.dtype))
        return x * self.scaled_keep

    def backward(self, dy):
        return dy if self.scaled_keep is None else dy * self.scaled_keep

    def forward_at(self, x, i, j, g):
        return x  # sampling is never training


def set_dropout(model, rate=0.0, keys=None):
    """Give every ``Dropout`` layer of ``model`` the rate and the per-image keys
    of the next training step, (B, k) ints; ``set_dropout(model)`` switches them
    off again. Each layer also gets its place among the model's dropout layers."""
    for index, layer in enumerate(layer for layer in model.layers() if isinstance(layer, Dropout)):
        layer.rate, layer.keys, layer.index = float(rate), keys, index
