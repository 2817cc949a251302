"""What the samplers' one-position and many-position forwards read and write:
a ``Canvas`` (a layer's input map, padded so every tap is a slice) and
``Positions`` (the positions a wavefront step computes, with the indices made once).

A canvas made inside ``rolling_maps()`` keeps only the rows a step reads (the
graph sampler's: see ``sampling``). The layers make their maps in ``start_at``
and read them through ``Canvas.row``, so they work on either kind unchanged.

See ``conv`` for how the layers use them.
"""
import contextlib
import threading

_local = threading.local()  # .maps: the ``RollingMaps`` that new canvases join, or None


class Canvas:
    """An input map that a ``k x k`` convolution reads one window of at a time.

    ``data``: (n, H + k//2, W + 2*(k//2), C), the map with k//2 rows of zeros on
    top and k//2 columns of zeros on each side (none below: no live tap looks
    down), so the taps around any position are plain slices.

    A rolling canvas (made inside ``rolling_maps()``) holds k//2 + 2 rows: the
    current row (``maps.now``) in the last, the rows above it before (zeros above
    the image), and ``maps.advance()`` moves every row up by one for the next row. Row r
    is always at the same place relative to ``now`` (``row``), so a step
    captured at one row reads and writes the right rows at every other.
    """

    def __init__(self, n, height, width, channels, kernel, dtype, xp):
        self.pad = kernel // 2
        maps = getattr(_local, "maps", None)
        # k//2 + 2: the rows above the current one that a k x k layer reads (k//2),
        # and one more for the gated model's vertical stack, which reads its map
        # at the start of a row up to the row before (``GatedPixelCNN.forward_at``).
        rows = height + self.pad if maps is None else self.pad + 2
        self.maps = maps  # a rolling canvas's: the row it is at (``maps.now``)
        self.data = xp.zeros((n, rows, width + 2 * self.pad, channels), dtype=dtype)
        self.flat = self.data.reshape(n, -1, channels)  # a view: the positions in one axis, row after row
        if maps is not None:
            maps.canvases.append(self)

    def row(self, i):
        """Where image row i is in ``data`` (its first axis after the images)."""
        if self.maps is None:
            return i + self.pad
        now = self.maps.now
        at = i - now + self.pad + 1
        if not 0 <= at < self.data.shape[1]:
            raise IndexError(f"a rolling canvas at row {now} keeps rows {now - self.pad - 1} .. {now}, not row {i}")
        return at

    def shift(self):
        """A rolling canvas: every row up by one, the last one zero (``RollingMaps.advance``)."""
        for r in range(self.data.shape[1] - 1):  # row by row: the copies must not overlap
            self.data[:, r] = self.data[:, r + 1]
        self.data[:, -1] = 0

    def write(self, i, j, value, channels=slice(None)):
        """Set the map at position (i, j): ``value`` (n, len(channels))."""
        self.data[:, self.row(i), j + self.pad, channels] = value

    def at(self, i, j):
        """The map at position (i, j), (n, C): a view, to write into."""
        return self.data[:, self.row(i), j + self.pad]

    def write_row(self, i, value):
        """Set the whole row i: ``value`` (n, W, C)."""
        p = self.pad
        self.data[:, self.row(i), p : self.data.shape[2] - p] = value

    def write_many(self, at, value, channels=slice(None)):
        """Set the map at the ``Positions`` at: ``value`` (n, P, len(channels))."""
        self._whole("write_many")
        pad, width = self.pad, self.data.shape[2]
        where = at.index(("canvas", pad, width), lambda rows, cols: (rows + pad) * width + cols + pad)
        self.flat[:, where, channels] = value

    def image(self):
        """The map without its padding: (n, H, W, C)."""
        self._whole("image")
        p = self.pad
        return self.data[:, p:, p : self.data.shape[2] - p]

    def _whole(self, what):
        if self.maps is not None:
            raise ValueError(f"Canvas.{what} needs the whole map; a rolling canvas keeps only the last rows")


class RollingMaps:
    """The canvases made inside one ``rolling_maps()``, all at image row ``now``."""

    def __init__(self):
        self.canvases, self.now = [], 0

    def shift(self):
        """Every canvas's rows up by one (on zero maps, a change of nothing)."""
        for canvas in self.canvases:
            canvas.shift()

    def advance(self):
        """On to the next row: the rows up by one, the new one zero."""
        self.shift()
        self.now += 1


@contextlib.contextmanager
def rolling_maps():
    """Every ``Canvas`` made inside (by ``model.start_at`` and ``model.canvas``) keeps
    only the rows a step reads; yields their ``RollingMaps``."""
    maps, previous = RollingMaps(), getattr(_local, "maps", None)
    _local.maps = maps
    try:
        yield maps
    finally:
        _local.maps = previous


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
