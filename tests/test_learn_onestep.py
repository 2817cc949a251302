"""``minipixel learn`` exercise onestep: the skeleton is "not written yet", a right answer passes
every part in seconds, and each typical mistake fails with words that name it."""
import numpy as np
import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel.learn import ex_onestep, runner

NAME = "onestep"

# The library's idea (MaskedConv2d.forward_at, sampling.sample_cached) as a learner's file: plain loops.
RIGHT = '''import numpy as np

from minipixel.sampling import draw


def conv_at(x, W, b, mask, i, j):
    B, H, Wd, _ = x.shape
    k = W.shape[0]
    p = k // 2
    y = np.zeros((B, W.shape[3]), dtype=x.dtype) + b
    for ky in range(k):
        for kx in range(k):
            r, c = i + ky - p, j + kx - p
            if mask[ky, kx].any() and 0 <= r < H and 0 <= c < Wd:
                y += x[:, r, c] @ (W[ky, kx] * mask[ky, kx])
    return y


def sample_cached(layers, u, levels):
    n, H, W = u.shape
    dtype = layers[0]["W"].dtype
    labels = np.zeros((n, H, W), dtype=np.int64)
    maps = [np.zeros((n, H, W, 1), dtype=dtype)]
    for layer in layers[:-1]:
        maps.append(np.zeros((n, H, W, layer["W"].shape[3]), dtype=dtype))
    for i in range(H):
        for j in range(W):
            for l, layer in enumerate(layers[:-1]):
                maps[l + 1][:, i, j] = np.maximum(conv_at(maps[l], layer["W"], layer["b"], layer["mask"], i, j), 0)
            last = layers[-1]
            logits = conv_at(maps[-1], last["W"], last["b"], last["mask"], i, j)
            labels[:, i, j] = draw(logits, u[:, i, j])
            maps[0][:, i, j, 0] = labels[:, i, j] / (levels - 1)
    return labels
'''

# A second right answer, written another way: the live taps gathered from a padded copy into one einsum,
# maps left uninitialised (np.empty: nothing unwritten is ever read), a flat loop over the positions.
RIGHT_GATHER = '''import numpy as np

from minipixel.sampling import draw


def conv_at(x, W, b, mask, i, j):
    p = W.shape[0] // 2
    ky, kx = np.nonzero(mask.any(axis=(2, 3)))
    x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    cols = x_pad[:, i + ky, j + kx]
    return (np.einsum("btc,tco->bo", cols, (W * mask)[ky, kx]) + b).astype(x.dtype)


def sample_cached(layers, u, levels):
    n, H, W = u.shape
    sizes = [1] + [layer["b"].shape[0] for layer in layers]
    maps = [np.empty((n, H, W, s), dtype=layers[0]["W"].dtype) for s in sizes]
    maps[0][:] = 0
    labels = np.zeros(u.shape, dtype=np.uint8)
    for flat in range(H * W):
        i, j = divmod(flat, W)
        for l, layer in enumerate(layers):
            out = conv_at(maps[l], layer["W"], layer["b"], layer["mask"], i, j)
            maps[l + 1][:, i, j] = out if l == len(layers) - 1 else np.maximum(out, 0)
        labels[:, i, j] = draw(maps[-1][:, i, j], u[:, i, j])
        maps[0][:, i, j, 0] = labels[:, i, j] / (levels - 1)
    return labels
'''

TAP = "            r, c = i + ky - p, j + kx - p\n"
BODY = """            if mask[ky, kx].any() and 0 <= r < H and 0 <= c < Wd:
                y += x[:, r, c] @ (W[ky, kx] * mask[ky, kx])
"""
HIDDEN = '''            for l, layer in enumerate(layers[:-1]):
                maps[l + 1][:, i, j] = np.maximum(conv_at(maps[l], layer["W"], layer["b"], layer["mask"], i, j), 0)
'''
# Every layer computed at every position, for every pixel drawn: the naive sampler's work through conv_at.
FULL = '''            for l, layer in enumerate(layers[:-1]):
                for r in range(H):
                    for c in range(W):
                        out = conv_at(maps[l], layer["W"], layer["b"], layer["mask"], r, c)
                        maps[l + 1][:, r, c] = np.maximum(out, 0)
'''
LOGITS = 'logits = conv_at(maps[-1], last["W"], last["b"], last["mask"], i, j)'

