"""The PixelCNN (van den Oord et al., 2016), assembled from ``layers``.

    x (B, H, W, C), values in [0, 1]
    -> conv_in: 7x7 mask A, C -> h             (sees only earlier sub-pixels)
    -> N residual blocks, h -> h               (mask B: keeps that promise)
    -> ReLU -> head1: 1x1 mask B, h -> h
    -> ReLU -> head2: 1x1 mask B, h -> h
    -> ReLU -> conv_out: 1x1 mask B, h -> C * levels
    -> logits (B, H, W, C, levels)

``logits[b, i, j, c]`` are the scores of the ``levels`` values of sub-pixel
``(i, j, c)`` and depend only on the sub-pixels before it (rows above, pixels
to the left, earlier colours of the same pixel). With colour (C = 3) every
layer's channels are split into R, G, B groups (see ``masks``); conv_out's
``C * levels`` channels are ordered colour-major, so group c holds the logits
of colour c and the reshape to (..., C, levels) needs no transpose.
"""
import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from . import options
from .backend import get_xp
from .conv import MaskedConv2d
from .layers import Layer, ReLU, check_array


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
        self.canvas2 = None  # forward_at: conv2's input map

    def children(self):
        return {"relu1": self.relu1, "conv1": self.conv1, "conv2": self.conv2, "conv3": self.conv3}

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

    def start_at(self, n, height, width):
        super().start_at(n, height, width)
        self.canvas2 = self.conv2.canvas(n, height, width)

    def forward_at(self, x, i, j, g):
        """x: (n, h) at (i, j) -> the block's output vector there (group g fresh).

        ``forward`` line by line, in three layer calls (three GPU launches): conv1
        applies relu1 as it reads x and writes straight into conv2's input map
        (the 3x3 conv reads this position again from the rows below); conv3 adds x,
        in its own output vector, which is the block's.
        """
        self.conv1.forward_at(x, i, j, g, relu_in=True, out=self.canvas2.at(i, j))
        h = self.conv2.forward_at(self.canvas2, i, j, g)
        return self.conv3.forward_at(h, i, j, g, residual=x)

    def forward_many(self, x, at, g):
        """``forward_at`` at the ``Positions`` at: x (n, P, h) -> (n, P, h)."""
        h = self.conv1.forward_many(x, at, g, relu_in=True)
        # Into conv2's map: at these positions conv2 reads groups <= g only, and the
        # later groups, not yet computed, are written again at their own steps.
        self.canvas2.write_many(at, h)
        h = self.conv2.forward_many(self.canvas2, at, g)
        return self.conv3.forward_many(h, at, g, residual=x)


ARCHS = ("pixelcnn", "gated")


@dataclass
class PixelCNNConfig:
    """Everything that fixes a model's shape (saved in every checkpoint)."""

    height: int = 28  # image size the model is trained on (and samples at)
    width: int = 28
    channels: int = 1  # colours per pixel: 1 grey, 3 RGB
    levels: int = 2  # values per sub-pixel: 2 binary ... 256 8-bit
    filters: int = 64  # h, the width of the residual stream
    blocks: int = 5  # residual blocks
    block: str = "half"  # residual block widths: "half" (paper) or "keras" (keras.io example)
    input_kernel: int = 7  # kernel of the mask-A input convolution
    arch: str = "pixelcnn"  # "pixelcnn" (this file) or "gated" (gated.GatedPixelCNN)
    classes: int = 0  # gated only: number of classes to condition on (0: unconditional)

    # field: its range in options.RANGES (the same bounds as the command line's options)
    RANGES = {"height": "size", "width": "size", "levels": "levels", "filters": "filters", "blocks": "blocks",
              "input_kernel": "kernel", "classes": "class"}

    def validate(self):
        for name, kind in self.RANGES.items():
            options.check(kind, getattr(self, name), f"config.{name}")
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"config.channels: expected 1 (grey) or 3 (RGB), got {self.channels!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"config.arch: expected one of {ARCHS}, got {self.arch!r}")
        if self.classes and self.arch != "gated":
            raise ValueError("config.classes: class conditioning needs the gated architecture (arch='gated')")
        if self.arch == "gated" and self.channels == 3 and self.filters % 3:
            raise ValueError(f"config.filters: the gated model with colour needs a multiple of 3 (one third per "
                             f"colour group, both halves of every gate in it), got {self.filters}")
        if self.block not in ResidualBlock.WIDTHS:
            raise ValueError(f"config.block: expected one of {ResidualBlock.WIDTHS}, got {self.block!r}")
        if self.filters < 2 * self.channels:
            raise ValueError(
                f"config.filters: expected at least {2 * self.channels} (the blocks halve it and every "
                f"colour group needs a channel), got {self.filters}"
            )
        return self

    def to_json(self):
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model config: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data).validate()


