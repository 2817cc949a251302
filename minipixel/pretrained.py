"""Pretrained models installed with minipixel, by name.

Each is an ordinary checkpoint in the package folder ``minipixel/models/``, and
``minipixel/models/index.json`` describes them::

    {"binarized-mnist": {"file": "binarized-mnist.npz",
                         "about": "Gated PixelCNN, 32 filters, 13 gated layers",
                         "data": "binarized MNIST (static), 50,000 train",
                         "training": "...", "results": "... nats on the valid split",
                         "reproduce": "bash scripts/pretrained_binarized_mnist_64x20.sh"}}

A finished run goes in with ``install`` (``scripts/install_pretrained.py``): its
``best.npz`` without the optimizer's state (a third of the size), and an index
entry written from what the run itself recorded (model, data, steps, minutes,
validation NLL, and the test NLL of ``test.json`` when the run has one).

``minipixel sample``, ``eval``, ``complete`` and ``show field`` take
``--pretrained NAME`` in place of ``--checkpoint``; ``minipixel pretrained``
lists what is installed. A model goes in only when its training is finished
(see the README's "Pretrained models").
"""
import json
from pathlib import Path

from .files import atomic_write
from .datasets.class_names import class_names
from .losses import bits_per_dim

FOLDER = Path(__file__).with_name("models")


def index(folder=None):
    """``{name: description}`` of the installed models (empty if there are none)."""
    path = Path(folder or FOLDER) / "index.json"
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); reinstall minipixel") from None
    if not isinstance(entries, dict) or not all(isinstance(e, dict) and "file" in e for e in entries.values()):
        raise ValueError(f"{path}: expected an object of models, each with a 'file'; reinstall minipixel")
    return entries


def path(name):
    """The checkpoint file of the installed model ``name``."""
    entries = index()
    if name not in entries:
        have = f"installed: {', '.join(sorted(entries))}" if entries else "none is installed"
        raise ValueError(f"--pretrained: no model named {name!r} ({have}; `minipixel pretrained` lists them)")
    file = FOLDER / entries[name]["file"]
    if not file.is_file():
        raise FileNotFoundError(f"--pretrained {name}: {file} is missing; reinstall minipixel")
    return file


def describe():
    """The lines ``minipixel pretrained`` prints."""
    entries = index()
    if not entries:
        return [f"No pretrained models are installed: {FOLDER / 'index.json'} is missing or empty "
                "(minipixel ships them; reinstall it). See the README's \"Pretrained models\"."]
    lines = []
    for name, entry in sorted(entries.items()):
        lines.append(name)
        for key in ("about", "classes", "data", "training", "results", "reproduce"):
            if key in entry:
                lines.append(f"    {key + ':':11}{entry[key]}")
    return lines


def _data_name(data):
    """A dataset as the index shows it: a named split as it is (``fashion-mnist:train``),
    a file by its name only (the folder it had on the training machine means nothing
    to a user)."""
    return Path(data).name if data and "/" in data else data


def _describe_run(config, state, test):
    """The index entry's about / data / training / results lines, from a run's own records."""
    settings = state.get("settings", {})
    if config.arch == "gated":
        about = (f"Gated PixelCNN, {config.filters} filters per stack, a {config.input_kernel}x{config.input_kernel} "
                 f"first layer and {config.blocks} more gated layers")
    else:
        about = (f"PixelCNN, {config.filters} filters, a {config.input_kernel}x{config.input_kernel} mask-A layer "
                 f"and {config.blocks} residual blocks")
    about += f"; {config.height}x{config.width}x{config.channels}, {config.levels} levels"
    if config.classes:
        about += f", conditional on {config.classes} classes (sample --class K)"
    names = class_names(settings.get("data")) if config.classes else None
    valid = _data_name(settings.get("valid")) or "a 10% hold-out of the training data"
    data = f"trained on {_data_name(settings.get('data')) or '?'}, validated on {valid}"
    training = (f"{state['step']:,} steps of batch {settings.get('batch', '?')} ({state.get('epoch', 0):.2f} epochs), "
                f"{state.get('seconds', 0) / 60:.0f} minutes on the CPU")
    dims = config.height * config.width * config.channels
    best = state.get("best_valid_nll")
    results = ("not evaluated" if best is None else
               f"{best:.2f} nats/image ({bits_per_dim(best, dims):.4f} bits/dim) on the validation data")
    if test is not None:
        results += (f"; {test['nll_nats']:.2f} nats/image ({test['bits_per_dim']:.4f} bits/dim) on "
                    f"{test['images']:,} test images")
    entry = {"about": about, "data": data, "training": training, "results": results}
    if names:
        entry["classes"] = ", ".join(f"{k} {name}" for k, name in enumerate(names))
    return entry


def install(name, run, reproduce, folder=None):
    """Install the run folder ``run``'s best.npz as the model ``name``: the parameters
    (no optimizer state, deflated) in ``folder``/NAME.npz and an entry in index.json, with
    ``reproduce`` (the command that makes the run) and the figures the run recorded
    (``test.json``, when the run has one, adds its test NLL). Returns the entry."""
    from .checkpoint import load_model, save_checkpoint

    folder = Path(folder or FOLDER)
    run = Path(run)
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"model name: expected letters, digits, '-' and '_', got {name!r}")
    source = run / "best.npz"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file; install takes a run folder with a best.npz")
    model, _, state = load_model(source)
    test = None
    if (run / "test.json").is_file():
        test = json.loads((run / "test.json").read_text())
        if not all(k in test for k in ("nll_nats", "bits_per_dim", "images")):
            raise ValueError(f"{run / 'test.json'}: expected the JSON of `minipixel eval --json`")
    kept = {k: state[k] for k in ("step", "epoch", "seconds", "seed", "settings", "best_valid_nll") if k in state}
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / f"{name}.npz", model, state=kept, compress=True)
    entries = index(folder)
    entry = {"file": f"{name}.npz", **_describe_run(model.config, state, test), "reproduce": reproduce}
    entries[name] = entry
    with atomic_write(folder / "index.json", "w") as f:
        f.write(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return entry
