"""im2col / col2im, the reference convolution against a direct loop, and the
fast MaskedConv2d against the reference, forward and backward."""
import numpy as np
import pytest

from minipixel import conv as conv_module
from minipixel.backend import get_xp, to_numpy
from minipixel.conv_reference import conv2d_reference, conv2d_reference_backward
from minipixel.gated import ClassBias
from minipixel.im2col import col2im, col2im_gather, col2im_loop, im2col, im2col_gather, im2col_loop, scratch
from minipixel.conv import MaskedConv2d
from minipixel.layers import ReLU
from minipixel.model import ResidualBlock
from minipixel.masks import conv_mask, live_taps
from minipixel.testing import strict


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
        import minipixel.conv

        monkeypatch.setattr(minipixel.conv, "chunk_rows", lambda xp: 1)
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
    # Any taps, not only the causal ones: a tap below the centre reads zeros past the bottom row.
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    taps = [(0, 0), (1, 1), (2, 2)]  # up-left neighbour, the centre and down-right, for a 3x3 kernel
    out = np.full((1, 3, 3, 3, 1), np.nan)  # old contents must not leak
    cols = version(x, taps, 3, out=out)
    assert np.shares_memory(cols, out)  # filled in place: the layers pass a reused scratch buffer
    assert cols[0, :, :, 1, 0].tolist() == x[0, :, :, 0].tolist()
    assert cols[0, :, :, 0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    assert cols[0, :, :, 2, 0].tolist() == [[5, 6, 0], [8, 9, 0], [0, 0, 0]]


def test_im2col_and_col2im_fill_the_buffers_they_are_given(device):
    # On every device (the loop on NumPy, the gather elsewhere): the layers hand
    # in a reused scratch buffer, or their own dx, and read the result there.
    xp = get_xp(device)
    x = xp.asarray(np.arange(1, 13, dtype=np.float64).reshape(1, 3, 4, 1))
    taps = [(0, 1), (1, 1)]  # the one above, and the centre
    cols = xp.full((1, 3, 4, 2, 1), np.nan)
    im2col(x, taps, 3, out=cols)
    assert to_numpy(cols)[0, :, :, 0, 0].tolist() == [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]
    np.testing.assert_array_equal(to_numpy(cols)[..., 1, :], to_numpy(x))
    dx = xp.full((1, 3, 4, 1), np.nan)
    col2im(xp.ones((1, 3, 4, 2, 1)), taps, 3, out=dx)
    assert to_numpy(dx)[0, :, :, 0].tolist() == [[2, 2, 2, 2], [2, 2, 2, 2], [1, 1, 1, 1]]


def test_scratch_keeps_one_growing_buffer_per_name_dtype_and_thread():
    import threading

    a = scratch("test", (2, 3), np.float32)
    assert a.shape == (2, 3) and a.dtype == np.float32
    assert np.shares_memory(scratch("test", (3, 2), np.float32), a)  # the same size: the same memory
    assert np.shares_memory(scratch("test", (4,), np.float32), a)  # smaller: a part of it
    big = scratch("test", (5, 3), np.float32)  # larger: grown
    assert big.shape == (5, 3) and big.dtype == np.float32
    assert np.shares_memory(scratch("test", (2, 3), np.float32), big)
    other_dtype = scratch("test", (2, 3), np.float64)
    assert other_dtype.dtype == np.float64 and not np.shares_memory(other_dtype, big)
    assert not np.shares_memory(scratch("test, another name", (2, 3), np.float32), big)
    in_thread = []
    worker = threading.Thread(target=lambda: in_thread.append(scratch("test", (2, 3), np.float32)))
    worker.start()
    worker.join()
    assert not np.shares_memory(in_thread[0], big)


@pytest.mark.parametrize("version", [im2col_loop, im2col_gather])
def test_im2col_without_a_buffer_keeps_the_input_dtype(version):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2)).astype(np.float32)
    taps = live_taps(conv_mask(3, 2, 2, "B"))
    cols = version(x, taps, 3)
    assert cols.dtype == np.float32 and cols.shape == (2, 3, 4, len(taps), 2)
    np.testing.assert_array_equal(cols[:, :, :, taps.index((1, 1))], x)  # the centre tap reads x itself


@pytest.mark.parametrize("k,mask,colors", [(1, "B", 1), (3, "B", 3), (5, "A", 1), (7, "A", 3), (3, "V", 1),
                                           (3, "HB", 1), (7, "HA", 3)])
