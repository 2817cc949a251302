"""Tests for minipixel.datasets.download, against a real HTTP server on 127.0.0.1.

There is no internet here, so the dataset table is pointed at small files that
a local server (``http.server`` in a thread) serves. The server honours
``Range`` requests, as real servers do, and can be told to misbehave:

* ``drop_once``:    the server's first request gets a full Content-Length but
                    only half the bytes, then the connection is closed
* ``reset_once``:   the same, but the connection is reset (TCP RST) instead
* ``stall_once``:   half the bytes, then silence (the client's timeout fires)
* ``ignore_range``: answer every request with 200 and the whole file
* ``wrong_bytes``:  serve other bytes of the same length
* ``not_found``:    answer 404
* ``drop_always``:  as ``drop_once``, but every request (the retries too)
* ``bad_range_once``: answer the first request with 206 and a Content-Range that
                    starts elsewhere than asked

``server.agents`` collects the User-Agent header of every request.
"""
import gzip
import hashlib
import importlib.util
import os
import socket
import struct
import threading
import time
import types
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from tqdm import tqdm

from minipixel.datasets import DATASETS, DOWNLOADABLE, DownloadError, RemoteFile, download, load

# The module itself, for monkeypatching its constants: ``minipixel.datasets.download``
# as an attribute is the function of that name, which the package exports.
dl = importlib.import_module("minipixel.datasets.download")

# ---------------------------------------------------------------- the server


class MisbehavingHandler(BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes) at ``/<name>``, misbehaving as ``server.modes`` says."""

    def log_message(self, *args):
        pass  # keep the test output clean

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        asked_range = self.headers.get("Range")
        server.requests.append((name, asked_range))
        server.agents.append(self.headers.get("User-Agent"))
        first_request = len(server.requests) == 1
        if "not_found" in server.modes or name not in server.files:
            self.send_error(404)
            return
        body = server.files[name]
        if "wrong_bytes" in server.modes:
            body = bytes(b ^ 0xFF for b in body)

        start = 0
        if first_request and "bad_range_once" in server.modes:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 5-{len(body) - 1}/{len(body)}")
        elif asked_range and "ignore_range" not in server.modes:
            start = int(asked_range.removeprefix("bytes=").partition("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()

        if "drop_always" in server.modes or first_request and server.modes & {"drop_once", "reset_once", "stall_once"}:
            self.wfile.write(payload[: len(payload) // 2])
            if "stall_once" in server.modes:
                time.sleep(1.0)  # longer than the client's timeout in that test
            elif "reset_once" in server.modes:
                # SO_LINGER with a zero timeout makes close() send a TCP reset.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def server():
    """A running server; set ``server.files`` and ``server.modes``, read ``server.requests``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), MisbehavingHandler)
    httpd.daemon_threads = True
    httpd.files, httpd.modes, httpd.requests, httpd.agents = {}, set(), [], []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    # A short poll interval makes shutdown() return quickly.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """No pause between retries, and no mirror from the environment of whoever runs the tests."""
    monkeypatch.setattr(dl, "RETRY_WAIT_SECONDS", 0)
    monkeypatch.delenv("MINIPIXEL_MIRROR", raising=False)
    monkeypatch.delenv("MINIPIXEL_DATA", raising=False)


# ---------------------------------------------------------------- a small "mnist"


def idx_gz(array):
    """An IDX file (as MNIST ships), gzipped: 0, 0, type 0x08, ndim, big-endian sizes, bytes."""
    array = np.asarray(array, np.uint8)
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


@pytest.fixture
def tiny_mnist(server, monkeypatch):
    """Replace the "mnist" download list by two small real IDX files served by ``server``.

    The images are random pixels, so gzip cannot shrink them: about 8 KB, enough
    for a download that is cut in half to be worth resuming. Returns name -> bytes.
    """
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": idx_gz(rng.integers(0, 256, (10, 28, 28))),
        "train-labels-idx1-ubyte.gz": idx_gz(rng.integers(0, 10, 10)),
    }
    server.files.update(files)
    entry = {
        **DATASETS["mnist"],
        "download": (
            # URLs at the server itself, so that calls without base_url work too;
            # one file with a known size and one without, as in the real table.
            RemoteFile("train-images-idx3-ubyte.gz", server.url + "train-images-idx3-ubyte.gz", "md5",
                       hashlib.md5(files["train-images-idx3-ubyte.gz"]).hexdigest(),
                       len(files["train-images-idx3-ubyte.gz"])),
            RemoteFile("train-labels-idx1-ubyte.gz", server.url + "train-labels-idx1-ubyte.gz", "sha1",
                       hashlib.sha1(files["train-labels-idx1-ubyte.gz"]).hexdigest(), None),
        ),
    }
    monkeypatch.setitem(DATASETS, "mnist", entry)
    return files


