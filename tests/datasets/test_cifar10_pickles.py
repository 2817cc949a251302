"""Tests for minipixel.datasets.cifar10's restricted unpickler, state by state.

A batch's arrays reach the reader as numpy pickles them: ``_reconstruct(ndarray,
(0,), b"b")`` then a state (version, shape, dtype, fortran, bytes), the dtype as
``dtype(name, False, True)`` then its own state (version, byte order, subarray,
names, fields, ...). These tests write such pickles with chosen states: the ones
numpy (old and new) writes must read as the same numbers, and every other one
must be refused with a message that says what was wrong, before numpy sees it.
"""
import io
import pickle
import pickletools
import tarfile

import numpy as np
import pytest

from minipixel.datasets import cifar10
from minipixel.datasets.cifar10 import read_cifar10

RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]  # what every pickled array names
PLAIN_DTYPE_STATE = (None, None, None, -1, -1, 0)  # a dtype state's entries after the byte order


class Reduces:
    """Pickles as ``callable(*args)`` followed by ``state`` (left out when None), as numpy's own objects do."""

    def __init__(self, function, args, state=None):
        self.reduced = (function, args) if state is None else (function, args, state)

    def __reduce__(self):
        return self.reduced


def dtype_with_state(name, state):
    return Reduces(np.dtype, (name, False, True), state)


def array_with_state(state):
    return Reduces(RECONSTRUCT, (np.ndarray, (0,), b"b"), state)


def labels_array(values, name="i8", order="<", array_state=None):
    """The labels as a pickled array of dtype ``name`` in byte ``order``, with numpy's state layout
    (or ``array_state(shape, dtype, raw)``'s)."""
    dtype = np.dtype(name).newbyteorder(order) if order in "<>" else np.dtype(name)
    raw = np.asarray(values, dtype).tobytes()
    shape = (len(values),)
    dtype_state = dtype_with_state(name, (3, order, *PLAIN_DTYPE_STATE))
    state = array_state(shape, dtype_state, raw) if array_state else (1, shape, dtype_state, False, raw)
    return array_with_state(state)


def images_and_rows(n=3):
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return images, np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(n, 3072)


