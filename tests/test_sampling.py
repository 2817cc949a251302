"""Samplers: shape, range, determinism, and the cached sampler against the naive one."""
import re

import numpy as np
import pytest

from minipixel.model import PixelCNN, PixelCNNConfig
from minipixel.sampling import draw, sample


def small_model(channels, levels, block="half", dtype="float64", seed=0, device="cpu"):
    cfg = PixelCNNConfig(height=6, width=5, channels=channels, levels=levels, filters=12, blocks=3, block=block)
    model = PixelCNN(cfg, seed=seed, dtype=dtype, device=device)
    rng = np.random.default_rng(seed + 100)
    for p in model.parameters().values():
        # Sharper logits and non-zero biases, so samples depend on everything.
        noise = 0.3 * rng.standard_normal(p.shape) if p.ndim > 1 else 0.2 * rng.standard_normal(p.shape)
        p += model.xp.asarray(noise) * (p != 0) if p.ndim > 1 else model.xp.asarray(noise)
    return model


@pytest.mark.parametrize("channels,levels,block", [(1, 2, "half"), (1, 5, "keras"), (3, 4, "half"), (3, 256, "keras")])
def test_cached_sampler_matches_naive(channels, levels, block, device):
    model = small_model(channels, levels, block, device=device)
    naive = sample(model, 7, seed=3, method="naive")
    cached = sample(model, 7, seed=3, method="cached", batch_size=3)  # another batch size, same images
    assert np.array_equal(naive, cached)
    assert np.array_equal(naive, sample(model, 7, seed=3, method="wavefront", batch_size=4))
    assert len(np.unique(naive)) > 1  # not a degenerate all-zero image


def test_forward_at_logits_match_a_forward_pass():
    # Stronger than equal samples: the logits that the one-position forward
    # computes for each sub-pixel equal those of a full forward pass on the
    # finished image.
    model = small_model(3, 4)
    images = sample(model, 2, seed=1)
    x = images / 3.0
    full = model.forward(x)
    model.start_at(2, 6, 5)
    canvas = model.canvas(2)
    canvas.image()[...] = x  # every sub-pixel known (the sampler writes them one by one)
    for i in range(6):
        for j in range(5):
            for c in range(3):
                np.testing.assert_allclose(model.forward_at(canvas, i, j, c), full[:, i, j, c], rtol=1e-10, atol=1e-10)


def test_shape_range_and_determinism():
    model = small_model(3, 4, dtype="float32")
    a = sample(model, 5, seed=0)
    assert a.shape == (5, 6, 5, 3) and a.dtype == np.uint8
    assert a.min() >= 0 and a.max() <= 3
    assert np.array_equal(a, sample(model, 5, seed=0))
    assert not np.array_equal(a, sample(model, 5, seed=1))
    b = sample(model, 2, seed=0, height=3, width=4)
    assert b.shape == (2, 3, 4, 3)


def test_temperature():
    model = small_model(1, 5)
    greedy = sample(model, 3, seed=0, temperature=0)
    assert np.array_equal(greedy, sample(model, 3, seed=9, temperature=0))  # argmax ignores the seed
    assert np.array_equal(greedy[0], greedy[1])


def test_draw_follows_the_probabilities():
    logits = np.log(np.array([[0.2, 0.5, 0.3]] * 20000))
    u = np.random.default_rng(0).random(20000)
    counts = np.bincount(draw(logits, u), minlength=3) / 20000
    np.testing.assert_allclose(counts, [0.2, 0.5, 0.3], atol=0.01)
    # temperature < 1 sharpens towards the most likely value
    sharp = np.bincount(draw(logits, u, temperature=0.3), minlength=3) / 20000
    assert sharp[1] > 0.8


