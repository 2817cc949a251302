"""What a valid value is, for every number a user can give minipixel.

Every numeric option of the command line and every numeric training setting
has a range here. A value outside it (zero where a count must be positive, a
negative size, NaN, infinity, an absurdly large batch, a float where an int is
needed) is refused before any data is read or any memory allocated, with one
line that names the option, the value and the range:

    minipixel train: error: argument --batch: expected an int from 1 to 65536, got '-3'

The Python API checks the same ranges (``TrainSettings.validate``) and raises
a ``ValueError`` with the same words.
"""
import argparse
import math

# name: (type, lowest, highest, lowest excluded). The upper bounds are far above
# any real use and far below what would exhaust a machine's memory by accident.
RANGES = {
    "levels": (int, 2, 256, False),
    "filters": (int, 1, 4096, False),
    "blocks": (int, 0, 1000, False),
    "batch": (int, 1, 65536, False),
    "eval_batch": (int, 1, 65536, False),
    "epochs": (int, 1, 100_000, False),
    "steps": (int, 1, 10**9, False),
    "minutes": (float, 0.0, 1e7, True),
    "lr": (float, 0.0, 10.0, True),
    "lr_decay": (float, 0.0, 1.0, True),
    "ema": (float, 0.0, 0.999999, False),  # 0: no Polyak averaging
    "dropout": (float, 0.0, 0.95, False),  # 0: no dropout
    "seed": (int, 0, 2**32 - 1, False),
    "samples": (int, 0, 10_000, False),
    "temperature": (float, 0.0, 100.0, False),
    "size": (int, 1, 4096, False),
    "threads": (int, 1, 256, False),
    "images": (int, 1, 100_000, False),  # sample -n, complete -n
    "class": (int, 0, 100_000, False),  # checked against the model's classes once it is loaded
    "keep_rows": (int, 1, 4096, False),  # checked against the model's height once it is loaded
    "completions": (int, 1, 1000, False),  # complete --samples
    "scale": (int, 1, 64, False),
    "kernel": (int, 1, 15, False),
    "position": (int, 0, 4096, False),  # show field --row/--col
    "channel": (int, 0, 2, False),
    "repeat": (int, 1, 1000, False),
    "rows": (int, 1, 4096, False),  # bench --naive-rows
    "index": (int, 0, 10**8, False),  # complete --index
    "frame_every": (int, 1, 10**9, False),  # sample --frame-every
    "eval_every": (int, 1, 10**9, False),
    "save_every": (int, 1, 10**9, False),
}


def describe(name):
    kind, lo, hi, lo_open = RANGES[name]
    if lo_open:
        return f"a number above {lo:g} and at most {hi:g}"
    return f"an int from {lo} to {hi}" if kind is int else f"a number from {lo:g} to {hi:g}"


def check(name, value, label=None):
    """``value`` if it lies in ``RANGES[name]``, else a ValueError naming ``label``
    (default ``name``), the value and the range."""
    kind, lo, hi, lo_open = RANGES[name]
    label = label or name
    ok = False
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) or hasattr(value, "dtype") and value.dtype.kind in "iu"
    elif isinstance(value, (int, float)) and not isinstance(value, bool) or hasattr(value, "dtype"):
        ok = math.isfinite(float(value))
    if ok:
        ok = (lo < value if lo_open else lo <= value) and value <= hi
    if not ok:
        raise ValueError(f"{label}: expected {describe(name)}, got {value!r}")
    return value


def option(name):
    """An argparse ``type=`` that parses a command-line value and checks it against ``RANGES[name]``."""
    kind = RANGES[name][0]

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {describe(name)}, got {text!r}") from None
        try:
            return check(name, value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {describe(name)}, got {text!r}") from None

    parse.__name__ = f"{name} value"
    return parse


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: message``) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def document(parser):
    """Add each checked option's range to its ``--help`` line, in this parser and its sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                document(sub)
        elif getattr(action.type, "__name__", "").endswith(" value"):
            name = action.type.__name__[: -len(" value")]
            action.help = f"{action.help or ''} [{describe(name)}]".strip()
    return parser


def available_memory():
    """Bytes of memory the system can give without swapping (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def parameter_count(config):
    """About how many numbers the model of ``config`` holds (its weights; biases
    and masks aside), from the configuration alone, before anything is built."""
    h, C, L, k = config.filters, config.channels, config.levels, config.input_kernel
    if config.arch == "gated":
        layers = config.blocks + 1
        return k * k * C * 2 * h + layers * (9 * h * 2 * h + 3 * h * 2 * h + 4 * h * h + h * h) + h * h + h * C * L
    m1 = h // 2 if config.block == "half" else h
    m2 = h // 2
    return k * k * C * h + config.blocks * (h * m1 + 9 * m1 * m2 + m2 * h) + 2 * h * h + h * C * L


def training_bytes(config, batch, itemsize=4):
    """An estimate, from the configuration alone (before anything is built), of
    the memory a training step at ``batch`` takes: the maps forward keeps for
    backward (about 1.25 of every layer's output channels), two of the widest
    maps alive in backward, and the parameters with their gradients and Adam's
    two moments. Within about 20% of the measured peaks of the benchmark's
    models (pixelcnn 151/581 MiB estimated, 191/559 measured at batch 16/64;
    gated 490/1827 against 559/1812)."""
    h, C, L = config.filters, config.channels, config.levels
    if config.arch == "gated":
        kept = (config.blocks + 1) * 9 * h + h + C * L  # per layer: v and h pre-activations, link, gates, output; head
        widest = 2 * h
    else:
        m1 = h // 2 if config.block == "half" else h
        kept = h + config.blocks * (m1 + h // 2 + h) + 2 * h + C * L
        widest = h + m1
    positions = batch * config.height * config.width
    return int(positions * itemsize * (1.25 * kept + 2 * widest) + 4 * parameter_count(config) * itemsize)


def inference_bytes(config, batch, itemsize=4):
    """An estimate of the memory of a forward pass without caches (evaluation) at
    ``batch``: a few of the widest maps alive at once, and the parameters."""
    h = config.filters * (2 if config.arch == "gated" else 1)
    positions = batch * config.height * config.width
    return int(positions * itemsize * (6 * h + 2 * config.channels * config.levels) + 2 * training_bytes(
        config, 0, itemsize))


def sampling_bytes(config, n, batch, height, width, itemsize=4):
    """An estimate of the memory of sampling ``n`` images of ``height x width``,
    ``batch`` at a time: the uniform numbers drawn up front (float64) and the
    labels of all of them, and the input maps the sampler keeps per layer for one batch."""
    pixels = height * width * config.channels
    maps = min(n, batch) * height * width * (config.blocks + 2) * config.filters * 2 * itemsize
    return int(n * pixels * 9 + maps + 2 * training_bytes(config, 0, itemsize))


def check_memory(needed, what, available=None):
    """Refuse work that would need more than the memory available: a MemoryError
    with the estimate and what there is. ``available`` defaults to ``available_memory()``."""
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        raise MemoryError(f"{what} needs about {needed / 2**30:.2f} GiB, and {available / 2**30:.2f} GiB of memory "
                          "is available: use a smaller --batch (or fewer --filters or --blocks)")
