"""``minipixel learn`` exercise gated: the skeleton is "not written yet", a right answer passes every
part (against the library's Gate and ShiftDown, float32 and float64, in seconds), and each typical
mistake of the gate's slopes, its halves and the shift's direction fails with words that name it."""

import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel.learn import EXERCISES, runner

NAME = "gated"

# The library's answer (minipixel/gated.py, Gate and ShiftDown), as a learner's file.
RIGHT = '''import numpy as np


def _halves(x):
    t = np.tanh(x[..., 0::2])
    s = np.tanh(x[..., 1::2] * 0.5)
    s += 1
    s *= 0.5
    return t, s


def gate_forward(x):
    t, s = _halves(x)
    return t * s


def gate_backward(x, dy):
    t, s = _halves(x)
    dx = np.empty(dy.shape[:-1] + (2 * dy.shape[-1],), dtype=dy.dtype)
    dx[..., 0::2] = dy * s * (1 - t * t)
    dx[..., 1::2] = dy * t * s * (1 - s)
    return dx


def shift_down(x):
    y = np.zeros_like(x)
    y[:, 1:] = x[:, :-1]
    return y


def shift_down_backward(dy):
    dx = np.zeros_like(dy)
    dx[:, :-1] = dy[:, 1:]
    return dx
'''

# A second right answer, written another way: the pairs as a trailing axis of 2, exp for the
# sigmoid, the shift by concatenation.
RIGHT_PAIRS = '''import numpy as np


def _pairs(x):
    p = x.reshape(x.shape[:-1] + (x.shape[-1] // 2, 2))
    return p[..., 0], p[..., 1]


def gate_forward(x):
    a, b = _pairs(x)
    return np.tanh(a) / (1 + np.exp(-b))


def gate_backward(x, dy):
    a, b = _pairs(x)
    t, s = np.tanh(a), 1 / (1 + np.exp(-b))
    return np.stack([dy * s * (1 - t ** 2), dy * t * s * (1 - s)], axis=-1).reshape(x.shape)


def shift_down(x):
    return np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)


def shift_down_backward(dy):
    return np.concatenate([dy[:, 1:], np.zeros_like(dy[:, :1])], axis=1)
'''

HALVES = '''    t = np.tanh(x[..., 0::2])
    s = np.tanh(x[..., 1::2] * 0.5)
'''

# (the right text, the mistake, words the message must hold)
MISTAKES = [
    ("dx[..., 1::2] = dy * t * s * (1 - s)", "dx[..., 1::2] = dy * t * s",
     "gate backward: WRONG: the sigmoid's derivative is written as s: it is s * (1 - s)"),
    (HALVES, HALVES.replace("0::2", "EVEN").replace("1::2", "0::2").replace("EVEN", "1::2"),
     "gate forward: WRONG: the halves are swapped: sigmoid is on the even channels"),
    ("y[:, 1:] = x[:, :-1]", "y[:, :-1] = x[:, 1:]", "shift down: WRONG: shift_down moves the rows up"),
    ("(1 - t * t)", "(1 - t)", "gate backward: WRONG: tanh's derivative is written as 1 - t: it is 1 - t^2"),
    ("dx[:, :-1] = dy[:, 1:]", "dx[:, 1:] = dy[:, :-1]",
     "shift down: WRONG: shift_down_backward moves dy down, the same way as the forward"),
    ("y[:, 1:] = x[:, :-1]", "y[:, 2:] = x[:, :-2]", "shift down: WRONG: shift_down moves the rows down by 2"),
    ("    y = np.zeros_like(x)\n    y[:, 1:] = x[:, :-1]\n", "    y = np.roll(x, 1, axis=1)\n",
     "row 0 of y holds the last row of x (np.roll wraps around)"),
    ("    y = np.zeros_like(x)\n    y[:, 1:] = x[:, :-1]\n", "    y = x\n    y[:, 1:] = x[:, :-1].copy()\n"
     "    y[:, 0] = 0\n", "shift_down changed its input x: compute in a new array"),
    ("    t = np.tanh(x[..., 0::2])\n", "    t = np.tanh(x[..., 0::2])\n    x[..., 0::2] = t\n",
     "gate_forward changed its input x"),
    (HALVES, HALVES.replace("x[..., 0::2]", "x[..., :x.shape[-1] // 2]").replace(
        "x[..., 1::2]", "x[..., x.shape[-1] // 2:]"),
     "gate forward: WRONG: the channels are split into a first half and a second half"),
    ("dx[..., 0::2] = dy * s * (1 - t * t)", "dx[..., 0::2] = dy * s * (1 - x[..., 0::2] ** 2)",
     "tanh's derivative is written as 1 - a^2"),
    ("dx[..., 1::2] = dy * t * s * (1 - s)", "dx[..., 1::2] = dy * s * (1 - s)", "db lacks the factor t"),
    ("s = np.tanh(x[..., 1::2] * 0.5)", "s = np.tanh(x[..., 1::2] * -0.5)",
     "sigmoid has the wrong sign in its exp"),
    ("dx[..., 0::2] = dy * s * (1 - t * t)\n    dx[..., 1::2] = dy * t * s * (1 - s)",
     "dx[..., 1::2] = dy * s * (1 - t * t)\n    dx[..., 0::2] = dy * t * s * (1 - s)",
     "da and db are in each other's places"),
    ("    y[:, 1:] = x[:, :-1]\n", "    y[:, :, 1:] = x[:, :, :-1]\n", "moves the columns (axis 2) to the right"),
    ("    dx[:, :-1] = dy[:, 1:]\n", "    dx = np.roll(dy, -1, axis=1)\n",
     "the last row of dx holds row 0 of dy (np.roll wraps around)"),
    ("    t = np.tanh(x[..., 0::2])\n", "    t = np.tanh(x[..., 0::2]).astype(np.float64)\n",
     "gate forward: WRONG: y (x of shape (7, 2), float32) has dtype float64, expected float32"),
    ("dx[..., 0::2] = dy * s * (1 - t * t)", "dx[..., 0::2] = s * (1 - t * t)",
     "db (the odd channels of dx) is right, da (the even ones) is wrong"),
]


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


