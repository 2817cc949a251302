"""The fused kernels (``minipixel.fused``) against what they say they compute.

On the CPU and the stand-in their NumPy twins run; on a GPU (the "gpu" case,
skipped without one) the CUDA kernels do, so these tests are what holds the
kernels to their twins there.
"""
import threading

import numpy as np
import pytest

from minipixel import fused
from minipixel.backend import get_xp, to_numpy
from minipixel.sampling import draw
from minipixel.testing import strict


@pytest.mark.parametrize("relu_in,relu,with_residual", [(False, False, False), (True, False, False),
                                                       (False, True, True), (True, True, True)])
@pytest.mark.parametrize("bias_rows", ["shared", "per image", "broadcast"])
def test_dense_is_the_layer_at_one_position(relu_in, relu, with_residual, bias_rows, device):
    xp = get_xp(device)
    rng = np.random.default_rng(3)
    n, K, O = 5, 11, 7
    x = rng.standard_normal((n, K + 4))[:, 2 : K + 2]  # a strided window, as a k x k layer reads its canvas
    W = rng.standard_normal((K, O))
    b = rng.standard_normal(O)
    bias = {"shared": b, "per image": rng.standard_normal((n, O)), "broadcast": np.broadcast_to(b, (n, O))}[bias_rows]
    residual = rng.standard_normal((n, O)) if with_residual else None
    big = rng.standard_normal((n, O + 3))  # the output goes into columns 1 .. O of a wider array
    d = lambda a: None if a is None else xp.asarray(np.ascontiguousarray(a))  # noqa: E731
    d_x = d(np.pad(x, ((0, 0), (2, 2))))[:, 2 : K + 2]
    d_bias = xp.broadcast_to(d(b), (n, O)) if bias_rows == "broadcast" else d(bias)
    d_big = d(big)
    result = fused.dense(d_x, d(W), d_bias, d_big[:, 1 : O + 1], relu_in=relu_in, relu=relu, residual=d(residual))

    expected = (np.maximum(x, 0) if relu_in else x) @ W + bias + (0 if residual is None else residual)
    expected = np.maximum(expected, 0) if relu else expected
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-12, atol=1e-12)
    got = to_numpy(d_big)
    np.testing.assert_allclose(got[:, 1 : O + 1], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[:, [0, O + 1, O + 2]], big[:, [0, O + 1, O + 2]])  # nothing else written


