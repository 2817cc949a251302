"""Inputs that would spend memory, disk or time before any check (issue 38): a CIFAR-10 pickle
of a few hundred bytes that unfolds into gigabytes, a few MB of all-zero PNGs that decode to
gigabytes, a download that never ends, a FIFO or /dev/zero under a data file's name.

Each must be refused in seconds with one line that names the file and says what is wrong. The
reader runs in a child process under a 4 GiB address-space cap (RLIMIT_AS) with a timeout, so a
MemoryError, a kill, a crash or a hang is a failure there, not a machine brought to its knees;
the child also reports its peak memory, which must stay small.
"""
import hashlib
import http.server
import importlib
import io
import os
import pickle
import stat
import struct
import subprocess
import sys
import tarfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from minipixel.datasets import DATASETS, RemoteFile, read_image, read_image_folder
from minipixel.datasets import image_folder as image_folder_module

dl = importlib.import_module("minipixel.datasets.download")  # the module; the package exports the function

REPO = Path(__file__).resolve().parents[2]
CAP = 4 * 2**30
# Seconds a refusal may take (the child starts in about 0.3 s), and the child's hard limit.
QUICK_SECONDS, TIMEOUT_SECONDS = 10, 20
# Peak resident memory a refusal may take (Python, numpy and Pillow alone are about 40 MB).
MOST_PEAK_BYTES = 512 * 2**20

# The child: load(spec) (the one entry point every reader goes through), under the cap; prints the
# refusal on stdout (exit status 3) and its peak memory on stderr: VmHWM, its own peak (ru_maxrss would
# start from the parent's size at the fork, so a big test process would fail the cap: mutmut's does).
LOAD = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({CAP}, {CAP}))
from minipixel.datasets import load
try:
    load(sys.argv[1], data_dir=sys.argv[2] if len(sys.argv) > 2 else None)
    print("read it")
except (ValueError, FileNotFoundError) as err:
    print(err)
    sys.exit(3)  # a refusal; an uncaught error (a MemoryError, say) exits 1
finally:
    print("peak", [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0],
          file=sys.stderr)