# (the right text, the mistake, words the message must hold)
MISTAKES = [
    ("mask[ky, kx].any() and ", "",
     "live taps only: WRONG: conv_at at (row 0, column 0) read the input at (row 0, column 0), the current "
     "position, under mask A: mask A closes the centre tap"),
    (BODY, BODY.replace("mask[ky, kx].any() and ", "").replace("(W[ky, kx] * mask[ky, kx])", "W[ky, kx]"),
     "conv_at: WRONG: the mask is not applied"),
    (BODY, BODY.replace("mask[ky, kx].any()", "(ky < p or (ky == p and kx <= p))").replace(
        "(W[ky, kx] * mask[ky, kx])", "W[ky, kx]"),
     "conv_at: WRONG: the current position (i, j) is read under mask A: mask A closes the centre tap"),
    (TAP, TAP.replace("- p", "- p - 1"),
     "conv_at: WRONG: the taps are off by -1 rows and columns (the offset off by one)"),
    (TAP, TAP.replace("- p", "- 2 * p"),
     "conv_at: WRONG: the taps are off by -2 rows and columns (the padding offset k//2 counted twice"),
    (TAP, "            r, c = i - ky + p, j - kx + p\n", "conv_at: WRONG: the taps are flipped"),
    (TAP, "            r, c = i + kx - p, j + ky - p\n", "conv_at: WRONG: the tap's row and column are swapped"),
    ("0 <= r < H and 0 <= c < Wd", "r < H and c < Wd",
     "conv_at: WRONG: a tap above or left of the image read the other side of it"),
    ("np.zeros((B, W.shape[3]), dtype=x.dtype) + b", "np.zeros((B, W.shape[3]), dtype=x.dtype)",
     "conv_at: WRONG: the bias is missing"),
    ("np.zeros((B, W.shape[3]), dtype=x.dtype)", "np.zeros((B, W.shape[3]))",
     "has dtype float64, expected float32 (keep the input's dtype)"),
    (LOGITS, f"logits = np.maximum({LOGITS[9:]}, 0)", "images: WRONG: a ReLU after the last layer"),
    ("maps[l + 1][:, i, j] = np.maximum(conv_at(maps[l], layer[\"W\"], layer[\"b\"], layer[\"mask\"], i, j), 0)",
     "maps[l + 1][:, i, j] = conv_at(maps[l], layer[\"W\"], layer[\"b\"], layer[\"mask\"], i, j)",
     "images: WRONG: no ReLU between the layers"),
    ("enumerate(layers[:-1])", "reversed(list(enumerate(layers[:-1])))",
     "images: WRONG: a layer read a stale value of the layer below at (i, j): layer l + 1 reads layer l's output at "
     "(i, j) itself (mask B's centre tap)"),
    ("enumerate(layers[:-1])", "reversed(list(enumerate(layers[:-1])))",
     "one position per layer: WRONG: at (row 0, column 0) the layers were computed in the order 1, 0, 2"),
    (HIDDEN, FULL, "one position per layer: WRONG: conv_at was called 1275 times for 25 pixels: 51 per pixel"),
    (HIDDEN + "            last = layers[-1]\n            " + LOGITS,
     HIDDEN.replace("conv_at(", "_conv(") + "            last = layers[-1]\n            "
     + LOGITS.replace("conv_at(", "_conv("), "one position per layer: WRONG: sample_cached never called conv_at"),
    ("            maps[0][:, i, j, 0] = labels[:, i, j] / (levels - 1)\n", "",
     "images: WRONG: the drawn labels never reach the input map"),
    ("labels[:, i, j] / (levels - 1)", "labels[:, i, j]", "images: WRONG: the input map holds the labels themselves"),
]

