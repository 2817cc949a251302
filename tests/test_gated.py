"""The Gated PixelCNN: order, no blind spot, leaks caught, one-position forward, sampling.

Gradient checks of every gated op and of whole gated models are in
``minipixel.gradcheck.cases()`` (run by test_gradcheck.py).
"""
import numpy as np
import pytest

from minipixel import backend, gradcheck
from minipixel.backend import to_numpy
from minipixel.gated import Gate, GatedLayer, GatedPixelCNN
from minipixel.model import PixelCNN, PixelCNNConfig, build_model
from minipixel.sampling import sample
from minipixel.testing import strict
from test_autoregressive import check_order, dependency_matrix

SIZE = 5


def gated_model(channels, blocks=4, levels=3, classes=0, seed=0, device="cpu", filters=6, wiring_only=False,
                dtype="float64"):
    """A small gated model with random weights. ``wiring_only``: the head's ReLUs
    switched off, so that which input reaches which output depends on the wiring
    alone, never on a ReLU that happens to be closed for this input."""
    cfg = PixelCNNConfig(height=SIZE, width=SIZE, channels=channels, levels=levels, filters=filters, blocks=blocks,
                         input_kernel=3, arch="gated", classes=classes)
    model = build_model(cfg, seed=seed, dtype=dtype, device=device)
    rng = np.random.default_rng(seed + 1)
    for p in model.parameters().values():
        # Non-zero biases and class biases, larger weights: every dependency is visible.
        p += model.xp.asarray(0.3 * rng.standard_normal(p.shape), dtype=p.dtype) * (p != 0 if p.ndim == 4 else 1)
    if wiring_only:
        model.head.relu = False
        model.relu.forward = lambda x: x
    return model


def sees_every_earlier_sub_pixel(depends):
    n = depends.shape[0]
    return [k for k in range(n) if not depends[k, :k].all()]


@pytest.mark.parametrize("channels", [1, 3])
def test_gated_logits_depend_only_on_earlier_sub_pixels_and_on_all_of_them(channels):
    model = gated_model(channels, wiring_only=True)
    depends = dependency_matrix(model, SIZE, SIZE, channels)
    violations, _ = check_order(depends)
    assert len(violations) == 0, f"outputs that see their own or later inputs: {violations[:5].tolist()}"
    # Five layers reach across the whole 5x5 image: no blind spot means every
    # sub-pixel depends on every sub-pixel before it.
    assert sees_every_earlier_sub_pixel(depends) == []


def test_the_masked_pixelcnn_has_a_blind_spot():
    # The same test on the PixelCNN of the first paper, whose kernels reach as
    # far (3x3 input, 4 blocks with 3x3): outputs miss the pixels up and to the right.
    cfg = PixelCNNConfig(height=SIZE, width=SIZE, channels=1, levels=3, filters=8, blocks=4, input_kernel=3)
    model = PixelCNN(cfg, seed=0, dtype="float64")
    for layer in model.layers():  # ReLUs off: the wiring alone decides what is seen
        if hasattr(layer, "relu"):
            layer.relu = False
        if type(layer).__name__ == "ReLU":
            layer.forward = lambda x: x
    depends = dependency_matrix(model, SIZE, SIZE, 1)
    assert len(check_order(depends)[0]) == 0
    missed = sees_every_earlier_sub_pixel(depends)
    assert len(missed) > 0
    k = lambda i, j: i * SIZE + j
    assert not depends[k(2, 0), k(1, 2)]  # one row up, two to the right: the blind spot


def test_a_residual_in_the_first_layer_is_caught(monkeypatch):
    # h' = h + out in the first layer adds the image itself: each sub-pixel sees itself.
    model = gated_model(1, wiring_only=True)
    model.stack[0].first = False
    violations, _ = check_order(dependency_matrix(model, SIZE, SIZE, 1))
    assert len(violations) > 0


def test_an_unshifted_vertical_stack_is_caught():
    # Without the shift, the link brings the current row (pixels to the right included) into h.
    model = gated_model(1, wiring_only=True)
    for layer in model.stack:
        layer.shift.forward = lambda x: x
    violations, _ = check_order(dependency_matrix(model, SIZE, SIZE, 1))
    assert len(violations) > 0


def test_a_wrong_gate_backward_is_caught(monkeypatch):
    original = Gate.backward

    def half_wrong(self, dy):
        dx = original(self, dy)
        dx[..., 1::2] *= 1.01  # the sigmoid half, a little off
        return dx

    monkeypatch.setattr(Gate, "backward", half_wrong)
    assert dict(gradcheck.cases())["gated unit tanh * sigmoid"]()["x"] > 1e-4


def logits_at(model, x, y=None):
    """The logits of every sub-pixel of x (n, H, W, C) from ``forward_at``, in raster order, (n, H, W, C, levels)."""
    n, H, W, C = x.shape
    model.condition(y)
    model.start_at(n, H, W)
    canvas = model.canvas(n, H, W)
    canvas.image()[...] = model.xp.asarray(x, dtype=model.dtype)
    return np.stack([np.stack([np.stack([to_numpy(model.forward_at(canvas, i, j, c)) for c in range(C)], axis=1)
                               for j in range(W)], axis=1) for i in range(H)], axis=1)


@pytest.mark.parametrize("channels,classes,blocks", [(1, 0, 2), (3, 0, 2), (1, 4, 2), (3, 3, 2), (3, 0, 0)])
def test_gated_forward_at_equals_forward(channels, classes, blocks, device):
    # blocks 0: the first layer alone
    model = gated_model(channels, blocks=blocks, classes=classes, device=device)
    n = 3
    x = np.random.default_rng(2).random((n, SIZE, SIZE, channels))
    y = np.arange(n) % classes if classes else None
    full = to_numpy(model.forward(model.xp.asarray(x), y))
    np.testing.assert_allclose(logits_at(model, x, y), full, rtol=1e-10, atol=1e-10)


