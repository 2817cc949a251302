"""Training: the step, the loop, evaluation, checkpoints and the run folder.

One training step is four lines (``train_step``; it also stops on a NaN loss):

    logits = model.forward(inputs)                       # (B, H, W, C, levels)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    model.backward(dlogits)                              # fills model.gradients()
    optimizer.step(model.gradients())                    # updates model.parameters()

(on the CPU the first three lines run once per core, each on its part of the
batch: see ``parallel``), and the loop (``train``) reads: for each batch, step; at each evaluation
point (the end of every epoch, and the last step), evaluate, write the
metrics and the checkpoint; at the end, draw samples. A ``Run`` holds what
the loop needs: the model, the optimizer, the data, the step and the folder.

A run writes into its folder (``runs/<name>/`` by default):

    checkpoint.npz   model, Adam state (and the Polyak average with --ema), step,
                     settings (written atomically)
    best.npz         the same, at the lowest validation NLL so far (with --ema,
                     its weights are the average that was evaluated)
    metrics.jsonl    one JSON line per evaluation: step, epoch, train and
                     validation NLL in nats per image, validation bits/dim,
                     the learning rate, and the training seconds so far
    samples.png      a grid of samples from the final model
    learning_curve.png  train and validation NLL by epoch (redrawn at every evaluation)

Resuming: the order of the examples in epoch e is a pure function of
(seed, e) (``data.epoch_permutation``) and the dropout masks of step t one of
(seed, t) (``dropout_keys``), so a checkpoint's (seed, step) is the whole random
state of training; ``--resume`` continues with exactly the
batches, and therefore exactly the losses, that an uninterrupted run would see.
"""
import contextlib
import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import checks, data, datasets, distributed, parallel
from .checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from .files import FolderLock, atomic_write
from .losses import bits_per_dim
from .layers import ResidualBlock
from .model import ARCHS, PixelCNNConfig, build_model
from .optim import Adam, Average
from .sampling import sample
from .viz import default_scale, image_grid, learning_curve, save_png


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


@dataclass
class TrainSettings:
    """Every choice of a training run; saved in its checkpoint. Defaults are the
    run that ``minipixel train`` does with no arguments."""

    data: str = "mnist5k:train"  # a file path or NAME:SPLIT (see datasets.load)
    valid: str = None  # None: the dataset's valid split if it has one, else a 10% hold-out
    data_dir: str = None  # where named datasets live (default: $MINIPIXEL_DATA or data/)
    size: int = None  # image folders: centre-crop and resize every image to size x size
    levels: int = 2
    binarize: str = "threshold"  # for levels=2 from grey data: "threshold" (0.5) or "sample"
    arch: str = "pixelcnn"  # "pixelcnn" (masked, the first paper) or "gated" (two stacks, no blind spot)
    conditional: bool = False  # gated only: condition on the data's class labels
    filters: int = 64
    blocks: int = 8  # residual blocks (pixelcnn) or gated layers after the first (gated)
    block: str = "half"
    batch: int = 16
    epochs: int = 9
    steps: int = None  # total optimizer steps; overrides epochs when given
    minutes: float = None  # also stop after this many minutes of training (counted across resumes)
    lr: float = 1e-3
    lr_decay: float = 0.9998  # lr is multiplied by this every step
    ema: float = 0.0  # Polyak averaging: evaluate, keep best.npz and draw with a moving average of the weights
    #                   of this decay a step (optim.Average; e.g. 0.9995); 0: the weights as they are
    dropout: float = 0.0  # gated only: training drops each gated unit of the horizontal stacks with this probability
    seed: int = 0  # weights, data order, hold-out split, stochastic binarization
    device: str = "cpu"
    eval_batch: int = None  # images per evaluation forward pass (None: the training batch; memory stays below a step's)
    eval_every: int = None  # evaluate (and checkpoint) every this many steps (None: at the end of every epoch)
    save_every: int = None  # also checkpoint every this many steps (None: only at evaluations)
    samples: int = 64  # images in samples.png at the end
    temperature: float = 1.0

    CHOICES = {"binarize": ("threshold", "sample"), "arch": ARCHS, "block": ResidualBlock.WIDTHS}

    def validate(self):
        """Check every numeric setting against its range (``checks.RANGES``): a
        ValueError naming the setting, the value and the range."""
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in checks.RANGES and (value is not None or field.default is not None):  # None: not given
                checks.check(field.name, value)
            if field.name in self.CHOICES and value not in self.CHOICES[field.name]:
                raise ValueError(f"{field.name}: expected one of {self.CHOICES[field.name]}, got {value!r}")
        if self.dropout and self.arch != "gated":
            raise ValueError(f"dropout: only the gated architecture has dropout layers (--arch gated), got "
                             f"--dropout {self.dropout:g} with --arch {self.arch}")
        return self

    @classmethod
    def from_dict(cls, values):
        """Settings from a dict (as saved in a checkpoint): unknown keys are ignored,
        and every known one must have its field's type (None where the default is None)."""
        given = {}
        for field in fields(cls):
            if field.name not in values:
                continue
            value = values[field.name]
            allowed = (int, float) if field.type is float else field.type
            if not (value is None and field.default is None) and (
                    not isinstance(value, allowed) or isinstance(value, bool) and field.type is not bool):
                raise ValueError(f"settings.{field.name}: expected {field.type.__name__}, got {value!r}")
            given[field.name] = value
        return cls(**given)


