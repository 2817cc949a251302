"""The Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation
with PixelCNN Decoders"): two stacks, gated units, class conditioning.

Why two stacks. A masked k x k kernel sees the rows above and the pixels to the
left; stacking such kernels never reaches the triangle of earlier pixels up and
to the right of an output (the "blind spot", ``minipixel show field``). Here
the kernel is cut in two, and each piece grows without a blind spot:

- the **vertical stack** sees every row above: a (k//2 + 1) x k convolution
  over the rows up to *and including* the current one (mask "V" in ``masks``),
  whose result is used only **shifted down one row** (``ShiftDown``), so that
  at row i it depends on rows < i alone, every column in reach;
- the **horizontal stack** sees the current row up to the current pixel: a
  1 x (k//2 + 1) convolution (mask "HA" in the first layer, "HB" after), with
  the colour groups of mask A / B at its centre tap (R -> G -> B);
- the vertical stack feeds the horizontal one: its pre-activation, shifted
  down a row, goes through a 1x1 convolution (the v -> h link) and is added to
  the horizontal pre-activation. Never the other way: the horizontal stack
  sees the current row, which the vertical stack must not.

One layer (``GatedLayer``), with h filters (2h before each gate):

    v_pre = conv_v(v) [+ class bias]                                 (B, H, W, 2h)
    h_pre = conv_h(h) + link(shift_down(v_pre)) [+ class bias]       (B, H, W, 2h)
    v'    = gate(v_pre)                                              (B, H, W, h)
    out   = conv_out(dropout(gate(h_pre)))   1x1, mask B            (B, H, W, h)
    h'    = h + out   (the first layer: h' = out, see below)
    skip += out

**Dropout** (``layers.Dropout``, training with ``--dropout P`` only; the identity
otherwise) zeroes each gated unit of the horizontal stack with probability P before
its 1x1 convolution, so ``out`` (the residual and the skip) cannot lean on any one
unit; the vertical stack is left whole.

The **gated unit** ``gate(a, b) = tanh(a) * sigmoid(b)`` replaces the ReLU;
channels 2k and 2k + 1 of a pre-activation are the pair (a, b) of output
channel k, so with colour groups (contiguous, see ``masks``) both halves of a
pair lie in the output's group when h is a multiple of 3.

The **first layer** reads the image itself with both stacks, and has **no
residual**: its h input is the image, whose current pixel its output must not
see (adding it back would leak it: low loss, black samples).

**Class conditioning**: with ``classes > 0`` every pre-activation (both stacks,
every layer) gets a learned bias per class, ``onehot(y) @ V``: the same for
every position, so it does not break the order.

The output: the sum of every layer's ``out`` (skip connections), ReLU, a 1x1
mask-B convolution h -> h with ReLU, and a 1x1 mask-B convolution to
``C * levels`` logits, as in ``model.PixelCNN``.

The one-position forward (``forward_at``, see ``conv``): the vertical stack
reads whole rows above, which are final once the sampler has finished them,
so at the first sub-pixel of row i the model computes the vertical stack's row
i - 1 for every column and every layer (``GatedLayer.vertical_row``), and the
link's contribution to row i; the horizontal stack then runs one position at a
time. Over an image that is still one forward pass of arithmetic.
"""
import numpy as np

from . import fused
from .backend import array_module, get_xp, to_numpy
from .conv import MaskedConv2d
from .layers import Dropout, Layer, ReLU, check_array
from .masks import group_slices


class ShiftDown(Layer):
    """y[:, i] = x[:, i - 1], y[:, 0] = 0: each row gets the row above it.

    backward: dx[:, i] = dy[:, i + 1], dx[:, H - 1] = 0 (the last row went nowhere).
    """

    def forward(self, x):
        y = array_module(x).zeros_like(x)
        y[:, 1:] = x[:, :-1]
        return y

    def backward(self, dy):
        dx = array_module(dy).zeros_like(dy)
        dx[:, :-1] = dy[:, 1:]
        return dx


