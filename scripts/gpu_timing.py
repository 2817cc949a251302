"""Three measurements of scripts/gpu_check.py: minipixel against PyTorch on the same GPU
(``pytorch_check``), where a GPU training step's time goes (``layer_timings``), and the
graph sampler against the cached one (``graph_sampler``).

``pytorch_check`` builds the benchmark's reference model (128 filters, 5 blocks, the
keras widths, 28x28 binary) twice: in minipixel, and in PyTorch eager from
scripts/pytorch_reference.py. Both run in float32 with TF32 off (PyTorch's matmul and
cuDNN flags set off here, CuPy's off unless CUPY_TF32=1: the record says which), cuDNN
benchmark on. It times training steps (forward, loss, backward, Adam) at batches 16, 64
and 256, the forward pass at 64 and the naive sampler (one full forward pass per pixel)
on the first rows of a few images, the same work on both sides. The two sides take
turns, round after round (the first of a round alternates), after a warm-up each that
the figures leave out (cuDNN's benchmark search happens there); both devices are
synchronised before and after every timed run. Each figure is the median of the
rounds, with their range; ``speed_ratio_minipixel_over_pytorch`` is PyTorch's median
time over minipixel's: above 1 minipixel is the faster.

``layer_timings`` takes training steps at batch 64 with every layer's forward and
backward, and inside each masked convolution the im2col, the matrix products and the
col2im, the loss and the optimizer step wrapped in a pair of CUDA events
(``cupy.cuda.Event``). The wrappers are put on the objects here and taken off after:
the library runs untouched and pays nothing when nobody times it. An event pair
measures the GPU's timeline between its two records: the kernels' time, and where the
GPU waits for Python to launch the next kernel, that wait too. Each piece's figure is
its median over the steps; ``step_ms_untimed`` is the same step without the wrappers,
for their cost.

Off the GPU (``--device strict``, the CPU stand-in for CuPy) the same code runs at tiny
sizes, PyTorch on the CPU and the wall clock standing in for the events, so that the
tests run it; its figures mean nothing.
"""
import collections
import contextlib
import os
import statistics
import time
import types
from dataclasses import replace

# The sizes: on the GPU, about a minute for both checks on an H100; elsewhere tiny.
GPU_SIZES = dict(train_batches=(16, 64, 256), forward_batch=64, sample_images=16, sample_rows=7, rounds=5,
                 steps_per_run=3, layer_batch=64, layer_steps=5)
QUICK = dict(rounds=3, layer_steps=3)
STAND_IN_SIZES = dict(train_batches=(4,), forward_batch=4, sample_images=2, sample_rows=2, rounds=2, steps_per_run=1,
                      layer_batch=4, layer_steps=2)
RATIO = "speed_ratio_minipixel_over_pytorch"
# A layer's pieces, as layer_timings names them: its forward and backward, and inside a
# masked convolution the im2col, the products and (backward) the col2im of each.
PARTS = ("forward", "forward_im2col", "forward_matmul", "backward", "backward_im2col", "backward_matmul",
         "backward_col2im")


def sizes(device, quick=False):
    if device != "gpu":
        return dict(STAND_IN_SIZES)
    return {**GPU_SIZES, **(QUICK if quick else {})}


def reference_config(device):
    """The benchmark's reference model; off the GPU, a tiny one of the same shape (the tests' sizes)."""
    from minipixel import bench

    if device == "gpu":
        return bench.REFERENCE
    return replace(bench.REFERENCE, height=8, width=8, filters=8, blocks=1)


def median_ms(times):
    return round(statistics.median(times) * 1e3, 3)


