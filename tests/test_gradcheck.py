"""Every backward pass against central differences, float64, max relative error < 1e-6."""
import numpy as np
import pytest

from minipixel import gradcheck
from minipixel.conv import MaskedConv2d
from minipixel.gated import GatedLayer
from minipixel.layers import ReLU
from minipixel.masks import conv_mask

# The names only: each test builds its case when it runs, so that a mutation test's mutant
# of gradcheck.cases (applied as the test runs, after collection) is the code that runs.
NAMES = [name for name, _ in gradcheck.cases()]


def _run(name):
    return dict(gradcheck.cases())[name]()


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_central_differences(name):
    errors = _run(name)
    worst = max(errors, key=errors.get)
    assert errors[worst] < gradcheck.TOLERANCE, f"{name}: {worst} has relative error {errors[worst]:.2e}"


def test_cases_cover_every_op():
    names = " ".join(name for name, _ in gradcheck.cases())
    for op in ("mask A", "mask B", "RGB groups", "relu", "residual block", "softmax cross-entropy", "model"):
        assert op in names
    for k in (1, 3, 5, 7):
        assert f"conv {k}x{k}" in names


# The checks must be able to fail: break a backward pass on purpose and watch them go red.


def test_a_wrong_weight_gradient_is_caught(monkeypatch):
    original = MaskedConv2d.backward

    def off_by_a_bit(self, dy):
        dx = original(self, dy)
        self.grads["W"] *= 1.001
        return dx

    monkeypatch.setattr(MaskedConv2d, "backward", off_by_a_bit)
    errors = _run("conv 3x3 mask B, C=1")
    assert errors["W"] > 1e-4 and errors["x"] < gradcheck.TOLERANCE


def test_a_forgotten_mask_in_the_weight_gradient_is_caught(monkeypatch):
    # Drop the colour mask from dW: the partially live centre tap gets gradient where it should have none.
    original = MaskedConv2d.backward

    def unmasked(self, dy):
        live_mask, self.live_mask = self.live_mask, None
        try:
            return original(self, dy)
        finally:
            self.live_mask = live_mask

    monkeypatch.setattr(MaskedConv2d, "backward", unmasked)
    assert _run("conv 3x3 mask A, RGB groups")["W"] > 1e-2


def test_a_wrong_relu_backward_is_caught(monkeypatch):
    monkeypatch.setattr(ReLU, "backward", lambda self, dy: dy * (self.y >= 0))  # passes gradient where y == 0
    assert _run("residual block (half), C=1")["x"] > 1e-3


def test_a_wrong_input_gradient_in_the_model_is_caught(monkeypatch):
    original = MaskedConv2d.backward

    def transposed_taps(self, dy):
        dx = original(self, dy)
        if dx is not None and self.kernel == 3:
            dx = dx[:, ::-1]  # as if col2im had sent gradients to the wrong rows
        return dx

    monkeypatch.setattr(MaskedConv2d, "backward", transposed_taps)
    errors = _run("model, C=1, 2 levels")
    assert max(errors.values()) > 1e-2


def test_table_format():
    rows = [("op one", 1e-9, True), ("a longer op", 0.5, False)]
    assert gradcheck.format_table(rows).splitlines() == [
        "op           max rel error  result",
        "-----------  -------------  ------",
        "op one            1.00e-09  pass",
        "a longer op       5.00e-01  FAIL",
        "1 of 2 passed (float64, central differences, tolerance 1e-06)",
    ]
    assert gradcheck.format_table(rows[:1], tolerance=1e-3).endswith("\n1 of 1 passed (float64, central differences, "
                                                                     "tolerance 0.001)")


def test_run_all_runs_the_cases_on_the_cpu_and_fails_an_error_at_the_tolerance(monkeypatch):
    asked = []
    fake_cases = [("exact", lambda: {"x": 0.0, "W": 1e-9}),
                  ("at the tolerance", lambda: {"x": gradcheck.TOLERANCE}),
                  ("wrong", lambda: {"x": 1e-9, "b": 0.5})]
    monkeypatch.setattr(gradcheck, "cases", lambda device: asked.append(device) or fake_cases)
    assert gradcheck.run_all() == [("exact", 1e-9, True), ("at the tolerance", gradcheck.TOLERANCE, False),
                                   ("wrong", 0.5, False)]
    assert asked == ["cpu"]  # the default device
    assert [passed for _, _, passed in gradcheck.run_all(tolerance=1.0, device="gpu")] == [True, True, True]
    assert asked == ["cpu", "gpu"]


def reference_conv_inputs():
    """x, W (masked), b and the mask of a small 3x3 mask-B convolution, float64."""
    rng = np.random.default_rng(1)
    mask = conv_mask(3, 2, 3, "B", 1)
    return rng.standard_normal((2, 4, 4, 2)), rng.standard_normal(mask.shape) * mask, rng.standard_normal(3), mask


