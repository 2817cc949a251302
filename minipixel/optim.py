"""Optimizers: Adam (with bias correction) and plain SGD; and Polyak averaging.

An optimizer holds a dict ``params`` of arrays (``model.parameters()``) and
updates them in place from a dict of gradients with the same keys
(``model.gradients()``), after each ``model.backward``. ``Average`` keeps a
moving average of the parameters beside them, to evaluate and sample with.
"""
import math
from contextlib import contextmanager

from .backend import array_module, to_numpy


def _views(flat, params):
    """``{name: view}``: the arrays of ``params`` laid out in order in the flat array
    ``flat`` (as ``Layer.pack_parameters`` lays out the parameters themselves)."""
    views, start = {}, 0
    for k, p in params.items():
        stop = start + int(p.size)
        views[k] = flat[start:stop].reshape(p.shape)
        start = stop
    return views


def _load(buffers, state, prefix, what):
    """Copy ``state[prefix/name]`` into each ``buffers[name]``, in place; a ValueError
    naming the entry when it is missing or of another shape."""
    for k, buf in buffers.items():
        arr = state.get(f"{prefix}/{k}")
        if arr is None or tuple(arr.shape) != tuple(buf.shape):
            got = None if arr is None else tuple(arr.shape)
            raise ValueError(f"{what} {prefix}/{k}: expected shape {tuple(buf.shape)}, got {got}")
        buf[...] = array_module(buf).asarray(arr, dtype=buf.dtype)


