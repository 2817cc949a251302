"""Check minipixel on a GPU in one command, and measure it: prints a summary, writes one JSON.

    python scripts/gpu_check.py                # on a machine where CuPy is installed
    python scripts/gpu_check.py --out gpu.json --quick

Runs from a checkout without installing minipixel (it puts the checkout on the
path, and on the PYTHONPATH of the NCCL worker it starts). If the pure-Python
helpers minipixel uses (tqdm, threadpoolctl, Pillow) are missing, as on a bare
GPU machine with no network, it stands in for them (no progress bars, no PNGs)
and says so in the JSON.

What it does, in this order, each step recorded in the JSON with its figures and pass/fail:
1. the GPU, driver, CUDA and CuPy versions, and CUPY_TF32 (TF32 matmuls are
   off unless it is 1; the tolerances below assume off);
2. a smoke test: a kernel compiled by NVRTC and a cuBLAS product (as
   ``backend.get_xp("gpu")`` does before anything else);
3. one training step on the GPU against the CPU, same model and batch: loss,
   gradients and updated parameters, in float64 (to 1e-9 relative) and in
   float32 (to 1e-3: float32 sums in another order, and Adam's first step
   moves every weight by lr whatever the size of its gradient);
4. two identical GPU runs of 3 steps give bit-identical weights;
5. the cached sampler gives the naive sampler's images on the GPU, and the graph
   sampler the cached sampler's (with known rows; a class-conditional model too);
6. the MPI + NCCL gradient sum, where mpi4py is installed (GPU only);
7. timings (medians): training and forward at several batch sizes, sampling;
8. layer timings (scripts/gpu_timing.py): where a training step's time goes at batch
   64, per layer, forward and backward, with the im2col, the matrix products and the
   col2im inside each masked convolution, the loss and the optimizer, by CUDA events;
9. PyTorch beside minipixel on the same GPU (scripts/gpu_timing.py), where torch with
   CUDA is importable: the reference model in float32 with TF32 off on both sides,
   training at batches 16, 64 and 256, the forward pass and the naive sampler, the two
   sides taking turns; each figure named by its side, with minipixel's speed over
   PyTorch's;
10. the graph sampler beside the cached one (scripts/gpu_timing.py): the same images, and
   the seconds for 64 images of the reference model and of the shipped gated
   binarized-MNIST model, against the targets 0.1 s and 0.3 s;
11. last, every float64 gradient check of ``minipixel gradcheck`` with the layers
   on the GPU: the slowest step by far (minutes; docs/gpu.md has the figures), so a
   time limit cuts only these.

The JSON is saved as it goes: rewritten whole (to a temporary file in the same
folder, then renamed over the old one) before and after every check, and after
every gradient-check case. A time limit or a kill keeps everything done so far;
the check it stopped in says ``"running": true`` and ``"finished"`` stays false.
A check that raises is recorded as failed, with the error and its traceback,
and the next check runs; the exit status is 1 if any check failed (2 if the
device cannot be used at all).

``--device strict`` runs it all on the CPU stand-in for CuPy (the tests do, to
keep this script working without a GPU).
"""
import argparse
import json
import os
import platform
import sys
import time
import traceback
import types
from dataclasses import replace
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))  # the checkout, installed or not
if str(CHECKOUT / "scripts") not in sys.path:  # gpu_timing and pytorch_reference, beside this file
    sys.path.insert(1, str(CHECKOUT / "scripts"))
import gpu_timing  # noqa: E402 - found through the path above; imports neither minipixel nor torch
STAND_INS = []
FIGURES = ("timings", "layer_timings", "pytorch")  # measured, not tested: each passes unless it raises
MEASURED = FIGURES + ("graph_sampler",)  # graph_sampler also fails where its images differ from cached's


def stand_in_for_missing_helpers():
    """No-op modules for tqdm, threadpoolctl and PIL when they are not installed."""
    import importlib.util

    if importlib.util.find_spec("tqdm") is None:
        class tqdm:  # noqa: N801 - the name minipixel imports
            def __init__(self, iterable=None, *args, **kwargs):
                self.iterable = iterable

            def __iter__(self):
                return iter(self.iterable)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def update(self, *args):
                pass

            def close(self):
                pass

            set_postfix = set_description = write = update

        sys.modules["tqdm"] = types.SimpleNamespace(tqdm=tqdm)
        STAND_INS.append("tqdm")
    if importlib.util.find_spec("threadpoolctl") is None:
        class ThreadpoolController:
            def info(self):
                return []

            def limit(self, **kwargs):
                import contextlib

                return contextlib.nullcontext()

        sys.modules["threadpoolctl"] = types.SimpleNamespace(ThreadpoolController=ThreadpoolController)
        STAND_INS.append("threadpoolctl")
    if importlib.util.find_spec("PIL") is None:
        pil = types.ModuleType("PIL")
        pil.Image = types.SimpleNamespace()
        sys.modules["PIL"] = pil
        sys.modules["PIL.Image"] = pil.Image
        STAND_INS.append("PIL")


