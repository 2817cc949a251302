"""Training: the loop, evaluation, checkpoints and the run folder.

One training step is five lines (see ``train``):

    logits = model.forward(inputs)                       # (B, H, W, C, levels)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.backward(dlogits)                              # fills model.gradients()
    optimizer.step(model.gradients())                    # updates model.parameters()

A run writes into its folder (``runs/<name>/`` by default):

    checkpoint.npz   model, Adam state, step, settings (written atomically)
    metrics.jsonl    one JSON line per evaluation: step, epoch, train and
                     validation NLL in nats per image, validation bits/dim
    samples.png      a grid of samples from the final model
    learning_curve.png  train and validation NLL by epoch (redrawn at every evaluation)

Resuming: the order of the examples in epoch e is a pure function of
(seed, e) (``data.epoch_permutation``), so a checkpoint's (seed, step) is
the whole random state of training; ``--resume`` continues with exactly the
batches, and therefore exactly the losses, that an uninterrupted run would see.
"""
import json
import math
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import data
from .checkpoint import load_model, save_checkpoint
from .files import atomic_write
from .losses import bits_per_dim, nll_per_image, softmax_cross_entropy
from .model import PixelCNN, PixelCNNConfig
from .optim import Adam
from .sampling import sample
from .viz import default_scale, image_grid, learning_curve, save_png


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


@dataclass
class TrainSettings:
    """Every choice of a training run; saved in its checkpoint. Defaults are the
    run that ``minipixel train`` does with no arguments."""

    data: str = "mnist5k:train"  # a file path or NAME:SPLIT (see data.load)
    valid: str = None  # None: the dataset's valid split if it has one, else a 10% hold-out
    data_dir: str = None  # where named datasets live (default: $MINIPIXEL_DATA or data/)
    size: int = None  # image folders: centre-crop and resize every image to size x size
    levels: int = 2
    binarize: str = "threshold"  # for levels=2 from grey data: "threshold" (0.5) or "sample"
    filters: int = 64
    blocks: int = 8
    block: str = "half"
    batch: int = 16
    epochs: int = 9
    steps: int = None  # total optimizer steps; overrides epochs when given
    lr: float = 1e-3
    lr_decay: float = 0.9998  # lr is multiplied by this every step
    seed: int = 0  # weights, data order, hold-out split, stochastic binarization
    device: str = "cpu"
    eval_batch: int = 256
    samples: int = 64  # images in samples.png at the end
    temperature: float = 1.0

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def prepare_data(settings, log=print, progress=True):
    """The train and validation labels, and a description of where they came from."""
    images = data.load(settings.data, data_dir=settings.data_dir, size=settings.size, progress=progress)
    valid_spec = settings.valid
    if valid_spec is None and ":" in settings.data and settings.data.endswith(":train"):
        candidate = settings.data[: -len("train")] + "valid"
        if data.has_split(candidate):
            valid_spec = candidate
    if valid_spec is not None:
        train_images, valid_images = images, data.load(valid_spec, data_dir=settings.data_dir, size=settings.size,
                                                      progress=progress)
        where = valid_spec
    else:
        train_images, valid_images = data.split_holdout(images, fraction=0.1, seed=settings.seed)
        where = f"a 10% hold-out of {settings.data} (seed {settings.seed})"
    to_labels = lambda s: data.to_labels(s, settings.levels, binarize_mode=settings.binarize, seed=settings.seed)
    train, valid = to_labels(train_images), to_labels(valid_images)
    if train.shape[1:] != valid.shape[1:]:
        raise ValueError(f"train images are {train.shape[1:]} but validation images are {valid.shape[1:]}")
    log(f"data: {len(train)} training images from {settings.data}, {len(valid)} validation images from {where}; "
        f"{train.shape[1]}x{train.shape[2]}x{train.shape[3]}, {settings.levels} levels")
    return train, valid