def quiet_download(name, data_dir, **kwargs):
    """download() without a progress bar, returning (paths, logged lines)."""
    lines = []
    paths = download(name, data_dir=data_dir, progress=False, log=lines.append, **kwargs)
    return paths, lines


def no_part_files(folder):
    return not list(folder.glob("*.part"))


# ---------------------------------------------------------------- tests


def test_download_puts_checked_files_where_load_finds_them(tmp_path, tiny_mnist):
    paths, lines = quiet_download("mnist", tmp_path)
    folder = tmp_path / "mnist"
    assert paths == [folder / name for name in tiny_mnist]
    for path in paths:
        assert path.read_bytes() == tiny_mnist[path.name]
    assert no_part_files(folder)
    assert len(lines) == 2 and all("downloaded" in line for line in lines)
    # The point of the folder layout: the named dataset is found afterwards.
    imageset = load("mnist:train", data_dir=tmp_path)
    assert imageset.images.shape == (10, 28, 28, 1)
    assert imageset.classes.shape == (10,)


def test_second_call_skips_files_that_are_there(tmp_path, tiny_mnist, server):
    quiet_download("mnist", tmp_path)
    requests_before = len(server.requests)
    paths, lines = quiet_download("mnist", tmp_path)
    assert len(server.requests) == requests_before
    assert len(lines) == 2 and all("already there" in line for line in lines)
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())


def test_file_with_wrong_checksum_is_downloaded_again(tmp_path, tiny_mnist, server):
    target = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    target.parent.mkdir()
    target.write_bytes(b"not the labels")
    _, lines = quiet_download("mnist", tmp_path)
    assert target.read_bytes() == tiny_mnist[target.name]
    assert any("wrong sha1 checksum" in line for line in lines)


@pytest.mark.parametrize("mode", ["drop_once", "reset_once"])
def test_dropped_connection_is_resumed(tmp_path, tiny_mnist, server, mode):
    server.modes.add(mode)
    paths, lines = quiet_download("mnist", tmp_path, base_url=server.url)
    for path in paths:
        assert path.read_bytes() == tiny_mnist[path.name]
    assert no_part_files(tmp_path / "mnist")
    images = "train-images-idx3-ubyte.gz"
    seen = [asked for name, asked in server.requests if name == images]
    assert len(seen) == 2 and seen[0] is None
    if mode == "drop_once":
        # The second request asks for the rest, from exactly where the first stopped.
        assert seen[1] == f"bytes={len(tiny_mnist[images]) // 2}-"
        assert any("resuming at" in line for line in lines)


def test_stalled_connection_times_out_and_is_resumed(tmp_path, tiny_mnist, server):
    server.modes.add("stall_once")
    paths, lines = quiet_download("mnist", tmp_path, timeout=0.3)
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())
    images = "train-images-idx3-ubyte.gz"
    assert (images, f"bytes={len(tiny_mnist[images]) // 2}-") in server.requests
    assert any("Timeout" in line for line in lines)


def test_without_retries_the_partial_file_is_kept_and_resumed_next_time(tmp_path, tiny_mnist, server):
    server.modes.add("drop_once")
    images = "train-images-idx3-ubyte.gz"
    target = tmp_path / "mnist" / images
    part = target.with_name(images + ".part")
    with pytest.raises(DownloadError) as caught:
        quiet_download("mnist", tmp_path, retries=0)
    message = str(caught.value)
    assert str(part) in message and "partial file is kept" in message and "again" in message
    assert not target.exists()
    assert part.read_bytes() == tiny_mnist[images][: len(tiny_mnist[images]) // 2]

    # Running again goes on from the .part (the server drops only the first request).
    paths, _ = quiet_download("mnist", tmp_path, retries=0)
    assert target.read_bytes() == tiny_mnist[images]
    assert server.requests[-2] == (images, f"bytes={len(tiny_mnist[images]) // 2}-")
    assert no_part_files(tmp_path / "mnist")


def test_wrong_bytes_raise_and_leave_nothing_behind(tmp_path, tiny_mnist, server):
    server.modes.add("wrong_bytes")
    images = "train-images-idx3-ubyte.gz"
    with pytest.raises(ValueError) as caught:
        quiet_download("mnist", tmp_path)
    message = str(caught.value)
    expected = DATASETS["mnist"]["download"][0].checksum
    actual = hashlib.md5(bytes(b ^ 0xFF for b in tiny_mnist[images])).hexdigest()
    assert images in message and expected in message and actual in message
    assert not (tmp_path / "mnist" / images).exists()
    assert no_part_files(tmp_path / "mnist")


def test_server_that_ignores_range_still_gives_the_right_file(tmp_path, tiny_mnist, server):
    # The first answer breaks off at half; the retry asks for the rest but gets the
    # whole file with 200. Appending that to the half would give a wrong file.
    server.modes.update({"drop_once", "ignore_range"})
    paths, lines = quiet_download("mnist", tmp_path)
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())
    images = "train-images-idx3-ubyte.gz"
    assert (images, f"bytes={len(tiny_mnist[images]) // 2}-") in server.requests
    assert any("starting over" in line for line in lines)


