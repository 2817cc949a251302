"""The two architectures, pinned: their logits equal the networks written out by hand from the
papers' descriptions (PixelCNN: van den Oord et al., 2016, Table 1 and the residual block of
Figure 5; Gated PixelCNN: "Conditional Image Generation with PixelCNN Decoders", Figure 2),
with the plain reference convolution (``conv_reference``) and masks made afresh, so that a
changed mask type, width, ReLU, gate or kernel in ``model`` or ``gated`` cannot go unnoticed."""
import numpy as np
import pytest

from minipixel.conv_reference import conv2d_reference
from minipixel.gated import GatedPixelCNN
from minipixel.masks import conv_mask
from minipixel.model import PixelCNN, PixelCNNConfig, build_model


def relu(a):
    return np.maximum(a, 0)


def masked(p, C):
    """conv(name, x, k, mask type, out channels[, colour groups]): the named layer's weights, masked afresh."""
    def conv(name, x, k, mask_type, cout, colors=C):
        W = p[f"{name}.W"] * conv_mask(k, x.shape[-1], cout, mask_type, colors)
        return conv2d_reference(x, W, p[f"{name}.b"])
    return conv


def by_hand(model, x):
    cfg, p = model.config, model.parameters()
    C, h, L = cfg.channels, cfg.filters, cfg.levels
    conv = masked(p, C)
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


def gated_by_hand(model, x, classes):
    cfg, p = model.config, model.parameters()
    C, h, L = cfg.channels, cfg.filters, cfg.levels
    conv = masked(p, C)

    def gate(a):  # tanh(a) * sigmoid(b), channel pairs (2k, 2k + 1)
        return np.tanh(a[..., 0::2]) / (1 + np.exp(-a[..., 1::2]))

    def down(a):  # row i gets row i - 1: the vertical stack never sees the current row
        return np.concatenate([np.zeros_like(a[:, :1]), a[:, :-1]], axis=1)

    def bias(name):
        return np.eye(cfg.classes)[classes][:, None, None] @ p[name] if cfg.classes else 0.0

    v = hs = x
    skip = 0.0
    for i in range(cfg.blocks + 1):
        k, n = (cfg.input_kernel, "A") if i == 0 else (3, "B")
        v_pre = conv(f"stack.{i}.conv_v", v, k, "V", 2 * h, colors=1) + bias(f"stack.{i}.bias_v.V")
        h_pre = (conv(f"stack.{i}.conv_h", hs, k, "H" + n, 2 * h) + conv(f"stack.{i}.link", down(v_pre), 1, "B", 2 * h, 1)
                 + bias(f"stack.{i}.bias_h.V"))
        out = conv(f"stack.{i}.conv_out", gate(h_pre), 1, "B", h)
        v, hs, skip = gate(v_pre), out if i == 0 else hs + out, skip + out  # no residual over the image
    y = relu(conv("head", relu(skip), 1, "B", h))  # ReLU, 1x1, ReLU, 1x1 to the logits
    return conv("conv_out", y, 1, "B", C * L).reshape(*x.shape, L)


@pytest.mark.parametrize("options", [{"channels": 1, "levels": 2},
                                     {"channels": 3, "levels": 4, "input_kernel": 5},
                                     {"channels": 3, "levels": 3, "classes": 4}])
def test_the_gated_pixelcnn_is_the_network_of_the_paper(options):
    config = PixelCNNConfig(height=5, width=4, filters=6, blocks=2, arch="gated", **options)
    model = build_model(config, seed=2, dtype="float64")
    rng = np.random.default_rng(3)
    for p in model.parameters().values():
        p += 0.3 * rng.standard_normal(p.shape)
    x = rng.random((2, 5, 4, config.channels))
    classes = np.array([1, 3]) if config.classes else None
    np.testing.assert_allclose(model.forward(x, classes), gated_by_hand(model, x, classes), rtol=1e-10, atol=1e-12)


def test_a_model_made_or_built_without_a_seed_is_the_one_of_seed_0():
    for made in (PixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1)),
                 GatedPixelCNN(PixelCNNConfig(height=4, width=4, filters=4, blocks=1, arch="gated"))):
        for name, p in build_model(made.config, seed=0).parameters().items():
            np.testing.assert_array_equal(made.parameters()[name], p, err_msg=name)
            np.testing.assert_array_equal(build_model(made.config).parameters()[name], p, err_msg=name)


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_one_seed_makes_the_same_weights_and_another_seed_other_weights_in_every_layer(arch):
    config = PixelCNNConfig(height=4, width=4, channels=3, levels=4, filters=6, blocks=1, arch=arch)
    first, again, other = build_model(config, seed=5), build_model(config, seed=5), build_model(config, seed=6)
    for name, p in first.parameters().items():  # every layer draws from the model's seeded generator
        np.testing.assert_array_equal(again.parameters()[name], p, err_msg=name)
        if name.endswith(".W"):  # biases start at zero
            assert not np.array_equal(other.parameters()[name], p), name


def test_a_config_no_model_can_have_is_refused_naming_the_field():
    refused = [({"channels": 2}, r"config.channels: expected 1 \(grey\) or 3 \(RGB\), got 2"),
               ({"channels": True}, r"config.channels: expected 1 \(grey\) or 3 \(RGB\), got True"),
               ({"input_kernel": 4}, r"config.input_kernel: expected an odd int from 1 to 15, got 4"),
               ({"channels": 3, "filters": 5}, r"config.filters: expected at least 6 \(the blocks halve it"),
               ({"channels": 1, "filters": 1}, r"config.filters: expected at least 2 ")]
    for fields, words in refused:
        with pytest.raises(ValueError, match=f"^{words}"):
            PixelCNNConfig(**fields).validate()
    for fields in ({"channels": 3, "filters": 6}, {"channels": 1, "filters": 2}, {"input_kernel": 3}):
        assert PixelCNNConfig(**fields).validate() == PixelCNNConfig(**fields)  # the least that is allowed
