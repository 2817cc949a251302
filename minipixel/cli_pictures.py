"""The commands that draw pictures: ``minipixel sample``, ``complete`` and ``show``."""
from pathlib import Path

import numpy as np

from .model import ARCHS
from .datasets.class_names import class_names, class_number
from .options import UsageError, add_model_arguments, option
from .runfolder import check_output
from .sampling import METHODS

DEFAULT_SAMPLES_PNG = "samples.png"


def sample_parser(sub):
    import argparse

    from .options import check, describe
    from .sampling import MAX_FRAMES

    def size(text):
        """'HxW' or 'S' -> (H, W), each in the range of ``size``."""
        parts = text.lower().split("x")
        if len(parts) == 1:
            parts *= 2  # S is S x S
        try:
            if len(parts) != 2:
                raise ValueError(text)
            return tuple(check("size", int(part)) for part in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected HxW or S (S x S), each {describe('size')}, got {text!r}") from None

    p = sub.add_parser("sample", help="generate images from a checkpoint")
    add_model_arguments(p)
    p.add_argument("-n", type=option("images"), default=16, help="number of images (default 16); for a class-conditional "
                                                     "model without --class, images per class, one row each")
    p.add_argument("--class", dest="class_", metavar="K",
                   help="class-conditional model: draw this class, by number or by name where the data has names "
                        "(e.g. 7 or Sneaker for Fashion-MNIST; `minipixel pretrained` lists them) (default: every "
                        "class, one row each, named)")
    p.add_argument("--seed", type=option("seed"), default=0, help="random seed (default 0)")
    p.add_argument("--temperature", type=option("temperature"), default=1.0, help="softmax temperature; 0 = argmax (default 1.0)")
    p.add_argument("--method", choices=METHODS, default="cached",
                   help="sampler (default cached; wavefront: PixelCNN models only, several rows at a time; "
                        "graph: a GPU only, each row replayed from one captured CUDA graph)")
    p.add_argument("--out", default=DEFAULT_SAMPLES_PNG, help="PNG grid to write (default samples.png)")
    p.add_argument("--npy", action="store_true",
                   help="also save the labels, (n, H, W, C) uint8, in the --out path with its suffix replaced by .npy "
                        "(samples.png -> samples.npy) (default: off)")
    p.add_argument("--png-dir", metavar="DIR", help="also write each image as its own PNG, DIR/000.png, 001.png, ...: "
                                                    "one pixel per pixel, values 0-255 (default: none)")
    p.add_argument("--size", type=size, metavar="HxW",
                   help="sample images of this size, HxW or S for SxS, each 1 to 4096 (default: the size the model "
                        "was trained on); every layer is a convolution, so any model can")
    p.add_argument("--animate", metavar="GIF", help="also write a GIF of the sampler at work, filling the images "
                                                    "sub-pixel by sub-pixel; red-grey: not drawn yet (default: none)")
    p.add_argument("--frame-every", type=option("frame_every"), metavar="K",
                   help="--animate: sub-pixels drawn per frame (default: one image row, W x C, raised to keep "
                        f"at most {MAX_FRAMES} frames)")
    p.add_argument("--batch", type=option("batch"), default=64, help="images sampled at once (default 64)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="cpu (NumPy) or gpu (CuPy) (default cpu)")
    p.add_argument("--scale", type=option("scale"), default=None, help="pixel size in the PNG (default 2, or 4 below 28 px)")
    p.set_defaults(handler=cmd_sample)


def cmd_sample(args):
    from .checkpoint import load_model
    from .memory import check_memory
    from .files import atomic_write
    from .sampling import Recording, sample
    from .viz import default_scale, image_grid, sampling_frame, save_gif, save_image_files, save_png

    def count(k, word, words=None):
        """'1 image', '2 images'."""
        return f"{k} {word}" if k == 1 else f"{k} {words or word + 's'}"

    if args.animate and Path(args.animate).suffix.lower() != ".gif":
        raise ValueError(f"--animate: expected a file name ending in .gif, got {args.animate!r}")
    if args.frame_every and not args.animate:
        raise ValueError("--frame-every: sets the frames of --animate, which is not given")
    out = check_output(args.out, [args.checkpoint])  # before any work: refused outputs cost nothing
    npy = check_output(out.with_suffix(".npy"), [args.checkpoint]) if args.npy else None
    if args.animate:
        check_output(args.animate, [args.checkpoint])
    if args.png_dir and Path(args.png_dir).exists() and not Path(args.png_dir).is_dir():
        raise ValueError(f"--png-dir: {args.png_dir} is a file; give a folder")
    model, _, state = load_model(args.checkpoint, device=args.device)
    cfg = model.config
    H, W = args.size or (cfg.height, cfg.width)
    K, classes, ncols = cfg.classes, None, None
    names = class_names(state.get("settings", {}).get("data")) if K else None
    if args.class_ is not None:
        if not K:
            raise ValueError("--class: this model is not class-conditional (train it with --arch gated --conditional)")
        try:
            number = class_number(args.class_, names, K)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if not 0 <= number < K:
            raise UsageError(f"--class: expected a class from 0 to {K - 1} for this model, got {args.class_}")
        classes = np.full(args.n, number)
    elif K:
        classes, ncols = np.repeat(np.arange(K), args.n), args.n  # one row per class
    n = args.n if classes is None else len(classes)
    scale = args.scale or default_scale(H)
    recording = None
    if args.animate:
        recording = Recording(n, H, W, cfg.channels, args.frame_every)
        grid = image_grid(np.zeros((n, H, W, 1), np.uint8), cfg.levels, ncols=ncols, scale=scale)
        check_memory(len(recording.drawn) * grid.size * 4, f"{len(recording.drawn)} frames of --animate")
    images = sample(model, n, seed=args.seed, temperature=args.temperature, method=args.method, height=H, width=W,
                    batch_size=args.batch, progress=True, classes=classes, snapshot=recording,
                    snapshot_every=recording.every if recording else None)
    row_names = list(names or range(K)) if ncols else None
    save_png(out, image_grid(images, cfg.levels, ncols=ncols, scale=scale, row_names=row_names))
    rows = f", one row per class ({count(K, 'class', 'classes')})" if ncols else ""
    print(f"wrote {out} ({count(n, 'image')}, {H}x{W}x{cfg.channels}, {cfg.levels} levels{rows})")
    if args.npy:
        with atomic_write(npy) as f:
            np.save(f, images)
        print(f"wrote {npy}")
    if args.png_dir:
        paths = save_image_files(args.png_dir, images, cfg.levels)
        names = paths[0].name if len(paths) == 1 else f"{paths[0].name} to {paths[-1].name}"
        print(f"wrote {count(len(paths), 'PNG file')} in {args.png_dir} ({names})")
    if recording:
        pictures = [sampling_frame(labels, drawn, cfg.levels, ncols=ncols, scale=scale, row_names=row_names)
                    for labels, drawn in zip(recording.labels, recording.drawn)]
        save_gif(args.animate, pictures)
        print(f"wrote {args.animate} ({count(len(pictures), 'frame')}, one every "
              f"{count(recording.every, 'sub-pixel')} of each image; red-grey: not drawn yet)")
    return 0


def complete_parser(sub):
    p = sub.add_parser("complete", help="keep the top rows of real images and sample the rest")
    add_model_arguments(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", action="append", help="an image file (PNG/JPEG) of the model's size; repeatable")
    src.add_argument("--data", help="take images from this dataset (a file or NAME:SPLIT) instead")
    p.add_argument("--data-dir", help="folder of named datasets (default: $MINIPIXEL_DATA or data/)")
    p.add_argument("-n", type=option("images"), default=8, help="images taken from --data, drawn at random by "
                                                                  "--seed (default 8)")
    p.add_argument("--index", type=option("index"), action="append",
                   help="with --data: take the image at this index instead (repeatable; default: -n at random)")
    p.add_argument("--size", type=option("size"), help="--data an image folder: centre-crop and resize to SIZE x SIZE (default: as in training)")
    p.add_argument("--keep-rows", type=option("keep_rows"), required=True, help="rows kept from the top of each image (fewer than the model's rows)")
    p.add_argument("--class", dest="class_", type=option("class"),
                   help="class-conditional model with --image: the class of the images (with --data: their own; default: none)")
    p.add_argument("--samples", type=option("completions"), default=4, help="completions per image (default 4)")
    p.add_argument("--seed", type=option("seed"), default=0, help="seed of the completions, and of the images "
                                                                 "drawn from --data (default 0)")
    p.add_argument("--temperature", type=option("temperature"), default=1.0, help="softmax temperature (default 1.0)")
    p.add_argument("--out", default="completions.png", help="PNG grid (default completions.png)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="cpu or gpu (default cpu)")
    p.set_defaults(handler=cmd_complete)


def _read_image_file(path, config):
    """An image file as (H, W, C) labels at the model's levels."""
    from . import data, datasets

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such image file" if not Path(path).exists() else
                                f"{path}: is a folder, expected an image file")
    pixels = datasets.read_image(path, channels=config.channels)
    if pixels.shape[:2] != (config.height, config.width):
        raise ValueError(f"{path}: expected a {config.height}x{config.width} image for this model, "
                         f"got {pixels.shape[0]}x{pixels.shape[1]}")
    return data.quantize(pixels / 255.0, config.levels)


def _chosen_images(count, args):
    """The indices of the images ``complete`` takes from --data: those --index names, in
    that order, or -n drawn at random by --seed (the files are often in class order, so
    the first n would all be one class)."""
    if args.index:
        wrong = [i for i in args.index if i >= count]
        if wrong:
            raise UsageError(f"--index: expected indices from 0 to {count - 1} ({args.data} holds {count} images), "
                             f"got {wrong}")
        return np.array(args.index)
    return np.random.default_rng(args.seed).choice(count, size=min(args.n, count), replace=False)


def cmd_complete(args):
    from dataclasses import replace

    from .checkpoint import load_model
    from .sampling import complete
    from .rundata import run_labels
    from .settings import run_settings
    from .viz import completion_grid, save_png

    check_output(args.out, [args.checkpoint, args.data, *(args.image or ())])
    model, _, state = load_model(args.checkpoint, device=args.device)
    cfg = model.config
    if not args.keep_rows < cfg.height:
        raise UsageError(f"--keep-rows: expected an int from 1 to {cfg.height - 1} for this {cfg.height}-row model, "
                         f"got {args.keep_rows}")
    if args.image:
        originals = np.stack([_read_image_file(path, cfg) for path in args.image])
        if cfg.classes and args.class_ is None:
            raise ValueError("--class: this model is class-conditional; say which class the --image files show")
        classes = None if args.class_ is None else np.full(len(originals), args.class_)
    else:
        trained = run_settings(args.checkpoint, state, model)
        settings = replace(trained, data_dir=args.data_dir or trained.data_dir, size=args.size or trained.size)
        labels, classes = run_labels(args.data, settings, model, args.checkpoint)
        chosen = _chosen_images(len(labels), args)
        originals = labels[chosen]
        classes = None if classes is None else classes[chosen]  # completed as their true class
    completed = complete(model, originals, args.keep_rows, args.samples, seed=args.seed,
                         temperature=args.temperature, progress=True, classes=classes)
    out = save_png(args.out, completion_grid(originals, completed, args.keep_rows, cfg.levels))
    print(f"wrote {out}: {len(originals)} images, top {args.keep_rows} of {cfg.height} rows kept; each row shows "
          f"the kept rows, {args.samples} completions and the original")
    return 0


def show_parser(sub):
    p = sub.add_parser("show", help="pictures that teach: the masks, the receptive field, the learning curve")
    what = p.add_subparsers(dest="what", required=True)
    m = what.add_parser("masks", help="mask A and B kernels for each colour pair")
    m.add_argument("--kernel", type=option("kernel"), default=5, help="kernel size, odd (default 5)")
    m.add_argument("--channels", type=int, choices=[1, 3], default=3, help="colours: 1 or 3 (default 3)")
    m.add_argument("--out", default="masks.png", help="PNG file (default masks.png)")
    f = what.add_parser("field", help="which inputs influence one output, from the backward pass")
    add_model_arguments(f, required=False)
    f.add_argument("--arch", choices=ARCHS, default="pixelcnn",
                   help="fresh model: the architecture (default pixelcnn; gated has no blind spot)")
    f.add_argument("--channels", type=int, choices=[1, 3], default=1, help="fresh model: colours (default 1)")
    f.add_argument("--size", type=option("size"), default=28, help="fresh model: image size (default 28)")
    f.add_argument("--blocks", type=option("blocks"), default=8,
                   help="fresh model: residual blocks or gated layers after the first (default 8, as train's)")
    f.add_argument("--filters", type=option("filters"), default=32, help="fresh model: filters (default 32)")
    f.add_argument("--row", type=option("position"), help="the output's row, below the model's height (default: the middle)")
    f.add_argument("--col", type=option("position"), help="the output's column, below the model's width (default: the middle)")
    f.add_argument("--channel", type=option("channel"), default=0, help="the output's colour, 0 = R or grey "
                                                                       "(default 0)")
    f.add_argument("--out", default="field.png", help="PNG file (default field.png)")
    c = what.add_parser("curve", help="the learning curve of a run (also written by train)")
    c.add_argument("--run", required=True, help="a run folder (or its checkpoint.npz) with metrics.jsonl")
    c.add_argument("--out", help="PNG file (default: <run>/learning_curve.png)")
    p.set_defaults(handler=cmd_show)


def cmd_show(args):
    from . import viz

    if args.what != "curve":
        check_output(args.out, [getattr(args, "checkpoint", None)])
    if args.what == "masks":
        out = viz.save_png(args.out, viz.mask_figure(args.kernel, args.channels))
        print(f"wrote {out}: mask A and B, {args.kernel}x{args.kernel}, {args.channels} colour(s)")
    elif args.what == "field":
        from .checkpoint import load_model
        from .model import PixelCNNConfig, build_model

        if args.checkpoint:
            model = load_model(args.checkpoint)[0]
        else:
            filters = args.filters if args.arch == "pixelcnn" or args.channels == 1 else 3 * -(-args.filters // 3)
            config = PixelCNNConfig(height=args.size, width=args.size, channels=args.channels, levels=4,
                                    filters=filters, blocks=args.blocks, arch=args.arch)
            model = build_model(config, seed=0, dtype="float64")
        cfg = model.config
        for flag, value, count in (("--row", args.row, cfg.height), ("--col", args.col, cfg.width),
                                   ("--channel", args.channel, cfg.channels)):
            if value is not None and value >= count:
                raise UsageError(f"{flag}: expected an int from 0 to {count - 1} for this model's "
                                 f"{cfg.height}x{cfg.width}x{cfg.channels} images, got {value}")
        influence, target = viz.receptive_field(model, args.row, args.col, args.channel)
        out = viz.save_png(args.out, viz.field_figure(influence, target))
        print(f"wrote {out}: {int((influence > 0).sum())} input positions influence the output at {target}")
    else:
        from .runfolder import read_metrics

        run = Path(args.run)
        run = run.parent if run.is_file() else run  # a checkpoint.npz names its run folder
        if not (run / "metrics.jsonl").is_file():
            what = "no such run folder" if not run.exists() else "no metrics.jsonl in it (no evaluation yet?)"
            raise FileNotFoundError(f"{args.run}: {what}; expected a run folder written by minipixel train")
        rows = read_metrics(run / "metrics.jsonl")
        out = check_output(args.out or run / "learning_curve.png", run_file=args.out is None)
        out = viz.save_png(out, viz.learning_curve(rows))
        print(f"wrote {out}")
    return 0
