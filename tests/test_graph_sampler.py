"""The graph sampler (``sampling.sample_graph``) and the stand-in's capture mode.

On the CuPy stand-in (``testing.strict``) a capture records the ops and refuses
what a CUDA graph cannot hold; a replay runs the recorded ops again. The graph
sampler must give the cached sampler's images, image for image, from the same
seed, for both models, grey and colour, conditional, with known rows; and a
sampler that breaks the rules (a copy to the host inside the step, a row baked
in at the capture) must fail here.
"""
import contextlib
import re
import types

import numpy as np
import pytest

from minipixel import backend, canvas as canvas_module
from minipixel.model import PixelCNNConfig, build_model
from minipixel.sampling import sample
from minipixel.testing import strict
from minipixel.testing.strict import CaptureError


@pytest.fixture(autouse=True)
def strict_device():
    backend.register_device("strict", strict)


def model_for(arch, channels, classes=0, size=(5, 4), kernel=3, device="strict", dtype="float32"):
    cfg = PixelCNNConfig(height=size[0], width=size[1], channels=channels, levels=4, filters=6, blocks=2,
                         input_kernel=kernel, arch=arch, classes=classes)
    model = build_model(cfg, seed=3, dtype=dtype, device=device)
    rng = np.random.default_rng(5)
    for p in model.parameters().values():  # biases and class biases too: nothing left at zero
        p += model.xp.asarray((0.3 * rng.standard_normal(p.shape)).astype(p.dtype)) * (p != 0 if p.ndim == 4 else 1)
    return model


