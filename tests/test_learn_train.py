"""``minipixel learn`` exercise train, the capstone: on right pieces a right answer trains to the stated loss
and draws digits; a missing or wrong piece, and each planted mistake, fail with words that name them."""
import pytest

import test_learn
import test_learn_adam
import test_learn_data
import test_learn_residual
import test_learn_sampler
import test_learn_softmax_ce
from learn_helpers import exception_is_shown_as_theirs, hints_and_solution
from minipixel.cli import main
from minipixel.learn import EXERCISES, ex_train, runner
from minipixel.learn.grade import load, run_parts

NAME = "train"

# The right answers of the earlier exercises, as the learner's files the capstone runs on.
PIECES = {"masks": test_learn.MASKS, "conv_loops": test_learn.CONV, "residual": test_learn_residual.RIGHT,
          "softmax_ce": test_learn_softmax_ce.RIGHT, "adam": test_learn_adam.RIGHT, "data": test_learn_data.RIGHT,
          "sampler": test_learn_sampler.RIGHT}

ANSWER = '''def conv(a, layer):
    return mine.conv_loops.conv_forward(a, layer["W"], layer["b"], layer["mask"])


def forward(params, x):
    h = conv(x, params["first"])
    blocks = []
    for block in params["blocks"]:
        h, block_cache = mine.residual.residual_forward(h, block)
        blocks.append(block_cache)
    r = np.maximum(h, 0)
    a = conv(r, params["hidden"])
    ra = np.maximum(a, 0)
    y = conv(ra, params["out"])
    return y.reshape(y.shape[:3] + (1, LEVELS)), (x, blocks, h, r, a, ra)


def backward(params, cache, dlogits):
    x, blocks, h, r, a, ra = cache
    back = mine.conv_loops.conv_backward
    grads = {}
    dy = dlogits.reshape(dlogits.shape[:3] + (LEVELS,))
    dra, dW, db = back(dy, ra, params["out"]["W"], params["out"]["mask"])
    grads["out"] = {"W": dW, "b": db}
    dr, dW, db = back(dra * (a > 0), r, params["hidden"]["W"], params["hidden"]["mask"])
    grads["hidden"] = {"W": dW, "b": db}
    dh = dr * (h > 0)
    grads["blocks"] = [None] * len(blocks)
    for k in reversed(range(len(blocks))):
        dh, grads["blocks"][k] = mine.residual.residual_backward(dh, blocks[k])
    _, dW, db = back(dh, x, params["first"]["W"], params["first"]["mask"])
    grads["first"] = {"W": dW, "b": db}
    return grads


def train_step(params, state, x, labels, lr):
    logits, cache = forward(params, x)
    loss, dlogits = mine.softmax_ce.softmax_cross_entropy(logits, labels)
    grads = backward(params, cache, dlogits)
    state["t"] += 1
    for p, g, m, v in pairs(params, grads, state):
        mine.adam.adam_step(p, g, m, v, state["t"], lr, (0.9, 0.999), 1e-8)
    return loss
'''
# The skeleton's given code, then the answer: the learner's whole file.
RIGHT = ex_train.SKELETON[: ex_train.SKELETON.index("def forward(")] + ANSWER

# (the right text, the mistake, the part, words its line must hold); none of them reaches the training.
MISTAKES = [
    ('    for block in params["blocks"]:\n', '    for block in params["blocks"][:1]:\n', "forward",
     "only the first block ran: run residual_forward on every block"),
    ("    a = conv(r, params[\"hidden\"])", "    a = conv(h, params[\"hidden\"])", "forward",
     "the logits differ from the library's arithmetic"),
    ("    dh = dr * (h > 0)", "    dh = dr", "backward",
     'grads["blocks"][1]["W3"]['),
    ("    for k in reversed(range(len(blocks))):", "    for k in range(len(blocks)):", "backward",
     'grads["blocks"][1]["W3"]['),
    ('    grads["first"] = {"W": dW, "b": db}', '    grads["first"] = {"W": dW * 0, "b": db}', "backward",
     'grads["first"]["W"]['),
    ('layer(7, 1, FILTERS, "A")', 'layer(7, 1, FILTERS, "B")', "autoregressive order",
     "changed the logits at the same pixel: an output may see only the pixels before it (is the first layer's "
     "mask A?) (the network of your make_params)"),
]


def _folder(tmp_path, answer=RIGHT, **pieces):
    for name, text in {**PIECES, **pieces}.items():
        if text is not None:
            (tmp_path / f"{name}.py").write_text(text)
    (tmp_path / f"{NAME}.py").write_text(answer)
    return tmp_path


def _parts(folder, names):
    """The lines of some of the capstone's parts (not the training: it takes tens of seconds)."""
    parts = [(name, fn) for name, fn in ex_train.PARTS if name in names]
    return run_parts(parts, load(folder / f"{NAME}.py"))


def test_the_capstone_comes_after_the_pieces_it_is_made_of():
    order = list(EXERCISES)
    assert all(order.index(piece) < order.index(NAME) for piece in ex_train.PIECES)