class Gate(Layer):
    """The gated unit: y[..., k] = tanh(x[..., 2k]) * sigmoid(x[..., 2k + 1]).

    x: (..., 2h) -> y: (..., h). With a = x[..., 0::2], b = x[..., 1::2],
    t = tanh(a), s = sigmoid(b):  da = dy * s * (1 - t^2),  db = dy * t * s * (1 - s).
    """

    CACHE = ("t", "s")

    def __init__(self):
        super().__init__()
        self.t = self.s = None  # kept by forward for backward: tanh(a), sigmoid(b)
        self.at = None  # forward_at's two buffers

    @staticmethod
    def _halves(x, out=(None, None)):
        """tanh(a) and sigmoid(b); sigmoid(b) = (1 + tanh(b / 2)) / 2 never overflows."""
        xp = array_module(x)
        t = xp.tanh(x[..., 0::2], out=out[0])
        s = xp.multiply(x[..., 1::2], 0.5, out=out[1])
        xp.tanh(s, out=s)
        s += 1
        s *= 0.5
        return t, s

    @staticmethod
    def apply(x, out=(None, None)):
        """The gate without keeping anything for backward (the sampler's rows and
        positions); ``out``: two buffers of the output's shape to compute in
        (the result is the first), or new arrays."""
        t, s = Gate._halves(x, out)
        t *= s
        return t

    def forward(self, x):
        if x.shape[-1] % 2:
            raise ValueError(f"Gate: expected an even number of channels (pairs a, b), got shape {tuple(x.shape)}")
        if not self.caching:
            return self.apply(x)
        self.t, self.s = self._halves(x)
        return self.t * self.s

    def backward(self, dy):
        t, s = self.t, self.s
        dx = array_module(dy).empty(dy.shape[:-1] + (2 * dy.shape[-1],), dtype=dy.dtype)
        dx[..., 0::2] = dy * s * (1 - t * t)
        dx[..., 1::2] = dy * t * s * (1 - s)
        return dx

    def start_at(self, n, height, width):
        self.at = None

    def forward_at(self, x, i, j, g):
        """In the layer's own two buffers, made at the first call (the graph sampler allocates nothing later)."""
        shape = x.shape[:-1] + (x.shape[-1] // 2,)
        if self.at is None or self.at[0].shape != shape:
            self.at = tuple(array_module(x).empty(shape, dtype=x.dtype) for _ in range(2))
        return self.apply(x, self.at)


class ClassBias(Layer):
    """Adds a learned bias per class: y = x + (onehot(classes) @ V)[:, None, None, :].

    V: (classes, channels). ``condition(classes)`` sets the classes of the
    batch, (B,) ints, before forward (the model does it). backward: dx = dy,
    dV = onehot^T @ (dy summed over positions).
    """

    def __init__(self, classes, channels, dtype=np.float32, xp=np):
        super().__init__()
        self.params = {"V": xp.zeros((classes, channels), dtype=dtype)}
        self.grads = {"V": xp.zeros_like(self.params["V"])}
        self.onehot = None  # (B, classes), set by condition()
        self.b_at = None  # start_at: each image's bias, (B, channels), for forward_at

    def condition(self, onehot):
        self.onehot = onehot

    def bias(self):
        """(B, channels): each image's bias."""
        return self.onehot @ self.params["V"]

    def start_at(self, n, height, width):
        self.b_at = self.bias()  # the classes and V stay fixed while sampling

    def forward(self, x):
        b = self.bias()
        return x + b.reshape((b.shape[0],) + (1,) * (x.ndim - 2) + (b.shape[1],))

    def backward(self, dy):
        per_image = dy.reshape(dy.shape[0], -1, dy.shape[-1]).sum(axis=1)  # (B, channels)
        self.grads["V"][...] = self.onehot.T @ per_image
        return dy


class GatedLayer(Layer):
    """One layer of both stacks (module docstring). ``forward((v, h))`` returns
    ``(v', h', out)``; ``backward((dv', dh', dout))`` returns ``(dv, dh)``.

    in_channels: C (the image) for the first layer, else ``channels``
    channels:    h, the width of both stacks
    """

    def __init__(self, in_channels, channels, kernel, first, colors=1, classes=0, rng=None, dtype=np.float32,
                 xp=np):
        super().__init__()
        self.first, self.channels = first, channels
        conv = dict(rng=rng, dtype=dtype, xp=xp)
        # The vertical stack and the link carry only rows above: no colour masks.
        self.conv_v = MaskedConv2d(in_channels, 2 * channels, kernel, "V", input_grad=not first, **conv)
        self.conv_h = MaskedConv2d(in_channels, 2 * channels, kernel, "HA" if first else "HB", colors=colors,
                                   input_grad=not first, **conv)
        self.link = MaskedConv2d(2 * channels, 2 * channels, 1, "B", **conv)
        self.conv_out = MaskedConv2d(channels, channels, 1, "B", colors=colors, **conv)
        self.shift, self.gate_v, self.gate_h, self.drop = ShiftDown(), Gate(), Gate(), Dropout()
        self.bias_v = ClassBias(classes, 2 * channels, dtype, xp) if classes else None
        self.bias_h = ClassBias(classes, 2 * channels, dtype, xp) if classes else None
        self.groups = group_slices(channels, colors)
        # forward_at: the h input map (the image canvas for the first layer), the
        # link's contribution to the current row, and the output vectors.
        self.canvas_h = self.link_row = self.h_at = None

    def children(self):
        named = {"conv_v": self.conv_v, "conv_h": self.conv_h, "shift": self.shift, "link": self.link,
                 "gate_v": self.gate_v, "gate_h": self.gate_h, "drop": self.drop, "conv_out": self.conv_out}
        if self.bias_v is not None:
            named.update(bias_v=self.bias_v, bias_h=self.bias_h)
        return named

    def forward(self, vh):
        v, h = vh
        v_pre = self.conv_v.forward(v)
        if self.bias_v is not None:
            v_pre = self.bias_v.forward(v_pre)
        h_pre = self.conv_h.forward(h)
        h_pre += self.link.forward(self.shift.forward(v_pre))
        if self.bias_h is not None:
            h_pre = self.bias_h.forward(h_pre)
        v_next = self.gate_v.forward(v_pre)
        out = self.conv_out.forward(self.drop.forward(self.gate_h.forward(h_pre)))
        h_next = out if self.first else h + out
        return v_next, h_next, out

    def backward(self, d):
        dv_next, dh_next, dout = d
        # out feeds h' (h' = h + out) and the skip sum: its gradient is the sum.
        d_out = dout if dh_next is None else dout + dh_next
        dh_pre = self.gate_h.backward(self.drop.backward(self.conv_out.backward(d_out)))
        if self.bias_h is not None:
            dh_pre = self.bias_h.backward(dh_pre)
        # v_pre feeds v' (through its gate) and the link (through the shift).
        dv_pre = self.shift.backward(self.link.backward(dh_pre))
        if dv_next is not None:
            dv_pre += self.gate_v.backward(dv_next)
        if self.bias_v is not None:
            dv_pre = self.bias_v.backward(dv_pre)
        dv = self.conv_v.backward(dv_pre)
        dh = self.conv_h.backward(dh_pre)
        if not self.first and dh_next is not None:
            dh += dh_next  # the residual: h' = h + out
        return dv, dh

    def start_at(self, n, height, width):
        super().start_at(n, height, width)
        xp = self.conv_out.xp
        self.canvas_h = None if self.first else self.conv_h.canvas(n, height, width)
        self.link_row = xp.zeros((n, width, 2 * self.channels), dtype=self.conv_out.dtype)
        self.h_at = xp.zeros((n, self.channels), dtype=self.conv_out.dtype)
        self.h_pre_at = xp.zeros((n, 2 * self.channels), dtype=self.conv_out.dtype)
        # vertical_row's gate: two buffers (n, W, h), for the next layer's v input
        self.v_gate = tuple(xp.zeros((n, width, self.channels), dtype=self.conv_out.dtype) for _ in range(2))

    def vertical_row(self, canvas_v, i, canvas_next):
        """The vertical stack at row i (final: the sampler has finished it), every
        column: writes v' into ``canvas_next`` (the next layer's v input, or None)
        and keeps the link's contribution to row i + 1 in ``link_row``."""
        v_pre = self.conv_v.forward_row(canvas_v, i)  # (n, W, 2h)
        if self.bias_v is not None:
            v_pre += self.bias_v.b_at[:, None, :]
        if canvas_next is not None:
            canvas_next.write_row(i, Gate.apply(v_pre, self.v_gate))
        n, W, C2 = v_pre.shape
        link = self.link.steps[0]  # one colour group: the whole 1x1 weight matrix and bias
        fused.dense(v_pre.reshape(n * W, C2), link["W"], link["b"], self.link_row.reshape(n * W, C2))

    def forward_at(self, h, i, j, g):
        """h: the h input at (i, j), a vector (n, h), or the image ``Canvas`` for the
        first layer -> ``(h', out)`` vectors at (i, j), group g fresh."""
        if self.first:
            canvas = h
        else:
            canvas = self.canvas_h
            canvas.write(i, j, h)  # conv_h reads it again at the next positions of this row
        h_pre = self.conv_out.xp.add(self.conv_h.forward_at(canvas, i, j, g), self.link_row[:, j], out=self.h_pre_at)
        if self.bias_h is not None:
            h_pre += self.bias_h.b_at
        gated = self.drop.forward_at(self.gate_h.forward_at(h_pre, i, j, g), i, j, g)  # dropout: the identity here
        out = self.conv_out.forward_at(gated, i, j, g)
        group = self.groups[g]
        if self.first:
            self.h_at[:, group] = out[:, group]
        else:
            self.conv_out.xp.add(h[:, group], out[:, group], out=self.h_at[:, group])
        return self.h_at, out


class GatedPixelCNN(Layer):
    """The Gated PixelCNN: ``forward(x, classes=None) -> logits``, ``backward(dlogits)``.

    config: a ``model.PixelCNNConfig`` with ``arch="gated"``: ``filters`` is h,
            ``blocks`` the number of gated layers after the first, ``input_kernel``
            the first layer's kernel (later layers: 3), ``classes`` > 0 to condition
    """

    def __init__(self, config, seed=0, dtype="float32", device="cpu"):
        super().__init__()
        self.config = config.validate()
        self.dtype = np.dtype(dtype)
        self.device, self.xp = device, get_xp(device)
        cfg, C, h = config, config.channels, config.filters
        rng = np.random.default_rng(seed)
        layer = dict(colors=C, classes=cfg.classes, rng=rng, dtype=self.dtype, xp=self.xp)
        self.stack = [GatedLayer(C, h, cfg.input_kernel, first=True, **layer)]
        self.stack += [GatedLayer(h, h, 3, first=False, **layer) for _ in range(cfg.blocks)]
        self.relu = ReLU(inplace=True)  # the skip sum is needed by nobody else
        self.head = MaskedConv2d(h, h, 1, "B", colors=C, relu=True, rng=rng, dtype=self.dtype, xp=self.xp)
        self.conv_out = MaskedConv2d(h, C * cfg.levels, 1, "B", colors=C, rng=rng, dtype=self.dtype, xp=self.xp)
        self.pack_parameters()
        self.canvas_v = self.skip_at = None  # forward_at: each later layer's v input map; the skip sum

    @property
    def input_grad(self):
        """Whether ``backward`` returns the gradient of the input images (off for training)."""
        return self.stack[0].conv_v.input_grad

    @input_grad.setter
    def input_grad(self, value):
        first = self.stack[0]  # reads the image with both stacks
        first.conv_v.input_grad = first.conv_h.input_grad = value

    def children(self):
        named = {f"stack.{i}": layer for i, layer in enumerate(self.stack)}
        named.update(relu=self.relu, head=self.head, conv_out=self.conv_out)
        return named

    def condition(self, classes):
        """Set the class of every image, (B,) ints (None: unconditional model)."""
        cfg = self.config
        if not cfg.classes:
            if classes is not None:
                raise ValueError("classes: this model is not class-conditional (trained without --conditional)")
            return
        if classes is None:
            raise ValueError(f"classes: this model is class-conditional; give each image a class 0..{cfg.classes - 1}")
        host = to_numpy(classes) if hasattr(classes, "shape") else np.asarray(classes)
        if host.ndim != 1 or host.size and (host.min() < 0 or host.max() >= cfg.classes):
            raise ValueError(f"classes: expected (B,) ints in 0..{cfg.classes - 1}, got {host!r}")
        onehot = self.xp.asarray(np.eye(cfg.classes, dtype=self.dtype)[host])
        for layer in self.stack:
            layer.bias_v.condition(onehot)
            layer.bias_h.condition(onehot)

    def forward(self, x, classes=None):
        """x: (B, H, W, C) in [0, 1]; classes: (B,) ints for a conditional model -> logits (B, H, W, C, levels)."""
        check_array(x, "GatedPixelCNN input", 4, self.config.channels, self.dtype, self.xp)
        self.condition(classes)
        B, H, W, C = x.shape
        v, h, skip = x, x, None
        for layer in self.stack:
            v, h, out = layer.forward((v, h))
            skip = out.copy() if skip is None else skip + out
        s = self.head.forward(self.relu.forward(skip))
        return self.conv_out.forward(s).reshape(B, H, W, C, self.config.levels)

    def backward(self, dlogits):
        B, H, W, C, L = dlogits.shape
        ds = self.head.backward(self.conv_out.backward(dlogits.reshape(B, H, W, C * L)))
        dskip = self.relu.backward(ds)
        dv = dh = None  # the last layer's v' and h' go nowhere
        for layer in reversed(self.stack):
            dv, dh = layer.backward((dv, dh, dskip))
        if dv is None:
            return None
        return dv + dh  # the first layer reads the image with both stacks

    def canvas(self, n, height=None, width=None):
        cfg = self.config
        return self.stack[0].conv_h.canvas(n, height or cfg.height, width or cfg.width)

    def start_at(self, n, height, width):
        super().start_at(n, height, width)
        # The v input of each later layer, a map filled a row at a time.
        self.canvas_v = [layer.conv_v.canvas(n, height, width) for layer in self.stack[1:]] + [None]
        self.skip_at = self.xp.zeros((n, self.config.filters), dtype=self.dtype)

    def forward_at(self, canvas, i, j, g):
        """The logits of sub-pixel (i, j, g), (n, levels); see ``PixelCNN.forward_at``."""
        if j == 0 and g == 0:  # a new row: the vertical stack of the row above is final
            v = canvas
            for layer, v_next in zip(self.stack, self.canvas_v):
                if i == 0:  # nothing above the first row: the shift brings in zeros
                    layer.link_row[...] = layer.link.params["b"]
                else:
                    layer.vertical_row(v, i - 1, v_next)
                v = v_next
        h = canvas
        group = self.stack[0].groups[g]
        for k, layer in enumerate(self.stack):
            h, out = layer.forward_at(h, i, j, g)
            if k == 0:
                self.skip_at[:, group] = out[:, group]
            else:
                self.xp.add(self.skip_at[:, group], out[:, group], out=self.skip_at[:, group])
        s = self.head.forward_at(self.relu.forward_at(self.skip_at, i, j, g), i, j, g)
        L = self.config.levels
        return self.conv_out.forward_at(s, i, j, g)[:, g * L : (g + 1) * L]

