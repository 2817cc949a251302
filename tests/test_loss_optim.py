"""Softmax cross-entropy values, bits/dim arithmetic, Adam and SGD updates."""
import math

import numpy as np
import pytest

from minipixel.losses import bits_per_dim, nll_per_image, softmax_cross_entropy
from minipixel.optim import SGD, Adam, Average
from minipixel import evaluate as evaluate_module


def test_loss_value_against_a_direct_computation():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 2, 2, 1, 4))
    labels = rng.integers(0, 4, (3, 2, 2, 1))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    nll = -np.log(np.take_along_axis(p, labels[..., None], -1))[..., 0]
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(nll.sum() / 3, rel=1e-12)
    np.testing.assert_allclose(nll_per_image(logits, labels), nll.reshape(3, -1).sum(1), rtol=1e-12)
    assert dlogits.shape == logits.shape
    np.testing.assert_allclose(dlogits.sum(-1), 0, atol=1e-12)  # softmax minus one-hot sums to 0


def test_uniform_logits_cost_log_levels_per_sub_pixel():
    logits = np.zeros((2, 3, 3, 3, 256), np.float32)
    labels = np.zeros((2, 3, 3, 3), np.uint8)
    loss, _ = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(27 * math.log(256), rel=1e-6)
    assert bits_per_dim(loss, 27) == pytest.approx(8.0, rel=1e-6)  # 256 equally likely values: 8 bits


def test_bits_per_dim_by_hand():
    # 80 nats over a 28x28 grey image: 80 / (784 * ln 2) bits per sub-pixel
    assert bits_per_dim(80.0, 784) == pytest.approx(80.0 / 784 / 0.6931471805599453)


def test_loss_is_stable_for_huge_logits():
    logits = np.array([[[[[1e4, -1e4]]]]], np.float32)
    loss, d = softmax_cross_entropy(logits, np.array([[[[1]]]]))
    assert loss == pytest.approx(2e4, rel=1e-6) and np.isfinite(d).all()
    # each sub-pixel is shifted by its own largest logit: two images whose logits lie
    # 1e4 apart, the far one at the label, lose log(1 + e^-1) and nothing
    logits = np.array([[[[[0.0, -1.0]]]], [[[[1e4, 0.0]]]]], np.float32)
    loss, d = softmax_cross_entropy(logits, np.array([[[[0]]], [[[0]]]]))
    assert loss == pytest.approx(np.log1p(np.exp(-1.0)) / 2, rel=1e-6) and np.isfinite(d).all()


def test_evaluation_nll_is_stable_for_huge_logits():
    # The evaluation path (nll_per_image, and a model's nll in parallel parts) with logits
    # in the thousands: finite, and equal to the exact value (the gap between the logits).
    from minipixel.losses import nll_per_image
    from minipixel.model import PixelCNN, PixelCNNConfig

    logits = np.array([[[[[3e3, -2e3, 1e3]]]], [[[[-5e3, 4e3, 0.0]]]]], np.float32)
    got = nll_per_image(logits, np.array([[[[2]]], [[[1]]]]))
    assert np.isfinite(got).all() and got.tolist() == pytest.approx([2e3, 0.0], abs=1e-3)
    model = PixelCNN(PixelCNNConfig(height=3, width=3, filters=4, blocks=1, levels=3))
    model.conv_out.params["W"][...] *= 0
    model.conv_out.params["b"][...] = np.array([4e3, -4e3, 0.0])  # every sub-pixel: level 0 by 4000 nats
    labels = np.zeros((5, 3, 3, 1), np.int64)
    labels[0, 1, 1, 0] = 1  # one sub-pixel of image 0 is the improbable level: 8000 nats
    nll = evaluate_module.nll(model, np.zeros((5, 3, 3, 1), np.float32), labels)
    assert np.isfinite(nll).all() and nll.tolist() == pytest.approx([8e3, 0, 0, 0, 0], abs=1e-2)


def test_loss_bad_inputs():
    logits = np.zeros((2, 4, 4, 1, 3))
    with pytest.raises(ValueError, match=r"expected shape \(2, 4, 4, 1\).*got \(2, 4, 4\)"):
        softmax_cross_entropy(logits, np.zeros((2, 4, 4), int))
    bad = np.zeros((2, 4, 4, 1), int)
    bad[1, 2, 3, 0] = 3
    with pytest.raises(ValueError, match=r"values in 0..2 \(levels=3\), got min 0, max 3"):
        softmax_cross_entropy(logits, bad)
    with pytest.raises(ValueError, match="integer dtype, got float64"):
        softmax_cross_entropy(logits, np.zeros((2, 4, 4, 1)))