def versions(xp, device):
    info = {"python": platform.python_version(), "numpy": __import__("numpy").__version__,
            "CUPY_TF32": os.environ.get("CUPY_TF32", "(unset: TF32 off)"), "stand_ins": STAND_INS}
    if device == "gpu":
        runtime = xp.cuda.runtime
        props = runtime.getDeviceProperties(0)
        name = props["name"]
        info.update(gpu=name.decode() if isinstance(name, bytes) else name, gpus=runtime.getDeviceCount(),
                    cupy=xp.__version__, cuda_runtime=runtime.runtimeGetVersion(),
                    cuda_driver=runtime.driverGetVersion(), memory_gib=round(props["totalGlobalMem"] / 2**30, 1))
    else:
        info.update(gpu=f"none: the {device!r} stand-in")
    return info


def relative(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def one_step(cfg, device, dtype, batch=8, steps=1, seed=0):
    """Loss, gradients and parameters after ``steps`` Adam steps on a fixed batch, as NumPy arrays."""
    import numpy as np

    from minipixel.backend import to_numpy
    from minipixel.data import labels_to_inputs
    from minipixel.model import build_model
    from minipixel.optim import Adam
    from minipixel.train import train_step

    model = build_model(cfg, seed=seed, dtype=dtype, device=device)
    optimizer = Adam(model.parameters(), lr=1e-3, flat=model.packed)
    rng = np.random.default_rng(seed)
    labels = model.xp.asarray(rng.integers(0, cfg.levels, (batch, cfg.height, cfg.width, cfg.channels), dtype=np.uint8))
    x = labels_to_inputs(labels, cfg.levels, model.dtype, model.xp)
    losses = [train_step(model, optimizer, x, labels) for _ in range(steps)]
    return {"losses": losses, "grads": {k: to_numpy(g) for k, g in model.gradients().items()},
            "params": {k: to_numpy(p) for k, p in model.parameters().items()}}


def compare_step(cfg, device, dtype, tolerance):
    got, want = one_step(cfg, device, dtype), one_step(cfg, "cpu", dtype)
    errors = {"loss": relative(got["losses"], want["losses"])}
    errors["grads"] = max(relative(got["grads"][k], want["grads"][k]) for k in want["grads"])
    errors["params"] = max(relative(got["params"][k], want["params"][k]) for k in want["params"])
    return {"dtype": dtype, "tolerance": tolerance, "max_relative_error": errors,
            "passed": all(e <= tolerance for e in errors.values())}


def repeatable(cfg, device):
    """Two identical runs of 3 float32 steps on ``device`` end with bit-identical weights."""
    import numpy as np

    runs = [one_step(cfg, device, "float32", steps=3) for _ in range(2)]
    return {"passed": all(np.array_equal(runs[0]["params"][k], runs[1]["params"][k]) for k in runs[0]["params"])}


def cached_equals_naive(cfg, device):
    """The cached sampler draws the naive sampler's images, sub-pixel for sub-pixel."""
    from minipixel.model import build_model
    from minipixel.sampling import sample

    model = build_model(cfg, seed=1, device=device)
    cached = sample(model, 4, seed=2, method="cached")
    naive = sample(model, 4, seed=2, method="naive")
    return {"passed": bool((cached == naive).all()), "sub_pixels_differing": int((cached != naive).sum())}


def graph_equals_cached(cfg, device):
    """The graph sampler draws the cached sampler's images, with known rows too
    (and, for a class-conditional model, given classes)."""
    import numpy as np

    from minipixel.model import build_model
    from minipixel.sampling import sample

    model = build_model(cfg, seed=1, device=device)
    known = np.random.default_rng(3).integers(0, cfg.levels, (4, cfg.height, cfg.width, cfg.channels), dtype=np.uint8)
    kwargs = [dict(), dict(known=known, known_rows=2)]
    differing = 0
    for extra in kwargs:
        classes = np.arange(4) % cfg.classes if cfg.classes else None
        drawn = [sample(model, 4, seed=2, method=method, classes=classes, **extra) for method in ("cached", "graph")]
        differing += int((drawn[0] != drawn[1]).sum())
    return {"passed": differing == 0, "sub_pixels_differing": differing}


def timings(device, batches, repeat, sample_images):
    import numpy as np

    from minipixel import evaluate as evaluate_module
    from minipixel.backend import get_xp, synchronize
    from minipixel.bench import REFERENCE, batch_of
    from minipixel.model import build_model
    from minipixel.optim import Adam
    from minipixel.sampling import sample
    from minipixel.train import train_step

    xp = get_xp(device)
    model = build_model(REFERENCE, device=device)
    optimizer = Adam(model.parameters(), lr=1e-4, flat=model.packed)

    def median(fn):
        fn()
        times = []
        for _ in range(repeat):
            synchronize(xp)
            start = time.perf_counter()
            fn()
            synchronize(xp)
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    # Figures, not a test: the step passes unless it raises.
    out = {"passed": True, "model": "the benchmark's reference (keras.io PixelCNN, 128 filters, 5 blocks)",
           "batches": {}}
    for batch in batches:
        x, labels = batch_of(model, batch)
        step = median(lambda: train_step(model, optimizer, x, labels))
        forward = median(lambda: evaluate_module.forward(model, x))
        out["batches"][str(batch)] = {"train_images_per_s": round(batch / step, 1), "train_step_ms": round(step * 1e3, 2),
                                      "forward_images_per_s": round(batch / forward, 1)}
    for n in sample_images:
        out[f"sample_{n}_images_s"] = round(median(lambda: sample(model, n, seed=0)), 3)
    return out


def nccl_check(xp):
    """The MPI + NCCL gradient sum (minipixel.distributed.NCCLRanks) on min(2, GPUs) ranks."""
    import ast
    import importlib.util
    import shutil
    import subprocess
    import tempfile

    if importlib.util.find_spec("mpi4py") is None:
        return {"passed": True, "skipped": "mpi4py is not installed"}
    gpus = xp.cuda.runtime.getDeviceCount()
    worker = CHECKOUT / "tests" / "mpi_worker.py"
    # The worker imports minipixel too, from a checkout that may not be installed:
    # the checkout goes first on its PYTHONPATH, before whatever was there.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")])))
    mpiexec = shutil.which("mpiexec")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "nccl.txt"
        command = [sys.executable, str(worker), "nccl", str(out)]
        if gpus > 1 and mpiexec:
            command = [mpiexec, "-n", "2"] + command
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        if done.returncode or not out.exists():
            return {"passed": False, "error": done.stderr[-2000:]}
        return ast.literal_eval(out.read_text())


def write_report(report, out):
    """Write the whole report to ``out`` atomically: a temporary file in the same folder, then
    ``os.replace``, so a kill at any moment leaves the last JSON or the new one, never half of one."""
    out = Path(out)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2))
    os.replace(temporary, out)


