"""``files.read_npz_arrays``: the .npz reader under checkpoints and image sets, on the files
``np.savez`` writes (every header version and memory order) and on zip directories whose
sizes are exactly at, or one byte past, the limits it refuses."""
import io
import struct
import zipfile

import numpy as np
import pytest

from minipixel.files import _MOST_DEFLATE_RATIO, read_npz_arrays


def _npz(path, arrays, version=None):
    """A stored (not deflated) .npz of ``arrays``, each written with .npy header ``version``."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            raw = io.BytesIO()
            np.lib.format.write_array(raw, array, version=version)
            archive.writestr(f"{name}.npy", raw.getvalue())
    return path


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_both_npy_header_versions_are_read(version, tmp_path):
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    read = read_npz_arrays(_npz(tmp_path / "a.npz", {"x": array}, version))
    assert list(read) == ["x"]
    np.testing.assert_array_equal(read["x"], array)
    assert read["x"].dtype == np.int16


def test_a_fortran_ordered_array_keeps_its_values(tmp_path):
    array = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    path = tmp_path / "f.npz"
    np.savez(path, x=array)  # NumPy writes it column by column, with fortran_order True
    read = read_npz_arrays(path)["x"]
    np.testing.assert_array_equal(read, array)
    np.testing.assert_array_equal(read, np.load(path)["x"])


def test_a_shape_whose_size_overflows_int64_is_refused_by_its_byte_count(tmp_path):
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0))
    header["shape"] = (2**32, 2**32)  # 2**64 elements: 0 in int64 arithmetic
    raw = io.BytesIO()
    np.lib.format.write_array_header_1_0(raw, header)
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive:
        archive.writestr("x.npy", raw.getvalue())
    with pytest.raises(ValueError, match=r"big.npz \(member x.npy\): the header says shape \(4294967296, 4294967296\) "
                                         r"of float64 \(147,573,952,589,676,412,928 bytes\), but 0 bytes follow it"):
        read_npz_arrays(tmp_path / "big.npz")


def test_a_file_that_is_no_zip_is_not_an_npz_file(tmp_path):
    (tmp_path / "x.npz").write_text("hello\n")
    with pytest.raises(ValueError) as refused:
        read_npz_arrays(tmp_path / "x.npz")
    assert str(refused.value) == f"{tmp_path / 'x.npz'}: expected an .npz file (a zip archive), but it is a text file"


def _with_sizes(path, stored, unpacked):
    """``path``'s zip with its one member's sizes in the central directory rewritten."""
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")  # the member's central directory record
    struct.pack_into("<II", data, at + 20, stored, unpacked)
    path.write_bytes(bytes(data))
    return path


def _sizes_refused(path):
    with pytest.raises(ValueError) as refused:
        read_npz_arrays(path)
    return "the zip directory gives impossible sizes" in str(refused.value)


def test_a_member_stored_in_more_bytes_than_the_file_has_is_refused(tmp_path):
    path = _npz(tmp_path / "a.npz", {"x": np.zeros(4)})
    size = path.stat().st_size
    assert _sizes_refused(_with_sizes(path, size + 1, 10))
    assert not _sizes_refused(_with_sizes(path, size, 10))  # damaged, but not by this measure


@pytest.mark.parametrize("stored", [0, 1, 5])
def test_the_unpacked_size_may_reach_the_deflate_limit_but_not_pass_it(stored, tmp_path):
    limit = _MOST_DEFLATE_RATIO * max(stored, 1) + 1024
    path = _npz(tmp_path / "a.npz", {"x": np.zeros(4)})
    assert _sizes_refused(_with_sizes(path, stored, limit + 1))
    assert not _sizes_refused(_with_sizes(path, stored, limit))