def _checked_settings(saved, path):
    """TrainSettings from a checkpoint's saved dict, checked; a CheckpointError naming ``path`` if they are not valid."""
    try:
        return TrainSettings.from_dict(saved).validate()
    except ValueError as err:
        raise CheckpointError(f"{path}: bad training settings in the checkpoint: {err}") from err


def saved_run_settings(path):
    """The TrainSettings saved in the checkpoint ``path`` (a file or run folder),
    checked (types, ranges and choices); a CheckpointError naming the file if they are not valid."""
    return _checked_settings(read_checkpoint(path)[3].get("settings", {}), path)


def dropout_keys(seed, step, positions):
    """The dropout key of each image of a step's batch, (B, 3) ints: (seed, step, the
    image's place in the global batch); see ``layers.Dropout``."""
    positions = np.asarray(positions, dtype=np.int64)
    return np.stack([np.full_like(positions, seed), np.full_like(positions, step), positions], axis=1)


def train_step(model, optimizer, inputs, labels, classes=None, ranks=None, batch=None, dropout=None):
    """One step of gradient descent on one batch; returns its loss in nats per image.

    inputs: (B, H, W, C) floats in [0, 1]; labels: (B, H, W, C) ints, on the model's device;
    classes: (B,) ints, each image's class, for a class-conditional model.
    ranks, batch: with MPI (``distributed``), the ranks, and the global batch of
    which these B images are this rank's slice.
    dropout: None, or (rate, keys): the dropout rate and the images' keys, (B, 3) ints
    (``dropout_keys``), for a model with dropout layers.
    """
    # logits = model.forward(inputs, classes); loss, dlogits = softmax_cross_entropy(logits, labels);
    # model.backward(dlogits): on the CPU, each core does that for its part of the batch.
    loss = parallel.loss_and_gradients(model, inputs, labels, classes, batch, dropout)  # fills model.gradients()
    if ranks is not None and ranks.size > 1:  # every rank did its slice: the ranks meet here
        ranks.sum(model.packed[1])  # all the gradients, one flat array
        loss = ranks.agree([loss])[0]
    if not math.isfinite(loss):  # before the update: the parameters stay as they were
        raise TrainingError(f"the loss became {loss}")
    optimizer.step(model.gradients())  # updates model.parameters() in place
    return loss