def test_gated_forward_at_computes_each_vertical_row_once(monkeypatch):
    # The vertical stack's row i - 1 is final when row i starts: each layer computes
    # it there, at the row's first sub-pixel, and nowhere else, so that over an
    # image the one-position forward is one forward pass of arithmetic.
    model = gated_model(3, blocks=2)
    rows = []
    vertical_row = GatedLayer.vertical_row
    monkeypatch.setattr(GatedLayer, "vertical_row",
                        lambda layer, canvas_v, i, canvas_next: rows.append(i) or vertical_row(layer, canvas_v, i,
                                                                                                canvas_next))
    x = np.random.default_rng(2).random((2, SIZE, SIZE, 3))
    logits_at(model, x)
    assert rows == [i for i in range(SIZE - 1) for _ in range(3)]  # rows 0 .. H - 2, once per layer


@pytest.mark.parametrize("channels,classes", [(1, 0), (3, 3)])
def test_a_float32_gated_forward_at_computes_in_float32_only(channels, classes):
    # As each layer's (test_forward_at): every array of the model's one-position
    # forward (the link's row, the h vectors, the skip sum) and every operand of
    # every op stays float32, as in training (test_strict_device).
    backend.register_device("strict", strict)
    model = gated_model(channels, blocks=1, classes=classes, device="strict", dtype="float32")
    n = 2
    x = np.random.default_rng(4).random((n, 3, 4, channels)).astype(np.float32)
    y = np.arange(n) % classes if classes else None
    full = to_numpy(model.forward(strict.asarray(x), y))
    strict.dtypes.clear()
    got = logits_at(model, x, y)
    assert strict.dtypes["float32"] > 10
    assert set(strict.dtypes) == {"float32"}, strict.dtypes
    np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels,classes", [(1, 0), (3, 0), (3, 3)])
def test_gated_cached_sampler_matches_naive(channels, classes, device):
    model = gated_model(channels, blocks=2, classes=classes, levels=4, device=device)
    y = np.array([0, 2, 1, 2, 0]) % max(classes, 1) if classes else None
    naive = sample(model, 5, seed=3, method="naive", classes=y)
    cached = sample(model, 5, seed=3, method="cached", classes=y, batch_size=2)
    assert np.array_equal(naive, cached)
    assert len(np.unique(naive)) > 1


def test_logits_depend_on_the_class():
    model = gated_model(1, blocks=1, classes=4)
    x = np.random.default_rng(0).random((2, SIZE, SIZE, 1))
    a = model.forward(x, np.array([0, 0]))
    b = model.forward(x, np.array([3, 0]))
    assert not np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])


def test_class_errors():
    model = gated_model(1, blocks=1, classes=4)
    x = np.zeros((2, SIZE, SIZE, 1))
    with pytest.raises(ValueError, match="class-conditional; give each image a class 0..3"):
        model.forward(x)
    with pytest.raises(ValueError, match=r"expected \(B,\) ints in 0..3"):
        model.forward(x, np.array([0, 4]))
    with pytest.raises(ValueError, match="not class-conditional"):
        gated_model(1, blocks=1).forward(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="needs the gated architecture"):
        PixelCNNConfig(classes=3).validate()
    with pytest.raises(ValueError, match="multiple of 3"):
        PixelCNNConfig(channels=3, filters=8, arch="gated").validate()


def test_gated_model_is_a_gated_pixelcnn():
    assert isinstance(gated_model(1, blocks=1), GatedPixelCNN)


def test_a_gated_model_names_its_input_and_takes_classes_as_a_list_or_any_array():
    backend.register_device("strict", strict)
    cfg = PixelCNNConfig(height=4, width=3, channels=3, levels=4, filters=6, blocks=1, arch="gated", classes=3)
    model = build_model(cfg, seed=1, device="strict")
    rng = np.random.default_rng(0)
    for p in model.parameters().values():  # the class biases too: they start at zero
        p += strict.asarray((0.3 * rng.standard_normal(p.shape)).astype(np.float32))
    with pytest.raises(ValueError, match=r"^GatedPixelCNN input: expected 3 channels in the last axis, "
                                         r"got shape \(2, 4, 3, 1\)"):
        model.forward(strict.zeros((2, 4, 3, 1), np.float32), [0, 2])
    x = strict.asarray(rng.random((2, 4, 3, 3)).astype(np.float32))
    # a device array is copied to the host explicitly (the stand-in refuses an implicit copy)
    logits = [model.forward(x, classes).get() for classes in ([0, 2], np.array([0, 2]), strict.asarray([0, 2]))]
    for other in logits[1:]:
        np.testing.assert_array_equal(other, logits[0])
    assert not np.array_equal(model.forward(x, [1, 1]).get(), logits[0])  # the classes count


def test_the_first_layer_computes_the_gradient_of_the_image_only_when_asked():
    """Training needs no gradient of its images: neither stack of the first layer computes one."""
    model = gated_model(1, blocks=1)
    x = np.random.default_rng(0).random((2, SIZE, SIZE, 1))
    for asked in (None, True, False):  # None: as built, for training
        if asked is not None:
            model.input_grad = asked
        model.forward(x)
        first = model.stack[0]
        dv_dh = first.backward((None, None, np.ones((2, SIZE, SIZE, 6))))
        assert [d is not None for d in dv_dh] == [bool(asked)] * 2 and model.input_grad == bool(asked)
        assert (model.backward(np.ones((2, SIZE, SIZE, 1, 3))) is not None) == bool(asked)
