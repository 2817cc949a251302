"""Fuzzing every reader: hundreds of seeded, mutated files per format.

Each case starts from a small valid file in the format and damages it the way
a cut-short download, a bad disk or a hostile sender would: cut short, bits
flipped, bytes inserted, deleted or repeated, header fields set to extremes,
arrays of the wrong dtype or shape, pickled objects. It is then read through
the public reader, and only two outcomes are allowed:

- the file is read, and what comes back is a valid ImageSet (ImageSet checks
  its own dtype, shape and range) or a loadable model, or
- a ValueError (CheckpointError is one) or FileNotFoundError whose message
  names the file (the CLI prints exactly that message on one line).

Any other exception (a traceback at the command line), a hang (each read runs
under a 20 s alarm) or a memory blow-up (the process's peak resident memory,
reset before each read through /proc/self/clear_refs, may grow by at most
256 MiB) fails the test. Every case is seeded: a failure names its seed and
mutation, and ``python -m pytest ... -k <format>`` replays it.

``MINIPIXEL_FUZZ=N`` runs N files per format (default 200).
"""
import gzip
import io
import json
import os
import pickle
import signal
import struct
import tarfile
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dataset_files import amat_lines, csv_lines, random_binary, random_grey, write_idx, write_text
from minipixel.checkpoint import load_model, save_checkpoint
from minipixel.data import ImageSet
from minipixel.datasets import write_npz
from minipixel.datasets.formats import read_images
from minipixel.model import PixelCNNConfig, build_model
from minipixel.optim import Adam
from minipixel.settings import TrainSettings
from minipixel.settings import run_settings

FILES = int(os.environ.get("MINIPIXEL_FUZZ", "200"))
SEED = 20261125
MEMORY_LIMIT_MIB = 256
ALARM_SECONDS = 20
EXTREMES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


# ---------------------------------------------------------------- generic mutations of bytes


def mutate_bytes(raw, rng, header=32):
    """``raw`` damaged in one of eight seeded ways; returns (name of the mutation, new bytes)."""
    data = bytearray(raw)
    n = len(data)
    kind = int(rng.integers(8))
    if kind == 0:
        return "cut short", bytes(data[: int(rng.integers(0, max(n, 1)))])
    if kind in (1, 2):  # bit flips anywhere, or in the header
        span = n if kind == 1 else min(header, n)
        for _ in range(int(rng.integers(1, 17))):
            position = int(rng.integers(span))
            data[position] ^= 1 << int(rng.integers(8))
        return ("bit flips" if kind == 1 else "header bit flips"), bytes(data)
    if kind == 3:  # header bytes set to extremes
        for _ in range(int(rng.integers(1, 5))):
            data[int(rng.integers(min(header, n)))] = EXTREMES[int(rng.integers(len(EXTREMES)))]
        return "header extremes", bytes(data)
    start = int(rng.integers(n + 1))
    if kind == 4:
        return "bytes inserted", bytes(data[:start]) + rng.bytes(int(rng.integers(1, 65))) + bytes(data[start:])
    stop = min(n, start + int(rng.integers(1, 257)))
    if kind == 5:
        return "span deleted", bytes(data[:start] + data[stop:])
    if kind == 6:
        return "span repeated", bytes(data[:stop] + data[start:])
    return "random bytes", rng.bytes(int(rng.integers(0, 2 * n + 1)))


def mutate_maybe_gzipped(raw, rng, header, gzipped):
    """For a gzipped file, damage either the compressed bytes or, half the time, the
    content under a valid gzip (so the format's own parser sees the damage)."""
    if gzipped and rng.random() < 0.5:
        name, content = mutate_bytes(gzip.decompress(raw), rng, header)
        return f"{name} (under gzip)", gzip.compress(content, mtime=0)
    return mutate_bytes(raw, rng, header)