def run_labels(images, settings):
    """An ImageSet as ``(labels, classes)``, exactly as a run with ``settings`` sees
    its data (its levels, and at 2 levels its binarization mode and seed).
    classes: (N,) ints, or None when the file has no class labels (or the run does not use them)."""
    labels = data.to_labels(images, settings.levels, binarize_mode=settings.binarize, seed=settings.seed)
    if not settings.conditional:
        return labels, None
    if images.classes is None:
        raise ValueError(f"{images.source}: --conditional needs class labels, and this data has none (binarized "
                         "MNIST .amat files and .npz files without 'classes' carry no labels; MNIST and "
                         "Fashion-MNIST IDX files, CIFAR-10, mnist5k and image folders with a sub-folder per class do)")
    return labels, images.classes


def load_labels(spec, settings, progress=True):
    """The images of ``spec`` (a file or NAME:SPLIT) as ``(labels, classes)``, as a
    run with ``settings`` sees them: its data folder, image size and ``run_labels``.
    Training, ``minipixel eval`` and ``minipixel complete`` all read data through this."""
    images = datasets.load(spec, data_dir=settings.data_dir, size=settings.size, progress=progress)
    return run_labels(images, settings)


def load_labels_for(model, spec, settings, checkpoint, progress=True):
    """The images of ``spec`` as ``(labels, classes)`` for evaluating or completing
    with ``model`` (read from ``checkpoint``), as its run saw its data (``settings``).
    Data that does not fit the model is refused with one line that says how: its
    size or channels differ, or it is binary and the model has more levels."""
    images = datasets.load(spec, data_dir=settings.data_dir, size=settings.size, progress=progress)
    cfg = model.config
    H, W, C = images.images.shape[1:]
    if (H, W, C) != (cfg.height, cfg.width, cfg.channels):
        kind = {1: "grey", 3: "RGB"}
        hint = ""
        if C != cfg.channels:
            hint = f"; the model draws {kind[cfg.channels]} images and needs {kind[cfg.channels]} data"
        elif cfg.height == cfg.width:
            hint = f"; for an image folder, --size {cfg.height} crops and resizes every image to fit"
        raise ValueError(f"{spec}: the images are {H}x{W} {kind.get(C, f'{C}-channel')}, but the checkpoint {checkpoint} was "
                         f"trained on {cfg.height}x{cfg.width} {kind[cfg.channels]} images{hint}")
    if images.max_value == 1 and cfg.levels > 2:
        raise ValueError(f"{spec}: the images are binary (0/1), but the checkpoint {checkpoint} has {cfg.levels} levels per "
                         "sub-pixel (it was trained on data with more values); its likelihood of binary data "
                         "would mean nothing")
    return run_labels(images, settings)


def saved_settings(model, state, path):
    """The TrainSettings saved in the state of the checkpoint ``path`` (defaults for
    a checkpoint saved without them), with the model's own levels and conditioning."""
    return replace(_checked_settings(state.get("settings", {}), path), levels=model.config.levels,
                   conditional=bool(model.config.classes))


def prepare_data(settings, log=print, progress=True):
    """The train and validation data of a run: two ``(labels, classes)`` pairs."""
    valid_spec = settings.valid
    if valid_spec is None and ":" in settings.data and settings.data.endswith(":train"):
        candidate = settings.data[: -len("train")] + "valid"
        if datasets.has_split(candidate):
            valid_spec = candidate
    if valid_spec is not None:
        train, valid = (load_labels(spec, settings, progress) for spec in (settings.data, valid_spec))
        where = valid_spec
    else:
        images = datasets.load(settings.data, data_dir=settings.data_dir, size=settings.size, progress=progress)
        train, valid = (run_labels(part, settings) for part in data.split_holdout(images, 0.1, settings.seed))
        where = f"a 10% hold-out of {settings.data} (seed {settings.seed})"
    shape, valid_shape = train[0].shape, valid[0].shape
    if valid_shape[0] == 0:
        raise ValueError(f"validation data: {where} holds no images; a run needs at least one to evaluate on")
    if shape[1:] != valid_shape[1:]:
        raise ValueError(f"train images are {shape[1:]} but validation images are {valid_shape[1:]}")
    classes = "" if train[1] is None else f", {int(train[1].max()) + 1} classes"
    log(f"data: {shape[0]} training images from {settings.data}, {valid_shape[0]} validation images from {where}; "
        f"{shape[1]}x{shape[2]}x{shape[3]}, {settings.levels} levels{classes}")
    return train, valid


