"""Each layer's one-position forward (``forward_at``) against its ``forward``.

The sampler's speed rests on ``forward_at``: it must give, at every position
and colour step, exactly the output that ``forward`` gives there.
"""
import numpy as np
import pytest

from minipixel.backend import get_xp, to_numpy
from minipixel.layers import MaskedConv2d, ReLU, ResidualBlock
from minipixel.masks import group_slices


def walk(layer, x, colors, xp=np):
    """Run ``forward_at`` over every position and colour step of x (B, H, W, C) in
    sampling order; return the group-g part of each output, assembled as (B, H, W, C_out)."""
    B, H, W, C = x.shape
    x = xp.asarray(x)
    layer.start_at(B, H, W)
    reads_window = isinstance(layer, MaskedConv2d) and layer.kernel > 1
    if reads_window:
        canvas = layer.canvas(B, H, W)
        canvas.image()[...] = x
    out = None
    for i in range(H):
        for j in range(W):
            for g in range(colors):
                y = layer.forward_at(canvas if reads_window else x[:, i, j].copy(), i, j, g)
                if out is None:
                    out = np.full((B, H, W, y.shape[1]), np.nan)
                group = group_slices(y.shape[1], colors)[g]
                out[:, i, j, group] = to_numpy(y[:, group])
    return out


@pytest.mark.parametrize("k,mask,colors,cin,cout,relu", [
    (1, "B", 1, 3, 4, False), (3, "A", 1, 1, 5, False), (3, "B", 1, 4, 2, True), (5, "B", 1, 2, 3, False),
    (7, "A", 1, 1, 4, False), (3, "A", 3, 3, 6, False), (5, "B", 3, 6, 7, True), (1, "A", 3, 3, 3, False),
    (1, "B", 3, 6, 9, True), (7, "A", 3, 3, 12, False),
])
def test_conv_forward_at_equals_forward(k, mask, colors, cin, cout, relu, device):
    rng = np.random.default_rng(k + cin)
    xp = get_xp(device)
    layer = MaskedConv2d(cin, cout, k, mask, colors=colors, rng=rng, dtype=np.float64, relu=relu, xp=xp)
    layer.params["b"][...] = xp.asarray(rng.standard_normal(cout))
    x = rng.standard_normal((2, 6, 5, cin))
    np.testing.assert_allclose(walk(layer, x, colors, xp), to_numpy(layer.forward(xp.asarray(x))),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("widths,colors", [("half", 1), ("keras", 1), ("half", 3), ("keras", 3)])
def test_residual_block_forward_at_equals_forward(widths, colors, device):
    rng = np.random.default_rng(5)
    xp = get_xp(device)
    block = ResidualBlock(12, widths, colors=colors, rng=rng, dtype=np.float64, xp=xp)
    for _, p, _ in block.named_parameters():
        p += xp.asarray(0.1 * rng.standard_normal(p.shape)) * (p != 0 if p.ndim > 1 else 1)
    x = rng.standard_normal((3, 5, 6, 12))
    np.testing.assert_allclose(walk(block, x, colors, xp), to_numpy(block.forward(xp.asarray(x))),
                               rtol=1e-12, atol=1e-12)


def test_relu_forward_at_equals_forward():
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 4))
    np.testing.assert_array_equal(walk(ReLU(), x, 1), ReLU().forward(x))


def test_forward_at_reads_the_canvas_not_a_stale_copy():
    # A 3x3 layer reads the rows above from its canvas (once per row, at the
    # row's first position) and the current row at every position: change the
    # canvas above or to the left and the output must change; below, it must not.
    rng = np.random.default_rng(1)
    layer = MaskedConv2d(2, 3, 3, "B", rng=rng, dtype=np.float64)
    layer.start_at(1, 4, 4)
    canvas = layer.canvas(1, 4, 4)
    canvas.image()[...] = rng.standard_normal((1, 4, 4, 2))

    def row_2_up_to_column_2():
        for j in range(3):
            y = layer.forward_at(canvas, 2, j, 0)
        return y.copy()

    before = row_2_up_to_column_2()
    canvas.image()[:, 3] += 1.0  # the row below: never read
    np.testing.assert_array_equal(row_2_up_to_column_2(), before)
    canvas.image()[:, 1, 2] += 1.0  # the position above: read
    after_above = row_2_up_to_column_2()
    assert not np.allclose(after_above, before)
    canvas.image()[:, 2, 1] += 1.0  # the position to the left, in the same row: read at every position
    assert not np.allclose(layer.forward_at(canvas, 2, 2, 0), after_above)