def rezip(path, rng, header=128):
    """An .npz (a zip of .npy members) with one member's bytes damaged and the zip
    itself kept valid (fresh CRCs), so numpy's .npy parser sees the damage."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    victim = sorted(members)[int(rng.integers(len(members)))]
    name, members[victim] = mutate_bytes(members[victim], rng, header)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, raw in members.items():
            archive.writestr(member, raw)
    return f"{victim}: {name}", out.getvalue()


def npy_claiming(array, shape):
    """The .npy bytes of ``array`` under a header that claims ``shape``: more (or less) data than follows."""
    header = np.lib.format.header_data_from_array_1_0(array)
    header["shape"] = shape
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + np.ascontiguousarray(array).tobytes()


def zip_members(path, members):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, raw in members.items():
            archive.writestr(member, raw)
    Path(path).write_bytes(out.getvalue())


# ---------------------------------------------------------------- reading under watch


def _peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _alarm(signum, frame):
    raise TimeoutError(f"a read took more than {ALARM_SECONDS} s")


def read_watched(read, path, folder, case):
    """``read(path)``: 'read' or 'refused'; anything but a clean outcome fails the test with ``case``.
    A refusal must name a file in ``folder`` (the one read, or the damaged one beside it)."""
    watch_memory = _reset_peak_rss()
    before = _peak_rss_mib()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ALARM_SECONDS)
    try:
        read(path)
        outcome = "read"
    except (ValueError, FileNotFoundError) as err:
        message = str(err)
        assert str(folder) in message, f"{case}: the message names no file in {folder}: {message}"
        assert "\n" not in message.strip(), f"{case}: the message is not one line: {message}"
        outcome = "refused"
    except Exception as err:  # noqa: BLE001 - any other exception is the failure this test looks for
        pytest.fail(f"{case}: {type(err).__name__}: {err}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if watch_memory:
        grown = _peak_rss_mib() - before
        assert grown < MEMORY_LIMIT_MIB, f"{case}: the peak memory grew by {grown:.0f} MiB"
    return outcome


def fuzz(fmt, make, mutations, read, tmp_path):
    """Write ``FILES`` mutated files of one format and read each; returns the outcome counts.

    make(folder, rng) -> (path to read, path of the file to damage), the valid original
    mutations: list of functions (original bytes, rng, victim path) -> (name, new bytes or None);
               None means the function wrote the file itself
    """
    counts = Counter()
    for index in range(FILES):
        rng = np.random.default_rng([SEED, index])
        folder = tmp_path / f"{fmt}-{index}"
        folder.mkdir()
        path, victim = make(folder, rng)
        mutation = mutations[int(rng.integers(len(mutations)))]
        name, raw = mutation(victim.read_bytes(), rng, victim)
        if raw is not None:
            victim.write_bytes(raw)
        counts[read_watched(read, path, folder, f"{fmt} file {index} ({name})")] += 1
    print(f"\n{fmt}: {FILES} mutated files, {counts['read']} read, {counts['refused']} refused cleanly")
    assert counts["refused"] > 0
    return counts


def bytes_mutation(header=32, gzipped=False):
    def mutate(raw, rng, victim):
        return mutate_maybe_gzipped(raw, rng, header, gzipped)
    return mutate


# ---------------------------------------------------------------- the formats


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_fuzz_idx(tmp_path, gz):
    suffix = ".gz" if gz else ""

    def make(folder, rng):
        images = write_idx(folder / f"train-images-idx3-ubyte{suffix}", random_grey(3))
        write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(3))
        return images, images

    def labels_file(raw, rng, victim):  # damage the labels file beside the images instead
        labels = victim.parent / victim.name.replace("images", "labels").replace("idx3", "idx1")
        name, damaged = mutate_maybe_gzipped(labels.read_bytes(), rng, 8, gz)
        labels.write_bytes(damaged)
        return f"labels file: {name}", None

    fuzz(f"idx-{'gz' if gz else 'plain'}", make,
         [bytes_mutation(16, gz)] * 3 + [labels_file], read_images, tmp_path)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_fuzz_amat(tmp_path, gz):
    def make(folder, rng):
        path = write_text(folder / f"binarized_mnist_valid.amat{'.gz' if gz else ''}", amat_lines(random_binary(3)))
        return path, path

    fuzz(f"amat-{'gz' if gz else 'plain'}", make, [bytes_mutation(64, gz)], read_images, tmp_path)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_fuzz_csv(tmp_path, gz):
    def make(folder, rng):
        path = write_text(folder / f"mnist.csv{'.gz' if gz else ''}", csv_lines(random_grey(3), [3, 1, 4]))
        return path, path

    fuzz(f"csv-{'gz' if gz else 'plain'}", make, [bytes_mutation(64, gz)], read_images, tmp_path)


def _npz_structure(raw, rng, victim):
    """A well-formed .npz whose arrays are wrong: dtypes, shapes, objects, missing or extra keys."""
    images = random_binary(2)[..., None]
    arrays = {"images": images, "max_value": np.int64(1), "classes": np.array([0, 1])}
    key = ["images", "max_value", "classes"][int(rng.integers(3))]
    choice = int(rng.integers(7))
    if choice == 0:
        del arrays[key]
    elif choice == 1:
        arrays[key] = np.array([{"a": 1}, None], dtype=object)  # pickled inside the .npy
    elif choice == 2:
        arrays[key] = arrays[key].astype([np.float32, np.int64, np.bool_, "<U3", np.complex64][int(rng.integers(5))])
    elif choice == 3:
        arrays[key] = np.zeros(tuple(int(v) for v in rng.integers(0, 4, int(rng.integers(0, 6)))), np.uint8)
    elif choice == 4:
        arrays[key] = np.array([EXTREMES[int(rng.integers(len(EXTREMES)))] * 10**int(rng.integers(0, 12))]).reshape(
            () if rng.random() < 0.5 else (1,))
    elif choice == 5:
        arrays["extra"] = np.arange(3)
    else:  # a header that claims far more data than the member holds
        zip_members(victim, {f"{k}.npy": npy_claiming(np.asarray(v), (2**40,) if k != "images" else (2**20, 28, 28, 1))
                             for k, v in arrays.items()})
        return "npy header claims more data than follows", None
    with open(victim, "wb") as f:
        np.savez(f, **arrays)
    return f"{key}: structure {choice}", None


def test_fuzz_npz(tmp_path):
    def make(folder, rng):
        path = folder / "digits.npz"
        write_npz(path, ImageSet(random_grey(3)[..., None], 255, "test", np.array([1, 2, 3])))
        return path, path

    fuzz("npz", make, [bytes_mutation(64), lambda raw, rng, victim: rezip(victim, rng), _npz_structure],
         read_images, tmp_path)


# ---------------------------------------------------------------- CIFAR-10 batches and archive


def _cifar_batch(n=2, seed=0):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fuzz", b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"a.png"] * n}


class _Marker:
    """Pickles as a call of os.system: a batch that would run a command if it were unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