def test_logits_of_just_a_batch_and_levels_work_and_fewer_axes_are_refused():
    # (B, levels) logits with (B,) labels: one sub-pixel per image, the smallest
    # "(B, ..., levels)" shape. One axis has no levels to choose from: refused.
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    nll = -np.log(p[np.arange(4), labels])
    np.testing.assert_allclose(nll_per_image(logits, labels), nll, rtol=1e-12)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(nll.mean(), rel=1e-12)
    np.testing.assert_allclose(dlogits, (p - np.eye(3)[labels]) / 4, atol=1e-15)
    for function in (nll_per_image, softmax_cross_entropy):
        with pytest.raises(ValueError, match=r"^logits: expected \(B, ..., levels\), got shape \(3,\)$"):
            function(np.zeros(3), np.zeros((), int))


def test_nll_per_image_runs_on_numpy_whose_take_along_axis_needs_the_axis(monkeypatch):
    # setup.py allows NumPy >= 1.22: before 2.3 take_along_axis has no default axis
    # (nor has CuPy's). Evaluation must name it.
    real = np.take_along_axis
    monkeypatch.setattr(np, "take_along_axis", lambda arr, indices, axis: real(arr, indices, axis))
    rng = np.random.default_rng(2)
    logits, labels = rng.standard_normal((3, 2, 2, 1, 4)), rng.integers(0, 4, (3, 2, 2, 1))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    want = -np.log(np.take_along_axis(p, labels[..., None], axis=-1)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(nll_per_image(logits, labels), want, rtol=1e-12)


def test_adam_first_steps_by_hand():
    p = np.array([1.0, -2.0])
    opt = Adam({"p": p}, lr=0.1)
    g = np.array([0.5, -4.0])
    opt.step({"p": g})
    # After one step m_hat = g and v_hat = g^2, so each entry moves by lr * sign(g).
    np.testing.assert_allclose(p, [0.9, -1.9], rtol=1e-6)
    after_one = p.copy()
    opt.step({"p": g})
    m = 0.9 * 0.1 * g + 0.1 * g
    v = 0.999 * 0.001 * g**2 + 0.001 * g**2
    step2 = 0.1 * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(p, after_one - step2, rtol=1e-12)


def test_sgd_with_momentum_by_hand_and_its_state_round_trip():
    from minipixel.optim import SGD

    p = np.array([1.0, -1.0])
    opt = SGD({"p": p}, lr=0.1, momentum=0.5)
    opt.step({"p": np.array([1.0, 2.0])})  # v = g; p -= lr v
    opt.step({"p": np.array([1.0, 2.0])})  # v = 0.5 g + g
    np.testing.assert_allclose(p, [1.0 - 0.1 - 0.15, -1.0 - 0.2 - 0.3], rtol=1e-12)
    assert opt.t == 2 and opt.current_lr() == 0.1
    state = opt.state_dict()
    q = p.copy()
    other = SGD({"p": q}, lr=0.1, momentum=0.5)
    other.load_state_dict(state)
    assert other.t == 2 and np.array_equal(other.v["p"], [1.5, 3.0])
    opt.step({"p": np.zeros(2)})
    other.step({"p": np.zeros(2)})  # the momentum alone carries both the same way
    assert np.array_equal(p, q)
    with pytest.raises(ValueError, match="lr must be positive"):
        SGD({"p": p}, lr=0)


def test_adam_decay_and_state_round_trip():
    p = np.zeros(3)
    opt = Adam({"p": p}, lr=1.0, decay=0.5)
    for _ in range(3):
        opt.step({"p": np.ones(3)})
    assert opt.current_lr() == pytest.approx(0.25)
    q = np.zeros(3)
    opt2 = Adam({"p": q}, lr=1.0, decay=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.t == 3
    np.testing.assert_array_equal(opt2.m["p"], opt.m["p"])
    with pytest.raises(ValueError, match=r"^optimizer state m/p: expected shape \(4,\), got \(3,\)$"):
        Adam({"p": np.zeros(4)}).load_state_dict(opt.state_dict())


def test_sgd_defaults_are_lr_0_01_without_momentum():
    p = np.array([1.0, -1.0])
    opt = SGD({"p": p})
    assert opt.current_lr() == 0.01
    g = np.array([1.0, 2.0])
    opt.step({"p": g})
    np.testing.assert_allclose(p, [0.99, -1.02], rtol=1e-15)
    opt.step({"p": g})  # no momentum: the same step again, not 2 g
    np.testing.assert_allclose(p, [0.98, -1.04], rtol=1e-15)
    opt.step({"p": np.zeros(2)})  # and nothing carries over
    np.testing.assert_allclose(p, [0.98, -1.04], rtol=1e-15)


def test_adam_defaults_to_lr_1e_3_and_refuses_lr_and_decay_out_of_range():
    p = np.array([1.0, -1.0])
    opt = Adam({"p": p})
    assert opt.current_lr() == 1e-3
    opt.step({"p": np.array([3.0, -0.5])})  # Adam's first step moves each weight by about lr
    np.testing.assert_allclose(p, [1.0 - 1e-3, -1.0 + 1e-3], rtol=1e-7)
    for lr in (0, 0.0, -1e-3):
        with pytest.raises(ValueError, match=f"lr must be positive, got {lr}"):
            Adam({"p": p}, lr=lr)
    for decay in (0, 0.0, 1.5, 2.0, -0.5):
        with pytest.raises(ValueError, match=r"decay must be in \(0, 1\]"):
            Adam({"p": p}, decay=decay)
    Adam({"p": p}, decay=1.0)  # no decay: allowed, and so is any decay just above 0
    Adam({"p": p}, decay=1e-12)


def test_a_new_rate_in_the_middle_of_training_is_refused_at_zero_and_at_infinity():
    opt = Adam({"p": np.array([1.0])}, lr=0.1)
    for lr in (0.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=f"lr must be positive and finite, got {lr}"):
            opt.set_lr(lr)
    assert opt.current_lr() == 0.1
    opt.set_lr(1e-300)  # any rate above 0 is taken
    assert opt.current_lr() == 1e-300


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1, momentum=0.5), lambda p: Adam(p, lr=0.1)],
                         ids=["sgd", "adam"])