def test_the_gather_versions_equal_the_loops(k, mask, colors):
    # The GPU's one-gather im2col and col2im (run here on NumPy arrays, as
    # their twins) give exactly the loops' results, padding and edges included,
    # also on images smaller than the kernel, down to a single pixel (every tap
    # but the centre outside: the gather must still read only rows that exist).
    rng = np.random.default_rng(k)
    taps = live_taps(conv_mask(k, 3, 3, mask, colors))
    for shape in [(2, 5, 6, 3), (1, 2, 3, 3), (1, 1, 1, 3)]:
        x = rng.standard_normal(shape)
        np.testing.assert_array_equal(im2col_gather(x, taps, k), im2col_loop(x, taps, k))
        g = rng.standard_normal(shape[:3] + (len(taps), 3))
        np.testing.assert_allclose(col2im_gather(g, taps, k), col2im_loop(g, taps, k), rtol=1e-13, atol=1e-13)


def test_the_loops_run_on_every_device(device):
    # im2col and col2im send other devices' arrays to the gathers, but the loops
    # (the definition the gathers are held to) work on any array module too.
    xp = get_xp(device)
    rng = np.random.default_rng(5)
    taps = live_taps(conv_mask(3, 2, 2, "B"))
    x, g = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((2, 3, 4, len(taps), 2))
    cols, dx = im2col_loop(xp.asarray(x), taps, 3), col2im_loop(xp.asarray(g), taps, 3)
    assert isinstance(cols, xp.ndarray) and isinstance(dx, xp.ndarray)
    np.testing.assert_array_equal(to_numpy(cols), im2col_loop(x, taps, 3))
    np.testing.assert_array_equal(to_numpy(dx), col2im_loop(g, taps, 3))


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


def test_a_pixelcnn_names_its_input_when_it_refuses_one():
    from minipixel.model import PixelCNNConfig, build_model

    model = build_model(PixelCNNConfig(height=4, width=4, channels=3, levels=4, filters=6, blocks=1))
    with pytest.raises(ValueError, match=r"^PixelCNN input: expected 3 channels in the last axis, got shape \(1, 4, 4, 1\)"):
        model.forward(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="^classes: this model is not class-conditional"):
        model.forward(np.zeros((1, 4, 4, 3), np.float32), classes=np.zeros(1, int))


def test_relu_in_place_overwrites_its_input_and_backward_uses_the_output():
    x = np.array([-1.0, 2.0, 0.0, 3.0])
    relu = ReLU(inplace=True)
    y = relu.forward(x)
    assert y is x and x.tolist() == [0, 2, 0, 3]
    dy = np.ones(4)
    dx = relu.backward(dy)
    assert dx is dy and dx.tolist() == [0, 1, 0, 1]  # in place backward too: dy is overwritten


def test_relu_not_in_place_leaves_its_input_and_the_output_gradient_alone():
    x = np.array([-1.0, 2.0, 0.0, 3.0])
    relu = ReLU()
    y = relu.forward(x)
    assert x.tolist() == [-1, 2, 0, 3] and y.tolist() == [0, 2, 0, 3]
    dy = np.ones(4)
    assert relu.backward(dy).tolist() == [0, 1, 0, 1]
    assert dy.tolist() == [1, 1, 1, 1]


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


def test_load_parameters_copies_by_name_and_names_what_does_not_match():
    rng = np.random.default_rng(0)
    block = ResidualBlock(4, rng=rng, dtype=np.float32)
    arrays = {name: rng.standard_normal(p.shape) for name, p in block.parameters().items()}  # float64
    block.load_parameters(arrays)
    for name, p in block.parameters().items():  # copied into the layer's own arrays, in its dtype
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, arrays[name].astype(np.float32))
    before = {name: p.copy() for name, p in block.parameters().items()}
    # A missing or an unexpected name is refused before anything is copied, and the
    # message names both lists, after the source ("parameters" unless told).
    short = {name: a + 1 for name, a in arrays.items() if name != "conv2.b"}
    with pytest.raises(ValueError, match=r"^parameters: .* missing \['conv2\.b'\], unexpected \[\]$"):
        block.load_parameters(short)
    longer = {name: a + 1 for name, a in arrays.items()} | {"conv4.W": np.zeros(3)}
    with pytest.raises(ValueError, match=r"^parameters: .* missing \[\], unexpected \['conv4\.W'\]$"):
        block.load_parameters(longer)
    with pytest.raises(ValueError, match=r"^run/model\.npz: .* missing \['conv2\.b'\], unexpected \['conv4\.W'\]$"):
        block.load_parameters(short | {"conv4.W": np.zeros(3)}, source="run/model.npz")
    for name, p in block.parameters().items():
        np.testing.assert_array_equal(p, before[name])
    wrong = r"^parameters: parameter conv1\.W: expected shape \(1, 1, 4, 2\), got \(1, 1, 4, 3\)$"
    with pytest.raises(ValueError, match=wrong):
        block.load_parameters(arrays | {"conv1.W": np.zeros((1, 1, 4, 3))})