def to_device(model, labels):
    """Host uint8 labels -> (network inputs, labels) on the model's device."""
    xp = model.xp
    labels = xp.asarray(labels)
    return data.labels_to_inputs(labels, model.config.levels, model.dtype, xp), labels


def evaluate(model, labels, batch_size=64, progress=False, classes=None):
    """Mean NLL of ``labels`` (N, H, W, C) under ``model``: nats per image and bits/dim.
    classes: (N,) ints, the true class of each image, for a class-conditional model."""
    if labels.ndim != 4 or labels.shape[3] != model.config.channels:
        raise ValueError(
            f"evaluation data: expected images (N, H, W, {model.config.channels}) for this model, got {labels.shape}"
        )
    if int(labels.max()) >= model.config.levels:
        raise ValueError(f"evaluation data has label {int(labels.max())}, but the model has {model.config.levels} levels")
    if model.xp is np:
        checks.check_memory(checks.inference_bytes(model.config, min(batch_size, len(labels))),
                            f"evaluating at batch {batch_size}")
    total = 0.0
    for start in tqdm(range(0, len(labels), batch_size), desc="evaluating", leave=False, disable=not progress):
        x, y = to_device(model, labels[start : start + batch_size])
        given = None if classes is None else classes[start : start + batch_size]
        total += float(parallel.nll(model, x, y, given).sum())  # forward without caches, parts in parallel
    nll = total / len(labels)
    dims = int(np.prod(labels.shape[1:]))
    return {"nll_nats": nll, "bits_per_dim": bits_per_dim(nll, dims), "images": int(len(labels))}


@contextlib.contextmanager
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


STEPS_HEADER = "step,loss_nats,lr,seconds\n"


def _trim_steps(path, step):
    """Keep the steps.csv rows up to ``step`` (and drop a line a kill cut short)."""
    if not path.exists():
        return
    kept = [line + "\n" for line in path.read_text().splitlines()[1:]
            if line.count(",") == 3 and line.split(",", 1)[0].isdigit() and int(line.split(",", 1)[0]) <= step]
    with atomic_write(path, "w") as f:
        f.write(STEPS_HEADER + "".join(kept))


# What a resume may change (the CLI's --epochs, --steps, --minutes, --device, --lr,
# --lr-decay, --ema, --dropout, --eval-every, --save-every); everything else is the run's own.
RESUME_FIELDS = ("epochs", "steps", "minutes", "device", "lr", "lr_decay", "ema", "dropout", "eval_every", "save_every")


