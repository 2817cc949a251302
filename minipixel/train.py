"""Training: the loop over a run's steps, and the ``Run`` that holds what it needs.

The loop (``train``) reads: for each batch, one step (``step.train_step``:
forward, loss, backward, the gradient sums, Adam); at each evaluation point (the
end of every epoch, and the last step), evaluate (``evaluate``), write the
metrics and the checkpoint; at the end, draw samples. A ``Run`` holds the model,
the optimizer, the data (``rundata``), the step, the settings (``settings``) and
the folder (``runfolder``).

A run writes into its folder (``runs/<name>/`` by default):

    checkpoint.npz   model, Adam state (and the Polyak average with --ema), step,
                     settings (written atomically)
    best.npz         the same, at the lowest validation NLL so far (with --ema,
                     its weights are the average that was evaluated)
    metrics.jsonl    one JSON line per evaluation: step, epoch, train and
                     validation NLL in nats per image, validation bits/dim,
                     the learning rate, and the training seconds so far
    steps.csv        one line per step: step, loss, learning rate, training seconds
    samples.png      a grid of samples from the final model
    learning_curve.png  train and validation NLL by epoch (redrawn at every evaluation)

Resuming: the order of the examples in epoch e is a pure function of
(seed, e) (``data.epoch_permutation``) and the dropout masks of step t one of
(seed, t) (``dropout_keys``), so a checkpoint's (seed, step) is the whole random
state of training; ``--resume`` continues with exactly the
batches, and therefore exactly the losses, that an uninterrupted run would see.
"""
import contextlib
import math
import shutil
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import data, distributed, memory, runfolder, threads
from .checkpoint import load_model, save_checkpoint
from .datasets.class_names import class_names
from .evaluate import evaluate, to_device
from .files import FolderLock
from .losses import bits_per_dim
from .model import PixelCNNConfig, build_model
from .optim import Adam, Average
from .rundata import prepare_data
from .sampling import sample
from .settings import RESUME_FIELDS, TrainSettings, run_settings
from .step import TrainingError, dropout_keys, train_step
from .stop import Stopped, stop_requests
from .viz import default_scale, image_grid, learning_curve, save_png


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
    overwrite: a new run (or a resume into another folder, ``out``) may replace a run
              that ``out`` holds; that run's files wait in ``out/replaced-run/`` until
              the new run writes its first checkpoint (default: refuse, FileExistsError)
    """

    def __init__(self, settings, out=None, resume=None, log=print, progress=True, overwrite=False):
        self.log, self.progress = log, progress
        self.step, self.earlier_seconds = 0, 0.0  # earlier: training time before this resume
        self.losses, self.best = [], math.inf  # training losses since the last evaluation; best validation NLL
        self.resumed_from = None  # the checkpoint file a resumed run continues
        self.lr_schedule = None  # a resumed run's (lr, lr_step), from its checkpoint
        if settings is not None and resume is None:
            settings.validate()  # before any data is read or memory allocated
        saved = optim_state = new_lr = None
        if resume is not None:
            settings, saved, optim_state, new_lr = self._resume(Path(resume), settings, out)
        else:
            self.folder = Path(out) if out else runfolder.default_run_dir(settings.data)
        # A run in the folder is replaced only when asked (a resume in its own folder continues it).
        self.replacing = self.resumed_from is None or self.folder.resolve() != self.resumed_from.parent.resolve()
        if self.replacing:
            runfolder.check_replaceable(self.folder, "a new run" if resume is None else "--resume with --out", overwrite)
        self.aside = None  # with --overwrite: where the replaced run waits, until our first checkpoint
        self.settings = settings
        self.ranks = distributed.ranks(settings.device)
        if self.ranks.rank:  # only rank 0 prints and writes
            self.log = lambda *args: None
            self.progress = False
        (self.train_labels, self.train_classes), (self.valid_labels, self.valid_classes) = prepare_data(
            settings, self.log, self.progress)
        self._build_model()
        self._build_optimizer(saved, optim_state, new_lr)
        settings = self.settings
        self.steps_per_epoch = math.ceil(len(self.train_labels) / settings.batch)
        self.total = settings.steps if settings.steps is not None else settings.epochs * self.steps_per_epoch
        self.checkpoint_path, self.metrics_path = self.folder / "checkpoint.npz", self.folder / "metrics.jsonl"
        self.best_path, self.steps_path = self.folder / "best.npz", self.folder / "steps.csv"
        self.lock = FolderLock(self.folder)
        if self.ranks.size > 1:
            self.ranks.check_same(self.model.packed[0], "initial parameters")
        if self.ranks.rank == 0:
            self.lock.acquire()  # before anything is written: one writer per folder
            try:
                if self.replacing and overwrite:
                    self.aside = runfolder.put_aside(self.folder)
                    if self.aside is not None:
                        self.log(f"--overwrite: the run that was in {self.folder} waits in {self.aside} until "
                                 f"this run's first checkpoint")
                runfolder.open_folder(self.folder, self.step)
            except BaseException:  # a full disk while trimming the records: the folder is free again
                self.lock.release()
                raise
        self.time_up = False  # the --minutes budget is spent (rank 0's clock decides)
        self.started = time.time()
        self._order, self._order_epoch = None, None
        self.dropout = None  # next_batch: (rate, keys) of the step's images under --dropout, else None
        # Masked taps of the weights are kept at zero; biases (and the per-class biases V of a
        # conditional model) all count, even while zero.
        live = sum(int(p.size) if name.endswith((".b", ".V")) else int(np.count_nonzero(p))
                   for name, p in self.model.parameters().items())
        self.log(f"model: {settings.arch}, {live} live parameters, {settings.filters} filters, "
                 f"{settings.blocks} block{'s' if settings.blocks != 1 else ''}; "
                 f"{self.total} steps of batch {settings.batch} ({self.steps_per_epoch} per epoch); "
                 f"run folder {self.folder}")

    def _resume(self, resume, settings, out):
        """Load the model and the run's state from the checkpoint of ``resume`` (a run
        folder or a checkpoint file). Returns the settings to go on with (the saved
        ones, with ``settings``' RESUME_FIELDS if given), the saved settings, the
        optimizer state, and the new learning rate (None: unchanged)."""
        ckpt_path = resume / "checkpoint.npz" if resume.is_dir() else resume
        saved = run_settings(ckpt_path)
        if settings is not None:  # the saved rate of an older checkpoint may lie outside the range a user gives
            settings.validate(saved_lr=settings.lr == saved.lr)
        self.model, optim_state, state = load_model(ckpt_path, device=(settings or saved).device)
        # settings=None continues the run's own schedule; given settings change what RESUME_FIELDS name.
        new_lr = settings.lr if settings is not None and settings.lr != saved.lr else None
        settings = saved if settings is None else replace(
            saved, **{name: getattr(settings, name) for name in RESUME_FIELDS})
        # The settings keep the rate the run started with (so asking for the same new rate at
        # a later resume is a change again); the schedule itself is the optimizer's (lr, lr_step).
        settings = replace(settings, lr=saved.lr)
        self.resumed_from = ckpt_path
        self.folder = Path(out) if out else ckpt_path.parent
        self.step, self.earlier_seconds = int(state.get("step", 0)), float(state.get("seconds", 0.0))
        self.losses = [float(v) for v in state.get("pending_losses", [])]
        best = state.get("best_valid_nll")  # None: saved before the first evaluation
        self.best = math.inf if best is None else float(best)
        schedule = state.get("lr_schedule")  # None: written before the schedule was kept (its lr is the base rate)
        self.lr_schedule = None if schedule is None else (float(schedule["lr"]), int(schedule["lr_step"]))
        self.log(f"resuming {ckpt_path} at step {self.step}")
        return settings, saved, optim_state, new_lr

    def _build_model(self):
        """A new run: the model for the data's shape and classes (refused first if it
        would not fit in memory). A resumed run: check that its model fits the data."""
        settings = self.settings
        N, H, W, C = self.train_labels.shape
        if self.resumed_from is None:
            classes = 0 if self.train_classes is None else int(max(self.train_classes.max(),
                                                                   self.valid_classes.max())) + 1
            config = PixelCNNConfig(height=H, width=W, channels=C, levels=settings.levels, filters=settings.filters,
                                    blocks=settings.blocks, block=settings.block, arch=settings.arch,
                                    classes=classes).validate()
            if settings.device == "cpu":  # refuse before building what would not fit
                memory.check_memory(memory.training_bytes(config, settings.batch),
                                    f"training this model ({settings.filters} filters, {settings.blocks} blocks, "
                                    f"{H}x{W}x{C}) at batch {settings.batch}")
            self.model = build_model(config, seed=settings.seed, device=settings.device)
        elif (self.model.config.height, self.model.config.width, self.model.config.channels) != (H, W, C):
            cfg = self.model.config
            raise ValueError(f"{self.resumed_from}: the model was trained on {cfg.height}x{cfg.width}x{cfg.channels} "
                             f"images, the data is {H}x{W}x{C}")

    def _build_optimizer(self, saved, optim_state, new_lr):
        """Adam (and the Polyak average with --ema), from the checkpoint's state when resuming."""
        settings, resumed, log = self.settings, self.resumed_from is not None, self.log
        self.optimizer = Adam(self.model.parameters(), lr=settings.lr, decay=settings.lr_decay, flat=self.model.packed)
        if resumed and optim_state:
            self.optimizer.load_state_dict(optim_state)
        if self.lr_schedule is not None:
            self.optimizer.lr, self.optimizer.lr_step = self.lr_schedule
        if resumed and new_lr is not None:
            # A new --lr on resume is the rate of the next step, decaying per step from there.
            self.optimizer.set_lr(new_lr)
            log(f"learning rate {new_lr:g} from step {self.step + 1} on (decaying by {settings.lr_decay} a step)")
        self.average = None  # optim.Average, with --ema
        if settings.ema:
            self.average = Average(self.model.parameters(), settings.ema, flat=self.model.packed)
            if resumed and "average_t" in optim_state:
                self.average.load_state_dict(optim_state)
            elif resumed:  # switched on at this resume
                log(f"Polyak averaging (decay {settings.ema:g}) from step {self.step + 1} on, starting at the "
                    f"current weights")
        elif resumed and "average_t" in optim_state:
            log("Polyak averaging switched off (--ema 0): evaluating the weights as they are from now on")
        if resumed and settings.dropout != saved.dropout:
            log(f"dropout {settings.dropout:g} from step {self.step + 1} on (was {saved.dropout:g})")

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
        mine = threads.split(len(idx), self.ranks.size)[self.ranks.rank]  # this rank's slice
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
        runfolder.append_step(self.steps_path, self.step, loss, self.optimizer.current_lr(), self.seconds())

    def evaluate(self):
        """Evaluate on the validation data; append a row to metrics.jsonl, redraw the learning
        curve; returns the row. The row's train_nll_nats is the mean loss of the steps since
        the previous evaluation, each measured on its batch as it was learned."""
        result = self.evaluate_split()
        if not math.isfinite(result["nll_nats"]):  # a model that gives NaN is not saved over a good one
            raise TrainingError(f"the validation NLL became {result['nll_nats']}")
        row = {"step": self.step, "epoch": round(self.epoch(), 4), "train_nll_nats": float(np.mean(self.losses)),
               "valid_nll_nats": result["nll_nats"], "valid_bits_per_dim": result["bits_per_dim"],
               "lr": self.optimizer.current_lr(), "seconds": round(self.seconds(), 2)}
        if self.ranks.rank == 0:
            runfolder.append_metrics(self.metrics_path, row)
            save_png(self.folder / "learning_curve.png", learning_curve(runfolder.read_metrics(self.metrics_path)))
        self.losses = []
        return row

    def averaged(self):
        """A ``with`` context in which the model holds the Polyak average of its weights
        (with --ema; otherwise it changes nothing)."""
        return self.average.swapped_in() if self.average is not None else contextlib.nullcontext()

    def evaluate_split(self):
        """``evaluate`` on the validation data, with the averaged weights under --ema; with MPI,
        each rank a slice, the NLLs summed."""
        part = threads.split(len(self.valid_labels), self.ranks.size)[self.ranks.rank]
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
                 "best_valid_nll": None if math.isinf(self.best) else self.best,
                 "lr_schedule": {"lr": self.optimizer.lr, "lr_step": self.optimizer.lr_step}}
        save_checkpoint(path or self.checkpoint_path, self.model, self.optimizer, state, average=self.average)
        if self.aside is not None and path is None:  # the new run has a checkpoint: the old one may go
            shutil.rmtree(self.aside)
            self.aside = None

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

    def save_samples(self):
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
        row_names = list(class_names(s.data) or range(K)) if K else None
        grid = image_grid(images, s.levels, ncols=per_row, scale=default_scale(images.shape[1]), row_names=row_names)
        save_png(self.folder / "samples.png", grid)