@pytest.mark.parametrize("temperature", [0.5, 1.7])
def test_samplers_agree_at_any_temperature_and_draw_from_the_scaled_softmax(temperature):
    # The two samplers against each other at temperatures other than 0 and 1, and the
    # first sub-pixel (whose logits are the model's bias alone) against the inverse CDF
    # of softmax(logits / T) worked out here by hand.
    model = small_model(1, 5)
    naive = sample(model, 40, seed=4, temperature=temperature, method="naive")
    cached = sample(model, 40, seed=4, temperature=temperature, method="cached", batch_size=16)
    assert np.array_equal(naive, cached)
    assert np.array_equal(naive, sample(model, 40, seed=4, temperature=temperature, method="wavefront"))
    logits = model.forward(np.zeros((1, 6, 5, 1)))[0, 0, 0, 0]
    p = np.exp(logits / temperature - (logits / temperature).max())
    cdf = np.cumsum(p / p.sum())
    u = np.random.default_rng(4).random((40, 6, 5, 1))[:, 0, 0, 0]  # the sampler's numbers (drawn up front)
    assert np.array_equal(naive[:, 0, 0, 0], (cdf[None, :] <= u[:, None]).sum(axis=1))


def test_draw_takes_the_first_level_whose_cumulative_probability_exceeds_u():
    # Probabilities 1/4, 1/4, 1/2 (exact in binary): the cumulative values 0.25, 0.5, 1.
    logits = np.log(np.array([[0.25, 0.25, 0.5]] * 6))
    u = np.array([0.0, 0.2499, 0.25, 0.4999, 0.5, 0.9999])
    assert draw(logits, u).tolist() == [0, 0, 1, 1, 2, 2]  # at u = 0.25 exactly: level 1, not 0
    # A level of probability 0 is never drawn, not even at u = 0.
    zero_first = np.array([[-1e4, 0.0, 0.0]])
    assert draw(zero_first, np.array([0.0])).tolist() == [1]


