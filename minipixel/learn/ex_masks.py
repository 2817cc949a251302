"""Exercise "masks": the 0/1 mask of a masked convolution, masks A and B with colour groups."""
import numpy as np

from ..masks import channel_groups, conv_mask
from .grade import Wrong, as_array, function, run_parts

NAME = "masks"
TITLE = "masks A and B: which kernel taps may see which colour"
CHAPTER = "docs/learn/masks.md"
SOLUTION = "minipixel/masks.py, function conv_mask (and channel_groups for the colour groups)"

SKELETON = '''"""Exercise masks: write conv_mask. Check it with: minipixel learn check masks"""
import numpy as np


def conv_mask(kernel, in_channels, out_channels, mask_type, colors=1):
    """The 0/1 mask of a masked convolution: (kernel, kernel, in_channels, out_channels).

    kernel: odd (1, 3, 5, 7); mask_type: "A" (first layer) or "B" (later layers);
    colors: colour groups, 1 for grey, 3 for RGB.

    With c = kernel // 2, tap (ky, kx) reads the input ky - c rows and kx - c
    columns away from the output position. In raster order:
    - every tap in a row above the centre (ky < c) is the past: 1;
    - on the centre row, taps left of the centre (kx < c) are the past: 1;
    - taps right of the centre and every row below are the future: 0;
    - the centre tap (c, c) reads the current pixel. Channels are split into
      colour groups, contiguous blocks: channel k of n is in group k * colors // n.
      An output of group go may see input group gi at the centre when
      gi < go (mask A) or gi <= go (mask B).

    Hint: start from np.zeros, open the rows above, then the left half of the
    centre row, then set mask[c, c] from the groups of in and out channels.
    """
    raise NotImplementedError
'''

HINTS = [
    "Rows first: mask[:c] = 1 opens every row above the centre; mask[c, :c] = 1 the left half of the centre row.",
    "The groups: g_in = np.arange(in_channels) * colors // in_channels, and the same for the outputs.",
    "The centre tap: mask[c, c] = g_out[None, :] > g_in[:, None] for mask A, >= for mask B.",
]

# (kernel, in, out, colors): grey and RGB, channel counts divisible by 3 and not
CASES = [(k, cin, cout, colors) for k in (1, 3, 5, 7)
         for cin, cout, colors in ((1, 4, 1), (3, 5, 1), (3, 6, 3), (3, 7, 3), (5, 8, 3), (6, 6, 3))]


def _diagnose(got, want, kernel, cin, cout, mask_type, colors):
    c = kernel // 2
    if got[c + 1:].any():
        return "taps below the centre row are open: rows below are the future, they must be 0"
    if got[c, c + 1:].any():
        return "taps right of the centre on the centre row are open: they are the future, they must be 0"
    if (got[:c] != 1).any():
        return "a tap in a row above the centre is closed: every row above is the past, open it (1)"
    if (got[c, :c] != 1).any():
        return "a tap left of the centre on the centre row is closed: it is the past, open it (1)"
    g_in, g_out = channel_groups(cin, colors), channel_groups(cout, colors)
    i, o = (int(v[0]) for v in np.nonzero(got[c, c] != want[c, c]))
    gi, go = int(g_in[i]), int(g_out[o])
    where = f"centre tap, input channel {i} (group {gi}) -> output channel {o} (group {go})"
    if gi == go and mask_type == "A" and got[c, c, i, o]:
        return f"mask A: the centre tap is open for colour group {gi} -> {go}: mask A must close it ({where})"
    if gi == go and mask_type == "B":
        return f"mask B: the centre tap is closed for colour group {gi} -> {go}: mask B must open it ({where})"
    if gi > go:
        return f"{where} is open: a later colour must not feed an earlier one"
    return (f"{where} is closed: an earlier colour group is the past, open it "
            f"(groups are contiguous blocks: channel k of n is in group k * colors // n)")


def _part(mask_type):
    def run(module):
        fn = function(module, "conv_mask")
        for kernel, cin, cout, colors in CASES:
            want = conv_mask(kernel, cin, cout, mask_type, colors)
            what = f"conv_mask({kernel}, {cin}, {cout}, {mask_type!r}, colors={colors})"
            got = np.asarray(as_array(fn(kernel, cin, cout, mask_type, colors), what, want.shape))
            if not np.isin(got, (0, 1)).all():
                raise Wrong(f"{what} holds values other than 0 and 1")
            if (got != want).any():
                raise Wrong(f"{what}: " + _diagnose(got, want, kernel, cin, cout, mask_type, colors))
        return f"same as the library on {len(CASES)} shapes (kernels 1-7, grey and RGB)"
    return run


PARTS = [("mask A", _part("A")), ("mask B", _part("B"))]


def check(module):
    """Grade the learner's module: ``(lines, passed)``."""
    return run_parts(PARTS, module)
