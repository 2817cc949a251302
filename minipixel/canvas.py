"""What the samplers' one-position and many-position forwards read and write:
a ``Canvas`` (a layer's input map, padded so every tap is a slice) and
``Positions`` (the positions a wavefront step computes, with the indices made once).

See ``conv`` for how the layers use them.
"""


class Canvas:
    """An input map that a ``k x k`` convolution reads one window of at a time.

    ``data``: (n, H + k//2, W + 2*(k//2), C), the map with k//2 rows of zeros on
    top and k//2 columns of zeros on each side (none below: no live tap looks
    down), so the taps around any position are plain slices.
    """

    def __init__(self, n, height, width, channels, kernel, dtype, xp):
        self.pad = kernel // 2
        self.data = xp.zeros((n, height + self.pad, width + 2 * self.pad, channels), dtype=dtype)
        self.flat = self.data.reshape(n, -1, channels)  # a view: the positions in one axis, row after row

    def write(self, i, j, value, channels=slice(None)):
        """Set the map at position (i, j): ``value`` (n, len(channels))."""
        self.data[:, i + self.pad, j + self.pad, channels] = value

    def at(self, i, j):
        """The map at position (i, j), (n, C): a view, to write into."""
        return self.data[:, i + self.pad, j + self.pad]

    def write_row(self, i, value):
        """Set the whole row i: ``value`` (n, W, C)."""
        p = self.pad
        self.data[:, i + p, p : self.data.shape[2] - p] = value

    def write_many(self, at, value, channels=slice(None)):
        """Set the map at the ``Positions`` at: ``value`` (n, P, len(channels))."""
        pad, width = self.pad, self.data.shape[2]
        where = at.index(("canvas", pad, width), lambda rows, cols: (rows + pad) * width + cols + pad)
        self.flat[:, where, channels] = value

    def image(self):
        """The map without its padding: (n, H, W, C)."""
        p = self.pad
        return self.data[:, p:, p : self.data.shape[2] - p]


class Positions:
    """P positions (rows[p], cols[p]) that ``forward_many`` computes at once.

    rows, cols: (P,) int arrays on the layers' device. The layers and canvases
    ask it for the flat indices they gather and write with (``index``); each is
    made once and kept. ``at[a:b]`` is positions a .. b-1, whose indices are
    slices of ``at``'s: the wavefront sampler lays out all H * W positions step
    after step, so each index is made once for the whole image, not per step.
    """

    def __init__(self, rows, cols, whole=None, span=None):
        self.rows, self.cols = rows, cols
        self.whole, self.span, self.made = whole, span, {}

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, span):
        return Positions(self.rows[span], self.cols[span], self, span)

    def index(self, key, make):
        """``make(rows, cols)``: an array with one row per position, made once per ``key``."""
        if self.whole is not None:
            return self.whole.index(key, make)[self.span]
        made = self.made.get(key)
        if made is None:
            made = self.made[key] = make(self.rows, self.cols)
        return made
