"""``minipixel learn`` exercise im2col: the skeleton is "not written yet", the library's answer (and a
padded-copy answer) passes every part in float32 and float64, in seconds, and each typical mistake
fails with words that name it."""
import time

import numpy as np
import pytest
from learn_helpers import loaded_module_passes

from minipixel.cli import main
from minipixel.learn import EXERCISES, runner

# The library's answer (minipixel/im2col.py, im2col_loop and col2im_loop), as a learner's file.
LIBRARY = '''import numpy as np


def _tap_slices(offset, size):
    lo = max(0, -offset)
    hi = max(lo, min(size, size - offset))
    return slice(lo, hi), slice(lo + offset, hi + offset)


def im2col(x, taps, kernel):
    B, H, W, C = x.shape
    cols = np.empty((B, H, W, len(taps), C), dtype=x.dtype)
    half = kernel // 2
    for t, (ky, kx) in enumerate(taps):
        rows, src_rows = _tap_slices(ky - half, H)
        cs, src_cs = _tap_slices(kx - half, W)
        col = cols[:, :, :, t]
        col[:, rows, cs] = x[:, src_rows, src_cs]
        col[:, : rows.start] = 0
        col[:, rows.stop :] = 0
        col[:, rows, : cs.start] = 0
        col[:, rows, cs.stop :] = 0
    return cols


def col2im(cols, taps, kernel, shape):
    dx = np.zeros(shape, dtype=cols.dtype)
    half = kernel // 2
    for t, (ky, kx) in enumerate(taps):
        rows, src_rows = _tap_slices(ky - half, shape[1])
        cs, src_cs = _tap_slices(kx - half, shape[2])
        dx[:, src_rows, src_cs] += cols[:, rows, cs, t]
    return dx
'''

# The chapter's way: a padded copy, one slice per tap.
PADDED = '''import numpy as np


def im2col(x, taps, kernel):
    B, H, W, C = x.shape
    p = kernel // 2
    x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    cols = np.zeros((B, H, W, len(taps), C), dtype=x.dtype)
    for t, (ky, kx) in enumerate(taps):
        cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]
    return cols


def col2im(cols, taps, kernel, shape):
    B, H, W, C = shape
    p = kernel // 2
    dx_pad = np.zeros((B, H + 2 * p, W + 2 * p, C), dtype=cols.dtype)
    for t, (ky, kx) in enumerate(taps):
        dx_pad[:, ky:ky + H, kx:kx + W] += cols[:, :, :, t]
    return dx_pad[:, p:p + H, p:p + W]
'''

RIGHT = {"library": LIBRARY, "padded": PADDED}

