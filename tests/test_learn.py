"""``minipixel learn``: the grader accepts a right answer, fails typical mistakes with words that
name them, says "not written yet" for a skeleton, and shows a learner's exception as theirs."""
import json
import re
import time

import numpy as np
import pytest

from minipixel.cli import main
from minipixel.learn import EXERCISES, runner
from minipixel.learn.grade import load

MASKS = '''import numpy as np


def conv_mask(kernel, in_channels, out_channels, mask_type, colors=1):
    c = kernel // 2
    mask = np.zeros((kernel, kernel, in_channels, out_channels))
    mask[:c] = 1.0
    mask[c, :c] = 1.0
    g_in = (np.arange(in_channels) * colors // in_channels)[:, None]
    g_out = (np.arange(out_channels) * colors // out_channels)[None, :]
    mask[c, c] = (g_out > g_in) if mask_type == "A" else (g_out >= g_in)
    return mask
'''

RELU = '''import numpy as np


def relu_forward(x):
    y = np.maximum(x, 0)
    return y, x


def relu_backward(dy, cache):
    return dy * (cache > 0)
'''

CONV = '''import numpy as np


def conv_forward(x, W, b, mask):
    B, H, Wd, _ = x.shape
    k = W.shape[0]
    p = k // 2
    Wm = W * mask
    x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    y = np.zeros((B, H, Wd, W.shape[3]), dtype=x.dtype) + b
    for ky in range(k):
        for kx in range(k):
            y += x_pad[:, ky:ky + H, kx:kx + Wd] @ Wm[ky, kx]
    return y


def conv_backward(dy, x, W, mask):
    B, H, Wd, C_in = x.shape
    k = W.shape[0]
    p = k // 2
    Wm = W * mask
    x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    dx_pad = np.zeros_like(x_pad)
    dW = np.zeros_like(W)
    for ky in range(k):
        for kx in range(k):
            window = x_pad[:, ky:ky + H, kx:kx + Wd].reshape(-1, C_in)
            dW[ky, kx] = window.T @ dy.reshape(-1, dy.shape[3])
            dx_pad[:, ky:ky + H, kx:kx + Wd] += dy @ Wm[ky, kx].T
    dW = dW * mask
    db = dy.sum(axis=(0, 1, 2))
    return dx_pad[:, p:p + H, p:p + Wd], dW, db
'''

RIGHT = {"masks": MASKS, "relu": RELU, "conv_loops": CONV}

