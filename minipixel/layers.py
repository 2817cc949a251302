"""Layers with hand-written backward passes: MaskedConv2d, ReLU, ResidualBlock.

Every layer follows one pattern:

- ``params[name]`` holds its parameters and ``grads[name]`` their gradients
  (same shapes), so an optimizer can walk both dicts;
- ``forward(x)`` computes the output and keeps what ``backward`` will need;
- ``backward(dy)`` takes the gradient of the loss with respect to the output,
  fills ``grads`` and returns the gradient with respect to the input.

Composite layers call their children forward in order and backward in
reverse order, so the chain rule is written out line by line.

Images are ``(B, H, W, C)`` arrays: batch, rows, columns, channels.
"""
import math

import numpy as np

from .backend import array_module, chunk_rows
from .im2col import col2im, im2col, scratch
from .masks import conv_mask, live_taps


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
    """Base class: ``params`` / ``grads`` dicts and a walk over named children."""

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


class MaskedConv2d(Layer):
    """A masked convolution: stride 1, "same" output size, with bias, and
    optionally a ReLU on its output.

    Parameters:
        W: (kernel, kernel, in_channels, out_channels); ``W[dy, dx, i, o]``
           weights input channel ``i`` at the position ``(dy - k//2, dx - k//2)``
           away from output channel ``o``'s position. Entries the mask
           zeroes are kept at zero (initialised to 0, gradient always 0).
        b: (out_channels,)

    forward: x (B, H, W, in_channels) -> y (B, H, W, out_channels)
        y[b, i, j, o] = b[o] + sum over live taps (dy, dx) and channels c of
                        x[b, i + dy - k//2, j + dx - k//2, c] * (W * mask)[dy, dx, c, o]
        and with ``relu=True``, y = max(y, 0).

    Work is done a few images at a time (``backend.chunk_rows``): the im2col
    matrix of a chunk, the bias, the ReLU and their gradients all stay in the
    CPU's cache between the steps that touch them, instead of each step
    streaming a 100 MB array through memory. (On the GPU the whole batch is
    one chunk.) The ReLU is fused here for the same reason: applied to a
    chunk that was just computed, it costs almost nothing.
    """

    def __init__(self, in_channels, out_channels, kernel, mask_type="B", colors=1, rng=None,
                 dtype=np.float32, xp=np, relu=False):
        super().__init__()
        mask = conv_mask(kernel, in_channels, out_channels, mask_type, colors)
        self.taps = live_taps(mask)
        if not self.taps:
            raise ValueError(
                f"a {kernel}x{kernel} mask {mask_type} convolution with {colors} colour group(s) has no "
                "live taps: it would see nothing"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel, self.mask_type, self.colors, self.relu = kernel, mask_type, colors, relu
        self.dtype, self.xp = np.dtype(dtype), xp
        ys, xs = (np.array(a) for a in zip(*self.taps))
        self._tap_index = (xp.asarray(ys), xp.asarray(xs))
        # The mask restricted to the live taps, as a (T*in, out) matrix. It is
        # all ones except at a colour-masked centre tap; then it is applied to
        # the weight matrix in forward and to its gradient in backward.
        live = mask[ys, xs].reshape(len(self.taps) * in_channels, out_channels)
        self.live_mask = None if live.all() else xp.asarray(live, dtype=dtype)
        self.mask = xp.asarray(mask, dtype=dtype)

        # He initialisation over the inputs an output really sees.
        rng = np.random.default_rng(0) if rng is None else rng
        fan_in = live.sum() / out_channels
        W = rng.standard_normal(mask.shape) * math.sqrt(2.0 / fan_in) * mask
        self.params = {"W": xp.asarray(W, dtype=dtype), "b": xp.zeros(out_channels, dtype=dtype)}
        self.grads = {name: xp.zeros_like(p) for name, p in self.params.items()}

    def weight_matrix(self):
        """The live taps of ``W * mask`` as a ``(T * in_channels, out_channels)`` matrix."""
        Wm = self.params["W"][self._tap_index].reshape(-1, self.out_channels)
        if self.live_mask is not None:
            Wm = Wm * self.live_mask
        return Wm

    def _chunks(self, x):
        """Slices of whole images along the batch axis, about ``chunk_rows`` positions each."""
        B, H, W, _ = x.shape
        per_chunk = max(1, chunk_rows(self.xp) // (H * W))
        return [slice(start, start + per_chunk) for start in range(0, B, per_chunk)]

    def _cols(self, x):
        """The im2col matrix of a chunk x: (b*H*W, T*in_channels)."""
        b, H, W, C = x.shape
        if self.kernel == 1:
            # A 1x1 convolution reads only the centre tap: its im2col matrix
            # is the input itself, and the layer is a single matmul.
            return x.reshape(b * H * W, C)
        buf = scratch("cols", (b, H, W, len(self.taps), C), x.dtype, self.xp)
        return im2col(x, self.taps, self.kernel, out=buf).reshape(b * H * W, -1)

    def forward(self, x):
        check_array(x, "MaskedConv2d input", 4, self.in_channels, self.dtype, self.xp)
        B, H, W, _ = x.shape
        Wm, b = self.weight_matrix(), self.params["b"]
        y = self.xp.empty((B, H, W, self.out_channels), dtype=self.dtype)
        for chunk in self._chunks(x):
            out = y[chunk].reshape(-1, self.out_channels)
            self.xp.matmul(self._cols(x[chunk]), Wm, out=out)
            out += b
            if self.relu:
                self.xp.maximum(out, 0, out=out)
        # Backward rebuilds the im2col matrix from x rather than caching it (it
        # is T times larger than x); with the ReLU it also needs y (y > 0).
        self.x, self.y = x, (y if self.relu else None)
        return y

    def backward(self, dy, input_grad=True):
        """dy: (B, H, W, out_channels) -> dx: (B, H, W, in_channels), or None if not ``input_grad``."""
        x, xp = self.x, self.xp
        check_array(dy, "MaskedConv2d output gradient", 4, self.out_channels, self.dtype, xp)
        if dy.shape[:3] != x.shape[:3]:
            raise ValueError(f"MaskedConv2d: output gradient shape {dy.shape} does not match input shape {x.shape}")
        Wm = self.weight_matrix()
        dWm = xp.zeros_like(Wm)
        db = xp.zeros(self.out_channels, dtype=self.dtype)
        dx = xp.empty_like(x) if input_grad else None
        for chunk in self._chunks(x):
            d = dy[chunk].reshape(-1, self.out_channels)
            if self.relu:
                # Through the ReLU first: its gradient passes where y > 0.
                mask = self.y[chunk].reshape(d.shape) > 0
                d = xp.multiply(d, mask, out=scratch("dy", d.shape, self.dtype, xp))
            # y = cols @ Wm + b, so dWm = cols^T d and db = column sums of d,
            # summed over the chunks.
            dWm += self._cols(x[chunk]).T @ d
            db += d.sum(axis=0)
            if not input_grad:
                continue
            # dcols = d Wm^T; col2im sends each entry back to the input
            # position it was copied from (for 1x1, dcols is dx itself).
            if self.kernel == 1:
                xp.matmul(d, Wm.T, out=dx[chunk].reshape(-1, self.in_channels))
            else:
                dcols = scratch("cols", (d.shape[0], Wm.shape[0]), self.dtype, xp)  # im2col's buffer is free
                xp.matmul(d, Wm.T, out=dcols)
                dcols = dcols.reshape(dx[chunk].shape[:3] + (len(self.taps), self.in_channels))
                col2im(dcols, self.taps, self.kernel, out=dx[chunk])
        if self.live_mask is not None:
            dWm *= self.live_mask
        dW = self.grads["W"]
        dW[...] = 0  # masked taps get exactly zero gradient
        dW[self._tap_index] = dWm.reshape(len(self.taps), self.in_channels, self.out_channels)
        self.grads["b"][...] = db
        return dx


class ReLU(Layer):
    """y = max(x, 0); dx = dy where y > 0, else 0.

    With ``inplace=True`` the output overwrites the input, and in backward the
    input gradient overwrites ``dy``: safe when nothing else needs them (the
    output of a layer that does not keep it; a gradient made for this call).
    Backward needs only the output: y > 0 exactly where x > 0.
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        xp = array_module(x)
        self.y = xp.maximum(x, 0, out=x if self.inplace else None)
        return self.y

    def backward(self, dy):
        if dy.shape != self.y.shape:
            raise ValueError(f"ReLU: output gradient shape {dy.shape} does not match output shape {self.y.shape}")
        xp = array_module(dy)
        return xp.multiply(dy, self.y > 0, out=dy if self.inplace else None)


class ResidualBlock(Layer):
    """The PixelCNN residual block, with ReLUs before the convolutions:

        x -> ReLU -> conv1 (1x1, mask B, h -> m1)
          -> ReLU -> conv2 (3x3, mask B, m1 -> m2)
          -> ReLU -> conv3 (1x1, mask B, m2 -> h)  -> + x

    (the second and third ReLU are computed by conv1 and conv2, ``relu=True``)

    ``widths="half"`` is the paper's block (m1 = m2 = h/2); ``"keras"`` is the
    keras.io example's (m1 = h, m2 = h/2). x and the output: (B, H, W, h).
    """

    WIDTHS = ("half", "keras")

    def __init__(self, channels, widths="half", kernel=3, colors=1, rng=None, dtype=np.float32, xp=np):
        super().__init__()
        if widths not in self.WIDTHS:
            raise ValueError(f"residual block widths must be one of {self.WIDTHS}, got {widths!r}")
        m1 = channels // 2 if widths == "half" else channels
        m2 = channels // 2
        conv = dict(colors=colors, rng=rng, dtype=dtype, xp=xp)
        self.relu1 = ReLU()  # not in place: x is still needed for the skip connection
        # The other two ReLUs are fused into the convolutions before them.
        self.conv1 = MaskedConv2d(channels, m1, 1, "B", relu=True, **conv)
        self.conv2 = MaskedConv2d(m1, m2, kernel, "B", relu=True, **conv)
        self.conv3 = MaskedConv2d(m2, channels, 1, "B", **conv)

    def children(self):
        return {"conv1": self.conv1, "conv2": self.conv2, "conv3": self.conv3}

    def forward(self, x):
        h = self.relu1.forward(x)
        h = self.conv1.forward(h)  # conv, then ReLU
        h = self.conv2.forward(h)  # conv, then ReLU
        h = self.conv3.forward(h)
        h += x  # conv3's output is a fresh array: add the identity into it
        return h

    def backward(self, dy):
        # out = x + f(x): the sum passes dy to both branches unchanged.
        dh = self.conv3.backward(dy)
        dh = self.conv2.backward(dh)  # through its ReLU, then the conv
        dh = self.conv1.backward(dh)
        dh = self.relu1.backward(dh)
        dh += dy
        return dh
