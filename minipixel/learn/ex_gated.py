"""Exercise "gated": the Gated PixelCNN's gated unit and the vertical stack's shift down, with their backwards."""
import numpy as np

from ..gated import Gate, ShiftDown
from ..gradcheck import numerical_gradient
from ..masks import group_slices
from .grade import Wrong, as_array, function, max_error, run_parts

NAME = "gated"
TITLE = "the gated unit tanh(a) * sigmoid(b) and the vertical stack's shift down, forward and backward"
CHAPTER = "docs/learn/gated.md"
SOLUTION = "minipixel/gated.py, classes Gate and ShiftDown (methods forward and backward)"

SKELETON = '''"""Exercise gated: write gate_forward, gate_backward, shift_down and shift_down_backward.

Check them with: minipixel learn check gated
"""
import numpy as np


def gate_forward(x):
    """The gated unit, over the last axis: x (..., 2h) -> y (..., h), x's dtype.

    The channels come in pairs of neighbours: channel 2k is a_k (the even
    channels, x[..., 0::2]) and channel 2k + 1 is b_k (the odd ones,
    x[..., 1::2]); together they make output channel k:

        y[..., k] = tanh(a_k) * sigmoid(b_k),    sigmoid(b) = 1 / (1 + exp(-b))

    tanh gives the value, sigmoid (between 0 and 1) how much of it goes through.
    Neighbours, not the first half with the second half: with colour groups
    (contiguous blocks of channels, red's first, then green's, then blue's)
    channels 2k and 2k + 1 both lie in the colour group of output channel k,
    so the gate never mixes two colours. Do not change x.

    Hint: np.tanh, np.exp; (1 + np.tanh(b / 2)) / 2 is the same sigmoid without overflow.
    """
    raise NotImplementedError


def gate_backward(x, dy):
    """The gradient of the loss with respect to x, given dy = dL/dy: dx (..., 2h), x's dtype.

    x: gate_forward's input (..., 2h); dy: (..., h). With t = tanh(a), s = sigmoid(b):

        da = dy * s * (1 - t^2)       the slope of tanh is 1 - tanh^2
        db = dy * t * s * (1 - s)     the slope of sigmoid is sigmoid * (1 - sigmoid)

    da goes to the even channels of dx and db to the odd ones: where a and b
    came from. Do not change x or dy.

    Hint: compute t and s again from x, then write dx[..., 0::2] and dx[..., 1::2].
    """
    raise NotImplementedError


def shift_down(x):
    """The vertical stack's output moved down one row: x (B, H, W, C) -> y, same shape and dtype.

        y[:, i] = x[:, i - 1]  for i = 1 .. H - 1,     y[:, 0] = 0

    The rows are axis 1. The vertical stack at row i has seen the rows up to and
    including row i; moved down one row, what reaches row i has seen only the
    rows above it, so the horizontal stack can add it without seeing its own
    row. Row 0 gets zeros (nothing is above it); the last row of x goes nowhere.
    Do not change x.

    Hint: start from np.zeros_like(x) and copy x[:, :-1] into it.
    """
    raise NotImplementedError


def shift_down_backward(dy):
    """The gradient with respect to shift_down's input, given dy: dx, dy's shape and dtype.

    Row i of x went to row i + 1 of y, so its gradient comes back from there:

        dx[:, i] = dy[:, i + 1]  for i = 0 .. H - 2,   dx[:, H - 1] = 0

    Do not change dy.
    """
    raise NotImplementedError
'''