def run_check(records, name, check, save):
    """Run ``check()``, store the record it returns as ``records[name]`` and ``save()`` before and after.

    While it runs the record is ``{"passed": false, "running": true}``, so where a time
    limit or a kill stops the script the JSON names the check it stopped in. A check
    that raises is recorded as failed, with the error and its traceback, and the script
    goes on to the next; what the check had put in ``records[name]`` before it raised
    (the gradient checks put each case there as it ends) is kept beside the error."""
    records[name] = {"passed": False, "running": True}
    save()
    start = time.perf_counter()
    try:
        record = check()
    except Exception as err:  # whatever a broken check raises: recorded, and the next check runs
        record = {**records[name], "passed": False, "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc()}
    record.pop("running", None)
    record.setdefault("seconds", round(time.perf_counter() - start, 2))
    records[name] = record
    save()
    print(f"{name:40s} {'pass' if record['passed'] else 'FAIL'} ({record['seconds']} s)", flush=True)
    return record


def gradient_checks(cases, record, save):
    """The float64 gradient checks, one case at a time, into ``record`` (the check's own record
    in the report): each case's largest relative error goes into ``record["cases"]`` and the JSON
    is saved as the case ends, so a time limit, a kill or a case that raises keeps the cases done."""
    from minipixel.gradcheck import TOLERANCE

    record.update(cases={}, cases_to_run=len(cases), tolerance=TOLERANCE)
    for name, fn in cases:
        record["cases"][name] = float(f"{max(fn().values()):.3g}")
        save()
    record["passed"] = all(err < TOLERANCE for err in record["cases"].values())
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="gpu", help="gpu (default), or strict: the CPU stand-in for CuPy")
    parser.add_argument("--out", default="gpu_check.json", help="the JSON to write (default gpu_check.json)")
    parser.add_argument("--quick", action="store_true", help="fewer gradient checks and smaller timings")
    args = parser.parse_args(argv)
    stand_in_for_missing_helpers()

    from minipixel import backend, gradcheck
    from minipixel.model import PixelCNNConfig

    if args.device == "strict":
        from minipixel.testing import strict

        backend.register_device("strict", strict)
    report = {"finished": False, "checks": {}}
    checks = report["checks"]

    def save():
        write_report(report, args.out)

    start = time.perf_counter()
    try:
        xp = backend.get_xp(args.device)  # for "gpu": the smoke test, a compiled kernel and a cuBLAS product
    except backend.DeviceError as err:
        print(f"gpu_check: {err}", file=sys.stderr)
        report["error"] = str(err)
        save()
        return 2
    report["versions"] = versions(xp, args.device)
    checks["smoke"] = {"passed": True, "seconds": round(time.perf_counter() - start, 2)}
    save()
    print(json.dumps(report["versions"]))

    small = {"pixelcnn": PixelCNNConfig(height=8, width=8, channels=3, levels=4, filters=12, blocks=2, input_kernel=5),
             "gated": PixelCNNConfig(height=8, width=8, channels=3, levels=4, filters=12, blocks=2, input_kernel=5,
                                     arch="gated", classes=0)}
    for arch, cfg in small.items():  # each check runs at once, so the lambdas see this turn's cfg
        run_check(checks, f"step_vs_cpu_{arch}_float64", lambda: compare_step(cfg, args.device, "float64", 1e-9), save)
        run_check(checks, f"step_vs_cpu_{arch}_float32", lambda: compare_step(cfg, args.device, "float32", 1e-3), save)
        run_check(checks, f"repeatable_{arch}", lambda: repeatable(cfg, args.device), save)
        run_check(checks, f"cached_equals_naive_{arch}", lambda: cached_equals_naive(cfg, args.device), save)
        run_check(checks, f"graph_equals_cached_{arch}", lambda: graph_equals_cached(cfg, args.device), save)
    conditional = replace(small["gated"], classes=3)
    run_check(checks, "graph_equals_cached_gated_classes", lambda: graph_equals_cached(conditional, args.device), save)

    if args.device == "gpu":
        run_check(checks, "nccl_sum", lambda: nccl_check(xp), save)

    batches, repeat, images = ((16, 64), 3, (16,)) if args.quick or args.device != "gpu" else ((16, 64, 256), 7, (16, 64))
    if args.device == "strict":
        batches, images = (4,), (2,)
    run_check(report, "timings", lambda: timings(args.device, batches, repeat, images), save)
    run_check(report, "layer_timings", lambda: gpu_timing.layer_timings(args.device, args.quick), save)
    # pytorch_check fills the record run_check has just put in place, measure by measure.
    run_check(report, "pytorch", lambda: gpu_timing.pytorch_check(report["pytorch"], save, args.device, args.quick),
              save)
    run_check(report, "graph_sampler", lambda: gpu_timing.graph_sampler(args.device, args.quick), save)

    # Last: the slowest step, so that a time limit cuts only its later cases.
    cases = gradcheck.cases(args.device)
    if args.quick:
        cases = [case for case in cases if case[0] in ("conv 3x3 mask B, RGB groups", "softmax cross-entropy, 7 levels",
                                                       "gated layer, later, class bias")]
    # gradient_checks fills the record run_check has just put in place, case by case.
    run_check(checks, "gradcheck_float64", lambda: gradient_checks(cases, checks["gradcheck_float64"], save), save)

    failed = [name for name, check in checks.items() if not check["passed"]]
    failed += [name for name in MEASURED if not report[name]["passed"]]
    report.update(finished=True, passed=not failed)
    save()
    print(json.dumps(report["timings"]))
    print(json.dumps(gpu_timing.summary(report["pytorch"], report["layer_timings"])))
    print(json.dumps(report["graph_sampler"]))
    print(f"gpu_check: {'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'}; wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
