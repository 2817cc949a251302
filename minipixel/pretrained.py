"""Pretrained models installed with minipixel, by name.

Each is an ordinary checkpoint in the package folder ``minipixel/models/``, and
``minipixel/models/index.json`` describes them::

    {"binarized-mnist": {"file": "binarized-mnist.npz",
                         "about": "Gated PixelCNN, 32 filters, 13 gated layers",
                         "data": "binarized MNIST (static), 50,000 train",
                         "training": "...", "results": "... nats on the valid split",
                         "reproduce": "bash scripts/pretrained_binarized_mnist.sh"}}

``minipixel sample``, ``eval``, ``complete`` and ``show field`` take
``--pretrained NAME`` in place of ``--checkpoint``; ``minipixel pretrained``
lists what is installed. A model goes in only when its training is finished
(see the README's "Pretrained models"); until then the index is empty.
"""
import json
from pathlib import Path

FOLDER = Path(__file__).with_name("models")


def index():
    """``{name: description}`` of the installed models (empty if there are none)."""
    path = FOLDER / "index.json"
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
        have = f"installed: {', '.join(sorted(entries))}" if entries else "none is installed yet"
        raise ValueError(f"--pretrained: no model named {name!r} ({have}; `minipixel pretrained` lists them)")
    file = FOLDER / entries[name]["file"]
    if not file.is_file():
        raise FileNotFoundError(f"--pretrained {name}: {file} is missing; reinstall minipixel")
    return file


def describe():
    """The lines ``minipixel pretrained`` prints."""
    entries = index()
    if not entries:
        return ["No pretrained models are installed yet: the first one (binarized MNIST) is still in training; "
                "see the README's \"Pretrained models\"."]
    lines = []
    for name, entry in sorted(entries.items()):
        lines.append(name)
        for key in ("about", "data", "training", "results", "reproduce"):
            if key in entry:
                lines.append(f"    {key + ':':11}{entry[key]}")
    return lines
