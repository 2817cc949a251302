"""File helpers that every reader shares: reading bytes (gunzipped), numbering lines.

The published datasets ship both plain and gzipped (``x.amat`` or
``x.amat.gz``), and a download cut short leaves a gzip that cannot be
decompressed; ``read_file_bytes`` hides the first and turns the second into
one clear message. Text formats are one image a line, and
``numbered_lines`` keeps the line numbers so an error can say "line 3".
"""
import gzip
import zlib


def check_is_file(path):
    """Raise FileNotFoundError if ``path`` does not exist, ValueError if it is a folder."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file")


def read_file_bytes(path):
    """The bytes of ``path``, gunzipped if its name ends with ``.gz``.

    A truncated or corrupt gzip raises one of three exception types depending
    on where the damage is; all become a ValueError naming the file.
    """
    check_is_file(path)
    data = path.read_bytes()
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