class _Huge:
    """Pickles as numpy's own reconstructor (which a batch may name) asked for a 1 TB array."""

    def __reduce__(self):
        return np.ndarray((0,), np.uint8).__reduce__()[0], (np.ndarray, (2**40,), b"b")


def _cifar_structure(raw, rng, victim):
    """A batch that is a valid pickle of the wrong thing, or of something hostile."""
    batch = _cifar_batch()
    choice = int(rng.integers(8))
    if choice == 0:
        batch[b"data"] = batch[b"data"].astype([np.float64, np.int16, np.int64][int(rng.integers(3))])
    elif choice == 1:
        batch[b"data"] = batch[b"data"].reshape(2, 3, 32, 32)
    elif choice == 2:
        batch[b"labels"] = [int(v) for v in rng.integers(-10**12, 10**12, int(rng.integers(0, 4)))]
    elif choice == 3:
        batch[b"labels"] = [[1, 2], [3]]
    elif choice == 4:
        del batch[[b"data", b"labels"][int(rng.integers(2))]]
    elif choice == 5:
        batch = [batch]
    elif choice == 6:
        batch[b"data"] = _Marker(victim.parent / "ran")
    else:  # numpy's own reconstructor asked for a huge array
        batch[b"data"] = _Huge()
    return f"structure {choice}", pickle.dumps(batch, protocol=2)


def _write_cifar_folder(folder):
    batches = folder / "cifar-10-batches-py"
    batches.mkdir()
    for index, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        (batches / name).write_bytes(pickle.dumps(_cifar_batch(seed=index), protocol=2))
    return batches


