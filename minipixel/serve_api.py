"""What ``minipixel serve``'s endpoints compute: the models it was given, the checks
of every request body, the sampling streams and the answers of Explore.

``serve`` holds the HTTP side; everything here raises ``RequestError`` for a request
it refuses, with the status and the one line the browser gets.
"""
import base64
import binascii
import contextlib
import io
import json
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

from .options import RANGES, check
from .sampling import CPU_METHODS

MAX_IMAGES = 64  # n of one sampling
MAX_BODY = 1 << 20  # bytes of a request body
MAX_PICTURE = 1024  # pixels of a side of a PNG picture
FRAME_VALUES = 1_000_000  # sub-pixel values all the frames of a stream hold, about; fewer frames for big n
FRAME_GAP = 0.04  # seconds: a slow sampling also sends a frame within a row at least this often
RUN_FILES = ("checkpoint.npz", "best.npz")  # what makes a folder under --models a model, the first found
RUN_DEPTH = 2  # folders below a --models DIR searched for runs
PNG_URL = "data:image/png;base64,"


class RequestError(Exception):
    """A request the server refuses: ``status`` and the ``message`` of its one-line JSON answer."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message, self.status = " ".join(str(message).split())[:300], status  # what came may be long


class Gone(Exception):
    """The browser went away: its sampling stops at the frame that found out."""


# ---------------------------------------------------------------------------
# The models: the installed ones and the run folders under --models, by name
# ---------------------------------------------------------------------------

def _run_folders(folder, depth=RUN_DEPTH):
    """(folder, checkpoint file) of every run in ``folder`` and its sub-folders, in name order."""
    found = next((folder / name for name in RUN_FILES if (folder / name).is_file()), None)
    if found:
        return [(folder, found)]
    if depth == 0:
        return []
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and p.name != "replaced-run")
    return [run for sub in subs for run in _run_folders(sub, depth - 1)]


def _describe(name, source, file):
    """The model's line of /api/models, read from its checkpoint's config and settings only."""
    from .checkpoint import _check_state, _text
    from .datasets.class_names import class_names
    from .model import PixelCNNConfig

    with np.load(file, allow_pickle=False) as data:
        config = PixelCNNConfig.from_json(str(data["config"]))
        state = json.loads(_text(data, "state", file))  # as load_model reads it: a file it refuses is left out
    _check_state(state, file)
    names = class_names(state.get("settings", {}).get("data")) if config.classes else None
    classes = (list(names) if names else [str(k) for k in range(config.classes)]) if config.classes else None
    return {"name": name, "source": source, "height": config.height, "width": config.width,
            "channels": config.channels, "levels": config.levels, "classes": classes, "arch": config.arch}


class Catalogue:
    """The models a server was given, described at the start, each loaded once on first use.

    A request works on a twin of the loaded model (``threads.replica``: the same
    parameters, its own buffers), taken from a pool and put back, so requests on one
    model run side by side without sharing a sampler's state.
    """

    def __init__(self, folders=(), installed=True):
        from . import pretrained

        self.files, self.models = {}, []
        found = [(name, "installed", pretrained.FOLDER / entry["file"])
                 for name, entry in sorted((pretrained.index() if installed else {}).items())]
        for folder in map(Path, folders):
            if not folder.is_dir():
                raise FileNotFoundError(f"--models {folder}: no such folder")
            for run, file in _run_folders(folder):
                name = Path(folder.resolve().name, run.relative_to(folder)).as_posix()
                found.append((name, "run", file))
        for name, source, file in found:
            unique, k = name, 2
            while unique in self.files:  # two folders of one name under two --models folders
                unique, k = f"{name} ({k})", k + 1
            try:
                self.models.append(_describe(unique, source, file))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:  # one damaged file stops no other
                print(f"minipixel serve: {file}: left out, cannot read it ({err})", file=sys.stderr)
                continue
            self.files[unique] = file
        self.lock, self.loaded, self.idle = threading.Lock(), {}, {}

    def describe(self, name):
        """The model's line of /api/models; 404 for a name the server was not given."""
        if not isinstance(name, str):
            raise RequestError(f"model: expected a model's name (a string), got {json.dumps(name)[:60]}")
        for entry in self.models:
            if entry["name"] == name:
                return entry
        raise RequestError(f"model: no model named {name[:100]!r} here (GET /api/models lists them)", 404)

    @contextlib.contextmanager
    def borrow(self, name):
        """A twin of the model ``name`` to work on, for the ``with`` block."""
        from . import threads
        from .checkpoint import load_model

        self.describe(name)
        with self.lock:
            if name not in self.loaded:  # never worked on itself: twins are copied from it while others run
                self.loaded[name] = load_model(self.files[name])[0]
            idle = self.idle.setdefault(name, [])
            model = idle.pop() if idle else threads.replica(self.loaded[name])
        try:
            yield model
        finally:
            with self.lock:
                idle.append(model)


