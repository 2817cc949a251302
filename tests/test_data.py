"""Tests for minipixel.data: quantization, binarization, labels and inputs, the epoch order, hold-out splits.

The file readers and named datasets are tested in tests/datasets/.
"""
import numpy as np
import pytest

from minipixel import data


def random_binary(n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=(n, 28, 28), dtype=np.uint8)


def random_grey(n, seed=0, shape=(28, 28)):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)

# ---------------------------------------------------------------- quantize


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_round_trips_every_8bit_value(dtype):
    v = np.arange(256)
    x = (v / 255).astype(dtype)
    labels = data.quantize(x, 256)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, v)


@pytest.mark.parametrize("levels", [2, 3, 7, 22, 255, 256])
def test_quantize_edges_zero_and_one(levels):
    labels = data.quantize(np.array([0.0, 1.0]), levels)
    np.testing.assert_array_equal(labels, [0, levels - 1])


@pytest.mark.parametrize("levels", [2, 4, 8, 16, 64, 256])
def test_quantize_matches_chainer_digitize_for_power_of_two_levels(levels):
    rng = np.random.default_rng(levels)
    edges = np.arange(levels) / levels
    x = np.concatenate([rng.random(5000), edges, [1.0], np.arange(256) / 255])
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        expected = np.digitize(xd, edges) - 1
        expected = np.minimum(expected, levels - 1)  # digitize puts 1.0 at `levels` only via the clip
        np.testing.assert_array_equal(data.quantize(xd, levels), expected)


def test_quantize_keeps_shape():
    x = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    labels = data.quantize(x, 16)
    assert labels.shape == x.shape and labels.dtype == np.uint8
    assert labels.min() >= 0 and labels.max() <= 15


@pytest.mark.parametrize("bad", [[-0.1, 0.5], [0.5, 1.01], [0.2, np.nan]])
def test_quantize_rejects_values_outside_unit_range(bad):
    with pytest.raises(ValueError, match=r"expected values in \[0, 1\].*min .* max"):
        data.quantize(np.array(bad), 4)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool])
@pytest.mark.parametrize("levels", [2, 5, 256])
def test_quantize_takes_integer_and_bool_arrays_of_zeros_and_ones(dtype, levels):
    x = np.array([[0, 1, 1], [0, 0, 1]]).astype(dtype)
    labels = data.quantize(x, levels)
    assert labels.dtype == np.uint8 and labels.shape == (2, 3)
    np.testing.assert_array_equal(labels, [[0, levels - 1, levels - 1], [0, 0, levels - 1]])