def test_fuzz_cifar10_batches(tmp_path):
    def make(folder, rng):
        batches = _write_cifar_folder(folder)
        return batches, batches / f"data_batch_{int(rng.integers(1, 6))}"

    def read(path):
        try:
            read_images(path)
        finally:
            assert not (path / "ran").exists(), "a pickled call ran"

    fuzz("cifar10-batch", make, [bytes_mutation(64), _cifar_structure], read, tmp_path)


def _tar(members):
    """A tar.gz of (TarInfo, bytes or None) pairs."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for info, raw in members:
            archive.addfile(info, io.BytesIO(raw) if raw is not None else None)
    return out.getvalue()


def _cifar_archive_members():
    members = []
    for index, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        raw = pickle.dumps(_cifar_batch(seed=index), protocol=2)
        info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
        info.size = len(raw)
        members.append((info, raw))
    return members


def _archive_structure(raw, rng, victim):
    """Archives whose members are named or typed to escape: '..', absolute paths, links, devices."""
    members = _cifar_archive_members()
    info, data = members[int(rng.integers(len(members)))]
    choice = int(rng.integers(5))
    if choice == 0:
        info.name = "../" * int(rng.integers(1, 4)) + info.name
    elif choice == 1:
        info.name = "/tmp/" + info.name
    elif choice in (2, 3):
        info.type = tarfile.SYMTYPE if choice == 2 else tarfile.LNKTYPE
        info.linkname = ["/etc/passwd", "../../outside", "cifar-10-batches-py/test_batch"][int(rng.integers(3))]
        info.size = 0
        members = [(i, None if i is info else d) for i, d in members]
    else:
        info.type = tarfile.CHRTYPE
        info.size = 0
        members = [(i, None if i is info else d) for i, d in members]
    return f"member {info.name}: structure {choice}", _tar(members)


def test_fuzz_cifar10_archive(tmp_path):
    def make(folder, rng):
        path = folder / "cifar-10-python.tar.gz"
        path.write_bytes(_tar(_cifar_archive_members()))
        return path, path

    def under_gzip(raw, rng, victim):  # damage the tar under a valid gzip
        name, damaged = mutate_bytes(gzip.decompress(raw), rng, 512)
        return f"{name} (tar under gzip)", gzip.compress(damaged, mtime=0)

    counts = fuzz("cifar10-archive", make, [bytes_mutation(64), under_gzip, under_gzip, _archive_structure],
                  read_images, tmp_path)
    assert not any(Path("/tmp").glob("cifar-10-batches-py*"))  # nothing written where a member pointed
    assert counts["read"] > 0


# ---------------------------------------------------------------- image folders


def _with_crc(data, start, length):
    """PNG chunk at ``start`` (its length field) with its CRC recomputed."""
    body = bytes(data[start + 4:start + 8 + length])
    data[start + 8 + length:start + 12 + length] = struct.pack(">I", zlib.crc32(body))
    return data


def _image_structure(raw, rng, victim):
    """Header sizes set to extremes with the checksums kept valid: a PNG or JPEG
    that claims to be enormous (a decompression bomb) or empty."""
    data = bytearray(raw)
    sizes = [0, 1, 2**16 - 1, 2**16, 2**20, 2**31 - 1, 2**32 - 1, 50_000, 9_000, 12_000]
    if data.startswith(b"\x89PNG"):
        for offset in (16, 20):  # IHDR width, height (big-endian uint32)
            data[offset:offset + 4] = struct.pack(">I", sizes[int(rng.integers(len(sizes)))])
        return "PNG IHDR size extremes", bytes(_with_crc(data, 8, 13))
    sof = data.find(b"\xff\xc0")
    for offset in (5, 7):  # SOF0 height, width (big-endian uint16)
        data[sof + offset:sof + offset + 2] = struct.pack(">H", sizes[int(rng.integers(len(sizes)))] % 2**16)
    return "JPEG SOF size extremes", bytes(data)


def test_fuzz_image_folder(tmp_path):
    from PIL import Image

    def make(folder, rng):
        images = folder / "images"
        for k in range(3):
            (images / str(k)).mkdir(parents=True)
            Image.fromarray(random_grey(1, seed=k)[0]).save(images / str(k) / "a.png")
            Image.fromarray(random_grey(1, seed=k, shape=(28, 28, 3))[0]).save(images / str(k) / "b.jpg")
        return images, images / str(int(rng.integers(3))) / ("a.png", "b.jpg")[int(rng.integers(2))]

    fuzz("image-folder", make, [bytes_mutation(64), bytes_mutation(64), _image_structure], read_images, tmp_path)


# ---------------------------------------------------------------- checkpoints


def _small_run_checkpoint(path):
    model = build_model(PixelCNNConfig(height=6, width=6, filters=4, blocks=1), seed=1)
    optimizer = Adam(model.parameters(), lr=1e-3)
    optimizer.t = 3
    settings = TrainSettings(data="digits.npz", filters=4, blocks=1, batch=4, steps=10)
    save_checkpoint(path, model, optimizer, {"step": 3, "seconds": 1.5, "settings": vars(settings)})


def _checkpoint_structure(raw, rng, victim):
    """A well-formed checkpoint .npz with wrong contents: config fields, state, parameters, optimizer."""
    with np.load(victim) as f:
        arrays = {k: f[k] for k in f.files}
    config, state = json.loads(str(arrays["config"])), json.loads(str(arrays["state"]))
    odd = [-1, 0, 10**9, 2**63, 1.5, "x", None, [], {}, float("nan")]
    choice = int(rng.integers(8))
    if choice == 0:
        config[sorted(config)[int(rng.integers(len(config)))]] = odd[int(rng.integers(len(odd)))]
    elif choice == 1:
        target = state if rng.random() < 0.5 else state["settings"]
        target[sorted(target)[int(rng.integers(len(target)))]] = odd[int(rng.integers(len(odd)))]
    elif choice == 2:
        arrays[["format", "config", "state"][int(rng.integers(3))]] = np.array(
            ["minipixel-checkpoint-2", "{not json", "[1, 2]", "null"][int(rng.integers(4))])
    elif choice in (3, 4):
        prefix = "param/" if choice == 3 else "optim/"
        key = sorted(k for k in arrays if k.startswith(prefix))[int(rng.integers(sum(k.startswith(prefix)
                                                                                     for k in arrays)))]
        change = int(rng.integers(5))
        if change == 0:
            del arrays[key]
        elif change == 1:
            arrays[key] = np.zeros(arrays[key].size + 1, arrays[key].dtype)
        elif change == 2:
            arrays[key] = arrays[key].astype([np.complex64, "<U2", np.bool_, np.int8][int(rng.integers(4))])
        elif change == 3:
            arrays[key] = np.array([None] * max(arrays[key].size, 1), dtype=object).reshape(arrays[key].shape or ())
        else:
            arrays[key] = np.full_like(arrays[key], [np.nan, np.inf, -np.inf][int(rng.integers(3))], dtype=float)
    elif choice == 5:
        arrays["param/extra.W"] = np.zeros(3, np.float32)
    else:  # a .npy header that claims gigabytes
        key = sorted(arrays)[int(rng.integers(len(arrays)))]
        members = {f"{k}.npy": (npy_claiming(v, (2**20, 2**20)) if k == key else _npy(v)) for k, v in arrays.items()}
        zip_members(victim, members)
        return f"{key}: npy header claims more data than follows", None
    arrays["config"], arrays["state"] = np.array(json.dumps(config)), np.array(json.dumps(state))
    with open(victim, "wb") as f:
        np.savez(f, **arrays)
    return f"structure {choice}", None


def _npy(array):
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)
    return out.getvalue()


def test_fuzz_checkpoints(tmp_path):
    def make(folder, rng):
        path = folder / "checkpoint.npz"
        _small_run_checkpoint(path)
        return path, path

    def read(path):  # what eval, sample, complete and --resume read
        run_settings(path)
        load_model(path)

    fuzz("checkpoint", make, [bytes_mutation(64), lambda raw, rng, victim: rezip(victim, rng),
                              _checkpoint_structure, _checkpoint_structure], read, tmp_path)