def test_the_skeleton_says_how_the_halves_are_laid_out():
    skeleton = EXERCISES[NAME].SKELETON
    for words in ("x[..., 0::2]", "x[..., 1::2]", "colour group", "y[:, 0] = 0", "dx[:, H - 1] = 0"):
        assert words in skeleton


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_PAIRS], ids=["library", "pairs"])
def test_a_right_answer_passes_every_part_in_seconds(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    assert "grey (h = 1, 5) and colour (h = 6, 9), float32 and float64" in lines[0]
    assert "float32 and float64" in lines[1] and "float32 and float64" in lines[4]
    assert "central differences of your gate_forward" in lines[2]


@pytest.mark.parametrize("right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, right, wrong, words):
    assert right in RIGHT
    mistake_is_named(NAME, tmp_path, RIGHT.replace(right, wrong, 1), words)


def test_the_planted_mistakes_cover_the_typical_ones():
    words = " ".join(m[2] for m in MISTAKES)
    for typical in ("the sigmoid's derivative is written as s", "tanh's derivative is written as 1 - t",
                    "the halves are swapped", "shift_down moves the rows up", "moves the rows down by 2",
                    "moves dy down, the same way as the forward", "changed its input"):
        assert typical in words


def _with(*indices):
    """RIGHT with the planted mistakes of these MISTAKES indices."""
    source = RIGHT
    for i in indices:
        source = source.replace(MISTAKES[i][0], MISTAKES[i][1], 1)
    return source


R, W = "right", "WRONG"
STILL = RIGHT.replace("    y = np.zeros_like(x)\n    y[:, 1:] = x[:, :-1]\n", "    y = x.copy()\n")

# (what the answer does, its source, each part's verdict, (part index, words the line must hold) ...)
VERDICTS = [
    ("a shift going up leaves the gate right and breaks the order", _with(2), [R, R, R, R, W, W],
     [(5, "changing only row 4 of x and the rows below it changed row 3 of y")]),
    ("a wrong slope fails the backward and the learner's own gradient check", _with(0), [R, W, W, R, R, R],
     [(2, "disagrees with central differences of your gate_forward on the odd channels (b, under sigmoid)")]),
    ("halves swapped alike in forward and backward pass their own gradient check", _with(1, 13),
     [W, W, R, R, R, R], [(1, "the backward has the halves swapped, sigmoid on the even channels")]),
    ("halves swapped in a shared helper are named in the backward too", _with(1), [W, W, W, R, R, R],
     [(1, "gate backward: WRONG: t and s come from swapped halves")]),
    ("a first and second half split mixes the colour groups", _with(9), [W, W, W, W, R, R],
     [(1, "gate backward: WRONG: t and s come from the first and the second half"),
      (3, "changing only channels 0-3 of 12, colour group 0 (red) changed output channel 2, of colour group 1 "
          "(green)")]),
    ("no shift at all fails the shift and the order", STILL, [R, R, R, R, W, W],
     [(4, "shift_down leaves the rows where they are"),
      (5, "changing only row 4 of x and the rows below it changed row 4 of y")]),
]


@pytest.mark.parametrize("source, verdicts, words", [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS])
def test_each_part_says_right_or_wrong_on_its_own(tmp_path, source, verdicts, words):
    (tmp_path / f"{NAME}.py").write_text(source)
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert [line.split(": ")[1] for line in lines] == verdicts
    for index, text in words:
        assert text in lines[index]


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    source = RIGHT.replace("    return t * s\n", "    return t * s_\n")
    line = source.splitlines().index("    return t * s_") + 1
    exception_is_shown_as_theirs(NAME, tmp_path, source, line, "gate_forward", "NameError: name 's_' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_classes(tmp_path, capsys):
    hints = hints_and_solution(NAME, tmp_path, capsys, "minipixel/gated.py", "ShiftDown")
    assert "s * (1 - s)" in " ".join(hints) and "1 - t * t" in " ".join(hints)
