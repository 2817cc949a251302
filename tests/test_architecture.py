"""The PixelCNN's architecture, pinned: its logits equal the network written out by hand from
the paper's description (van den Oord et al., 2016, Table 1; the residual block of Figure 5),
with the plain reference convolution (``conv_reference``) and masks made afresh, so that a
changed mask type, width, ReLU or kernel in ``model.PixelCNN`` cannot go unnoticed."""
import numpy as np
import pytest

from minipixel.conv_reference import conv2d_reference
from minipixel.gated import GatedPixelCNN
from minipixel.masks import conv_mask
from minipixel.model import PixelCNN, PixelCNNConfig, build_model


def by_hand(model, x):
    cfg, p = model.config, model.parameters()
    C, h, L = cfg.channels, cfg.filters, cfg.levels

    def conv(name, x, k, mask_type, cout):
        W = p[f"{name}.W"] * conv_mask(k, x.shape[-1], cout, mask_type, C)
        return conv2d_reference(x, W, p[f"{name}.b"])

    def relu(a):
        return np.maximum(a, 0)

    y = conv("conv_in", x, cfg.input_kernel, "A", h)  # 7x7 mask A: never the sub-pixel itself
    m1 = h // 2 if cfg.block == "half" else h
    for i in range(cfg.blocks):  # x + 1x1(relu(3x3(relu(1x1(relu(x)))))), all mask B
        r = conv(f"blocks.{i}.conv1", relu(y), 1, "B", m1)
        r = conv(f"blocks.{i}.conv2", relu(r), 3, "B", h // 2)
        y = y + conv(f"blocks.{i}.conv3", relu(r), 1, "B", h)
    y = relu(conv("head1", relu(y), 1, "B", h))  # ReLU, 1x1, ReLU, 1x1, ReLU, 1x1 to the logits
    y = relu(conv("head2", y, 1, "B", h))
    return conv("conv_out", y, 1, "B", C * L).reshape(*x.shape, L)


@pytest.mark.parametrize("options", [{"channels": 1, "levels": 2, "block": "half"},
                                     {"channels": 3, "levels": 4, "block": "half", "input_kernel": 5},
                                     {"channels": 3, "levels": 3, "block": "keras"}])
def test_the_pixelcnn_is_the_network_of_the_paper(options):
    config = PixelCNNConfig(height=5, width=4, filters=6, blocks=2, **options)
    model = build_model(config, seed=2, dtype="float64")
    rng = np.random.default_rng(3)
    for p in model.parameters().values():  # biases too, and weights away from their initial scale
        p += 0.3 * rng.standard_normal(p.shape)
    x = rng.random((2, 5, 4, config.channels))
    np.testing.assert_allclose(model.forward(x), by_hand(model, x), rtol=1e-10, atol=1e-12)


def test_a_model_made_without_a_seed_is_the_one_of_seed_0():
    for made in (PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1)),
                 GatedPixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1, arch="gated"))):
        for name, p in build_model(made.config, seed=0).parameters().items():
            np.testing.assert_array_equal(made.parameters()[name], p, err_msg=name)


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_one_seed_makes_the_same_weights_and_another_seed_other_weights_in_every_layer(arch):
    config = PixelCNNConfig(height=4, width=4, channels=3, levels=4, filters=6, blocks=1, arch=arch)
    first, again, other = build_model(config, seed=5), build_model(config, seed=5), build_model(config, seed=6)
    for name, p in first.parameters().items():  # every layer draws from the model's seeded generator
        np.testing.assert_array_equal(again.parameters()[name], p, err_msg=name)
        if name.endswith(".W"):  # biases start at zero
            assert not np.array_equal(other.parameters()[name], p), name
