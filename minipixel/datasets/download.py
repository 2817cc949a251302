"""Downloading the named datasets into the data folder, checked and resumable.

``download("mnist")`` fetches the MNIST files into ``data/mnist/``, the folder
where ``minipixel.datasets.load("mnist:train")`` looks for them, so that
``minipixel train --data mnist:train`` works afterwards: both read the
dataset's one entry in ``registry.DATASETS`` (its ``folder``, and the
``download`` list of RemoteFiles, each with its URL and checksum).

What happens to each file of the dataset:

1. If it is already there with the right checksum, it is left alone. With a
   wrong checksum (a damaged or different file) it is downloaded again.
2. It is downloaded in chunks into ``<file>.part`` beside its final place. If a
   ``.part`` is left from an earlier attempt, only the rest is asked for, with
   an HTTP ``Range: bytes=N-`` header: a server that supports it answers
   ``206 Partial Content`` and the new bytes are appended; one that does not
   answers ``200 OK`` with the whole file, and the ``.part`` starts over.
3. A connection that breaks in the middle is retried (``retries`` times), each
   time resuming from the ``.part``. If it still fails, the ``.part`` is kept, so
   that running the command again goes on from there.
4. No more bytes than the file's published size are ever written: a server
   that announces more (Content-Length), or keeps sending past it (an endless
   stream from a wrong mirror), is cut off at once, the ``.part`` deleted and a
   ValueError says so, before the disk fills up. A file of unknown size is
   bounded by its Content-Length, when the server sends one.
5. The whole ``.part`` is checked against the published checksum. If it does
   not match, it is deleted and a ValueError says so. If it matches, it is
   flushed to disk and renamed to the final name in one step (``os.replace``),
   so a file with the final name is always complete, even after a crash.

Without a network connection a ``DownloadError`` lists the files to fetch by
hand (with their checksums) and the folder to put them in.

Only the standard library (``urllib.request``, ``hashlib``) and tqdm are used.
"""
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request

from tqdm import tqdm

from .registry import DATASETS, DOWNLOADABLE
# download() has a parameter named data_dir, which hides the function of that name.
from .registry import data_dir as resolve_data_dir

# Bytes read from the network (and from disk, for checksums) at a time.
CHUNK_BYTES = 1 << 20
# Seconds to wait before retry k (k = 1, 2, ...) is RETRY_WAIT_SECONDS * k:
# a server that just dropped us may need a moment.
RETRY_WAIT_SECONDS = 2.0
# Some servers refuse urllib's default "Python-urllib/3.x".
USER_AGENT = "minipixel-download"


class DownloadError(RuntimeError):
    """A dataset file could not be downloaded: no network, an HTTP error, or a
    connection that kept breaking. The message says what to do next."""


class _Unreachable(Exception):
    """Internal: the server could not be reached at all (no network, DNS, refused)."""


class _ConnectionDropped(Exception):
    """Internal: the connection broke before the whole answer arrived; worth a retry."""


def _too_long(url, remote, part, what):
    """The ValueError for a server that sends (or announces) more than the file holds, the .part deleted."""
    part.unlink(missing_ok=True)
    return ValueError(
        f"{remote.name}: the server at {url} {what}; stopped there and deleted the partial file. It serves "
        "a different file (or an endless stream): check the address (or the mirror, --mirror or MINIPIXEL_MIRROR)"
    )


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def file_checksum(path, algorithm):
    """The hex digest of a file's contents with ``algorithm`` (a hashlib name, e.g. "md5").

    The file is read a chunk at a time, so large files need little memory.
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _mirror_url(remote, base_url):
    """``remote``'s URL with the directory part replaced by ``base_url`` (when given)."""
    if not base_url:
        return remote.url
    if not base_url.endswith("/"):
        base_url += "/"
    return base_url + remote.name


def _part_path(target):
    """The temporary file a download is written to before it is checked: ``<target>.part``."""
    return target.with_name(target.name + ".part")


def _size_or_zero(path):
    """The size of ``path`` in bytes, 0 when it does not exist."""
    return path.stat().st_size if path.exists() else 0


def _content_range_start(header):
    """The first byte offset in a ``Content-Range: bytes START-END/TOTAL`` header, or None."""
    if not header:
        return None
    unit, _, rest = header.strip().partition(" ")
    first = rest.partition("-")[0]
    if unit != "bytes" or not first.isdigit():
        return None
    return int(first)


# --------------------------------------------------------------------------
# Downloading one file
# --------------------------------------------------------------------------


