"""Each layer's one-position forward (``forward_at``) against its ``forward``.

The sampler's speed rests on ``forward_at``: it must give, at every position
and colour step, exactly the output that ``forward`` gives there.
"""
import numpy as np
import pytest

from minipixel import backend
from minipixel.backend import get_xp, to_numpy
from minipixel.canvas import Canvas, Positions
from minipixel.conv import MaskedConv2d
from minipixel.layers import ReLU
from minipixel.model import ResidualBlock
from minipixel.masks import group_slices
from minipixel.testing import strict


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


def test_positions_make_each_index_once_and_slice_it_for_their_parts():
    made = []

    def make(rows, cols):
        made.append(1)
        return rows * 10 + cols

    whole = Positions(np.array([0, 0, 1, 2, 2]), np.array([3, 4, 0, 1, 2]))
    part = whole[1:4]
    assert len(part) == 3 and part.rows.tolist() == [0, 1, 2] and part.cols.tolist() == [4, 0, 1]
    assert part.index("k", make).tolist() == [4, 10, 21]
    assert part[1:].index("k", make).tolist() == [10, 21]  # a part of a part
    assert whole.index("k", make).tolist() == [3, 4, 10, 21, 22]
    assert len(made) == 1  # made once, for the whole, on first use
    assert whole.index("other", lambda r, c: r + c).tolist() == [3, 4, 1, 3, 4]  # another key, another index


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


def perturbed_block(widths, colors, xp):
    """A float64 residual block of 12 channels with every live parameter moved off its
    initial value (the biases start at zero), and an input for it, (3, 5, 6, 12)."""
    rng = np.random.default_rng(5)
    block = ResidualBlock(12, widths, colors=colors, rng=rng, dtype=np.float64, xp=xp)
    for _, p, _ in block.named_parameters():
        p += xp.asarray(0.1 * rng.standard_normal(p.shape)) * (p != 0 if p.ndim > 1 else 1)
    return block, rng.standard_normal((3, 5, 6, 12))


@pytest.mark.parametrize("widths,colors", [("half", 1), ("keras", 1), ("half", 3), ("keras", 3)])
def test_residual_block_forward_at_equals_forward(widths, colors, device):
    xp = get_xp(device)
    block, x = perturbed_block(widths, colors, xp)
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


@pytest.mark.parametrize("kernel", [3, 5])
def test_canvas_at_is_a_view_of_the_map_at_that_position(kernel):
    # A residual block writes conv1's output straight into conv2's canvas through
    # ``at(i, j)``: it must be position (i, j) of the map, borders included, not of its padding.
    canvas = Canvas(2, 3, 4, 2, kernel, np.float32, np)
    half = kernel // 2  # rows of zeros on top, columns on each side; none below
    assert canvas.data.shape == (2, 3 + half, 4 + 2 * half, 2) and canvas.data.dtype == np.float32
    canvas.image()[...] = np.arange(1, 2 * 3 * 4 * 2 + 1).reshape(2, 3, 4, 2)
    for i in range(3):
        for j in range(4):
            np.testing.assert_array_equal(canvas.at(i, j), canvas.image()[:, i, j])
            canvas.at(i, j)[...] = -(10 * i + j)
            assert (canvas.image()[:, i, j] == -(10 * i + j)).all()
    assert np.abs(canvas.data).sum() == np.abs(canvas.image()).sum()  # and the padding is still all zeros


def test_relu_forward_at_writes_its_own_vector_and_reuses_it():
    # The sampler calls forward_at at every sub-pixel: the output goes into one
    # vector the layer keeps (no allocation per call), never into its input,
    # which belongs to the layer before (the gated model's running skip sum).
    rng = np.random.default_rng(2)
    relu = ReLU(inplace=True)
    relu.start_at(2, 3, 3)
    x1, x2 = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    x1_before = x1.copy()
    y1 = relu.forward_at(x1, 0, 0, 0)
    assert y1 is not x1 and (x1 == x1_before).all()
    np.testing.assert_array_equal(y1, np.maximum(x1, 0))
    y2 = relu.forward_at(x2, 0, 1, 0)
    assert y2 is y1  # the same vector, now holding the second position's output
    np.testing.assert_array_equal(y2, np.maximum(x2, 0))
    x3 = rng.standard_normal((3, 4))  # another batch size: a vector of the new shape
    np.testing.assert_array_equal(relu.forward_at(x3, 0, 0, 0), np.maximum(x3, 0))