def train(settings=None, out=None, resume=None, progress=True, log=print, on_step=None, overwrite=False):
    """Train a model; returns the run folder (see ``Run`` for the arguments).

    on_step: optional function called as on_step(step, loss) after every step
    """
    settings = settings if settings is not None or resume is not None else TrainSettings()
    ranks = distributed.ranks((settings or run_settings(resume)).device)
    if ranks.size == 1:
        return _train(settings, out, resume, progress, log, on_step, overwrite)
    try:  # MPI: an error on one rank must stop them all, or the others wait for it for ever
        distributed.share_cores(settings or run_settings(resume))
        return _train(settings, out, resume, progress, log, on_step, overwrite)
    except KeyboardInterrupt:  # Ctrl-C: every rank agreed to stop after the same step
        raise
    except BaseException as err:
        print(f"minipixel train (rank {ranks.rank} of {ranks.size}): error: {err}", file=sys.stderr, flush=True)
        ranks.abort(1)
        raise


def _train(settings, out, resume, progress, log, on_step, overwrite):
    run = Run(settings, out, resume, log, progress, overwrite)
    log, progress = run.log, run.progress
    try:
        return _loop(run, progress, log, on_step)
    except OSError as err:  # a full disk, a folder gone: every file is written atomically, so nothing is half-written
        if run.checkpoint_path.exists():
            then = f"the last checkpoint {run.checkpoint_path} is intact; make room, then continue with --resume"
        else:
            then = "no checkpoint was written yet; make room, then start the run again with --overwrite --out"
        raise RuntimeError(f"could not write into the run folder ({err.strerror or err}: "
                           f"{err.filename or run.folder}); {then} {run.folder}") from err
    finally:
        run.lock.release()


