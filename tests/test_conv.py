"""im2col / col2im, the reference convolution against a direct loop, and the
fast MaskedConv2d against the reference, forward and backward."""
import numpy as np
import pytest

from minipixel.backend import get_xp, to_numpy
from minipixel.conv_reference import conv2d_reference, conv2d_reference_backward
from minipixel.im2col import col2im, col2im_gather, col2im_loop, im2col, im2col_gather, im2col_loop
from minipixel.layers import MaskedConv2d, ReLU
from minipixel.masks import conv_mask, live_taps


def direct_conv(x, W, b):
    """The textbook definition: a loop over output positions, zero padding, stride 1.
    x (B, H, W, Ci), W (k, k, Ci, Co) already masked."""
    B, H, Wd, _ = x.shape
    k = W.shape[0]
    half = k // 2
    xp = np.pad(x, ((0, 0), (half, half), (half, half), (0, 0)))
    y = np.zeros((B, H, Wd, W.shape[3]))
    for i in range(H):
        for j in range(Wd):
            patch = xp[:, i : i + k, j : j + k, :]  # (B, k, k, Ci)
            y[:, i, j] = np.einsum("bhwc,hwco->bo", patch, W) + b
    return y


CONFIGS = [
    (1, "B", 1, 3, 4), (3, "A", 1, 1, 5), (3, "B", 1, 4, 2), (5, "B", 1, 2, 3),
    (7, "A", 1, 1, 4), (3, "A", 3, 3, 6), (5, "B", 3, 6, 7), (1, "A", 3, 3, 3),
]


def layer_and_input(k, mask, colors, cin, cout, device="cpu"):
    """A layer on ``device`` with random bias, a NumPy input, and the generator."""
    rng = np.random.default_rng(k + 10 * cin)
    xp = get_xp(device)
    layer = MaskedConv2d(cin, cout, k, mask, colors=colors, rng=rng, dtype=np.float64, xp=xp)
    layer.params["b"][...] = xp.asarray(rng.standard_normal(cout))
    return layer, rng.standard_normal((3, 6, 5, cin)), rng