def to_device(model, labels):
    """Host uint8 labels -> (network inputs, labels) on the model's device."""
    xp = model.xp
    labels = xp.asarray(labels)
    return data.labels_to_inputs(labels, model.config.levels, model.dtype, xp), labels


def evaluate(model, labels, batch_size=256, progress=False):
    """Mean NLL of ``labels`` (N, H, W, C) under ``model``: nats per image and bits/dim."""
    if labels.ndim != 4 or labels.shape[3] != model.config.channels:
        raise ValueError(
            f"evaluation data: expected images (N, H, W, {model.config.channels}) for this model, got {labels.shape}"
        )
    if int(labels.max()) >= model.config.levels:
        raise ValueError(f"evaluation data has label {int(labels.max())}, but the model has {model.config.levels} levels")
    total = 0.0
    for start in tqdm(range(0, len(labels), batch_size), desc="evaluating", leave=False, disable=not progress):
        x, y = to_device(model, labels[start : start + batch_size])
        total += float(nll_per_image(model.forward(x), y).sum())
    nll = total / len(labels)
    dims = int(np.prod(labels.shape[1:]))
    return {"nll_nats": nll, "bits_per_dim": bits_per_dim(nll, dims), "images": int(len(labels))}


@contextmanager
def stop_requests():
    """Turn Ctrl-C into a request that the loop honours between steps, so the
    checkpoint written on the way out is never from the middle of an update."""
    requested = []
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if requested:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        requested.append(True)

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not in the main thread: no handler, Ctrl-C behaves as usual
        pass
    try:
        yield requested
    finally:
        try:
            signal.signal(signal.SIGINT, previous)
        except ValueError:
            pass