def test_bad_arguments():
    model = small_model(1, 2)
    with pytest.raises(ValueError, match="method must be one of"):
        sample(model, 2, method="fast")
    with pytest.raises(ValueError, match="positive int, got 0"):
        sample(model, 0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sample(model, 1, temperature=-1)


@pytest.mark.parametrize("channels", [1, 3])
def test_completion_keeps_the_known_rows_and_both_samplers_agree(channels):
    model = small_model(channels, 4)
    known = np.random.default_rng(0).integers(0, 4, (3, 6, 5, channels)).astype(np.uint8)
    naive = sample(model, 3, seed=2, method="naive", known=known, known_rows=2)
    cached = sample(model, 3, seed=2, method="cached", known=known, known_rows=2)
    assert np.array_equal(naive, cached)
    assert np.array_equal(naive, sample(model, 3, seed=2, method="wavefront", known=known, known_rows=2))
    assert np.array_equal(cached[:, :2], known[:, :2])
    assert not np.array_equal(cached[:, 2:], known[:, 2:])
    # the sampled rows depend on the kept ones
    other = known.copy()
    other[:, :2] = (other[:, :2] + 1) % 4
    assert not np.array_equal(sample(model, 3, seed=2, known=other, known_rows=2)[:, 2:], cached[:, 2:])
    assert np.array_equal(sample(model, 3, seed=2, known=known, known_rows=6), known)


def test_completion_bad_arguments():
    model = small_model(1, 2)
    with pytest.raises(ValueError, match=r"known: expected \(2, H, W, 1\) labels"):
        sample(model, 2, known=np.zeros((2, 6, 5, 3), np.uint8), known_rows=1)
    with pytest.raises(ValueError, match="labels must be below levels=2"):
        sample(model, 2, known=np.full((2, 6, 5, 1), 3, np.uint8), known_rows=1)
    with pytest.raises(ValueError, match="known_rows must be 0..6"):
        sample(model, 2, known=np.zeros((2, 6, 5, 1), np.uint8), known_rows=7)


def test_naive_sampler_stops_after_rows():
    # rows= (the benchmark's --naive-rows): the first rows drawn as in a full run, the rest left at 0.
    from tqdm import tqdm

    from minipixel.sampling import sample_naive

    model = small_model(1, 5)
    full = sample(model, 3, seed=5, method="naive")
    u = np.random.default_rng(5).random((3, 6, 5, 1))  # the numbers sample draws up front for seed 5
    part = sample_naive(model, u, 1.0, tqdm(disable=True), rows=2)
    assert part.shape == (3, 6, 5, 1) and part.dtype == np.uint8
    assert np.array_equal(part[:, :2], full[:, :2])
    assert not part[:, 2:].any() and full[:, 2:].any()


def completion_images(n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 4, (n, 6, 5, 1)).astype(np.uint8)


def test_completion_defaults(capsys):
    from minipixel.sampling import complete

    model = small_model(1, 4)
    images = completion_images()
    got = complete(model, images, 2)
    assert got.shape == (2, 4, 6, 5, 1) and got.dtype == np.uint8  # 4 completions per image
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    assert np.array_equal(got, complete(model, images, 2, per_image=4, seed=0, temperature=1.0, method="cached",
                                        progress=False))
    assert not np.array_equal(got, complete(model, images, 2, seed=1))
    assert not np.array_equal(got, complete(model, images, 2, temperature=2.0))


def test_completion_samples_with_its_seed_and_temperature():
    from minipixel.sampling import complete

    model = small_model(1, 4)
    images = completion_images()
    known = np.repeat(images, 3, axis=0)
    results = []
    for seed, temperature in [(5, 1.0), (5, 1.7), (6, 1.0)]:
        got = complete(model, images, 2, per_image=3, seed=seed, temperature=temperature)
        want = sample(model, 6, seed=seed, temperature=temperature, known=known, known_rows=2)
        assert np.array_equal(got.reshape(want.shape), want)
        assert np.array_equal(got[:, :, :2], np.repeat(images[:, None, :2], 3, axis=1))  # the kept rows
        results.append(got)
    assert not np.array_equal(results[0], results[1]) and not np.array_equal(results[0], results[2])


def test_completion_uses_the_method_and_shows_progress_when_asked(capsys):
    from minipixel.sampling import complete

    model = small_model(1, 4)
    images = completion_images()
    naive = complete(model, images, 3, per_image=2, seed=4, method="naive", progress=True)
    assert "sampling (naive)" in capsys.readouterr().err
    assert np.array_equal(naive, complete(model, images, 3, per_image=2, seed=4))  # the samplers agree
    complete(model, images, 3, per_image=2, seed=4, progress=True)
    assert "sampling (cached)" in capsys.readouterr().err


def test_completion_refuses_bad_images_keep_rows_and_per_image():
    import re

    from minipixel.sampling import complete

    model = small_model(1, 4)  # 6x5x1 images
    for shape in [(6, 5, 1), (2, 7, 5, 1), (2, 6, 4, 1), (2, 6, 5, 3)]:
        with pytest.raises(ValueError, match=r"^images: expected \(n, 6, 5, 1\) labels, .*got shape "
                                             + re.escape(str(shape))):
            complete(model, np.zeros(shape, np.uint8), 2)
    images = completion_images()
    for keep_rows in [0, 6, 7, -1, 2.0]:
        with pytest.raises(ValueError, match=rf"^keep_rows must be between 1 and 5, got {keep_rows!r}$"):
            complete(model, images, keep_rows)
    for keep_rows in [1, 5, np.int64(3)]:  # the first and the last row that leave something to sample
        got = complete(model, images, keep_rows, per_image=1)
        assert got.shape == (2, 1, 6, 5, 1)
        assert np.array_equal(got[:, 0, :keep_rows], images[:, :keep_rows])
    for per_image in [0, -2, 2.0]:
        with pytest.raises(ValueError, match=rf"^per_image must be a positive int, got {per_image!r}$"):
            complete(model, images, 2, per_image=per_image)


def tiny_model(levels=4):
    """A 4x4 grey model, 8 filters, 1 block: fast enough for many images or many calls."""
    from minipixel.model import build_model

    return build_model(PixelCNNConfig(height=4, width=4, levels=levels, filters=8, blocks=1), dtype="float64")


def test_sample_defaults_seed_0_quietly(capsys):
    model = small_model(1, 4)
    got = sample(model, 3)
    assert capsys.readouterr().err == ""  # no progress bar unless asked
    assert np.array_equal(got, sample(model, 3, seed=0))
    assert not np.array_equal(got, sample(model, 3, seed=1))
    sample(model, 3, progress=True)
    assert "sampling (cached)" in capsys.readouterr().err  # the bar writes to stderr when asked for


def test_a_long_sampling_states_its_estimate_for_the_size_it_samples(capsys, monkeypatch):
    # The estimate times one forward pass of a blank image of the size sampled (3x5
    # here, not the model's 4x4), and names the work before the first draw.
    model = tiny_model()
    shapes = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x, classes=None: shapes.append(x.shape) or forward(x, classes))
    monkeypatch.setattr("minipixel.options.LONG_SECONDS", 0)  # every estimate is long
    sample(model, 3, method="cached", height=3, width=5, progress=True)
    assert shapes and set(shapes) == {(1, 3, 5, 1)}  # the cached sampler itself runs no whole forward pass
    assert re.search(r"^sampling 3 images of 3x5 \(cached\): about \d+ s \(estimated from one forward pass\); "
                     r"Ctrl-C stops it$", capsys.readouterr().err, re.M)


