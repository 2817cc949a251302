"""``minipixel learn`` exercise xp: the skeleton is "not written yet", an answer written against
``xp = array_module(x)`` passes on NumPy and on the strict stand-in for CuPy, and each typical mistake
(NumPy's function on a device array, a hidden host copy, a NumPy result for a device input, importing
cupy) fails with words that name it; the grader leaves the stand-in as it found it."""

import numpy as np
import pytest

from learn_helpers import (exception_is_shown_as_theirs, hints_and_solution, loaded_module_passes,
                           mistake_is_named, right_answer_passes, skeleton_is_not_written_yet)
from minipixel import backend
from minipixel.learn import EXERCISES, runner
from minipixel.testing import strict

NAME = "xp"

RIGHT = '''from minipixel.backend import array_module


def softmax(z):
    xp = array_module(z)
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def bias_relu(x, b):
    xp = array_module(x)
    return xp.maximum(x + xp.asarray(b, dtype=x.dtype), 0)
'''

# Another right answer: the library's log_softmax, and a where instead of a maximum.
RIGHT_OTHER = '''from minipixel.backend import array_module
from minipixel.losses import log_softmax


def softmax(z):
    return array_module(z).exp(log_softmax(z))


def bias_relu(x, b):
    xp = array_module(x)
    y = x + b
    return xp.where(y > 0, y, xp.zeros_like(y))
'''

# (the right line, the mistake, words the message must hold)
MISTAKES = [
    ("e = xp.exp(", "e = np.exp(",
     "device: WRONG: softmax: np.exp on a device array: use xp = array_module(x) and xp.exp"),
    ("return xp.maximum(", "return np.maximum(",
     "device: WRONG: bias_relu: np.maximum on a device array: use xp = array_module(x) and xp.maximum"),
    ("z - z.max(axis=-1, keepdims=True)", "z - float(z.max())",
     "device: WRONG: softmax: brought a number to the host (float(...)"),
    ("z - z.max(axis=-1, keepdims=True)", "z - float(z.max())",
     "numpy: WRONG: softmax (NumPy): inf/nan at z near +-1000: subtract each row's max"),
    ("xp.asarray(b, dtype=x.dtype)", "np.asarray(b, dtype=x.dtype)",
     "device: WRONG: bias_relu: a hidden copy to the host: np.asarray"),
    ("    xp = array_module(z)\n", "    xp = array_module(z)\n    z = np.asarray(z)\n",
     "device: WRONG: softmax: a hidden copy to the host"),
    ("return e / e.sum(axis=-1, keepdims=True)", "return to_numpy(e / e.sum(axis=-1, keepdims=True))",
     "device: WRONG: softmax: returned a NumPy array for a device input"),
    ("return e / e.sum(axis=-1, keepdims=True)", "return xp.asarray(to_numpy(e / e.sum(axis=-1, keepdims=True)))",
     "device: WRONG: softmax: copied to the host and back"),
    ("from minipixel.backend import array_module\n",
     "try:\n    import cupy\nexcept ImportError:\n    cupy = None\nfrom minipixel.backend import array_module\n",
     "no cupy: WRONG: your file imports cupy"),
    ("e.sum(axis=-1, keepdims=True)", "e.sum(axis=0, keepdims=True)",
     "numpy: WRONG: softmax (NumPy): over the wrong axis"),
    ("z - z.max(axis=-1, keepdims=True)", "z - z.max(axis=0, keepdims=True)",
     "numpy: WRONG: softmax (NumPy): inf/nan at z near +-1000"),
    ("xp.asarray(b, dtype=x.dtype)", "xp.asarray(b, dtype=xp.float64)",
     "numpy: WRONG: bias_relu (NumPy, float32) has dtype float64, expected float32"),
    ("xp.asarray(b, dtype=x.dtype)", "xp.asarray(b[::-1], dtype=x.dtype)",
     "bias_relu (NumPy): wrong values: max(x + b, 0)"),
    ("    e = xp.exp(", "    z -= z.max(axis=-1, keepdims=True)\n    e = xp.exp(", "softmax changed z"),
]