# (exercise, the right line, the mistake, words the message must hold)
MISTAKES = [
    ("masks", '(g_out > g_in) if mask_type == "A"', '(g_out >= g_in) if mask_type == "A"',
     "mask A: the centre tap is open for colour group 0 -> 0: mask A must close it"),
    ("masks", "mask[:c] = 1.0", "mask[:c] = 1.0\n    mask[c + 1:] = 1.0", "taps below the centre row are open"),
    ("masks", "mask[c, :c] = 1.0", "mask[c, c + 1:] = 1.0", "taps right of the centre on the centre row are open"),
    ("masks", "(np.arange(in_channels) * colors // in_channels)", "(np.arange(in_channels) % colors)",
     "centre tap, input channel"),
    ("relu", "np.maximum(x, 0)", "np.abs(x)", "forward: WRONG: y wrong where x < 0: max(x, 0) is 0 there"),
    ("relu", "np.maximum(x, 0)", "np.maximum(x, 0, out=x)", "relu_forward changed x"),
    ("relu", "dy * (cache > 0)", "dy.copy()", "backward: WRONG: dx wrong where x < 0 (the gradient must be 0 there)"),
    ("relu", "dy * (cache > 0)", "(cache > 0).astype(dy.dtype)", "dx wrong where x > 0 (it must be dy there"),
    ("conv_loops", "    dW = dW * mask\n", "", "for every channel: is the mask applied to dW?"),
    ("conv_loops", "dy.sum(axis=(0, 1, 2))", "dy.sum(axis=(0, 2))",
     "db is the sum of dy over batch, rows and columns"),
    ("conv_loops", "dy.sum(axis=(0, 1, 2))", "dy[0].sum(axis=(0, 1))",
     "db wrong: it is the sum of dy over batch, rows and columns"),
    ("conv_loops", "y += x_pad[:, ky:ky + H, kx:kx + Wd] @ Wm[ky, kx]",
     "y += x_pad[:, ky:ky + H, kx:kx + Wd] @ Wm[k - 1 - ky, k - 1 - kx]", "the kernel flipped"),
    ("conv_loops", "dy @ Wm[ky, kx].T", "dy @ W[ky, kx].T", "dx wrong: use Wm = W * mask, not W"),
    ("conv_loops", "y = np.zeros((B, H, Wd, W.shape[3]), dtype=x.dtype) + b",
     "y = np.zeros((B, H, Wd, W.shape[3]), dtype=x.dtype)", "the bias: add b once"),
    # the autoregressive order: the first "Wm = W * mask" is the forward's
    ("conv_loops", "    Wm = W * mask\n", "    Wm = W\n",
     "autoregressive order: WRONG: changing only x at (row 2, column 2) changed y at (row 1, column 1): y may depend "
     "only on x at earlier positions (the rows above, the columns left in its row), never on x at its own position "
     "(mask A); is the mask applied to W (Wm = W * mask)? (3x3 mask A, x (2, 5, 5, 1), C_out 4, float64)"),
    ("conv_loops", "Wm = W * mask", "Wm = W * (1 - mask)",
     "autoregressive order: WRONG: changing only x at (row 2, column 2) changed y at (row 1, column 1)"),
    ("conv_loops", "Wm = W * mask", "Wm = W * (1 - mask)", "the mask is inverted: Wm = W * mask keeps the taps"),
    ("conv_loops", "y += x_pad[:, ky:ky + H, kx:kx + Wd] @ Wm[ky, kx]",
     "y += x_pad[:, ky:ky + H, kx:kx + Wd] @ Wm[k - 1 - ky, k - 1 - kx]",
     "autoregressive order: WRONG: changing only x at (row 2, column 2) changed y at (row 1, column 1): y may depend"),
    ("conv_loops", "y += x_pad[:, ky:ky + H, kx:kx + Wd] @ Wm[ky, kx]",
     "y += x_pad[:, ky:ky + H, kx:kx + Wd] @ Wm[k - 1 - ky, k - 1 - kx]",
     "; the kernel is flipped, so the taps read below and right"),
    ("conv_loops", "    Wm = W * mask\n", "    Wm = W * mask\n    Wm[p, p] = W[p, p]\n",
     "autoregressive order: WRONG: changing only x at (row 2, column 2) changed y at (row 2, column 2)"),
    ("conv_loops", "    Wm = W * mask\n", "    Wm = W * mask\n    Wm[p, p] = W[p, p]\n",
     "y reads x at its own position through the centre tap: is the mask applied there too"),
    ("conv_loops", "Wm = W * mask", "Wm = W * mask[:, :, ::-1, ::-1]",  # colour groups reversed
     "autoregressive order: WRONG: changing only x at (row 3, column 2, colour 1 (channel 1)) changed y at (row 3, "
     "column 2, colour 0 (channels 0-1)): y may depend only on x at earlier positions (the rows above, the columns "
     "left in its row) and, at its own position, on the colours before its own (mask A)"),
    ("conv_loops", "(p, p), (p, p), (0, 0)))", "(p, p), (p, p), (0, 0)), mode='edge')",
     "autoregressive order: WRONG: changing only x at (row 0, column 2) changed y at (row 0, column 1)"),
    ("conv_loops", "(p, p), (p, p), (0, 0)))", "(p, p), (p, p), (0, 0)), mode='edge')",
     "is x_pad padded with zeros (np.pad's default)?"),
]


