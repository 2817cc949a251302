"""Sampling: generating images one sub-pixel at a time.

A PixelCNN gives p(x_i | x_<i) for every sub-pixel at once, but a sample must
be drawn in order: sub-pixel i can only be drawn once every sub-pixel before
it is known. Two samplers, which give the same images from the same model and
the same random numbers:

- ``naive``: for every sub-pixel, run the whole network on the image so far
  and keep the logits of that one sub-pixel. H * W * C full forward passes.

- ``cached`` (the default): the idea of Ramachandran et al. (2017), "Fast
  Generation for Convolutional Autoregressive Models". Every layer is causal:
  its output at position p depends only on its input at positions up to p. So
  when the sampler reaches p, all earlier positions of every layer are final,
  and the logits at p need each layer's output at p only. We compute exactly
  that, layer by layer, keeping the maps that a later k x k convolution will
  read (the image, and each block's 3x3 input); everything else is a vector
  for the current pixel. Generating an image costs about one forward pass of
  arithmetic instead of H * W * C of them.

  With colour, a pixel takes three steps (R, then G, then B). The channels of
  every layer are split into contiguous colour groups (see ``masks``), and the
  masks make group c depend only on groups <= c: at step c the sampler
  computes group c of each layer, from input channels 0 .. end of group c (a
  prefix), so the three steps together still cost one pass.

Randomness: all the uniform numbers are drawn up front, one per sub-pixel of
every image, from ``numpy.random.default_rng(seed)`` on the host, so a seed
gives the same images on the CPU and the GPU, with either sampler and any
batch size. A value is drawn by inverse CDF: the first level whose cumulative
probability exceeds the uniform number.
"""
import numpy as np
from tqdm import tqdm

from .backend import to_numpy
from .data import labels_to_inputs

METHODS = ("cached", "naive")


def draw(logits, u, temperature=1.0):
    """Draw one level per row of ``logits``.

    logits: (n, levels); u: (n,) uniform numbers in [0, 1), same array module.
    temperature: divides the logits; < 1 sharpens, > 1 flattens; 0 takes the argmax.
    returns (n,) int labels.
    """
    from .backend import array_module

    xp = array_module(logits)
    z = logits.astype(np.float64)
    if temperature == 0:
        return z.argmax(axis=1)
    z = z / temperature
    p = xp.exp(z - z.max(axis=1, keepdims=True))
    cdf = xp.cumsum(p, axis=1)
    # Scaling u by the total avoids normalising p, and the clip guards
    # against u * total rounding up to the last cumulative value.
    label = (cdf < u[:, None] * cdf[:, -1:]).sum(axis=1)
    return xp.minimum(label, logits.shape[1] - 1)


def sample(model, n, seed=0, temperature=1.0, method="cached", height=None, width=None,
           batch_size=64, progress=False, known=None, known_rows=0):
    """Generate ``n`` images from ``model``.

    returns labels: (n, H, W, C) uint8 NumPy array, values 0 .. levels-1
    (``H, W`` default to the size in the model's config).

    Image completion: with ``known`` ((n, H, W, C) labels) the first
    ``known_rows`` rows of every image are copied from it, and only the rows
    below are sampled, each conditioned on everything above it.
    """
    cfg = model.config
    if known is not None:
        known = np.asarray(known)
        if known.ndim != 4 or known.shape[0] != n or known.shape[3] != cfg.channels:
            raise ValueError(f"known: expected ({n}, H, W, {cfg.channels}) labels, got shape {known.shape}")
        height, width = known.shape[1:3] if height is None else (height, width)
        if known.shape[1:3] != (height, width):
            raise ValueError(f"known: expected images of {height}x{width}, got {known.shape[1]}x{known.shape[2]}")
        if known.max() >= cfg.levels:
            raise ValueError(f"known: labels must be below levels={cfg.levels}, got {int(known.max())}")
    H = cfg.height if height is None else height
    W = cfg.width if width is None else width
    if not 0 <= known_rows <= H or (known_rows and known is None):
        raise ValueError(f"known_rows must be 0..{H} and needs `known`, got {known_rows}")
    if method not in METHODS:
        raise ValueError(f"sampling method must be one of {METHODS}, got {method!r}")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"number of images must be a positive int, got {n!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if H < 1 or W < 1:
        raise ValueError(f"image size must be positive, got {H}x{W}")
    uniforms = np.random.default_rng(seed).random((n, H, W, cfg.channels))
    out = np.zeros((n, H, W, cfg.channels), dtype=np.uint8)
    sampler = CachedSampler if method == "cached" else NaiveSampler
    bar = tqdm(total=n * H, desc=f"sampling ({method})", unit="row", disable=not progress)
    for start in range(0, n, batch_size):
        u = uniforms[start : start + batch_size]
        given = None if known is None else known[start : start + batch_size, :known_rows]
        out[start : start + len(u)] = sampler(model, len(u), H, W).run(u, temperature, bar, known=given)
    bar.close()
    return out


