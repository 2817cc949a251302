"""Masked im2col and col2im: a masked convolution as one matrix product.

A convolution with a ``k x k`` kernel computes, at every output position, a dot
product between the kernel and the ``k x k`` patch of the input around that
position. im2col copies the patches into the rows of a matrix, so that the
whole convolution is a single matmul with the kernel laid out as a matrix:

    cols: (B*H*W, T*C_in)   one row per output position, one column per
                            (tap, input channel)
    W:    (T*C_in, C_out)
    y = cols @ W            (B*H*W, C_out)

The masks of a PixelCNN zero out about half of every kernel, and a zero tap
contributes nothing, so we gather only the *live* taps ``T`` (see
``masks.live_taps``): 5 of 9 for a 3x3 mask B, 24 of 49 for a 7x7 mask A.
That halves both the copying and the arithmetic.

Layout: images are ``(B, H, W, C)`` (channels last), so the values a tap reads
at one position are contiguous, and ``cols`` is ``(B, H, W, T, C)``, which
reshapes to the matrix above for free. Taps that fall outside the image read
zeros ("same" padding, stride 1), written into ``cols`` directly rather than
by padding a copy of the input.

col2im is the adjoint of im2col (the backward pass): every entry of ``cols``
was copied from one input position, so its gradient is added back there. The
loop is the same as im2col's with ``+=``, one strided slice-add per tap (no
``np.add.at``, which is slow, is needed: within one tap no two entries come
from the same input position).

On a GPU every slice assignment is a kernel launch, and the loops above
make five per tap (the copy and four padding fills): 120 for a 7x7 mask A.
So on any device but NumPy, ``im2col`` and ``col2im`` are one gather each
(``im2col_gather``, ``col2im_gather``): a precomputed index says which input
row each entry of ``cols`` copies, and a precomputed mask zeroes the taps
that fall outside the image; col2im gathers, for each input row and tap, the
one entry of ``dcols`` that was copied from it (masked to zero if none was),
and sums over the taps. Two and three launches, whatever the kernel. The
tests compare the two versions on NumPy arrays.
"""
import threading

import numpy as np

from .backend import array_module


def _tap_slices(offset, size):
    """Where a tap ``offset`` rows (or columns) away reads inside the image.

    Returns ``(dst, src)``: output positions ``dst`` read input positions
    ``src`` (= ``dst + offset``); the other output positions read padding.
    """
    lo = max(0, -offset)
    hi = max(lo, min(size, size - offset))
    return slice(lo, hi), slice(lo + offset, hi + offset)


def im2col(x, taps, kernel, out=None):
    """Gather the live taps of every position: ``im2col_loop`` on NumPy, ``im2col_gather`` elsewhere.

    x:    (B, H, W, C)
    taps: list of T kernel positions ``(ky, kx)``, ``0 <= ky, kx < kernel``
    out:  optional (B, H, W, T, C) buffer to fill (its old contents are ignored)
    returns cols: (B, H, W, T, C) with
        cols[b, i, j, t] = x[b, i + ky - kernel//2, j + kx - kernel//2]   (0 outside)
    """
    if array_module(x) is np:
        return im2col_loop(x, taps, kernel, out)
    return im2col_gather(x, taps, kernel, out)


def col2im(dcols, taps, kernel, out=None):
    """The adjoint of ``im2col``: ``col2im_loop`` on NumPy, ``col2im_gather`` elsewhere.

    dcols: (B, H, W, T, C); out: optional (B, H, W, C) buffer (overwritten); returns dx (B, H, W, C).
    """
    if array_module(dcols) is np:
        return col2im_loop(dcols, taps, kernel, out)
    return col2im_gather(dcols, taps, kernel, out)


def im2col_loop(x, taps, kernel, out=None):
    """im2col as a loop over the taps: one strided copy per tap, and its padding.

    x:    (B, H, W, C)
    taps: list of T kernel positions ``(ky, kx)``, ``0 <= ky, kx < kernel``
    out:  optional (B, H, W, T, C) buffer to fill (its old contents are ignored)
    returns cols: (B, H, W, T, C) with
        cols[b, i, j, t] = x[b, i + ky - kernel//2, j + kx - kernel//2]   (0 outside)
    """
    xp = array_module(x)
    B, H, W, C = x.shape
    shape = (B, H, W, len(taps), C)
    cols = xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    half = kernel // 2
    for t, (ky, kx) in enumerate(taps):
        rows, src_rows = _tap_slices(ky - half, H)
        cs, src_cs = _tap_slices(kx - half, W)
        col = cols[:, :, :, t]
        col[:, rows, cs] = x[:, src_rows, src_cs]
        # The padding: output positions whose tap lies outside the image.
        col[:, : rows.start] = 0
        col[:, rows.stop :] = 0
        col[:, rows, : cs.start] = 0
        col[:, rows, cs.stop :] = 0
    return cols


