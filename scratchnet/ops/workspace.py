"""Reusable scratch arrays for temporaries that live inside one op call.

Why: a fresh multi-megabyte NumPy array is fresh memory from the kernel, and
every page of it is zeroed on first touch; in a small network's training step
those page faults are a large part of the time. PyTorch's allocator keeps such
memory; this is our small version of that.

``scratch(name, shape, dtype, xp)`` returns an uninitialised array that stays
valid until the next ``scratch`` call with the same ``name``. It is carved from
one flat buffer per (name, dtype, array module) that only grows. So:

- only for temporaries that do not leave the op (never return one to a caller);
- two temporaries alive at the same time need two names;
- each thread has its own buffers (``parallel_for``'s workers use them at once).

``release()`` hands every buffer back (tests, or after training a large model).
"""
import threading

import numpy as np

_buffers = {}


def scratch(name, shape, dtype, xp=np):
    dtype = np.dtype(dtype)
    size = 1
    for s in shape:
        size *= int(s)
    key = (threading.get_ident(), name, dtype.str, xp.__name__)
    if xp is not np:
        key += (xp.cuda.runtime.getDevice(),)  # one buffer per GPU
    buf = _buffers.get(key)
    if buf is None or buf.size < size:
        buf = xp.empty(max(size, 1), dtype=dtype)
        _buffers[key] = buf
    return buf[:size].reshape(shape)


def reuse(buf, shape, dtype, xp=np):
    """``buf`` if it already is a C-contiguous array of this shape, dtype and module;
    otherwise a new uninitialised one (a layer keeps its own buffer this way)."""
    if (buf is not None and isinstance(buf, xp.ndarray) and buf.shape == tuple(shape)
            and buf.dtype == dtype and buf.flags.c_contiguous):
        return buf
    return xp.empty(shape, dtype=dtype)


def release():
    """Free every scratch buffer."""
    _buffers.clear()
