"""Reader for the IDX format of MNIST and Fashion-MNIST (gzip or raw).

Header: two zero bytes, a type code (0x08 = uint8, ...), the number of
dimensions, then one big-endian int32 per dimension; the data follows.
Every size is checked against the file before anything of that size is
allocated, so a corrupt header claiming a billion images fails at once.
"""
import gzip
import math
import os
import struct
import zlib

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
# Deflate cannot compress better than about 1032:1; a header that claims more
# data than that from the compressed size is lying.
_MAX_DEFLATE_RATIO = 1100
_CHUNK = 1 << 20


class IDXError(ValueError):
    """A missing, truncated or inconsistent IDX file."""


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _read_exact(f, n, path, what):
    """Read exactly n bytes in chunks (never one allocation of a claimed size)."""
    parts, got = [], 0
    while got < n:
        chunk = f.read(min(_CHUNK, n - got))
        if not chunk:
            raise IDXError(f"{path}: truncated {what}: expected {n} bytes, got {got}")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_idx(path):
    """Return the array stored in an IDX file (``.gz`` or raw), checked for consistency."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    size = os.path.getsize(path)
    compressed = _is_gzip(path)
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as f:
            head = _read_exact(f, 4, path, "header")
            if head[0] != 0 or head[1] != 0 or head[2] not in _TYPES or not 1 <= head[3] <= 4:
                raise IDXError(f"{path}: not an IDX file: bad magic number 0x{head.hex()} "
                               "(expected 0x0000TTDD: type 08 for uint8, 1-4 dimensions)")
            dtype = np.dtype(_TYPES[head[2]])
            dims = struct.unpack(f">{head[3]}I", _read_exact(f, 4 * head[3], path, "header"))
            # Python ints: np.prod in int64 wraps for dims near 2**32 and would let
            # a corrupt header through the size check below.
            count = math.prod(dims)
            nbytes = count * dtype.itemsize
            limit = size * _MAX_DEFLATE_RATIO if compressed else size - 4 - 4 * head[3]
            if nbytes > limit:
                raise IDXError(f"{path}: header claims shape {dims} ({nbytes} bytes) but the "
                               f"file holds {'at most ' if compressed else ''}{limit} bytes")
            data = _read_exact(f, nbytes, path, f"data for shape {dims}")
            if f.read(1):
                raise IDXError(f"{path}: header claims shape {dims} but the file holds more data")
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise IDXError(f"{path}: corrupt or truncated gzip data: {e}") from None
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` as an IDX file (gzip when the name ends in .gz); for tests and tools."""
    array = np.asarray(array)
    codes = {np.dtype(v).str.lstrip("<>|="): k for k, v in _TYPES.items()}
    code = codes[array.dtype.str.lstrip("<>|=")]
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = head + array.astype(np.dtype(_TYPES[code]).newbyteorder(">")).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)