@pytest.mark.parametrize("levels", [2, 4, 256])
@pytest.mark.parametrize("temperature", [0.0, 0.6, 1.0, 1.7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_draw_into_draws_and_writes_the_label_and_the_input_value(levels, temperature, dtype, device):
    xp = get_xp(device)
    rng = np.random.default_rng(levels)
    n = 300
    logits = (3 * rng.standard_normal((n, levels + 2))).astype(dtype)[:, 1 : levels + 1]  # strided rows
    u = rng.random(n)
    u[:20] = 1.0  # the edge of draw()'s guard: u * total == total, clipped to the top level
    labels = np.full((n, 3), 7, np.uint8)  # the sampler writes one column of (n, H, W, C) arrays
    inputs = np.full((n, 2), -1.0, dtype)
    d_labels, d_inputs = xp.asarray(labels), xp.asarray(inputs)
    fused.draw_into(xp.asarray(np.ascontiguousarray(logits)), xp.asarray(u), temperature, d_labels[:, 1],
                    d_inputs[:, 0])

    expected = draw(logits, u, temperature)
    got_labels, got_inputs = to_numpy(d_labels), to_numpy(d_inputs)
    np.testing.assert_array_equal(got_labels[:, 1], expected)
    assert len(set(expected)) > 1  # the draws are not all one level
    np.testing.assert_array_equal(got_inputs[:, 0], (expected.astype(dtype) / dtype(levels - 1)))
    np.testing.assert_array_equal(got_labels[:, [0, 2]], 7)  # nothing else written
    np.testing.assert_array_equal(got_inputs[:, 1], -1.0)


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_draw_into_takes_logits_whose_exponentials_overflow(temperature, device):
    # draw() takes each row's maximum off before exp(): logits / temperature far past
    # exp's float64 range (about 709) still give the draws of a softmax, as the twin must.
    xp = get_xp(device)
    rng = np.random.default_rng(5)
    n, levels = 200, 6
    logits = 800 * rng.standard_normal((n, levels))
    logits[:, 2] = 1500.0  # level 2 dominates in most rows
    u = rng.random(n)
    labels, inputs = xp.zeros(n, dtype=np.uint8), xp.zeros(n)
    fused.draw_into(xp.asarray(logits), xp.asarray(u), temperature, labels, inputs)

    expected = draw(logits, u, temperature)
    assert np.mean(expected == 2) > 0.5 and len(set(expected)) > 1
    np.testing.assert_array_equal(to_numpy(labels), expected)
    np.testing.assert_array_equal(to_numpy(inputs), expected / (levels - 1))


@pytest.mark.parametrize("wrong", ["labels", "u", "inputs"])
def test_draw_into_refuses_the_types_its_cuda_kernel_cannot_take_on_every_device(wrong, device):
    # The CUDA kernel reads uint8 labels, float64 u and inputs of the logits' dtype;
    # the NumPy twin would take others, so the check comes first, on every device.
    xp = get_xp(device)
    logits, u = xp.zeros((4, 2), dtype=np.float32), xp.full(4, 0.5)
    labels, inputs = xp.zeros(4, dtype=np.uint8), xp.zeros(4, dtype=np.float32)
    args = dict(labels=labels, u=u, inputs=inputs)
    args[wrong] = xp.zeros(4, dtype=np.float64 if wrong != "u" else np.float32)
    with pytest.raises(TypeError, match=r"^fused draw: expected uint8 labels, float64 u and inputs of the logits' dtype"):
        fused.draw_into(logits, args["u"], 1.0, args["labels"], args["inputs"])
    fused.draw_into(logits, u, 1.0, labels, inputs)  # the right types: drawn
    assert to_numpy(inputs).tolist() == to_numpy(labels).astype(float).tolist()


def test_the_stand_in_counts_a_fused_kernel_as_one_launch_and_refuses_host_arrays():
    x, W, b = strict.ones((4, 3)), strict.ones((3, 2)), strict.zeros(2)
    out, residual = strict.empty((4, 2)), strict.ones((4, 2))
    strict.counts.clear()
    fused.dense(x, W, b, out, relu_in=True, relu=True, residual=residual)
    assert strict.launches() == 1 and strict.counts["dense"] == 1
    np.testing.assert_array_equal(out.get(), 4.0)
    with pytest.raises(TypeError, match="host"):
        fused.dense(x, np.ones((3, 2)), b, out)  # a NumPy weight matrix on the "device"


def test_the_stand_in_counts_a_fused_draw_as_one_launch():
    logits = strict.asarray(np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]], np.float32))
    u = strict.asarray(np.array([0.0, 1.0]))  # the lowest level, and the top one
    labels, inputs = strict.zeros(2, dtype=np.uint8), strict.zeros(2, dtype=np.float32)
    strict.counts.clear()
    fused.draw_into(logits, u, 1.0, labels, inputs)
    assert strict.launches() == 1 and strict.counts["draw_into"] == 1
    np.testing.assert_array_equal(labels.get(), [0, 2])
    np.testing.assert_array_equal(inputs.get(), [0.0, 1.0])


def test_the_twin_keeps_its_buffers_per_shape_and_thread():
    # The CPU sampler calls the twin once per sub-pixel: its temporaries are allocated
    # once per (images, levels) and thread, and reused while that shape lasts.
    first = fused._draw_buffers(3, 5)
    assert [a.shape for a in first] == [(3, 5), (3, 5), (3, 1), (3, 4)]
    assert all(a is b for a, b in zip(fused._draw_buffers(3, 5), first))  # the same shape: the same arrays
    other = fused._draw_buffers(2, 5)
    assert [a.shape for a in other] == [(2, 5), (2, 5), (2, 1), (2, 4)]
    in_thread = []
    thread = threading.Thread(target=lambda: in_thread.extend(fused._draw_buffers(2, 5)))
    thread.start()
    thread.join()
    assert not any(np.shares_memory(a, b) for a in in_thread for b in other)  # another thread: its own
    assert all(a is b for a, b in zip(fused._draw_buffers(2, 5), other))
