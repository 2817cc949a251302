"""Gradient checks: every hand-written backward pass against central differences.

For a scalar function f of an array x, the central difference

    (f(x + h e_i) - f(x - h e_i)) / (2 h)

approximates df/dx_i with an error of order h^2, plus the round-off of f
divided by h. In float64 with h = 1e-5 it agrees with a correct analytic
gradient to about 1e-8 relative; a wrong
backward pass (a missed term, a transposed weight, a mask applied in forward
but not in backward) is off by far more than that.

A layer maps x to y, and its backward takes dy. We check it on the scalar
``f(x) = sum(forward(x) * dy)`` for a random fixed ``dy``: then df/dx is exactly
``backward(dy)`` and df/dW is ``grads["W"]``. The loss is checked on its own
value, the whole model on the loss of its logits. The plain convolution of
``conv_reference`` is checked the same way, and the fast ``MaskedConv2d`` is
compared with it (forward, and dx, dW, db for the same dy).

The error we report for an array is

    max_i |a_i - n_i| / max(|a_i| + |n_i|, 0.01 * max_j (|a_j| + |n_j|))

the relative error of the worst entry (analytic ``a``, numerical ``n``),
except that entries a hundred times smaller than the largest are compared
with 1/100 of that scale: round-off in f (a loss of about 100 nats, known to
about 1e-13) puts an absolute error of about 1e-9 on every numerical entry,
which on an entry of 1e-5 would otherwise read as a relative error of 1e-4.
"""
import numpy as np

from .backend import array_module, get_xp, to_numpy
from .conv_reference import conv2d_reference, conv2d_reference_backward
from .conv import MaskedConv2d
from .layers import Dropout, ReLU, set_dropout
from .losses import softmax_cross_entropy
from .masks import conv_mask
from .gated import ClassBias, Gate, GatedLayer, ShiftDown
from .model import PixelCNNConfig, ResidualBlock, build_model

TOLERANCE = 1e-6
STEP = 1e-5


