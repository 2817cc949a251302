"""``minipixel learn`` exercise data: the skeleton is "not written yet", the library's answer passes every
part in seconds, and each typical mistake fails with words that name it."""

import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel.learn import EXERCISES, runner

NAME = "data"

# The library's answer (minipixel/data.py quantize, binarize, labels_to_inputs after to_labels' x = images / 255;
# minipixel/losses.py bits_per_dim), as a learner's file.
RIGHT = '''import math

import numpy as np


def quantize(images, levels):
    x = images.astype(np.float32) / np.float32(255)
    labels = np.floor(x * levels)
    labels = np.minimum(labels, levels - 1)
    return labels.astype(np.uint8)


def binarize(images, threshold=0.5):
    x = images.astype(np.float32) / np.float32(255)
    return (x >= threshold).astype(np.uint8)


def labels_to_inputs(labels, levels):
    return labels.astype(np.float32) / (levels - 1)


def bits_per_dim(nll_nats, dims):
    return nll_nats / (math.log(2.0) * dims)
'''

# A second right answer, written another way: integer arithmetic and float64 on the way.
RIGHT_INTEGER = '''import numpy as np


def quantize(images, levels):
    return (images.astype(np.int64) * levels // 255).clip(0, levels - 1).astype(np.uint8)


def binarize(images, threshold=0.5):
    return np.where(images / 255.0 >= threshold, 1, 0).astype(np.uint8)


def labels_to_inputs(labels, levels):
    return (labels / (levels - 1)).astype(np.float32)


def bits_per_dim(nll_nats, dims):
    return float(np.log2(np.e) * nll_nats / dims)
'''

# (the right line, the mistake, words the message must hold)
MISTAKES = [
    ("    labels = np.floor(x * levels)\n    labels = np.minimum(labels, levels - 1)\n",
     "    labels = np.round(x * (levels - 1))\n",
     "quantize: WRONG: 194 (x = 0.7608) gives label 2, the library's 3 (levels=4)"),
    ("    labels = np.floor(x * levels)\n    labels = np.minimum(labels, levels - 1)\n",
     "    labels = np.round(x * (levels - 1))\n",
     "you round x * (levels - 1) to the nearest label; the labels are 4 equal bins of [0, 1], floor(x * levels)"),
    ("    labels = np.minimum(labels, levels - 1)\n", "",
     "quantize: WRONG: 255 (x = 1.0) gives label 2 with levels=2, but labels stop at 1: x = 1.0 would be bin "
     "levels, and joins the last bin (np.minimum(..., levels - 1))"),
    ("return labels.astype(np.uint8)", "return labels.astype(np.int64)",
     "quantize: WRONG: quantize returned dtype int64, expected uint8: labels fit in a byte"),
    ("labels = np.floor(x * levels)", "labels = np.floor(images * levels / 256)",
     "quantize: WRONG:"),
    ("return (x >= threshold).astype(np.uint8)", "return (x > threshold).astype(np.uint8)",
     "binarize: WRONG: 51 (x = 0.2000) at threshold 0.2 gives 0, expected 1: a value exactly at the threshold is "
     "white, x >= threshold (not >)"),
    ("return (x >= threshold).astype(np.uint8)", "return (images >= threshold).astype(np.uint8)",
     "gives 1 at threshold 0.5, expected 0: compare the intensity x = images / 255 with the threshold, not the raw"),
    ("return (x >= threshold).astype(np.uint8)", "return x >= threshold",
     "binarize: WRONG: binarize returned dtype bool, expected uint8 of 0 and 1"),
    ("return labels.astype(np.float32) / (levels - 1)", "return labels.astype(np.float32) / levels",
     "labels_to_inputs: WRONG: the top level maps to 0.5, not 1.0 (levels=2): divide by levels - 1, not by levels"),
    ("return labels.astype(np.float32) / (levels - 1)", "return labels / (levels - 1)",
     "labels_to_inputs: WRONG: labels_to_inputs returned dtype float64, expected float32"),
    ("return labels.astype(np.float32) / (levels - 1)", "return labels // (levels - 1)",
     "labels_to_inputs: WRONG: labels_to_inputs returned dtype uint8, expected float32: // is integer division"),
    ("return nll_nats / (math.log(2.0) * dims)", "return nll_nats / (math.log(10.0) * dims)",
     "bits_per_dim: WRONG: bits_per_dim(543.25, 784) = 0.300932: that divides by ln 10 (log10)"),
    ("return nll_nats / (math.log(2.0) * dims)", "return nll_nats / math.log(2.0)",
     "bits_per_dim: WRONG: bits_per_dim(543.25, 784) = 783.744: that is bits per image; divide by dims = 784"),
    ("return nll_nats / (math.log(2.0) * dims)", "return nll_nats * math.log(2.0) / dims",
     "that multiplies by ln 2; one bit is ln 2 nats, so divide by it"),
    ("return nll_nats / (math.log(2.0) * dims)", "return nll_nats / dims",
     "that is nats per dimension; divide by ln 2 as well to get bits"),
    ("return nll_nats / (math.log(2.0) * dims)", "return math.log2(nll_nats) / dims",
     "bits_per_dim: WRONG: bits_per_dim(543.25, 784) = 0.0115886, expected 0.999674: nats / (ln 2 * dims)"),
    ("x = images.astype(np.float32) / np.float32(255)\n    labels",
     "images //= 2\n    x = images.astype(np.float32) / np.float32(255)\n    labels",
     "quantize: WRONG: quantize changed its input"),
]


def _write(folder, text):
    (folder / f"{NAME}.py").write_text(text)


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_INTEGER], ids=["library", "integer"])
def test_a_right_answer_passes_every_part_in_seconds(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    assert "levels 2, 4, 8, 256" in lines[0] and "every value 0..255" in lines[0]
    assert "x >= threshold" in lines[1] and "float32" in lines[2]


@pytest.mark.parametrize("right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, right, wrong, words):
    assert right in RIGHT
    mistake_is_named(NAME, tmp_path, RIGHT.replace(right, wrong, 1), words)


def test_the_planted_mistakes_cover_the_typical_ones():
    words = " ".join(m[2] for m in MISTAKES)
    for typical in ("to the nearest label", "divide by levels - 1", "divides by ln 10", "divide by dims",
                    "x >= threshold (not >)"):
        assert typical in words


def test_a_mistake_in_one_function_fails_only_its_part(tmp_path):
    _write(tmp_path, RIGHT.replace("/ (levels - 1)", "/ levels"))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert [line.split(": ")[1] for line in lines] == ["right", "right", "WRONG", "right"]


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    exception_is_shown_as_theirs(NAME, tmp_path, RIGHT.replace("labels = np.floor(x * levels)",
                                                               "labels = np.floor(x * level)"),
                                 8, "quantize", "NameError: name 'level' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_functions(tmp_path, capsys):
    hints_and_solution(NAME, tmp_path, capsys, "minipixel/data.py", "quantize")
    assert "bits_per_dim" in EXERCISES[NAME].SOLUTION and "minipixel/losses.py" in EXERCISES[NAME].SOLUTION
