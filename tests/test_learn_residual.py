"""``minipixel learn`` exercise residual: the skeleton is "not written yet", a right answer passes every
part (against the library's ResidualBlock, in float64, in seconds), and each typical mistake of the
chain rule fails with words that name it."""

import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel.learn import EXERCISES, runner

NAME = "residual"

HELPERS = '''import numpy as np

from minipixel.conv_reference import conv2d_reference, conv2d_reference_backward


def conv(x, W, b, mask):
    return conv2d_reference(x, W * mask, b)


def conv_backward(dy, x, W, mask):
    if dy.shape[:3] != x.shape[:3] or dy.shape[3] != W.shape[3]:
        raise ValueError(f"conv_backward: dy has shape {dy.shape}, but this convolution's output has "
                         f"shape {x.shape[:3] + (W.shape[3],)}")
    return conv2d_reference_backward(dy, x, W * mask, mask)
'''

# The library's block (minipixel/model.py, ResidualBlock), written out with the given helpers.
RIGHT = HELPERS + '''

def residual_forward(x, params):
    p = params
    a1 = np.maximum(x, 0)
    z1 = conv(a1, p["W1"], p["b1"], p["mask1"])
    a2 = np.maximum(z1, 0)
    z2 = conv(a2, p["W2"], p["b2"], p["mask2"])
    a3 = np.maximum(z2, 0)
    z3 = conv(a3, p["W3"], p["b3"], p["mask3"])
    return x + z3, (x, a1, z1, a2, z2, a3, z3, p)


def residual_backward(dy, cache):
    x, a1, z1, a2, z2, a3, z3, p = cache
    da3, dW3, db3 = conv_backward(dy, a3, p["W3"], p["mask3"])
    dz2 = da3 * (z2 > 0)
    da2, dW2, db2 = conv_backward(dz2, a2, p["W2"], p["mask2"])
    dz1 = da2 * (z1 > 0)
    da1, dW1, db1 = conv_backward(dz1, a1, p["W1"], p["mask1"])
    dx = da1 * (x > 0)
    dx = dx + dy
    return dx, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "W3": dW3, "b3": db3}
'''

# A second right answer: a loop over the three layers, the ReLU masks kept as booleans.
RIGHT_LOOP = HELPERS + '''

def residual_forward(x, params):
    a, cache = x, []
    for k in (1, 2, 3):
        keep = a > 0
        a = np.where(keep, a, 0.0)
        z = conv(a, params[f"W{k}"], params[f"b{k}"], params[f"mask{k}"])
        cache.append((k, keep, a))
        a = z
    return x + a, (cache, params)


def residual_backward(dy, cache):
    layers, params = cache
    d, grads = dy, {}
    for k, keep, a in reversed(layers):
        d, grads[f"W{k}"], grads[f"b{k}"] = conv_backward(d, a, params[f"W{k}"], params[f"mask{k}"])
        d = d * keep
    return d + dy, grads
'''