# (the answer, the right text, the mistake, words the message must hold)
MISTAKES = [
    # the shift's sign flipped: tap (ky, kx) reads the future
    ("library", "rows, src_rows = _tap_slices(ky - half, H)\n        cs, src_cs = _tap_slices(kx - half, W)",
     "rows, src_rows = _tap_slices(half - ky, H)\n        cs, src_cs = _tap_slices(half - kx, W)",
     "im2col: WRONG: im2col (3x3 mask A, x (2, 5, 5, 1), float64): tap (ky=0, kx=0) reads "
     "the wrong position: off by (+2, +2); the shift's sign is flipped, so it reads the future"),
    ("padded", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]",
     "cols[:, :, :, t] = x_pad[:, 2 * p - ky:2 * p - ky + H, 2 * p - kx:2 * p - kx + W]",
     "the shift's sign is flipped, so it reads the future (1 row below, 1 column right)"),
    # off by one row: not a flip
    ("padded", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]",
     "cols[:, :, :, t] = x_pad[:, ky + 1:ky + 1 + H, kx:kx + W]",
     "tap (ky=0, kx=0) reads the wrong position: off by (+1, 0)"),
    # col2im assigning instead of accumulating
    ("library", "dx[:, src_rows, src_cs] += cols[:, rows, cs, t]", "dx[:, src_rows, src_cs] = cols[:, rows, cs, t]",
     "col2im: WRONG: col2im overwrites instead of adding where taps overlap"),
    ("padded", "dx_pad[:, ky:ky + H, kx:kx + W] += cols[:, :, :, t]",
     "dx_pad[:, ky:ky + H, kx:kx + W] = cols[:, :, :, t]", "col2im overwrites instead of adding where taps overlap"),
    # padding with the edge values, or wrapping around
    ("padded", "x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))",
     "x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode='edge')",
     "tap (ky=0, kx=0): padding is not zero: it repeats the edge values"),
    ("padded", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]",
     "cols[:, :, :, t] = np.roll(x, (p - ky, p - kx), axis=(1, 2))", "padding is not zero: it wraps around"),
    ("library", "        col[:, : rows.start] = 0\n", "",
     "tap (ky=0, kx=0): padding is not zero: where the tap falls outside the image, cols must be 0"),
    # taps in the wrong order: column by column instead of the order given
    ("padded", "    for t, (ky, kx) in enumerate(taps):\n        cols[",
     "    for t, (ky, kx) in enumerate(sorted(taps, key=lambda tap: tap[::-1])):\n        cols[",
     "tap (ky=0, kx=1): column t=1 of cols holds tap (ky=1, kx=0)'s values: the taps are in the wrong order"),
    ("padded", "    for t, (ky, kx) in enumerate(taps):\n        dx_pad",
     "    for t, (ky, kx) in enumerate(taps[::-1]):\n        dx_pad", "col2im: the taps are in the wrong order"),
    # col2im's shift the wrong way: also not the adjoint
    ("library", "dx[:, src_rows, src_cs] += cols[:, rows, cs, t]", "dx[:, rows, cs] += cols[:, src_rows, src_cs, t]",
     "col2im sends the entries the wrong way: the shift's sign is flipped"),
    # the autoregressive order, through im2col(x) @ Wm + b: an im2col that reads the present or the future
    ("padded", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]",
     "cols[:, :, :, t] = x_pad[:, 2 * p - ky:2 * p - ky + H, 2 * p - kx:2 * p - kx + W]",
     "autoregressive order: WRONG: through im2col(x) @ Wm + b, changing only x at (row 2, column 2) changed y at "
     "(row 1, column 1): y may depend only on x at earlier positions (the rows above, the columns left in its row), "
     "never on x at its own position (mask A); tap (ky=0, kx=0) at row 1, column 1 read x at row 2, column 2 (1 row "
     "below, 1 column right), the shift's sign flipped; it reads 1 row above, 1 column left: cols[n, i, j, t] = "
     "x[n, i + ky - c, j + kx - c] (3x3 mask A, x (2, 5, 5, 1), float64)"),
    ("padded", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]",
     "cols[:, :, :, t] = x_pad[:, ky + 1:ky + 1 + H, kx:kx + W]",
     "autoregressive order: WRONG: through im2col(x) @ Wm + b, changing only x at (row 2, column 2) changed y at "
     "(row 1, column 3)"),
    ("padded", "x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))",
     "x_pad = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode='edge')",
     "tap (ky=0, kx=2) at row 0, column 1 read x at row 0, column 2 (1 column right); it reads 1 row above, 1 column "
     "right, outside the image, so 0"),
    ("padded", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]",
     "cols[:, :, :, t] = np.roll(x, (p - ky, p - kx), axis=(1, 2))",
     "changing only x at (row 4, column 4) changed y at (row 0, column 0)"),
    ("padded", "    for t, (ky, kx) in enumerate(taps):\n        cols[",
     "    for t, (ky, kx) in enumerate(sorted(taps, key=lambda tap: tap[::-1])):\n        cols[",
     "autoregressive order: WRONG: through im2col(x) @ Wm + b, changing only x at (row 2, column 3, colour 1 "
     "(channel 1)) changed y at (row 2, column 3, colour 0 (channels 0-1))"),
    ("padded", "    for t, (ky, kx) in enumerate(taps):\n        cols[",
     "    for t, (ky, kx) in enumerate(sorted(taps, key=lambda tap: tap[::-1])):\n        cols[",
     "read x at row 2, column 3 (its own position), the place of another tap (are the taps in the order given?)"),
    ("padded", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W]", "cols[:, :, :, t] = x_pad[:, ky:ky + H, kx:kx + W, ::-1]",
     "tap (ky=1, kx=1) at row 2, column 3 read x at row 2, column 3 (its own position), its place, but with the "
     "channels out of order"),
]


