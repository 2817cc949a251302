"""The autoregressive property, checked exhaustively on small random models.

Sub-pixels are ordered by row, then column, then colour. The logits of
sub-pixel k must not change when any input at or after k changes, and must
change for some input before k (unless k is the very first sub-pixel).
"""
import numpy as np
import pytest

from minipixel.conv import MaskedConv2d
from minipixel.model import PixelCNN, PixelCNNConfig


def dependency_matrix(model, H, W, C, seed=0):
    """depends[k_out, k_in]: do the logits of sub-pixel k_out change when input k_in changes?
    Sub-pixel (i, j, c) has index (i * W + j) * C + c."""
    rng = np.random.default_rng(seed)
    x = rng.random((1, H, W, C))
    base = model.forward(x.copy())[0]  # (H, W, C, L)
    n = H * W * C
    depends = np.zeros((n, n), dtype=bool)
    for k_in in range(n):
        i, j, c = np.unravel_index(k_in, (H, W, C))
        x2 = x.copy()
        x2[0, i, j, c] += 1.0 + rng.random()
        changed = np.abs(model.forward(x2)[0] - base).max(axis=-1) > 1e-12  # (H, W, C)
        depends[:, k_in] = changed.reshape(n)
    return depends


def check_order(depends):
    """(violations, outputs with no earlier dependency): both empty for a correct model."""
    n = depends.shape[0]
    later = np.triu(np.ones((n, n), dtype=bool))  # k_in >= k_out
    violations = np.argwhere(depends & later)
    blind = [k for k in range(1, n) if not depends[k, :k].any()]
    return violations, blind


def random_model(channels, levels=3, seed=0):
    cfg = PixelCNNConfig(height=6, width=6, channels=channels, levels=levels, filters=12, blocks=3)
    model = PixelCNN(cfg, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed + 1)
    for p in model.parameters().values():
        p += 0.1 * rng.standard_normal(p.shape) * (p != 0)
    for name, p in model.parameters().items():
        if name.endswith(".b"):
            p += 0.1  # positive biases keep the ReLUs open, so dependencies are visible
    return model


@pytest.mark.parametrize("channels", [1, 3])
def test_logits_depend_only_on_earlier_sub_pixels(channels):
    model = random_model(channels)
    violations, blind = check_order(dependency_matrix(model, 6, 6, channels))
    assert len(violations) == 0, f"outputs that see their own or later inputs: {violations[:5].tolist()}"
    assert blind == [], f"outputs that see no earlier input at all: {blind[:5]}"


@pytest.mark.parametrize("channels", [1, 3])
def test_the_check_catches_a_leak(channels):
    # Mask B in the first layer lets each sub-pixel see itself: the check must notice.
    model = random_model(channels)
    model.conv_in = MaskedConv2d(channels, 12, 7, "B", colors=channels, rng=np.random.default_rng(5), dtype="float64")
    violations, _ = check_order(dependency_matrix(model, 6, 6, channels))
    assert len(violations) > 0
    assert all(k_out == k_in for k_out, k_in in violations)  # exactly the diagonal leaks


def test_rgb_colour_order_within_a_pixel():
    model = random_model(3)
    depends = dependency_matrix(model, 6, 6, 3)
    k = lambda i, j, c: (i * 6 + j) * 3 + c
    assert not depends[k(2, 3, 0), k(2, 3, 0)]  # R does not see itself
    assert depends[k(2, 3, 1), k(2, 3, 0)]  # G sees R of its pixel
    assert depends[k(2, 3, 2), k(2, 3, 0)] and depends[k(2, 3, 2), k(2, 3, 1)]  # B sees R and G
    assert not depends[k(2, 3, 1), k(2, 3, 2)]  # G does not see B