def test_pack_parameters_moves_every_parameter_into_one_flat_array(device):
    # After packing, an optimizer works on two flat arrays (Adam(flat=model.packed)):
    # writing the flat parameters must change the layers' parameters, and backward
    # must leave the gradients in the flat gradient array, in the model's dtype.
    rng = np.random.default_rng(6)
    xp = get_xp(device)
    block = ResidualBlock(4, rng=rng, dtype=np.float32, xp=xp)
    before = {name: to_numpy(p) for name, p in block.parameters().items()}
    flat_params, flat_grads = packed = block.pack_parameters()
    assert block.packed is packed
    total = sum(p.size for p in before.values())
    assert flat_params.shape == flat_grads.shape == (total,)
    assert flat_params.dtype == flat_grads.dtype == np.float32
    assert list(block.parameters()) == list(before)
    np.testing.assert_array_equal(to_numpy(flat_params), np.concatenate([p.ravel() for p in before.values()]))
    assert not to_numpy(flat_grads).any()
    for name, p in block.parameters().items():
        assert p.shape == before[name].shape and p.dtype == np.float32
        np.testing.assert_array_equal(to_numpy(p), before[name])
    new = (np.arange(total) / total).astype(np.float32)
    flat_params[...] = xp.asarray(new)  # as an optimizer's step would
    start = 0
    for name, p in block.parameters().items():
        np.testing.assert_array_equal(to_numpy(p).ravel(), new[start : start + p.size])
        start += p.size
    x = xp.asarray(rng.standard_normal((1, 3, 3, 4)), dtype=np.float32)
    block.forward(x)
    block.backward(xp.asarray(rng.standard_normal((1, 3, 3, 4)), dtype=np.float32))
    gradients = np.concatenate([to_numpy(g).ravel() for g in block.gradients().values()])
    assert gradients.any()
    np.testing.assert_array_equal(to_numpy(flat_grads), gradients)
    # A layer with a single parameter packs too (the gated model's class bias).
    class_bias = ClassBias(3, 4, dtype=np.float32, xp=xp)
    flat_params, flat_grads = class_bias.pack_parameters()
    assert flat_params.shape == flat_grads.shape == (12,) and class_bias.params["V"].shape == (3, 4)
    assert flat_params.dtype == flat_grads.dtype == class_bias.params["V"].dtype == np.float32  # the dtype asked for


@pytest.mark.parametrize("widths,m1", [("half", 4), ("keras", 8)])
def test_residual_block_is_x_plus_three_convolutions_each_after_a_relu(widths, m1):
    # x + conv3(relu(conv2(relu(conv1(relu(x)))))), 1x1 -> 3x3 -> 1x1, all mask B:
    # "half" narrows h to h/2 (the paper's block), "keras" to h then h/2.
    rng = np.random.default_rng(7)
    block = ResidualBlock(8, widths, rng=rng, dtype=np.float64)
    assert list(block.children()) == ["relu1", "conv1", "conv2", "conv3"]  # named, in forward order
    params = block.parameters()
    assert {name: p.shape for name, p in params.items()} == {
        "conv1.W": (1, 1, 8, m1), "conv1.b": (m1,), "conv2.W": (3, 3, m1, 4), "conv2.b": (4,),
        "conv3.W": (1, 1, 4, 8), "conv3.b": (8,)}
    for name in ("conv1.b", "conv2.b", "conv3.b"):
        params[name][...] = rng.standard_normal(params[name].shape)
    x = rng.standard_normal((2, 4, 5, 8))
    h = conv2d_reference(np.maximum(x, 0), params["conv1.W"], params["conv1.b"])
    h = conv2d_reference(np.maximum(h, 0), params["conv2.W"] * conv_mask(3, m1, 4, "B"), params["conv2.b"])
    h = conv2d_reference(np.maximum(h, 0), params["conv3.W"], params["conv3.b"])
    np.testing.assert_allclose(block.forward(x), x + h, rtol=1e-12, atol=1e-12)


def test_a_residual_block_is_grey_unless_given_colours():
    # One colour group by default: every output channel sees every input channel.
    block = ResidualBlock(4, rng=np.random.default_rng(8), dtype=np.float64)
    x = np.random.default_rng(9).standard_normal((2, 3, 3, 4))
    changed = x.copy()
    changed[..., 3] += 1.0  # the last input channel only
    assert not np.allclose(block.forward(changed)[..., 0], block.forward(x)[..., 0])


def test_residual_block_weights_come_from_the_generator_given():
    def weights(seed):
        return ResidualBlock(4, rng=np.random.default_rng(seed), dtype=np.float64).parameters()

    same, other = weights(1), weights(2)
    for name, p in weights(1).items():
        np.testing.assert_array_equal(p, same[name])
    for name in ("conv1.W", "conv2.W", "conv3.W"):
        assert not np.array_equal(weights(1)[name], other[name])


