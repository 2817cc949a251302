"""Layers with hand-written backward passes: MaskedConv2d, ReLU, Dropout, ResidualBlock.

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
  computed at one position only, for the sampler (below).

Composite layers call their children forward in order and backward in
reverse order, so the chain rule is written out line by line.

Images are ``(B, H, W, C)`` arrays: batch, rows, columns, channels.

The one-position forward
------------------------
A sampler fills an image one sub-pixel at a time: position ``(i, j)`` in
raster order, and within it colour step ``g`` = 0 (R), 1 (G), 2 (B) (just
``g = 0`` for grey). Every layer is causal, so when the sampler reaches
``(i, j, g)`` every layer's output at earlier positions is already final, and
the next logits need each layer's output at ``(i, j)`` only: about one forward
pass of arithmetic for a whole image instead of one per sub-pixel. With
colour, the masks make output group ``g`` depend on input groups ``<= g``
only, so step ``g`` computes group ``g`` of every layer and the three steps
together still cost one pass.

``forward_at(x, i, j, g)`` returns the layer's output at ``(i, j)`` as an
``(n, C_out)`` vector in which group ``g`` is fresh and the earlier groups are
those of the earlier steps at this position (the vector is the layer's own
buffer; later groups hold stale values that no mask lets anyone read). Its
input ``x`` is the input vector at ``(i, j)``, except for a ``k x k``
convolution, which reads a window of earlier positions: its input is a
``Canvas``, the input map kept by whoever produces it (the sampler for the
image, a residual block for its 3x3 convolution).

``forward_many(x, at, g)`` is the same at P positions at once, for the
wavefront sampler (``sampling``), which runs several rows side by side: the
output at the ``Positions`` ``at`` ((rows[p], cols[p]) for every p), an
``(n, P, C_out)`` array, from the input vectors there ((n, P, C_in)) or, for a
``k x k`` convolution, the ``Canvas``, which must be final wherever those
outputs look. A ``k x k`` layer gathers all its live taps at once there
(``forward_at`` splits them into the rows above, computed once per row, and
the current row), with flat indices that ``at`` makes once and keeps.
"""
import contextlib
import math

import numpy as np

from . import fused
from .backend import array_module, chunk_rows
from .im2col import col2im, im2col, scratch
from .masks import conv_mask, group_slices, live_taps


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


class Canvas:
    """An input map that a ``k x k`` convolution reads one window of at a time.

    ``data``: (n, H + k//2, W + 2*(k//2), C), the map with k//2 rows of zeros on
    top and k//2 columns of zeros on each side (none below: no live tap looks
    down), so the taps around any position are plain slices.
    """

    def __init__(self, n, height, width, channels, kernel, dtype, xp):
        self.pad = kernel // 2
        self.data = xp.zeros((n, height + self.pad, width + 2 * self.pad, channels), dtype=dtype)
        self.flat = self.data.reshape(n, -1, channels)  # a view: the positions in one axis, row after row

    def write(self, i, j, value, channels=slice(None)):
        """Set the map at position (i, j): ``value`` (n, len(channels))."""
        self.data[:, i + self.pad, j + self.pad, channels] = value

    def at(self, i, j):
        """The map at position (i, j), (n, C): a view, to write into."""
        return self.data[:, i + self.pad, j + self.pad]

    def write_row(self, i, value):
        """Set the whole row i: ``value`` (n, W, C)."""
        p = self.pad
        self.data[:, i + p, p : self.data.shape[2] - p] = value

    def write_many(self, at, value, channels=slice(None)):
        """Set the map at the ``Positions`` at: ``value`` (n, P, len(channels))."""
        pad, width = self.pad, self.data.shape[2]
        where = at.index(("canvas", pad, width), lambda rows, cols: (rows + pad) * width + cols + pad)
        self.flat[:, where, channels] = value

    def image(self):
        """The map without its padding: (n, H, W, C)."""
        p = self.pad
        return self.data[:, p:, p : self.data.shape[2] - p]


class Positions:
    """P positions (rows[p], cols[p]) that ``forward_many`` computes at once.

    rows, cols: (P,) int arrays on the layers' device. The layers and canvases
    ask it for the flat indices they gather and write with (``index``); each is
    made once and kept. ``at[a:b]`` is positions a .. b-1, whose indices are
    slices of ``at``'s: the wavefront sampler lays out all H * W positions step
    after step, so each index is made once for the whole image, not per step.
    """

    def __init__(self, rows, cols, whole=None, span=None):
        self.rows, self.cols = rows, cols
        self.whole, self.span, self.made = whole, span, {}

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, span):
        return Positions(self.rows[span], self.cols[span], self, span)

    def index(self, key, make):
        """``make(rows, cols)``: an array with one row per position, made once per ``key``."""
        if self.whole is not None:
            return self.whole.index(key, make)[self.span]
        made = self.made.get(key)
        if made is None:
            made = self.made[key] = make(self.rows, self.cols)
        return made


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