# A learner's own full-map convolution for the "never called conv_at" mistake: it reads whole maps.
OWN_CONV = '''

def _conv(x, W, b, mask, i, j):
    from minipixel.conv_reference import conv2d_reference
    return conv2d_reference(x, W * mask, b)[:, i, j]
'''


def _planted(right, wrong):
    assert right in RIGHT
    return RIGHT.replace(right, wrong, 1) + (OWN_CONV if "_conv(" in wrong else "")


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_GATHER], ids=["loops", "gather"])
def test_a_right_answer_passes_every_part_in_seconds(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    assert "kernels 1, 3, 5, masks A and B, float64 and float32" in lines[0]
    assert "exactly one conv_at per layer at each pixel" in lines[3]


@pytest.mark.parametrize("right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, right, wrong, words):
    mistake_is_named(NAME, tmp_path, _planted(right, wrong), words)


def test_the_planted_mistakes_cover_the_typical_ones():
    words = " ".join(m[2] for m in MISTAKES)
    for typical in ("the current position, under mask A", "the mask is not applied", "off by -1", "flipped",
                    "a stale value of the layer below", "a ReLU after the last layer", "times for 25 pixels"):
        assert typical in words


def test_a_pixel_drawn_with_another_pixels_uniform_breaks_the_autoregressive_order(tmp_path):
    (tmp_path / f"{NAME}.py").write_text(_planted("draw(logits, u[:, i, j])", "draw(logits, u[:, j, i])"))
    text, code = runner.check(NAME, tmp_path)
    assert code == 1
    assert ("autoregressive order: WRONG: changing only the uniform of pixel (row 4, column 3) changed the earlier "
            "pixel (row 3, column 4)") in text
    # the 4x6 network's u has no row 5: their own IndexError, shown as theirs
    assert "images: WRONG: image 0 differs from the naive sampler's" in text and "IndexError" in text


def test_a_wrong_conv_at_leaves_the_sampler_parts_right_and_a_wrong_sampler_leaves_conv_at_right(tmp_path):
    (tmp_path / f"{NAME}.py").write_text(_planted(TAP, TAP.replace("- p", "- p - 1")))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed and [line.split(": ")[1] for line in lines] == ["WRONG", "WRONG", "right", "right", "right"]
    (tmp_path / f"{NAME}.py").write_text(_planted(LOGITS, f"logits = np.maximum({LOGITS[9:]}, 0)"))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed and [line.split(": ")[1] for line in lines] == ["right", "right", "WRONG", "right", "right"]


def test_the_graders_own_samplers_agree_and_its_conv_at_is_the_reference():
    from minipixel.conv_reference import conv2d_reference

    for layers, u, levels, _ in ex_onestep._networks():
        assert np.array_equal(ex_onestep._cached_like(layers, u, levels), ex_onestep._naive(layers, u, levels))
    x, W, b, mask, _ = ex_onestep._case((2, 4, 5, 2, 3, 5), "A", np.float64, 0)
    full = conv2d_reference(x, W * mask, b)
    assert all(np.allclose(ex_onestep._conv_at(x, W, b, mask, i, j), full[:, i, j]) for i in range(4) for j in range(5))


def test_the_grader_puts_the_learners_conv_at_back_after_the_sampler_runs(tmp_path):
    from minipixel.learn.grade import load

    path = tmp_path / "answer.py"
    path.write_text(RIGHT)
    module = load(path)
    mine = module.conv_at
    lines, passed = ex_onestep.check(module)
    assert passed and module.conv_at is mine


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    exception_is_shown_as_theirs(NAME, tmp_path, RIGHT.replace("p = k // 2", "p = k // q"), 9, "conv_at",
                                 "NameError: name 'q' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_functions(tmp_path, capsys):
    hints = hints_and_solution(NAME, tmp_path, capsys, "minipixel/conv.py", "forward_at")
    assert "sample_cached" in ex_onestep.SOLUTION and "mask[ky, kx].any()" in " ".join(hints)