# (the right line, the mistake, words the message must hold)
MISTAKES = [
    ("    dx = dx + dy\n", "", "backward: WRONG: the skip connection's dy is missing from dx"),
    ("dz1 = da2 * (z1 > 0)", "dz1 = da2 * (z2 > 0)",
     "backward: WRONG: W2, b2, W3 and b3 are right but W1, b1 are wrong: the gradient into conv1's output"),
    ("dz2 = da3 * (z2 > 0)", "dz2 = da3 * (a2 > 0)", "backward: WRONG: W3 and b3 are right but W2, b2 are wrong"),
    ("    da3, dW3, db3 = conv_backward(dy, a3, p[\"W3\"], p[\"mask3\"])\n"
     "    dz2 = da3 * (z2 > 0)\n"
     "    da2, dW2, db2 = conv_backward(dz2, a2, p[\"W2\"], p[\"mask2\"])\n"
     "    dz1 = da2 * (z1 > 0)\n"
     "    da1, dW1, db1 = conv_backward(dz1, a1, p[\"W1\"], p[\"mask1\"])\n",
     "    da1, dW1, db1 = conv_backward(dy, a1, p[\"W1\"], p[\"mask1\"])\n"
     "    dz1 = da1 * (z1 > 0)\n"
     "    da2, dW2, db2 = conv_backward(dz1, a2, p[\"W2\"], p[\"mask2\"])\n"
     "    dz2 = da2 * (z2 > 0)\n"
     "    da3, dW3, db3 = conv_backward(dz2, a3, p[\"W3\"], p[\"mask3\"])\n",
     "the backward must go through the layers in reverse order, conv3's backward first"),
    ("a1 = np.maximum(x, 0)", "a1 = x", "forward: WRONG: the ReLU before conv1 is missing"),
    ("dx = da1 * (x > 0)", "dx = da1", "backward: WRONG: the first ReLU's backward is wrong"),
    ("return x + z3,", "return z3,", "forward: WRONG: the skip connection is missing: out = x + conv3(...)"),
    ("a2 = np.maximum(z1, 0)", "a2 = z1", "forward: WRONG: the ReLU between conv1 and conv2 is missing"),
    ("a1 = np.maximum(x, 0)", "a1 = np.maximum(x, 0, out=x)", "residual_forward changed x"),
    ("da3, dW3, db3 = conv_backward(dy, a3,", "da3, dW3, db3 = conv_backward(dy, z2,",
     "backward: WRONG: conv3's gradients (W3, b3) are wrong"),
    ('"b3": db3}', '"b3": db3 * 2}', "conv3's gradients (W3, b3) are wrong"),
    (', "b3": db3}', "}", "grads lacks b3"),
    # the autoregressive order: the order part gives the weights values on the masked taps too
    ('z2 = conv(a2, p["W2"], p["b2"], p["mask2"])', 'z2 = conv(a2, p["W2"], p["b2"], 1)',
     "autoregressive order: WRONG: changing only x at (row 2, column 2) changed out at (row 1, column 1): out may "
     "depend only on x at earlier positions (the rows above, the columns left in its row) and on x at its own "
     "position (mask B), as each of the block's convs is; conv2 runs without its mask: conv2(a) = conv(a, "
     "params['W2'], params['b2'], params['mask2']) (x (2, 4, 4, 4), widths 'half', 1 colour group(s))"),
    ('z2 = conv(a2, p["W2"], p["b2"], p["mask2"])', 'z2 = conv(a2, p["W2"], p["b2"], 1 - p["mask2"])',
     "autoregressive order: WRONG: changing only x at (row 2, column 2) changed out at (row 1, column 1)"),
    ('z2 = conv(a2, p["W2"], p["b2"], p["mask2"])', 'z2 = conv(a2, p["W2"], p["b2"], 1 - p["mask2"])',
     "; conv2 runs with 1 - mask: conv2(a) = conv(a, params['W2'], params['b2'], params['mask2'])"),
    ('z2 = conv(a2, p["W2"], p["b2"], p["mask2"])', 'z2 = conv(a2, p["W2"], p["b2"], p["mask2"][::-1, ::-1])',
     "conv2 runs with its mask flipped, reading below and right"),
    ('z1 = conv(a1, p["W1"], p["b1"], p["mask1"])', 'z1 = conv(a1, p["W1"], p["b1"], 1)',
     "autoregressive order: WRONG: changing only x at (row 1, column 2, colour 1 (channels 2-3)) changed out at "
     "(row 1, column 2, colour 0 (channels 0-1)): out may depend only on x at earlier positions (the rows above, the "
     "columns left in its row) and, at its own position, on its own colour and those before (mask B), as each of "
     "the block's convs is; conv1 runs without its mask"),
    ('z2 = conv(a2, p["W2"], p["b2"], p["mask2"])', 'z2 = conv(a2, p["W2"], p["b2"], p["mask2"].transpose(1, 0, 2, 3))',
     "changed out at (row 1, column 3): out may depend only on x at earlier positions"),
    ('z2 = conv(a2, p["W2"], p["b2"], p["mask2"])', 'z2 = conv(a2, p["W2"], p["b2"], p["mask2"].transpose(1, 0, 2, 3))',
     "is every conv given its own mask, as it is"),
    ("return conv2d_reference(x, W * mask, b)", "return conv2d_reference(x, W, b)",  # the given helper, edited
     "autoregressive order: WRONG: changing only x at (row 2, column 2) changed out at (row 1, column 1)"),
]


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