HINTS = [
    "gate_forward: a = x[..., 0::2] and b = x[..., 1::2] (neighbours: channel 2k with 2k + 1); "
    "return np.tanh(a) * sigmoid(b), with sigmoid(b) = (1 + np.tanh(b / 2)) / 2, which keeps float32 as float32.",
    "gate_backward: y = t * s, the product rule: da = dy * s * dt/da and db = dy * t * ds/db; "
    "dt/da = 1 - t * t (not 1 - t), ds/db = s * (1 - s) (not s).",
    "gate_backward: dx = np.empty(x.shape, dtype=x.dtype); dx[..., 0::2] = da; dx[..., 1::2] = db.",
    "shift_down: y = np.zeros_like(x); y[:, 1:] = x[:, :-1] (row i gets row i - 1). Its backward goes the other "
    "way: dx = np.zeros_like(dy); dx[:, :-1] = dy[:, 1:].",
]

# Grey: h not a multiple of 3; colour: h a multiple of 3, as the library's colour models have it.
GATE_SHAPES = [(7, 2), (2, 3, 4, 10), (2, 4, 4, 12), (3, 5, 18)]
COLOUR_SHAPES = [(2, 2, 3, 12), (4, 18)]  # h = 6 and 9, three colour groups
GRADCHECK_SHAPE = (2, 3, 2, 6)
SHIFT_SHAPES = [(2, 4, 3, 2), (1, 5, 5, 3), (3, 2, 4, 1), (2, 1, 3, 2)]
ORDER_SHAPE = (2, 5, 3, 2)
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
COLOURS = ("red", "green", "blue")


def _sigmoid(b):
    return 0.5 * (1 + np.tanh(0.5 * b))


def _input(rng, shape, dtype):
    return (2.0 * rng.standard_normal(shape)).astype(dtype)


def _what(shape, dtype):
    return f"x of shape {shape}, {np.dtype(dtype).name}"


def _gate_cases(seed):
    """(x, dtype, its description, the generator) for every gate shape, float64 first, then float32."""
    rng = np.random.default_rng(seed)
    for dtype in (np.float64, np.float32):
        for shape in GATE_SHAPES:
            yield _input(rng, shape, dtype), dtype, _what(shape, dtype), rng


def _close(got, want, dtype):
    return max_error(got, want) <= TOLERANCE[dtype]


def _name_fault(got, variants, faults, same, what):
    """Wrong with the words of the first typical mistake whose result ``got`` is (``same(got, variant)``)."""
    for mistake, variant in variants.items():
        if same(got, variant):
            raise Wrong(f"{faults[mistake]} ({what})")


def _call(fn, name, args, what):
    """The learner's fn on copies it may not change; Wrong if it changes them anyway."""
    before = [a.copy() for a in args]
    with np.errstate(all="ignore"):  # an overflow shows as a wrong value, named below
        out = fn(*args)
    names = {"gate_forward": ("x",), "gate_backward": ("x", "dy"), "shift_down": ("x",),
             "shift_down_backward": ("dy",)}[name]
    view = "[..., 0::2]" if name.startswith("gate") else "[:, 1:]"
    for arg, old, arg_name in zip(args, before, names):
        if not np.array_equal(arg, old):
            raise Wrong(f"{name} changed its input {arg_name}: compute in a new array ({arg_name}{view} is a view: "
                        f"writing into it writes {arg_name}) ({what})")
    return out


def _gate_variants(x):
    """What a forward with a typical mistake gives: {mistake: y}, in float64."""
    x = x.astype(np.float64)
    a, b, h = x[..., 0::2], x[..., 1::2], x.shape[-1] // 2
    first, second = x[..., :h], x[..., h:]
    return {
        "swapped": np.tanh(b) * _sigmoid(a),
        "blocks": np.tanh(first) * _sigmoid(second),
        "blocks swapped": _sigmoid(first) * np.tanh(second),
        "tanh twice": np.tanh(a) * np.tanh(b),
        "sign": np.tanh(a) * _sigmoid(-b),
    }


