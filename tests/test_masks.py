"""Masks against hand-written expected arrays."""
import pytest

from minipixel.masks import channel_groups, conv_mask, group_slices, live_taps


def spatial(mask):
    """The spatial pattern of a grey (1 -> 1 channel) mask."""
    return mask[:, :, 0, 0].astype(int).tolist()


def test_grey_3x3_mask_a_and_b():
    assert spatial(conv_mask(3, 1, 1, "A")) == [[1, 1, 1],
                                                 [1, 0, 0],
                                                 [0, 0, 0]]
    assert spatial(conv_mask(3, 1, 1, "B")) == [[1, 1, 1],
                                                 [1, 1, 0],
                                                 [0, 0, 0]]


def test_grey_5x5_mask_a():
    assert spatial(conv_mask(5, 1, 1, "A")) == [[1, 1, 1, 1, 1],
                                                 [1, 1, 1, 1, 1],
                                                 [1, 1, 0, 0, 0],
                                                 [0, 0, 0, 0, 0],
                                                 [0, 0, 0, 0, 0]]


def test_1x1_masks():
    assert spatial(conv_mask(1, 1, 1, "A")) == [[0]]
    assert spatial(conv_mask(1, 1, 1, "B")) == [[1]]


def test_channel_groups_are_contiguous_thirds():
    assert channel_groups(3, 3).tolist() == [0, 1, 2]
    assert channel_groups(6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert channel_groups(7, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert channel_groups(4, 1).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="2 channels for 3 colours"):
        channel_groups(2, 3)


def test_group_slices_are_the_channel_groups_as_slices():
    # Each group's slice selects exactly the channels channel_groups puts in it: the
    # groups tile 0..n in order, none reaching into another's channels. (The colour
    # sampler computes only group g's channels of each layer at step g through these.)
    for n, colors in [(1, 1), (4, 1), (3, 3), (6, 3), (7, 3), (8, 3), (128, 3)]:
        slices = group_slices(n, colors)
        groups = channel_groups(n, colors)
        assert len(slices) == colors
        for g, s in enumerate(slices):
            assert list(range(n))[s] == [k for k in range(n) if groups[k] == g], (n, colors, g)
        assert slices[0].start == 0 and slices[-1].stop == n
        assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))
    with pytest.raises(ValueError, match="2 channels for 3 colours"):
        group_slices(2, 3)


def test_rgb_centre_tap_mask_a_image_to_features():
    # Input: the image's R, G, B. Output: 6 features, groups R R G G B B.
    # Rows are input channels, columns output channels.
    centre = conv_mask(3, 3, 6, "A", colors=3)[1, 1]
    expected = [[0, 0, 1, 1, 1, 1],   # R feeds G and B features
                [0, 0, 0, 0, 1, 1],   # G feeds B features
                [0, 0, 0, 0, 0, 0]]   # B feeds nothing at its own pixel
    assert centre.astype(int).tolist() == expected


def test_rgb_centre_tap_mask_b_features_to_features():
    # 4 inputs in groups R R G B, 7 outputs in groups R R R G G B B (channel k of n
    # is in group k * 3 // n), as in the Chainer article's 4 -> 7 example.
    centre = conv_mask(1, 4, 7, "B", colors=3)[0, 0]
    expected = [[1, 1, 1, 1, 1, 1, 1],   # input R
                [1, 1, 1, 1, 1, 1, 1],   # input R
                [0, 0, 0, 1, 1, 1, 1],   # input G
                [0, 0, 0, 0, 0, 1, 1]]   # input B
    assert centre.astype(int).tolist() == expected


def test_rgb_off_centre_taps_see_all_channels():
    m = conv_mask(3, 3, 6, "A", colors=3)
    assert m[0].all() and m[1, 0].all()   # row above, and left in the centre row
    assert not m[2].any() and not m[1, 2].any()   # below, and right


def test_live_taps():
    assert live_taps(conv_mask(3, 4, 4, "B")) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert len(live_taps(conv_mask(7, 1, 8, "A"))) == 24
    assert len(live_taps(conv_mask(7, 3, 9, "A", colors=3))) == 25   # G and B see R at the centre
    assert live_taps(conv_mask(1, 1, 1, "A")) == []


@pytest.mark.parametrize("bad", [0, 2, 4, -1, 3.0])
def test_bad_kernel(bad):
    with pytest.raises(ValueError, match="kernel must be a positive odd int"):
        conv_mask(bad, 1, 1, "A")


def test_bad_mask_type():
    with pytest.raises(ValueError, match=r"mask_type must be one of \('A', 'B', 'V', 'HA', 'HB'\), got 'C'"):
        conv_mask(3, 1, 1, "C")


def test_gated_stack_masks():
    # Vertical: the rows above and the current row, every column (used shifted down a row).
    assert spatial(conv_mask(5, 1, 1, "V")) == [[1, 1, 1, 1, 1],
                                                 [1, 1, 1, 1, 1],
                                                 [1, 1, 1, 1, 1],
                                                 [0, 0, 0, 0, 0],
                                                 [0, 0, 0, 0, 0]]
    # Horizontal: the current row up to the centre; the centre as in mask A / B.
    assert spatial(conv_mask(5, 1, 1, "HA")) == [[0, 0, 0, 0, 0],
                                                  [0, 0, 0, 0, 0],
                                                  [1, 1, 0, 0, 0],
                                                  [0, 0, 0, 0, 0],
                                                  [0, 0, 0, 0, 0]]
    assert spatial(conv_mask(3, 1, 1, "HB")) == [[0, 0, 0],
                                                  [1, 1, 0],
                                                  [0, 0, 0]]
    # Colour groups at the horizontal centre tap, as in mask A and B; none in the vertical stack.
    for kind in ("A", "B"):
        full, row = conv_mask(3, 3, 6, kind, colors=3), conv_mask(3, 3, 6, "H" + kind, colors=3)
        assert (row[1, 1] == full[1, 1]).all()
    assert conv_mask(3, 3, 6, "V", colors=3)[:2].all()
