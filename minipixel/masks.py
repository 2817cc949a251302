"""Masks: which kernel taps a masked convolution may use.

PixelCNN orders the sub-pixels of an image in raster order (rows top to
bottom, pixels left to right) and, within a pixel, colour by colour (R, G, B).
The prediction for a sub-pixel may depend only on sub-pixels *before* it. A
convolution keeps that promise when its kernel is zero on every tap that would
look at the current pixel's future:

    kernel 5x5, spatial part     rows above the centre: all taps live
        1 1 1 1 1                centre row: taps left of the centre live
        1 1 1 1 1                centre tap: decided per colour group (below)
        1 1 c 0 0                rows below: never live
        0 0 0 0 0
        0 0 0 0 0

The centre tap ``c`` connects an output position to the *same* position of
the layer below. Feature channels are split into colour groups (one group for
grey images; R, G, B for colour) and at the centre tap:

- mask "A" (the first layer only, reading the image itself): an output of
  group g sees input groups strictly before g. R sees nothing of the current
  pixel, G sees R, B sees R and G. For grey images the centre tap is dead:
  the model must not see the pixel it predicts.
- mask "B" (every later layer): an output of group g sees input groups up to
  and including g. Group g's features already depend only on what group g
  may see, so passing them on keeps the promise.

Groups are contiguous blocks of channels: with ``n`` channels and ``colors``
groups, channel ``k`` belongs to group ``k * colors // n``. For 128 channels
and 3 colours that is channels 0-42 for R, 43-85 for G, 86-127 for B; the
image's own 3 channels are groups 0, 1, 2. Contiguous blocks (rather than
interleaving R, G, B, R, G, B, ...) make a group a slice (``group_slices``),
which the one-position forward of every layer uses to compute only the group
it needs.

The Gated PixelCNN (``gated``) splits that kernel in two stacks, with three
more mask types (k = 5 shown):

    "V" (vertical stack)   "HA" / "HB" (horizontal stack)
        1 1 1 1 1              0 0 0 0 0
        1 1 1 1 1              0 0 0 0 0
        1 1 1 1 1              1 1 c 0 0
        0 0 0 0 0              0 0 0 0 0
        0 0 0 0 0              0 0 0 0 0

"V" is a (k//2 + 1) x k convolution: the rows above *and the current row*,
every column, every channel. It sees the future of its own row, so its output
is only ever used shifted down one row (``gated.ShiftDown``), where the whole
row is in the past. "HA" / "HB" are a 1 x (k//2 + 1) convolution along the
current row, with the centre tap of mask A or B. Together they cover every
earlier position in reach, with no blind spot.

Masks are NumPy arrays in the weight layout of ``MaskedConv2d``:
``(kernel, kernel, in_channels, out_channels)``.
"""
import numpy as np

MASK_TYPES = ("A", "B", "V", "HA", "HB")


def channel_groups(n, colors):
    """Colour group of each of ``n`` channels: ``(n,)`` int, values ``0 .. colors-1``."""
    if colors < 1:
        raise ValueError(f"colors must be at least 1, got {colors}")
    if n < colors:
        raise ValueError(f"need at least one channel per colour group: {n} channels for {colors} colours")
    return np.arange(n) * colors // n


def group_slices(n, colors):
    """The channels of each colour group as slices: ``[slice(0, k1), slice(k1, k2), ...]``.

    Channel ``k`` is in group ``k * colors // n`` (``channel_groups``), so group
    ``g`` starts at the first ``k`` with ``k * colors >= g * n``, i.e. ``ceil(g * n / colors)``.
    """
    channel_groups(n, colors)  # the same checks
    start = [-(-g * n // colors) for g in range(colors + 1)]
    return [slice(start[g], start[g + 1]) for g in range(colors)]


def conv_mask(kernel, in_channels, out_channels, mask_type, colors=1):
    """The 0/1 mask of a masked convolution: ``(kernel, kernel, in_channels, out_channels)`` float64.

    ``kernel`` is odd; ``mask_type`` is "A" or "B" (or "V", "HA", "HB" for the
    gated stacks, see the module docstring); ``colors`` is the number of colour
    groups (1 for grey, 3 for RGB).
    """
    if not isinstance(kernel, (int, np.integer)) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd int, got {kernel!r}")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    c = kernel // 2
    mask = np.zeros((kernel, kernel, in_channels, out_channels))
    if mask_type == "V":
        mask[: c + 1] = 1.0  # rows up to the current one; used only shifted down a row
        return mask
    if mask_type in ("A", "B"):
        mask[:c] = 1.0  # every row above the centre is in the past
    mask[c, :c] = 1.0  # so is everything left of the centre in its row
    mask_type = mask_type[-1]  # "HA" / "HB": the centre tap as in mask A / B
    g_in = channel_groups(in_channels, colors)[:, None]
    g_out = channel_groups(out_channels, colors)[None, :]
    # The centre tap reads the current pixel: only earlier colour groups for
    # mask A, earlier or the same group for mask B.
    mask[c, c] = (g_out > g_in) if mask_type == "A" else (g_out >= g_in)
    return mask


def live_taps(mask):
    """The kernel taps ``(ky, kx)`` where ``mask`` has any non-zero entry, in raster order.

    A tap ``(ky, kx)`` of a ``k x k`` kernel reads the input ``ky - k//2`` rows
    and ``kx - k//2`` columns away from the output position.

    ``mask: (k, k, in, out)``. A 3x3 mask B has 5 live taps of 9, a 7x7 mask A
    has 24 of 49 (25 with colour groups, where G and B see R at the centre):
    the im2col gathers only these.
    """
    live = mask.reshape(mask.shape[0], mask.shape[1], -1).any(axis=2)
    return [(int(ky), int(kx)) for ky, kx in zip(*np.nonzero(live))]