class NaiveSampler:
    """One full forward pass per sub-pixel: simple, slow, the reference."""

    def __init__(self, model, n, height, width):
        self.model, self.n, self.H, self.W = model, n, height, width

    def run(self, u, temperature, bar, known=None, rows=None):
        """Sample the images below the ``known`` rows (``rows``: stop after that many rows, for timing)."""
        m, xp = self.model, self.model.xp
        C, L = m.config.channels, m.config.levels
        x = xp.zeros((self.n, self.H, self.W, C), dtype=m.dtype)
        labels = xp.zeros((self.n, self.H, self.W, C), dtype=np.uint8)
        first = 0 if known is None else known.shape[1]
        if first:
            labels[:, :first] = xp.asarray(known)
            x[:, :first] = labels_to_inputs(labels[:, :first], L, m.dtype, xp)
            bar.update(self.n * first)
        u = xp.asarray(u)
        for i in range(first, self.H if rows is None else rows):
            for j in range(self.W):
                for c in range(C):
                    logits = m.forward(x)[:, i, j, c]
                    labels[:, i, j, c] = draw(logits, u[:, i, j, c], temperature)
                    x[:, i, j, c] = labels_to_inputs(labels[:, i, j, c], L, m.dtype, xp)
            bar.update(self.n)
        return to_numpy(labels)


