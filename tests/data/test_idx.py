"""The IDX reader: the real Fashion-MNIST / MNIST files, round trips, and corrupt files.

Every corrupt file must give an IDXError (a ValueError) that names the file, and must
give it at once: sizes claimed by a header are checked before anything is allocated.
"""
import gzip
import math
import os
import pathlib
import re
import shutil
import struct

import numpy as np
import pytest

from scratchnet.data import IDXError, read_idx, write_idx
from scratchnet.data import idx as idx_module

DATA = pathlib.Path(os.environ.get("SCRATCHNET_DATA", "/nonexistent"))
SHAPES = {"train-images-idx3-ubyte": (60000, 28, 28), "train-labels-idx1-ubyte": (60000,),
          "t10k-images-idx3-ubyte": (10000, 28, 28), "t10k-labels-idx1-ubyte": (10000,)}


def real(name, stem):
    """Path of an official .gz file under $SCRATCHNET_DATA (skips when absent)."""
    path = DATA / name / f"{stem}.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found: set SCRATCHNET_DATA to a folder with {name}/")
    return path


def header(code, dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def write_bytes(path, payload):
    """Write an IDX payload (header + data) raw, or gzip-compressed for a .gz name."""
    path = pathlib.Path(path)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def raises_naming(path, match=""):
    """pytest.raises for an IDXError whose message names ``path`` and matches ``match``."""
    return pytest.raises(IDXError, match=re.escape(str(path)) + ".*" + match)


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
@pytest.mark.parametrize("stem", list(SHAPES))
def test_real_files(name, stem):
    a = read_idx(real(name, stem))
    assert a.shape == SHAPES[stem]
    assert a.dtype == np.uint8
    if "labels" in stem:
        assert a.min() == 0 and a.max() == 9


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
@pytest.mark.parametrize("stem", ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_gzip_and_raw_read_the_same(tmp_path, name, stem):
    gz = real(name, stem)
    raw = tmp_path / stem
    with gzip.open(gz, "rb") as f, open(raw, "wb") as out:
        shutil.copyfileobj(f, out)
    np.testing.assert_array_equal(read_idx(raw), read_idx(gz))


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 3, 2), (2, 3, 2, 2), (0, 28, 28)])
def test_round_trip(tmp_path, suffix, dtype, shape):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path / f"a{suffix}"
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == shape
    np.testing.assert_array_equal(b, a)


def test_written_layout_is_big_endian_idx(tmp_path):
    write_idx(tmp_path / "a", np.array([[1, 258]], dtype=np.int32))
    assert (tmp_path / "a").read_bytes() == (b"\x00\x00\x0c\x02" + struct.pack(">2I", 1, 2)
                                             + struct.pack(">2i", 1, 258))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.gz"))):
        read_idx(tmp_path / "nope.gz")


@pytest.mark.parametrize("name", ["empty", "empty.gz"])
def test_empty_file(tmp_path, name):
    path = write_bytes(tmp_path / name, b"")
    with raises_naming(path, "header"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = write_bytes(tmp_path / "a", header(0x08, (5, 4, 4))[:9])
    with raises_naming(path, "truncated header"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    blob = real("fashion-mnist", "t10k-images-idx3-ubyte").read_bytes()
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(blob[:len(blob) // 2])
    with raises_naming(path, "truncated"):
        read_idx(path)


def test_gzip_with_a_bad_crc(tmp_path):
    blob = bytearray(gzip.compress(header(0x08, (2, 2)) + bytes(4)))
    blob[-8] ^= 0xFF  # the CRC-32 of the trailer
    path = tmp_path / "a.gz"
    path.write_bytes(bytes(blob))
    with raises_naming(path, "corrupt"):
        read_idx(path)


def test_truncated_raw_data(tmp_path):
    write_idx(tmp_path / "full", np.ones((5, 4, 4), np.uint8))
    path = tmp_path / "a"
    path.write_bytes((tmp_path / "full").read_bytes()[:-10])
    with raises_naming(path, r"claims shape \(5, 4, 4\)"):
        read_idx(path)


@pytest.mark.parametrize("magic", [b"\x12\x34\x08\x03", b"\x00\x00\x07\x03",
                                   b"\x00\x00\x08\x00", b"\x00\x00\x08\x05", b"<htm"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_wrong_magic(tmp_path, magic, suffix):
    path = write_bytes(tmp_path / f"a{suffix}", magic + bytes(100))
    with raises_naming(path, "bad magic number"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_more_data_than_claimed(tmp_path, suffix):
    path = write_bytes(tmp_path / f"a{suffix}", header(0x08, (3, 2, 2)) + bytes(4 * 4))
    with raises_naming(path, "more data"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_less_data_than_claimed(tmp_path, suffix):
    path = write_bytes(tmp_path / f"a{suffix}", header(0x08, (10, 2, 2)) + bytes(9 * 4))
    with raises_naming(path, r"\(10, 2, 2\)"):
        read_idx(path)


def test_item_size_counts(tmp_path):
    """int32 data: 4 bytes per item, so 4 items of uint8 size are only one int32."""
    path = write_bytes(tmp_path / "a", header(0x0C, (4,)) + bytes(4))
    with raises_naming(path, r"claims shape \(4,\) \(16 bytes\)"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_billion_images_refused_without_allocating(tmp_path, monkeypatch, suffix):
    requested = []
    read_exact = idx_module._read_exact

    def spy(f, n, path, what):
        requested.append(n)
        return read_exact(f, n, path, what)

    monkeypatch.setattr(idx_module, "_read_exact", spy)
    path = write_bytes(tmp_path / f"a{suffix}", header(0x08, (10**9, 28, 28)) + bytes(784 * 2))
    with raises_naming(path, re.escape("(1000000000, 28, 28)")):
        read_idx(path)
    assert max(requested) <= 12, "read the data before checking the claimed size"


def test_header_whose_size_overflows_int64(tmp_path):
    """The product of these dims is 2**64 + 4: int64 arithmetic would see 4 bytes."""
    dims = (4 * 5 * 5581, 8681 * 49477, 384773)
    assert math.prod(dims) == 2**64 + 4
    path = write_bytes(tmp_path / "a", header(0x08, dims) + bytes(4))
    with raises_naming(path, "claims shape"):
        read_idx(path)


def test_idx_error_is_a_value_error():
    assert issubclass(IDXError, ValueError)