@pytest.mark.parametrize("dtype,most", [(np.float32, 5.5), (np.uint8, 9.5), (bool, 9.5)])
def test_quantize_memory_peak_per_value(dtype, most):
    # Float32 data is scaled in one float32 copy, floored in place (4 + 1 bytes per
    # value with the labels); integer and bool data go through float32, not float64
    # (4 + 4 + 1, where float64 would take 8 + 8 + 1, and a floor into a new array 4 more).
    import tracemalloc

    x = np.ones(1 << 20, dtype)
    tracemalloc.start()
    try:
        labels = data.quantize(x, 256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert labels.dtype == np.uint8 and labels.min() == 255
    assert peak < most * x.size, peak / x.size


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_quantize_refusal_names_quantize(dtype):
    with pytest.raises(ValueError, match=r"^quantize: expected values in \[0, 1\], got min 0(\.0)? and max 2"):
        data.quantize(np.array([0, 2], dtype), 4)


@pytest.mark.parametrize("levels", [1, 0, 257, 2.5, True, "4"])
def test_quantize_rejects_bad_levels(levels):
    with pytest.raises(ValueError, match="levels must be an integer from 2 to 256"):
        data.quantize(np.array([0.5]), levels)


# ---------------------------------------------------------------- labels_to_inputs


@pytest.mark.parametrize("levels", [2, 3, 4, 22, 255, 256])
def test_labels_to_inputs_spans_zero_to_one_and_round_trips(levels):
    labels = np.arange(levels, dtype=np.uint8)
    x = data.labels_to_inputs(labels, levels)
    assert x.dtype == np.float32
    assert x[0] == 0.0 and x[-1] == 1.0
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(x, labels / (levels - 1), rtol=1e-6)
    # Feeding the inputs back through quantize gives the labels again.
    np.testing.assert_array_equal(data.quantize(x, levels), labels)


def test_labels_to_inputs_dtype_and_array_module():
    calls = []

    class RecordingXp:
        """Stands in for cupy: the function must build its result through xp."""

        @staticmethod
        def asarray(a):
            calls.append(a)
            return np.asarray(a)

    x = data.labels_to_inputs([[0, 1], [2, 3]], 4, dtype=np.float64, xp=RecordingXp)
    assert calls, "labels_to_inputs did not go through xp.asarray"
    assert x.dtype == np.float64 and x.shape == (2, 2)
    np.testing.assert_array_equal(x, [[0, 1 / 3], [2 / 3, 1]])


def test_labels_to_inputs_rejects_bad_levels():
    with pytest.raises(ValueError, match="levels"):
        data.labels_to_inputs(np.array([0]), 1)


# ---------------------------------------------------------------- binarize


def test_binarize_threshold_matches_quantize_two_levels():
    x = np.concatenate([np.random.default_rng(1).random(10000), [0.0, 0.5, 1.0, np.nextafter(0.5, 0)]])
    b = data.binarize(x)
    assert b.dtype == np.uint8
    np.testing.assert_array_equal(b, data.quantize(x, 2))
    np.testing.assert_array_equal(data.binarize(np.array([0.0, np.nextafter(0.5, 0), 0.5, 1.0])), [0, 0, 1, 1])


def test_binarize_custom_threshold():
    np.testing.assert_array_equal(data.binarize(np.array([0.1, 0.2, 0.3]), threshold=0.2), [0, 1, 1])


def test_binarize_sampling_is_seeded():
    x = np.random.default_rng(2).random((50, 28, 28))
    a = data.binarize(x, rng=np.random.default_rng(7))
    b = data.binarize(x, rng=np.random.default_rng(7))
    c = data.binarize(x, rng=np.random.default_rng(8))
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_binarize_sampling_fraction_tracks_x():
    rng = np.random.default_rng(3)
    for p in (0.0, 0.1, 0.3, 0.5, 0.9, 1.0):
        ones = data.binarize(np.full(200_000, p), rng=rng).mean()
        assert abs(ones - p) < 0.005, (p, ones)
    # A ramp: each value is 1 about as often as its intensity.
    x = np.repeat(np.linspace(0, 1, 11), 20_000)
    ones = data.binarize(x, rng=rng).reshape(11, -1).mean(axis=1)
    np.testing.assert_allclose(ones, np.linspace(0, 1, 11), atol=0.015)


def test_binarize_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.binarize(np.array([1.5]))
    with pytest.raises(ValueError, match="Generator"):
        data.binarize(np.array([0.5]), rng=42)


@pytest.mark.parametrize("rng", [None, np.random.default_rng(0)])
def test_binarize_refusal_names_binarize(rng):
    with pytest.raises(ValueError, match=r"^binarize: expected values in \[0, 1\], got min -0\.5 and max 0\.5"):
        data.binarize(np.array([-0.5, 0.5]), rng=rng)


def test_binarize_sampling_never_turns_a_zero_on_even_at_a_draw_of_exactly_zero():
    # 1 with probability x: a value of 0 is 0 whatever the draw, also for a draw of 0.0.
    # A Mersenne Twister whose state is all zeros draws exactly 0.0 (and its first
    # 624 words are 0), so the comparison at the draw's lower end is seen.
    bits = np.random.MT19937()
    state = bits.state
    state["state"]["key"][:] = 0
    state["state"]["pos"] = 0
    bits.state = state
    assert np.random.Generator(bits).random(3).tolist() == [0.0, 0.0, 0.0]
    bits.state = state
    x = np.array([0.0, 1e-300, 0.5, 1.0])
    np.testing.assert_array_equal(data.binarize(x, rng=np.random.Generator(bits)), [0, 1, 1, 1])


# ---------------------------------------------------------------- the epoch order


def test_epoch_permutation_is_a_pure_function_of_seed_and_epoch():
    p = data.epoch_permutation(1000, seed=5, epoch=3)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    np.testing.assert_array_equal(p, data.epoch_permutation(1000, 5, 3))
    np.testing.assert_array_equal(p, np.random.default_rng([5, 3]).permutation(1000))
    assert (p != data.epoch_permutation(1000, 5, 4)).any()
    assert (p != data.epoch_permutation(1000, 6, 3)).any()


def test_epoch_permutation_rejects_negative():
    with pytest.raises(ValueError, match="non-negative"):
        data.epoch_permutation(10, -1, 0)
# ---------------------------------------------------------------- ImageSet and to_labels


def grey_set(n=3, seed=0, shape=(16, 16, 1)):
    images = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    images.reshape(-1)[:256] = np.arange(256)  # every 8-bit value appears
    return data.ImageSet(images, 255, "grey")


def test_imageset_checks_its_arrays_and_says_what_it_got():
    good = np.zeros((2, 4, 4, 1), np.uint8)
    with pytest.raises(ValueError, match=r"^src: expected images as an \(N, H, W, C\) uint8 .* got shape \(2, 4, 4, 1\) "
                                         r"dtype float32$"):
        data.ImageSet(good.astype(np.float32), 255, "src")
    with pytest.raises(ValueError, match=r"^src: expected images .* got shape \(4, 4, 1\) dtype uint8$"):
        data.ImageSet(good[0], 255, "src")
    with pytest.raises(ValueError, match=r"^src: expected images .* got list$"):
        data.ImageSet(good.tolist(), 255, "src")
    with pytest.raises(ValueError, match="src: max_value is 1 but the images hold values up to 7"):
        data.ImageSet(good + 7, 1, "src")
    with pytest.raises(ValueError, match=r"src: expected classes as \(2,\)"):
        data.ImageSet(good, 1, "src", classes=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"^src: expected classes as \(2,\) integers, one per image, got shape \(2,\) dtype float64$"):
        data.ImageSet(good, 1, "src", classes=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"^src: expected classes as \(2,\) integers, one per image, got shape None dtype list$"):
        data.ImageSet(good, 1, "src", classes=[1, 2])


@pytest.mark.parametrize("levels", [2, 4, 8, 16, 32, 64, 128, 256])
def test_to_labels_8bit_matches_exact_integer_bins(levels):
    imageset = grey_set()
    v = imageset.images.astype(np.int64)
    expected = np.minimum(v * levels // 255, levels - 1)  # floor(v / 255 * levels) in exact arithmetic
    labels = data.to_labels(imageset, levels)
    assert labels.dtype == np.uint8 and labels.shape == imageset.images.shape
    np.testing.assert_array_equal(labels, expected)


def test_to_labels_threshold_binarizes_at_half():
    imageset = grey_set()
    np.testing.assert_array_equal(data.to_labels(imageset, 2), imageset.images >= 128)


def test_to_labels_sample_is_seeded_and_chunking_does_not_change_it(monkeypatch):
    imageset = grey_set(n=10)
    whole = data.binarize(imageset.images.astype(np.float32) / 255, rng=np.random.default_rng(3))
    # Force many small chunks: the result must not depend on the chunk size.
    monkeypatch.setattr(data, "_CHUNK_VALUES", 300)
    chunked = data.to_labels(imageset, 2, binarize_mode="sample", seed=3)
    np.testing.assert_array_equal(chunked, whole)
    assert (chunked != data.to_labels(imageset, 2, binarize_mode="sample", seed=4)).any()
    assert (chunked != data.to_labels(imageset, 2)).any()


def test_to_labels_binary_data():
    images = random_binary(4)[..., None]
    imageset = data.ImageSet(images, 1, "bin")
    for mode in ("threshold", "sample"):
        labels = data.to_labels(imageset, 2, binarize_mode=mode)
        np.testing.assert_array_equal(labels, images)
        assert labels is not images
    np.testing.assert_array_equal(data.to_labels(imageset, 256), images * 255)


def test_to_labels_rejects_bad_mode_and_levels():
    with pytest.raises(ValueError, match="binarize_mode must be 'threshold' or 'sample', got 'random'"):
        data.to_labels(grey_set(), 2, binarize_mode="random")
    with pytest.raises(ValueError, match="levels"):
        data.to_labels(grey_set(), 300)

# ---------------------------------------------------------------- hold-out split


def test_split_holdout():
    imageset = data.ImageSet(random_grey(50)[..., None], 255, "src", classes=np.arange(50))
    train, valid = data.split_holdout(imageset, fraction=0.2, seed=1)
    assert len(train.images) == 40 and len(valid.images) == 10
    together = np.sort(np.concatenate([train.classes, valid.classes]))
    np.testing.assert_array_equal(together, np.arange(50))  # disjoint and complete
    np.testing.assert_array_equal(valid.images, imageset.images[valid.classes])  # classes follow images
    assert np.all(np.diff(train.classes) > 0) and np.all(np.diff(valid.classes) > 0)  # original order kept
    again = data.split_holdout(imageset, fraction=0.2, seed=1)[1]
    np.testing.assert_array_equal(again.classes, valid.classes)
    other = data.split_holdout(imageset, fraction=0.2, seed=2)[1]
    assert (other.classes != valid.classes).any()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_split_holdout_rejects_bad_fraction(fraction):
    imageset = data.ImageSet(random_grey(50)[..., None], 255, "src")
    with pytest.raises(ValueError, match="fraction"):
        data.split_holdout(imageset, fraction=fraction)


# ---------------------------------------------------------------- argument checks, defaults and sources


@pytest.mark.parametrize("name", ["n", "seed", "epoch"])
@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_epoch_permutation_refusal_names_the_argument(name, bad):
    args = {"n": 4, "seed": 0, "epoch": 0}
    args[name] = bad
    with pytest.raises(ValueError) as err:
        data.epoch_permutation(**args)
    assert str(err.value) == f"epoch_permutation: {name} must be a non-negative integer, got {bad!r}"


def test_epoch_permutation_takes_zero_and_numpy_integers():
    assert data.epoch_permutation(0, 0, 0).shape == (0,)
    np.testing.assert_array_equal(
        data.epoch_permutation(np.int64(6), np.uint8(2), np.int32(1)), data.epoch_permutation(6, 2, 1)
    )


@pytest.mark.parametrize("max_value", [0, 256, True, 2.5, "255", None])
def test_imageset_rejects_bad_max_value(max_value):
    with pytest.raises(ValueError, match=r"^src: expected max_value to be an integer from 1 to 255, got "):
        data.ImageSet(np.zeros((2, 4, 4, 1), np.uint8), max_value, "src")


@pytest.mark.parametrize("max_value", [1, 255, np.int64(7)])
def test_imageset_takes_max_value_from_1_to_255_and_empty_sets(max_value):
    assert data.ImageSet(np.full((2, 4, 4, 1), max_value, np.uint8), max_value, "src").max_value == max_value
    empty = data.ImageSet(np.zeros((0, 4, 4, 1), np.uint8), max_value, "src", classes=np.zeros(0, np.int64))
    assert len(empty.images) == 0


def test_subset_keeps_max_value_classes_and_takes_the_new_source():
    imageset = data.ImageSet(random_grey(6)[..., None], 255, "src", classes=np.arange(6) * 10)
    part = data.subset(imageset, np.array([4, 1]), "part of src")
    assert part.source == "part of src" and part.max_value == 255
    np.testing.assert_array_equal(part.images, imageset.images[[4, 1]])
    np.testing.assert_array_equal(part.classes, [40, 10])
    assert data.subset(data.ImageSet(imageset.images, 255, "src"), np.array([0]), "p").classes is None


def test_to_labels_sample_seed_defaults_to_zero():
    imageset = grey_set(n=2)
    default = data.to_labels(imageset, 2, binarize_mode="sample")
    np.testing.assert_array_equal(default, data.to_labels(imageset, 2, binarize_mode="sample", seed=0))
    assert (default != data.to_labels(imageset, 2, binarize_mode="sample", seed=1)).any()


@pytest.mark.parametrize("levels", [3, 4, 7])
def test_to_labels_binary_data_at_more_levels_uses_the_top_label_for_white(levels):
    images = random_binary(2)[..., None]
    labels = data.to_labels(data.ImageSet(images, 1, "bin"), levels)
    np.testing.assert_array_equal(labels, images * (levels - 1))


@pytest.mark.parametrize("mode", ["threshold", "sample"])
def test_to_labels_two_level_data_with_max_value_2_is_binarized(mode):
    # Values 0, 1, 2 of 2: only 0 is black for the threshold (1/2 >= 0.5); 2 is always white.
    images = np.array([0, 1, 2, 2] * 4, np.uint8).reshape(4, 2, 2, 1)
    labels = data.to_labels(data.ImageSet(images, 2, "tri"), 2, binarize_mode=mode)
    assert labels.max() <= 1
    assert (labels[images == 0] == 0).all() and (labels[images == 2] == 1).all()
    if mode == "threshold":
        np.testing.assert_array_equal(labels, images >= 1)


@pytest.mark.parametrize("levels", [51, 85, 153])
def test_to_labels_quantizes_float32_intensities(levels):
    # For these levels float32 and float64 disagree on a value at a bin edge (e.g. 155/255 at 51):
    # to_labels goes through float32, as documented.
    imageset = grey_set()
    expected = data.quantize(imageset.images.astype(np.float32) / np.float32(255), levels)
    assert (expected != data.quantize(imageset.images / 255, levels)).any()
    np.testing.assert_array_equal(data.to_labels(imageset, levels), expected)


@pytest.mark.parametrize("levels,mode", [(16, "threshold"), (2, "threshold"), (2, "sample")])
@pytest.mark.parametrize("shape,chunk_values,sizes", [
    ((10, 4, 4, 2), 100, [3, 3, 3, 1]),  # 32 values an image: 3 images a chunk
    ((5, 8, 8, 1), 50, [1, 1, 1, 1, 1]),  # an image larger than a chunk: one at a time
    ((8, 1, 1, 1), 4, [4, 4]),  # one value an image
    ((3, 2, 3, 3), 1 << 22, [3]),  # everything in one chunk
])
def test_to_labels_converts_chunks_of_float32_no_larger_than_needed(monkeypatch, levels, mode, shape, chunk_values, sizes):
    images = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    imageset = data.ImageSet(images, 255, "grey")
    whole = data.to_labels(imageset, levels, binarize_mode=mode, seed=5)
    seen = []

    def spy(real):
        def wrapped(x, *args, **kwargs):
            seen.append((x.shape, x.dtype))
            return real(x, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(data, "quantize", spy(data.quantize))
    monkeypatch.setattr(data, "binarize", spy(data.binarize))
    monkeypatch.setattr(data, "_CHUNK_VALUES", chunk_values)
    chunked = data.to_labels(imageset, levels, binarize_mode=mode, seed=5)
    np.testing.assert_array_equal(chunked, whole)
    assert [s[0] for s, _ in seen] == sizes
    assert all(s[1:] == shape[1:] and dtype == np.float32 for s, dtype in seen)


def test_split_holdout_defaults_are_a_tenth_and_seed_zero():
    imageset = data.ImageSet(random_grey(30)[..., None], 255, "src", classes=np.arange(30))
    train, valid = data.split_holdout(imageset)
    assert len(valid.classes) == 3 and len(train.classes) == 27
    np.testing.assert_array_equal(valid.classes, data.split_holdout(imageset, fraction=0.1, seed=0)[1].classes)
    assert (valid.classes != data.split_holdout(imageset, fraction=0.1, seed=1)[1].classes).any()


def test_split_holdout_parts_name_their_source_and_seed():
    imageset = data.ImageSet(random_grey(10)[..., None], 255, "digits.amat")
    train, valid = data.split_holdout(imageset, fraction=0.3, seed=7)
    assert train.source == "digits.amat (hold-out train part, seed 7)"
    assert valid.source == "digits.amat (hold-out valid part, seed 7)"
    assert train.max_value == valid.max_value == 255


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, 1.5, 2.0, -0.1])
def test_split_holdout_fraction_refusal_is_about_the_range(fraction):
    imageset = data.ImageSet(random_grey(50)[..., None], 255, "src")
    with pytest.raises(ValueError) as err:
        data.split_holdout(imageset, fraction=fraction)
    assert str(err.value) == f"split_holdout: fraction must be between 0 and 1 (exclusive), got {fraction!r}"


@pytest.mark.parametrize("fraction,n_valid", [(0.1, 1), (0.06, 1), (0.9, 9), (0.94, 9), (0.5, 5)])
def test_split_holdout_takes_one_to_n_minus_one_images(fraction, n_valid):
    imageset = data.ImageSet(random_grey(10)[..., None], 255, "src", classes=np.arange(10))
    train, valid = data.split_holdout(imageset, fraction=fraction)
    assert len(valid.classes) == n_valid and len(train.classes) == 10 - n_valid


@pytest.mark.parametrize("fraction,n_valid", [(0.04, 0), (0.96, 10)])
def test_split_holdout_refuses_an_empty_side(fraction, n_valid):
    imageset = data.ImageSet(random_grey(10)[..., None], 255, "src")
    with pytest.raises(ValueError) as err:
        data.split_holdout(imageset, fraction=fraction)
    assert str(err.value) == (
        f"src: a hold-out fraction of {fraction} of 10 images leaves {n_valid} for validation "
        f"and {10 - n_valid} for training; expected at least one in each"
    )
