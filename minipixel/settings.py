"""A training run's settings (``TrainSettings``), and reading them back from a
run's checkpoint (``run_settings``).

Every choice of a run is a field with a documented default; a run saves them in
its checkpoint, so ``--resume`` (and ``eval``, ``complete``) see the data and the
schedule exactly as the run did. A resume may change only ``RESUME_FIELDS``.
"""
import math
from dataclasses import dataclass, fields, replace

from . import options
from .checkpoint import CheckpointError, read_checkpoint
from .model import ARCHS, ResidualBlock


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

    def validate(self, saved_lr=False):
        """Check every numeric setting against its range (``options.RANGES``): a
        ValueError naming the setting, the value and the range.

        saved_lr: ``lr`` was read from a checkpoint, where runs written before the
        learning-rate schedule was kept in the training state stored a base rate that
        can lie above the range a user may give (``lr / lr_decay**step`` after a
        ``--resume --lr``): it need only be a positive finite number.
        """
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "lr" and saved_lr:
                if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                    raise ValueError(f"lr: expected a positive finite number, got {value!r}")
            elif field.name in options.RANGES and (value is not None or field.default is not None):  # None: not given
                options.check(field.name, value)
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



# What a resume may change (the CLI's --epochs, --steps, --minutes, --device, --lr,
# --lr-decay, --ema, --dropout, --eval-every, --save-every); everything else is the run's own.
RESUME_FIELDS = ("epochs", "steps", "minutes", "device", "lr", "lr_decay", "ema", "dropout", "eval_every", "save_every")


def run_settings(checkpoint, state=None, model=None):
    """The TrainSettings of the run that saved ``checkpoint`` (a file or run folder),
    checked (types, ranges and choices); a CheckpointError naming the file if they are
    not valid. Defaults for a checkpoint saved without settings.

    state: the checkpoint's state dict when it is already read (``load_model``'s
    third value); else the file is read. model: the model loaded from it; the
    settings then take its own levels and conditioning.
    """
    if state is None:
        state = read_checkpoint(checkpoint)[3]
    try:
        settings = TrainSettings.from_dict(state.get("settings", {})).validate(saved_lr=True)
    except ValueError as err:
        raise CheckpointError(f"{checkpoint}: bad training settings in the checkpoint: {err}") from err
    if model is not None:
        settings = replace(settings, levels=model.config.levels, conditional=bool(model.config.classes))
    return settings