def test_sample_runs_batches_of_64_by_default():
    # The batch size shows in which images each batch's looks cover: 65 images are two batches.
    model = tiny_model()
    starts = []
    got = sample(model, 65, snapshot=lambda start, labels, drawn: starts.append((start, len(labels))),
                 snapshot_every=16)
    assert sorted(set(starts)) == [(0, 64), (64, 1)]
    assert np.array_equal(got, sample(model, 65, batch_size=64))
    starts.clear()
    sample(model, 65, batch_size=65, snapshot=lambda start, labels, drawn: starts.append((start, len(labels))))
    assert set(starts) == {(0, 65)}


@pytest.mark.parametrize("shape", [(2, 6, 5), (3, 6, 5, 1), (1, 6, 5, 1), (2, 6, 5, 3), (2, 1, 6, 5, 1)])
def test_completion_refuses_known_of_the_wrong_shape(shape):
    # Each condition alone: the wrong number of dimensions, of images, of channels.
    model = small_model(1, 2)
    with pytest.raises(ValueError, match=r"^known: expected \(2, H, W, 1\) labels, got shape "
                                         + re.escape(str(shape)) + "$"):
        sample(model, 2, known=np.zeros(shape, np.uint8), known_rows=1)


def test_completion_refuses_known_of_another_size_than_asked():
    model = small_model(1, 2)
    known = np.zeros((2, 6, 5, 1), np.uint8)
    with pytest.raises(ValueError, match=r"^known: expected images of 3x5, got 6x5$"):
        sample(model, 2, height=3, width=5, known=known, known_rows=1)
    with pytest.raises(ValueError, match=r"^known: expected images of 6x4, got 6x5$"):
        sample(model, 2, height=6, width=4, known=known, known_rows=1)
    # the size of `known` by default, and any size when it agrees
    assert sample(model, 2, known=known, known_rows=1).shape == (2, 6, 5, 1)
    small = np.zeros((2, 3, 4, 1), np.uint8)
    assert sample(model, 2, height=3, width=4, known=small, known_rows=1).shape == (2, 3, 4, 1)
    assert sample(model, 2, known=small, known_rows=1).shape == (2, 3, 4, 1)