def _write(folder, name, text):
    (folder / f"{name}.py").write_text(text)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_a_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys, name):
    assert main(["learn", "start", name, "--dir", str(tmp_path)]) == 0
    assert "raise NotImplementedError" in (tmp_path / f"{name}.py").read_text()
    capsys.readouterr()
    assert main(["learn", "check", name, "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "not written yet" in out and "Traceback" not in out and "WRONG" not in out
    assert runner.status(name, tmp_path) == "fails (not written yet)"


@pytest.mark.parametrize("name", list(RIGHT))  # a later exercise's right answers are in its own tests/test_learn_NAME.py
def test_the_right_answer_passes_every_part_in_seconds(tmp_path, name):
    _write(tmp_path, name, RIGHT[name])
    began = time.perf_counter()
    text, code = runner.check(name, tmp_path)
    assert time.perf_counter() - began < 10
    assert code == 0, text
    parts = [line for line in text.splitlines() if ": right: " in line]
    assert len(parts) == len(EXERCISES[name].PARTS)
    assert text.endswith(f"{name}: PASSES")
    assert runner.status(name, tmp_path) == "passes"


def test_the_right_answers_are_checked_in_float32_and_float64(tmp_path):
    path = tmp_path / "answer.py"
    path.write_text(RELU)
    lines, _ = EXERCISES["relu"].check(load(path))
    assert "float32 and float64" in lines[0] and "float32 and float64" in lines[1]
    path.write_text(CONV)
    lines, _ = EXERCISES["conv_loops"].check(load(path))
    assert "float64 and float32" in lines[0] and "float64 and float32" in lines[1]




@pytest.mark.parametrize("name, right, wrong, words", MISTAKES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, name, right, wrong, words):
    assert right in RIGHT[name]
    _write(tmp_path, name, RIGHT[name].replace(right, wrong, 1))
    text, code = runner.check(name, tmp_path)
    assert code == 1
    assert words in text, text
    assert "Traceback" not in text


def test_conv_loops_order_part_reports_on_its_own(tmp_path):
    # a forward wrong but causal fails only the forward's parts; the order part runs after a failed forward
    _write(tmp_path, "conv_loops", CONV.replace("dtype=x.dtype) + b", "dtype=x.dtype)", 1))
    lines, _ = runner.grade("conv_loops", tmp_path)
    assert [line.split(": ")[:2] for line in lines] == [["forward", "WRONG"], ["backward", "right"],
                                                         ["gradient check", "WRONG"], ["autoregressive order", "right"]]
    assert "changing x at one sub-pixel (the centre, the first row, the first column, the last)" in lines[3]
    _write(tmp_path, "conv_loops", CONV.replace("    Wm = W * mask\n", "    Wm = W\n", 1))
    lines, _ = runner.grade("conv_loops", tmp_path)
    assert [line.split(": ")[1] for line in lines] == ["WRONG", "right", "WRONG", "WRONG"]


def test_the_order_rule_is_the_librarys_and_finds_the_first_earlier_sub_pixel():
    from minipixel.conv_reference import conv2d_reference
    from minipixel.learn import ex_conv_loops
    from minipixel.learn.grade import order_violation
    from minipixel.masks import conv_mask

    for index, case in enumerate(ex_conv_loops.CASES):  # the library's own convolution keeps the order
        x, W, b, mask, _ = ex_conv_loops._arrays(case, np.float64, index)
        assert order_violation(lambda a: conv2d_reference(a, W * mask, b), x, case[6], case[7]) is None
    x, W, b, _, _ = ex_conv_loops._arrays(ex_conv_loops.CASES[0], np.float64, 0)  # grey 3x3, x 5x5
    assert order_violation(lambda a: conv2d_reference(a, W, b), x, "A", 1) == ((1, 1, 0), (2, 2, 0))
    mask_b = conv_mask(3, 1, 4, "B")  # sees its own position: right for mask B, wrong for mask A
    assert order_violation(lambda a: conv2d_reference(a, W * mask_b, b), x, "B", 1) is None
    assert order_violation(lambda a: conv2d_reference(a, W * mask_b, b), x, "A", 1) == ((2, 2, 0), (2, 2, 0))
    x, W, b, _, _ = ex_conv_loops._arrays(ex_conv_loops.CASES[3], np.float64, 0)  # RGB 5x5, x 6x5: centre (3, 2)
    mask_b = conv_mask(5, 3, 6, "B", 3)  # each colour group sees its own: wrong for mask A
    assert order_violation(lambda a: conv2d_reference(a, W * mask_b, b), x, "A", 3) == ((3, 2, 0), (3, 2, 0))


def test_every_exercise_has_at_least_two_planted_mistakes():
    assert all(sum(m[0] == name for m in MISTAKES) >= 2 for name in RIGHT)


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    _write(tmp_path, "relu", RELU.replace("return y, x", "return y, undefined_name"))
    text, code = runner.check("relu", tmp_path)
    assert code == 1
    assert f'File "{tmp_path / "relu.py"}", line 6, in relu_forward' in text
    assert "NameError: name 'undefined_name' is not defined" in text
    assert "grade.py" not in text and "ex_relu.py" not in text


def test_a_file_that_does_not_load_says_so_with_its_line(tmp_path):
    _write(tmp_path, "masks", "def conv_mask(:\n")
    text, code = runner.check("masks", tmp_path)
    assert code == 1 and "could not be loaded" in text and "line 1" in text and "SyntaxError" in text


def test_start_never_overwrites_the_learners_work(tmp_path, capsys):
    _write(tmp_path, "relu", "# my work\n")
    assert main(["learn", "start", "relu", "--dir", str(tmp_path)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert (tmp_path / "relu.py").read_text() == "# my work\n"


def test_hint_advances_and_is_remembered_in_the_folder(tmp_path, capsys):
    hints = EXERCISES["conv_loops"].HINTS
    for number in range(1, len(hints) + 2):
        assert main(["learn", "hint", "conv_loops", "--dir", str(tmp_path)]) == 0
        shown = min(number, len(hints))
        assert capsys.readouterr().out.startswith(f"hint {shown} of {len(hints)}: {hints[shown - 1]}")
    assert json.loads((tmp_path / ".hints.json").read_text()) == {"conv_loops": len(hints)}


def test_list_shows_every_exercise_in_order_with_its_status(tmp_path, capsys):
    _write(tmp_path, "masks", MASKS)
    _write(tmp_path, "relu", RELU.replace("np.maximum(x, 0)", "np.abs(x)"))
    assert main(["learn", "list", "--dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:1 + len(EXERCISES)]] == list(EXERCISES)
    assert list(EXERCISES)[:3] == ["masks", "relu", "conv_loops"]
    assert "passes" in lines[1] and "fails" in lines[2] and "not started" in lines[3]
    assert main(["learn"]) == 0  # no action: the list, in ./minipixel-exercises/


def test_solution_names_the_librarys_file_and_function(capsys):
    assert main(["learn", "solution", "conv_loops"]) == 0
    out = capsys.readouterr().out
    assert "minipixel/conv_reference.py" in out and "conv2d_reference_backward" in out


def test_an_unknown_exercise_is_one_line(capsys):
    assert main(["learn", "check", "softmax"]) == 1
    assert "no exercise 'softmax'" in capsys.readouterr().err


def test_learn_alone_with_a_folder_lists_that_folders_progress(tmp_path, capsys):
    from minipixel.cli import main

    assert main(["learn", "start", "relu", "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["learn", "--dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "relu" in listing and "fails" in listing.split("relu", 1)[1].splitlines()[0]


def test_a_nan_output_fails_rather_than_passing_every_tolerance(tmp_path):
    from minipixel.learn import grade

    assert grade.max_error(np.array([np.nan, 1.0]), np.array([1.0, 1.0])) == float("inf")
    _write(tmp_path, "conv_loops", CONV.replace("    return y\n", "    return y * np.nan\n", 1))
    text, status = runner.check("conv_loops", tmp_path)
    assert status == 1 and "forward: WRONG: y (" in text and "holds NaN or infinity" in text
    assert "gradient check: WRONG" in text


def test_every_exercise_has_its_chapter_and_the_path_lists_them_in_order():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "learn"
    assert all(EXERCISES[name].CHAPTER == f"docs/learn/{name}.md" and (docs / f"{name}.md").exists()
               for name in EXERCISES)
    listed = re.findall(r"^(\d+)\. \[(\w+)\]\((\w+)\.md\)", (docs / "README.md").read_text(), re.M)
    assert listed == [(str(n), name, name) for n, name in enumerate(EXERCISES, 1)]
    for n, name in enumerate(EXERCISES, 1):  # each chapter's title has its number on the path
        assert (docs / f"{name}.md").read_text().startswith(f"# Exercise {n}: {name}\n")
    assert list(EXERCISES)[:4] == ["masks", "relu", "conv_loops", "im2col"] and list(EXERCISES)[-1] == "xp"