def numerical_gradient(f, x, h=None):
    """Central-difference gradient of the scalar function ``f()`` with respect to ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored.
    Returns a NumPy float64 array shaped like ``x``.
    """
    h = STEP if h is None else h
    flat = x.reshape(-1)  # a view: writing flat[i] writes x
    grad = np.zeros(flat.size)
    for i in range(flat.size):
        old = float(flat[i])
        flat[i] = old + h
        f_plus = f()
        flat[i] = old - h
        f_minus = f()
        flat[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad.reshape(x.shape)


def relative_error(analytic, numeric):
    """The error measure described in the module docstring (0 when both are all zero)."""
    a = to_numpy(analytic).astype(np.float64)
    n = to_numpy(numeric).astype(np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic gradient shape {a.shape} != numerical {n.shape}")
    size = np.abs(a) + np.abs(n)
    if size.max() == 0:
        return 0.0
    return float(np.max(np.abs(a - n) / np.maximum(size, 0.01 * size.max())))


def check_layer(layer, x, seed=0, h=None):
    """Errors of ``layer``'s backward for the input and each parameter: ``{"x": e, "W": e, ...}``.

    ``x`` must have the layer's dtype (float64 to be meaningful). Every forward
    gets a fresh copy of x, because in-place layers overwrite their input.
    """
    rng = np.random.default_rng(seed)
    xp = array_module(x)
    y = layer.forward(x.copy())
    dy = xp.asarray(rng.standard_normal(y.shape), dtype=y.dtype)
    dx = layer.backward(dy.copy())
    analytic = {"x": dx}
    analytic.update({name: g.copy() for name, _, g in layer.named_parameters()})

    def f():
        return float((layer.forward(x.copy()) * dy).sum())

    errors = {"x": relative_error(analytic["x"], numerical_gradient(f, x, h))}
    for name, p, _ in layer.named_parameters():
        errors[name] = relative_error(analytic[name], numerical_gradient(f, p, h))
    return errors


def check_reference_conv(x, W, b, mask, seed=0, h=None):
    """Errors of ``conv2d_reference_backward`` for x, W and b (the masked weights ``W * mask``)."""
    dy = np.random.default_rng(seed).standard_normal(x.shape[:3] + (W.shape[3],))
    dx, dW, db = conv2d_reference_backward(dy, x, W * mask, mask)

    def f():
        return float((conv2d_reference(x, W * mask, b) * dy).sum())

    return {"x": relative_error(dx, numerical_gradient(f, x, h)), "W": relative_error(dW, numerical_gradient(f, W, h)),
            "b": relative_error(db, numerical_gradient(f, b, h))}


def compare_with_reference(layer, x, seed=0):
    """Errors of the fast ``layer`` (a MaskedConv2d without fused ReLU, on any
    device) against ``conv2d_reference`` (NumPy): its output, and its dx, dW,
    db for the same dy."""
    mask = to_numpy(layer.mask)
    Wm, b, host_x = to_numpy(layer.params["W"]) * mask, to_numpy(layer.params["b"]), to_numpy(x)
    y = layer.forward(x)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx, dW, db = conv2d_reference_backward(dy, host_x, Wm, mask)
    errors = {"y": relative_error(y, conv2d_reference(host_x, Wm, b))}
    errors["x"] = relative_error(layer.backward(layer.xp.asarray(dy)), dx)
    errors["W"] = relative_error(layer.grads["W"], dW)
    errors["b"] = relative_error(layer.grads["b"], db)
    return errors


def check_loss(logits, labels, h=None):
    """Error of softmax_cross_entropy's gradient with respect to the logits."""
    _, dlogits = softmax_cross_entropy(logits, labels)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits, h)
    return {"logits": relative_error(dlogits, numeric)}


def check_gated_layer(layer, v, h, seed=0, step=None):
    """Errors of a ``gated.GatedLayer``'s backward, on f = sum(v' dv' + h' dh' + out dout)."""
    rng = np.random.default_rng(seed)
    layer.conv_v.input_grad = layer.conv_h.input_grad = True  # a first layer's too
    outputs = layer.forward((v.copy(), h.copy()))
    douts = [array_module(v).asarray(rng.standard_normal(o.shape)) for o in outputs]
    dv, dh = layer.backward(tuple(d.copy() for d in douts))
    analytic = {name: g.copy() for name, _, g in layer.named_parameters()}

    def f():
        return float(sum((o * d).sum() for o, d in zip(layer.forward((v.copy(), h.copy())), douts)))

    errors = {"v": relative_error(dv, numerical_gradient(f, v, step)),
              "h": relative_error(dh, numerical_gradient(f, h, step))}
    for name, p, _ in layer.named_parameters():
        errors[name] = relative_error(analytic[name], numerical_gradient(f, p, step))
    return errors


def check_model(model, x, labels, h=None, classes=None):
    """Errors of the whole model's backward (through the loss) for the input and every parameter."""
    model.input_grad = True  # the input gradient is checked too
    logits = model.forward(x.copy(), classes)
    _, dlogits = softmax_cross_entropy(logits, labels)
    dx = model.backward(dlogits)
    analytic = {name: g.copy() for name, g in model.gradients().items()}

    def f():
        return softmax_cross_entropy(model.forward(x.copy(), classes), labels)[0]

    errors = {"x": relative_error(dx, numerical_gradient(f, x, h))}
    for name, p in model.parameters().items():
        errors[name] = relative_error(analytic[name], numerical_gradient(f, p, h))
    return errors


def _input(rng, shape, away_from_zero=False, xp=np):
    x = rng.standard_normal(shape)
    if away_from_zero:
        # ReLU has a kink at 0: keep every entry further than h from it.
        x = np.where(np.abs(x) < 0.05, 0.05 * np.sign(x) + 0.05 * (x == 0), x)
    return xp.asarray(x)


def cases(device="cpu"):  # pragma: no mutate block (the table of checks: what the tests assert, not code they test)
    """The checks ``minipixel gradcheck`` runs and the tests assert: ``[(name, fn)]``,
    each ``fn()`` returning ``{array name: error}``. Small sizes, float64, every
    layer and model on ``device`` (the plain ``conv_reference`` is NumPy's only)."""
    f64 = np.float64
    xp = get_xp(device)

    def random(rng, *shape):
        return xp.asarray(rng.standard_normal(shape))

    def conv(cin, cout, k, mask, colors=1, size=5, relu=False):
        def run():
            rng = np.random.default_rng(k * 100 + cin)
            layer = MaskedConv2d(cin, cout, k, mask, colors=colors, rng=rng, dtype=f64, relu=relu, xp=xp)
            layer.params["b"][...] = random(rng, cout)
            x = _input(rng, (2, size, size, cin), xp=xp)
            if relu:  # keep every output away from the ReLU's kink
                y = layer.forward(x.copy())
                layer.params["b"][...] += xp.where(xp.abs(y) < 0.05, 0.1, 0).max(axis=(0, 1, 2))
            return check_layer(layer, x)
        return run

    def reference(cin, cout, k, mask, colors=1):
        def run():
            rng = np.random.default_rng(k * 10 + cin)
            mask_array = conv_mask(k, cin, cout, mask, colors)
            W = rng.standard_normal(mask_array.shape) * mask_array
            return check_reference_conv(_input(rng, (2, 5, 5, cin)), W, rng.standard_normal(cout), mask_array)
        return run

    def fast_vs_reference(cin, cout, k, mask, colors=1):
        def run():
            rng = np.random.default_rng(k * 10 + cin + 1)
            layer = MaskedConv2d(cin, cout, k, mask, colors=colors, rng=rng, dtype=f64, xp=xp)
            layer.params["b"][...] = random(rng, cout)
            return compare_with_reference(layer, _input(rng, (3, 6, 5, cin), xp=xp))
        return run

    def block(widths, colors):
        def run():
            rng = np.random.default_rng(7)
            layer = ResidualBlock(6, widths, colors=colors, rng=rng, dtype=f64, xp=xp)
            for _, p, _ in layer.named_parameters():
                p += 0.1 * random(rng, *p.shape)  # non-zero biases: no output sits on a ReLU kink
            return check_layer(layer, _input(rng, (2, 4, 4, 6), away_from_zero=True, xp=xp))
        return run

    def relu():
        rng = np.random.default_rng(3)
        return check_layer(ReLU(), _input(rng, (2, 3, 3, 4), away_from_zero=True, xp=xp))

    def loss(levels):
        def run():
            rng = np.random.default_rng(levels)
            logits = random(rng, 3, 4, 4, 1, levels) * 3
            labels = xp.asarray(rng.integers(0, levels, (3, 4, 4, 1)))
            return check_loss(logits, labels)
        return run

    def model(channels, levels, block_widths, arch="pixelcnn", classes=0, dropout=0.0):
        def run():
            cfg = PixelCNNConfig(height=5, width=5, channels=channels, levels=levels, filters=3 * channels + 3, blocks=2,
                                 block=block_widths, input_kernel=5, arch=arch, classes=classes)
            m = build_model(cfg, seed=1, dtype=f64, device=device)
            rng = np.random.default_rng(11)
            for p in m.parameters().values():
                p += 0.05 * random(rng, *p.shape)  # non-zero biases: no output sits on a ReLU kink
            x = xp.asarray(rng.random((2, 5, 5, channels)))  # PixelCNN inputs lie in [0, 1]
            labels = xp.asarray(rng.integers(0, levels, (2, 5, 5, channels)))
            if dropout:  # the same masks at every forward: a fixed key per image
                set_dropout(m, dropout, np.array([[1, 2, 0], [1, 2, 1]]))
            return check_model(m, x, labels, classes=np.arange(2) % classes if classes else None)
        return run

    def gate():
        rng = np.random.default_rng(4)
        return check_layer(Gate(), 2 * random(rng, 2, 3, 3, 6))

    def dropout():
        rng = np.random.default_rng(9)
        layer = Dropout()
        set_dropout(layer, 0.3, np.array([[0, 5, 0], [0, 5, 1]]))
        return check_layer(layer, random(rng, 2, 3, 3, 4))

    def shift():
        rng = np.random.default_rng(5)
        return check_layer(ShiftDown(), random(rng, 2, 4, 3, 2))

    def class_bias():
        rng = np.random.default_rng(6)
        layer = ClassBias(3, 4, dtype=f64, xp=xp)
        layer.params["V"][...] = random(rng, 3, 4)
        layer.condition(xp.asarray(np.eye(3)[[2, 0]]))
        return check_layer(layer, random(rng, 2, 3, 3, 4))

    def gated_layer(first, colors, classes=0, dropout=0.0):
        def run():
            rng = np.random.default_rng(8)
            cin = colors if first else 6
            layer = GatedLayer(cin, 6, 3, first, colors=colors, classes=classes, rng=rng, dtype=f64, xp=xp)
            for _, p, _ in layer.named_parameters():
                p += 0.2 * random(rng, *p.shape)
            if classes:
                for bias in (layer.bias_v, layer.bias_h):
                    bias.condition(xp.asarray(np.eye(classes)[[1, 0]]))
            v, h = random(rng, 2, 2, 4, 4, cin)
            if dropout:
                set_dropout(layer, dropout, np.array([[3, 1, 0], [3, 1, 1]]))
            return check_gated_layer(layer, v, h)
        return run

    return [
        ("conv 3x3 mask A, C=1", conv(1, 4, 3, "A")),
        ("conv 5x5 mask A, C=1", conv(1, 4, 5, "A")),
        ("conv 7x7 mask A, C=1", conv(2, 3, 7, "A", size=6)),
        ("conv 1x1 mask B, C=1", conv(4, 5, 1, "B")),
        ("conv 3x3 mask B, C=1", conv(4, 5, 3, "B")),
        ("conv 5x5 mask B, C=1", conv(3, 4, 5, "B")),
        ("conv 7x7 mask B, C=1", conv(2, 3, 7, "B", size=6)),
        ("conv 1x1 mask A, RGB groups", conv(3, 6, 1, "A", colors=3)),
        ("conv 3x3 mask A, RGB groups", conv(3, 6, 3, "A", colors=3)),
        ("conv 7x7 mask A, RGB groups", conv(3, 6, 7, "A", colors=3, size=6)),
        ("conv 1x1 mask B, RGB groups", conv(6, 9, 1, "B", colors=3)),
        ("conv 3x3 mask B, RGB groups", conv(7, 6, 3, "B", colors=3)),
        ("conv 3x3 mask B + fused ReLU", conv(4, 5, 3, "B", relu=True)),
        ("conv 1x1 mask B + fused ReLU, RGB groups", conv(6, 6, 1, "B", colors=3, relu=True)),
        ("conv reference 3x3 mask B, C=1", reference(3, 4, 3, "B")),
        ("conv reference 5x5 mask A, RGB groups", reference(3, 6, 5, "A", colors=3)),
        ("conv 3x3 mask B = reference, RGB groups", fast_vs_reference(6, 9, 3, "B", colors=3)),
        ("conv 7x7 mask A = reference, C=1", fast_vs_reference(1, 8, 7, "A")),
        ("relu", relu),
        ("residual block (half), C=1", block("half", 1)),
        ("residual block (keras), RGB groups", block("keras", 3)),
        ("softmax cross-entropy, 2 levels", loss(2)),
        ("softmax cross-entropy, 7 levels", loss(7)),
        ("model, C=1, 2 levels", model(1, 2, "half")),
        ("model, RGB, 4 levels", model(3, 4, "keras")),
        ("conv 3x3 mask V (gated vertical stack)", conv(4, 6, 3, "V")),
        ("conv 5x5 mask HA, RGB groups (gated horizontal)", conv(3, 6, 5, "HA", colors=3)),
        ("conv 3x3 mask HB, RGB groups (gated horizontal)", conv(6, 6, 3, "HB", colors=3)),
        ("gated unit tanh * sigmoid", gate),
        ("shift down one row", shift),
        ("class bias", class_bias),
        ("gated layer, first (no residual), C=1", gated_layer(True, 1)),
        ("gated layer, later, RGB groups", gated_layer(False, 3)),
        ("gated layer, later, class bias", gated_layer(False, 1, classes=3)),
        ("dropout, rate 0.3", dropout),
        ("gated layer, later, dropout 0.3", gated_layer(False, 1, dropout=0.3)),
        ("gated model, C=1, 2 levels", model(1, 2, "half", arch="gated")),
        ("gated model, C=1, 2 levels, dropout 0.3", model(1, 2, "half", arch="gated", dropout=0.3)),
        ("gated model, RGB, 4 levels", model(3, 4, "half", arch="gated")),
        ("gated model, conditional, RGB", model(3, 3, "half", arch="gated", classes=3)),
    ]


def run_all(tolerance=TOLERANCE, device="cpu"):
    """Run every case on ``device``: a list of ``(name, worst error, passed)``."""
    rows = []
    for name, fn in cases(device):
        worst = max(fn().values())
        rows.append((name, worst, worst < tolerance))
    return rows


def format_table(rows, tolerance=TOLERANCE):
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'op':<{width}}  max rel error  result", f"{'-' * width}  -------------  ------"]
    for name, err, ok in rows:
        lines.append(f"{name:<{width}}  {err:13.2e}  {'pass' if ok else 'FAIL'}")
    failed = sum(not ok for _, _, ok in rows)
    lines.append(f"{len(rows) - failed} of {len(rows)} passed (float64, central differences, tolerance {tolerance:g})")
    return "\n".join(lines)