def test_whole_part_file_is_finished_without_fetching_again(tmp_path, tiny_mnist, server):
    # A crash between the last byte and the rename leaves a whole .part: for the
    # file of known size no request is made; for the other the server answers 416.
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, content in tiny_mnist.items():
        (folder / (name + ".part")).write_bytes(content)
    paths, _ = quiet_download("mnist", tmp_path)
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())
    assert [name for name, _ in server.requests] == ["train-labels-idx1-ubyte.gz"]
    assert no_part_files(folder)


def test_http_error_names_url_and_status(tmp_path, tiny_mnist, server):
    server.modes.add("not_found")
    with pytest.raises(DownloadError) as caught:
        quiet_download("mnist", tmp_path)
    assert server.url + "train-images-idx3-ubyte.gz" in str(caught.value)
    assert "404" in str(caught.value)


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens: a port the OS just gave out, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_no_server_explains_how_to_get_the_files_by_hand(tmp_path, tiny_mnist):
    base = closed_port_url()
    with pytest.raises(DownloadError) as caught:
        quiet_download("mnist", tmp_path, base_url=base)
    message = str(caught.value)
    assert base + "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message
    for remote in DATASETS["mnist"]["download"]:  # every missing file, with its checksum
        assert remote.checksum in message and remote.url in message
    assert "minipixel train --data mnist:train" in message


def test_mirror_from_the_environment(tmp_path, tiny_mnist, server, monkeypatch):
    # The table's URLs lead nowhere; the mirror variable sends the requests to the server.
    entry = DATASETS["mnist"]
    dead = closed_port_url()
    monkeypatch.setitem(DATASETS, "mnist", {
        **entry,
        "download": tuple(r._replace(url=dead + r.name) for r in entry["download"]),
    })
    monkeypatch.setenv("MINIPIXEL_MIRROR", server.url.rstrip("/"))  # the missing "/" is added
    monkeypatch.setenv("MINIPIXEL_DATA", str(tmp_path))
    paths, _ = quiet_download("mnist", None)
    assert paths[0] == tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())


def test_unknown_name_lists_the_names(tmp_path):
    with pytest.raises(ValueError) as caught:
        download("svhn", data_dir=tmp_path, progress=False, log=lambda line: None)
    for name in ("mnist", "fashion-mnist", "binarized-mnist", "cifar10"):
        assert name in str(caught.value)
    assert not (tmp_path / "svhn").exists()


def rebuilt_registry():
    """minipixel.datasets.registry executed anew into a module of its own (sys.modules keeps the
    imported one): the table is built when the module runs, so this checks the code that builds
    it, where the imported table only shows what it built at import."""
    spec = importlib.util.find_spec("minipixel.datasets.registry")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("table", ["imported", "rebuilt"])
def test_the_real_table_is_well_formed(table):
    registry = rebuilt_registry() if table == "rebuilt" else importlib.import_module("minipixel.datasets.registry")
    table_datasets, table_downloadable = registry.DATASETS, registry.DOWNLOADABLE
    assert set(table_downloadable) == {"mnist", "fashion-mnist", "binarized-mnist", "cifar10"}
    assert table_datasets["mnist5k"]["download"] == ()  # shipped, nothing to download
    assert table_datasets["cifar10"]["download"] == (RemoteFile(
        "cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "md5",
        "c58f30108f718f92721af3b95e74349a", 170_498_071),)
    assert table_datasets["mnist"]["files"]["train"] == ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
    hex_digits = set("0123456789abcdef")
    for name in table_downloadable:
        entry = table_datasets[name]
        assert entry["download"] and entry["folder"], name
        names = [remote.name for remote in entry["download"]]
        assert len(set(names)) == len(names), name
        for remote in entry["download"]:
            assert isinstance(remote, registry.RemoteFile)
            assert remote.url.startswith(("http://", "https://"))
            assert remote.url.rsplit("/", 1)[1] == remote.name  # so base_url + name is the same file
            digest_hex_length = hashlib.new(remote.algorithm).digest_size * 2
            assert len(remote.checksum) == digest_hex_length, (name, remote.name)
            assert set(remote.checksum) <= hex_digits, (name, remote.name)
            assert remote.size is None or (isinstance(remote.size, int) and remote.size > 0)
        # Downloads must land where load looks for the named dataset: the entry's
        # folder is shared, and every split must be one of the downloaded files.
        for split_files in entry["files"].values():
            assert any(f in names for f in split_files), (name, split_files)