def col2im_loop(dcols, taps, kernel, out=None):
    """Scatter-add gradients of ``cols`` back to the input: the adjoint of ``im2col_loop``.

    dcols: (B, H, W, T, C)
    out:   optional (B, H, W, C) buffer (overwritten)
    returns dx: (B, H, W, C)
    """
    xp = array_module(dcols)
    B, H, W, T, C = dcols.shape
    dx = xp.empty((B, H, W, C), dtype=dcols.dtype) if out is None else out
    half = kernel // 2
    rest = list(enumerate(taps))
    if (half, half) in taps:
        # The centre tap reads every position exactly once: start from a copy of
        # its gradients rather than from zeros, which saves a pass over dx.
        centre = taps.index((half, half))
        dx[...] = dcols[:, :, :, centre]
        del rest[centre]
    else:
        dx[...] = 0
    for t, (ky, kx) in rest:
        rows, src_rows = _tap_slices(ky - half, H)
        cs, src_cs = _tap_slices(kx - half, W)
        dx[:, src_rows, src_cs] += dcols[:, rows, cs, t]
    return dx


_indices = {}


def gather_index(taps, kernel, B, H, W, xp=np):
    """Where every entry of ``cols`` comes from, for ``im2col_gather``.

    returns ``(index, inside)`` on ``xp``: index (B*H*W, T) ints, the row of x as
    (B*H*W, C) rows that tap t of position n reads (row 0 for a tap outside the
    image), and inside (B*H*W, T, 1) bools, False for those taps: their entries
    are zeroed after the gather. Computed on the host once per shape and kept.
    """
    key = (tuple(taps), kernel, B, H, W, xp.__name__)
    if key not in _indices:
        half = kernel // 2
        b, i, j = np.meshgrid(np.arange(B), np.arange(H), np.arange(W), indexing="ij")
        index = np.zeros((B, H, W, len(taps)), dtype=np.intp)
        inside = np.zeros((B, H, W, len(taps)), dtype=bool)
        for t, (ky, kx) in enumerate(taps):
            r, c = i + ky - half, j + kx - half
            inside[..., t] = (r >= 0) & (r < H) & (c >= 0) & (c < W)
            index[..., t] = np.where(inside[..., t], (b * H + r) * W + c, 0)
        N = B * H * W
        _indices[key] = (xp.asarray(index.reshape(N, -1)), xp.asarray(inside.reshape(N, -1, 1)))
    return _indices[key]


def scatter_index(taps, kernel, B, H, W, xp=np):
    """The inverse of ``gather_index``, for ``col2im_gather``.

    returns ``(index, read)``: index (B*H*W, T), the row of dcols as
    (B*H*W*T, C) rows that input row r sent through tap t (``n * T + t`` where
    position n read r through tap t; 0 if none did: within a tap, no two
    positions read the same row), and read (B*H*W, T, 1) bools, False where
    none did. The centre tap comes first, then the others in order: the order
    in which col2im_loop adds them, so that both round alike.
    """
    key = ("scatter", tuple(taps), kernel, B, H, W, xp.__name__)
    if key not in _indices:
        forward, inside = gather_index(taps, kernel, B, H, W, np)
        N, T = forward.shape
        index = np.zeros((N, T), dtype=np.intp)
        read = np.zeros((N, T), dtype=bool)
        n, t = np.nonzero(inside[..., 0])
        index[forward[n, t], t] = n * T + t
        read[forward[n, t], t] = True
        half = kernel // 2
        order = sorted(range(T), key=lambda k: taps[k] != (half, half))
        _indices[key] = (xp.asarray(index[:, order]), xp.asarray(read[:, order, None]))
    return _indices[key]


def im2col_gather(x, taps, kernel, out=None):
    """``im2col`` as one gather and one multiply (two launches on a GPU): same arguments and result."""
    xp = array_module(x)
    B, H, W, C = x.shape
    N, T = B * H * W, len(taps)
    index, inside = gather_index(taps, kernel, B, H, W, xp)
    cols = xp.empty((N, T, C), dtype=x.dtype) if out is None else out.reshape(N, T, C)
    xp.take(x.reshape(N, C), index, axis=0, out=cols)
    xp.multiply(cols, inside, out=cols)  # the taps outside the image read zeros
    return cols.reshape(B, H, W, T, C)


def col2im_gather(dcols, taps, kernel, out=None):
    """``col2im`` as one gather, one multiply and a sum over the taps: same arguments and result."""
    xp = array_module(dcols)
    B, H, W, T, C = dcols.shape
    N = B * H * W
    index, read = scatter_index(taps, kernel, B, H, W, xp)
    parts = xp.take(dcols.reshape(N * T, C), index, axis=0)  # (N, T, C)
    xp.multiply(parts, read, out=parts)
    dx = xp.empty((B, H, W, C), dtype=dcols.dtype) if out is None else out
    parts.sum(axis=1, out=dx.reshape(N, C))
    return dx


_local = threading.local()  # each thread's own scratch buffers


def scratch(name, shape, dtype, xp=np):
    """A reusable buffer of ``shape`` (contents undefined), shared by all layers
    that run in this thread.

    Layers fill an im2col matrix (``name="cols"``) for one chunk of the batch
    at a time, use it, and are done with it before the next; one buffer per
    name, grown to the largest size asked for, serves them all, and memory
    that is reused is memory that is already in the cache. Each thread has its
    own (``threads`` runs a part of the batch in each).
    """
    buffers = _local.__dict__.setdefault("buffers", {})
    key = (name, xp.__name__, np.dtype(dtype).str)
    size = int(np.prod(shape))
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = None  # let the old buffer go before allocating
        buf = buffers[key] = xp.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)