def test_on_the_cpu_a_layer_works_in_chunks_of_whole_images_and_on_a_gpu_on_the_whole_batch(monkeypatch):
    conv = MaskedConv2d(1, 2, 3, "A")
    chunks = conv._chunks(np.zeros((64, 28, 28, 1)))  # a few thousand positions a chunk: two 28x28 images
    assert chunks == [slice(k, k + 2) for k in range(0, 64, 2)]
    assert conv._chunks(np.zeros((3, 64, 64, 1))) == [slice(0, 1), slice(1, 2), slice(2, 3)]  # never part of one
    monkeypatch.setattr(strict, "whole_batch", True)  # the stand-in counting a GPU's launches
    batch = np.broadcast_to(np.zeros(1), (4096, 64, 64, 1))  # its shape alone is read
    assert [len(batch[part]) for part in MaskedConv2d(1, 2, 3, "A", xp=strict)._chunks(batch)] == [4096]


def test_conv_backward_names_the_output_gradient_it_refuses_and_a_first_layer_returns_no_input_gradient(monkeypatch):
    monkeypatch.setattr(conv_module, "chunk_rows", lambda xp: 25)  # one 5x5 image a chunk: two chunks
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    conv = MaskedConv2d(3, 4, 3, "A", rng=np.random.default_rng(1))
    conv.forward(x)
    with pytest.raises(ValueError, match=r"^MaskedConv2d output gradient: expected 4 channels in the last axis, "
                                         r"got shape \(2, 5, 5, 3\)$"):
        conv.backward(np.zeros((2, 5, 5, 3), np.float32))
    first = MaskedConv2d(3, 4, 3, "A", rng=np.random.default_rng(1), input_grad=False)
    first.forward(x)
    dy = rng.standard_normal((2, 5, 5, 4)).astype(np.float32)
    assert first.backward(dy) is None  # the data needs no gradient: none is computed
    conv.backward(dy)
    for name in ("W", "b"):  # the parameters' gradients all the same, summed over both chunks
        np.testing.assert_array_equal(first.grads[name], conv.grads[name])
    whole = MaskedConv2d(3, 4, 3, "A", rng=np.random.default_rng(1))
    monkeypatch.setattr(conv_module, "chunk_rows", lambda xp: 50)
    whole.forward(x)
    whole.backward(dy)
    np.testing.assert_allclose(first.grads["W"], whole.grads["W"], rtol=1e-5, atol=1e-6)


def test_relu_backward_before_forward_says_so_and_forward_at_needs_no_start():
    relu = ReLU()
    with pytest.raises(RuntimeError, match="^ReLU.backward: no forward to go back through"):
        relu.backward(np.zeros((1, 2, 2, 3), np.float32))
    out = ReLU().forward_at(np.array([[-1.0, 2.0]], np.float32), 0, 0, None)
    np.testing.assert_array_equal(out, [[0.0, 2.0]])


def test_conv_names_the_input_it_refuses_and_works_in_one_shared_buffer_an_image_or_more_a_chunk(monkeypatch):
    conv = MaskedConv2d(3, 4, 3, "A", rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"^MaskedConv2d input: expected 3 channels in the last axis, "
                                         r"got shape \(2, 5, 5, 4\)$"):
        conv.forward(np.zeros((2, 5, 5, 4), np.float32))
    x = np.random.default_rng(0).standard_normal((3, 5, 5, 3)).astype(np.float32)
    # every k x k layer builds its im2col matrix in the one "cols" scratch buffer of its thread
    assert np.shares_memory(conv._cols(x), scratch("cols", (1,), np.float32))
    monkeypatch.setattr(conv_module, "chunk_rows", lambda xp: 10)  # fewer positions than one 5x5 image
    assert conv._chunks(x) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    monkeypatch.setattr(conv_module, "chunk_rows", lambda xp: 50)
    assert conv._chunks(x) == [slice(0, 2), slice(2, 4)]


def test_conv_keeps_its_output_for_backward_only_when_a_relu_needs_it():
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 3)).astype(np.float32)
    plain, relu = (MaskedConv2d(3, 4, 3, "A", rng=np.random.default_rng(1), relu=r) for r in (False, True))
    plain.forward(x)
    assert plain.y is None and plain.x is x
    assert relu.forward(x) is relu.y


def test_conv_defaults_to_mask_b_and_seed_0_and_refuses_backward_before_forward():
    default = MaskedConv2d(3, 4, 3)
    explicit = MaskedConv2d(3, 4, 3, "B", rng=np.random.default_rng(0))
    assert default.mask_type == "B"
    np.testing.assert_array_equal(default.mask, explicit.mask)
    np.testing.assert_array_equal(default.params["W"], explicit.params["W"])  # the same draw: seed 0
    with pytest.raises(RuntimeError, match="^MaskedConv2d.backward: no forward to go back through"):
        default.backward(np.zeros((1, 4, 4, 4), np.float32))