PRELUDE = "import numpy as np\nfrom minipixel.backend import to_numpy\n"


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    skeleton_is_not_written_yet(NAME, tmp_path, capsys)


def test_the_skeletons_numpy_versions_fail_on_the_device_by_name(tmp_path):
    """The NumPy-only functions the learner starts from are right on NumPy and wrong on the device."""
    skeleton = EXERCISES[NAME].SKELETON
    answer = skeleton + "\n\nsoftmax, bias_relu = softmax_numpy, bias_relu_numpy\n"
    (tmp_path / f"{NAME}.py").write_text(answer)
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert lines[0].startswith("numpy: right: ") and lines[2].startswith("no cupy: right: ")
    assert lines[1] == ("device: WRONG: softmax: a hidden copy to the host: np.asarray / np.array of a device "
                        "array, or a NumPy array mixed into a device op (CuPy refuses both): use xp and keep the "
                        "arrays on the device")


@pytest.mark.parametrize("answer", [RIGHT, RIGHT_OTHER], ids=["xp", "log_softmax"])
def test_a_right_answer_passes_on_numpy_and_on_the_stand_in(tmp_path, answer):
    lines = right_answer_passes(NAME, tmp_path, answer)
    assert "float32 and float64" in lines[0] and "float32 and float64" in lines[1]
    assert "strict stand-in" in lines[1]


@pytest.mark.parametrize("right, wrong, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, right, wrong, words):
    assert right in RIGHT
    mistake_is_named(NAME, tmp_path, PRELUDE + RIGHT.replace(right, wrong, 1), words)


def test_the_planted_mistakes_cover_the_typical_ones():
    words = " ".join(m[2] for m in MISTAKES)
    for typical in ("np.exp on a device array: use xp = array_module(x) and xp.exp", "brought a number to the host",
                    "a hidden copy to the host", "returned a NumPy array for a device input",
                    "your file imports cupy"):
        assert typical in words


def test_only_the_device_part_fails_for_numpy_on_a_device_array(tmp_path):
    (tmp_path / f"{NAME}.py").write_text(PRELUDE + RIGHT.replace("e = xp.exp(", "e = np.exp("))
    lines, passed = runner.grade(NAME, tmp_path)
    assert not passed
    assert [line.split(": ")[1] for line in lines] == ["right", "WRONG", "right"]


def test_the_grader_leaves_the_stand_in_as_it_found_it(tmp_path):
    (tmp_path / f"{NAME}.py").write_text(PRELUDE + RIGHT.replace("e = xp.exp(", "e = np.exp("))
    runner.grade(NAME, tmp_path)  # a refusal raised inside the grader's patch
    backend.register_device("strict", strict)
    a = strict.asarray(np.array([1.0, -2.0]))
    assert isinstance(np.exp(a), strict.ndarray) and isinstance(np.maximum(a, 0), strict.ndarray)
    assert isinstance(np.float32(2) * a, strict.ndarray)


def test_a_numpy_scalar_times_a_device_array_is_allowed(tmp_path):
    answer = RIGHT.replace("return e / e.sum(", "return np.float32(1) * e / e.sum(")
    right_answer_passes(NAME, tmp_path, "import numpy as np\n" + answer)


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    exception_is_shown_as_theirs(NAME, tmp_path, RIGHT.replace("e = xp.exp(z", "e = xp.exp(zz"),
                                 6, "softmax", "NameError: name 'zz' is not defined")


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes(NAME, tmp_path, RIGHT)


def test_hints_and_solution_name_the_librarys_function(tmp_path, capsys):
    hints = hints_and_solution(NAME, tmp_path, capsys, "minipixel/backend.py", "array_module")
    assert any("float(z.max())" in hint for hint in hints)