def alternate(sides, rounds, sync, warmups=None):
    """Seconds of each run of each side ({name: fn}), the sides taking turns: after one
    warm-up run each (``warmups``' functions where given), ``rounds`` rounds, the side that
    goes first alternating, both devices synchronised before and after every timed run."""
    for name, fn in sides.items():
        (warmups or sides)[name]()
    names, times = list(sides), {name: [] for name in sides}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            sync()
            start = time.perf_counter()
            sides[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def compare(times, unit, per_run=1, images=None):
    """The figures of one measure, each named by its side: the median ``unit`` (ms per
    step or pass, or s) of a run's ``per_run`` steps or passes, and its range; with
    ``images`` (a step's or a pass's), images per second; and the speed ratio."""
    out = {}
    for side, runs in times.items():
        each = [t / per_run for t in runs]
        if unit.endswith("_ms"):
            out[f"{side}_{unit}"] = median_ms(each)
            out[f"{side}_{unit}_range"] = [round(min(each) * 1e3, 3), round(max(each) * 1e3, 3)]
        else:
            out[f"{side}_{unit}"] = round(statistics.median(each), 4)
            out[f"{side}_{unit}_range"] = [round(min(each), 4), round(max(each), 4)]
        if images:
            out[f"{side}_images_per_s"] = round(images / statistics.median(each), 1)
    out[RATIO] = round(statistics.median(times["pytorch"]) / statistics.median(times["minipixel"]), 3)
    return out


def torch_settings(torch, cuda):
    """Float32 without TF32 on PyTorch's side, cuDNN's benchmark on; the settings as read back."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    tf32 = os.environ.get("CUPY_TF32") == "1"
    settings = {"dtype": "float32 on both sides", "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                "torch_device": "cuda" if cuda else "cpu",
                "minipixel_tf32": "on (CUPY_TF32=1): not like for like" if tf32 else "off (CUPY_TF32 is not 1)"}
    # Read back, each on its own: a torch that has the newer fp32_precision settings may
    # refuse to read one of them, and the others are still worth having.
    for name in ("backends.cuda.matmul.allow_tf32", "backends.cudnn.allow_tf32", "backends.cudnn.benchmark",
                 "backends.cuda.matmul.fp32_precision", "backends.cudnn.conv.fp32_precision", "backends.cudnn.version"):
        try:
            value = torch
            for part in name.split("."):
                value = getattr(value, part)
            settings[f"torch.{name}"] = value() if callable(value) else value
        except Exception as err:  # absent from this torch, or refused: say so, and go on
            settings[f"torch.{name}"] = f"not read: {type(err).__name__}: {err}"
    return settings


def pytorch_check(record, save, device, quick=False):
    """Fill ``record`` (the check's own record in the report) with the comparison, one
    measure at a time, saving after each: a time limit or an error keeps the measures done."""
    try:
        import torch
    except Exception as err:  # not installed, or installed and broken (a CUDA library it cannot load)
        record.update(passed=True, skipped=f"torch with CUDA is not importable: {type(err).__name__}: {err}")
        return record
    cuda = device == "gpu"
    if cuda and not torch.cuda.is_available():
        why = f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU (torch.cuda.is_available() is False)"
        record.update(passed=True, skipped=f"torch with CUDA is not importable: {why}")
        return record
    try:
        return measure_both(record, save, torch, device, quick)
    finally:
        if cuda:  # hand back the blocks PyTorch keeps cached, for the gradient checks that come next
            torch.cuda.empty_cache()


def measure_both(record, save, torch, device, quick):
    """``pytorch_check``'s measures, into ``record``; the models and arrays go when it returns."""
    import numpy as np
    import pytorch_reference as reference
    from minipixel import evaluate
    from minipixel.backend import get_xp, synchronize, to_numpy
    from minipixel.bench import batch_of
    from minipixel.model import build_model
    from minipixel.optim import Adam
    from minipixel.sampling import sample_naive
    from minipixel.step import train_step

    size, cfg, cuda = sizes(device, quick), reference_config(device), device == "gpu"
    where = "cuda" if cuda else "cpu"
    xp = get_xp(device)
    record.update(settings=torch_settings(torch, cuda), model=f"the benchmark's reference: {cfg.to_json()}",
                  rounds=size["rounds"], steps_per_run=size["steps_per_run"],
                  ratio=f"{RATIO}: PyTorch's median time over minipixel's; above 1, minipixel is the faster")
    model = build_model(cfg, device=device)
    optimizer = Adam(model.parameters(), lr=1e-4, flat=model.packed)
    net, opt = reference.build(cfg.filters, cfg.blocks, where)

    def sync():
        synchronize(xp)
        if cuda:
            torch.cuda.synchronize()

    def same_batch(batch):
        """The same images on both sides: minipixel's (B, H, W, 1) channels-last, PyTorch's (B, 1, H, W)."""
        x, labels = batch_of(model, batch)
        theirs = torch.from_numpy(to_numpy(labels)[..., 0].astype("int64")).to(where)
        return x, labels, theirs[:, None].float(), theirs

    def times_steps(fn, steps):
        return lambda: [fn() for _ in range(steps)]

    steps = size["steps_per_run"]
    record["train"] = {}
    for batch in size["train_batches"]:
        x, labels, tx, tlabels = same_batch(batch)
        times = alternate({"minipixel": times_steps(lambda: train_step(model, optimizer, x, labels), steps),
                           "pytorch": times_steps(lambda: reference.train_step(net, opt, tx, tlabels), steps)},
                          size["rounds"], sync)
        record["train"][str(batch)] = compare(times, "step_ms", steps, batch)
        save()

    batch = size["forward_batch"]
    x, _, tx, _ = same_batch(batch)

    def torch_forward():
        with torch.no_grad():
            net(tx)

    times = alternate({"minipixel": times_steps(lambda: evaluate.forward(model, x), steps),
                       "pytorch": times_steps(torch_forward, steps)}, size["rounds"], sync)
    record["forward"] = {str(batch): compare(times, "forward_ms", steps, batch)}
    save()

    n, rows, H = size["sample_images"], size["sample_rows"], cfg.height
    u = np.random.default_rng(0).random((n, H, cfg.width, 1))
    tu = torch.from_numpy(u[..., 0]).to(where)
    bar = types.SimpleNamespace(update=lambda *args: None)

    def sampling(rows):
        return {"minipixel": lambda: sample_naive(model, u, 1.0, bar, rows=rows),
                "pytorch": lambda: reference.sample_naive(net, tu, rows=rows)}

    times = alternate(sampling(rows), size["rounds"], sync, warmups=sampling(1))
    record["naive_sampling"] = {"images": n, "rows": rows, "of_rows": H,
                                "note": f"the first {rows} of {H} rows of {n} images, one full forward pass per "
                                        f"pixel on both sides; whole images take about {H / rows:g} times as long",
                                **compare(times, "s")}
    record["passed"] = True
    return record


class WallClockEvent:
    """The stand-in's event: the wall clock when recorded (the stand-in runs each op as
    it comes, so its timeline is the wall clock)."""

    def record(self):
        self.time = time.perf_counter()

    def synchronize(self):
        pass


def wall_clock_ms(start, end):
    return (end.time - start.time) * 1e3


class Timer:
    """Pairs of events around pieces of a training step, read once the step is done (so
    timing adds no wait inside the step), summed per piece: a layer's products run up to
    three times a step."""

    def __init__(self, event, elapsed_ms):
        self.event, self.elapsed_ms = event, elapsed_ms
        self.marks, self.layers = [], []  # (piece, start, end) of this step; the layers running, innermost last

    @contextlib.contextmanager
    def region(self, piece):
        start = self.event()
        start.record()
        try:
            yield
        finally:
            end = self.event()
            end.record()
            self.marks.append((piece, start, end))

    def wrap(self, piece, fn, layer=None):
        def timed(*args, **kwargs):
            if layer is not None:
                self.layers.append(layer)
            try:
                with self.region(piece):
                    return fn(*args, **kwargs)
            finally:
                if layer is not None:
                    self.layers.pop()

        return timed

    def wrap_in_layer(self, part, fn):
        """``fn`` timed as ``(layer, phase + "_" + part)`` of the layer running it; untimed outside a layer."""
        def timed(*args, **kwargs):
            if not self.layers:
                return fn(*args, **kwargs)
            name, phase = self.layers[-1]
            with self.region((name, f"{phase}_{part}")):
                return fn(*args, **kwargs)

        return timed

    def read(self):
        """{piece: ms} of the step just taken; the marks are cleared for the next."""
        if self.marks:
            self.marks[-1][2].synchronize()
        out = collections.defaultdict(float)
        for piece, start, end in self.marks:
            out[piece] += self.elapsed_ms(start, end)
        self.marks = []
        return dict(out)


def named_layers(layer, prefix=""):
    for name, child in layer.children().items():
        yield prefix + name, child
        yield from named_layers(child, f"{prefix}{name}.")


@contextlib.contextmanager
def patches():
    """``patch(obj, name, value)``: setattr, undone when the block ends, whatever happens
    (an attribute the object did not have of its own, such as a method, is deleted again)."""
    done = []

    def patch(obj, name, value):
        done.append((obj, name, name in vars(obj), vars(obj).get(name)))
        setattr(obj, name, value)

    try:
        yield patch
    finally:
        for obj, name, had, value in reversed(done):
            if had:
                setattr(obj, name, value)
            else:
                delattr(obj, name)


def instrument(patch, model, optimizer, xp, timer):
    """Wrap the model's layers, the masked convolution's im2col, col2im and products, the
    loss and the optimizer in ``timer``'s events, with ``patch`` (which takes them off)."""
    from minipixel import conv, step

    for name, layer in [("model", model)] + list(named_layers(model)):
        for phase in ("forward", "backward"):
            patch(layer, phase, timer.wrap((name, phase), getattr(layer, phase), layer=(name, phase)))
    for part in ("im2col", "col2im"):  # the names conv.py calls them by
        patch(conv, part, timer.wrap_in_layer(part, getattr(conv, part)))
    patch(xp, "matmul", timer.wrap_in_layer("matmul", xp.matmul))
    patch(step, "softmax_cross_entropy", timer.wrap(("loss",), step.softmax_cross_entropy))
    patch(optimizer, "step", timer.wrap(("optimizer",), optimizer.step))
    patch(optimizer, "finite", timer.wrap(("optimizer_finite_check",), optimizer.finite))


def layer_timings(device, quick=False):
    """Per-layer forward and backward times of training steps, with the im2col, the
    products and the col2im inside each masked convolution, the loss and the optimizer."""
    from minipixel.backend import get_xp
    from minipixel.bench import batch_of
    from minipixel.conv import MaskedConv2d
    from minipixel.model import build_model
    from minipixel.optim import Adam
    from minipixel.step import train_step

    size, cfg, xp = sizes(device, quick), reference_config(device), get_xp(device)
    if device == "gpu":
        timer, clock = Timer(xp.cuda.Event, xp.cuda.get_elapsed_time), "CUDA events (cupy.cuda.Event)"
    else:
        timer, clock = Timer(WallClockEvent, wall_clock_ms), "the wall clock (the stand-in has no events)"
    model = build_model(cfg, device=device)
    optimizer = Adam(model.parameters(), lr=1e-4, flat=model.packed)
    x, labels = batch_of(model, size["layer_batch"])
    step = timer.wrap(("step",), lambda: train_step(model, optimizer, x, labels))

    def steps(n):
        """{piece: ms} of each of ``n`` steps, after a warm-up step (kernels compiled, buffers made)."""
        step()
        timer.read()
        taken = []
        for _ in range(n):
            step()
            taken.append(timer.read())
        return taken

    with patches() as patch:
        if hasattr(xp, "whole_batch"):  # the stand-in: the GPU's one chunk, so the products go through xp.matmul
            patch(xp, "whole_batch", True)
        untimed = steps(size["layer_steps"])
        with patches() as wrapping:
            instrument(wrapping, model, optimizer, xp, timer)
            taken = steps(size["layer_steps"])
    med = {piece: round(statistics.median(t.get(piece, 0.0) for t in taken), 3) for piece in taken[0]}
    layers = {name: {f"{part}_ms": med[name, part] for part in PARTS if (name, part) in med}
              for name, _ in named_layers(model)}  # in forward order
    parts = {"forward": med[("model", "forward")], "loss": med[("loss",)], "backward": med[("model", "backward")],
             "optimizer": med[("optimizer",)], "optimizer_finite_check": med[("optimizer_finite_check",)]}
    step_ms = med[("step",)]
    parts["rest"] = round(step_ms - sum(parts.values()), 3)
    convs = [name for name, layer in named_layers(model) if isinstance(layer, MaskedConv2d)]
    split = {part: round(sum(ms for name in convs for key, ms in layers[name].items() if key.endswith(f"_{part}_ms")),
                         3) for part in ("im2col", "matmul", "col2im")}
    total = sum(layers[name]["forward_ms"] + layers[name]["backward_ms"] for name in convs)
    split["rest"] = round(total - sum(split.values()), 3)
    return {"passed": True, "batch": size["layer_batch"], "steps": size["layer_steps"], "clock": clock,
            "model": f"the benchmark's reference: {cfg.to_json()}", "step_ms": step_ms,
            "step_ms_untimed": round(statistics.median(t[("step",)] for t in untimed), 3),
            "step_split_ms": parts, "convolutions_ms": round(total, 3), "convolution_split_ms": split,
            "layers": layers}


# The graph sampler's targets on an H100 or H200: seconds for 64 images.
GRAPH_TARGETS_S = {"reference": 0.1, "binarized-mnist": 0.3}


def graph_sampler(device, quick=False):
    """The graph sampler beside the cached one, taking turns: the same images (the
    record fails where they differ), and the seconds to sample 64 images of the
    reference model and of the shipped gated binarized-MNIST model, each against its
    target. Off the GPU, tiny models of the same kinds and 2 images."""
    import numpy as np

    from minipixel import pretrained
    from minipixel.backend import get_xp, synchronize
    from minipixel.checkpoint import load_model, read_checkpoint
    from minipixel.model import build_model
    from minipixel.sampling import sample

    xp, gpu = get_xp(device), device == "gpu"
    images, rounds = (64, 3 if quick else 5) if gpu else (2, 2)
    gated = pretrained.path("binarized-mnist")
    models = {"reference": build_model(reference_config(device), device=device),
              "binarized-mnist": load_model(gated, device=device)[0] if gpu else
              build_model(replace(read_checkpoint(gated)[0], height=8, width=8, filters=8, blocks=2), device=device)}
    out = {"passed": True, "images": images, "rounds": rounds, "models": {}}
    for name, model in models.items():
        runs = {method: (lambda method=method: sample(model, images, seed=0, method=method, batch_size=images))
                for method in ("cached", "graph")}
        drawn = {method: run() for method, run in runs.items()}  # also the warm-up
        differing = int((drawn["cached"] != drawn["graph"]).sum())
        times = alternate(runs, rounds, lambda: synchronize(xp), warmups={m: lambda: None for m in runs})
        record = {"model": model.config.to_json(), "sub_pixels_differing": differing}
        for method, runs_s in times.items():
            record[f"{method}_s"] = round(statistics.median(runs_s), 4)
            record[f"{method}_s_range"] = [round(min(runs_s), 4), round(max(runs_s), 4)]
        record["speedup_graph_over_cached"] = round(record["cached_s"] / record["graph_s"], 2)
        if gpu:
            record.update(target_s=GRAPH_TARGETS_S[name], target_met=record["graph_s"] <= GRAPH_TARGETS_S[name])
        out["models"][name] = record
        out["passed"] = out["passed"] and differing == 0
    out["images_equal"] = bool(np.all([r["sub_pixels_differing"] == 0 for r in out["models"].values()]))
    return out


def summary(pytorch, layers):
    """The lines to read first: each measure's speed ratio, and the step's split."""
    out = {}
    if "skipped" in pytorch:
        out["pytorch"] = pytorch["skipped"]
    else:
        measures = [(f"train_{b}", m) for b, m in pytorch.get("train", {}).items()]
        measures += [(f"forward_{b}", m) for b, m in pytorch.get("forward", {}).items()]
        measures += [("naive_sampling", pytorch["naive_sampling"])] if "naive_sampling" in pytorch else []
        out[RATIO] = {name: measure[RATIO] for name, measure in measures}
    out.update({key: layers[key] for key in ("step_ms", "step_split_ms", "convolution_split_ms") if key in layers})
    return out
