"""Pictures: sample grids as PNG files, sampling as a GIF (Pillow, no plotting library)."""
import math
from pathlib import Path

import numpy as np
from PIL import Image

from .files import atomic_write


def to_uint8(labels, levels):
    """Labels 0..levels-1 -> pixel values 0..255 (0 -> black, levels-1 -> white)."""
    labels = np.asarray(labels)
    return (labels.astype(np.int64) * 255 // (levels - 1)).astype(np.uint8)


def image_grid(labels, levels, ncols=None, scale=1, pad=1, pad_value=128, row_names=None):
    """Tile images into one picture.

    labels: (n, H, W, C) ints in 0..levels-1, C = 1 or 3
    ncols:  images per row (default: a square-ish grid)
    scale:  each pixel becomes a scale x scale block (so a 32x32 image is visible)
    row_names: a name for each row (the class of a conditional model's row), written
            in a margin on the left
    returns (rows, cols) uint8 for grey, (rows, cols, 3) for colour
    """
    if row_names is not None:
        grid = image_grid(labels, levels, ncols, scale, pad, pad_value)
        return _name_rows(grid, row_names, (np.asarray(labels).shape[1] * scale) + pad, pad, pad_value)
    labels = np.asarray(labels)
    if labels.ndim != 4 or labels.shape[3] not in (1, 3):
        raise ValueError(f"expected images of shape (n, H, W, 1 or 3), got {labels.shape}")
    n, H, W, C = labels.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    pixels = to_uint8(labels, levels)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
        H, W = H * scale, W * scale
    grid = np.full((nrows * (H + pad) + pad, ncols * (W + pad) + pad, C), pad_value, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, ncols)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        grid[y : y + H, x : x + W] = pixels[k]
    return grid[:, :, 0] if C == 1 else grid


def _name_rows(grid, names, row_height, pad, pad_value):
    """``grid`` with a margin on its left holding ``names[r]`` beside row r (Pillow's own font)."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = max(int(draw.textlength(str(name), font=font)) for name in names) + 8
    picture = Image.fromarray(grid)
    framed = Image.new(picture.mode, (grid.shape[1] + width, grid.shape[0]),
                       pad_value if picture.mode == "L" else (pad_value,) * 3)
    framed.paste(picture, (width, 0))
    draw = ImageDraw.Draw(framed)
    white = 255 if picture.mode == "L" else (255, 255, 255)
    for r, name in enumerate(names):
        _, top, _, bottom = font.getbbox(str(name))
        y = pad + r * row_height + (row_height - pad - (bottom - top)) // 2 - top
        draw.text((4, y), str(name), fill=white, font=font)
    return np.asarray(framed)


# The rows a completion has to fill are hatched in two blues: no grey or colour
# level looks like that, whatever the number of levels.
HIDDEN_HATCH = ((70, 110, 200), (150, 180, 230))


def completion_grid(originals, completed, keep_rows, levels):
    """The picture of ``minipixel complete``: one row per image, showing what the
    model was given (the lost rows hatched in blue), its k completions, and the original.

    originals: (n, H, W, C) labels; completed: (n, k, H, W, C) labels.
    returns (rows, cols, 3) uint8 (RGB, for the hatch, also for grey images)
    """
    n, H, W, C = originals.shape
    k = completed.shape[1]
    tiles = np.concatenate([originals[:, None], completed, originals[:, None]], axis=1)
    hidden = np.zeros((n, k + 2, H, W, 1), np.uint8)
    hidden[:, 0, keep_rows:] = 1
    scale = default_scale(H)
    grid = image_grid(tiles.reshape(-1, H, W, C), levels, ncols=k + 2, scale=scale)
    if grid.ndim == 2:
        grid = np.repeat(grid[:, :, None], 3, axis=2)
    hidden = image_grid(hidden.reshape(-1, H, W, 1), 2, ncols=k + 2, scale=scale, pad_value=0) == 255
    y, x = np.indices(hidden.shape)
    stripe = (y + x) // 3 % 2 == 0
    grid[hidden & stripe], grid[hidden & ~stripe] = HIDDEN_HATCH
    return grid


def default_scale(height):
    """Pixel size for a grid of images ``height`` pixels tall: 2, or 4 below 28, so a small image is visible."""
    return 2 if height >= 28 else 4


def save_png(path, picture):
    """Write a PIL image, or a uint8 (rows, cols) or (rows, cols, 3) array, as a PNG, atomically."""
    if not isinstance(picture, Image.Image):
        picture = Image.fromarray(np.asarray(picture, dtype=np.uint8))
    with atomic_write(path) as f:
        picture.save(f, format="PNG")
    return path


def save_image_files(folder, labels, levels):
    """Each image as its own PNG, ``folder/000.png``, ``001.png``, ...: one pixel per
    pixel, values 0..255 (``to_uint8``), grey or RGB. labels: (n, H, W, 1 or 3).
    Returns the paths."""
    labels = np.asarray(labels)
    if labels.ndim != 4 or labels.shape[3] not in (1, 3):
        raise ValueError(f"expected images of shape (n, H, W, 1 or 3), got {labels.shape}")
    pixels = to_uint8(labels, levels)
    digits = max(3, len(str(len(pixels) - 1)))
    return [save_png(Path(folder) / f"{k:0{digits}d}.png", p[:, :, 0] if p.shape[2] == 1 else p)
            for k, p in enumerate(pixels)]


# ---------------------------------------------------------------------------
# Sampling as it happens: one frame per look at the sampler (``sample --animate``)
# ---------------------------------------------------------------------------

# Sub-pixels not drawn yet. Not a grey, so never a pixel of a grey model; in a
# colour model, no colour of fewer than 48 levels has these three values.
UNDRAWN = (200, 70, 70)


def sampling_frame(labels, drawn, levels, ncols=None, scale=1, row_names=None):
    """The images as the sampler saw them after ``drawn`` sub-pixels of each.

    labels: (n, H, W, C) ints, final at the first ``drawn`` sub-pixels of every
    image in the sampler's order (row, column, colour); the rest are painted
    ``UNDRAWN``, whatever they hold. A grey pixel is grey in all three colours.
    returns (rows, cols, 3) uint8, laid out as ``image_grid``: once every
    sub-pixel is drawn, the same picture as ``image_grid(labels, levels, ...)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 4 or labels.shape[3] not in (1, 3):
        raise ValueError(f"expected images of shape (n, H, W, 1 or 3), got {labels.shape}")
    n, H, W, C = labels.shape
    pixels = to_uint8(labels, levels)
    undrawn = np.arange(H * W * C).reshape(H, W, C) >= drawn  # (H, W, C), the same for every image
    if C == 1:
        pixels, undrawn = pixels.repeat(3, axis=3), undrawn.repeat(3, axis=2)
    pixels = np.where(undrawn, np.array(UNDRAWN, dtype=np.uint8), pixels)  # (n, H, W, 3)
    return image_grid(pixels, 256, ncols=ncols, scale=scale, row_names=row_names)  # at 256 levels, 0..255 stay


def save_gif(path, pictures, frame_ms=80, last_ms=2000):
    """Write uint8 pictures, (rows, cols) or (rows, cols, 3) arrays of one shape, as a
    looping GIF, atomically; the last stays ``last_ms`` on screen. A GIF holds 256
    colours at most (more are approximated), and a frame equal to the one before
    it is merged into it, its time added."""
    frames = [Image.fromarray(np.asarray(p, dtype=np.uint8)) for p in pictures]
    if not frames:
        raise ValueError("save_gif: no pictures")
    durations = [frame_ms] * (len(frames) - 1) + [last_ms]
    with atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path


# ---------------------------------------------------------------------------
# Drawing helpers (Pillow only)
# ---------------------------------------------------------------------------

def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, AttributeError):  # an old Pillow or one without FreeType
        return ImageFont.load_default()