def test_the_skeletons_given_helpers_are_the_right_ones():
    skeleton = EXERCISES[NAME].SKELETON
    for line in HELPERS.splitlines():
        if line.startswith(("    return", "    if", "        raise", "def")):
            assert line in skeleton, line


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_LOOP], ids=["library", "loop"])
def test_a_right_answer_passes_every_part_in_seconds(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    assert "widths 'half' and 'keras'" in lines[0]
    assert "ResidualBlock.backward" in lines[1]


@pytest.mark.parametrize("right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, right, wrong, words):
    assert right in RIGHT
    mistake_is_named(NAME, tmp_path, RIGHT.replace(right, wrong, 1), words)


def test_the_planted_mistakes_cover_the_typical_ones():
    words = " ".join(m[2] for m in MISTAKES)
    for typical in ("the skip connection's dy is missing from dx", "the gradient into conv1's output",
                    "reverse order, conv3's backward first", "the ReLU before conv1 is missing"):
        assert typical in words


def test_without_the_skip_in_dx_only_the_backward_and_gradient_check_fail(tmp_path):
    (tmp_path / f"{NAME}.py").write_text(RIGHT.replace(MISTAKES[0][0], MISTAKES[0][1]))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert [line.split(": ")[1] for line in lines] == ["right", "WRONG", "WRONG", "right"]
    assert "your dx disagrees with central differences of your forward" in lines[2]


@pytest.mark.parametrize("index", [1, 2])
def test_a_relu_mask_from_the_wrong_array_also_fails_the_gradient_check(tmp_path, index):
    (tmp_path / f"{NAME}.py").write_text(RIGHT.replace(MISTAKES[index][0], MISTAKES[index][1]))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert [line.split(": ")[1] for line in lines] == ["right", "WRONG", "WRONG", "right"]
    assert "disagrees with central differences of your forward" in lines[2]


def test_the_order_part_reports_on_its_own(tmp_path):
    # no skip connection: the forward is wrong but keeps the order; a conv without its mask breaks it
    (tmp_path / f"{NAME}.py").write_text(RIGHT.replace("return x + z3,", "return z3,"))
    lines, _ = runner.grade(NAME, tmp_path)
    assert [line.split(": ")[1] for line in lines] == ["WRONG", "right", "WRONG", "right"]
    assert lines[3].startswith("autoregressive order: right: changing x at one sub-pixel (the centre, the first row")
    # conv1 without its mask, 1x1: it reads only the current position, a later colour there
    (tmp_path / f"{NAME}.py").write_text(RIGHT.replace('p["b1"], p["mask1"])', 'p["b1"], 1)'))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed and lines[3].startswith("autoregressive order: WRONG: changing only x at (row 1, column 2, colour 1")


def test_the_order_rule_passes_the_librarys_block_and_model():
    import numpy as np

    from minipixel.learn import ex_residual
    from minipixel.learn.grade import order_violation
    from minipixel.model import PixelCNN, PixelCNNConfig

    for index, case in enumerate(ex_residual.CASES):
        block, _, x, _ = ex_residual._setup(case, index)
        for conv in (block.conv1, block.conv2, block.conv3):  # weights on the masked taps: the mask must hold them off
            conv.params["W"][...] = np.random.default_rng(index).standard_normal(conv.params["W"].shape)
        assert order_violation(block.forward, x, "B", case[5]) is None
        assert order_violation(block.forward, x, "A", case[5]) is not None  # the skip: out sees x at its position
    for channels in (1, 3):  # the whole model: mask A from the image to the logits of each colour
        model = PixelCNN(PixelCNNConfig(height=5, width=4, channels=channels, levels=4, filters=6, blocks=1), seed=1,
                         dtype="float64")
        x = np.random.default_rng(channels).random((2, 5, 4, channels))
        assert order_violation(lambda a: model.forward(a).reshape(2, 5, 4, -1), x, "A", channels) is None


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    source = RIGHT.replace("dz2 = da3 * (z2 > 0)", "dz2 = da3 * (z_2 > 0)")
    line = source.splitlines().index("    dz2 = da3 * (z_2 > 0)") + 1
    exception_is_shown_as_theirs(NAME, tmp_path, source, line, "residual_backward",
                                 "NameError: name 'z_2' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_block(tmp_path, capsys):
    hints_and_solution(NAME, tmp_path, capsys, "minipixel/model.py", "ResidualBlock")
