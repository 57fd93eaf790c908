"""Element-wise activations. Each backward takes what its forward returned.

A large array is split into chunks of elements on all cores (``parallel_for``);
each chunk's ``np.errstate`` is set inside the chunk, as NumPy's error state
belongs to the thread. On the GPU each function is one fused kernel
(:func:`fused`): there the cost of a small op is its launch, not its pass.
"""
import numpy as np

from ..backend import get_array_module
from .parallel import parallel_for

_FUSED = {}


def fused(xp, f):
    """``f(xp, *args)`` as one CuPy kernel (``cupy.fuse``), built once per function.

    For the GPU path only: ``f`` is a chain of element-wise operators and ufuncs on
    arrays, None or scalars (pass a scalar as ``x.dtype.type(v)``, so it keeps the
    arrays' dtype), with reshapes and views done by the caller. The CPU runs its own
    plain NumPy code; the tests run ``f`` on the CuPy double, whose ``fuse`` calls it
    as it is, against PyTorch.
    """
    kernel = _FUSED.get((f, xp))
    if kernel is None:
        def kernel(*args):
            return f(xp, *args)
        kernel.__name__ = f.__name__
        kernel = _FUSED[(f, xp)] = xp.fuse(kernel_name=f.__name__)(kernel)
    return kernel


def _map(f, expr, *arrays):
    """out = f(out_chunk, *chunks) over flat chunks of C-contiguous copies of arrays;
    on the GPU ``expr(xp, *arrays)`` as one fused kernel instead."""
    xp = get_array_module(arrays[0])
    if xp is not np:
        return fused(xp, expr)(*arrays)
    flat = [xp.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = xp.empty(arrays[0].shape, dtype=arrays[0].dtype)
    of = out.reshape(-1)
    parallel_for(of.size, of.itemsize, lambda a, b: f(of[a:b], *(v[a:b] for v in flat)), xp,
                 blas=False)
    return out


def _relu(out, x):
    get_array_module(x).maximum(x, 0, out=out)


def _relu_expr(xp, x):
    return xp.maximum(x, 0)


def relu(x):
    """Fast version of :func:`scratchnet.teach.relu_forward` (read that first)."""
    return _map(_relu, _relu_expr, x)


def _relu_backward(out, gy, y):
    # The derivative at 0 is taken as 0, as PyTorch does: y > 0 iff x > 0. A multiply
    # by the 0/1 mask, which NumPy runs much faster than where().
    get_array_module(gy).multiply(y > 0, gy, out=out)


def _relu_backward_expr(xp, gy, y):
    return (y > 0) * gy


def relu_backward(gy, y):
    """Fast version of :func:`scratchnet.teach.relu_backward` (read that first)."""
    return _map(_relu_backward, _relu_backward_expr, gy, y)


def _sigmoid(out, x):
    xp = get_array_module(x)
    with np.errstate(over="ignore", under="ignore"):
        xp.negative(x, out=out)
        xp.exp(out, out=out)
        out += 1
        xp.reciprocal(out, out=out)


def _sigmoid_expr(xp, x):
    with np.errstate(over="ignore", under="ignore"):  # NumPy's, on the CuPy double
        return xp.reciprocal(xp.exp(-x) + 1)


def sigmoid(x):
    """Fast version of :func:`scratchnet.teach.sigmoid_forward` (read that first).

    1 / (1 + exp(-x)), in place on one buffer (faster than scipy's expit).

    For x below about -88 (float32) exp(-x) is inf and the result exactly 0, the
    correctly rounded value (and for large x it underflows to 0, giving 1): both are
    expected, so neither is warned about.
    """
    return _map(_sigmoid, _sigmoid_expr, x)


def _sigmoid_backward(out, gy, y):
    # y(1 - y) is subnormal where y is: underflow to 0 there is the right answer.
    xp = get_array_module(gy)
    with np.errstate(under="ignore"):
        xp.subtract(1, y, out=out)
        out *= y
        out *= gy


def _sigmoid_backward_expr(xp, gy, y):
    with np.errstate(under="ignore"):
        return (1 - y) * y * gy


def sigmoid_backward(gy, y):
    """Fast version of :func:`scratchnet.teach.sigmoid_backward` (read that first)."""
    return _map(_sigmoid_backward, _sigmoid_backward_expr, gy, y)


def tanh(x):
    """Fast version of :func:`scratchnet.teach.tanh_forward` (read that first)."""
    return get_array_module(x).tanh(x)


def _tanh_backward_expr(xp, gy, y):
    return gy * (1 - y * y)


def tanh_backward(gy, y):
    """Fast version of :func:`scratchnet.teach.tanh_backward` (read that first)."""
    xp = get_array_module(gy)
    if xp is not np:
        return fused(xp, _tanh_backward_expr)(gy, y)
    return gy * (1 - y * y)