def test_the_skeleton_as_started_is_not_written_yet_without_a_traceback(tmp_path, capsys):
    assert main(["learn", "start", NAME, "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["learn", "check", NAME, "--dir", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [name for name, _ in ex_train.PARTS]
    assert lines[0] == "your pieces: not written yet (train uses your masks.py of exercise masks: minipixel learn " \
                       "start masks)"
    assert all("not written yet" in line for line in lines[1:-2])
    assert lines[-2] == "samples: not run (it draws from the trained network: training must pass first)"
    assert "Traceback" not in "\n".join(lines) and "WRONG" not in "\n".join(lines)
    assert runner.status(NAME, tmp_path) == "fails (not written yet)"


def test_the_right_answer_on_right_pieces_trains_to_the_stated_loss_and_draws_digits(tmp_path):
    folder = _folder(tmp_path)
    text, code = runner.check(NAME, folder)
    assert code == 0, text
    lines = text.splitlines()
    assert all(": right: " in line for line in lines[:-1]) and lines[-1] == "train: PASSES"
    training = lines[4]
    nll = float(training.split("; ")[-1].split(" nats")[0])
    assert nll <= ex_train.TARGET and f"{ex_train.STEPS} steps of {ex_train.BATCH} digits" in training
    assert runner.status(NAME, folder) == "passes"  # the last check's verdict: the list does not train again
    png = folder / "train-samples.png"
    assert png.exists() and str(png) in lines[5]
    from PIL import Image

    with Image.open(png) as picture:  # 8 digits in a row, each 28 x 28 at scale 4, with a 1-pixel border
        assert picture.size == (ex_train.DRAWN * (28 * 4 + 1) + 1, 28 * 4 + 2)


def test_a_planted_mistake_in_the_training_step_does_not_pass(tmp_path):
    folder = _folder(tmp_path, RIGHT.replace('    state["t"] += 1\n', ""))
    assert runner.status(NAME, folder) == "not checked yet"
    text, code = runner.check(NAME, folder)
    assert code == 1 and runner.status(NAME, folder) == "fails"
    with open(folder / f"{NAME}.py", "a") as f:
        f.write("# an edit\n")
    assert runner.status(NAME, folder) == "edited since checked"
    assert 'training: WRONG: count each step in train_step (state["t"] += 1) before adam_step' in text
    assert "samples: not run (it draws from the trained network: training must pass first)" in text


def test_a_step_counted_twice_is_named(tmp_path):
    folder = _folder(tmp_path, RIGHT.replace('    state["t"] += 1\n', '    state["t"] += 2\n'))
    lines, _ = _parts(folder, {"training"})
    assert lines == ['training: WRONG: state["t"] is 2 after step 1: ' + ex_train._UNCOUNTED]


@pytest.mark.parametrize("right, wrong, part, words", MISTAKES, ids=[f"{NAME}-{i}" for i in range(len(MISTAKES))])
def test_a_planted_mistake_fails_its_part_with_words_that_name_it(tmp_path, right, wrong, part, words):
    assert right in RIGHT
    lines, passed = _parts(_folder(tmp_path, RIGHT.replace(right, wrong, 1)), {part})
    assert not passed and lines[0].startswith(f"{part}: WRONG: ") and words in lines[0], lines


def test_the_right_answer_passes_the_parts_before_the_training(tmp_path):
    lines, passed = _parts(_folder(tmp_path), {"your pieces", "forward", "backward", "autoregressive order"})
    assert passed, lines
    assert lines[2] == "backward: right: every weight's and bias's gradient agrees with float64 central " \
                       "differences (18 arrays)"


def test_a_backward_mistake_says_which_gradients_after_it_are_right(tmp_path):
    lines, _ = _parts(_folder(tmp_path, RIGHT.replace("    dh = dr * (h > 0)", "    dh = dr")), {"backward"})
    assert 'every gradient after it is right (grads["hidden"]["W"], grads["hidden"]["b"], ...)' in lines[0]


def test_a_missing_piece_is_not_written_yet_and_a_wrong_one_is_named(tmp_path):
    lines, _ = _parts(_folder(tmp_path, adam=None), {"your pieces", "forward"})
    assert lines == ["your pieces: not written yet (train uses your adam.py of exercise adam: minipixel learn "
                     "start adam)", lines[1]]
    assert lines[1].startswith("forward: right: ")  # the forward does not use Adam
    wrong_adam = test_learn_adam.RIGHT.replace("c1, c2 = 1 - b1 ** t, 1 - b2 ** t", "c1, c2 = 1, 1")
    assert wrong_adam != test_learn_adam.RIGHT
    lines, _ = _parts(_folder(tmp_path, adam=wrong_adam), {"your pieces"})
    assert lines == ["your pieces: WRONG: your adam.py does not pass its own check yet: minipixel learn check adam "
                     "says what to mend; the capstone runs on it"]


def test_the_residual_block_runs_on_the_learners_own_convolution(tmp_path):
    folder = _folder(tmp_path)
    mine = ex_train.Yours(folder / f"{NAME}.py")
    assert mine.residual.conv is mine.conv_loops.conv_forward
    assert mine.residual.conv_backward is mine.conv_loops.conv_backward
    with pytest.raises(AttributeError):
        mine.numpy  # only the pieces are read


def test_a_learners_exception_is_shown_as_their_traceback(tmp_path):
    _folder(tmp_path)
    source = RIGHT.replace("    r = np.maximum(h, 0)\n", "    r = np.maximum(hh, 0)\n")
    line = source[: source.index("np.maximum(hh")].count("\n") + 1
    exception_is_shown_as_theirs(NAME, tmp_path, source, line, "forward", "NameError: name 'hh' is not defined")


def test_hints_and_solution_name_the_librarys_functions(tmp_path, capsys):
    hints = hints_and_solution(NAME, tmp_path, capsys, "minipixel/step.py", "loss_and_gradients")
    assert "residual_backward" in " ".join(hints)