class Adam:
    """Adam (Kingma & Ba, 2015).

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        p <- p - lr_t * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    The two divisions undo the bias of m and v towards their zero start.
    ``lr_t = lr * decay ** (t - 1 - lr_step)``: ``decay=0.999995`` per step is the
    schedule of the PixelCNN CIFAR-10 tutorial; the default 1.0 keeps lr fixed.
    ``lr_step`` (0 at first) is the update after which ``lr`` was last set
    (``set_lr``): the schedule is the pair (lr, lr_step), which stays finite and
    valid however many steps have passed.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, decay=1.0, flat=None):
        """params: ``{name: array}`` (``model.parameters()``), updated in place.

        flat: optional ``(parameters, gradients)``, two flat arrays of which the
        arrays of ``params`` and of every ``step``'s gradients are views
        (``model.packed``, see ``Layer.pack_parameters``): then ``step`` updates
        them all at once, and ``m`` and ``v`` are views of flat arrays too.
        """
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not (0 < decay <= 1):
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.params, self.flat = params, flat
        self.lr, self.betas, self.eps, self.decay = lr, betas, eps, decay
        self.t = self.lr_step = 0
        if flat is None:
            self.m = {k: array_module(p).zeros_like(p) for k, p in params.items()}
            self.v = {k: array_module(p).zeros_like(p) for k, p in params.items()}
        else:
            flat_params = flat[0]
            if sum(int(p.size) for p in params.values()) != flat_params.size:
                raise ValueError(f"flat: expected arrays of {sum(int(p.size) for p in params.values())} values "
                                 f"(all the parameters), got {flat_params.size}")
            xp = array_module(flat_params)
            self.flat_m, self.flat_v = xp.zeros_like(flat_params), xp.zeros_like(flat_params)
            self.m, self.v = _views(self.flat_m, params), _views(self.flat_v, params)  # for state_dict

    def current_lr(self):
        """The rate of update t (the last one made), or of the next one before any."""
        return self.lr * self.decay ** max(self.t - 1 - self.lr_step, 0)

    def set_lr(self, lr):
        """From the next update on, the rate is ``lr``, decaying from there."""
        if not 0 < lr < math.inf:
            raise ValueError(f"lr must be positive and finite, got {lr}")
        self.lr, self.lr_step = lr, self.t

    def finite(self):
        """True while the parameters and both moments hold only finite numbers
        (an update with too large a rate can overflow them)."""
        if self.flat is not None:
            arrays = (self.flat[0], self.flat_m, self.flat_v)
        else:
            arrays = (*self.params.values(), *self.m.values(), *self.v.values())
        return all(bool(to_numpy(array_module(a).isfinite(a).all())) for a in arrays)

    def step(self, grads):
        """One update from ``grads`` (``{name: array}``, same keys as ``params``)."""
        self.t += 1
        if self.flat is not None:
            self._update(self.flat[0], self.flat[1], self.flat_m, self.flat_v)
            return
        for k, p in self.params.items():
            self._update(p, grads[k], self.m[k], self.v[k])

    def _update(self, p, g, m, v):
        xp = array_module(p)
        b1, b2 = self.betas
        lr = self.current_lr()
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        # p -= lr * (m / c1) / (sqrt(v / c2) + eps), without temporaries of m/c1, v/c2
        denom = xp.sqrt(v)
        denom *= 1.0 / math.sqrt(c2)  # a Python float: float32 arrays stay float32
        denom += self.eps
        p -= (lr / c1) * m / denom

    def state_dict(self):
        """Host (NumPy) copies of everything needed to continue exactly."""
        state = {"t": self.t}
        for k in self.params:
            state[f"m/{k}"] = to_numpy(self.m[k])
            state[f"v/{k}"] = to_numpy(self.v[k])
        return state

    def load_state_dict(self, state):
        _load(self.m, state, "m", "optimizer state")
        _load(self.v, state, "v", "optimizer state")
        self.t = int(state["t"])


class Average:
    """Polyak averaging as an exponential moving average of the parameters,
    updated after every optimizer step (t: the updates so far):

        d_t = min(decay, (1 + t) / (10 + t))        a <- d_t a + (1 - d_t) p

    The average starts equal to the parameters it is given. The warm-up of d_t
    (the rule of TensorFlow's ExponentialMovingAverage) keeps it from leaning on
    that start for thousands of steps: after t updates its time constant is about
    t / 9 steps, until that reaches 1 / (1 - decay). Evaluated with the average
    instead of the last weights, a model loses the noise of its last few hundred
    Adam steps (PixelCNN++ evaluates this way, with decay 0.9995).

    params, flat: as for ``Adam``; with ``flat``, one update of one flat array.
    """

    def __init__(self, params, decay, flat=None):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.params, self.decay, self.t = params, decay, 0
        if flat is None:
            self.average = {k: p.copy() for k, p in params.items()}
            self._pairs = [(self.average[k], p) for k, p in params.items()]
        else:
            flat_average = flat[0].copy()
            self.average = _views(flat_average, params)  # for state_dict
            self._pairs = [(flat_average, flat[0])]

    def update(self):
        """One step of the average towards the current parameters."""
        d = min(self.decay, (1 + self.t) / (10 + self.t))
        self.t += 1
        for a, p in self._pairs:
            a *= d
            a += (1 - d) * p  # d is a Python float: float32 stays float32

    @contextmanager
    def swapped_in(self):
        """Inside the ``with``, the parameters hold the average; after it, their own values again."""
        kept = [p.copy() for _, p in self._pairs]
        for a, p in self._pairs:
            p[...] = a
        try:
            yield
        finally:
            for (_, p), value in zip(self._pairs, kept):
                p[...] = value

    def state_dict(self):
        """Host (NumPy) copies: ``average/<name>`` and the update count ``average_t``."""
        state = {"average_t": self.t}
        for k, a in self.average.items():
            state[f"average/{k}"] = to_numpy(a)
        return state

    def load_state_dict(self, state):
        _load(self.average, state, "average", "average state")
        self.t = int(state["average_t"])


class SGD:
    """Stochastic gradient descent with optional momentum: v <- mu v + g; p <- p - lr v."""

    def __init__(self, params, lr=1e-2, momentum=0.0):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.params, self.lr, self.momentum = params, lr, momentum
        self.t = 0
        self.v = {k: array_module(p).zeros_like(p) for k, p in params.items()}

    def current_lr(self):
        return self.lr

    def finite(self):
        """True while the parameters and the velocities hold only finite numbers."""
        return all(bool(to_numpy(array_module(a).isfinite(a).all())) for a in (*self.params.values(), *self.v.values()))

    def step(self, grads):
        self.t += 1
        for k, p in self.params.items():
            v = self.v[k]
            v *= self.momentum
            v += grads[k]
            p -= self.lr * v

    def state_dict(self):
        state = {"t": self.t}
        for k in self.params:
            state[f"v/{k}"] = to_numpy(self.v[k])
        return state

    def load_state_dict(self, state):
        for k, p in self.params.items():
            self.v[k][...] = array_module(p).asarray(state[f"v/{k}"], dtype=p.dtype)
        self.t = int(state["t"])