def test_completion_known_labels_up_to_levels_minus_1():
    model = small_model(1, 3)
    top = np.full((2, 6, 5, 1), 2, np.uint8)  # levels - 1: the largest label
    got = sample(model, 2, known=top, known_rows=2)
    assert np.array_equal(got[:, :2], top[:, :2])
    with pytest.raises(ValueError, match=r"^known: labels must be below levels=3, got 3$"):
        sample(model, 2, known=top + 1, known_rows=2)


@pytest.mark.parametrize("height,width", [(0, 5), (6, 0), (0, 0), (6, -2)])
def test_an_empty_image_size_is_refused(height, width):
    model = small_model(1, 2)
    with pytest.raises(ValueError, match=rf"^image size must be positive, got {height}x{width}$"):
        sample(model, 1, height=height, width=width)


@pytest.mark.parametrize("every", [-1, 2.5, 1.0, "3"])
def test_snapshot_every_must_be_a_positive_int(every):
    model = small_model(1, 2)
    with pytest.raises(ValueError, match=rf"^snapshot_every must be a positive int, got {re.escape(repr(every))}$"):
        sample(model, 1, snapshot=lambda *_: None, snapshot_every=every)


@pytest.mark.parametrize("method", ["cached", "naive"])
def test_snapshot_every_1_looks_after_every_sub_pixel_and_0_after_every_row(method):
    model = tiny_model()
    looks = []
    sample(model, 2, method=method, snapshot=lambda start, labels, drawn: looks.append(drawn), snapshot_every=1)
    assert looks == list(range(17))  # before the first draw, then after each of the 16 sub-pixels
    looks.clear()
    sample(model, 2, method=method, snapshot=lambda start, labels, drawn: looks.append(drawn),
           snapshot_every=np.int64(1))
    assert looks == list(range(17))
    for every in (0, None):  # the default: one image row
        looks.clear()
        sample(model, 2, method=method, snapshot=lambda start, labels, drawn: looks.append(drawn),
               snapshot_every=every)
        assert looks == [0, 4, 8, 12, 16]


def test_sampling_checks_the_memory_first(monkeypatch):
    import minipixel.memory

    model = small_model(1, 2)
    calls = []
    real = minipixel.memory.check_memory
    monkeypatch.setattr(minipixel.memory, "check_memory", lambda needed, what: calls.append((needed, what))
                        or real(needed, what))
    sample(model, 3, height=4, width=5, batch_size=2)
    assert calls == [(minipixel.memory.sampling_bytes(model.config, 3, 2, 4, 5), "sampling 3 images of 4x5")]
    monkeypatch.setattr(minipixel.memory, "available_memory", lambda: 1000)
    with pytest.raises(MemoryError, match=r"^sampling 3 images of 4x5 needs about"):
        sample(model, 3, height=4, width=5)


@pytest.mark.parametrize("method", ["cached", "naive", "wavefront"])
def test_progress_bar_counts_the_rows_of_all_images(capsys, method):
    model = tiny_model()
    sample(model, 3, method=method, progress=True)
    err = capsys.readouterr().err
    assert f"sampling ({method}):   0%|          | 0/12 [00:00<?, ?row/s]" in err  # 3 images of 4 rows
    assert f"sampling ({method}): 100%|" in err and "| 12/12 [" in err and err.endswith("row/s]\n")


def test_the_wavefront_sampler_takes_images_narrower_than_its_lag_and_counts_their_rows(capsys):
    # One column, lag 4: three steps in four hold no position; each row ends at its first step.
    model = wide_model(7)
    got = sample(model, 3, method="wavefront", progress=True, width=1)
    assert "| 21/21 [" in capsys.readouterr().err  # 3 images of 7 rows
    assert np.array_equal(got, sample(model, 3, method="cached", width=1))
    assert np.array_equal(sample(model, 3, method="wavefront", width=3), sample(model, 3, method="cached", width=3))


