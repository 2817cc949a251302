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
  and the logits at p need each layer's output at p only. Each layer computes
  exactly that in its ``forward_at`` (see ``conv``), beside its ``forward``;
  this file only walks the positions and draws. Generating an image costs
  about one forward pass of arithmetic instead of H * W * C of them.

- ``wavefront`` (PixelCNN models): the cached sampler's work, several rows at
  a time. A k x k mask looks at most k // 2 columns to the right in each row
  above, so once row i - 1 is D = 1 + (the largest k // 2) columns ahead of
  row i, everything row i's next position looks at is final: the rows run side
  by side, each D columns behind the one above, and each step computes every
  layer at all their current positions in one product (``forward_many``). A
  28x28 image with D = 4 takes 28 + 4 * 27 = 136 steps instead of 784, in
  products of up to 7 positions of every image: fewer, larger calls. The
  same images as the other two (the sums run in another order, so in float32
  a draw can differ where a probability lies within rounding of u).

- ``graph`` (a GPU, or the CuPy stand-in): ``cached``'s work and images, each
  image row replayed from one captured CUDA graph (``sample_graph``): one GPU
  launch per row, where ``cached`` waits on some 20 per sub-pixel.

Randomness: all the uniform numbers are drawn up front, one per sub-pixel of
every image, from ``numpy.random.default_rng(seed)`` on the host, so a seed
gives the same images on the CPU and the GPU, with any sampler and any
batch size. A value is drawn by inverse CDF: the first level whose cumulative
probability exceeds the uniform number.
"""
import numpy as np
from tqdm import tqdm

from . import backend, fused, memory, threads
from .backend import to_numpy
from .data import labels_to_inputs
from .canvas import Positions, rolling_maps
from .evaluate import estimate_seconds
from .options import say_estimate

CPU_METHODS = ("cached", "naive", "wavefront")
METHODS = CPU_METHODS + ("graph",)  # graph: on a device that captures (a GPU, the stand-in)


def draw(logits, u, temperature=1.0):
    """Draw one level per row of ``logits``.

    logits: (n, levels); u: (n,) uniform numbers in [0, 1), same array module.
    temperature: divides the logits; < 1 sharpens, > 1 flattens; 0 takes the argmax.
    returns (n,) int labels: for each row, the first level whose cumulative
    probability exceeds u (strictly), so level k takes u in [cdf[k-1], cdf[k]):
    exactly its probability, and a level of probability 0 is never drawn.
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
    label = (cdf <= u[:, None] * cdf[:, -1:]).sum(axis=1)
    return xp.minimum(label, logits.shape[1] - 1)


def sample(model, n, seed=0, temperature=1.0, method="cached", height=None, width=None,
           batch_size=64, progress=False, known=None, known_rows=0, classes=None,
           snapshot=None, snapshot_every=None):
    """Generate ``n`` images from ``model``.

    returns labels: (n, H, W, C) uint8 NumPy array, values 0 .. levels-1
    (``H, W`` default to the size in the model's config; every layer is a
    convolution and the class bias is the same at every position, so any
    size works, whatever size the model was trained on).

    classes: (n,) ints, the class of each image, for a class-conditional model.

    Image completion: with ``known`` ((n, H, W, C) labels) the first
    ``known_rows`` rows of every image are copied from it, and only the rows
    below are sampled, each conditioned on everything above it.

    Watching the sampler (``--animate``): ``snapshot(start, labels, drawn)`` is
    called for each batch before its first draw, after every ``snapshot_every``
    sub-pixels (default W * C: one image row) and after its last draw.
    ``start``: the batch's first image; ``labels``: the batch's (b, H, W, C)
    labels, on the model's device, to read only; ``drawn``: how many
    sub-pixels of each image, in the sampler's order (row, column, colour),
    are final; the others are not drawn yet. It reads, draws no random
    numbers: the images are the same with or without it. See ``Recording``.
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
    if H < 1 or W < 1:
        raise ValueError(f"image size must be positive, got {H}x{W}")
    if not 0 <= known_rows <= H or (known_rows and known is None):
        raise ValueError(f"known_rows must be 0..{H} and needs `known`, got {known_rows}")
    if method not in METHODS:
        raise ValueError(f"sampling method must be one of {METHODS}, got {method!r}")
    if method == "wavefront" and not hasattr(model, "forward_many"):
        raise ValueError(f"the wavefront sampler runs PixelCNN models (arch pixelcnn), not a {type(model).__name__}: "
                         "use method 'cached'")
    if method in ("wavefront", "graph") and snapshot is not None:
        why = {"wavefront": "draws several rows side by side, not in raster order",
               "graph": "runs a row at a time on the device, with nothing to watch in between"}[method]
        raise ValueError(f"snapshot (--animate) needs method 'cached' or 'naive': the {method} sampler {why}")
    if method == "graph" and not backend.can_capture(model.xp):
        raise ValueError(f"the graph sampler replays a CUDA graph: it needs device 'gpu', not {model.device!r}; on "
                         "the CPU use method 'cached'")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"number of images must be a positive int, got {n!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if classes is not None:
        classes = np.asarray(classes)
        if classes.shape != (n,):
            raise ValueError(f"classes: expected one class per image, ({n},) ints, got shape {classes.shape}")
    every = snapshot_every or W * cfg.channels
    if not (isinstance(every, (int, np.integer)) and every >= 1):
        raise ValueError(f"snapshot_every must be a positive int, got {snapshot_every!r}")
    if model.xp is np:
        memory.check_memory(memory.sampling_bytes(cfg, n, batch_size, H, W),
                            f"sampling {n} images of {H}x{W}")
    if progress:  # a long sampling says so before it starts
        say_estimate(estimate_seconds(model, n, method, H, W), f"sampling {n} images of {H}x{W} ({method})")
    uniforms = np.random.default_rng(seed).random((n, H, W, cfg.channels))
    out = np.zeros((n, H, W, cfg.channels), dtype=np.uint8)
    sampler = {"cached": sample_cached, "naive": sample_naive, "wavefront": sample_wavefront,
               "graph": sample_graph}[method]
    bar = tqdm(total=n * H, desc=f"sampling ({method})", unit="row", disable=not progress)
    for start in range(0, n, batch_size):
        u = uniforms[start : start + batch_size]
        given = None if known is None else known[start : start + batch_size, :known_rows]
        given_classes = None if classes is None else classes[start : start + batch_size]
        watch = None if snapshot is None else Watch(lambda labels, drawn, s=start: snapshot(s, labels, drawn), every)
        out[start : start + len(u)] = sampler(model, u, temperature, bar, known=given, classes=given_classes,
                                              watch=watch)
    bar.close()
    return out


def complete(model, images, keep_rows, per_image=4, seed=0, temperature=1.0, method="cached", progress=False,
             classes=None):
    """Image completion: keep the top ``keep_rows`` rows of each image, sample the rest.

    images: (n, H, W, C) labels of the model's size and levels
    classes: (n,) ints, each image's class, for a class-conditional model
    returns (n, per_image, H, W, C) uint8: ``per_image`` independent completions of each image
    """
    images = np.asarray(images)
    cfg = model.config
    H = cfg.height
    if images.ndim != 4 or images.shape[1:] != (H, cfg.width, cfg.channels):
        raise ValueError(f"images: expected (n, {H}, {cfg.width}, {cfg.channels}) labels, images of the "
                         f"{H}x{cfg.width}x{cfg.channels} the model was trained on, got shape {images.shape}")
    if not (isinstance(keep_rows, (int, np.integer)) and 0 < keep_rows < H):
        raise ValueError(f"keep_rows must be between 1 and {H - 1}, got {keep_rows!r}")
    if not (isinstance(per_image, (int, np.integer)) and per_image >= 1):
        raise ValueError(f"per_image must be a positive int, got {per_image!r}")
    n = len(images)
    known = np.repeat(images, per_image, axis=0)  # each image k times, completed independently
    classes = None if classes is None else np.repeat(np.asarray(classes), per_image)
    completed = sample(model, n * per_image, seed=seed, temperature=temperature, method=method, known=known,
                       known_rows=keep_rows, progress=progress, classes=classes)
    return completed.reshape((n, per_image) + images.shape[1:])


class Watch:
    """What a sampler calls as it draws (``sample(snapshot=...)``): ``look(labels, drawn)``
    once before its first draw, then after every ``every`` sub-pixels, and after its last.

    labels: (b, H, W, C) on the device; drawn: sub-pixels of each image final so far.
    """

    def __init__(self, look, every):
        self.look, self.every = look, every

    def before(self, labels, drawn):
        self.look(labels, drawn)

    def after(self, labels, drawn):
        _, H, W, C = labels.shape
        if drawn % self.every == 0 or drawn == H * W * C:
            self.look(labels, drawn)


MAX_FRAMES = 500  # looks a Recording takes at most: an animation of more is slow to watch and big to keep


class Recording:
    """A ``snapshot`` for ``sample`` that keeps a copy of the labels at every look.

    ``labels[k]``: (n, H, W, C) uint8, all n images as they stood at look k;
    ``drawn[k]``: how many sub-pixels of each image (row, column, colour order)
    were final then: 0, every, 2 * every, ..., H * W * C. Every batch is looked
    at after the same counts, so look k of each batch fills its images in
    frame k. Without ``known`` rows only (the looks then start at 0).

    every: sub-pixels between two looks; default one image row (W * C), or
    more where that would make over ``MAX_FRAMES`` looks. Pass ``self.every``
    to ``sample(snapshot_every=)``.
    """

    def __init__(self, n, height, width, channels, every=None):
        total = height * width * channels
        fewest = -(-total // (MAX_FRAMES - 1))  # the smallest step giving at most MAX_FRAMES looks
        every = every or max(width * channels, fewest)
        if not (isinstance(every, (int, np.integer)) and every >= 1):
            raise ValueError(f"every: expected a positive int, got {every!r}")
        if every < fewest:
            raise ValueError(f"every={every} sub-pixel(s) makes {-(-total // every) + 1} frames of "
                             f"{height}x{width}x{channels} images, more than {MAX_FRAMES}: take every={fewest} or "
                             "more (sample --frame-every)")
        self.every = every
        self.drawn = [min(k * every, total) for k in range(-(-total // every) + 1)]
        memory.check_memory(len(self.drawn) * n * total, f"recording {len(self.drawn)} frames of {n} images")
        self.labels = np.zeros((len(self.drawn), n, height, width, channels), dtype=np.uint8)

    def __call__(self, start, labels, drawn):
        k = -(-drawn // self.every)  # the looks come at 0, every, 2 * every, ..., then at the total
        if k >= len(self.drawn) or self.drawn[k] != drawn:
            raise ValueError(f"Recording: expected a look after one of {self.drawn} sub-pixels, got {drawn}")
        self.labels[k, start : start + len(labels)] = to_numpy(labels)  # a copy: the sampler goes on writing


def _start(model, u, known):
    """Labels on the device, with the known rows copied in; the uniforms moved there too."""
    xp = model.xp
    labels = xp.zeros(u.shape, dtype=np.uint8)
    first = 0 if known is None else known.shape[1]
    if first:
        labels[:, :first] = xp.asarray(known)
    return labels, xp.asarray(u), first


def sample_naive(model, u, temperature, bar, known=None, rows=None, classes=None, watch=None):
    """One full forward pass per sub-pixel: simple, slow, the reference.

    u: (n, H, W, C) uniform numbers; known: optional (n, first, W, C) labels of
    the top rows to keep; rows: stop after that many rows (for timing);
    classes: (n,) ints for a class-conditional model; watch: an optional
    ``Watch``, shown the labels as they are drawn.
    Returns (n, H, W, C) uint8 labels (NumPy).
    """
    xp, L = model.xp, model.config.levels
    n, H, W, C = u.shape
    labels, u, first = _start(model, u, known)
    x = labels_to_inputs(labels, L, model.dtype, xp)
    bar.update(n * first)
    if watch:
        watch.before(labels, first * W * C)
    for i in range(first, H if rows is None else rows):
        for j in range(W):
            for c in range(C):
                logits = model.forward(x, classes)[:, i, j, c]
                labels[:, i, j, c] = draw(logits, u[:, i, j, c], temperature)
                x[:, i, j, c] = labels_to_inputs(labels[:, i, j, c], L, model.dtype, xp)
                if watch:
                    watch.after(labels, (i * W + j) * C + c + 1)
        bar.update(n)
    return to_numpy(labels)


def sample_cached(model, u, temperature, bar, known=None, classes=None, watch=None):
    """One position at a time, each layer computed there only (``forward_at``).

    Same arguments and result as ``sample_naive``. The known rows are still
    run through the model, to fill the maps that later positions read.
    """
    with threads.single_threaded_blas():  # a position's products are small: one thread does them sooner
        return _sample_cached(model, u, temperature, bar, known, classes, watch)


def _sample_cached(model, u, temperature, bar, known, classes, watch):
    n, H, W, C = u.shape
    labels, u, first = _start(model, u, known)
    model.condition(classes)
    model.start_at(n, H, W)
    canvas = model.canvas(n, H, W)  # the model's input, filled as the labels are drawn
    if watch:
        watch.before(labels, first * W * C)
    for i in range(H):
        seen = (lambda j, c, i=i: watch.after(labels, (i * W + j) * C + c + 1)) if watch and i >= first else None
        _cached_row(model, canvas, i, u[:, i], labels[:, i], temperature, i < first, seen)
        bar.update(n)
    return to_numpy(labels)


def _cached_row(model, canvas, i, u_row, labels_row, temperature, known, seen=None):
    """Row i of the cached sampler: at each position the logits (``forward_at``), then
    the label drawn with ``u_row`` ((n, W, C)) into ``labels_row`` and, as the network's
    input value, into the canvas; in a ``known`` row, ``labels_row``'s given labels
    go into the canvas instead. ``seen(j, c)`` after each draw."""
    xp, L = model.xp, model.config.levels
    W, C = u_row.shape[1:]
    for j in range(W):
        for c in range(C):
            logits = model.forward_at(canvas, i, j, c)
            if known:
                canvas.write(i, j, labels_to_inputs(labels_row[:, j, c], L, model.dtype, xp), channels=c)
            else:  # draw(), the label and the input value written in place: one GPU launch
                fused.draw_into(logits, u_row[:, j, c], temperature, labels_row[:, j, c], canvas.at(i, j)[:, c])
                if seen:
                    seen(j, c)


def sample_graph(model, u, temperature, bar, known=None, classes=None, watch=None):
    """The cached sampler, each image row replayed from one captured graph; same
    arguments and result as ``sample_naive``, on a device that can capture; no ``watch``.

    A graph keeps the addresses it was captured with, so every row must use the
    same arrays: the layers' maps, made inside ``canvas.rolling_maps()``, keep
    their last rows only and move up by one as a row starts (in the graph); the
    uniforms go in and the labels come out through one-row buffers. Nothing in a
    row calls cuBLAS or cuRAND, copies to or from the host, waits, or allocates.
    """
    if watch is not None:
        raise ValueError("the graph sampler takes no watch: it runs a row at a time on the device")
    with threads.single_threaded_blas(), backend.own_stream(model.xp):
        return _sample_graph(model, u, temperature, bar, known, classes)


def _sample_graph(model, u, temperature, bar, known, classes):
    xp = model.xp
    n, H, W, C = u.shape
    labels, u, first = _start(model, u, known)
    model.condition(classes)
    with rolling_maps() as maps:  # every map the layers read keeps its last rows only
        model.start_at(n, H, W)
        canvas = model.canvas(n, H, W)
    maps.shift()  # the maps are zero: no change, but on a GPU the shift's copies compile before the capture
    # Known rows and row 0 run as they come; the next is captured (recorded, not run) in one-row buffers, replayed.
    graph, captured = None, max(first, 1)
    u_row, labels_row = xp.empty((n, W, C), dtype=u.dtype), xp.empty((n, W, C), dtype=labels.dtype)
    for i in range(H):
        if i < captured:
            if i:
                maps.advance()
            _cached_row(model, canvas, i, u[:, i], labels[:, i], temperature, i < first)
        else:
            if graph is None:
                with backend.capture(xp) as graph:
                    maps.advance()
                    _cached_row(model, canvas, i, u_row, labels_row, temperature, False)
            u_row[...] = u[:, i]
            graph.launch()
            labels[:, i] = labels_row
        bar.update(n)
    return to_numpy(labels)


def wavefront_lag(model):
    """D: how many columns each row runs behind the row above in the wavefront sampler.

    A k x k layer at (i, j) reads its input at rows i - a (1 <= a <= k // 2) up to
    column j + k // 2, and in row i only up to column j. With q the largest k // 2
    of the model and D = q + 1, the step that computes (i, j) comes after the one
    that computed (i - a, j + q) in every layer (q < D * a), so each position's
    inputs are final; the layers of one position run in order within the step.
    """
    from .conv import MaskedConv2d

    return 1 + max(layer.kernel // 2 for layer in model.layers() if isinstance(layer, MaskedConv2d))


def sample_wavefront(model, u, temperature, bar, known=None, classes=None, watch=None):
    """The rows side by side, each ``wavefront_lag`` columns behind the one above
    (see the module docstring). Same arguments and result as ``sample_naive``,
    for a model with ``forward_many`` (``model.PixelCNN``); no ``watch``.
    """
    if watch is not None:
        raise ValueError("the wavefront sampler takes no watch: it does not draw in raster order")
    model.condition(classes)  # a PixelCNN takes none: refused there
    # One thread, with BLAS free to split the larger products over the cores: the
    # images split over two threads, one replica each, ran slower side by side
    # (docs/journal/performance.md).
    return _sample_wavefront(model, u, temperature, bar, known)


def wavefront_order(height, width, lag):
    """Every position in the order the wavefront sampler computes them: step after
    step (step t holds row i at column t - lag * i, for each row where that is in
    the image), rows ascending within a step.

    Returns (rows, cols, bounds): (H * W,) ints, and the offsets at which each
    step begins and the last ends (step t is positions bounds[t] .. bounds[t + 1] - 1).
    """
    rows, cols = np.divmod(np.arange(height * width), width)
    step = cols + lag * rows
    order = np.lexsort((rows, step))  # by step, then by row
    bounds = np.searchsorted(step[order], np.arange(width + lag * (height - 1) + 1))
    return rows[order], cols[order], bounds


def _sample_wavefront(model, u, temperature, bar, known):
    xp, L = model.xp, model.config.levels
    n, H, W, C = u.shape
    labels, u, first = _start(model, u, known)
    model.start_at(n, H, W)
    canvas = model.canvas(n, H, W)  # the model's input, filled as the labels are drawn
    rows, cols, bounds = wavefront_order(H, W, wavefront_lag(model))
    everywhere = Positions(xp.asarray(rows), xp.asarray(cols))  # each step is a slice of it
    # The labels and uniforms, their positions in the same order: a step's are a slice.
    order = xp.asarray(rows * W + cols)
    labels_w = labels.reshape(n, H * W, C)[:, order]
    u_w = u.reshape(n, H * W, C)[:, order]
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if start == stop:  # an image narrower than the lag: no row has a column at this step
            continue
        at = everywhere[start:stop]
        mid = start + int(np.count_nonzero(rows[start:stop] < first))  # rows above `first` are given, not drawn
        for c in range(C):
            logits = model.forward_many(canvas, at, c)  # (n, P, L)
            if mid > start:  # known rows: their labels go in, as the other samplers do
                value = labels_to_inputs(labels_w[:, start:mid, c], L, model.dtype, xp)
                canvas.write_many(everywhere[start:mid], value, channels=c)
            if mid < stop:  # draw(): the labels and the input values into buffers, then in place
                drawn = xp.empty(n * (stop - mid), dtype=np.uint8)
                value = xp.empty(n * (stop - mid), dtype=model.dtype)
                fused.draw_into(logits[:, mid - start :].reshape(-1, L), u_w[:, mid:stop, c].reshape(-1),
                                temperature, drawn, value)
                labels_w[:, mid:stop, c] = drawn.reshape(n, -1)
                canvas.write_many(everywhere[mid:stop], value.reshape(n, -1), channels=c)
        if cols[start] == W - 1:  # the top row in flight has reached its last column
            bar.update(n)
    labels.reshape(n, H * W, C)[:, order] = labels_w
    return to_numpy(labels)

