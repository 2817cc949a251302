"""The ``minipixel`` command: train, sample, eval, gradcheck."""
import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

from .backend import DeviceError
from .checkpoint import CheckpointError

DEFAULT_SAMPLES_PNG = "samples.png"


def _train_parser(sub):
    from .train import TrainSettings

    d = TrainSettings()
    p = sub.add_parser("train", help="train a PixelCNN (no arguments: binarized MNIST-5k, a few minutes on a CPU)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", help=f"training data: a file or NAME:SPLIT (default {d.data})")
    p.add_argument("--valid", help="validation data (default: the dataset's valid split, else a 10%% hold-out)")
    p.add_argument("--data-dir", help="folder of named datasets (default: $MINIPIXEL_DATA or data/)")
    p.add_argument("--levels", type=int, help=f"values per sub-pixel, 2..256 (default {d.levels})")
    p.add_argument("--binarize", choices=["threshold", "sample"], help=f"how grey data becomes 2 levels (default {d.binarize})")
    p.add_argument("--filters", type=int, help=f"width h of the residual stream (default {d.filters})")
    p.add_argument("--blocks", type=int, help=f"residual blocks (default {d.blocks})")
    p.add_argument("--block", choices=["half", "keras"], help=f"residual block widths (default {d.block})")
    p.add_argument("--batch", type=int, help=f"batch size (default {d.batch})")
    p.add_argument("--epochs", type=int, help=f"epochs (default {d.epochs})")
    p.add_argument("--steps", type=int, help="total optimizer steps (overrides --epochs)")
    p.add_argument("--lr", type=float, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--lr-decay", type=float, help=f"lr multiplier per step (default {d.lr_decay})")
    p.add_argument("--seed", type=int, help=f"seed of weights, data order, hold-out (default {d.seed})")
    p.add_argument("--device", choices=["cpu", "gpu"], help="cpu (NumPy) or gpu (CuPy) (default cpu)")
    p.add_argument("--samples", type=int, help=f"images in samples.png at the end (default {d.samples})")
    p.add_argument("--temperature", type=float, help=f"sampling temperature for samples.png (default {d.temperature})")
    p.add_argument("--out", help="run folder (default runs/<dataset>-<time>)")
    p.add_argument("--resume", help="continue the run in this folder (or checkpoint file) where it stopped")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=cmd_train)


def cmd_train(args):
    from .train import TrainSettings, train

    given = {f.name: getattr(args, f.name) for f in fields(TrainSettings)
             if getattr(args, f.name, None) is not None}
    if args.resume:
        allowed = {"epochs", "steps", "device"}
        extra = sorted(set(given) - allowed)
        if extra:
            raise ValueError(
                "--resume continues a run with the settings saved in its checkpoint; only --epochs, --steps, "
                f"--device and --out may be given with it (got {', '.join('--' + e.replace('_', '-') for e in extra)})"
            )
    settings = TrainSettings(**given)
    train(settings, out=args.out, resume=args.resume, progress=not args.quiet)
    return 0


def _sample_parser(sub):
    p = sub.add_parser("sample", help="generate images from a checkpoint")
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz (or its run folder)")
    p.add_argument("-n", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature; 0 = argmax (default 1.0)")
    p.add_argument("--method", choices=["cached", "naive"], default="cached", help="sampler (default cached)")
    p.add_argument("--out", default=DEFAULT_SAMPLES_PNG, help="PNG grid to write (default samples.png)")
    p.add_argument("--npy", action="store_true", help="also save the labels as <out>.npy, (n, H, W, C) uint8")
    p.add_argument("--batch", type=int, default=64, help="images sampled at once (default 64)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--scale", type=int, default=None, help="pixel size in the PNG (default 2, or 4 below 28 px)")
    p.set_defaults(run=cmd_sample)


def cmd_sample(args):
    from .checkpoint import load_model
    from .files import atomic_write
    from .sampling import sample
    from .viz import image_grid, save_png

    model, _, _ = load_model(args.checkpoint, device=args.device)
    images = sample(model, args.n, seed=args.seed, temperature=args.temperature, method=args.method,
                    batch_size=args.batch, progress=True)
    scale = args.scale or (2 if model.config.height >= 28 else 4)
    out = Path(args.out)
    save_png(out, image_grid(images, model.config.levels, scale=scale))
    print(f"wrote {out} ({args.n} images, {model.config.height}x{model.config.width}x{model.config.channels}, "
          f"{model.config.levels} levels)")
    if args.npy:
        npy = out.with_suffix(".npy")
        with atomic_write(npy) as f:
            np.save(f, images)
        print(f"wrote {npy}")
    return 0


def _eval_parser(sub):
    p = sub.add_parser("eval", help="negative log-likelihood of a dataset under a checkpoint")
    p.add_argument("--checkpoint", required=True, help="checkpoint.npz (or its run folder)")
    p.add_argument("--data", required=True, help="a file or NAME:SPLIT")
    p.add_argument("--data-dir", help="folder of named datasets (default: $MINIPIXEL_DATA or data/)")
    p.add_argument("--binarize", choices=["threshold", "sample"], help="default: as in training")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_eval)


def cmd_eval(args):
    from . import data
    from .checkpoint import load_model
    from .train import evaluate

    model, _, state = load_model(args.checkpoint, device=args.device)
    trained = state.get("settings", {})
    binarize = args.binarize or trained.get("binarize", "threshold")
    images = data.load(args.data, data_dir=args.data_dir)
    labels = data.to_labels(images, model.config.levels, binarize_mode=binarize, seed=trained.get("seed", 0))
    result = evaluate(model, labels, args.batch, progress=not args.json)
    result.update(data=args.data, checkpoint=str(args.checkpoint), levels=model.config.levels)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.data}: {result['nll_nats']:.3f} nats/image, {result['bits_per_dim']:.4f} bits/dim "
              f"over {result['images']} images")
    return 0


def _gradcheck_parser(sub):
    p = sub.add_parser("gradcheck", help="check every backward pass against central differences (float64)")
    p.set_defaults(run=cmd_gradcheck)


def cmd_gradcheck(args):
    from .gradcheck import format_table, run_all

    rows = run_all()
    print(format_table(rows))
    return 0 if all(ok for _, _, ok in rows) else 1


def _bench_parser(sub):
    from .bench import add_arguments

    p = sub.add_parser("bench", help="benchmark the reference model (prints one JSON object)")
    add_arguments(p)
    p.set_defaults(run=cmd_bench)


def cmd_bench(args):
    from .bench import run_from_args

    return run_from_args(args)


def build_parser():
    parser = argparse.ArgumentParser(prog="minipixel", description="A from-scratch PixelCNN on NumPy / CuPy.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_train_parser, _sample_parser, _eval_parser, _gradcheck_parser, _bench_parser):
        add(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, DeviceError, CheckpointError, RuntimeError) as err:
        print(f"minipixel {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