# ---------------------------------------------------------------------------
# Request bodies: keys, types and ranges, in the command line's words
# ---------------------------------------------------------------------------

def parse_body(raw, allowed):
    """The request body as a dict with keys among ``allowed`` only."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise RequestError(f"request body: expected a JSON object, got text that is not JSON ({err})") from None
    if not isinstance(body, dict):
        raise RequestError(f"request body: expected a JSON object, got a JSON {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise RequestError(f"request body: unknown key {unknown[0][:40]!r}; expected some of {', '.join(allowed)}")
    return body


def number(body, key, name, default=None, most=None, why=""):
    """``body[key]`` (or ``default``) checked against ``RANGES[name]``, as the command line
    checks it; ``most`` lowers the upper bound (``why`` says why, after the range)."""
    value = default if body.get(key) is None else body[key]  # null is the default, as a key left out
    if value is None:
        raise RequestError(f"{key}: missing; expected {_words(name, most, why)}")
    try:
        check(name, value, key)
        if most is not None and value > most:
            raise ValueError(value)
    except ValueError:
        raise RequestError(f"{key}: expected {_words(name, most, why)}, got {value!r}") from None
    return value


def _words(name, most, why):
    from .options import describe

    lo = RANGES[name][1]
    return (describe(name) if most is None else f"an int from {lo} to {most}") + why


def choice(body, key, choices, default):
    value = default if body.get(key) is None else body[key]
    if value not in choices:
        raise RequestError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def class_of(body, entry):
    """The class ``body["class"]`` names (a number or a name, as ``sample --class``), or None."""
    from .datasets.class_names import class_number

    given, names = body.get("class"), entry["classes"]
    if given is None:
        if names:
            raise RequestError(f"class: this model is class-conditional; expected a class from 0 to "
                               f"{len(names) - 1} ({', '.join(f'{k} {n}' for k, n in enumerate(names))})")
        return None
    if not names:
        raise RequestError("class: this model is not class-conditional; give no class")
    if isinstance(given, bool) or not isinstance(given, (int, str)):
        raise RequestError(f"class: expected a class number or name, got {given!r}")
    try:
        k = class_number(given, names, len(names))
    except ValueError as err:
        raise RequestError(str(err).replace("--class", "class", 1)) from None
    if not 0 <= k < len(names):
        raise RequestError(f"class: expected a class from 0 to {len(names) - 1} for this model, got {given!r}")
    return k


def position(body, entry, key, name, count):
    """A row, column or colour: in the option's range and below the model's ``count``."""
    value = number(body, key, name, default=None if key != "channel" else 0)
    if value >= count:
        raise RequestError(f"{key}: expected an int from 0 to {count - 1} for this model's {entry['height']}x"
                           f"{entry['width']}x{entry['channels']} images, got {value}")
    return value


def image_of(body, entry):
    """``body["image"]`` as (H, W, C) uint8 labels: nested lists of labels, or a PNG data URL
    converted as ``minipixel complete --image`` converts a file."""
    H, W, C, L = (entry[k] for k in ("height", "width", "channels", "levels"))
    given = body.get("image")
    if isinstance(given, str):
        return _picture(given, entry)
    expected = f"image: expected {H}x{W}x{C} nested lists of labels from 0 to {L - 1}, or a {PNG_URL}... URL"
    try:
        labels = np.asarray(given)
    except ValueError:  # ragged lists
        raise RequestError(f"{expected}, got lists of uneven lengths") from None
    if labels.shape != (H, W, C) or labels.dtype.kind not in "iu":
        got = f"{'x'.join(map(str, labels.shape))} of {labels.dtype.name}" if labels.ndim else repr(given)
        raise RequestError(f"{expected}, got {got}")
    if labels.min() < 0 or labels.max() >= L:
        raise RequestError(f"{expected}, got labels from {labels.min()} to {labels.max()}")
    return labels.astype(np.uint8)


def _picture(url, entry):
    from PIL import Image

    from .cli_pictures import _read_image_file
    from .model import PixelCNNConfig

    if not url.startswith(PNG_URL):
        raise RequestError(f"image: expected labels or a {PNG_URL}... URL, got {url[:40]!r}")
    too_big = f"image: expected a picture of at most {MAX_PICTURE} x {MAX_PICTURE} pixels, got"
    try:
        data = base64.b64decode(url[len(PNG_URL):], validate=True)
        with Image.open(io.BytesIO(data), formats=("PNG",)) as picture:  # the header only: the size, not the pixels
            size = picture.size
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise RequestError(f"{too_big} more than {Image.MAX_IMAGE_PIXELS:,} pixels", 413) from None
    except (binascii.Error, OSError, ValueError, SyntaxError) as err:
        raise RequestError(f"image: cannot read the data URL as a PNG picture ({err})") from None
    if max(size) > MAX_PICTURE:
        raise RequestError(f"{too_big} {size[0]} x {size[1]}", 413)
    config = PixelCNNConfig(**{k: entry[k] for k in ("height", "width", "channels", "levels")})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.png"
        path.write_bytes(data)
        try:
            return _read_image_file(path, config)
        except ValueError as err:
            raise RequestError(str(err).replace(str(path), "image")) from None


# ---------------------------------------------------------------------------
# Streams: the sampler's frames as it draws
# ---------------------------------------------------------------------------

def sampling_job(body, entry, complete=False):
    """A stream's request, checked: what ``stream`` takes."""
    H = entry["height"]
    job = {"n": number(body, "n", "images", 4 if complete else 16, most=MAX_IMAGES),
           "temperature": float(number(body, "temperature", "temperature", 1.0)),
           "method": choice(body, "method", CPU_METHODS, "cached"),
           "seed": number(body, "seed", "seed", int(np.random.default_rng().integers(2**32))),
           "class": class_of(body, entry), "known": None, "keep_rows": 0}
    if job["method"] == "wavefront" and entry["arch"] != "pixelcnn":
        raise RequestError(f"method: the wavefront sampler runs PixelCNN models (arch pixelcnn), and "
                           f"{entry['name']} is {entry['arch']}: use cached")
    if complete:
        job["keep_rows"] = number(body, "keep_rows", "keep_rows", None, most=H - 1,
                                  why=f" for this {H}-row model")
        job["known"] = np.repeat(image_of(body, entry)[None], job["n"], axis=0)
    return job