def _training_stopped(run, bar, err, step):
    """Training cannot go on at ``step``: the error says so, and where the last good checkpoint is."""
    bar.close()
    last = run.checkpoint_path if run.checkpoint_path.exists() else "(none written yet)"
    raise TrainingError(f"{err} at step {step}; stopping. The last good checkpoint is {last}; try a lower --lr") from None


def _loop(run, progress, log, on_step):
    if run.resumed_from is not None and run.step >= run.total:
        log(f"the run in {run.folder} is finished already (step {run.step} of {run.total}): nothing to train; to "
            f"train on, give it more steps, e.g. minipixel train --resume {run.folder} --steps {2 * run.total}")
        if run.settings.samples > 0 and not (run.folder / "samples.png").exists():  # its end was cut short
            run.save_samples()
        return run.folder
    bar = tqdm(total=run.total, initial=run.step, desc="training", unit="step", disable=not progress,
               dynamic_ncols=True)
    with stop_requests() as stop:
        while run.step < run.total:
            inputs, labels, classes = run.next_batch()
            try:
                loss = train_step(run.model, run.optimizer, inputs, labels, classes, run.ranks, run.batch_size,
                                  run.dropout)
            except TrainingError as err:
                _training_stopped(run, bar, err, run.step + 1)
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
                try:
                    row = run.evaluate_and_save()
                except TrainingError as err:
                    _training_stopped(run, bar, err, run.step)
                if run.ranks.rank == 0:
                    bar.write(f"step {run.step} epoch {row['epoch']:.2f}: train {row['train_nll_nats']:.2f}, "
                              f"valid {row['valid_nll_nats']:.2f} nats/image ({row['valid_bits_per_dim']:.4f} bits/dim)")
                if run.time_up:
                    log(f"stopped after {run.settings.minutes:g} minutes of training, at step {run.step}")
                    break
            elif run.at_save_point():
                run.save()
            if stopping:
                signum = stop[0] if stop else signal.SIGINT  # with MPI, maybe another rank's
                run.save()
                bar.close()
                log(f"stopped by {signal.Signals(signum).name} at step {run.step}: checkpoint "
                    f"{run.checkpoint_path}; continue with --resume {run.folder}")
                if run.settings.samples > 0 and signum == signal.SIGINT:  # a TERM or HUP wants us gone soon
                    log(f"drawing {run.folder / 'samples.png'} from it (Ctrl-C again to skip; later: "
                        f"minipixel sample --checkpoint {run.folder})")
                    run.save_samples()
                raise Stopped(signum)
    bar.close()
    if run.settings.samples > 0:
        run.save_samples()
    log(f"done in {time.time() - run.started:.0f} s; run folder: {run.folder}")
    return run.folder