def test_cached_sampling_is_cached_and_naive_is_naive(monkeypatch):
    # The default sampler never runs the whole network; the naive one runs it once per sub-pixel.
    model = tiny_model()
    forward, calls = model.forward, []
    monkeypatch.setattr(model, "forward", lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs))
    want = sample(model, 2, method="naive")
    assert len(calls) == 4 * 4 * 1
    calls.clear()
    assert np.array_equal(sample(model, 2), want)
    assert np.array_equal(sample(model, 2, method="cached"), want)
    assert calls == []


@pytest.mark.parametrize("method", ["cached", "naive"])
def test_each_image_is_sampled_with_its_own_class(method):
    from test_gated import gated_model

    model = gated_model(1, blocks=1, classes=3, levels=4)
    y = np.array([0, 2, 1, 2, 0])
    got = sample(model, 5, seed=3, method=method, classes=y, batch_size=2)
    assert np.array_equal(got, sample(model, 5, seed=3, method=method, classes=list(y)))  # one batch, the same
    other = sample(model, 5, seed=3, method=method, classes=[1, 2, 1, 2, 0], batch_size=2)
    assert not np.array_equal(other[0], got[0]) and np.array_equal(other[1:], got[1:])  # image 0's class only
    with pytest.raises(ValueError, match=r"^classes: expected one class per image, \(5,\) ints, got shape \(4,\)$"):
        sample(model, 5, classes=y[:4])


def test_draw_at_temperature_0_takes_each_row_s_most_likely_level():
    logits = np.array([[0.0, 2.0, 1.0], [3.0, -1.0, 0.5], [0.0, 0.0, 4.0]])
    assert draw(logits, np.array([0.99, 0.0, 0.5]), temperature=0).tolist() == [1, 0, 2]


def test_draw_scales_each_row_by_its_own_largest_logit():
    # Softmax is unchanged by adding a constant to a row, however far the rows lie apart:
    # a row far below the others is not lost to underflow.
    row = np.array([0.0, 1.0])  # probabilities 0.27, 0.73
    logits = np.stack([row, row - 1000.0, row + 1000.0])
    for u, level in [(0.1, 0), (0.5, 1)]:
        assert draw(logits, np.full(3, u)).tolist() == [level] * 3
        assert draw(logits, np.full(3, u), temperature=0.5).tolist() == [level] * 3


def test_draw_never_gives_a_level_past_the_last():
    # u is in [0, 1); at 1.0 itself (a float32 just below 1 rounds to it) the last level, not one more.
    logits = np.log(np.array([[0.25, 0.25, 0.5]] * 2))
    assert draw(logits, np.array([np.nextafter(1.0, 0), 1.0])).tolist() == [2, 2]


# The wavefront sampler: rows side by side, each wavefront_lag columns behind the one above.


def wide_model(input_kernel, channels=1, levels=3, dtype="float64"):
    """Wide images, so that several rows are in flight at once."""
    cfg = PixelCNNConfig(height=7, width=17, channels=channels, levels=levels, filters=12, blocks=3,
                         input_kernel=input_kernel)
    model = PixelCNN(cfg, seed=1, dtype=dtype)
    rng = np.random.default_rng(7)
    for p in model.parameters().values():
        p += 0.3 * rng.standard_normal(p.shape) * (p != 0) if p.ndim > 1 else 0.2 * rng.standard_normal(p.shape)
    return model