class Run:
    """A training run: the model, the optimizer, the data, the step, and the
    run folder it writes (``checkpoint.npz``, ``metrics.jsonl``, the PNGs).

    settings: TrainSettings, checked first (``TrainSettings.validate``). When
              resuming: None finishes the run with its own saved settings; given,
              only its RESUME_FIELDS (schedule, device, learning rate, averaging,
              dropout, evaluation and checkpoint intervals) are used, to extend or change
              the run; everything else comes from the checkpoint
    out:      the run folder (default runs/<dataset>-<time>; when resuming, the checkpoint's folder)
    resume:   a run folder or checkpoint file to continue from
    """

    def __init__(self, settings, out=None, resume=None, log=print, progress=True):
        self.log, self.progress = log, progress
        self.step, self.earlier_seconds = 0, 0.0  # earlier: training time before this resume
        self.losses, self.best = [], math.inf  # training losses since the last evaluation; best validation NLL
        if settings is not None:
            settings.validate()  # before any data is read or memory allocated
        if resume is not None:
            resume = Path(resume)
            ckpt_path = resume / "checkpoint.npz" if resume.is_dir() else resume
            saved = saved_run_settings(ckpt_path)
            self.model, optim_state, state = load_model(ckpt_path, device=(settings or saved).device)
            # settings=None continues the run's own schedule; given settings change what RESUME_FIELDS name.
            new_lr = settings.lr if settings is not None and settings.lr != saved.lr else None
            settings = saved if settings is None else replace(
                saved, **{name: getattr(settings, name) for name in RESUME_FIELDS})
            self.folder = Path(out) if out else ckpt_path.parent
            self.step, self.earlier_seconds = int(state.get("step", 0)), float(state.get("seconds", 0.0))
            self.losses = [float(v) for v in state.get("pending_losses", [])]
            best = state.get("best_valid_nll")  # None: saved before the first evaluation
            self.best = math.inf if best is None else float(best)
            log(f"resuming {ckpt_path} at step {self.step}")
        else:
            self.folder = Path(out) if out else default_run_dir(settings.data)
        self.settings = settings
        self.ranks = distributed.ranks(settings.device)
        if self.ranks.rank:  # only rank 0 prints and writes
            self.log = log = lambda *args: None
            self.progress = progress = False
        (self.train_labels, self.train_classes), (self.valid_labels, self.valid_classes) = prepare_data(
            settings, log, progress)
        N, H, W, C = self.train_labels.shape
        if resume is None:
            classes = 0 if self.train_classes is None else int(max(self.train_classes.max(),
                                                                   self.valid_classes.max())) + 1
            config = PixelCNNConfig(height=H, width=W, channels=C, levels=settings.levels, filters=settings.filters,
                                    blocks=settings.blocks, block=settings.block, arch=settings.arch,
                                    classes=classes).validate()
            if settings.device == "cpu":  # refuse before building what would not fit
                checks.check_memory(checks.training_bytes(config, settings.batch),
                                    f"training this model ({settings.filters} filters, {settings.blocks} blocks, "
                                    f"{H}x{W}x{C}) at batch {settings.batch}")
            self.model = build_model(config, seed=settings.seed, device=settings.device)
        elif (self.model.config.height, self.model.config.width, self.model.config.channels) != (H, W, C):
            cfg = self.model.config
            raise ValueError(f"{ckpt_path}: the model was trained on {cfg.height}x{cfg.width}x{cfg.channels} "
                             f"images, the data is {H}x{W}x{C}")
        self.optimizer = Adam(self.model.parameters(), lr=settings.lr, decay=settings.lr_decay, flat=self.model.packed)
        if resume is not None and optim_state:
            self.optimizer.load_state_dict(optim_state)
        if resume is not None and new_lr is not None:
            # A new --lr on resume is the rate of the next step (then decaying per step as before):
            # step t + 1 uses lr * lr_decay**t, so the base rate is set to match.
            self.optimizer.lr = new_lr / settings.lr_decay ** self.optimizer.t
            self.settings = settings = replace(settings, lr=self.optimizer.lr)
            log(f"learning rate {new_lr:g} from step {self.step + 1} on (decaying by {settings.lr_decay} a step)")
        self.average = None  # optim.Average, with --ema
        if settings.ema:
            self.average = Average(self.model.parameters(), settings.ema, flat=self.model.packed)
            if resume is not None and "average_t" in optim_state:
                self.average.load_state_dict(optim_state)
            elif resume is not None:  # switched on at this resume
                log(f"Polyak averaging (decay {settings.ema:g}) from step {self.step + 1} on, starting at the "
                    f"current weights")
        elif resume is not None and "average_t" in optim_state:
            log("Polyak averaging switched off (--ema 0): evaluating the weights as they are from now on")
        if resume is not None and settings.dropout != saved.dropout:
            log(f"dropout {settings.dropout:g} from step {self.step + 1} on (was {saved.dropout:g})")
        self.steps_per_epoch = math.ceil(N / settings.batch)
        self.total = settings.steps if settings.steps is not None else settings.epochs * self.steps_per_epoch
        self.checkpoint_path, self.metrics_path = self.folder / "checkpoint.npz", self.folder / "metrics.jsonl"
        self.best_path, self.steps_path = self.folder / "best.npz", self.folder / "steps.csv"
        self.lock = FolderLock(self.folder)
        if self.ranks.size > 1:
            self.ranks.check_same(self.model.packed[0], "initial parameters")
        if self.ranks.rank == 0:
            self.lock.acquire()  # before anything is written: one writer per folder
            for stale in self.folder.glob(".*.tmp"):  # half-written files of a killed run (files.atomic_write)
                stale.unlink()
            _trim_metrics(self.metrics_path, self.step)
            _trim_steps(self.steps_path, self.step)
        self.time_up = False  # the --minutes budget is spent (rank 0's clock decides)
        self.started = time.time()
        self._order, self._order_epoch = None, None
        self.dropout = None  # next_batch: (rate, keys) of the step's images under --dropout, else None
        # Masked taps of the weights are kept at zero; biases (and the per-class biases V of a
        # conditional model) all count, even while zero.
        live = sum(int(p.size) if name.endswith((".b", ".V")) else int(np.count_nonzero(p))
                   for name, p in self.model.parameters().items())
        log(f"model: {settings.arch}, {live} live parameters, {settings.filters} filters, "
            f"{settings.blocks} block{'s' if settings.blocks != 1 else ''}; "
            f"{self.total} steps of batch {settings.batch} ({self.steps_per_epoch} per epoch); run folder {self.folder}")

    def seconds(self):
        """Training time of the run, across resumes."""
        return self.earlier_seconds + time.time() - self.started

    def epoch(self):
        return self.step / self.steps_per_epoch

    def next_batch(self):
        """The batch of the current step, on the model's device: (inputs, labels, classes or None).

        The order of epoch e is a pure function of (seed, e), so the batch of a
        step is the same whether or not the run was stopped and resumed."""
        epoch, batch_in_epoch = divmod(self.step, self.steps_per_epoch)
        if self._order_epoch != epoch:
            self._order = data.epoch_permutation(len(self.train_labels), self.settings.seed, epoch)
            self._order_epoch = epoch
        B = self.settings.batch
        idx = self._order[batch_in_epoch * B : (batch_in_epoch + 1) * B]
        self.batch_size = len(idx)  # the global batch (the last of an epoch may be smaller)
        mine = parallel.split(len(idx), self.ranks.size)[self.ranks.rank]  # this rank's slice
        idx = idx[mine]
        inputs, labels = to_device(self.model, self.train_labels[idx])
        self.dropout = None
        if self.settings.dropout:
            keys = dropout_keys(self.settings.seed, self.step, range(mine.start, mine.stop))
            self.dropout = (self.settings.dropout, keys)
        return inputs, labels, None if self.train_classes is None else self.train_classes[idx]

    def out_of_time(self):
        """True once the run has trained for ``settings.minutes`` (if given)."""
        return self.settings.minutes is not None and self.seconds() >= 60 * self.settings.minutes

    def at_evaluation_point(self):
        every = self.settings.eval_every or self.steps_per_epoch
        return self.step % every == 0 or self.step == self.total or self.time_up

    def at_save_point(self):
        return bool(self.settings.save_every) and self.step % self.settings.save_every == 0

    def log_step(self, loss):
        """Keep ``loss`` for the next evaluation's training average and append it to steps.csv."""
        self.losses.append(loss)
        if self.ranks.rank:
            return
        new = not self.steps_path.exists()
        with open(self.steps_path, "a") as f:
            f.write((STEPS_HEADER if new else "") +
                    f"{self.step},{loss:.6f},{self.optimizer.current_lr():.6g},{self.seconds():.2f}\n")

    def evaluate(self):
        """Evaluate on the validation data; append a row to metrics.jsonl, redraw the learning
        curve; returns the row. The row's train_nll_nats is the mean loss of the steps since
        the previous evaluation, each measured on its batch as it was learned."""
        result = self.evaluate_split()
        row = {"step": self.step, "epoch": round(self.epoch(), 4), "train_nll_nats": float(np.mean(self.losses)),
               "valid_nll_nats": result["nll_nats"], "valid_bits_per_dim": result["bits_per_dim"],
               "lr": self.optimizer.current_lr(), "seconds": round(self.seconds(), 2)}
        if self.ranks.rank == 0:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            save_png(self.folder / "learning_curve.png", learning_curve(read_metrics(self.metrics_path)))
        self.losses = []
        return row

    def averaged(self):
        """A ``with`` context in which the model holds the Polyak average of its weights
        (with --ema; otherwise it changes nothing)."""
        return self.average.swapped_in() if self.average is not None else contextlib.nullcontext()

    def evaluate_split(self):
        """``evaluate`` on the validation data, with the averaged weights under --ema; with MPI,
        each rank a slice, the NLLs summed."""
        part = parallel.split(len(self.valid_labels), self.ranks.size)[self.ranks.rank]
        classes = None if self.valid_classes is None else self.valid_classes[part]
        result = {"nll_nats": 0.0, "images": 0}  # more ranks than validation images: nothing here
        if part.stop > part.start:
            with self.averaged():
                result = evaluate(self.model, self.valid_labels[part], self.settings.eval_batch or self.settings.batch,
                                  classes=classes)
        if self.ranks.size > 1:
            images = len(self.valid_labels)
            nll = self.ranks.agree([result["nll_nats"] * result["images"]])[0] / images
            dims = int(np.prod(self.valid_labels.shape[1:]))
            result = {"nll_nats": nll, "bits_per_dim": bits_per_dim(nll, dims), "images": images}
        return result

    def save(self, path=None):
        """Write the checkpoint (atomically): model, Adam state, step, settings, the training
        losses since the last evaluation and the best validation NLL so far."""
        if self.ranks.rank:
            return
        state = {"step": self.step, "epoch": self.epoch(), "seed": self.settings.seed,
                 "settings": asdict(self.settings), "seconds": self.seconds(), "pending_losses": self.losses,
                 "best_valid_nll": None if math.isinf(self.best) else self.best}
        save_checkpoint(path or self.checkpoint_path, self.model, self.optimizer, state, average=self.average)

    def evaluate_and_save(self):
        """An evaluation point: evaluate, checkpoint, and keep best.npz if validation improved
        (with --ema, best.npz's weights are the average that was evaluated)."""
        row = self.evaluate()
        improved = row["valid_nll_nats"] < self.best
        if improved:
            self.best = row["valid_nll_nats"]
        self.save()
        if improved:
            with self.averaged():
                self.save(self.best_path)
        return row

    def draw(self):
        """samples.png: a grid of ``settings.samples`` images from the model (a
        class-conditional model: one row per class)."""
        if self.ranks.rank:
            return
        s, K = self.settings, self.model.config.classes
        per_row = max(1, s.samples // K) if K else None
        classes = np.repeat(np.arange(K), per_row) if K else None
        with self.averaged():
            images = sample(self.model, len(classes) if K else s.samples, seed=s.seed, temperature=s.temperature,
                            progress=self.progress, classes=classes)
        grid = image_grid(images, s.levels, ncols=per_row, scale=default_scale(images.shape[1]))
        save_png(self.folder / "samples.png", grid)


def train(settings=None, out=None, resume=None, progress=True, log=print, on_step=None):
    """Train a model; returns the run folder (see ``Run`` for the arguments).

    on_step: optional function called as on_step(step, loss) after every step
    """
    settings = settings if settings is not None or resume is not None else TrainSettings()
    ranks = distributed.ranks((settings or saved_run_settings(resume)).device)
    if ranks.size == 1:
        return _train(settings, out, resume, progress, log, on_step)
    try:  # MPI: an error on one rank must stop them all, or the others wait for it for ever
        distributed.share_cores(settings or saved_run_settings(resume))
        return _train(settings, out, resume, progress, log, on_step)
    except KeyboardInterrupt:  # Ctrl-C: every rank agreed to stop after the same step
        raise
    except BaseException as err:
        print(f"minipixel train (rank {ranks.rank} of {ranks.size}): error: {err}", file=sys.stderr, flush=True)
        ranks.abort(1)
        raise


def _train(settings, out, resume, progress, log, on_step):
    run = Run(settings, out, resume, log, progress)
    log, progress = run.log, run.progress
    try:
        return _loop(run, progress, log, on_step)
    except OSError as err:  # a full disk, a folder gone: every file is written atomically, so nothing is half-written
        last = f"the last checkpoint {run.checkpoint_path} is intact" if run.checkpoint_path.exists() else \
            "no checkpoint was written yet"
        raise RuntimeError(f"could not write into the run folder ({err.strerror or err}: "
                           f"{err.filename or run.folder}); {last}; make room, then continue with --resume "
                           f"{run.folder}") from err
    finally:
        run.lock.release()


def _loop(run, progress, log, on_step):
    bar = tqdm(total=run.total, initial=run.step, desc="training", unit="step", disable=not progress,
               dynamic_ncols=True)
    with stop_requests() as stop:
        while run.step < run.total:
            inputs, labels, classes = run.next_batch()
            try:
                loss = train_step(run.model, run.optimizer, inputs, labels, classes, run.ranks, run.batch_size,
                                  run.dropout)
            except TrainingError as err:
                bar.close()
                last = run.checkpoint_path if run.checkpoint_path.exists() else "(none written yet)"
                raise TrainingError(f"{err} at step {run.step + 1}; stopping. The last good checkpoint is "
                                    f"{last}; try a lower --lr") from None
            run.step += 1
            if run.average is not None:
                run.average.update()
            run.log_step(loss)
            if on_step is not None:
                on_step(run.step, loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.2f} nats/img", epoch=f"{run.epoch():.2f}")
            run.time_up, stopping = run.out_of_time(), bool(stop)
            if run.ranks.size > 1:  # every rank stops after the same step: rank 0's clock, anyone's Ctrl-C
                run.time_up, stopping = (bool(v) for v in run.ranks.agree([0, run.time_up and run.ranks.rank == 0,
                                                                            stopping])[1:])
            if run.at_evaluation_point():
                row = run.evaluate_and_save()
                if run.ranks.rank == 0:
                    bar.write(f"step {run.step} epoch {row['epoch']:.2f}: train {row['train_nll_nats']:.2f}, "
                              f"valid {row['valid_nll_nats']:.2f} nats/image ({row['valid_bits_per_dim']:.4f} bits/dim)")
                if run.time_up:
                    log(f"stopped after {run.settings.minutes:g} minutes of training, at step {run.step}")
                    break
            elif run.at_save_point():
                run.save()
            if stopping:
                run.save()
                bar.close()
                log(f"interrupted at step {run.step}: checkpoint {run.checkpoint_path}; "
                    f"continue with --resume {run.folder}")
                if run.settings.samples > 0:
                    log(f"drawing {run.folder / 'samples.png'} from it (Ctrl-C again to skip; later: "
                        f"minipixel sample --checkpoint {run.folder})")
                    run.draw()
                raise KeyboardInterrupt
    bar.close()
    if run.settings.samples > 0:
        run.draw()
    log(f"done in {time.time() - run.started:.0f} s; run folder: {run.folder}")
    return run.folder