@pytest.mark.parametrize("k,mask,colors,cin,cout", CONFIGS)
def test_reference_matches_direct_convolution(k, mask, colors, cin, cout):
    layer, x, _ = layer_and_input(k, mask, colors, cin, cout)
    Wm = layer.params["W"] * conv_mask(k, cin, cout, mask, colors)
    np.testing.assert_allclose(conv2d_reference(x, Wm, layer.params["b"]), direct_conv(x, Wm, layer.params["b"]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_keeps_the_input_dtype(dtype):
    rng = np.random.default_rng(3)
    mask = conv_mask(3, 2, 4, "B").astype(dtype)
    x = rng.standard_normal((2, 5, 4, 2)).astype(dtype)
    Wm = (rng.standard_normal((3, 3, 2, 4)) * mask).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y = conv2d_reference(x, Wm, b)
    assert y.dtype == dtype and y.shape == (2, 5, 4, 4)
    np.testing.assert_allclose(y, direct_conv(x, Wm, b), rtol=1e-5, atol=1e-5)
    dx, dW, db = conv2d_reference_backward(rng.standard_normal((2, 5, 4, 4)).astype(dtype), x, Wm, mask)
    assert (dx.dtype, dW.dtype, db.dtype) == (dtype, dtype, dtype)
    assert (dx.shape, dW.shape, db.shape) == (x.shape, Wm.shape, b.shape)


def test_reference_runs_on_every_device(device):
    # The reference on device arrays (the gradient check runs it on the model's device)
    # gives NumPy's numbers and builds every array on that device.
    xp = get_xp(device)
    rng = np.random.default_rng(4)
    mask = conv_mask(5, 3, 6, "A", colors=3)
    x, dy = rng.standard_normal((2, 4, 6, 3)), rng.standard_normal((2, 4, 6, 6))
    Wm, b = rng.standard_normal((5, 5, 3, 6)) * mask, rng.standard_normal(6)
    y = conv2d_reference(xp.asarray(x), xp.asarray(Wm), xp.asarray(b))
    grads = conv2d_reference_backward(xp.asarray(dy), xp.asarray(x), xp.asarray(Wm), xp.asarray(mask))
    np.testing.assert_allclose(to_numpy(y), conv2d_reference(x, Wm, b), rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, conv2d_reference_backward(dy, x, Wm, mask)):
        assert isinstance(got, xp.ndarray)
        np.testing.assert_allclose(to_numpy(got), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("k,mask,colors,cin,cout", CONFIGS)
def test_fast_layer_matches_the_reference_forward_and_backward(k, mask, colors, cin, cout, chunked, device,
                                                               monkeypatch):
    if chunked:  # one image per chunk: the sums of dW and db over chunks, col2im per chunk
        import minipixel.layers

        monkeypatch.setattr(minipixel.layers, "chunk_rows", lambda xp: 1)
    layer, x, rng = layer_and_input(k, mask, colors, cin, cout, device)
    xp = layer.xp
    mask_array = conv_mask(k, cin, cout, mask, colors)
    W, b = to_numpy(layer.params["W"]), to_numpy(layer.params["b"])
    Wm = W * mask_array
    y = layer.forward(xp.asarray(x))
    np.testing.assert_allclose(to_numpy(y), conv2d_reference(x, Wm, b), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal((3, 6, 5, cout))
    dx, dW, db = conv2d_reference_backward(dy, x, Wm, mask_array)
    np.testing.assert_allclose(to_numpy(layer.backward(xp.asarray(dy))), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.grads["W"]), dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.grads["b"]), db, rtol=1e-12, atol=1e-12)


def test_masked_weights_are_zero_and_get_zero_gradient():
    rng = np.random.default_rng(0)
    layer = MaskedConv2d(3, 6, 5, "A", colors=3, rng=rng, dtype=np.float64)
    dead = conv_mask(5, 3, 6, "A", colors=3) == 0
    assert np.all(layer.params["W"][dead] == 0)
    x = rng.standard_normal((2, 5, 5, 3))
    layer.forward(x)
    layer.backward(rng.standard_normal((2, 5, 5, 6)))
    assert np.all(layer.grads["W"][dead] == 0)
    assert np.any(layer.grads["W"][~dead] != 0)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_col2im_is_the_adjoint_of_im2col(k):
    # <im2col(x), g> == <x, col2im(g)> for all x, g: col2im is exactly the backward of im2col.
    rng = np.random.default_rng(k)
    taps = live_taps(conv_mask(k, 1, 1, "B"))
    x = rng.standard_normal((2, 4, 6, 3))
    g = rng.standard_normal((2, 4, 6, len(taps), 3))
    lhs = np.sum(im2col(x, taps, k) * g)
    rhs = np.sum(x * col2im(g, taps, k))
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


@pytest.mark.parametrize("version", [im2col_loop, im2col_gather])
def test_im2col_reads_zero_padding_outside_the_image(version):
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    taps = [(0, 0), (1, 1)]  # up-left neighbour and the centre, for a 3x3 kernel
    cols = version(x, taps, 3, out=np.full((1, 3, 3, 2, 1), np.nan))  # old contents must not leak
    assert cols[0, :, :, 1, 0].tolist() == x[0, :, :, 0].tolist()
    assert cols[0, :, :, 0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]


@pytest.mark.parametrize("k,mask,colors", [(1, "B", 1), (3, "B", 3), (5, "A", 1), (7, "A", 3), (3, "V", 1),
                                           (3, "HB", 1), (7, "HA", 3)])
def test_the_gather_versions_equal_the_loops(k, mask, colors):
    # The GPU's one-gather im2col and col2im (run here on NumPy arrays, as
    # their twins) give exactly the loops' results, padding and edges included,
    # also on images smaller than the kernel.
    rng = np.random.default_rng(k)
    taps = live_taps(conv_mask(k, 3, 3, mask, colors))
    for shape in [(2, 5, 6, 3), (1, 2, 3, 3)]:
        x = rng.standard_normal(shape)
        np.testing.assert_array_equal(im2col_gather(x, taps, k), im2col_loop(x, taps, k))
        g = rng.standard_normal(shape[:3] + (len(taps), 3))
        np.testing.assert_allclose(col2im_gather(g, taps, k), col2im_loop(g, taps, k), rtol=1e-13, atol=1e-13)


def test_image_smaller_than_kernel():
    rng = np.random.default_rng(1)
    layer = MaskedConv2d(1, 2, 7, "A", rng=rng, dtype=np.float64)
    x = rng.standard_normal((1, 2, 2, 1))
    np.testing.assert_allclose(layer.forward(x), direct_conv(x, layer.params["W"], layer.params["b"]), atol=1e-12)


def test_bad_inputs_say_what_was_expected():
    layer = MaskedConv2d(3, 4, 3, "B")
    with pytest.raises(ValueError, match=r"expected 3 channels .* got shape \(2, 5, 5, 2\)"):
        layer.forward(np.zeros((2, 5, 5, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected 4 dimensions .* got shape \(5, 5, 3\)"):
        layer.forward(np.zeros((5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="expected dtype float32, got float64"):
        layer.forward(np.zeros((1, 5, 5, 3)))
    with pytest.raises(ValueError, match="expected a numpy array"):
        layer.forward([[[[0.0] * 3]]])
    layer.forward(np.zeros((2, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="expected 4 channels"):
        layer.backward(np.zeros((2, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="has no live taps"):
        MaskedConv2d(1, 1, 1, "A")


def test_relu_in_place_overwrites_its_input_and_backward_uses_the_output():
    x = np.array([-1.0, 2.0, 0.0, 3.0])
    relu = ReLU(inplace=True)
    y = relu.forward(x)
    assert y is x and x.tolist() == [0, 2, 0, 3]
    assert relu.backward(np.ones(4)).tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("k,mask", [(5, "B"), (7, "B"), (7, "HB")])
def test_col2im_gather_rounds_as_the_loop_in_float32(k, mask):
    # Both start from the centre tap and add the others in the same order, so in
    # float32 they agree to the bit, not just to rounding; and dx keeps the dtype.
    rng = np.random.default_rng(k)
    taps = live_taps(conv_mask(k, 2, 2, mask))
    g = rng.standard_normal((2, 9, 9, len(taps), 2)).astype(np.float32)
    dx = col2im_gather(g, taps, k)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, col2im_loop(g, taps, k))
