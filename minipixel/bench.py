"""Benchmark: training and sampling speed of the reference model.

The reference model is the keras.io PixelCNN: binary 28x28x1 input, a 7x7
mask-A convolution to 128 filters, 5 residual blocks with the keras widths
(1x1 128->128, 3x3 mask-B 128->64, 1x1 64->128), two 1x1 mask-B 128->128
convolutions and an output convolution to 2 levels (a 2-way softmax, which
is the same model as keras.io's single sigmoid logit).

Everything is timed as the median of several runs after a warm-up. FLOPs
count 2 per multiply-add of the matrix products, over the *live* taps only
(what the masked im2col computes); a training step is forward + backward
(weight gradients for every layer, input gradients for all but the first).

The matmul rate that the model's rate is compared with is measured in the
same run, on the same matrix shapes: every product that a training step
does, replayed alone on random arrays, in the same threads and chunks. The
difference between the training step's time and that replay is the time
spent on everything else (im2col, col2im, ReLUs, the loss, Adam, Python).

Memory: the peak resident size of a fresh process that runs three training
steps, and of a whole ``minipixel train`` of three steps (with its
evaluation and samples), both at each batch size.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from dataclasses import replace

import numpy as np
from tqdm import tqdm

from . import evaluate, threads
from .options import Parser, add_threads_argument, option
from .backend import chunk_rows, get_xp, synchronize
from .data import labels_to_inputs
from .conv import MaskedConv2d
from .model import PixelCNNConfig, build_model
from .optim import Adam
from .sampling import sample, sample_naive
from .step import train_step

REFERENCE = PixelCNNConfig(height=28, width=28, channels=1, levels=2, filters=128, blocks=5, block="keras")
# The gated model at the same width and depth: 128 filters in both stacks, a
# 7x7 first layer and 5 gated layers after it.
GATED_REFERENCE = replace(REFERENCE, arch="gated")
REFERENCES = {"pixelcnn": REFERENCE, "gated": GATED_REFERENCE}


def matmul_shapes(model, batch):
    """The (M, K, N) of every product in one training step: y = cols @ W (forward),
    dW = cols^T dy and dcols = dy W^T (backward, for layers that pass a gradient back)."""
    rows = batch * model.config.height * model.config.width
    shapes = []
    for layer in model.layers():
        if not isinstance(layer, MaskedConv2d):
            continue
        k = len(layer.taps) * layer.in_channels
        n = layer.out_channels
        shapes.append(("forward", rows, k, n))
        shapes.append(("dW", k, rows, n))
        if layer.input_grad:
            shapes.append(("dx", rows, n, k))
    return shapes


def flops(shapes, which=None):
    return sum(2 * m * k * n for kind, m, k, n in shapes if which is None or kind in which)


def median_time(fn, xp, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    return float(np.median([timed(fn, xp) for _ in range(repeat)]))


def replay_matmuls(model, batch):
    """A function that does all the products of one training step alone, on
    random arrays laid out as in the model (dW reads a transposed view, dx
    multiplies by W^T), in the same parts, threads and chunks as the step."""
    xp = model.xp
    rng = np.random.default_rng(0)
    rand = lambda *shape: xp.asarray(rng.random(shape, dtype=np.float32))
    H, W = model.config.height, model.config.width
    per_chunk = max(1, chunk_rows(xp) // (H * W))
    parts = []
    for part in threads.split(batch, len(threads.replicas(model, batch))):
        images = part.stop - part.start
        arrays = []
        for start in range(0, images, per_chunk):
            m = min(per_chunk, images - start) * H * W
            for layer in model.layers():
                if not isinstance(layer, MaskedConv2d):
                    continue
                k, n = len(layer.taps) * layer.in_channels, layer.out_channels
                arrays.append((rand(m, k), rand(k, n)))  # forward: cols @ W
                arrays.append((rand(m, k).T, rand(m, n)))  # dW = cols^T @ dy, cols stored (rows, K)
                if layer.input_grad:
                    arrays.append((rand(m, n), rand(k, n).T))  # dcols = dy @ W^T, W stored (K, C_out)
        parts.append(arrays)

    def products(arrays):
        for a, b in arrays:
            a @ b

    return lambda: threads.run([lambda arrays=arrays: products(arrays) for arrays in parts])


def timed(fn, xp):
    synchronize(xp)
    start = time.perf_counter()
    fn()
    synchronize(xp)
    return time.perf_counter() - start


def batch_of(model, batch, seed=0):
    xp = model.xp
    rng = np.random.default_rng(seed)
    labels = xp.asarray(rng.integers(0, model.config.levels, (batch, model.config.height, model.config.width,
                                                                model.config.channels)).astype(np.uint8))
    return labels_to_inputs(labels, model.config.levels, model.dtype, xp), labels


def peak_rss(code):
    """Peak resident memory (bytes) of a fresh Python process that runs ``code``."""
    # VmHWM, not getrusage: on Linux a child's ru_maxrss starts from the
    # parent's RSS at the fork, which would count the benchmark itself.
    code += "\nprint([int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def peak_rss_training(batch, steps=3, device="cpu", arch="pixelcnn", threads=None):
    """Peak resident memory (bytes) of a fresh process that builds the reference
    model and runs ``steps`` training steps at ``batch``."""
    return peak_rss(
        "from minipixel import threads\n"
        "from minipixel.bench import REFERENCES, batch_of\n"
        "from minipixel.model import build_model\n"
        "from minipixel.optim import Adam\n"
        "from minipixel.step import train_step\n"
        f"threads.set_threads({threads!r})\n"
        f"m = build_model(REFERENCES[{arch!r}], device={device!r})\n"
        "opt = Adam(m.parameters(), flat=m.packed)\n"
        f"x, y = batch_of(m, {batch})\n"
        f"for _ in range({steps}): train_step(m, opt, x, y)\n"
    )


def peak_rss_train_command(batch, steps=3, arch="pixelcnn", threads=None):
    """Peak resident memory (bytes) of a whole ``minipixel train`` process: the
    reference model on the 5,000 shipped MNIST digits, ``steps`` steps at
    ``batch``, then its evaluation of the 500 validation images and 16 samples."""
    cfg = REFERENCES[arch]
    argv = ["train", "--arch", arch, "--filters", str(cfg.filters), "--blocks", str(cfg.blocks), "--block",
            cfg.block, "--batch", str(batch), "--steps", str(steps), "--samples", "16", "--quiet"]
    if threads is not None:
        argv += ["--threads", str(threads)]
    with tempfile.TemporaryDirectory() as tmp:
        return peak_rss(f"from minipixel.cli import main\nmain({argv + ['--out', tmp]!r})\n")


def launch_counts(arch="pixelcnn", batch=64, sample_rows=4, sample_images=16):
    """Kernel launches that the GPU path issues, counted on the CPU with the CuPy
    stand-in (``testing.strict``, its whole-batch chunking, as on a GPU): one
    training step of the reference model at ``batch``, and one sampled sub-pixel
    (the mean over the first ``sample_rows`` rows of ``sample_images`` images)."""
    from . import backend
    from .testing import strict

    backend.register_device("strict", strict)
    strict.whole_batch, before = True, strict.whole_batch
    try:
        model = build_model(REFERENCES[arch], device="strict")
        optimizer = Adam(model.parameters(), flat=model.packed)
        x, labels = batch_of(model, batch)
        train_step(model, optimizer, x, labels)  # the first step builds indices and buffers
        strict.counts.clear()
        train_step(model, optimizer, x, labels)
        step = strict.launches()
        W = REFERENCES[arch].width
        strict.counts.clear()
        sample(model, sample_images, height=sample_rows, width=W)
        per_sub_pixel = strict.launches() / (sample_rows * W * REFERENCES[arch].channels)
        counts = {"train_step": step, "train_batch": batch, "per_sampled_sub_pixel": round(per_sub_pixel, 1)}
        if arch == "pixelcnn":  # the wavefront's steps cover several rows: counted over whole images
            H = REFERENCES[arch].height
            strict.counts.clear()
            sample(model, sample_images, method="wavefront")
            counts["per_sampled_sub_pixel_wavefront"] = round(strict.launches() / (H * W * REFERENCES[arch].channels), 1)
    finally:
        strict.whole_batch = before
    return counts


def machine():
    info = {"cpu_count": os.cpu_count(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = names[0] if names else None
    except OSError:
        info["cpu"] = None
    return info


def run(device="cpu", batches=(16, 64), repeat=7, sample_images=16, naive_rows=2, memory=True, arch="pixelcnn"):
    """Run the benchmark; returns a JSON-able dict."""
    xp = get_xp(device)
    reference = REFERENCES[arch]
    model = build_model(reference, seed=0, device=device)
    optimizer = Adam(model.parameters(), lr=1e-4, flat=model.packed)
    name = "keras.io reference: " if arch == "pixelcnn" else "gated, at the reference's width and depth: "
    n_threads = threads.threads() if xp is np else 1
    result = {"device": device, "machine": machine(), "model": name + reference.to_json(), "repeat": repeat,
              "threads": n_threads, "blas_threads": threads.blas_threads_in(n_threads), "batches": {}}
    for batch in batches:
        x, labels = batch_of(model, batch)
        shapes = matmul_shapes(model, batch)
        replay = replay_matmuls(model, batch)
        step = lambda: train_step(model, optimizer, x, labels)
        forward_s = median_time(lambda: evaluate.forward(model, x), xp, repeat)
        # The machine's speed drifts by tens of percent over seconds (shared
        # hardware), so the training step and its matmul replay are timed in
        # alternation and compared round by round.
        step(), replay()
        steps, replays = [], []
        for _ in range(repeat):
            steps.append(timed(step, xp))
            replays.append(timed(replay, xp))
        step_s, matmul_s = float(np.median(steps)), float(np.median(replays))
        fraction = float(np.median(np.array(replays) / np.array(steps)))
        step_flops = flops(shapes)
        entry = {
            "forward_ms": round(forward_s * 1e3, 1),
            "forward_images_per_s": round(batch / forward_s, 1),
            "train_step_ms": round(step_s * 1e3, 1),
            "train_images_per_s": round(batch / step_s, 1),
            "train_images_per_s_range": [round(batch / max(steps), 1), round(batch / min(steps), 1)],
            "live_gflop_per_step": round(step_flops / 1e9, 2),
            "live_gflops_per_s": round(step_flops / step_s / 1e9, 1),
            "matmul_replay_gflops_per_s": round(step_flops / matmul_s / 1e9, 1),
            "fraction_of_matmul_rate": round(fraction, 3),
            "step_split_ms": {"matmul": round(matmul_s * 1e3, 1), "everything_else": round((step_s - matmul_s) * 1e3, 1)},
        }
        del replay
        if memory and device == "cpu":
            mib = lambda measure: round(measure(batch, arch=arch, threads=n_threads) / 2**20, 1)
            entry["train_peak_rss_mib"] = mib(peak_rss_training)
            entry["train_command_peak_rss_mib"] = mib(peak_rss_train_command)
        result["batches"][str(batch)] = entry
        print(f"batch {batch}: {json.dumps(entry)}", file=sys.stderr)

    result["gpu_launches"] = launch_counts(arch)
    n, H = sample_images, reference.height
    cached_s = median_time(lambda: sample(model, n, seed=0, method="cached"), xp, repeat=5)
    u = np.random.default_rng(0).random((n, H, reference.width, reference.channels))
    with tqdm(disable=True) as bar:
        partial = median_time(lambda: sample_naive(model, u, 1.0, bar, rows=naive_rows), xp, repeat=1, warmup=0)
    naive_s = partial * H / naive_rows
    result["sampling"] = {
        "images": n,
        "cached_s": round(cached_s, 3),
        "naive_s": round(naive_s, 1),
        "naive_note": f"extrapolated: the first {naive_rows} of {H} rows took {partial:.2f} s, times {H / naive_rows:g}",
        "speedup": round(naive_s / cached_s, 1),
    }
    if arch == "pixelcnn":
        wavefront_s = median_time(lambda: sample(model, n, seed=0, method="wavefront"), xp, repeat=5)
        result["sampling"].update(wavefront_s=round(wavefront_s, 3), speedup_wavefront=round(naive_s / wavefront_s, 1))
    forward = result["batches"].get(str(n))
    if forward:  # the aim: n images in at most the time of two forward passes of a batch of n
        two = 2 * forward["forward_ms"] / 1e3
        result["sampling"]["per_two_forward_passes"] = {
            method: round(result["sampling"][f"{method}_s"] / two, 2)
            for method in ("cached", "wavefront") if f"{method}_s" in result["sampling"]}
    return result


def batch_list(text):
    """``--batches``: comma-separated batch sizes, each checked like ``--batch``."""
    return tuple(option("batch")(part) for part in text.split(","))


def add_arguments(parser):
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="cpu or gpu (default cpu)")
    parser.add_argument("--arch", choices=list(REFERENCES), default="pixelcnn",
                        help="the keras.io reference PixelCNN, or a gated model of its width and depth (default pixelcnn)")
    parser.add_argument("--batches", type=batch_list, default=(16, 64), help="comma-separated batch sizes (default 16,64)")
    parser.add_argument("--repeat", type=option("repeat"), default=7,
                        help="timed runs per measurement; medians are reported (default 7)")
    parser.add_argument("--sample-images", type=option("images"), default=16, help="images sampled (default 16)")
    parser.add_argument("--naive-rows", type=option("rows"), default=2,
                        help="rows the naive sampler runs before extrapolating (default 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS measurements (subprocesses)")

    add_threads_argument(parser)


def run_from_args(args):
    threads.set_threads(args.threads)
    result = run(args.device, args.batches, args.repeat, args.sample_images, args.naive_rows, memory=not args.no_memory,
                 arch=args.arch)
    print(json.dumps(result, indent=2))
    return 0


def main(argv=None):

    parser = Parser(description="minipixel benchmark: prints one JSON object")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