def _write(folder, text):
    (folder / "im2col.py").write_text(text)


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    assert main(["learn", "start", "im2col", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "im2col.py").read_text().count("raise NotImplementedError") == 2
    capsys.readouterr()
    assert main(["learn", "check", "im2col", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("not written yet") == len(EXERCISES["im2col"].PARTS)
    assert "Traceback" not in out and "WRONG" not in out
    assert runner.status("im2col", tmp_path) == "fails (not written yet)"


@pytest.mark.parametrize("answer", list(RIGHT))
def test_a_right_answer_passes_every_part_in_float32_and_float64_in_seconds(tmp_path, answer):
    _write(tmp_path, RIGHT[answer])
    began = time.perf_counter()
    text, code = runner.check("im2col", tmp_path)
    assert time.perf_counter() - began < 10
    assert code == 0, text
    lines = [line for line in text.splitlines() if ": right: " in line]
    assert [line.split(":")[0] for line in lines] == [name for name, _ in EXERCISES["im2col"].PARTS]
    assert "float64 and float32" in lines[0] and "float64 and float32" in lines[1]
    assert "kernels 3, 5, 7; masks A and B" in lines[0]
    assert "MaskedConv2d's forward" in lines[3]
    assert "never changes y at an earlier one, nor with mask A at its own, on 6 shapes" in lines[4]
    assert text.endswith("im2col: PASSES")
    assert runner.status("im2col", tmp_path) == "passes"


@pytest.mark.parametrize("answer, right, wrong, words", MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_typical_mistake_fails_with_words_that_name_it(tmp_path, answer, right, wrong, words):
    assert right in RIGHT[answer]
    _write(tmp_path, RIGHT[answer].replace(right, wrong, 1))
    text, code = runner.check("im2col", tmp_path)
    assert code == 1
    assert words in text, text
    assert "Traceback" not in text


def test_the_planted_mistakes_cover_the_four_typical_ones():
    words = " ".join(m[3] for m in MISTAKES)
    for typical in ("sign is flipped", "overwrites instead of adding", "padding is not zero", "wrong order"):
        assert typical in words


def test_a_wrong_im2col_fails_the_adjoint_and_the_convolution_too(tmp_path):
    # im2col off by a row, col2im right (the same slice in col2im would keep the two adjoint)
    _write(tmp_path, PADDED.replace("= x_pad[:, ky:ky + H, kx:kx + W]", "= x_pad[:, ky + 1:ky + 1 + H, kx:kx + W]"))
    text, _ = runner.check("im2col", tmp_path)
    assert "adjoint: WRONG: col2im is not the adjoint of your im2col" in text
    assert "as a convolution: WRONG: im2col(x) as a (B*H*W, T*C) matrix" in text
    assert "col2im: right:" in text


def test_the_order_part_reports_on_its_own(tmp_path):
    # im2col and the convolution wrong, but causal: the order part is right; col2im plays no part in it
    _write(tmp_path, PADDED.replace("= x_pad[:, ky:ky + H, kx:kx + W]", "= 2 * x_pad[:, ky:ky + H, kx:kx + W]"))
    lines, _ = runner.grade("im2col", tmp_path)
    assert [line.split(": ")[1] for line in lines] == ["WRONG", "right", "WRONG", "WRONG", "right"]
    assert lines[4].startswith("autoregressive order: right: through im2col(x) @ Wm + b, changing x at one sub-pixel")


def test_the_order_rule_passes_the_librarys_layer_and_im2col():
    from minipixel.im2col import im2col_loop
    from minipixel.learn import ex_im2col
    from minipixel.learn.grade import order_violation

    for index, case in enumerate(ex_im2col.CASES):
        layer, Wm = ex_im2col._layer(case, np.random.default_rng(index))
        x = np.random.default_rng(index).standard_normal(case[:4])
        assert order_violation(layer.forward, x, case[5], case[6]) is None
        assert order_violation(lambda a: ex_im2col._through(im2col_loop, a, layer, Wm, "x"), x, case[5], case[6]) is None
        if case[5] == "B":  # a mask B layer sees its own position, which mask A forbids: the rule is not vacuous
            assert order_violation(layer.forward, x, "A", case[6])[0][:2] == (case[1] // 2, case[2] // 2)


def test_nan_passes_no_part(tmp_path):
    _write(tmp_path, PADDED.replace("return dx_pad[:, p:p + H, p:p + W]", "return dx_pad[:, p:p + H, p:p + W] * np.nan"))
    text, _ = runner.check("im2col", tmp_path)
    assert [line.split(":")[1].strip() for line in text.splitlines()[:4]] == ["right", "WRONG", "WRONG", "WRONG"]


def test_cols_of_the_wrong_shape_is_named_not_a_traceback(tmp_path):
    _write(tmp_path, PADDED.replace("    return cols\n", "    return cols.reshape(B * H * W, -1)\n"))
    text, code = runner.check("im2col", tmp_path)
    assert code == 1 and "Traceback" not in text
    assert "im2col: WRONG: cols (3x3 mask A, x (2, 5, 5, 1), float64) has shape (50, 4), expected (2, 5, 5, 4, 1)" in text


def test_writing_into_x_is_named(tmp_path):
    _write(tmp_path, PADDED.replace("    p = kernel // 2\n    x_pad", "    p = kernel // 2\n    x[...] = 0\n    x_pad", 1))
    text, _ = runner.check("im2col", tmp_path)
    assert "im2col changed x" in text


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    _write(tmp_path, PADDED.replace("return dx_pad[:, p:p + H, p:p + W]", "return dx_pad[:, p:p + H, p:p + W] + oops"))
    text, code = runner.check("im2col", tmp_path)
    assert code == 1
    assert f'File "{tmp_path / "im2col.py"}", line 20, in col2im' in text
    assert "NameError: name 'oops' is not defined" in text and "ex_im2col.py" not in text


def test_the_grader_works_on_a_loaded_module_as_the_others_do(tmp_path):
    loaded_module_passes("im2col", tmp_path, LIBRARY)


def test_solution_and_chapter_name_the_librarys_functions(capsys):
    assert main(["learn", "solution", "im2col"]) == 0
    out = capsys.readouterr().out
    assert "minipixel/im2col.py" in out and "im2col_loop" in out and "col2im_loop" in out
    from pathlib import Path

    chapter = Path(__file__).resolve().parents[1] / EXERCISES["im2col"].CHAPTER
    assert "minipixel learn start im2col" in chapter.read_text()