# ---------------------------------------------------------------- helpers for the tests below

IMAGES, LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"


def half_part(folder, content, name=IMAGES):
    """A .part holding the first half of ``content``, as an interrupted download leaves."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (name + ".part")
    part.write_bytes(content[: len(content) // 2])
    return part


# ---------------------------------------------------------------- retries and their waits


def test_each_retry_resumes_and_waits_longer_then_the_error_counts_the_attempts(tmp_path, tiny_mnist, server,
                                                                                 monkeypatch):
    server.modes.add("drop_always")
    waits = []
    monkeypatch.setattr(dl, "RETRY_WAIT_SECONDS", 2.0)
    monkeypatch.setattr(dl, "time", types.SimpleNamespace(sleep=waits.append))
    with pytest.raises(DownloadError, match=r"broke off 3 time\(s\)"):
        quiet_download("mnist", tmp_path, retries=2)
    assert [name for name, _ in server.requests] == [IMAGES] * 3
    assert waits == [2.0, 4.0]  # RETRY_WAIT_SECONDS times the retry's number


def test_retries_1_is_one_retry(tmp_path, tiny_mnist, server):
    server.modes.add("drop_once")
    paths, lines = quiet_download("mnist", tmp_path, retries=1)
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())
    assert any("retry 1 of 1" in line for line in lines)


def test_by_default_a_broken_connection_is_retried_three_times(tmp_path, tiny_mnist, server):
    server.modes.add("drop_always")
    with pytest.raises(DownloadError, match=r"broke off 4 time\(s\)"):
        quiet_download("mnist", tmp_path)
    assert len(server.requests) == 4


@pytest.mark.parametrize("retries", ["3", -1, 1.5])
def test_retries_must_be_an_integer_of_at_least_0(tmp_path, tiny_mnist, retries):
    with pytest.raises(ValueError, match="retries must be an integer >= 0"):
        quiet_download("mnist", tmp_path, retries=retries)


def test_a_file_in_many_pieces_takes_one_request(tmp_path, tiny_mnist, server, monkeypatch):
    # Small reads: every file arrives in several chunks, which must all count.
    monkeypatch.setattr(dl, "CHUNK_BYTES", 1000)
    paths, lines = quiet_download("mnist", tmp_path)
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())
    assert server.requests == [(IMAGES, None), (LABELS, None)]
    assert not any("connection lost" in line for line in lines)


def test_a_206_that_starts_elsewhere_is_dropped_and_asked_again(tmp_path, tiny_mnist, server):
    server.modes.add("bad_range_once")
    paths, lines = quiet_download("mnist", tmp_path)
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())
    assert server.requests[:2] == [(IMAGES, None), (IMAGES, None)]
    assert any("Content-Range 'bytes 5-" in line for line in lines)


def test_http_error_on_a_resume_raises_and_keeps_the_partial_file(tmp_path, tiny_mnist, server):
    part = half_part(tmp_path / "mnist", tiny_mnist[IMAGES])
    server.modes.add("not_found")
    with pytest.raises(DownloadError, match="HTTP 404"):
        quiet_download("mnist", tmp_path)
    assert server.requests == [(IMAGES, f"bytes={part.stat().st_size}-")]
    assert part.read_bytes() == tiny_mnist[IMAGES][: len(tiny_mnist[IMAGES]) // 2]


@pytest.mark.parametrize("header, start", [
    ("bytes 3851-7701/7702", 3851),
    (" bytes 0-9/* ", 0),
    ("bytes */7702", None),   # an unsatisfied range: no start
    ("items 5-9/10", None),   # another unit
    ("", None),
    (None, None),
    ("bytes 5-9/10; more-text", 5),  # only the start is read
])
def test_content_range_start(header, start):
    assert dl._content_range_start(header) == start


# ---------------------------------------------------------------- what the server is told


def test_requests_name_the_downloader(tmp_path, tiny_mnist, server):
    quiet_download("mnist", tmp_path)
    assert server.agents == ["minipixel-download"] * 2  # some servers refuse urllib's default


def test_by_default_the_server_gets_30_seconds(tmp_path, tiny_mnist, monkeypatch):
    timeouts = []
    real = urllib.request.urlopen

    def spy(request, timeout):
        timeouts.append(timeout)
        return real(request, timeout=timeout)

    monkeypatch.setattr(dl.urllib.request, "urlopen", spy)
    download("mnist", data_dir=tmp_path, progress=False, log=lambda line: None)
    assert timeouts == [30, 30]


def test_data_folder_is_made_with_its_parents(tmp_path, tiny_mnist):
    paths, _ = quiet_download("mnist", tmp_path / "new" / "data")
    assert paths[0] == tmp_path / "new" / "data" / "mnist" / IMAGES
    assert [p.read_bytes() for p in paths] == list(tiny_mnist.values())


# ---------------------------------------------------------------- the progress bar


def test_progress_bar_by_default_from_where_it_resumes_and_gone_at_the_end(tmp_path, tiny_mnist, capsys):
    half_part(tmp_path / "mnist", tiny_mnist[IMAGES])
    size = len(tiny_mnist[IMAGES])
    download("mnist", data_dir=tmp_path, log=lambda line: None)  # progress left at its default
    err = capsys.readouterr().err
    # The first frame of the images' bar: its name, the half already there out of the whole, in KiB.
    scaled = f"{tqdm.format_sizeof(size // 2, divisor=1024)}/{tqdm.format_sizeof(size, divisor=1024)}"
    assert f"{IMAGES}:  50%|" in err and scaled in err and "?B/s" in err
    assert "k/" in scaled  # in units of 1024 bytes, not bytes
    assert f"{LABELS}:   0%|" in err
    # Each bar is cleared when its file is done: nothing is left on the line.
    assert err.endswith("\r") and err.rsplit("\r", 2)[-2].strip() == ""


def test_no_progress_bar_when_turned_off(tmp_path, tiny_mnist, capsys):
    quiet_download("mnist", tmp_path)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- answers that do not fit


class LongResponse:
    """What urlopen returns for a server that announces ``length`` bytes and sends ``sends``."""

    def __init__(self, length, sends):
        self.status, self.headers, self.left = 200, {"Content-Length": str(length)}, sends

    def read1(self, n):
        n = min(n, 4096, self.left)
        self.left -= n
        return bytes(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_file_of_unknown_size_is_cut_at_its_content_length(tmp_path, monkeypatch):
    # A chunked answer may carry a Content-Length that http.client ignores: it is then
    # the only bound on a file whose size the table does not give.
    remote = RemoteFile(LABELS, "http://example.invalid/" + LABELS, "md5", hashlib.md5(bytes(100)).hexdigest(), None)
    monkeypatch.setitem(DATASETS, "mnist", {**DATASETS["mnist"], "download": (remote,)})
    monkeypatch.setattr(dl.urllib.request, "urlopen", lambda *args, **kwargs: LongResponse(100, 200_000))
    with pytest.raises(ValueError) as caught:
        quiet_download("mnist", tmp_path, retries=0)
    message = str(caught.value)
    assert "sent more than the file's 100 bytes (from byte 0 on)" in message
    assert "It serves a different file (or an endless stream)" in message
    assert "--mirror or MINIPIXEL_MIRROR" in message
    assert not list((tmp_path / "mnist").iterdir())


# ---------------------------------------------------------------- without a network


def test_by_hand_message_lists_each_file_at_the_mirror_with_size_and_where_to_put_it(tmp_path, tiny_mnist):
    base = closed_port_url()
    folder = tmp_path / "mnist"
    part = half_part(folder, tiny_mnist[IMAGES])
    with pytest.raises(DownloadError) as caught:
        quiet_download("mnist", tmp_path, base_url=base)
    lines = str(caught.value).split("\n")
    images, labels = DATASETS["mnist"]["download"]
    assert lines[0].startswith(f"Could not reach {base}{IMAGES} (")
    assert lines[2:6] == [
        f"  {base}{IMAGES}  (md5 {images.checksum}, {images.size:,} bytes)",
        f"      (original location: {images.url})",
        f"  {base}{LABELS}  (sha1 {labels.checksum})",  # no size where the table has none
        f"      (original location: {labels.url})",
    ]
    assert lines[6] == (f"and put them in {os.path.abspath(folder)}{os.sep} (check each with `md5sum FILE`). "
                        f"`minipixel train --data mnist:train --data-dir {tmp_path}` will then find them.")
    assert lines[7] == f"Or run this command again later: it resumes the partial download kept in {part}."
