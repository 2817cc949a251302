"""The masked convolution, ``MaskedConv2d``: its training pair (``forward``,
``backward``) first, then the methods the samplers call.

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
import math

import numpy as np

from . import fused
from .backend import chunk_rows
from .canvas import Canvas
from .im2col import col2im, im2col, scratch
from .layers import Layer, check_array
from .masks import conv_mask, group_slices, live_taps


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

    # --- Training: forward and backward over a batch ---------------------

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

    # --- For the samplers: one position (forward_at), many (forward_many), a row ---

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
        self.row_buffers = {}  # forward_row's: (n, W, taps) -> (its im2col matrix, its output)
        if self.kernel > 1:  # made here, not at a row inside a capture: the rows above, and a V layer's rows
            self._row_buffers(n, width, len(self.taps_above))
            if self.mask_type == "V":
                self._row_buffers(n, width, len(self.taps))
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
            cols = x.data[:, x.row(i), j : j + p + 1].reshape(len(self.y_at), -1)  # columns j - k//2 .. j of row i
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

    def _row_buffers(self, n, width, taps):
        """forward_row's im2col matrix and output for ``taps`` taps, made once."""
        key = (n, width, taps)
        if key not in self.row_buffers:
            self.row_buffers[key] = (self.xp.empty((n, width, taps, self.in_channels), dtype=self.dtype),
                                     self.xp.empty((n, width, self.out_channels), dtype=self.dtype))
        return self.row_buffers[key]

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
        # With the layer's own kernel in buffers made before (no BLAS call, no
        # allocation): what the graph sampler can capture.
        cols, y = self._row_buffers(n, width, len(taps))
        # The row's im2col matrix: for each tap, the input row it reads, shifted by its column.
        top = x.row(i) - p  # the data row of tap row ky = 0
        for t, (ky, kx) in enumerate(taps):
            cols[:, :, t] = x.data[:, top + ky, kx : kx + width]
        fused.dense(cols.reshape(n * width, -1), W, self.params["b"], y.reshape(n * width, -1), relu=relu)
        return y
