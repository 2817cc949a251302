"""Dropout (``layers.Dropout``, ``train --dropout``): what it drops, that only
training sees it, and that a run with it stays exact across threads and resumes.

Its gradient checks (the op, a gated layer and a whole gated model with dropout
on) are in ``minipixel.gradcheck.cases()``, run by test_gradcheck.py.
"""
import numpy as np
import pytest

from minipixel import threads as threads_module
from minipixel.checkpoint import read_checkpoint
from minipixel.layers import Dropout, set_dropout
from minipixel.model import PixelCNNConfig, build_model
from minipixel.optim import Adam
from minipixel.train import TrainSettings, dropout_keys, train, train_step
from minipixel import evaluate as evaluate_module

from train_helpers import labelled_npz, resume_is_exact, run, settings


def keyed(rate, keys):
    layer = Dropout()
    layer.rate, layer.keys = rate, np.asarray(keys)
    return layer


def test_dropout_zeroes_units_at_its_rate_and_scales_the_rest():
    x = np.ones((3, 20, 20, 25))
    y = keyed(0.3, dropout_keys(0, 7, range(3))).forward(x)
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    for b in range(3):  # 10,000 units an image: the share dropped is 0.3 within 0.015 (3.3 sigma)
        assert abs((y[b] == 0).mean() - 0.3) < 0.015
    assert not np.array_equal(y[0], y[1])  # each image its own mask


def test_the_masks_are_the_documented_draws_so_a_later_version_resumes_a_run_exactly():
    # A run resumed by a later minipixel must draw the masks it would have drawn: the
    # mask of image b in dropout layer k is default_rng([*keys[b], k]).random(float32) >= rate.
    x = np.ones((3, 4, 5, 6), dtype=np.float32)
    keys = dropout_keys(2, 40, range(10, 13))
    layer = keyed(0.25, keys)
    layer.index = 4
    y = layer.forward(x)
    assert y.dtype == np.float32
    for b, key in enumerate(keys):
        draws = np.random.default_rng([*key.tolist(), 4]).random((4, 5, 6), dtype=np.float32)
        np.testing.assert_array_equal(y[b], np.where(draws >= 0.25, np.float32(1 / 0.75), 0))
    assert np.array_equal(layer.backward(x), y)  # dx = dy * keep / (1 - rate)


def test_an_images_mask_depends_on_its_key_and_the_layer_alone():
    x = np.random.default_rng(0).standard_normal((4, 5, 5, 6))
    keys = dropout_keys(3, 11, range(4))
    whole = keyed(0.5, keys).forward(x)
    # The same images cut into parts (threads, ranks): the same masks.
    assert np.array_equal(keyed(0.5, keys[2:]).forward(x[2:]), whole[2:])
    # Another step, another seed, another layer: other masks.
    assert not np.array_equal(keyed(0.5, dropout_keys(3, 12, range(4))).forward(x), whole)
    assert not np.array_equal(keyed(0.5, dropout_keys(4, 11, range(4))).forward(x), whole)
    other_layer = keyed(0.5, keys)
    other_layer.index = 1
    assert not np.array_equal(other_layer.forward(x), whole)


def test_dropout_is_the_identity_outside_a_training_step():
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 4))
    keys = dropout_keys(0, 0, range(2))
    assert Dropout().backward(x) is x  # nothing dropped yet
    assert Dropout().forward(x) is x  # no rate, no keys
    assert keyed(0.0, keys).forward(x) is x
    layer = keyed(0.5, keys)
    with layer.inference():
        assert layer.forward(x) is x
    assert layer.forward(x) is not x  # training again
    v = x[:, 1, 1]
    assert layer.forward_at(v, 1, 1, 0) is v  # the sampler's one-position forward: never dropped
    with pytest.raises(ValueError, match="expected a key for each of the 2 images, got 3 keys"):
        keyed(0.5, dropout_keys(0, 0, range(3))).forward(x)


def gated(filters=6, blocks=2, seed=0):
    cfg = PixelCNNConfig(height=6, width=6, channels=1, levels=2, filters=filters, blocks=blocks, arch="gated")
    return build_model(cfg, seed=seed)


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (n, 6, 6, 1))
    return labels.astype(np.float32), labels


def test_set_dropout_numbers_the_layers_and_switches_them_off():
    model = gated(blocks=2)
    drops = [layer for layer in model.layers() if isinstance(layer, Dropout)]
    assert len(drops) == 3  # one a gated layer
    keys = dropout_keys(0, 0, range(4))
    set_dropout(model, 0.2, keys)
    assert [d.index for d in drops] == [0, 1, 2] and all(d.rate == 0.2 and d.keys is keys for d in drops)
    set_dropout(model)
    assert all(d.rate == 0 and d.keys is None for d in drops)


@pytest.fixture
def two_threads():
    threads_module.set_threads(2)
    yield
    threads_module.set_threads(None)


def step_loss(model, dropout, threads=None):
    threads_module.set_threads(threads)
    inputs, labels = batch()
    return train_step(model, Adam(model.parameters(), lr=1e-3), inputs, labels, dropout=dropout)