def test_reference_conv_check_reports_x_W_b_reproducibly():
    x, W, b, mask = reference_conv_inputs()
    errors = gradcheck.check_reference_conv(x, W, b, mask)
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < gradcheck.TOLERANCE
    # The output gradient dy is drawn from the seed, 0 unless told: the same numbers every run.
    assert gradcheck.check_reference_conv(x, W, b, mask, seed=0) == errors
    assert gradcheck.check_reference_conv(x, W, b, mask, seed=1) != errors


def test_reference_conv_check_uses_the_step_given():
    # f is linear in x, in W and in b, so a central difference is exact at any step but
    # for the round-off of f divided by the step: about 1e-10 at the default 1e-5,
    # about 1e-14 at a step of 1.
    x, W, b, mask = reference_conv_inputs()
    errors = gradcheck.check_reference_conv(x, W, b, mask, h=1.0)
    assert all(error < 1e-12 for error in errors.values()), errors


def test_fast_conv_comparison_reports_y_x_W_b_reproducibly():
    rng = np.random.default_rng(2)
    layer = MaskedConv2d(3, 5, 5, "A", colors=3, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(5)
    x = rng.standard_normal((2, 6, 6, 3))
    errors = gradcheck.compare_with_reference(layer, x)
    assert set(errors) == {"y", "x", "W", "b"} and max(errors.values()) < gradcheck.TOLERANCE
    assert gradcheck.compare_with_reference(layer, x, seed=0) == errors  # dy from seed 0 unless told
    assert gradcheck.compare_with_reference(layer, x, seed=1) != errors


def test_loss_check_reports_the_logits_and_uses_the_step_given():
    rng = np.random.default_rng(3)
    logits, labels = 3 * rng.standard_normal((2, 3, 3, 1, 4)), rng.integers(0, 4, (2, 3, 3, 1))
    errors = gradcheck.check_loss(logits, labels)
    assert set(errors) == {"logits"} and errors["logits"] < gradcheck.TOLERANCE
    # The loss is not linear in the logits: a coarse step gives a coarse estimate.
    assert gradcheck.check_loss(logits, labels, h=0.1)["logits"] > 1e-4


def test_relative_error_measure():
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradcheck.relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert gradcheck.relative_error(np.array([1.0]), np.array([-1.0])) == 1.0
    # an entry 1e-6 of the largest is judged at 1/100 of the largest's scale
    assert gradcheck.relative_error(np.array([1.0, 1e-6]), np.array([1.0, 2e-6])) < 1e-4


@pytest.mark.parametrize("name", ["conv 3x3 mask B + fused ReLU", "conv 7x7 mask A, RGB groups",
                                  "residual block (keras), RGB groups", "model, RGB, 4 levels"])
def test_backward_in_chunks_of_one_image(name, monkeypatch):
    # Layers work a chunk of images at a time; the cases above fit in one chunk,
    # so run some again with one image per chunk, which exercises the summing of
    # dW and db over chunks and the per-chunk col2im.
    import minipixel.conv

    monkeypatch.setattr(minipixel.conv, "chunk_rows", lambda xp: 1)
    errors = _run(name)
    assert max(errors.values()) < gradcheck.TOLERANCE


def test_a_wrong_fused_relu_backward_is_caught(monkeypatch):
    original = MaskedConv2d.backward

    def leaky(self, dy):
        y, self.y = self.y, self.y + (self.y == 0)  # pretend every output passed the ReLU
        try:
            return original(self, dy)
        finally:
            self.y = y

    monkeypatch.setattr(MaskedConv2d, "backward", leaky)
    assert max(_run("conv 3x3 mask B + fused ReLU").values()) > 1e-3


STRICT_CASES = ["conv 3x3 mask B, RGB groups", "conv 7x7 mask A = reference, C=1", "softmax cross-entropy, 7 levels",
                "gated layer, later, class bias"]


@pytest.mark.parametrize("name", STRICT_CASES)
def test_gradient_checks_on_the_gpu_stand_in(name):
    # `minipixel gradcheck --device gpu` runs the same cases with every layer on
    # the GPU; here a few of them (the stand-in is slow) on the CuPy stand-in,
    # which also proves the cases move every array to the device explicitly.
    from minipixel import backend
    from minipixel.testing import strict

    backend.register_device("strict", strict)
    errors = dict(gradcheck.cases("strict"))[name]()
    worst = max(errors, key=errors.get)
    assert errors[worst] < gradcheck.TOLERANCE, f"{name}: {worst} has relative error {errors[worst]:.2e}"


class Draws:
    """A stand-in for a NumPy Generator whose standard_normal returns the values given."""

    def __init__(self, values):
        self.values = np.array(values, dtype=np.float64)

    def standard_normal(self, shape):
        return self.values.reshape(shape).copy()


def test_inputs_are_moved_off_the_relu_kink_only_when_asked():
    drawn = np.array([0.0, 0.01, -0.01, -0.049, 0.05, -0.3, 2.0, 1e-9])
    # By default the draws are the input, entries near 0 too (no ReLU to keep clear of).
    assert gradcheck._input(Draws(drawn), (2, 4)).tolist() == drawn.reshape(2, 4).tolist()
    # away_from_zero: each entry within 0.05 of the kink at 0 is moved just past 0.05 on its own
    # side (an exact 0 to either side), much further than the step 1e-5; the others stay.
    x = gradcheck._input(Draws(drawn), (8,), away_from_zero=True)
    near, signed = np.abs(drawn) < 0.05, drawn != 0
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) >= 0.05) and np.all(np.abs(x[near]) <= 0.1)
    assert np.all(np.sign(x[near & signed]) == np.sign(drawn[near & signed]))
    assert x[~near].tolist() == drawn[~near].tolist()