def _fetch_once(url, remote, target, progress, timeout, log):
    """One HTTP request: bring ``target``'s .part as far towards the whole file as this connection allows.

    Returns normally when the server has sent everything it said it would (the
    caller then checks the checksum). Raises _ConnectionDropped when the answer
    broke off, _Unreachable when nothing answered, DownloadError on HTTP errors.
    """
    part = _part_path(target)
    have = _size_or_zero(part)
    if remote.size is not None and have >= remote.size:
        # Whole already (say, a crash between the last byte and the rename).
        # Nothing to ask for; the checksum decides whether it is right.
        return

    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    # HTTPError is a kind of URLError, which is a kind of OSError: most specific first.
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and have:
            # "Range Not Satisfiable": there is nothing after byte `have`, so the
            # .part is whole already (or too long, which the checksum will catch).
            return
        raise DownloadError(
            f"{url}: the server answered HTTP {error.code} ({error.reason}); expected the file "
            f"{remote.name}. If the address is a mirror's (MINIPIXEL_MIRROR), check that it has the file."
        ) from error
    except urllib.error.URLError as error:
        # Raised before anything was sent: DNS failure, connection refused, no route, connect timeout.
        raise _Unreachable(error.reason) from error
    except (http.client.HTTPException, OSError) as error:
        # Connected, but the server hung up (or went quiet) before its answer's headers.
        raise _ConnectionDropped(f"{type(error).__name__}: {error}") from error

    with response:
        status = response.status
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != have:
                # The bytes sent do not continue our .part; they cannot be used.
                part.unlink(missing_ok=True)
                raise _ConnectionDropped(
                    f"asked for bytes from {have:,} but the server sent "
                    f"Content-Range {response.headers.get('Content-Range')!r}; starting over"
                )
            mode = "ab"
            log(f"{target}: resuming at {have:,} bytes")
        else:
            if have:
                log(f"{target}: the server does not support resuming (it sent the "
                    f"whole file); starting over")
            have = 0
            mode = "wb"

        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        total = have + length if length is not None else remote.size
        # The most bytes the .part may hold: the published size, else what the server announced.
        most = remote.size if remote.size is not None else total
        if most is not None and total is not None and total > most:
            raise _too_long(url, remote, part, f"announces {total:,} bytes (Content-Length {length:,} from byte "
                                               f"{have:,}), more than the file's {most:,}")
        received = 0
        with open(part, mode) as out, tqdm(total=total, initial=have, desc=remote.name, unit="B",
                                           unit_scale=True, unit_divisor=1024, leave=False,
                                           disable=not progress) as bar:
            try:
                while True:
                    # read1 returns what has arrived (up to CHUNK_BYTES) instead of
                    # waiting for a full chunk, so every byte received is in the .part
                    # before a timeout or a reset can interrupt the wait for more.
                    chunk = response.read1(CHUNK_BYTES)
                    if not chunk:
                        break
                    if most is not None and have + received + len(chunk) > most:
                        out.close()
                        raise _too_long(url, remote, part, f"sent more than the file's {most:,} bytes (from byte "
                                                           f"{have:,} on)")
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as error:
                # IncompleteRead, ConnectionResetError, a read timeout (TimeoutError), ...
                raise _ConnectionDropped(f"{type(error).__name__}: {error}") from error
    # http.client returns b"" (no error) when the server closes before Content-Length
    # bytes, so count them ourselves.
    if length is not None and received < length:
        raise _ConnectionDropped(f"the server closed the connection after {received:,} of {length:,} bytes")


def _fetch(url, remote, target, progress, timeout, retries, log):
    """Download ``remote`` from ``url`` to ``target``, resuming and retrying; then check and move it."""
    part = _part_path(target)
    attempt = 0
    while True:
        try:
            _fetch_once(url, remote, target, progress, timeout, log)
            break
        except _ConnectionDropped as dropped:
            have = _size_or_zero(part)
            if attempt >= retries:
                raise DownloadError(
                    f"{url}: the connection broke off {attempt + 1} time(s), the last time at "
                    f"{have:,} bytes ({dropped}). The partial file is kept as {part}; run the "
                    "same command again to resume the download from there."
                ) from dropped
            attempt += 1
            log(f"{target}: connection lost at {have:,} bytes ({dropped}); retry {attempt} of {retries}")
            time.sleep(RETRY_WAIT_SECONDS * attempt)

    actual = file_checksum(part, remote.algorithm)
    if actual != remote.checksum:
        size = _size_or_zero(part)
        # A resumed download may have bad bytes anywhere, so none of it can be trusted.
        part.unlink()
        raise ValueError(
            f"{target.name}: the downloaded file ({size:,} bytes from {url}) has the wrong "
            f"{remote.algorithm} checksum: expected {remote.checksum}, got {actual}. It was deleted; "
            "run the command again to retry. If this happens again, the server (or mirror) "
            "serves a different file."
        )
    # Make sure the bytes are on disk before the rename makes the file look finished.
    with open(part, "ab") as f:
        os.fsync(f.fileno())
    # os.replace is atomic on POSIX and Windows when both are on one file system.
    os.replace(part, target)