@pytest.mark.parametrize("input_kernel,channels", [(3, 1), (5, 3), (7, 1), (7, 3)])
def test_the_wavefront_sampler_draws_the_cached_sampler_s_images_with_several_rows_in_flight(input_kernel, channels):
    from minipixel.sampling import wavefront_lag

    model = wide_model(input_kernel, channels)
    lag = wavefront_lag(model)
    assert lag == 1 + max(input_kernel // 2, 1)  # the blocks' 3x3 convolutions look one column right
    assert 17 // lag >= 2  # rows in flight side by side
    want = sample(model, 5, seed=6, method="cached")
    assert np.array_equal(sample(model, 5, seed=6, method="wavefront"), want)
    assert len(np.unique(want)) == 3


@pytest.mark.parametrize("height,width,lag", [(7, 17, 4), (28, 28, 4), (5, 3, 2), (1, 6, 3), (6, 1, 2)])
def test_the_wavefront_order_holds_every_position_once_step_by_step(height, width, lag):
    from minipixel.sampling import wavefront_order

    rows, cols, bounds = wavefront_order(height, width, lag)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(i, j) for i in range(height) for j in range(width)]
    assert len(bounds) == width + lag * (height - 1) + 1 and bounds[0] == 0 and bounds[-1] == height * width
    for t in range(len(bounds) - 1):  # step t: row i at column t - lag * i, rows ascending
        r = rows[bounds[t] : bounds[t + 1]]
        want = [i for i in range(height) if 0 <= t - lag * i < width]
        assert r.tolist() == want and (cols[bounds[t] : bounds[t + 1]] == t - lag * r).all()


def test_a_wavefront_one_column_too_close_reads_positions_not_yet_drawn(monkeypatch):
    # The lag is the least that works: one less and row i reads a position of row
    # i - 1 (at the right edge of its 7x7 window) that is still zero: other images.
    import minipixel.sampling as sampling

    model = wide_model(7)
    want = sample(model, 5, seed=6, method="cached")
    monkeypatch.setattr(sampling, "wavefront_lag", lambda m: 3)
    assert not np.array_equal(sample(model, 5, seed=6, method="wavefront"), want)


def test_the_wavefront_sampler_in_float32_gives_the_cached_sampler_s_images():
    # In float32 the two sum in another order: a draw could flip only where a
    # probability lies within rounding of u; on these 8 images none does.
    model = wide_model(7, levels=2, dtype="float32")
    assert np.array_equal(sample(model, 8, seed=0, method="wavefront"), sample(model, 8, seed=0))


def test_the_wavefront_sampler_refuses_the_gated_model_and_snapshots():
    from test_gated import gated_model

    with pytest.raises(ValueError, match=r"^the wavefront sampler runs PixelCNN models \(arch pixelcnn\), not a "
                                         r"GatedPixelCNN: use method 'cached'$"):
        sample(gated_model(1, blocks=1), 2, method="wavefront")
    with pytest.raises(ValueError, match=r"^snapshot \(--animate\) needs method 'cached' or 'naive'"):
        sample(tiny_model(), 2, method="wavefront", snapshot=lambda start, labels, drawn: None)


def test_the_wavefront_sampler_at_another_size_than_the_model_s_and_without_classes():
    model = wide_model(5, channels=3)
    want = sample(model, 3, seed=1, height=9, width=12)
    assert np.array_equal(sample(model, 3, seed=1, height=9, width=12, method="wavefront"), want)
    assert np.array_equal(sample(model, 3, seed=1, height=5, width=21, method="wavefront"),
                          sample(model, 3, seed=1, height=5, width=21))
    with pytest.raises(ValueError, match="^classes: this model is not class-conditional"):
        sample(model, 3, method="wavefront", classes=[0, 1, 0])


def test_the_wavefront_sampler_keeps_known_rows_on_every_device(device):
    known = np.random.default_rng(0).integers(0, 3, (4, 7, 17, 3)).astype(np.uint8)
    want = sample(wide_model(5, channels=3), 4, seed=2, known=known, known_rows=3)
    model = wide_model(5, channels=3)
    if device != "cpu":
        model = PixelCNN(model.config, dtype="float64", device=device)
        model.load_parameters(wide_model(5, channels=3).parameters())
    got = sample(model, 4, seed=2, method="wavefront", known=known, known_rows=3)
    assert np.array_equal(got, want) and np.array_equal(got[:, :3], known[:, :3])
