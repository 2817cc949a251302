"""File helpers that every reader shares: checking a data file is an ordinary
file, reading bytes (gunzipped), numbering lines.

Every path a reader opens goes through ``check_is_file`` first: a FIFO waits
forever for a writer, and /dev/zero or /dev/urandom (say, linked under a data
file's name) never end, so anything that is not an ordinary file after
following links is refused with one line naming it, before it is opened.
The published datasets ship both plain and gzipped (``x.amat`` or
``x.amat.gz``), and a download cut short leaves a gzip that cannot be
decompressed; ``read_file_bytes`` hides the first and turns the second into
one clear message. Text formats are one image a line, and
``numbered_lines`` keeps the line numbers so an error can say "line 3".
"""
import gzip
import os
import stat
import zlib

from ..files import not_ordinary


def _check_mode(path, mode):
    """Raise ValueError naming ``path`` unless ``mode`` (an st_mode) is an ordinary file's."""
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path}: is a directory, expected a file")
    kind = not_ordinary(mode)
    if kind:
        link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise ValueError(f"{path}{link}: is {kind}; expected an ordinary file of data, refusing to read it")


def check_is_file(path):
    """Raise FileNotFoundError if ``path`` does not exist (or is a link to nothing),
    ValueError if it is not an ordinary file once links are followed: a folder, a
    FIFO, a device (/dev/zero), a socket. Reading one of those could hang or never end."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{path}: no such file") from None
    _check_mode(path, mode)


def read_file_bytes(path):
    """The bytes of ``path``, gunzipped if its name ends with ``.gz``.

    The file is opened without waiting (a FIFO put in its place after the check
    does not hang the open) and checked again once open. A truncated or corrupt
    gzip raises one of three exception types depending on where the damage is;
    all become a ValueError naming the file.
    """
    check_is_file(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        _check_mode(path, os.fstat(fd).st_mode)
        data = f.read()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise ValueError(
                f"{path}: expected a complete gzip file, but it cannot be decompressed ({err}); "
                "it may be cut short or damaged, so download it again"
            ) from err
    return data


def numbered_lines(path, data):
    """The non-blank lines of a text file as (line number, bytes) pairs, numbered from 1.

    Blank lines (a trailing newline, say) carry no image and are skipped, but
    still counted, so that error messages point at the right line.
    """
    lines = [(number, line) for number, line in enumerate(data.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: expected one image a line, but the file has no lines with values (empty file)")
    return lines


def first_unparsable(words, parse):
    """Index and text of the first word that ``parse`` (float or int) rejects."""
    for index, word in enumerate(words):
        try:
            parse(word)
        except ValueError:
            return index, word.decode("ascii", "replace")
    return None, None