"""


def run_capped(code, *args):
    """Run ``code`` in a fresh Python with ``args``: (CompletedProcess, seconds). A hang fails the test."""
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, capture_output=True,
                              text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {TIMEOUT_SECONDS} s: a hang, or memory or disk being filled")
    return done, time.monotonic() - start


def assert_refused_quickly(spec, *words, data_dir=None):
    """load(spec) in a capped child: refused (exit 3) quickly with little memory, in one line holding ``words``."""
    done, seconds = run_capped(LOAD, spec, *([data_dir] if data_dir is not None else []))
    assert done.returncode == 3, f"exit {done.returncode}, expected a refusal (3):\n{done.stdout}{done.stderr[-3000:]}"
    assert seconds < QUICK_SECONDS, f"took {seconds:.1f} s"
    peak = int(done.stderr.split("peak")[-1])
    assert peak < MOST_PEAK_BYTES, f"peak memory {peak / 2**20:.0f} MiB before the refusal"
    lines = done.stdout.splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}"
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------- 1. CIFAR-10 pickles


def nested_labels(depth):
    """[[x, x], [x, x]] ... ``depth`` levels of a list holding itself twice: a few hundred bytes pickled
    (the pickle's memo shares the references), 2**depth integers once numpy unfolds it."""
    labels = [0]
    for _ in range(depth):
        labels = [labels, labels]
    return labels


def hostile_batch(kind):
    """The bytes of a test_batch built to spend memory."""
    if kind == "nested labels":  # the issue's: 2**28 int64 labels, 2 GiB and more while numpy unfolds them
        return pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": nested_labels(28)}, protocol=4)
    if kind == "memo slot":  # 10 bytes: an empty list stored at memo slot 2**27 grows the memo to 2 GiB
        return b"\x80\x02]r" + struct.pack("<I", 2**27 + 1) + b"."
    # An object array whose state claims 2**28 items and holds 2: numpy fills the rest with holes.
    raw = pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": np.array([1, 2], object)}, protocol=4)
    two = raw.rindex(b"K\x02\x85")  # the object array's shape (2,): BININT1 2, TUPLE1
    return raw[:two] + b"J" + struct.pack("<i", 2**28) + raw[two + 2:]


@pytest.mark.parametrize("where", ["folder", "archive"])
@pytest.mark.parametrize("kind, refused", [
    ("nested labels", "expected 0 integer labels (one per image) in b'labels', got a list of 2 items, not all numbers"),
    ("memo slot", "numbers its memo in order, but opcode 2 stores at slot 134,217,729"),
    ("object array", "refuses numpy.dtype('O8')"),
])
def test_cifar10_batch_that_unfolds_into_gigabytes_is_refused(tmp_path, kind, refused, where):
    raw = hostile_batch(kind)
    assert len(raw) < 1000
    folder = tmp_path / "data" / "cifar10"
    if where == "folder":
        (folder / "cifar-10-batches-py").mkdir(parents=True)
        (folder / "cifar-10-batches-py" / "test_batch").write_bytes(raw)
    else:
        folder.mkdir(parents=True)
        with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as archive:
            member = tarfile.TarInfo("cifar-10-batches-py/test_batch")
            member.size = len(raw)
            archive.addfile(member, io.BytesIO(raw))
    assert_refused_quickly("cifar10:test", "test_batch", refused, data_dir=tmp_path / "data")


# ---------------------------------------------------------------- 2. image folders


def zero_png(width, height, rows=None):
    """A grey PNG of ``width`` x ``height`` zeros, compressed row by row (8190 x 8190: 65 KB).
    ``rows``: write only that many rows, so that the header claims more than the file holds."""
    squeeze = zlib.compressobj(9)
    row = bytes(width + 1)  # filter type 0, then the row
    data = b"".join(squeeze.compress(row) for _ in range(height if rows is None else rows)) + squeeze.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def folder_of_copies(folder, raw, n):
    """``n`` images of the same bytes (hard links where the file system has them: one file on disk)."""
    folder.mkdir()
    (folder / "0000.png").write_bytes(raw)
    for i in range(1, n):
        try:
            os.link(folder / "0000.png", folder / f"{i:04d}.png")
        except OSError:
            (folder / f"{i:04d}.png").write_bytes(raw)
    return folder


@pytest.mark.parametrize("rows", [None, 1], ids=["all-zero", "header-claims-more"])
def test_folder_of_small_pngs_that_decode_to_gigabytes_is_refused_from_their_headers(tmp_path, rows):
    # 64 all-zero 8190 x 8190 PNGs, 4 MB on disk (65 KB each), 4.0 GiB decoded: past the cap.
    raw = zero_png(8190, 8190, rows)
    assert len(raw) < 100_000
    folder = folder_of_copies(tmp_path / "zeros", raw, 64)
    assert_refused_quickly(folder, "zeros: its 64 images would take 4.", "GiB decoded (8190x8190 pixels, 1 channel")


def test_memory_budget_counts_every_image_and_the_target_size(tmp_path, monkeypatch):
    folder = folder_of_copies(tmp_path / "photos", zero_png(100, 100), 4)
    # 4 x 100 x 100 decoded, plus 12 bytes a pixel while one decodes: 160,000 bytes; at --size 10, 120,400.
    monkeypatch.setattr(image_folder_module, "available_memory", lambda: 2 * 140_000)
    monkeypatch.setattr(image_folder_module, "_address_space_left", lambda: None)  # whatever ulimit -v runs the tests
    with pytest.raises(ValueError, match=r"photos: its 4 images would take 0\.2 MiB decoded \(100x100 pixels, 1 "
                                         r"channel.*more than the 0\.1 MiB a folder may take.*pass --size S"):
        read_image_folder(folder, progress=False)
    assert read_image_folder(folder, size=10, progress=False).images.shape == (4, 10, 10, 1)
    monkeypatch.setattr(image_folder_module, "available_memory", lambda: 2 * 160_000)
    assert read_image_folder(folder, progress=False).images.shape == (4, 100, 100, 1)


def test_memory_budget_is_half_of_what_the_address_space_limit_leaves():
    code = f"""
import resource
resource.setrlimit(resource.RLIMIT_AS, ({CAP}, {CAP}))
from minipixel.datasets import image_folder
print(image_folder._memory_budget())
"""
    done, _ = run_capped(code)
    assert 0 < int(done.stdout) <= CAP // 2, done.stdout + done.stderr


def test_image_beyond_pillows_own_pixel_limit_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    from PIL import Image

    (tmp_path / "big.png").write_bytes(zero_png(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match=r"big\.png: cannot read it as an image \(40x40 pixels, more than the 1,000"):
        read_image_folder(tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"big\.png: cannot read it as an image \(40x40 pixels, more than the 1,000"):
        read_image(tmp_path / "big.png")


# ---------------------------------------------------------------- 3. downloads


class EndlessResponse:
    """What urlopen returns for a server that never stops sending: counts what was handed out."""

    def __init__(self, status=200, headers=None, most=64 * 2**20):
        self.status, self.headers, self.sent, self.most = status, headers or {}, 0, most

    def read1(self, n):
        n = min(n, 65536, self.most - self.sent)  # stops at 64 MiB, so that a failing test ends
        self.sent += n
        return bytes(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def one_file(monkeypatch):
    """The "mnist" download list replaced by one file of 100,000 bytes (checksum of zeros)."""
    remote = RemoteFile("train-images-idx3-ubyte.gz", "http://example.invalid/train-images-idx3-ubyte.gz", "md5",
                        hashlib.md5(bytes(100_000)).hexdigest(), 100_000)
    monkeypatch.setitem(DATASETS, "mnist", {**DATASETS["mnist"], "download": (remote,)})
    monkeypatch.setattr(dl, "RETRY_WAIT_SECONDS", 0)
    monkeypatch.delenv("MINIPIXEL_MIRROR", raising=False)
    return remote


@pytest.mark.parametrize("have, status, headers, sent", [
    (0, 200, {}, r"sent more than the file's 100,000 bytes \(from byte 0 on\)"),
    (60_000, 206, {"Content-Range": "bytes 60000-*/*"},
     r"sent more than the file's 100,000 bytes \(from byte 60,000 on\)"),
    (0, 200, {"Content-Length": str(10**12)}, r"announces 1,000,000,000,000 bytes \(Content-Length .*\), more than "
                                              r"the file's 100,000"),
])
def test_download_longer_than_the_file_stops_at_its_size(tmp_path, monkeypatch, one_file, have, status, headers,
                                                          sent):
    folder = tmp_path / "mnist"
    folder.mkdir()
    if have:
        (folder / "train-images-idx3-ubyte.gz.part").write_bytes(bytes(have))
    answers = []
    monkeypatch.setattr(dl.urllib.request, "urlopen",
                        lambda *args, **kwargs: answers.append(EndlessResponse(status, headers)) or answers[-1])
    start = time.monotonic()
    with pytest.raises(ValueError, match=rf"train-images-idx3-ubyte\.gz: the server at \S+ {sent}; stopped there "
                                         r"and deleted the partial file"):
        dl.download("mnist", data_dir=tmp_path, progress=False, log=lambda line: None, retries=0)
    assert time.monotonic() - start < QUICK_SECONDS
    assert len(answers) == 1 and answers[0].sent <= 100_000 - have + 65536  # one chunk past the size, not written
    assert not list(folder.iterdir())


class EndlessHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and zeros without end (no Content-Length), up to 64 MiB."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        try:
            while self.server.sent < 64 * 2**20:
                self.wfile.write(bytes(65536))
                self.server.sent += 65536
        except OSError:
            pass  # the client hung up


def test_download_command_against_an_endless_mirror_stops_at_the_file_size(tmp_path):
    # The real command, its real table (the first MNIST file: 9,912,422 bytes), a real server.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EndlessHandler)
    server.daemon_threads, server.sent = True, 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    code = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({CAP}, {CAP}))
from minipixel.cli import main
sys.exit(main(sys.argv[1:]))
"""
    try:
        mirror = f"http://127.0.0.1:{server.server_address[1]}/"
        done, seconds = run_capped(code, "download", "mnist", "--mirror", mirror, "--data-dir", tmp_path, "--quiet")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "train-images-idx3-ubyte.gz: the server at" in lines[0], lines
    assert "sent more than the file's 9,912,422 bytes (from byte 0 on); stopped there and deleted" in lines[0]
    assert seconds < QUICK_SECONDS
    assert server.sent < 9_912_422 + 16 * 2**20  # what the socket buffers held, not 64 MiB
    assert not list((tmp_path / "mnist").iterdir())


# ---------------------------------------------------------------- 4. FIFOs and devices


def fifo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def device_link(path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(device)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("spec, make, named, what", [
    ("x.amat", lambda d: fifo(d / "x.amat"), "x.amat", "a FIFO"),
    ("x.npz", lambda d: fifo(d / "x.npz"), "x.npz", "a FIFO"),
    ("m.csv.gz", lambda d: fifo(d / "m.csv.gz"), "m.csv.gz", "a FIFO"),
    ("cifar-10-python.tar.gz", lambda d: fifo(d / "cifar-10-python.tar.gz"), "cifar-10-python.tar.gz", "a FIFO"),
    ("photos", lambda d: fifo(d / "photos" / "a.png"), "a.png", "a FIFO"),
    ("train-images-idx3-ubyte", lambda d: device_link(d / "train-images-idx3-ubyte", "/dev/zero"),
     "train-images-idx3-ubyte (a link to /dev/zero)", "a character device"),
    ("mnist:train", lambda d: device_link(d / "data" / "mnist" / "train-images-idx3-ubyte", "/dev/zero"),
     "train-images-idx3-ubyte (a link to /dev/zero)", "a character device"),
    ("cifar10:test", lambda d: device_link(d / "data" / "cifar10" / "cifar-10-python.tar.gz", "/dev/urandom"),
     "cifar-10-python.tar.gz (a link to /dev/urandom)", "a character device"),
    ("cifar10:test", lambda d: fifo(d / "data" / "cifar10" / "cifar-10-batches-py" / "test_batch"), "test_batch",
     "a FIFO"),
    ("photos", lambda d: device_link(d / "photos" / "b.png", "/dev/urandom"), "b.png (a link to /dev/urandom)",
     "a character device"),
])
def test_fifo_or_device_as_a_data_file_is_refused_by_name(tmp_path, monkeypatch, spec, make, named, what):
    make(tmp_path)
    spec = spec if ":" in spec else tmp_path / spec
    assert_refused_quickly(spec, named, f"is {what}", "expected an ordinary file", data_dir=tmp_path / "data")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_as_the_labels_beside_idx_images_is_refused_by_name(tmp_path):
    from dataset_files import write_idx

    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 4, 4), np.uint8))
    fifo(tmp_path / "train-labels-idx1-ubyte")
    assert_refused_quickly(tmp_path / "train-images-idx3-ubyte", "train-labels-idx1-ubyte: is a FIFO")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_put_in_place_after_the_check_is_refused_without_waiting(tmp_path, monkeypatch):
    # The file is swapped for a FIFO between the check and the open: the open must
    # not wait for a writer, and the check after it names the file.
    from minipixel.datasets import _files

    fifo(tmp_path / "x.amat")
    monkeypatch.setattr(_files, "check_is_file", lambda path: None)  # the check saw an ordinary file
    outcome = []

    def read():
        try:
            _files.read_file_bytes(tmp_path / "x.amat")
        except ValueError as error:
            outcome.append(str(error))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=QUICK_SECONDS)
    if reader.is_alive():  # blocked in open(): a writer lets it go, and the test fails
        os.close(os.open(tmp_path / "x.amat", os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=QUICK_SECONDS)
        pytest.fail("opening the FIFO waited for a writer")
    assert outcome and outcome[0].startswith(f"{tmp_path / 'x.amat'}: is a FIFO")


def test_a_file_of_a_kind_with_no_words_is_refused_as_not_a_file(tmp_path):
    # Linux's stat() says file, folder, FIFO, device or socket; other systems have more kinds (a
    # Solaris door, a BSD whiteout), and a mode read without following links may be a link's. None
    # is an ordinary file, so each is refused, in the same words.
    from minipixel.datasets import _files
    from minipixel.files import not_ordinary

    assert not_ordinary(stat.S_IFREG | 0o644) is None
    for mode in (stat.S_IFLNK | 0o777, 0o150000 | 0o644, 0o160000, 0):  # a link, a door, a whiteout, no kind
        assert not_ordinary(mode) == "not a file"
        with pytest.raises(ValueError, match="x.amat: is not a file; expected an ordinary file of data"):
            _files._check_mode(tmp_path / "x.amat", mode)