def write_test_batch(tmp_path, batch=None, raw=None):
    """tmp_path/cifar-10-batches-py/test_batch holding ``batch`` pickled at protocol 2 (or the bytes ``raw``)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    (folder / "test_batch").write_bytes(raw if raw is not None else pickle.dumps(batch, protocol=2))
    return folder


def read_labels(tmp_path, labels, n=3):
    """The classes read back from a test batch of ``n`` images whose b"labels" is ``labels``."""
    images, rows = images_and_rows(n)
    got = read_cifar10(write_test_batch(tmp_path, {b"data": rows, b"labels": labels}), "test")
    np.testing.assert_array_equal(got.images, images)
    return got.classes


# ---------------------------------------------------------------- states numpy writes, read as the numbers


@pytest.mark.parametrize("name, order", [("i8", "<"), ("i4", ">"), ("u2", ">"), ("u1", "|"), ("i8", "=")])
def test_cifar10_labels_array_in_any_byte_order_reads_as_its_numbers(tmp_path, name, order):
    # A batch re-saved from numpy holds its labels as an array; a big-endian one
    # (as written on another machine) says ">" in its dtype's state, "=" is native.
    classes = read_labels(tmp_path, labels_array([7, 0, 9], name, order))
    np.testing.assert_array_equal(classes, [7, 0, 9])
    assert classes.dtype == np.int64


def test_cifar10_labels_array_exactly_as_numpy_pickles_it(tmp_path):
    big_endian = np.array([3, 1, 4], ">i4")
    assert b"X\x01\x00\x00\x00>" in pickle.dumps(big_endian, protocol=2)  # the byte order in the dtype's state
    np.testing.assert_array_equal(read_labels(tmp_path, big_endian), [3, 1, 4])


def test_cifar10_shortest_dtype_state_and_array_state_without_version(tmp_path):
    # The dtype state's first five entries (version, byte order, subarray, names,
    # fields) are all it needs; an array state may leave out its version, as
    # numpy's own __setstate__ allows.
    dtype = dtype_with_state("i2", (3, ">", None, None, None))
    raw = np.array([5, 6, 2], ">i2").tobytes()
    np.testing.assert_array_equal(read_labels(tmp_path, array_with_state((1, (3,), dtype, False, raw))), [5, 6, 2])
    four = labels_array([2, 8, 1], "i4", ">", array_state=lambda shape, dtype, raw: (shape, dtype, False, raw))
    np.testing.assert_array_equal(read_labels(tmp_path, four), [2, 8, 1])


def test_cifar10_batch_of_no_images_reads_as_an_empty_set(tmp_path):
    # At protocol 2 Python 3 spells empty bytes as a call to bytes(), which the reader
    # refuses; Python 2 and protocol 3 on write them as bytes.
    empty = {b"data": np.zeros((0, 3072), np.uint8), b"labels": np.zeros(0, np.int64)}
    folder = write_test_batch(tmp_path, raw=pickle.dumps(empty, protocol=3))
    got = read_cifar10(folder, "test")
    assert got.images.shape == (0, 32, 32, 3) and got.classes.shape == (0,)


def test_cifar10_bytes_spelled_with_the_codec_name_latin_dash_1(tmp_path):
    # Python 3 at protocol 2 writes each bytes object as _codecs.encode(text, "latin1");
    # "latin-1" names the same codec and is read the same.
    images, rows = images_and_rows()
    raw = pickle.dumps({b"data": rows, b"labels": [1, 2, 3]}, protocol=2)
    assert raw.count(b"X\x06\x00\x00\x00latin1") == 1  # written once, then fetched from the memo
    raw = raw.replace(b"X\x06\x00\x00\x00latin1", b"X\x07\x00\x00\x00latin-1")
    got = read_cifar10(write_test_batch(tmp_path, raw=raw), "test")
    np.testing.assert_array_equal(got.images, images)
    np.testing.assert_array_equal(got.classes, [1, 2, 3])


# ---------------------------------------------------------------- states numpy never writes, refused


@pytest.mark.parametrize("state, shown", [
    ((3, "<"), r"\(3, '<'\)"),  # too short to hold a byte order and the rest
    ((3, "X", *PLAIN_DTYPE_STATE), r"\(3, 'X', None"),  # no byte order at all
    ((3, "<", (np.dtype("u1"), (2,)), None, None, -1, -1, 0), r"\(3, '<', \(<"),  # a subarray dtype
    ((3, "<", None, ("a",), None, -1, -1, 0), r"\(3, '<', None, \('a',\)"),  # a structured dtype
])
def test_cifar10_dtype_state_other_than_a_plain_numbers_is_refused(tmp_path, state, shown):
    raw = np.array([1, 2, 3], "<i4").tobytes()
    labels = array_with_state((1, (3,), dtype_with_state("i4", state), False, raw))
    with pytest.raises(ValueError, match=r"test_batch: the CIFAR-10 reader refuses an array: expected a plain "
                                         r"number dtype's state, got " + shown):
        read_labels(tmp_path, labels)


SHAPE = r"an array's shape and exactly the bytes it needs, "  # the start of the refusal for the shape or bytes


@pytest.mark.parametrize("array_state, refused", [
    # a list where numpy writes a tuple
    (lambda shape, dtype, raw: [1, shape, dtype, False, raw], r"a numpy array's state, got \[1, \(3,\)"),
    # a shape that is no tuple of sizes
    (lambda shape, dtype, raw: (1, list(shape), dtype, False, raw), SHAPE + r"got shape \[3\] with 3 bytes"),
    (lambda shape, dtype, raw: (1, (-1, -3), dtype, False, raw), SHAPE + r"got shape \(-1, -3\) with 3 bytes"),
    (lambda shape, dtype, raw: (1, (True, 3), dtype, False, raw), SHAPE + r"got shape \(True, 3\) with 3 bytes"),
    # bytes that do not fill the shape exactly, or no bytes at all
    (lambda shape, dtype, raw: (1, shape, dtype, False, raw[:-1]), SHAPE + r"got shape \(3,\) with 2 bytes"),
    (lambda shape, dtype, raw: (1, shape, dtype, False, raw + b"\x00"), SHAPE + r"got shape \(3,\) with 4 bytes"),
    (lambda shape, dtype, raw: (1, shape, dtype, False, raw.decode("latin1")),
     SHAPE + r"got shape \(3,\) with str bytes"),
])
def test_cifar10_array_state_is_checked_before_numpy_sees_it(tmp_path, array_state, refused):
    labels = labels_array([1, 2, 3], "u1", "|", array_state=array_state)
    with pytest.raises(ValueError, match=r"test_batch: the CIFAR-10 reader refuses an array: expected " + refused):
        read_labels(tmp_path, labels)


def test_cifar10_reconstruct_of_anything_but_ndarray_names_what_it_got(tmp_path):
    labels = Reduces(RECONSTRUCT, (b"not a class", (0,), b"b"))
    with pytest.raises(ValueError, match=r"test_batch: .*refuses _reconstruct\(b'not a class', \(0,\)\)"):
        read_labels(tmp_path, labels)


def test_cifar10_array_left_without_its_state_is_the_empty_array(tmp_path):
    # _reconstruct builds an empty uint8 array; a pickle that never fills it in
    # leaves it so, and the reader says that is what it found.
    folder = write_test_batch(tmp_path, {b"data": array_with_state(None), b"labels": [1]})
    with pytest.raises(ValueError, match=r"expected b'data' to be a \(k, 3072\) uint8 array .*"
                                         r"got shape \(0,\) dtype uint8$"):
        read_cifar10(folder, "test")


@pytest.mark.parametrize("data, got", [(b"\x00" * 3072, "a bytes"), (3072, "an? int"), (None, "an? NoneType")])
def test_cifar10_data_that_is_no_array_is_named_by_its_type(tmp_path, data, got):
    folder = write_test_batch(tmp_path, {b"data": data, b"labels": [1]})
    with pytest.raises(ValueError, match=r"expected b'data' to be a \(k, 3072\) uint8 array .*got " + got + "$"):
        read_cifar10(folder, "test")


def test_cifar10_nested_labels_are_refused_before_numpy_unfolds_them(tmp_path):
    # Even a nested list numpy could turn into a neat (3, 2) array is refused as
    # it is: numpy never builds a nested list (one that shares references to
    # itself would unfold into gigabytes).
    with pytest.raises(ValueError, match=r"expected 3 integer labels \(one per image\) in b'labels', "
                                         r"got a list of 3 items, not all numbers"):
        read_labels(tmp_path, [[0, 1], [2, 3], [4, 5]])
    with pytest.raises(ValueError, match=r"expected 3 integer labels .*got a dict$"):
        read_labels(tmp_path, {})
    with pytest.raises(ValueError, match=r"expected 3 integer labels .*got a bytes$"):
        read_labels(tmp_path, b"\x01\x02\x03")


def test_cifar10_dict_without_data_lists_its_keys_of_any_type(tmp_path):
    # Keys that Python cannot compare (bytes and ints) are listed in the order of their repr.
    folder = write_test_batch(tmp_path, {b"\x00": 1, b"A": 2, 7: 3})
    with pytest.raises(ValueError, match=r"test_batch: expected a CIFAR-10 batch, a dict with b'data' and "
                                         r"b'labels', got a dict with keys \[7, b'A', b'\\x00'\]"):
        read_cifar10(folder, "test")


# ---------------------------------------------------------------- the limits, exactly where they are


def test_cifar10_memo_slot_may_be_as_high_as_the_opcodes_so_far(tmp_path):
    # PROTO, EMPTY_DICT, then BINPUT into slot 2 as the third opcode (index 2):
    # the memo grows no faster than the file, so the walk lets it through.
    folder = write_test_batch(tmp_path, raw=b"\x80\x02}q\x02.")
    with pytest.raises(ValueError, match=r"test_batch: expected a CIFAR-10 batch, a dict with b'data' and "
                                         r"b'labels', got a dict with keys \[\]"):
        read_cifar10(folder, "test")
    folder = write_test_batch(tmp_path, raw=b"\x80\x02}q\x03.")
    with pytest.raises(ValueError, match=r"numbers its memo in order, but opcode 2 stores at slot 3"):
        read_cifar10(folder, "test")


def archive_with_test_batch(tmp_path, rows, linkname=""):
    """cifar-10-python.tar.gz holding only a test_batch of ``rows``: (its path, the batch's bytes)."""
    raw = pickle.dumps({b"data": rows, b"labels": [1, 2, 3]}, protocol=2)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        member = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        member.size, member.linkname = len(raw), linkname
        archive.addfile(member, io.BytesIO(raw))
    return path, raw


@pytest.mark.parametrize("limit", ["_MOST_OPCODES", "_MEMBER_MOST_BYTES"])
def test_cifar10_limit_lets_exactly_its_bound_through(tmp_path, monkeypatch, limit):
    # Set to what a small batch takes (its pickle's opcodes, its archive member's
    # bytes), a limit reads the batch; one less refuses it.
    images, rows = images_and_rows()
    path, raw = archive_with_test_batch(tmp_path, rows)
    if limit == "_MOST_OPCODES":
        path, bound = write_test_batch(tmp_path, raw=raw), sum(1 for _ in pickletools.genops(raw))
        refused = rf"test_batch: expected a CIFAR-10 batch .*holds more than {bound - 1}"
    else:
        bound = len(raw)
        refused = rf"member cifar-10-batches-py/test_batch claims {bound:,} bytes"
    monkeypatch.setattr(cifar10, limit, bound)
    np.testing.assert_array_equal(read_cifar10(path, "test").images, images)
    monkeypatch.setattr(cifar10, limit, bound - 1)
    with pytest.raises(ValueError, match=refused):
        read_cifar10(path, "test")


def test_cifar10_link_name_of_a_regular_member_is_not_a_link(tmp_path):
    # A tar header has a link-name field whatever its type; only a link's is a
    # target. A regular file that carries one is read as the file it is.
    images, rows = images_and_rows()
    path, _ = archive_with_test_batch(tmp_path, rows, linkname="/etc/passwd")
    with tarfile.open(path) as archive:
        member = archive.getmember("cifar-10-batches-py/test_batch")
        assert member.isfile() and member.linkname == "/etc/passwd"
    np.testing.assert_array_equal(read_cifar10(path, "test").images, images)