def test_optimizer_state_round_trip_on_every_device(make, device):
    # Built, stepped and restored on the device: the state (NumPy on the host) goes back
    # to the device, where a host array in a device array is refused.
    from minipixel.backend import get_xp, to_numpy

    xp = get_xp(device)
    start = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -3.0]], np.float32)
    grads = [np.full((2, 3), v, np.float32) for v in (1.0, -2.0, 0.5)]
    p, q = xp.asarray(start.copy()), xp.asarray(start.copy())  # NumPy's asarray would not copy
    opt, ref = make({"p": p}), make({"p": start.copy()})
    for g in grads[:2]:
        opt.step({"p": xp.asarray(g)})
        ref.step({"p": g})
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for k, v in state.items() if k != "t")
    other = make({"p": q})
    q[...] = p
    other.load_state_dict(state)
    assert other.t == 2
    opt.step({"p": xp.asarray(grads[2])})
    other.step({"p": xp.asarray(grads[2])})
    ref.step({"p": grads[2]})
    assert to_numpy(p).dtype == np.float32 and to_numpy(q).dtype == np.float32
    np.testing.assert_array_equal(to_numpy(q), to_numpy(p))
    np.testing.assert_allclose(to_numpy(p), ref.params["p"], rtol=1e-6)


def test_adam_state_with_a_missing_entry_is_refused():
    state = Adam({"w": np.zeros(3), "b": np.zeros(2)}).state_dict()
    del state["v/b"]
    with pytest.raises(ValueError, match=r"^optimizer state v/b: expected shape \(2,\), got None$"):
        Adam({"w": np.zeros(3), "b": np.zeros(2)}).load_state_dict(state)


def test_adam_and_sgd_minimise_a_quadratic():
    for make in (lambda p: Adam(p, lr=0.05), lambda p: SGD(p, lr=0.1, momentum=0.5)):
        x = np.array([3.0, -2.0])
        opt = make({"x": x})
        for _ in range(500):
            opt.step({"x": 2 * x})  # gradient of |x|^2
        assert np.abs(x).max() < 1e-2


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_adam_on_the_packed_flat_arrays_equals_adam_per_parameter(arch):
    # A model keeps its parameters (and gradients) as views of one flat array;
    # Adam(flat=model.packed) updates that array in one pass. Same numbers, bit
    # for bit, as the update parameter by parameter, and the same saved state.
    from minipixel.model import PixelCNNConfig, build_model

    cfg = PixelCNNConfig(height=4, width=4, filters=6, blocks=1, input_kernel=3, arch=arch)
    rng = np.random.default_rng(0)
    models = [build_model(cfg, seed=1) for _ in range(2)]
    flat_params, flat_grads = models[0].packed
    for name, p in models[0].parameters().items():
        assert np.shares_memory(p, flat_params), name
    optimizers = [Adam(models[0].parameters(), lr=0.01, decay=0.99, flat=models[0].packed),
                  Adam(models[1].parameters(), lr=0.01, decay=0.99)]
    for _ in range(3):
        grads = {name: rng.standard_normal(g.shape).astype(np.float32) for name, g in models[0].gradients().items()}
        for model, optimizer in zip(models, optimizers):
            for name, g in model.gradients().items():
                g[...] = grads[name]
            optimizer.step(model.gradients())
    for name, p in models[0].parameters().items():
        np.testing.assert_array_equal(p, models[1].parameters()[name], err_msg=name)
    states = [optimizer.state_dict() for optimizer in optimizers]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        np.testing.assert_array_equal(states[0][key], states[1][key], err_msg=key)
    with pytest.raises(ValueError, match="flat: expected arrays of"):
        Adam(models[0].parameters(), flat=(flat_params[:-1], flat_grads[:-1]))