def _by_hand_message(name, url, reason, missing, base_url, folder, explicit_dir):
    """The DownloadError text when ``url`` could not be reached: what to fetch by hand, and where."""
    lines = [f"Could not reach {url} ({reason}).",
             f"To get {name} without a network here, download these files by hand:"]
    for remote in missing:
        size = f", {remote.size:,} bytes" if remote.size is not None else ""
        lines.append(f"  {_mirror_url(remote, base_url)}  ({remote.algorithm} {remote.checksum}{size})")
        if base_url:
            lines.append(f"      (original location: {remote.url})")
    command = f"minipixel train --data {name}:train"
    if explicit_dir is not None:
        command += f" --data-dir {explicit_dir}"
    lines.append(f"and put them in {os.path.abspath(folder)}{os.sep} (check each with `{missing[0].algorithm}sum FILE`). "
                 f"`{command}` will then find them.")
    part = _part_path(folder / missing[0].name)
    if part.exists():
        lines.append(f"Or run this command again later: it resumes the partial download kept in {part}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------


def download(name, data_dir=None, base_url=None, progress=True, log=print, retries=3, timeout=30):
    """Download the dataset ``name`` into ``<data_dir>/<folder>/`` and check every file.

    name:     one of ``DOWNLOADABLE``: "binarized-mnist", "mnist",
              "fashion-mnist", "cifar10"
    data_dir: the data folder (default: $MINIPIXEL_DATA, else "data"; see
              ``registry.data_dir``); the files go to its sub-folder
              ``DATASETS[name]["folder"]``, where ``registry.load`` looks
    base_url: fetch every file from ``base_url + file name`` instead of its own
              URL (a mirror, or a local test server); default: $MINIPIXEL_MIRROR if set
    progress: show a tqdm progress bar per file
    log:      function called with one line of text per file (and per retry)
    retries:  how many times a connection that breaks in the middle is retried
              (each time resuming where it stopped) before giving up
    timeout:  seconds to wait for the server to connect or send more data
    returns:  list of Paths of the dataset's files, all present and checked

    Raises ValueError for an unknown name or a file with the wrong checksum
    (the bad download is deleted), DownloadError (a RuntimeError) when a
    server cannot be reached, answers with an HTTP error, or keeps breaking
    the connection (the partial ``.part`` file is then kept: call again to resume).
    """
    if name not in DOWNLOADABLE:
        raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(DOWNLOADABLE)}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if base_url is None:
        base_url = os.environ.get("MINIPIXEL_MIRROR") or None
    entry = DATASETS[name]
    folder = resolve_data_dir(data_dir) / entry["folder"]
    folder.mkdir(parents=True, exist_ok=True)

    # First look at what is there already (hashing each existing file once),
    # so that an error message can list exactly what is still missing.
    needed = []
    for remote in entry["download"]:
        target = folder / remote.name
        if target.is_file():
            actual = file_checksum(target, remote.algorithm)
            if actual == remote.checksum:
                log(f"{target}: already there ({remote.algorithm} checksum matches)")
                continue
            log(f"{target}: wrong {remote.algorithm} checksum (expected {remote.checksum}, "
                f"got {actual}); downloading it again")
        needed.append(remote)

    for index, remote in enumerate(needed):
        target = folder / remote.name
        url = _mirror_url(remote, base_url)
        try:
            _fetch(url, remote, target, progress, timeout, retries, log)
        except _Unreachable as error:
            raise DownloadError(
                _by_hand_message(name, url, error, needed[index:], base_url, folder, data_dir)
            ) from error
        log(f"{target}: downloaded ({target.stat().st_size:,} bytes, {remote.algorithm} checksum matches)")

    return [folder / remote.name for remote in entry["download"]]