def default_run_dir(spec):
    name = spec.replace(":", "-").replace("/", "_").split("_")[-1].split(".")[0] or "run"
    base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def read_metrics(path):
    """The rows of a metrics.jsonl file, as dicts."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _trim_metrics(path, step):
    """Keep the metrics rows up to ``step`` (a resumed run rewrites what came after)."""
    if not path.exists():
        return
    rows = [row for row in read_metrics(path) if row["step"] <= step]
    with atomic_write(path, "w") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))


def train(settings=None, out=None, resume=None, progress=True, log=print, on_step=None):
    """Train a model; returns the run folder.

    settings: TrainSettings (ignored when resuming, except epochs/steps/device,
              which the caller may change to extend a run)
    out:      the run folder (default runs/<dataset>-<time>)
    resume:   a run folder or checkpoint file to continue from
    on_step:  optional function called as on_step(step, loss) after every step
    """
    settings = settings or TrainSettings()
    if resume is not None:
        resume = Path(resume)
        ckpt_path = resume / "checkpoint.npz" if resume.is_dir() else resume
        model, optim_state, state = load_model(ckpt_path, device=settings.device)
        saved = TrainSettings.from_dict(state["settings"])
        saved.epochs, saved.steps, saved.device = settings.epochs, settings.steps, settings.device
        settings = saved
        run_dir = Path(out) if out else ckpt_path.parent
        step = int(state["step"])
        earlier = float(state.get("seconds", 0.0))  # training time before this resume
        log(f"resuming {ckpt_path} at step {step}")
    else:
        run_dir = Path(out) if out else default_run_dir(settings.data)
        step, earlier = 0, 0.0

    train_labels, valid_labels = prepare_data(settings, log, progress)
    N, H, W, C = train_labels.shape
    if resume is None:
        config = PixelCNNConfig(height=H, width=W, channels=C, levels=settings.levels, filters=settings.filters,
                                blocks=settings.blocks, block=settings.block)
        model = PixelCNN(config, seed=settings.seed, device=settings.device)
    elif (model.config.height, model.config.width, model.config.channels) != (H, W, C):
        raise ValueError(f"{ckpt_path}: the model was trained on {model.config.height}x{model.config.width}x"
                         f"{model.config.channels} images, the data is {H}x{W}x{C}")
    optimizer = Adam(model.parameters(), lr=settings.lr, decay=settings.lr_decay)
    if resume is not None and optim_state:
        optimizer.load_state_dict(optim_state)

    steps_per_epoch = math.ceil(N / settings.batch)
    total = settings.steps if settings.steps is not None else settings.epochs * steps_per_epoch
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt, metrics = run_dir / "checkpoint.npz", run_dir / "metrics.jsonl"
    _trim_metrics(metrics, step)
    # Masked taps of the weights are kept at zero; biases all count, even while zero.
    live = sum(int(p.size) if name.endswith(".b") else int(np.count_nonzero(p))
               for name, p in model.parameters().items())
    log(f"model: {live} live parameters, "
        f"{settings.filters} filters, {settings.blocks} blocks; {total} steps of batch {settings.batch} "
        f"({steps_per_epoch} per epoch); run folder {run_dir}")

    def checkpoint():
        state = {"step": step, "epoch": step / steps_per_epoch, "seed": settings.seed, "settings": asdict(settings),
                 "seconds": seconds()}
        save_checkpoint(ckpt, model, optimizer, state)

    losses, start_time, order_epoch = [], time.time(), None
    seconds = lambda: earlier + time.time() - start_time  # training time of the run, across resumes
    bar = tqdm(total=total, initial=step, desc="training", unit="step", disable=not progress, dynamic_ncols=True)
    with stop_requests() as stop:
        while step < total:
            epoch, batch_in_epoch = divmod(step, steps_per_epoch)
            if order_epoch != epoch:
                order, order_epoch = data.epoch_permutation(N, settings.seed, epoch), epoch
            idx = order[batch_in_epoch * settings.batch : (batch_in_epoch + 1) * settings.batch]
            x, y = to_device(model, train_labels[idx])

            logits = model.forward(x)
            loss, dlogits = softmax_cross_entropy(logits, y)
            if not math.isfinite(loss):
                bar.close()
                raise TrainingError(
                    f"the loss became {loss} at step {step + 1}; stopping. The last good checkpoint is "
                    f"{ckpt if ckpt.exists() else '(none written yet)'}; try a lower --lr"
                )
            model.backward(dlogits)
            optimizer.step(model.gradients())

            step += 1
            losses.append(loss)
            if on_step is not None:
                on_step(step, loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.2f} nats/img", epoch=f"{step / steps_per_epoch:.2f}")
            if step % steps_per_epoch == 0 or step == total:
                result = evaluate(model, valid_labels, settings.eval_batch)
                row = {"step": step, "epoch": round(step / steps_per_epoch, 4),
                       "train_nll_nats": float(np.mean(losses)), "valid_nll_nats": result["nll_nats"],
                       "valid_bits_per_dim": result["bits_per_dim"], "lr": optimizer.current_lr(),
                       "seconds": round(seconds(), 2)}
                with open(metrics, "a") as f:
                    f.write(json.dumps(row) + "\n")
                save_png(run_dir / "learning_curve.png", learning_curve(read_metrics(metrics)))
                bar.write(f"step {step} epoch {row['epoch']:.2f}: train {row['train_nll_nats']:.2f}, "
                          f"valid {row['valid_nll_nats']:.2f} nats/image ({row['valid_bits_per_dim']:.4f} bits/dim)")
                losses = []
                checkpoint()
            if stop:
                checkpoint()
                bar.close()
                log(f"interrupted at step {step}: checkpoint {ckpt}; continue with --resume {run_dir}")
                raise KeyboardInterrupt
    bar.close()

    if settings.samples > 0:
        images = sample(model, settings.samples, seed=settings.seed, temperature=settings.temperature,
                        progress=progress)
        save_png(run_dir / "samples.png", image_grid(images, settings.levels, scale=default_scale(H)))
    log(f"done in {time.time() - start_time:.0f} s; run folder: {run_dir}")
    return run_dir
