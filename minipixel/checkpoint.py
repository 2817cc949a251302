"""Checkpoints: one ``.npz`` file with everything needed to continue exactly.

Keys inside the file:

    format              "minipixel-checkpoint-1"
    config              the model's PixelCNNConfig as JSON
    param/<name>        every parameter, e.g. param/blocks.0.conv2.W
    optim/<key>         the optimizer state (Adam's m/<name>, v/<name>, t; with
                        Polyak averaging also average/<name>, average_t)
    state               JSON: training state (step, epoch, seed, settings, ...)

The file is written atomically (a temporary file, then a rename), so an
interrupted save leaves the previous checkpoint intact.
"""
import json
import math
from pathlib import Path

import numpy as np

from . import memory
from .backend import to_numpy
from .files import atomic_write, read_npz_arrays
from .model import PixelCNNConfig, build_model

FORMAT = "minipixel-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the requested model."""


def save_checkpoint(path, model, optimizer=None, state=None, compress=False, average=None):
    """Write ``model`` (and optionally ``optimizer``, its ``optim.Average`` and a JSON-able
    ``state`` dict) to ``path``.

    ``compress`` deflates the members (``np.savez_compressed``): about half the size
    for a model whose masked taps are stored as zeros, at some seconds of writing time,
    so training checkpoints are stored plainly and shipped models compressed."""
    arrays = {"format": np.array(FORMAT), "config": np.array(model.config.to_json())}
    for name, p in model.parameters().items():
        arrays[f"param/{name}"] = to_numpy(p)
    for part in (optimizer, average):
        for key, value in (part.state_dict() if part is not None else {}).items():
            arrays[f"optim/{key}"] = np.asarray(value)
    arrays["state"] = np.array(json.dumps(state or {}, sort_keys=True))
    for name, value in arrays.items():  # a NaN or infinity would make the file unloadable: never written
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{path}: not written: {name} holds NaN or infinite values")
    with atomic_write(path) as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)
    return Path(path)


def _text(data, key, path):
    """The text entry ``key`` ("format", "config", "state") of a checkpoint."""
    if key not in data:
        raise CheckpointError(f"{path}: the checkpoint has no '{key}' entry")
    value = data[key]
    if value.shape != () or value.dtype.kind != "U":
        raise CheckpointError(f"{path}: expected '{key}' to be one text value, got shape {value.shape} "
                              f"dtype {value.dtype}")
    return str(value)