def test_a_step_with_dropout_is_the_same_on_one_thread_or_two(two_threads):
    dropout = (0.3, dropout_keys(5, 9, range(8)))
    one, two = gated(), gated()
    loss_one, loss_two = step_loss(one, dropout, threads=1), step_loss(two, dropout, threads=2)
    assert len(threads_module.replicas(two, 8)) == 2  # the batch really was cut in two
    assert loss_one == pytest.approx(loss_two, rel=1e-6)
    for name, p in one.parameters().items():
        np.testing.assert_allclose(p, two.parameters()[name], rtol=1e-5, atol=1e-7, err_msg=name)
    # and dropout did something: without it the same step has another loss
    assert abs(step_loss(gated(), None, threads=2) - loss_two) > 1e-3


def test_after_a_step_with_dropout_the_model_evaluates_whole(two_threads):
    model = gated()
    step_loss(model, (0.5, dropout_keys(0, 0, range(8))), threads=2)
    inputs, labels = batch(seed=1)
    for m in threads_module.replicas(model, 8):
        assert all(d.keys is None for d in m.layers() if isinstance(d, Dropout))
    # a forward that keeps its caches (as the gradient checks do) equals the inference one
    np.testing.assert_array_equal(model.forward(inputs), evaluate_module.forward(model, inputs))


def test_a_run_with_dropout_resumes_exactly(tmp_path):
    data = labelled_npz(tmp_path / "bars.npz", n=64)
    s = lambda steps, **kw: settings(data, steps=steps, arch="gated", filters=6, **{"dropout": 0.2, **kw})
    straight, _, _ = resume_is_exact(s, tmp_path)
    assert run(s(12, dropout=0.0), tmp_path / "c") != straight  # the dropout run is another run


def test_dropout_can_be_switched_on_at_a_resume_and_only_in_gated_models(tmp_path):
    data = labelled_npz(tmp_path / "bars.npz", n=64)
    folder = tmp_path / "run"
    run(settings(data, steps=4, arch="gated", filters=6), folder)
    said = []
    train(settings(data, steps=8, arch="gated", filters=6, dropout=0.25), resume=folder, progress=False,
          log=said.append)
    assert "dropout 0.25 from step 5 on (was 0)" in said
    assert read_checkpoint(folder)[3]["settings"]["dropout"] == 0.25
    with pytest.raises(ValueError, match="dropout: only the gated architecture has dropout layers"):
        TrainSettings(arch="pixelcnn", dropout=0.1).validate()
    with pytest.raises(ValueError, match=r"dropout: expected a number from 0 to 0.95, got 1.0"):
        TrainSettings(arch="gated", dropout=1.0).validate()


def test_each_step_of_a_run_gives_its_images_keys_of_the_seed_the_step_and_their_place(tmp_path, monkeypatch):
    data = labelled_npz(tmp_path / "bars.npz", n=40)
    given = []
    real = train_step

    def recording(model, optimizer, inputs, labels, classes=None, ranks=None, batch=None, dropout=None):
        given.append(dropout)
        return real(model, optimizer, inputs, labels, classes, ranks, batch, dropout)

    monkeypatch.setattr("minipixel.train.train_step", recording)
    run(settings(data, steps=3, batch=16, arch="gated", filters=6, dropout=0.4, seed=7), tmp_path / "run")
    sizes = [16, 16, 4]  # 36 training images (10% of 40 held out): the last batch of the epoch is smaller
    assert [rate for rate, _ in given] == [0.4] * 3
    for step, ((_, keys), size) in enumerate(zip(given, sizes)):
        assert keys.tolist() == [[7, step, b] for b in range(size)]
    given.clear()
    run(settings(data, steps=2, arch="gated", filters=6), tmp_path / "off")
    assert given == [None, None]


def test_a_step_with_dropout_on_each_device_is_the_cpus(device):
    # The masks are drawn on the host and copied to the device once a layer and step
    # (an explicit copy: the CuPy stand-in refuses implicit ones).
    from minipixel.backend import to_numpy

    dropout = (0.3, dropout_keys(1, 2, range(4)))
    inputs, labels = batch(n=4)
    cfg = PixelCNNConfig(height=6, width=6, channels=1, levels=2, filters=6, blocks=2, arch="gated")
    losses, grads = [], []
    for name in ("cpu", device):
        model = build_model(cfg, seed=0, dtype="float64", device=name)
        xp = model.xp
        losses.append(train_step(model, Adam(model.parameters(), lr=1e-3), xp.asarray(inputs, dtype="float64"),
                                 xp.asarray(labels), dropout=dropout))
        grads.append({k: to_numpy(g) for k, g in model.gradients().items()})
    assert losses[1] == pytest.approx(losses[0], rel=1e-12)
    for k, g in grads[0].items():
        np.testing.assert_allclose(grads[1][k], g, rtol=1e-9, atol=1e-12, err_msg=k)