class PixelCNN(Layer):
    """The model. ``forward(x) -> logits``, ``backward(dlogits)`` fills the gradients.

    config: a PixelCNNConfig
    seed:   seeds the weight initialisation (NumPy's generator, on the host, so the
            same seed gives the same weights on the CPU and on the GPU)
    dtype:  "float32" for training, "float64" for gradient checks
    device: "cpu" (NumPy) or "gpu" (CuPy)
    """

    def __init__(self, config=None, seed=0, dtype="float32", device="cpu"):
        super().__init__()
        self.config = (config or PixelCNNConfig()).validate()
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"dtype: expected a float dtype, got {dtype}")
        self.device = device
        self.xp = xp = get_xp(device)
        cfg = self.config
        rng = np.random.default_rng(seed)
        C, h = cfg.channels, cfg.filters
        conv = dict(colors=C, rng=rng, dtype=self.dtype, xp=xp)
        # The input is the data: no gradient to pass back to it, unless someone
        # asks (``model.input_grad = True``, as ``viz.receptive_field`` does).
        self.conv_in = MaskedConv2d(C, h, cfg.input_kernel, "A", input_grad=False, **conv)
        self.blocks = [ResidualBlock(h, cfg.block, **conv) for _ in range(cfg.blocks)]
        # The stream after the last block is needed by nobody else: ReLU in
        # place. The next two ReLUs are fused into head1 and head2.
        self.relu_a = ReLU(inplace=True)
        self.head1 = MaskedConv2d(h, h, 1, "B", relu=True, **conv)
        self.head2 = MaskedConv2d(h, h, 1, "B", relu=True, **conv)
        self.conv_out = MaskedConv2d(h, C * cfg.levels, 1, "B", **conv)
        self.pack_parameters()  # one flat array of parameters, one of gradients: see Adam(flat=)

    def children(self):
        named = {"conv_in": self.conv_in}
        named.update({f"blocks.{i}": block for i, block in enumerate(self.blocks)})
        named.update(relu_a=self.relu_a, head1=self.head1, head2=self.head2, conv_out=self.conv_out)
        return named

    @property
    def input_grad(self):
        """Whether ``backward`` returns the gradient of the input images (off for training)."""
        return self.conv_in.input_grad

    @input_grad.setter
    def input_grad(self, value):
        self.conv_in.input_grad = value

    def condition(self, classes):
        """Class conditioning is the gated model's (``gated.GatedPixelCNN``): this one takes no classes."""
        if classes is not None:
            raise ValueError("classes: this model is not class-conditional (only --arch gated can be)")

    def forward(self, x, classes=None):
        """x: (B, H, W, C) in [0, 1] (see ``data.labels_to_inputs``) -> logits (B, H, W, C, levels)."""
        check_array(x, "PixelCNN input", 4, self.config.channels, self.dtype, self.xp)
        self.condition(classes)
        B, H, W, C = x.shape
        h = self.conv_in.forward(x)
        for block in self.blocks:
            h = block.forward(h)
        h = self.relu_a.forward(h)
        h = self.head1.forward(h)  # conv, then ReLU
        h = self.head2.forward(h)  # conv, then ReLU
        out = self.conv_out.forward(h)
        return out.reshape(B, H, W, C, self.config.levels)

    def backward(self, dlogits):
        """dlogits: (B, H, W, C, levels). Fills ``gradients()``.

        Returns the gradient with respect to the input x if ``input_grad``
        is set (used to draw receptive fields), else None (training needs no dx of the data).
        """
        B, H, W, C, L = dlogits.shape
        dh = self.conv_out.backward(dlogits.reshape(B, H, W, C * L))
        dh = self.head2.backward(dh)  # through its ReLU, then the conv
        dh = self.head1.backward(dh)
        dh = self.relu_a.backward(dh)
        for block in reversed(self.blocks):
            dh = block.backward(dh)
        return self.conv_in.backward(dh)

    def canvas(self, n, height=None, width=None):
        """A zero ``canvas.Canvas`` of the model's input, (n, H, W, C), for ``forward_at``:
        the sampler writes each sub-pixel it draws into it."""
        cfg = self.config
        return self.conv_in.canvas(n, height or cfg.height, width or cfg.width)

    def forward_at(self, canvas, i, j, g):
        """The logits of sub-pixel (i, j, g), (n, levels): ``forward`` at one position.

        canvas: the input images (``canvas()``), final at every sub-pixel before
        (i, j, g). Call ``start_at(n, H, W)`` first, then visit the sub-pixels
        in order (rows, columns, colours): each layer keeps what later
        positions will read. The mirror of ``forward``, line by line.
        """
        h = self.conv_in.forward_at(canvas, i, j, g)
        for block in self.blocks:
            h = block.forward_at(h, i, j, g)
        h = self.head1.forward_at(h, i, j, g, relu_in=True)  # relu_a as it reads h, the conv, then its ReLU
        h = self.head2.forward_at(h, i, j, g)  # conv, then ReLU
        out = self.conv_out.forward_at(h, i, j, g)  # (n, C * levels), colour-major
        L = self.config.levels
        return out[:, g * L : (g + 1) * L]

    def forward_many(self, canvas, at, g):
        """The logits of sub-pixel g at the ``canvas.Positions`` at, (n, P, levels):
        ``forward_at`` at P positions at once (the wavefront sampler's step).

        ``canvas`` and every layer's map must be final wherever these positions
        look (``sampling``'s wavefront order sees to it).
        """
        h = self.conv_in.forward_many(canvas, at, g)
        for block in self.blocks:
            h = block.forward_many(h, at, g)
        h = self.head1.forward_many(h, at, g, relu_in=True)
        h = self.head2.forward_many(h, at, g)
        out = self.conv_out.forward_many(h, at, g)
        L = self.config.levels
        return out[:, :, g * L : (g + 1) * L]


def build_model(config, seed=0, dtype="float32", device="cpu"):
    """The model ``config.arch`` names: a PixelCNN or a GatedPixelCNN."""
    if config.arch == "gated":
        from .gated import GatedPixelCNN

        return GatedPixelCNN(config, seed=seed, dtype=dtype, device=device)
    return PixelCNN(config, seed=seed, dtype=dtype, device=device)