def _check_state(state, path):
    """The training state: a dict with the step (an int >= 0), the seconds of
    training so far (a finite number >= 0), the losses since the last evaluation,
    the best validation NLL (null before the first evaluation) and the run's settings."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected the training state to be a JSON object, got {type(state).__name__}")
    step, seconds = state.get("step", 0), state.get("seconds", 0.0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path}: expected the state's step to be an int >= 0, got {step!r}")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < float("inf"):
        raise CheckpointError(f"{path}: expected the state's seconds to be a number >= 0, got {seconds!r}")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    pending, best = state.get("pending_losses", []), state.get("best_valid_nll")
    if not isinstance(pending, list) or not all(number(v) for v in pending):
        raise CheckpointError(f"{path}: expected the state's pending_losses to be a list of finite numbers")
    if best is not None and not number(best):
        raise CheckpointError(f"{path}: expected the state's best_valid_nll to be a finite number or null, got {best!r}")
    schedule = state.get("lr_schedule")
    if schedule is not None and not (isinstance(schedule, dict) and number(schedule.get("lr")) and schedule["lr"] > 0
                                     and isinstance(schedule.get("lr_step"), int)
                                     and not isinstance(schedule["lr_step"], bool) and 0 <= schedule["lr_step"] <= step):
        raise CheckpointError(f"{path}: expected the state's lr_schedule to be {{\"lr\": a positive number, "
                              f"\"lr_step\": an int from 0 to the step}}, got {schedule!r}")
    if not isinstance(state.get("settings", {}), dict):
        raise CheckpointError(f"{path}: expected the state's settings to be a JSON object, "
                              f"got {type(state['settings']).__name__}")


def _check_numbers(arrays, path, what):
    """Every array of ``arrays`` holds finite floats (a NaN in a checkpoint means it is damaged)."""
    for name, value in arrays.items():
        if value.dtype.kind != "f":
            raise CheckpointError(f"{path}: {what} {name}: expected floats, got dtype {value.dtype}")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{path}: {what} {name} holds NaN or infinite values; the checkpoint is damaged")


def read_checkpoint(path):
    """Read a checkpoint file: ``(config, params, optim_state, state)``, all on the host.

    Everything is checked before it is used: the format, the model config (its
    ranges), the training state, and that the parameters are finite floats and
    as many as the config describes; any problem is a CheckpointError of one
    line that names the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = read_npz_arrays(path, f"a {FORMAT} file")
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    found = _text(data, "format", path) if "format" in data else "no format key"
    if found != FORMAT:
        other = " (written by another version of minipixel)" if found.startswith("minipixel-checkpoint-") else ""
        raise CheckpointError(f"{path}: expected a {FORMAT} file, found {found}{other}")
    config_text, state_text = _text(data, "config", path), _text(data, "state", path)
    try:
        config = PixelCNNConfig.from_json(config_text)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad model config in the checkpoint: {err}") from err
    try:
        state = json.loads(state_text)
    except ValueError as err:
        raise CheckpointError(f"{path}: bad training state in the checkpoint: {err}") from err
    _check_state(state, path)
    params = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    optim = {k[len("optim/"):]: v for k, v in data.items() if k.startswith("optim/")}
    _check_numbers(params, path, "parameter")
    held, described = sum(int(v.size) for v in params.values()), memory.parameter_count(config)
    if described > 2 * held + 1000:  # checked before the model is built: a damaged config cannot make it huge
        raise CheckpointError(f"{path}: the config describes a model of about {described:,} numbers, but the file "
                              f"holds {held:,}; the checkpoint is damaged")
    return config, params, optim, state


def _check_optimizer_state(optim, model, path):
    """The optimizer's state: its step count ``t`` (an int >= 0) and, for each of
    its moments (Adam's m and v, SGD's v; the Polyak average, with its own count
    ``average_t``), a finite array of every parameter's shape."""
    params = model.parameters()
    moments = sorted({key.split("/", 1)[0] for key in optim if "/" in key})
    counts = {"t"} | ({"average_t"} if "average" in moments else set())
    wanted = counts | {f"{moment}/{name}" for moment in moments for name in params}
    if set(optim) != wanted:
        missing, extra = sorted(wanted - set(optim))[:5], sorted(set(optim) - wanted)[:5]
        raise CheckpointError(f"{path}: the optimizer state does not match the model: missing {missing}, "
                              f"unexpected {extra}")
    for count in sorted(counts):
        t = optim[count]
        if t.shape != () or t.dtype.kind not in "iu" or int(t) < 0:
            raise CheckpointError(f"{path}: expected the optimizer's step count {count} to be one int >= 0, got {t!r}")
    arrays = {k: v for k, v in optim.items() if k not in counts}
    _check_numbers(arrays, path, "optimizer state")
    for key, value in arrays.items():
        shape = tuple(params[key.split("/", 1)[1]].shape)
        if value.shape != shape:
            raise CheckpointError(f"{path}: optimizer state {key}: expected shape {shape}, got {value.shape}")


def load_model(path, device="cpu", dtype="float32", expect=None):
    """Build the model a checkpoint describes and load its parameters.

    ``expect``: optional dict of config fields the caller requires (e.g.
    ``{"channels": 1}``); a mismatch raises CheckpointError naming each field.
    Returns ``(model, optim_state, state)``; the optimizer state is checked
    against the model (names, shapes, finite values), so it loads as it is.
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
    if optim:
        _check_optimizer_state(optim, model, path)
    return model, optim, state
