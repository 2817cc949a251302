"""``minipixel learn`` exercise sampler: the skeleton is "not written yet", the library's answer passes
every part in seconds, and each typical mistake fails with words that name it."""

import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel.learn import runner

NAME = "sampler"

# The library's answer (minipixel/sampling.py, draw and sample_naive), as a learner's file.
RIGHT = '''import numpy as np

from minipixel.data import labels_to_inputs


def draw(logits, u, temperature=1.0):
    z = logits.astype(np.float64)
    if temperature == 0:
        return z.argmax(axis=1)
    z = z / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(p, axis=1)
    label = (cdf <= u[:, None] * cdf[:, -1:]).sum(axis=1)
    return np.minimum(label, logits.shape[1] - 1)


def sample_naive(model, n, u):
    L = model.config.levels
    n, H, W, C = u.shape
    labels = np.zeros(u.shape, dtype=np.uint8)
    x = labels_to_inputs(labels, L, model.dtype)
    for i in range(H):
        for j in range(W):
            for c in range(C):
                logits = model.forward(x)[:, i, j, c]
                labels[:, i, j, c] = draw(logits, u[:, i, j, c])
                x[:, i, j, c] = labels_to_inputs(labels[:, i, j, c], L, model.dtype)
    return labels
'''

# A second right answer, written another way: normalised probabilities, searchsorted, a flat loop.
RIGHT_SEARCH = '''import numpy as np


def draw(logits, u, temperature=1.0):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return np.argmax(z, axis=1)
    z = z / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(e, axis=1)
    out = [np.searchsorted(row, v * row[-1], side="right") for row, v in zip(cdf, u)]
    return np.minimum(np.array(out, dtype=np.int64), z.shape[1] - 1)


def sample_naive(model, n, u):
    levels = model.config.levels
    labels = np.zeros(u.shape, dtype=np.int64)
    for flat in range(labels[0].size):
        i, j, c = np.unravel_index(flat, u.shape[1:])
        x = (labels / (levels - 1)).astype(model.dtype)
        labels[:, i, j, c] = draw(model.forward(x)[:, i, j, c], u[:, i, j, c])
    return labels
'''

LOOPS = '''    for i in range(H):
        for j in range(W):
            for c in range(C):
                logits = model.forward(x)[:, i, j, c]
'''

# (the right text, the mistake, words the message must hold)
MISTAKES = [
    ("(cdf <= u[:, None]", "(cdf < u[:, None]",
     "boundaries: WRONG: drew level 0, of probability 0, at logits [-inf, 0.0, 0.0]"),
    ("z = z / temperature", "z = z * temperature", "temperature: WRONG: the temperature multiplies the logits"),
    (LOOPS, LOOPS.replace("for i in range(H)", "for J in range(W)").replace("for j in range(W)", "for i in range(H)")
     .replace("for J in", "for j in"), "grey images: WRONG: the raster order runs down the columns first"),
    (LOOPS, LOOPS.replace("                logits = model.forward(x)[:, i, j, c]\n", "").replace(
        "            for c in range(C):\n", "            y = model.forward(x)\n            for c in range(C):\n"
        "                logits = y[:, i, j, c]\n"),
     "colour images: WRONG: all the colours of a pixel come from one forward pass"),
    ("    return np.minimum(label, logits.shape[1] - 1)\n", "    return label\n",
     "boundaries: WRONG: drew level 3 of 3 at logits [0.0, 0.0, 0.0]"),
    ("        return z.argmax(axis=1)\n", "        pass\n", "temperature 0 must take each row's argmax"),
    ("z = logits.astype(np.float64)", "z = logits", "draw computed in float32: convert the logits to float64"),
    ("                x[:, i, j, c] = labels_to_inputs(labels[:, i, j, c], L, model.dtype)\n", "",
     "grey images: WRONG: the drawn labels never reach the model's input"),
    ("labels[:, i, j, c] = draw(logits, u[:, i, j, c])", "labels[:, i, j, c] = draw(logits, u[:, j, i, c])",
     "autoregressive order: WRONG: changing only the uniform of sub-pixel"),
    ("z = z / temperature", "z = z", "temperature: WRONG: the temperature is ignored"),
    ("return np.minimum(label, logits.shape[1] - 1)", "return np.minimum(label, logits.shape[1] - 1) + 1",
     "draw: WRONG: every level is off by one"),
]


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_SEARCH], ids=["library", "searchsorted"])
def test_a_right_answer_passes_every_part_in_seconds(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    assert "levels 2, 8, 256" in lines[0] and "temperatures 0 (argmax), 0.5 and 2" in lines[2]


@pytest.mark.parametrize("right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, right, wrong, words):
    assert right in RIGHT
    mistake_is_named(NAME, tmp_path, RIGHT.replace(right, wrong, 1), words)


def test_the_planted_mistakes_cover_the_four_typical_ones():
    words = " ".join(m[2] for m in MISTAKES)
    for typical in ("of probability 0", "the temperature multiplies the logits", "runs down the columns first",
                    "come from one forward pass"):
        assert typical in words


def test_a_wrong_sampler_leaves_draw_right(tmp_path):
    (tmp_path / f"{NAME}.py").write_text(RIGHT.replace(MISTAKES[3][0], MISTAKES[3][1]))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert [line.split(": ")[1] for line in lines] == ["right", "right", "right", "right", "WRONG", "right"]


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    exception_is_shown_as_theirs(NAME, tmp_path, RIGHT.replace("cdf = np.cumsum(p, axis=1)", "cdf = np.cumsum(q)"),
                                 12, "draw", "NameError: name 'q' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_functions(tmp_path, capsys):
    hints = hints_and_solution(NAME, tmp_path, capsys, "minipixel/sampling.py", "sample_naive")
    assert "<=" in " ".join(hints)