class CachedSampler:
    """One position at a time, every layer computed only where it is needed.

    This mirrors ``PixelCNN.forward`` for a single position; the test
    ``test_cached_sampler_matches_naive`` keeps the two in step.
    """

    def __init__(self, model, n, height, width):
        self.model, self.n, self.H, self.W = model, n, height, width
        m, xp = model, model.xp
        C = m.config.channels
        # Maps read by a k x k convolution, padded so that the window around
        # any position is a plain slice: k//2 rows on top, k//2 columns on
        # each side, none below (no live tap looks down).
        self.x = self._padded_map(m.conv_in, C)
        self.r2 = [self._padded_map(b.conv2, b.conv2.in_channels) for b in m.blocks]
        # Vectors for the current pixel, (n, channels), filled group by group.
        vec = lambda ch: xp.zeros((n, ch), dtype=m.dtype)
        self.stream = [vec(m.config.filters) for _ in range(len(m.blocks) + 1)]
        self.r3 = [vec(b.conv3.in_channels) for b in m.blocks]
        self.h1 = vec(m.config.filters)
        self.h2 = vec(m.config.filters)
        # Each layer's weights for each colour step, cut out once rather than at every step.
        self.pieces = {id(conv): [_Piece(conv, c) for c in range(C)] for conv in self._convs()}

    def _convs(self):
        m = self.model
        yield m.conv_in
        for b in m.blocks:
            yield from (b.conv1, b.conv2, b.conv3)
        yield from (m.head1, m.head2, m.conv_out)

    def _padded_map(self, conv, channels):
        half = conv.kernel // 2
        shape = (self.n, self.H + half, self.W + 2 * half, channels)
        return self.model.xp.zeros(shape, dtype=self.model.dtype)

    def _conv_at(self, conv, src, i, j, c):
        """Output group c of a k x k ``conv`` at (i, j), reading the padded map ``src``: (n, group size)."""
        p = self.pieces[id(conv)][c]
        window = src[:, i : i + conv.kernel // 2 + 1, j : j + conv.kernel]  # rows up to the centre row
        patch = window[:, p.dys, p.dxs].reshape(self.n, -1)  # the live taps: (n, T * in)
        out = patch @ p.W
        out += p.b
        return out

    def _linear_at(self, conv, v, c):
        """Output group c of a 1x1 mask-B ``conv`` from the input vector ``v``."""
        p = self.pieces[id(conv)][c]
        out = v[:, : p.end] @ p.W
        out += p.b
        return out

    def _logits_at(self, i, j, c):
        """The logits of sub-pixel (i, j, c), with everything before it known: (n, levels)."""
        m, xp = self.model, self.model.xp
        relu = lambda a: xp.maximum(a, 0, out=a)  # only ever applied to fresh arrays
        g = self.pieces[id(m.conv_in)][c].out  # this colour's channels of the residual stream
        end = g.stop

        self.stream[0][:, g] = self._conv_at(m.conv_in, self.x, i, j, c)
        for b, block in enumerate(m.blocks):
            s_in, s_out = self.stream[b], self.stream[b + 1]
            a = relu(self._linear_at(block.conv1, xp.maximum(s_in[:, :end], 0), c))
            half = block.conv2.kernel // 2
            self.r2[b][:, i + half, j + half, self.pieces[id(block.conv1)][c].out] = a
            t = relu(self._conv_at(block.conv2, self.r2[b], i, j, c))
            self.r3[b][:, self.pieces[id(block.conv2)][c].out] = t
            s_out[:, g] = s_in[:, g] + self._linear_at(block.conv3, self.r3[b], c)
        self.h1[:, g] = relu(self._linear_at(m.head1, xp.maximum(self.stream[-1][:, :end], 0), c))
        self.h2[:, g] = relu(self._linear_at(m.head2, self.h1[:, :end], c))
        return self._linear_at(m.conv_out, self.h2[:, :end], c)

    def run(self, u, temperature, bar, known=None):
        """Sample the images below the ``known`` rows (whose positions are still
        computed, to fill the maps that later positions read)."""
        m, xp = self.model, self.model.xp
        C, L = m.config.channels, m.config.levels
        labels = xp.zeros((self.n, self.H, self.W, C), dtype=np.uint8)
        first = 0 if known is None else known.shape[1]
        if first:
            labels[:, :first] = xp.asarray(known)
        u = xp.asarray(u)
        top, left = m.conv_in.kernel // 2, m.conv_in.kernel // 2
        for i in range(self.H):
            for j in range(self.W):
                for c in range(C):
                    logits = self._logits_at(i, j, c)
                    label = labels[:, i, j, c] if i < first else draw(logits, u[:, i, j, c], temperature)
                    labels[:, i, j, c] = label
                    self.x[:, top + i, left + j, c] = labels_to_inputs(label, L, m.dtype, xp)
            bar.update(self.n)
        return to_numpy(labels)


class _Piece:
    """What one layer computes at colour step c of the cached sampler.

    out:  the layer's output channels of colour group c (a slice)
    W, b: the weight matrix rows and columns that step needs, contiguous
    end:  for a 1x1 mask-B layer, the input channels of groups 0..c, a prefix
          (the masks make every later input group's weight zero here)
    dys, dxs: for a k x k layer, the live taps, to gather from a window
    """

    def __init__(self, conv, c):
        xp = conv.xp
        colors = conv.colors
        first = lambda n, g: -(-g * n // colors)  # first channel k with k * colors // n == g
        self.out = slice(first(conv.out_channels, c), first(conv.out_channels, c + 1))
        Wm = conv.weight_matrix()
        if conv.kernel == 1:
            self.end = first(conv.in_channels, c + 1)
            Wm = Wm[: self.end]
        else:
            self.dys = xp.asarray([dy for dy, _ in conv.taps])
            self.dxs = xp.asarray([dx for _, dx in conv.taps])
        self.W = xp.ascontiguousarray(Wm[:, self.out])
        self.b = conv.params["b"][self.out].copy()