def _averaged_by_hand(values, decay):
    """The Polyak average of the parameter values after each of ``len(values) - 1``
    updates, in float64 from the definition: a_0 = values[0], then with
    d_t = min(decay, (1 + t) / (10 + t)), a_{t+1} = d_t a_t + (1 - d_t) values[t + 1]."""
    a = np.array(values[0], dtype=np.float64)
    for t, value in enumerate(values[1:]):
        d = min(decay, (1 + t) / (10 + t))
        a = d * a + (1 - d) * np.asarray(value, dtype=np.float64)
    return a


@pytest.mark.parametrize("flat", [False, True])
def test_the_polyak_average_follows_its_definition_with_warm_up(flat):
    rng = np.random.default_rng(0)
    if flat:  # two parameters that are views of one flat array, as model.packed gives
        storage = np.zeros(7, np.float32)
        params = {"a": storage[:3], "b": storage[3:].reshape(2, 2)}
        average = Average(params, 0.9, flat=(storage, None))
    else:
        params = {"a": np.zeros(3, np.float32), "b": np.zeros((2, 2), np.float32)}
        average = Average(params, 0.9)
    seen = {k: [p.copy()] for k, p in params.items()}
    for _ in range(40):  # within the warm-up ((1 + t) / (10 + t) < 0.9 up to t = 80); the cap: the next test
        for k, p in params.items():
            p[...] = rng.normal(size=p.shape)
            seen[k].append(p.copy())
        average.update()
    for k in params:
        assert average.average[k].dtype == np.float32
        np.testing.assert_allclose(average.average[k], _averaged_by_hand(seen[k], 0.9), rtol=1e-5, atol=1e-6)
    assert average.t == 40


def test_the_average_decay_caps_the_warm_up():
    values = list(np.random.default_rng(1).normal(size=(60, 1)))
    average = Average({"p": values[0].copy()}, 0.5)
    p = average.params["p"]
    for value in values[1:]:
        p[...] = value
        average.update()
    # the warm-up's (1 + t) / (10 + t) rules up to t = 8, the cap 0.5 from t = 9 on
    np.testing.assert_allclose(average.average["p"], _averaged_by_hand(values, 0.5), rtol=1e-12)
    assert abs(_averaged_by_hand(values, 0.5) - _averaged_by_hand(values, 0.999)) > 1e-2  # and it matters


def test_the_average_is_swapped_in_and_out_exactly_even_on_an_error():
    p = np.array([1.0, 2.0])
    average = Average({"p": p}, 0.99)
    p[...] = [5.0, 6.0]
    average.update()  # a = 0.1 * [1, 2] + 0.9 * [5, 6]
    expected = 0.1 * np.array([1.0, 2.0]) + 0.9 * np.array([5.0, 6.0])
    with average.swapped_in():
        np.testing.assert_allclose(p, expected, rtol=1e-15)
    np.testing.assert_array_equal(p, [5.0, 6.0])
    with pytest.raises(RuntimeError):
        with average.swapped_in():
            raise RuntimeError
    np.testing.assert_array_equal(p, [5.0, 6.0])
    np.testing.assert_allclose(average.average["p"], expected, rtol=1e-15)  # the average is untouched by a swap


def test_the_average_state_round_trips_and_refuses_a_wrong_shape():
    p = np.array([1.0, 2.0, 3.0])
    average = Average({"p": p}, 0.99)
    p += 1
    average.update()
    other = Average({"p": np.zeros(3)}, 0.99)
    other.load_state_dict(average.state_dict())
    assert other.t == 1 and np.array_equal(other.average["p"], average.average["p"])
    with pytest.raises(ValueError, match=r"average state average/p: expected shape \(4,\), got \(3,\)"):
        Average({"p": np.zeros(4)}, 0.99).load_state_dict(average.state_dict())
    for decay in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
            Average({"p": p}, decay)