def stream(model, job, send):
    """Sample ``job`` on ``model``, calling ``send(line)`` with the start line, the
    frames as the sampler draws and the last frame (the images ``sample`` returns).
    ``send`` raises ``Gone`` when the browser went away, which stops the sampler."""
    from .backend import to_numpy
    from .sampling import sample

    cfg = model.config
    n, H, W, C = job["n"], cfg.height, cfg.width, cfg.channels
    send({"type": "start", "n": n, "height": H, "width": W, "channels": C, "levels": cfg.levels,
          "seed": job["seed"]})
    frames = max(4, min(H, FRAME_VALUES // (n * H * W * C)))

    def show(labels, drawn):
        send({"type": "frame", "labels": labels.tolist(), "drawn": np.broadcast_to(drawn, (n, H, W)).tolist()})

    rows_per_frame, last, extra = -(-H // frames), [0.0], [frames]

    def look(start, labels, count):  # the cached and naive samplers: ``count`` sub-pixels drawn, in raster order
        if count >= H * W * C:  # the last look is the images sample returns, sent below
            return
        # A frame every few rows; within a row too when the sampler is slow enough that a
        # row takes longer than FRAME_GAP (a big model, the naive sampler): then the grid
        # fills pixel by pixel. The frames within rows are bounded as the others are.
        on_row = count % (rows_per_frame * W * C) == 0
        if not on_row and (extra[0] <= 0 or time.perf_counter() - last[0] < FRAME_GAP):
            return
        extra[0] -= not on_row
        last[0] = time.perf_counter()
        show(to_numpy(labels), (np.arange(H * W) < count // C).reshape(H, W).astype(np.uint8))

    watched, snapshot, every = model, look, C
    if job["method"] == "wavefront":  # sample takes no snapshot there: the model shows the steps
        watched, snapshot, every = _Wavefront(model, job, show, frames), None, None
    started = time.perf_counter()
    images = sample(watched, n, seed=job["seed"], temperature=job["temperature"], method=job["method"],
                    batch_size=n, known=job["known"], known_rows=job["keep_rows"],
                    classes=None if job["class"] is None else np.full(n, job["class"]),
                    snapshot=snapshot, snapshot_every=every)
    show(images, np.ones((H, W), np.uint8))
    return images, time.perf_counter() - started


class _Wavefront:
    """A PixelCNN as the wavefront sampler sees it, showing the positions that are final
    before every few of its steps: each step computes row i at column t - D * i for every
    row in flight, so several rows show partly drawn at once. (``sample``'s snapshot takes
    the raster-order samplers only.) Everything else is the model's own."""

    def __init__(self, model, job, show, frames):
        from .sampling import wavefront_lag, wavefront_order

        cfg = model.config
        self._model, self._show, self._job = model, show, job
        rows, cols, bounds = wavefront_order(cfg.height, cfg.width, wavefront_lag(model))
        self._order = rows * cfg.width + cols  # the positions in the order the steps draw them
        self._every, self._steps, self._done, self._canvas = -(-(len(bounds) - 1) // frames), 0, 0, None

    def __getattr__(self, name):
        return getattr(self._model, name)

    def canvas(self, n, height=None, width=None):
        self._canvas = self._model.canvas(n, height, width)
        return self._canvas

    def forward_many(self, canvas, at, g):
        if g == 0:  # a step begins: every earlier step's positions are drawn, all their colours
            if self._steps % self._every == 0:
                self._look()
            self._steps, self._done = self._steps + 1, self._done + len(at)
        return self._model.forward_many(canvas, at, g)

    def _look(self):
        from .backend import to_numpy

        cfg, first = self._model.config, self._job["keep_rows"]
        drawn = np.zeros(cfg.height * cfg.width, np.uint8)
        drawn[self._order[: self._done]] = 1
        drawn = drawn.reshape(cfg.height, cfg.width)
        drawn[:first] = 1  # the kept rows are there from the start
        # The canvas holds label / (levels - 1) wherever a label is drawn.
        labels = np.rint(to_numpy(self._canvas.image()) * (cfg.levels - 1)).astype(np.uint8)
        labels *= drawn[None, :, :, None]
        if first:
            labels[:, :first] = self._job["known"][:, :first]
        self._show(labels, drawn)


# ---------------------------------------------------------------------------
# Explore: receptive fields, one position's distribution, the NLL map, masks
# ---------------------------------------------------------------------------

FIELD_SIZE = 28  # the fresh models of `minipixel show field`: its defaults
_fields = {"lock": threading.Lock(), "models": {}, "answers": {}}


def field(arch, row, col, channel):
    """The receptive field of sub-pixel (row, col, channel) of a fresh model of ``arch``,
    built as ``minipixel show field`` builds one (grey for channel 0, else RGB), from
    one random image; each answer is kept."""
    from .model import PixelCNNConfig, build_model
    from .viz import receptive_field

    key, colours = (arch, row, col, channel), 3 if channel else 1
    with _fields["lock"]:  # one model of each kind, whose forward and backward keep state
        if key not in _fields["answers"]:
            if (arch, colours) not in _fields["models"]:
                filters = 33 if arch == "gated" and colours == 3 else 32  # a multiple of 3 for gated RGB
                config = PixelCNNConfig(height=FIELD_SIZE, width=FIELD_SIZE, channels=colours, levels=4,
                                        filters=filters, blocks=8, arch=arch)
                _fields["models"][arch, colours] = build_model(config, seed=0, dtype="float64")
            influence, _ = receptive_field(_fields["models"][arch, colours], row, col, channel, images=1)
            _fields["answers"][key] = influence.tolist()
        return {"field": _fields["answers"][key], "row": row, "col": col}


def logits(model, labels, klass):
    """The model's logits of one image, (H, W, C, levels) float64: at every sub-pixel, given
    everything before it (the masks see to that)."""
    from .backend import to_numpy
    from .data import labels_to_inputs

    x = labels_to_inputs(model.xp.asarray(labels[None]), model.config.levels, model.dtype, model.xp)
    with model.inference():
        out = model.forward(x, None if klass is None else np.array([klass]))
    return to_numpy(out)[0]


def distribution(model, labels, klass, row, col, channel):
    z = logits(model, labels, klass)[row, col, channel].astype(np.float64)
    p = np.exp(z - z.max())
    return {"probabilities": (p / p.sum()).tolist()}


def nll_map(model, labels, klass):
    """-log p of every pixel (its colours summed) in nats, their total and the bits per sub-pixel."""
    from .losses import bits_per_dim, log_softmax, nll_per_image

    z = logits(model, labels, klass)
    picked = np.take_along_axis(log_softmax(z), labels[..., None].astype(np.intp), axis=-1)[..., 0]
    total = float(nll_per_image(z[None], labels[None])[0])  # as evaluation sums it
    return {"nll": (-picked.astype(np.float64).sum(axis=2)).tolist(), "total": total,
            "bits_per_dim": bits_per_dim(total, labels.size)}


def masks(query):
    """Mask A and B of a masked convolution, ``?kernel=K&colors=C`` (defaults 5 and 3, as
    ``minipixel show masks``): (K, K, C, C) 0/1 lists."""
    from .masks import conv_mask

    given = {}
    for key, values in query.items():
        if key not in ("kernel", "colors") or len(values) != 1:
            raise RequestError(f"query: expected kernel=K and colors=C once each, got {key[:40]!r}")
        try:
            given[key] = int(values[0])
        except ValueError:
            given[key] = values[0][:40]
    kernel = number(given, "kernel", "kernel", 5)
    colors = given.get("colors", 3)
    if colors not in (1, 3):
        raise RequestError(f"colors: expected 1 or 3, got {colors!r}")
    return {t: conv_mask(kernel, colors, colors, t, colors=colors).astype(int).tolist() for t in "AB"}
