"""``minipixel learn`` exercise softmax_ce: the skeleton is "not written yet", the library's answer passes
every part in float32 and float64, in seconds, and each typical mistake fails with words that name it."""

import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel.learn import runner

NAME = "softmax_ce"

# The library's answer (minipixel/losses.py, softmax_cross_entropy), as a learner's file.
RIGHT = '''import numpy as np


def softmax_cross_entropy(logits, labels, batch=None):
    levels = logits.shape[-1]
    B = logits.shape[0] if batch is None else batch
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=-1, keepdims=True)
    flat_labels = labels.reshape(-1).astype(np.intp)
    rows = np.arange(flat_labels.size)
    shifted_true = shifted.reshape(-1, levels)[rows, flat_labels]
    loss = float((np.log(total).sum() - shifted_true.sum()) / B)
    dlogits = e / total
    dflat = dlogits.reshape(-1, levels)
    dflat[rows, flat_labels] -= 1.0
    dlogits /= B
    return loss, dlogits
'''

# A second right answer, written another way (log-softmax, take_along_axis, a one-hot).
RIGHT_LOGP = '''import numpy as np


def softmax_cross_entropy(logits, labels, batch=None):
    n = len(logits) if batch is None else batch
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, labels[..., None], axis=-1)
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
    return -float(picked.sum()) / n, (np.exp(logp) - onehot) / n
'''

# (the right line, the mistake, words the message must hold)
MISTAKES = [
    ("shifted = logits - logits.max(axis=-1, keepdims=True)", "shifted = logits",
     "large logits: WRONG: inf/nan at logits of 1000: subtract the max before exp"),
    ("    dlogits /= B\n", "", "gradient: WRONG: dlogits not divided by the batch"),
    ("/ B)", "/ labels.size)", "loss: WRONG: the loss is averaged over the sub-pixels: sum the NLL over each image's"),
    ("total = e.sum(axis=-1, keepdims=True)", "total = e.sum(axis=0, keepdims=True)",
     "loss: WRONG: the softmax is over the wrong axis"),
    ("total = e.sum(axis=-1, keepdims=True)", "total = e.sum(axis=0, keepdims=True)",
     "gradient: WRONG: the softmax is over the wrong axis: your probabilities sum to 1 over axis 0"),
    ("B = logits.shape[0] if batch is None else batch", "B = logits.shape[0]",
     "batch=5 was given: the mean is over batch images"),
    ("/ B)", ")", "the loss is summed over the batch: take the mean over images"),
    ("    dflat[rows, flat_labels] -= 1.0\n", "", "the one-hot of the label is not subtracted"),
    ("dlogits /= B", "dlogits /= -B", "gradient: WRONG: dlogits has the wrong sign"),
    ("dflat[rows, flat_labels] -= 1.0", "dflat[rows, 0] -= 1.0", "gradient: WRONG: dlogits wrong: (softmax - onehot)"),
    ("shifted = logits - logits.max(axis=-1, keepdims=True)", "shifted = logits - logits.max()",
     "large logits: WRONG: inf/nan at logits of 1000"),
    ("shifted = logits - logits.max(axis=-1, keepdims=True)",
     "shifted = logits - logits.max(axis=-1, keepdims=True)\n    logits -= logits.max(axis=-1, keepdims=True)",
     "softmax_cross_entropy changed logits"),
]


def _write(folder, text):
    (folder / f"{NAME}.py").write_text(text)


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_LOGP], ids=["library", "log-softmax"])
def test_a_right_answer_passes_every_part_in_float32_and_float64_in_seconds(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    for part in ("loss", "gradient", "large logits"):
        assert "float64 and float32" in next(line for line in lines if line.startswith(part + ":"))
    assert "levels 2, 8, 256" in lines[0]


@pytest.mark.parametrize("right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, right, wrong, words):
    assert right in RIGHT
    mistake_is_named(NAME, tmp_path, RIGHT.replace(right, wrong, 1), words)


def test_the_planted_mistakes_cover_the_four_typical_ones():
    words = " ".join(m[2] for m in MISTAKES)
    for typical in ("subtract the max before exp", "not divided by the batch", "averaged over the sub-pixels",
                    "the softmax is over the wrong axis"):
        assert typical in words


def test_without_the_max_shift_only_the_large_logits_fail(tmp_path):
    _write(tmp_path, RIGHT.replace(MISTAKES[0][0], MISTAKES[0][1]))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert [line.split(": ")[1] for line in lines] == ["right", "right", "WRONG", "right"]


def test_a_gradient_inconsistent_with_the_loss_fails_the_gradient_check(tmp_path):
    _write(tmp_path, RIGHT_LOGP.replace("return -float(picked.sum()) / n", "return -2 * float(picked.sum()) / n"))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    check_line = next(line for line in lines if line.startswith("gradient check:"))
    assert "WRONG: your dlogits disagrees with central differences of your loss" in check_line


def test_a_loss_that_is_not_one_number_is_named(tmp_path):
    _write(tmp_path, RIGHT_LOGP.replace("-float(picked.sum()) / n", "-picked.reshape(len(logits), -1).sum(1) / n"))
    text, code = runner.check(NAME, tmp_path)
    assert code == 1 and "the loss should be one number (nats per image), got shape" in text
    assert "Traceback" not in text


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    exception_is_shown_as_theirs(NAME, tmp_path, RIGHT.replace("e = np.exp(shifted)", "e = np.exp(shifted_logits)"),
                                 8, "softmax_cross_entropy", "NameError: name 'shifted_logits' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_function(tmp_path, capsys):
    hints_and_solution(NAME, tmp_path, capsys, "minipixel/losses.py", "softmax_cross_entropy")