def small_gated_layer(rng):
    """A first gated layer of 2 channels on a grey image, float64."""
    return GatedLayer(1, 2, 3, True, rng=rng, dtype=np.float64)


@pytest.mark.parametrize("check", ["layer", "gated layer", "loss", "reference conv"])
def test_every_central_difference_uses_the_step_given(check, monkeypatch):
    steps = []

    def spy(f, x, h=None):  # the step each array's central differences were taken with
        steps.append(h)
        return np.zeros(np.shape(x))

    monkeypatch.setattr(gradcheck, "numerical_gradient", spy)
    rng = np.random.default_rng(4)
    if check == "layer":
        gradcheck.check_layer(MaskedConv2d(2, 3, 3, "B", rng=rng, dtype=np.float64), rng.random((1, 4, 4, 2)), h=0.25)
        expected = 3  # x, W, b
    elif check == "gated layer":
        layer = small_gated_layer(rng)
        gradcheck.check_gated_layer(layer, *rng.standard_normal((2, 1, 3, 3, 1)), step=0.25)
        expected = 2 + len(list(layer.named_parameters()))  # v, h and every parameter
    elif check == "loss":
        gradcheck.check_loss(rng.standard_normal((1, 2, 2, 1, 3)), rng.integers(0, 3, (1, 2, 2, 1)), h=0.25)
        expected = 1
    else:
        gradcheck.check_reference_conv(*reference_conv_inputs(), h=0.25)
        expected = 3
    assert steps == [0.25] * expected


def test_layer_check_reports_x_and_every_parameter_reproducibly():
    rng = np.random.default_rng(5)
    layer, x = MaskedConv2d(2, 3, 3, "B", rng=rng, dtype=np.float64), rng.standard_normal((1, 4, 4, 2))
    errors = gradcheck.check_layer(layer, x)
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < gradcheck.TOLERANCE
    # The output gradient dy is drawn from the seed, 0 unless told: the same numbers every run.
    assert gradcheck.check_layer(layer, x, seed=0) == errors
    assert gradcheck.check_layer(layer, x, seed=1) != errors


def test_layer_check_hands_backward_a_gradient_of_the_layer_dtype(monkeypatch):
    # A float32 layer is checked (coarsely) as it is trained: its backward gets a float32 dy.
    original, seen = ReLU.backward, []
    monkeypatch.setattr(ReLU, "backward", lambda self, dy: seen.append(dy.dtype) or original(self, dy))
    x = np.random.default_rng(6).standard_normal((1, 2, 2, 3)).astype(np.float32)
    gradcheck.check_layer(ReLU(), x, h=1e-2)
    assert seen == [np.float32]


def test_gated_layer_check_reports_v_h_and_every_parameter_reproducibly():
    rng = np.random.default_rng(7)
    layer = small_gated_layer(rng)
    v, h = rng.standard_normal((2, 1, 3, 3, 1))
    errors = gradcheck.check_gated_layer(layer, v, h)
    assert set(errors) == {"v", "h", *(name for name, _, _ in layer.named_parameters())}
    assert max(errors.values()) < gradcheck.TOLERANCE
    # The output gradients are drawn from the seed, 0 unless told: the same numbers every run.
    assert gradcheck.check_gated_layer(layer, v, h, seed=0) == errors
    assert gradcheck.check_gated_layer(layer, v, h, seed=1) != errors


def test_check_model_of_a_class_conditional_model_uses_its_classes_and_the_step_given():
    from minipixel.gradcheck import check_model
    from minipixel.model import PixelCNNConfig, build_model

    cfg = PixelCNNConfig(height=3, width=3, channels=1, levels=2, filters=2, blocks=0, input_kernel=3,
                         arch="gated", classes=2)
    model = build_model(cfg, seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    for p in model.parameters().values():  # the class biases too: they start at zero
        p += 0.3 * rng.standard_normal(p.shape)
    x, labels = rng.random((2, 3, 3, 1)), rng.integers(0, 2, (2, 3, 3, 1))
    errors = check_model(model, x, labels, classes=np.array([0, 1]))
    assert set(errors) == {"x", *model.parameters()} and max(errors.values()) < 1e-6
    coarse = check_model(model, x, labels, h=0.5, classes=np.array([0, 1]))  # a step too big shows
    assert coarse["x"] > errors["x"] and any(coarse[name] > errors[name] for name in model.parameters())
