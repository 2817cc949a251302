"""What a valid value is, for every number a user can give minipixel, and the
command-line parsing that checks it (``cli`` and ``bench`` share it).

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
import difflib
import math
import sys

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
    "port": (int, 0, 65535, False),  # serve --port (0: any free port, as its help says)
}


# What a range alone does not say: a test the value must pass too, and the words for both.
RULES = {
    # 1 / temperature multiplies the logits: from below 1e-6 on they overflow, and every draw is level 0
    "temperature": (lambda v: v == 0 or v >= 1e-6, "0 (always the most likely level) or a number from 1e-06 to 100"),
    "kernel": (lambda v: v % 2 == 1, "an odd int from 1 to 15"),  # a mask has a centre tap
}


def describe(name):
    if name in RULES:
        return RULES[name][1]
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
        ok = (lo < value if lo_open else lo <= value) and value <= hi and (name not in RULES or RULES[name][0](value))
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


class UsageError(ValueError):
    """A value outside the range that only the model says (e.g. --keep-rows below its
    height): the command exits 2, as for a range the parser checks."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: message``) and exit
    status 2; options are never abbreviated (``--n 4`` is not ``--npy``), and an unknown
    option is named by the command it was given to, with the nearest known one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self._chosen(parsed)
            hints = [near for word in extras if word.startswith("-") for near in [parser.nearest(word)] if near]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed

    def _chosen(self, parsed):
        """The sub-command's parser that ``parsed`` went through (this one if none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest, None))
                if chosen is not None:
                    return chosen._chosen(parsed)
        return self

    def nearest(self, word):
        """The known option nearest to ``word`` (``--learning-rate`` -> ``--lr``, by its
        initials or its spelling), or None."""
        word = word.split("=", 1)[0]
        short = "-" + word.lstrip("-")
        if len(short) == 2 and any(short in action.option_strings for action in self._actions):
            return short  # --n for -n
        known = [s for action in self._actions for s in action.option_strings if s.startswith("--")]
        initials = "--" + "".join(part[:1] for part in word.lstrip("-").split("-"))
        if initials in known and len(word.lstrip("-").split("-")) > 1:
            return initials
        close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
        return close[0] if close else None


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


LONG_SECONDS = 30  # work longer than this says so before it starts


def say_estimate(seconds, what):
    """Tell the user (on stderr) that ``what`` will take about ``seconds``, when that is long."""
    if seconds >= LONG_SECONDS:
        took = f"{seconds / 60:.0f} minutes" if seconds >= 90 else f"{seconds:.0f} s"
        print(f"{what}: about {took} (estimated from one forward pass); Ctrl-C stops it", file=sys.stderr, flush=True)


def add_threads_argument(p):
    """--threads N: the CPU threads a command's training or evaluation uses."""
    p.add_argument("--threads", type=option("threads"),
                   help="CPU threads, each running a part of every batch (default: one per core this process may use)")


def add_model_arguments(p, required=True):
    """--checkpoint FILE or --pretrained NAME: the model a command uses."""
    group = p.add_mutually_exclusive_group(required=required)
    no_model = "no default: give it or --pretrained" if required else "default: a fresh random model with the options below"
    group.add_argument("--checkpoint", help=f"checkpoint.npz (or its run folder) ({no_model})")
    group.add_argument("--pretrained", metavar="NAME", help="a model installed with minipixel, by name "
                                                           "(`minipixel pretrained` lists them) (default: none)")