def _nice_ticks(lo, hi, count=5):
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


# ---------------------------------------------------------------------------
# The learning curve of a run
# ---------------------------------------------------------------------------

def learning_curve(rows, width=720, height=420):
    """A picture of a run's metrics: train and validation NLL (nats per image) by epoch.

    rows: the dicts of metrics.jsonl (``epoch``, ``train_nll_nats``,
    ``valid_nll_nats``, ``valid_bits_per_dim``). Returns a PIL image.
    """
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(15), _font(12)
    left, right, top, bottom = 70, width - 20, 56, height - 50
    if not rows:
        draw.text((left, top), "no evaluations yet", fill="black", font=font)
        return img
    epochs = [r["epoch"] for r in rows]
    series = [("train", [r["train_nll_nats"] for r in rows], (31, 119, 180)),
              ("validation", [r["valid_nll_nats"] for r in rows], (255, 127, 14))]
    values = [v for _, vs, _ in series for v in vs]
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    x_lo, x_hi = 0.0, max(epochs) * 1.02 or 1.0
    px = lambda e: left + (e - x_lo) / (x_hi - x_lo) * (right - left)
    py = lambda v: bottom - (v - lo) / (hi - lo) * (bottom - top)

    for v in _nice_ticks(lo, hi):
        draw.line([(left, py(v)), (right, py(v))], fill=(230, 230, 230))
        draw.text((left - 8, py(v)), f"{v:g}", fill="black", font=small, anchor="rm")
    for e in _nice_ticks(x_lo, x_hi):
        draw.line([(px(e), top), (px(e), bottom)], fill=(240, 240, 240))
        draw.text((px(e), bottom + 6), f"{e:g}", fill="black", font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline="black")
    for name, vs, colour in series:
        points = [(px(e), py(v)) for e, v in zip(epochs, vs)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    last = rows[-1]
    draw.text((left, 12), f"NLL in nats per image; last validation: {last['valid_nll_nats']:.2f} nats, "
              f"{last['valid_bits_per_dim']:.4f} bits/dim", fill="black", font=font)
    draw.text((left, 33), "train: the mean loss of the steps since the last point, each taken while learning "
              "(so it lags); validation: at the point", fill=(90, 90, 90), font=small)
    draw.text(((left + right) / 2, height - 22), "epoch", fill="black", font=font, anchor="mt")
    for k, (name, _, colour) in enumerate(series):
        y = top + 12 + 20 * k
        draw.line([(right - 130, y), (right - 105, y)], fill=colour, width=3)
        draw.text((right - 98, y), name, fill="black", font=small, anchor="lm")
    return img


# ---------------------------------------------------------------------------
# Masks: which taps each colour sees
# ---------------------------------------------------------------------------

GROUP_COLOURS = {1: [(235, 235, 235)], 3: [(230, 80, 80), (80, 190, 90), (80, 120, 235)]}


def mask_figure(kernel, channels, cell=22):
    """A picture of mask A and mask B for a ``kernel`` x ``kernel`` convolution on
    ``channels`` colours (1 or 3): one small kernel per (output colour, input
    colour) pair; a live tap is filled with the input colour, a dead one is dark,
    the centre tap is outlined in yellow. Returns a PIL image."""
    from PIL import Image, ImageDraw

    from .masks import conv_mask

    if channels not in GROUP_COLOURS:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    names = ["R", "G", "B"] if channels == 3 else [""]
    font, small = _font(16), _font(13)
    block = kernel * cell + 14  # one kernel and the gap after it
    label_w, label_h, title_h = 50, 22, 30
    panel_w = label_w + channels * block
    width = 2 * panel_w + 40
    height = title_h + label_h + channels * block + 60
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for p, mask_type in enumerate("AB"):
        mask = conv_mask(kernel, channels, channels, mask_type, colors=channels)
        x0 = 20 + p * panel_w
        draw.text((x0 + label_w, 6), f"mask {mask_type}", fill="black", font=font)
        for o in range(channels):
            y = title_h + label_h + o * block
            draw.text((x0 + label_w - 8, y + kernel * cell / 2), f"out {names[o]}".strip(), fill="black",
                      font=small, anchor="rm")
            for i in range(channels):
                x = x0 + label_w + i * block
                if o == 0:
                    draw.text((x + kernel * cell / 2, title_h + 4), f"in {names[i]}".strip(), fill="black",
                              font=small, anchor="mt")
                for ky in range(kernel):
                    for kx in range(kernel):
                        live = mask[ky, kx, i, o] > 0
                        box = [x + kx * cell, y + ky * cell, x + (kx + 1) * cell - 2, y + (ky + 1) * cell - 2]
                        draw.rectangle(box, fill=GROUP_COLOURS[channels][i] if live else (60, 60, 60))
                c = kernel // 2
                draw.rectangle([x + c * cell - 1, y + c * cell - 1, x + (c + 1) * cell - 1, y + (c + 1) * cell - 1],
                               outline=(250, 200, 0), width=2)
    note = "filled: live tap (the output may read that input there); dark: masked; yellow: the centre tap"
    draw.text((20, height - 30), note, fill="black", font=small)
    return img


# ---------------------------------------------------------------------------
# Receptive field: which inputs reach one output, from the backward pass
# ---------------------------------------------------------------------------

def receptive_field(model, row=None, col=None, channel=0, images=4, seed=0):
    """How strongly each input position influences the logits of sub-pixel (row, col, channel).

    Runs the model forward on ``images`` random images and backward from random
    gradients at that one output (with ``model.input_grad`` set, ``model.backward``
    returns the input gradient);
    the input gradient is exactly zero wherever the output cannot see.
    Returns (influence (H, W) float64 NumPy array, (row, col)).
    """
    from .backend import to_numpy
    from .data import labels_to_inputs

    cfg = model.config
    row = cfg.height // 2 if row is None else row
    col = cfg.width // 2 if col is None else col
    if not (0 <= row < cfg.height and 0 <= col < cfg.width and 0 <= channel < cfg.channels):
        raise ValueError(f"position ({row}, {col}, channel {channel}) is outside the model's "
                         f"{cfg.height}x{cfg.width}x{cfg.channels} images")
    xp, rng = model.xp, np.random.default_rng(seed)
    labels = rng.integers(0, cfg.levels, (images, cfg.height, cfg.width, cfg.channels))
    x = labels_to_inputs(xp.asarray(labels), cfg.levels, model.dtype, xp)
    logits = model.forward(x, np.zeros(images, int) if cfg.classes else None)  # any class: the bias is constant
    dlogits = xp.zeros_like(logits)
    dlogits[:, row, col, channel] = xp.asarray(rng.standard_normal((images, cfg.levels)), dtype=model.dtype)
    saved, model.input_grad = model.input_grad, True
    try:
        dx = to_numpy(model.backward(dlogits))
    finally:
        model.input_grad = saved
    return np.abs(dx.astype(np.float64)).sum(axis=(0, 3)), (row, col)


def field_figure(influence, target, cell=14):
    """Draw a receptive field: green inputs influence the target (brighter = more,
    on a log scale), red is the target, blue marks earlier positions the target
    cannot see (PixelCNN's blind spot), dark grey the positions after it."""
    from PIL import Image, ImageDraw

    H, W = influence.shape
    ti, tj = target
    live = influence > 0
    logs = np.log10(influence[live]) if live.any() else np.zeros(1)
    lo, hi = logs.min(), logs.max()
    font = _font(13)
    img = Image.new("RGB", (max(W * cell + 20, 600), H * cell + 78), "white")
    draw = ImageDraw.Draw(img)
    blind = 0
    for i in range(H):
        for j in range(W):
            before = (i, j) < (ti, tj)
            if (i, j) == (ti, tj):
                colour = (220, 30, 30)
            elif live[i, j]:
                t = 0.35 + 0.65 * ((np.log10(influence[i, j]) - lo) / (hi - lo) if hi > lo else 1.0)
                colour = (int(20 * t), int(230 * t), int(60 * t))
            elif before:
                colour = (70, 110, 230)
                blind += 1
            else:
                colour = (45, 45, 45)
            draw.rectangle([10 + j * cell, 10 + i * cell, 10 + (j + 1) * cell - 2, 10 + (i + 1) * cell - 2], fill=colour)
    seen = int(live.sum())
    draw.text((10, H * cell + 18), f"target (red) at row {ti}, column {tj}: {seen} input positions influence it (green)",
              fill="black", font=font)
    draw.text((10, H * cell + 38), f"{blind} earlier positions it cannot see (blue): out of reach, or in the blind spot",
              fill="black", font=font)
    draw.text((10, H * cell + 58), "dark: positions after the target, which it must not see", fill="black", font=font)
    return img
