"""``minipixel learn`` exercise adam: the skeleton is "not written yet", the library's answer passes every
part in float32 and float64, in seconds, and each typical mistake fails with words that name it."""

import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel.learn import runner

NAME = "adam"

# The library's answer (minipixel/optim.py, Adam._update), as a learner's file.
RIGHT = '''import math

import numpy as np


def adam_step(p, g, m, v, t, lr, betas, eps):
    b1, b2 = betas
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    denom = np.sqrt(v)
    denom *= 1.0 / math.sqrt(c2)
    denom += eps
    p -= (lr / c1) * m / denom
'''

# A second right answer, written as the formula reads (m_hat, v_hat, slices).
RIGHT_HAT = '''import numpy as np


def adam_step(p, g, m, v, t, lr, betas, eps):
    b1, b2 = betas
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g ** 2
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    p[...] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
'''

# (the answer, the right line, the mistake, words the message must hold)
MISTAKES = [
    (RIGHT_HAT, "m_hat = m / (1 - b1 ** t)", "m_hat = m",
     "steps: WRONG: step 1 moves p by lr * (1 - b1) instead of about lr: is m divided by 1 - b1^t?"),
    (RIGHT_HAT, "(1 - b2) * g ** 2", "(1 - b2) * g", "steps: WRONG: v accumulates g, not g^2"),
    (RIGHT_HAT, "(np.sqrt(v_hat) + eps)", "np.sqrt(v_hat + eps)", "steps: WRONG: eps is inside the square root"),
    (RIGHT, "c1, c2 = 1 - b1 ** t, 1 - b2 ** t", "c1, c2 = 1 - b1 ** (t - 1), 1 - b2 ** (t - 1)",
     "steps: WRONG: division by zero at step t = 1: the steps count from t = 1"),
    (RIGHT_HAT, "m_hat = m / (1 - b1 ** t)", "m_hat = m / (1 - b1 ** (t - 1))",
     "steps: WRONG: inf/nan in p after step t = 1: the steps count from t = 1"),
    (RIGHT_HAT, "v_hat = v / (1 - b2 ** t)", "v_hat = v", "is v divided by 1 - b2^t before the square root?"),
    (RIGHT_HAT, "m_hat = m / (1 - b1 ** t)\n    v_hat = v / (1 - b2 ** t)", "m_hat = m\n    v_hat = v",
     "no bias correction: step 1 moves p by lr (1 - b1^t) / sqrt(1 - b2^t) instead of about lr"),
    (RIGHT_HAT, "p[...] = p - lr", "p = p - lr", "p is not updated in place"),
    (RIGHT_HAT, "m[...] = b1 * m", "m = b1 * m", "m is not updated in place"),
    (RIGHT_HAT, "p[...] = p - lr", "p[...] = p + lr", "p moves along the gradient"),
    (RIGHT, "c1, c2 = 1 - b1 ** t, 1 - b2 ** t", "c1, c2 = 1 - b1 ** (t + 1), 1 - b2 ** (t + 1)",
     "the bias correction uses t + 1"),
    (RIGHT, "m += (1 - b1) * g", "m += g", "m: the factor (1 - b1) is missing"),
    (RIGHT, "m += (1 - b1) * g", "m += (1 - b1) * g\n    g *= 0", "adam_step changed g"),
]


def _write(folder, text):
    (folder / f"{NAME}.py").write_text(text)


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_HAT], ids=["library", "m_hat-v_hat"])
def test_a_right_answer_passes_every_part_in_float32_and_float64_in_seconds(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    assert "t = 1..5" in lines[0] and "float64 and float32" in lines[0]


@pytest.mark.parametrize("answer, right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, answer, right, wrong, words):
    assert right in answer
    mistake_is_named(NAME, tmp_path, answer.replace(right, wrong, 1), words)


def test_the_planted_mistakes_cover_the_four_typical_ones():
    words = " ".join(m[3] for m in MISTAKES)
    for typical in ("is m divided by 1 - b1^t?", "v accumulates g, not g^2", "eps is inside the square root",
                    "the steps count from t = 1"):
        assert typical in words


def test_a_step_away_from_the_minimum_fails_the_quadratic_too(tmp_path):
    _write(tmp_path, RIGHT_HAT.replace("p[...] = p - lr", "p[...] = p + lr"))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert "a quadratic: WRONG: 100 steps of your Adam" in lines[1] and "does p move against the gradient?" in lines[1]


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    exception_is_shown_as_theirs(NAME, tmp_path, RIGHT_HAT.replace("m_hat = m / (1 - b1 ** t)", "m_hat = m / (1 - beta1 ** t)"),
                                 8, "adam_step", "NameError: name 'beta1' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_adam(tmp_path, capsys):
    hints_and_solution(NAME, tmp_path, capsys, "minipixel/optim.py", "Adam")