KINDS = {
    "pixelcnn grey": dict(arch="pixelcnn", channels=1),
    "pixelcnn rgb, 7x7 input": dict(arch="pixelcnn", channels=3, kernel=7),
    "gated grey": dict(arch="gated", channels=1),
    "gated rgb": dict(arch="gated", channels=3),
    "gated rgb, classes": dict(arch="gated", channels=3, classes=3),
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_graph_sampler_draws_the_cached_samplers_images(kind):
    model = model_for(**KINDS[kind])
    classes = [0, 2, 1, 2, 0] if model.config.classes else None
    graph = sample(model, 5, seed=7, method="graph", batch_size=3, classes=classes)
    cached = sample(model, 5, seed=7, method="cached", batch_size=3, classes=classes)
    np.testing.assert_array_equal(graph, cached)
    assert len(np.unique(graph)) == 4  # every level drawn somewhere: the images are not trivial
    # And the CPU's cached sampler, on NumPy: the same arithmetic, the same draws.
    cpu = model_for(**KINDS[kind], device="cpu")
    np.testing.assert_array_equal(graph, sample(cpu, 5, seed=7, method="cached", batch_size=3, classes=classes))


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_known_rows_and_sizes_unlike_the_training_size(arch):
    model = model_for(arch, channels=3, kernel=7 if arch == "pixelcnn" else 3)
    known = np.random.default_rng(1).integers(0, 4, (4, 6, 3, 3), dtype=np.uint8)
    for rows in (1, 2, 5):
        kwargs = dict(seed=2, known=known, known_rows=rows, height=6, width=3)
        graph = sample(model, 4, method="graph", **kwargs)
        np.testing.assert_array_equal(graph, sample(model, 4, method="cached", **kwargs))
        np.testing.assert_array_equal(graph[:, :rows], known[:, :rows])
    for height, width in ((1, 4), (2, 1), (3, 2)):  # one row: nothing to replay; narrower than the 7x7 kernel
        kwargs = dict(seed=4, height=height, width=width)
        np.testing.assert_array_equal(sample(model, 2, method="graph", **kwargs),
                                      sample(model, 2, method="cached", **kwargs))


def test_one_capture_per_batch_and_one_launch_per_row():
    model = model_for("gated", channels=3)
    H = model.config.height
    strict.counts.clear()
    sample(model, 4, seed=0, method="graph", batch_size=4)
    graph_launches = strict.counts["graph_launch"]
    eager = strict.launches() - graph_launches  # the first row and the copies around each row
    strict.counts.clear()
    sample(model, 4, seed=0, method="cached", batch_size=4)
    assert graph_launches == H - 1  # rows 1 .. H - 1, each one replay
    assert eager < strict.launches() / (H - 2)  # the rest: about one row of the cached sampler's launches


def test_graph_temperatures_and_float64():
    model = model_for("pixelcnn", channels=3, dtype="float64")
    for temperature in (0, 0.5, 2.0):
        np.testing.assert_array_equal(sample(model, 3, seed=1, method="graph", temperature=temperature),
                                      sample(model, 3, seed=1, method="cached", temperature=temperature))


def test_the_graph_sampler_needs_a_device_that_captures():
    cpu = model_for("pixelcnn", channels=1, device="cpu")
    with pytest.raises(ValueError, match=r"needs device 'gpu', not 'cpu'; on the CPU use method 'cached'$"):
        sample(cpu, 2, method="graph")
    with pytest.raises(ValueError, match="snapshot .* graph sampler runs a row at a time"):
        sample(model_for("pixelcnn", channels=1), 2, method="graph", snapshot=lambda *a: None)


# --- broken on purpose: the rules the tests above rest on ---


def test_a_copy_to_the_host_inside_the_step_is_refused(monkeypatch):
    from minipixel import fused

    draw_into = fused.draw_into

    def peeking(logits, u, *args):
        float(u[0])  # a look at one number: on a GPU, a wait and a copy
        return draw_into(logits, u, *args)

    monkeypatch.setattr(fused, "draw_into", peeking)
    with pytest.raises(CaptureError, match="a wait for the device"):
        sample(model_for("pixelcnn", channels=1), 2, method="graph")


def test_a_row_baked_in_at_the_capture_gives_other_images(monkeypatch):
    """Maps that keep every row: the captured step reads and writes the row it was
    captured at, at every replay. The images differ: the first test catches it."""

    @contextlib.contextmanager
    def whole_maps():
        yield canvas_module.RollingMaps()  # advances nothing; the canvases are whole

    model = model_for("gated", channels=1)
    cached = sample(model, 4, seed=0, method="cached")
    monkeypatch.setattr("minipixel.sampling.rolling_maps", whole_maps)
    assert not np.array_equal(sample(model, 4, seed=0, method="graph"), cached)


# --- the stand-in's capture mode ---


def test_capture_records_without_running_and_launch_runs_again():
    a, b = strict.asarray(np.arange(3.0)), strict.asarray(np.ones(3))
    out = strict.zeros(3)
    with strict.capture() as graph:
        strict.add(a, b, out=out)
        out *= 2
        out[0] = a[2]  # a copy between device arrays
        row = out[1:]  # a view: made at once
    np.testing.assert_array_equal(out.get(), [0, 0, 0])  # recorded, not run
    graph.launch()
    np.testing.assert_array_equal(out.get(), [2, 4, 6])
    a[...] = 10  # the graph reads the arrays as they are at each launch
    graph.launch()
    np.testing.assert_array_equal(out.get(), [10, 22, 22])
    np.testing.assert_array_equal(row.get(), [22, 22])


@pytest.mark.parametrize("what, step", [
    ("a BLAS product", lambda a, out: strict.matmul(a, a, out=out)),
    ("a BLAS product", lambda a, out: a @ a),
    ("a random draw", lambda a, out: strict.random.random(3)),
    ("a copy from the host", lambda a, out: strict.asarray(np.ones(3))),
    ("a copy to the host", lambda a, out: a.get()),
    ("a wait for the device", lambda a, out: float(a[0, 0])),
    ("a wait for the device", lambda a, out: bool(a[1, 1])),
    ("a wait for the device", lambda a, out: a[2, 2].item()),
    ("an allocation", lambda a, out: a + 1),
    ("an allocation", lambda a, out: strict.zeros(3)),
    ("an allocation", lambda a, out: a[[0, 1]]),
    ("an allocation", lambda a, out: a.T.reshape(-1)),
])
def test_capture_refuses_what_a_graph_cannot_hold(what, step):
    a, out = strict.asarray(np.eye(3)), strict.zeros((3, 3))
    with pytest.raises(CaptureError, match=f"^{what}"), strict.capture():
        step(a, out)
    step(a, out)  # outside a capture: allowed


def test_capture_does_not_nest_and_ends_on_an_error():
    with pytest.raises(CaptureError, match="already capturing"), strict.capture(), strict.capture():
        pass
    with pytest.raises(ZeroDivisionError), strict.capture():
        1 / 0
    assert (strict.asarray(np.ones(2)) + 1).get().tolist() == [2, 2]  # not capturing any more
    with pytest.raises(ValueError, match="graph capture needs a GPU"):
        backend.capture(np)


def test_a_rolling_canvas_keeps_its_last_rows():
    with canvas_module.rolling_maps() as maps:
        c = canvas_module.Canvas(1, 6, 2, 1, 3, np.float64, np)  # pad 1: keeps 3 rows
    whole = canvas_module.Canvas(1, 6, 2, 1, 3, np.float64, np)
    assert maps.canvases == [c] and c.data.shape == (1, 3, 4, 1) and whole.data.shape == (1, 7, 4, 1)
    for i in range(4):
        if i:
            maps.advance()
        for written in range(3):  # none of row i yet, its first column, both
            if written:
                for x in (c, whole):
                    x.write(i, written - 1, np.full((1, 1), 10.0 * i + written))
            # the rows it keeps (i - 2 .. i, zero above the image and where row i is not written yet)
            # are the whole map's
            for r in range(i - 2, i + 1):
                np.testing.assert_array_equal(c.data[:, c.row(r)], whole.data[:, whole.row(r)])
    for outside in (0, 4):  # a row above the ones it keeps, and the next row, not begun
        with pytest.raises(IndexError, match=rf"at row 3 keeps rows 1 \.\. 3, not row {outside}$"):
            c.row(outside)
    with pytest.raises(ValueError, match=r"^Canvas\.image needs the whole map; a rolling canvas keeps only"):
        c.image()
    with pytest.raises(ValueError, match=r"^Canvas\.write_many needs the whole map"):
        c.write_many(None, None, None)


def test_the_graph_sampler_counts_its_rows_as_the_cached_one(capsys):
    model = model_for("gated", channels=1)
    shown = {}
    for method in ("graph", "cached"):
        sample(model, 3, seed=0, method=method, progress=True)
        shown[method] = re.findall(r"(\d+)/(\d+) \[", capsys.readouterr().err)[-1]  # the bar's last count
    assert shown["graph"] == shown["cached"] == ("15", "15")  # 3 images x 5 rows


def test_graph_and_cached_refuse_float32_uniforms_alike():
    # with a known row first the graph's first draw is in the captured row: its buffer takes u's dtype
    from minipixel.sampling import sample_cached, sample_graph

    model = model_for("pixelcnn", channels=1)
    u = np.random.default_rng(0).random((2, 5, 4, 1)).astype(np.float32)
    for sampler in (sample_cached, sample_graph):
        for known in (None, np.zeros((2, 1, 4, 1), np.uint8)):
            with pytest.raises(TypeError, match="float64 u"):
                sampler(model, u, 1.0, types.SimpleNamespace(update=lambda n: None), known=known)
