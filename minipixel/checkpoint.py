"""Checkpoints: one ``.npz`` file with everything needed to continue exactly.

Keys inside the file:

    format              "minipixel-checkpoint-1"
    config              the model's PixelCNNConfig as JSON
    param/<name>        every parameter, e.g. param/blocks.0.conv2.W
    optim/<key>         the optimizer state (Adam's m/<name>, v/<name>, t)
    state               JSON: training state (step, epoch, seed, settings, ...)

The file is written atomically (a temporary file, then a rename), so an
interrupted save leaves the previous checkpoint intact.
"""
import json
import zipfile
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .files import atomic_write
from .model import PixelCNNConfig, build_model

FORMAT = "minipixel-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the requested model."""


def save_checkpoint(path, model, optimizer=None, state=None):
    """Write ``model`` (and optionally ``optimizer`` and a JSON-able ``state`` dict) to ``path``."""
    arrays = {"format": np.array(FORMAT), "config": np.array(model.config.to_json())}
    for name, p in model.parameters().items():
        arrays[f"param/{name}"] = to_numpy(p)
    if optimizer is not None:
        for key, value in optimizer.state_dict().items():
            arrays[f"optim/{key}"] = np.asarray(value)
    arrays["state"] = np.array(json.dumps(state or {}, sort_keys=True))
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return Path(path)


def read_checkpoint(path):
    """Read a checkpoint file: ``(config, params, optim_state, state)``, all on the host."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {key: f[key] for key in f.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated .npz: {err})") from err
    if "format" not in data or str(data["format"]) != FORMAT:
        found = str(data["format"]) if "format" in data else "no format key"
        raise CheckpointError(f"{path}: expected a {FORMAT} file, found {found}")
    for key in ("config", "state"):
        if key not in data:
            raise CheckpointError(f"{path}: the checkpoint has no '{key}' entry")
    try:
        config = PixelCNNConfig.from_json(str(data["config"]))
        state = json.loads(str(data["state"]))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad model config or state in the checkpoint: {err}") from err
    params = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    optim = {k[len("optim/"):]: v for k, v in data.items() if k.startswith("optim/")}
    return config, params, optim, state


def load_model(path, device="cpu", dtype="float32", expect=None):
    """Build the model a checkpoint describes and load its parameters.

    ``expect``: optional dict of config fields the caller requires (e.g.
    ``{"channels": 1}``); a mismatch raises CheckpointError naming each field.
    Returns ``(model, optim_state, state)``.
    """
    config, params, optim, state = read_checkpoint(path)
    mismatched = {k: (v, getattr(config, k)) for k, v in (expect or {}).items() if getattr(config, k) != v}
    if mismatched:
        detail = ", ".join(f"{k}: requested {want}, checkpoint has {have}" for k, (want, have) in mismatched.items())
        raise CheckpointError(f"{path}: the checkpoint does not match the requested model ({detail})")
    model = build_model(config, dtype=dtype, device=device)
    try:
        model.load_parameters(params, source=str(path))
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    return model, optim, state