class MaskedConv2d(Layer):
    """A masked convolution: stride 1, "same" output size, with bias, and
    optionally a ReLU on its output.

    Parameters:
        W: (kernel, kernel, in_channels, out_channels); ``W[ky, kx, c, o]``
           weights input channel ``c`` at the position ``(ky - k//2, kx - k//2)``
           away from output channel ``o``'s position. Entries the mask
           zeroes are kept at zero (initialised to 0, gradient always 0).
        b: (out_channels,)

    forward: x (B, H, W, in_channels) -> y (B, H, W, out_channels)
        y[b, i, j, o] = b[o] + sum over live taps (ky, kx) and channels c of
                        x[b, i + ky - k//2, j + kx - k//2, c] * (W * mask)[ky, kx, c, o]
        and with ``relu=True``, y = max(y, 0).

    This is ``conv_reference.conv2d_reference`` (plus the ReLU): the same
    computation, in cache-sized chunks. Work is done a few images at a time
    (``backend.chunk_rows``): the im2col matrix of a chunk, the bias, the ReLU
    and their gradients all stay in the CPU's cache between the steps that
    touch them, instead of each step streaming a 100 MB array through memory.
    (On the GPU the whole batch is one chunk.) The ReLU is fused here for the
    same reason: applied to a chunk that was just computed, it costs almost
    nothing.
    """

    CACHE = ("x", "y", "Wm")

    def __init__(self, in_channels, out_channels, kernel, mask_type="B", colors=1, rng=None,
                 dtype=np.float32, xp=np, relu=False, input_grad=True):
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
        self.input_grad = input_grad
        self.dtype, self.xp = np.dtype(dtype), xp
        kys, kxs = (np.array(a) for a in zip(*self.taps))
        self._tap_index = (xp.asarray(kys), xp.asarray(kxs))
        # The mask restricted to the live taps, as a (T*in, out) matrix. It is
        # all ones except at a colour-masked centre tap; then it is applied to
        # the weight matrix in forward and to its gradient in backward.
        live = mask[kys, kxs].reshape(len(self.taps) * in_channels, out_channels)
        self.live_mask = None if live.all() else xp.asarray(live, dtype=dtype)
        self.mask = xp.asarray(mask, dtype=dtype)

        # He initialisation over the inputs an output really sees.
        rng = np.random.default_rng(0) if rng is None else rng
        fan_in = live.sum() / out_channels
        W = rng.standard_normal(mask.shape) * math.sqrt(2.0 / fan_in) * mask
        self.params = {"W": xp.asarray(W, dtype=dtype), "b": xp.zeros(out_channels, dtype=dtype)}
        self.grads = {name: xp.zeros_like(p) for name, p in self.params.items()}
        # Kept by forward for backward: the input (the im2col matrix is rebuilt
        # from it rather than cached: it is T times larger), with the ReLU the
        # output (its gradient passes where y > 0), and the weight matrix.
        self.x = self.y = self.Wm = None
        # Kept by start_at for forward_at: per colour step, the weights it needs; the output vector;
        # a k x k layer's weights of the taps above the current row, and that row's part from them.
        self.steps = self.y_at = self.W_at = self.W_above = self.taps_above = self.row_at = None
        # Kept by start_at for forward_many: a k x k layer's tap offsets; and forward_many's output.
        self.tap_rows = self.tap_cols = self.y_many = None

    def weight_matrix(self):
        """The live taps of ``W * mask`` as a ``(T * in_channels, out_channels)`` matrix
        (for a 1x1 layer, a view of W itself when no colour mask applies)."""
        W = self.params["W"]
        if self.kernel == 1:
            Wm = W.reshape(self.in_channels, self.out_channels)  # the one tap: no gather
        else:
            Wm = W[self._tap_index].reshape(-1, self.out_channels)
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
        if self.caching:
            self.x, self.y, self.Wm = x, (y if self.relu else None), Wm
        return y

    def backward(self, dy):
        """dy: (B, H, W, out_channels) -> dx: (B, H, W, in_channels), or None if not ``input_grad``."""
        x, xp = self.x, self.xp
        if x is None:
            raise RuntimeError("MaskedConv2d.backward: no forward to go back through (none yet, or it ran "
                               "inside inference(), which keeps nothing for backward)")
        check_array(dy, "MaskedConv2d output gradient", 4, self.out_channels, self.dtype, xp)
        if dy.shape[:3] != x.shape[:3]:
            raise ValueError(f"MaskedConv2d: output gradient shape {dy.shape} does not match input shape {x.shape}")
        Wm = self.Wm  # forward's weight matrix: the parameters have not changed since
        # A 1x1 layer's dWm is its dW (a view); a k x k layer's goes to the live taps of dW below.
        dWm = self.grads["W"].reshape(self.in_channels, self.out_channels) if self.kernel == 1 else None
        db, first = self.grads["b"], True
        dx = xp.empty_like(x) if self.input_grad else None
        for chunk in self._chunks(x):
            d = dy[chunk].reshape(-1, self.out_channels)
            if self.relu:
                # Through the ReLU first: its gradient passes where y > 0.
                mask = self.y[chunk].reshape(d.shape) > 0
                d = xp.multiply(d, mask, out=scratch("dy", d.shape, self.dtype, xp))
            # y = cols @ Wm + b, so dWm = cols^T d and db = column sums of d,
            # summed over the chunks.
            if first:
                dWm = xp.matmul(self._cols(x[chunk]).T, d, out=dWm)
                d.sum(axis=0, out=db)
                first = False
            else:
                dWm += self._cols(x[chunk]).T @ d
                db += d.sum(axis=0)
            if dx is None:
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
        # The live taps' gradients; the masked taps' entries of dW were zero from
        # the start and nothing ever writes them, so they stay exactly zero.
        if self.kernel > 1:
            self.grads["W"][self._tap_index] = dWm.reshape(len(self.taps), self.in_channels, self.out_channels)
        return dx

    def canvas(self, n, height, width):
        """A zero ``Canvas`` of this layer's input, for a k x k layer's ``forward_at``."""
        return Canvas(n, height, width, self.in_channels, self.kernel, self.dtype, self.xp)

    def start_at(self, n, height, width):
        """Cut out, once, the weights each colour step needs (see ``forward_at``)."""
        xp = self.xp
        Wm = self.weight_matrix()
        groups_in = group_slices(self.in_channels, self.colors)
        half, C = self.kernel // 2, self.in_channels
        if self.kernel > 1:
            # A k x k layer's taps split in two: those in the rows above, which
            # forward_at computes once per row for every column (``above``), and
            # those in the current row, at columns j - k//2 .. j, which it reads
            # at each position as one contiguous slice of the canvas. The
            # current-row matrix has a row for each of those k//2 + 1 columns,
            # zero where the mask is (the live taps among them are its nonzero rows).
            above = [t for t, (ky, _) in enumerate(self.taps) if ky < half]
            self.taps_above = [self.taps[t] for t in above]
            self.W_above = xp.concatenate([Wm[t * C : (t + 1) * C] for t in above]) if above else None
            # (Mask V also looks right in the current row: that layer runs a row
            # at a time only, ``forward_row``, and gets no current-row matrix.)
            W_row = xp.zeros(((half + 1) * C, self.out_channels), dtype=self.dtype)
            for t, (ky, kx) in enumerate(self.taps):
                if ky == half and kx <= half:
                    W_row[kx * C : (kx + 1) * C] = Wm[t * C : (t + 1) * C]
        self.steps = []
        for g, out in enumerate(group_slices(self.out_channels, self.colors)):
            step = {"out": out, "b": self.params["b"][out].copy()}
            if self.kernel == 1:
                # The input channels output group g may read are a prefix:
                # groups < g (mask A) or <= g (mask B); the rest have zero weight.
                end = groups_in[g].start if self.mask_type == "A" else groups_in[g].stop
                step.update(end=end, W=xp.ascontiguousarray(Wm[:end, out]))
            else:
                # forward_many: every live tap at once (the colour mask's zeros included)
                step.update(W=xp.ascontiguousarray(W_row[:, out]), W_all=xp.ascontiguousarray(Wm[:, out]))
            self.steps.append(step)
        if self.kernel > 1:  # forward_many: each live tap's offset in the padded map
            self.tap_rows = xp.asarray([ky for ky, _ in self.taps])
            self.tap_cols = xp.asarray([kx for _, kx in self.taps])
            self.tap_key = ("taps", tuple(self.taps))  # layers with the same taps share their gather index
        self.y_at = xp.zeros((n, self.out_channels), dtype=self.dtype)
        self.row_at = None  # a k x k layer: the current row's part from the rows above, (n, W, C_out)
        self.W_at = Wm  # every output group at once, for forward_row

    def forward_at(self, x, i, j, g, relu_in=False, residual=None, out=None):
        """Output group g at (i, j), written into (and returning) the (n, out_channels) vector ``y_at``.

        x: for a 1x1 layer, the input vector at (i, j), (n, in_channels); for a
        k x k layer, the ``Canvas`` of its input, final at every position
        before (i, j) and, at (i, j), in every group that group g may see.
        Positions must come in raster order: a k x k layer computes the part of
        row i that comes from the rows above when it reaches (i, 0).

        What the layer before or after would do is folded in here, so that on a
        GPU the layer is one kernel launch (``fused.dense``): ``relu_in``
        applies a ReLU to a 1x1 layer's input vector as it is read, ``residual``
        ((n, out_channels)) is added to the output before the layer's ReLU, and
        ``out`` ((n, out_channels), default ``y_at``) is where the output goes.
        """
        step = self.steps[g]
        if self.kernel == 1:
            cols = x[:, : step["end"]]  # the one-position im2col matrix: (n, end)
            bias = step["b"]
        else:
            if j == 0 and g == 0:
                self.row_at = self.forward_row(x, i, self.taps_above, self.W_above)
            p = x.pad
            cols = x.data[:, i + p, j : j + p + 1].reshape(len(self.y_at), -1)  # columns j - k//2 .. j of row i
            bias = self.row_at[:, j, step["out"]]  # the rows above, and the bias
        out = self.y_at if out is None else out
        group = step["out"]  # group g of the output vector (all of it without colour)
        fused.dense(cols, step["W"], bias, out[:, group], relu_in=relu_in, relu=self.relu,
                    residual=None if residual is None else residual[:, group])
        return out

    def forward_many(self, x, at, g, relu_in=False, residual=None):
        """Output group g at the ``Positions`` at, written into (and returning) the
        (n, P, out_channels) array ``y_many`` (new at g = 0: P changes from call to call).

        x: for a 1x1 layer, the input vectors there, (n, P, in_channels); for a k x k
        layer, the ``Canvas`` of its input, final wherever these outputs look.
        ``relu_in`` and ``residual`` ((n, P, out_channels)) as in ``forward_at``.
        """
        xp, step = self.xp, self.steps[g]
        if self.kernel == 1:
            n, P = x.shape[:2]
            cols_matrix = x[..., : step["end"]].reshape(n * P, -1)
            W = step["W"]
        else:
            # The im2col matrix of these P positions: one gather from the flattened map.
            n, P, width = x.data.shape[0], len(at), x.data.shape[2]
            tap_rows, tap_cols = self.tap_rows, self.tap_cols
            index = at.index((self.tap_key, width),  # (P, T): where each live tap reads, in x.flat
                             lambda rows, cols: (rows[:, None] + tap_rows) * width + cols[:, None] + tap_cols)
            cols_matrix = xp.take(x.flat, index.ravel(), axis=1).reshape(n * P, -1)
            W = step["W_all"]
        if relu_in:
            cols_matrix = xp.maximum(cols_matrix, 0)
        y = cols_matrix @ W
        y += step["b"]
        group = step["out"]
        if residual is not None:
            y += residual[:, :, group].reshape(n * P, -1)
        if self.relu:
            xp.maximum(y, 0, out=y)
        if self.colors == 1:
            self.y_many = y.reshape(n, P, self.out_channels)
        else:
            if g == 0:
                self.y_many = xp.zeros((n, P, self.out_channels), dtype=self.dtype)
            self.y_many[:, :, group] = y.reshape(n, P, -1)
        return self.y_many

    def forward_row(self, x, i, taps=None, W=None):
        """Output row i at every column, (n, W, out_channels), reading the ``Canvas`` x
        (final in rows <= i), after ``start_at``. The gated model's vertical stack runs a row at a time.

        With ``taps`` and their weight matrix ``W`` (a subset of the live taps),
        the sum over those taps plus the bias, before any ReLU: ``forward_at``'s
        part of row i from the rows above.
        """
        p = x.pad
        width = x.data.shape[2] - 2 * p
        n = x.data.shape[0]
        if taps is None:
            taps, W, relu = self.taps, self.W_at, self.relu
        else:
            relu = False
        if not taps:
            return self.xp.broadcast_to(self.params["b"], (n, width, self.out_channels))
        # The row's im2col matrix: for each tap, the input row it reads, shifted by its column.
        cols = self.xp.stack([x.data[:, i + ky, kx : kx + width] for ky, kx in taps], axis=2)  # (n, W, T, C)
        y = cols.reshape(n * width, -1) @ W
        y += self.params["b"]
        if relu:
            self.xp.maximum(y, 0, out=y)
        return y.reshape(n, width, self.out_channels)


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