@pytest.mark.parametrize("make,cin", [
    (lambda xp: MaskedConv2d(3, 6, 3, "B", colors=3, dtype=np.float32, relu=True, xp=xp), 3),
    (lambda xp: MaskedConv2d(6, 6, 1, "B", colors=3, dtype=np.float32, xp=xp), 6),
    (lambda xp: ResidualBlock(6, colors=3, dtype=np.float32, xp=xp), 6),
], ids=["3x3", "1x1", "residual block"])
def test_a_float32_forward_at_computes_in_float32_only(make, cin):
    # On a GPU float64 is many times slower: every array the one-position forward
    # makes (its canvas, output vectors, cut-out weights) and every operand of every
    # op stays in the layer's dtype, as in training (test_strict_device).
    backend.register_device("strict", strict)
    layer = make(strict)
    x = np.random.default_rng(3).standard_normal((2, 3, 4, cin)).astype(np.float32)
    strict.dtypes.clear()
    y = walk(layer, x, 3, strict)
    assert strict.dtypes["float32"] > 10
    assert set(strict.dtypes) == {"float32"}, strict.dtypes
    np.testing.assert_allclose(y, to_numpy(layer.forward(strict.asarray(x))), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask", ["A", "B"])
def test_a_1x1_layer_reads_only_the_input_groups_its_mask_shows(mask):
    # At colour step g a 1x1 layer reads input groups < g (mask A) or <= g (mask B)
    # only: the later groups of its input vector are stale (or never written) and
    # must not reach the output, even as NaN.
    rng = np.random.default_rng(4)
    layer = MaskedConv2d(6, 9, 1, mask, colors=3, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(9)
    layer.start_at(2, 1, 1)
    groups_in, groups_out = group_slices(6, 3), group_slices(9, 3)
    for g in range(3):
        x = rng.standard_normal((2, 6))
        want = layer.forward(x.reshape(2, 1, 1, 6))[:, 0, 0, groups_out[g]]
        hidden = groups_in[g].start if mask == "A" else groups_in[g].stop
        x[:, hidden:] = np.nan
        np.testing.assert_allclose(layer.forward_at(x, 0, 0, g)[:, groups_out[g]], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,mask,relu", [(3, "B", True), (3, "V", True), (5, "V", False), (3, "A", True)])
def test_forward_row_equals_forward_row_by_row(k, mask, relu):
    # The gated model's vertical stack runs a row at a time: forward_row(canvas, i),
    # with every row <= i final, gives forward's row i, ReLU included.
    rng = np.random.default_rng(k)
    layer = MaskedConv2d(2, 3, k, mask, rng=rng, dtype=np.float64, relu=relu)
    layer.params["b"][...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 4, 5, 2))
    y = layer.forward(x)
    assert (y == 0).any() == relu and (y < 0).any() != relu  # the ReLU has something to cut
    layer.start_at(2, 4, 5)
    canvas = layer.canvas(2, 4, 5)
    canvas.image()[...] = x
    for i in range(4):
        np.testing.assert_allclose(layer.forward_row(canvas, i), y[:, i], rtol=1e-12, atol=1e-12)


# forward_many: the same at many positions at once (the wavefront sampler's step).


def walk_many(layer, x, colors, xp=np, relu_in=False, residual=None, lag=None):
    """``forward_many`` over x (B, H, W, C), colour step by colour step: every position
    at once in a shuffled order (the order is free where the inputs are all given), or,
    with ``lag``, in the wavefront sampler's steps (row i at column t - lag * i: a
    block's 3x3 conv then reads its own map, final only at earlier steps).
    Returns the output as (B, H, W, C_out) and its dtype."""
    B, H, W, C = x.shape
    layer.start_at(B, H, W)
    if lag is None:
        order = np.random.default_rng(0).permutation(H * W)
        steps = [(order // W, order % W)]
    else:
        every = np.arange(H)
        steps = [(every[(t - lag * every >= 0) & (t - lag * every < W)],) for t in range(W + lag * (H - 1))]
        steps = [(rows, t - lag * rows) for t, (rows,) in enumerate(steps)]
    if isinstance(layer, MaskedConv2d) and layer.kernel > 1:
        canvas = layer.canvas(B, H, W)
        canvas.image()[...] = xp.asarray(x)
    out = None
    for rows, cols in steps:
        source = canvas if isinstance(layer, MaskedConv2d) and layer.kernel > 1 else xp.asarray(x[:, rows, cols])
        kw = dict(relu_in=True) if relu_in else {}  # without it, forward_many's own default
        if residual is not None:
            kw["residual"] = xp.asarray(residual[:, rows, cols])
        for g in range(colors):
            y = layer.forward_many(source, Positions(xp.asarray(rows), xp.asarray(cols)), g, **kw)
            if out is None:
                out = np.full((B, H, W, y.shape[2]), np.nan)
            group = group_slices(y.shape[2], colors)[g]
            out[:, rows, cols, group] = to_numpy(y[:, :, group])
    return out, y.dtype


@pytest.mark.parametrize("k,mask,colors,cin,cout,relu", [
    (1, "B", 1, 3, 4, False), (3, "A", 1, 1, 5, False), (3, "B", 1, 4, 2, True), (5, "B", 1, 2, 3, False),
    (7, "A", 1, 1, 4, False), (3, "A", 3, 3, 6, False), (5, "B", 3, 6, 7, True), (1, "A", 3, 3, 3, False),
    (1, "B", 3, 6, 9, True), (7, "A", 3, 3, 12, False),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_forward_many_equals_forward(k, mask, colors, cin, cout, relu, dtype, device):
    rng = np.random.default_rng(k + cin)
    xp = get_xp(device)
    layer = MaskedConv2d(cin, cout, k, mask, colors=colors, rng=rng, dtype=dtype, relu=relu, xp=xp)
    layer.params["b"][...] = xp.asarray(rng.standard_normal(cout))
    x = rng.standard_normal((2, 6, 5, cin)).astype(dtype)
    got, got_dtype = walk_many(layer, x, colors, xp)
    assert got_dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, to_numpy(layer.forward(xp.asarray(x))), rtol=tol, atol=tol)


@pytest.mark.parametrize("colors", [1, 3])
def test_conv_forward_many_applies_relu_in_and_adds_the_residual(colors, device):
    rng = np.random.default_rng(3)
    xp = get_xp(device)
    layer = MaskedConv2d(6, 9, 1, "B", colors=colors, rng=rng, dtype=np.float64, xp=xp)
    layer.params["b"][...] = xp.asarray(rng.standard_normal(9))
    x, r = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((2, 4, 5, 9))
    want = to_numpy(layer.forward(xp.asarray(np.maximum(x, 0)))) + r
    np.testing.assert_allclose(walk_many(layer, x, colors, xp, relu_in=True, residual=r)[0], want,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(walk_many(layer, x, colors, xp)[0], to_numpy(layer.forward(xp.asarray(x))),
                               rtol=1e-12, atol=1e-12)  # and neither by default


@pytest.mark.parametrize("widths,colors", [("half", 1), ("keras", 1), ("half", 3), ("keras", 3)])
def test_residual_block_forward_many_equals_forward(widths, colors, device):
    xp = get_xp(device)
    block, x = perturbed_block(widths, colors, xp)
    np.testing.assert_allclose(walk_many(block, x, colors, xp, lag=2)[0], to_numpy(block.forward(xp.asarray(x))),
                               rtol=1e-12, atol=1e-12)