FORWARD_FAULTS = {
    "swapped": "the halves are swapped: sigmoid is on the even channels and tanh on the odd ones; "
               "tanh goes on a = x[..., 0::2], sigmoid on b = x[..., 1::2]",
    "blocks": "the channels are split into a first half and a second half: the pairs are neighbours, "
              "a = x[..., 0::2] and b = x[..., 1::2] (a first/second half split pairs one colour's a with "
              "another colour's b)",
    "blocks swapped": "the channels are split into a first half and a second half, with sigmoid on the first: "
                      "the pairs are neighbours, tanh on a = x[..., 0::2] and sigmoid on b = x[..., 1::2]",
    "tanh twice": "the gate is tanh(b): it is sigmoid(b) = 1 / (1 + exp(-b)), between 0 and 1",
    "sign": "sigmoid has the wrong sign in its exp: sigmoid(b) = 1 / (1 + exp(-b))",
}


def _gate_forward(module):
    fn = function(module, "gate_forward")
    for x, dtype, what, _ in _gate_cases(0):
        y = as_array(_call(fn, "gate_forward", (x,), what), f"y ({what})", x.shape[:-1] + (x.shape[-1] // 2,), dtype)
        want = Gate().forward(x.copy())
        if _close(y, want, dtype):
            continue
        _name_fault(y, _gate_variants(x), FORWARD_FAULTS, lambda a, b: _close(a, b, dtype), what)
        raise Wrong(f"y differs from the library's Gate (max relative error {max_error(y, want):.1e}): "
                    f"y[..., k] = tanh(x[..., 2k]) * sigmoid(x[..., 2k + 1]) ({what})")
    return (f"y = tanh(a) * sigmoid(b) as the library's Gate on {len(GATE_SHAPES)} shapes, grey (h = 1, 5) and "
            "colour (h = 6, 9), float32 and float64")


def _gate_backward_variants(x, dy):
    """What a backward with a typical mistake gives: {mistake: dx}, in float64."""
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    a, b, h = x[..., 0::2], x[..., 1::2], x.shape[-1] // 2
    t, s = np.tanh(a), _sigmoid(b)

    def pairs(da, db):
        dx = np.empty(x.shape)
        dx[..., 0::2], dx[..., 1::2] = da, db
        return dx
    da, db = dy * s * (1 - t * t), dy * t * s * (1 - s)
    t2, s2 = np.tanh(b), _sigmoid(a)  # the forward with the halves swapped
    tb, sb = np.tanh(x[..., :h]), _sigmoid(x[..., h:])  # the forward split into blocks
    return {
        "sigmoid' = s": pairs(da, dy * t * s),
        "tanh' = 1 - t": pairs(dy * s * (1 - t), db),
        "tanh' from a": pairs(dy * s * (1 - a * a), db),
        "no dy": pairs(s * (1 - t * t), t * s * (1 - s)),
        "da without s": pairs(dy * (1 - t * t), db),
        "db without t": pairs(da, dy * s * (1 - s)),
        "places swapped": pairs(db, da),
        "swapped": pairs(dy * t2 * s2 * (1 - s2), dy * s2 * (1 - t2 * t2)),
        "swapped t, s": pairs(dy * s2 * (1 - t2 * t2), dy * t2 * s2 * (1 - s2)),
        "blocks": np.concatenate([dy * sb * (1 - tb * tb), dy * tb * sb * (1 - sb)], axis=-1),
        "blocks t, s": pairs(dy * sb * (1 - tb * tb), dy * tb * sb * (1 - sb)),
    }


BACKWARD_FAULTS = {
    "sigmoid' = s": "the sigmoid's derivative is written as s: it is s * (1 - s), so db = dy * t * s * (1 - s)",
    "tanh' = 1 - t": "tanh's derivative is written as 1 - t: it is 1 - t^2, so da = dy * s * (1 - t * t)",
    "tanh' from a": "tanh's derivative is written as 1 - a^2: it is 1 - tanh(a)^2 = 1 - t * t, with t = tanh(a)",
    "no dy": "dx does not carry dy: the chain rule multiplies each local slope by dy",
    "da without s": "da lacks the factor s: y = t * s, so da = dy * s * (1 - t^2) (the product rule)",
    "db without t": "db lacks the factor t: y = t * s, so db = dy * t * s * (1 - s) (the product rule)",
    "places swapped": "da and db are in each other's places: da goes to the even channels dx[..., 0::2] (a), "
                      "db to the odd ones dx[..., 1::2] (b)",
    "swapped": "the backward has the halves swapped, sigmoid on the even channels: tanh is on a = x[..., 0::2], "
               "sigmoid on b = x[..., 1::2]",
    "swapped t, s": "t and s come from swapped halves, tanh of the odd channels and sigmoid of the even ones: "
                    "t = tanh(x[..., 0::2]), s = sigmoid(x[..., 1::2])",
    "blocks": "the backward splits the channels into a first and a second half: the pairs are neighbours, "
              "da goes to dx[..., 0::2] and db to dx[..., 1::2]",
    "blocks t, s": "t and s come from the first and the second half of the channels: the pairs are neighbours, "
                   "t = tanh(x[..., 0::2]), s = sigmoid(x[..., 1::2])",
}


def _gate_backward(module):
    fn = function(module, "gate_backward")
    for x, dtype, what, rng in _gate_cases(1):
        dy = rng.standard_normal(x.shape[:-1] + (x.shape[-1] // 2,)).astype(dtype)
        dx = as_array(_call(fn, "gate_backward", (x, dy), what), f"dx ({what})", x.shape, dtype)
        layer = Gate()
        layer.forward(x.copy())
        want = layer.backward(dy.copy())  # the library's Gate
        if _close(dx, want, dtype):
            continue
        _name_fault(dx, _gate_backward_variants(x, dy), BACKWARD_FAULTS, lambda a, b: _close(a, b, dtype), what)
        even, odd = _close(dx[..., 0::2], want[..., 0::2], dtype), _close(dx[..., 1::2], want[..., 1::2], dtype)
        if even:
            raise Wrong(f"da (the even channels of dx) is right, db (the odd ones) is wrong: "
                        f"db = dy * t * s * (1 - s) ({what})")
        if odd:
            raise Wrong(f"db (the odd channels of dx) is right, da (the even ones) is wrong: "
                        f"da = dy * s * (1 - t^2) ({what})")
        raise Wrong(f"dx differs from the library's Gate.backward on both halves (max relative error "
                    f"{max_error(dx, want):.1e}): da = dy * s * (1 - t^2), db = dy * t * s * (1 - s) ({what})")
    return f"dx as the library's Gate.backward on {len(GATE_SHAPES)} shapes, float32 and float64"


def _gate_gradcheck(module):
    forward, backward = function(module, "gate_forward"), function(module, "gate_backward")
    rng = np.random.default_rng(2)
    x = _input(rng, GRADCHECK_SHAPE, np.float64)
    dy = rng.standard_normal(GRADCHECK_SHAPE[:-1] + (GRADCHECK_SHAPE[-1] // 2,))
    what = _what(GRADCHECK_SHAPE, np.float64)
    dx = as_array(_call(backward, "gate_backward", (x.copy(), dy.copy()), what), f"dx ({what})", x.shape)
    x_moved = x.copy()  # numerical_gradient moves its entries one at a time

    def f():
        return float(np.sum(forward(x_moved.copy()) * dy))
    with np.errstate(all="ignore"):
        numeric = numerical_gradient(f, x_moved)
    err = max_error(dx, numeric)
    if err > 1e-6:
        where = [name for name, part in (("the even channels (a, under tanh)", slice(0, None, 2)),
                                         ("the odd channels (b, under sigmoid)", slice(1, None, 2)))
                 if max_error(dx[..., part], numeric[..., part]) > 1e-6]
        raise Wrong(f"your dx disagrees with central differences of your gate_forward on {' and '.join(where)} "
                    f"(max relative error {err:.1e}) ({what})")
    return f"dx agrees with float64 central differences of your gate_forward (max relative error {err:.0e})"


def _group_name(g):
    return f"colour group {g} ({COLOURS[g]})"


def _colour_groups(module):
    forward, backward = function(module, "gate_forward"), function(module, "gate_backward")
    rng = np.random.default_rng(3)
    for shape in COLOUR_SHAPES:
        x, what = _input(rng, shape, np.float64), _what(shape, np.float64)
        h = shape[-1] // 2
        ins, outs = group_slices(2 * h, 3), group_slices(h, 3)
        y = as_array(_call(forward, "gate_forward", (x.copy(),), what), f"y ({what})", shape[:-1] + (h,))
        for g in range(3):
            moved = x.copy()
            moved[..., ins[g]] += 1.0
            changed = np.any(_call(forward, "gate_forward", (moved,), what) != y,
                             axis=tuple(range(len(shape) - 1)))
            others = [k for k in range(h) if changed[k] and not outs[g].start <= k < outs[g].stop]
            span = f"channels {ins[g].start}-{ins[g].stop - 1} of {2 * h}, {_group_name(g)}"
            if others:
                k = others[0]
                raise Wrong(f"changing only {span} changed output channel {k}, of "
                            f"{_group_name(k * 3 // h)}: output k reads channels 2k and 2k + 1 alone, both in "
                            f"its own colour group ({what})")
            if not changed[outs[g]].all():
                raise Wrong(f"changing {span} left some of that group's outputs (channels {outs[g].start}-"
                            f"{outs[g].stop - 1} of {h}) unchanged: output k reads channels 2k and 2k + 1 ({what})")
            dy = np.zeros(shape[:-1] + (h,))
            dy[..., outs[g]] = rng.standard_normal(dy[..., outs[g]].shape)
            dx = as_array(_call(backward, "gate_backward", (x.copy(), dy), what), f"dx ({what})", shape)
            reached = np.any(dx != 0, axis=tuple(range(len(shape) - 1)))
            leaked = [c for c in range(2 * h) if reached[c] and not ins[g].start <= c < ins[g].stop]
            if leaked:
                raise Wrong(f"a gradient on the outputs of {_group_name(g)} alone reached dx channel {leaked[0]}, "
                            f"of {_group_name(leaked[0] * 3 // (2 * h))}: the gradient of output k goes back "
                            f"to channels 2k and 2k + 1 only ({what})")
    return "each colour group's outputs read, and send gradients to, only that group's channels (h = 6 and 9)"


def _shift_variants(x):
    """What a shift with a typical mistake gives: {mistake: y}."""
    def down(k):
        y = np.zeros_like(x)
        y[:, k:] = x[:, :-k] if k < x.shape[1] else 0
        return y
    up, right = np.zeros_like(x), np.zeros_like(x)
    up[:, :-1], right[:, :, 1:] = x[:, 1:], x[:, :, :-1]
    variants = {"up": up, "roll": np.roll(x, 1, axis=1), "columns": right, "still": x}
    variants.update({f"down {k}": down(k) for k in (2, 3)})
    return variants


SHIFT_FAULTS = {
    "up": "shift_down moves the rows up: move them down, so that each row of y is the row of x above it, "
          "y[:, i] = x[:, i - 1], and row 0 is zeros",
    "roll": "row 0 of y holds the last row of x (np.roll wraps around): row 0 gets zeros, the last row of x goes "
            "nowhere",
    "columns": "shift_down moves the columns (axis 2) to the right: it moves the rows (axis 1) down",
    "still": "shift_down leaves the rows where they are: move them down one row, y[:, i] = x[:, i - 1]",
    "down 2": "shift_down moves the rows down by 2: by one row, y[:, i] = x[:, i - 1]",
    "down 3": "shift_down moves the rows down by 3: by one row, y[:, i] = x[:, i - 1]",
}


def _backward_variants(dy):
    """What shift_down_backward with a typical mistake gives: {mistake: dx}."""
    down, up2 = np.zeros_like(dy), np.zeros_like(dy)
    down[:, 1:] = dy[:, :-1]
    if dy.shape[1] > 2:
        up2[:, :-2] = dy[:, 2:]
    return {"same way": down, "roll": np.roll(dy, -1, axis=1), "still": dy, "up 2": up2}


SHIFT_BACKWARD_FAULTS = {
    "same way": "shift_down_backward moves dy down, the same way as the forward: the backward goes the other way, "
                "dx[:, i] = dy[:, i + 1] (row i of x went to row i + 1 of y), the last row zeros",
    "roll": "the last row of dx holds row 0 of dy (np.roll wraps around): row 0 of y came from no row of x, so "
            "dy[:, 0] goes nowhere, and the last row of dx is zeros",
    "still": "shift_down_backward returns dy where it is: row i of x went to row i + 1 of y, so dx[:, i] = "
             "dy[:, i + 1]",
    "up 2": "shift_down_backward moves dy up by 2: by one row, dx[:, i] = dy[:, i + 1]",
}


def _shift(module):
    forward, backward = function(module, "shift_down"), function(module, "shift_down_backward")
    rng = np.random.default_rng(4)
    for dtype in (np.float64, np.float32):
        for shape in SHIFT_SHAPES:
            x, what = rng.standard_normal(shape).astype(dtype), _what(shape, dtype)
            y = as_array(_call(forward, "shift_down", (x,), what), f"y ({what})", shape, dtype)
            want = ShiftDown().forward(x.copy())
            if not np.array_equal(y, want):
                _name_fault(y, _shift_variants(x), SHIFT_FAULTS, np.array_equal, what)
                raise Wrong(f"y differs from the library's ShiftDown: y[:, i] = x[:, i - 1], y[:, 0] = 0 ({what})")
            dy = rng.standard_normal(shape).astype(dtype)
            dx = as_array(_call(backward, "shift_down_backward", (dy,), what), f"dx ({what})", shape, dtype)
            want = ShiftDown().backward(dy.copy())
            if not np.array_equal(dx, want):
                _name_fault(dx, _backward_variants(dy), SHIFT_BACKWARD_FAULTS, np.array_equal, what)
                raise Wrong(f"dx differs from the library's ShiftDown.backward: dx[:, i] = dy[:, i + 1], the last "
                            f"row zeros ({what})")
    return (f"y and dx exactly as the library's ShiftDown on {len(SHIFT_SHAPES)} shapes (one row too), "
            "float32 and float64")


def _order(module):
    fn = function(module, "shift_down")
    rng = np.random.default_rng(5)
    x, what = rng.standard_normal(ORDER_SHAPE), _what(ORDER_SHAPE, np.float64)
    H = ORDER_SHAPE[1]
    y = as_array(_call(fn, "shift_down", (x.copy(),), what), f"y ({what})", ORDER_SHAPE, np.float64)
    for i in reversed(range(H)):  # the last row first: a shift the wrong way shows there plainest
        moved = x.copy()
        moved[:, i:] = rng.standard_normal(moved[:, i:].shape)  # row i and every row below it
        got = _call(fn, "shift_down", (moved,), what)
        changed = [r for r in range(H) if not np.array_equal(got[:, r], y[:, r])]
        early = [r for r in changed if r <= i]
        if early:
            r = early[0]
            raise Wrong(f"changing only row {i} of x and the rows below it changed row {r} of y: row r of y may "
                        f"depend only on the rows of x above it (< r), or the horizontal stack would see its own "
                        f"row ({what})")
        if i + 1 < H and i + 1 not in changed:
            raise Wrong(f"changing row {i} of x and the rows below it left row {i + 1} of y as it was: each row of "
                        f"y is the row of x just above it ({what})")
    return f"row i of y depends only on rows < i of x, and on row i - 1 (every row i of {H})"


PARTS = [("gate forward", _gate_forward), ("gate backward", _gate_backward), ("gate gradient check", _gate_gradcheck),
         ("colour groups", _colour_groups), ("shift down", _shift), ("autoregressive order", _order)]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
