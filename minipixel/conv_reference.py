"""The masked convolution written as directly as the math: the reference.

``conv.MaskedConv2d`` computes exactly this, but gathers only the live taps
into an im2col matrix, cuts the batch into cache-sized chunks, reuses scratch
buffers and fuses the bias and the ReLU. This file has none of that: one loop
over the kernel taps, a padded copy of the input, and the chain rule. Read it
first; the tests and ``minipixel gradcheck`` compare the fast layer with it.

Shapes (stride 1, "same" size, zero padding):

    x:  (B, H, W, C_in)
    Wm: (k, k, C_in, C_out)   the weights with the mask already applied (W * mask)
    b:  (C_out,)
    y:  (B, H, W, C_out)

A tap ``(ky, kx)`` reads the input ``ky - k//2`` rows and ``kx - k//2`` columns
away from the output position. With ``p = k//2`` and ``x_pad`` the input with
``p`` zeros on every side, the convolution is a sum of k*k matrix products:

    y[b, i, j, :] = b + sum over (ky, kx) of x_pad[b, i + ky, j + kx, :] @ Wm[ky, kx]

Each product is linear, so the backward pass takes the same sum apart:

    dWm[ky, kx] = sum over b, i, j of outer(x_pad[b, i + ky, j + kx], dy[b, i, j])
    db          = sum over b, i, j of dy[b, i, j]
    dx_pad[b, i + ky, j + kx] += dy[b, i, j] @ Wm[ky, kx]^T     (then drop the padding)

The gradient of a masked weight is ``dWm * mask`` (the mask multiplies W).
"""
from .backend import array_module


def _padded(x, p):
    xp = array_module(x)
    return xp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def conv2d_reference(x, Wm, b):
    """y = conv(x, Wm) + b, a loop over the kernel taps. See the module docstring."""
    B, H, W, _ = x.shape
    k = Wm.shape[0]
    x_pad = _padded(x, k // 2)
    y = array_module(x).zeros((B, H, W, Wm.shape[3]), dtype=x.dtype) + b
    for ky in range(k):
        for kx in range(k):
            y += x_pad[:, ky : ky + H, kx : kx + W] @ Wm[ky, kx]
    return y


def conv2d_reference_backward(dy, x, Wm, mask=None):
    """The gradients of ``conv2d_reference``: ``(dx, dW, db)``.

    dy: (B, H, W, C_out), the gradient of the loss with respect to y.
    mask: optional (k, k, C_in, C_out) 0/1 array: dW is then the gradient with
    respect to the unmasked weights W (where ``Wm = W * mask``), zero on dead taps.
    """
    xp = array_module(x)
    B, H, W, C_in = x.shape
    k = Wm.shape[0]
    p = k // 2
    x_pad = _padded(x, p)
    dx_pad = xp.zeros_like(x_pad)
    dW = xp.zeros_like(Wm)
    for ky in range(k):
        for kx in range(k):
            window = x_pad[:, ky : ky + H, kx : kx + W].reshape(-1, C_in)
            dW[ky, kx] = window.T @ dy.reshape(-1, dy.shape[3])
            dx_pad[:, ky : ky + H, kx : kx + W] += dy @ Wm[ky, kx].T
    if mask is not None:
        dW = dW * mask
    db = dy.sum(axis=(0, 1, 2))
    return dx_pad[:, p : p + H, p : p + W], dW, db
