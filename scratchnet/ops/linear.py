"""Fully connected layer: y = x @ W.T + b, with W (out, in) as in PyTorch.

Shapes: x (*, in), W (out, in), b (out,), y (*, out): any leading axes, as
PyTorch's, are read as rows of a 2-D (rows, in) input (a 1-D x as one row).
``dot`` rather than ``@``: NumPy's matmul skips BLAS for a transposed operand.

A large layer (VGG's 6272 -> 4096) is split over the output features, on all
cores (``parallel_for``): chunk [a:b] of the outputs needs rows a..b-1 of W
only, for y, for dL/dW and for its share of dL/dx. A small one is one chunk.
"""
from ..backend import get_array_module
from .parallel import add_in_order, parallel_for


def linear(x, W, b):
    """Fast version of :func:`scratchnet.teach.linear_forward` (read that first)."""
    xp = get_array_module(x)
    if x.ndim != 2:
        return linear(x.reshape(-1, x.shape[-1]), W, b).reshape(x.shape[:-1] + W.shape[:1])
    parts = parallel_for(W.shape[0], W.shape[1] * W.itemsize,
                         lambda a, c: x.dot(W[a:c].T), xp)
    y = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=1)
    if b is not None:
        y += b
    return y


def linear_backward(gy, x, W, need_gx=True, need_gb=True):
    """Fast version of :func:`scratchnet.teach.linear_backward` (read that first).

    Returns (gx, gW, gb): gx = gy @ W, gW = gy.T @ x, gb = sum over the batch.
    """
    xp = get_array_module(gy)
    if x.ndim != 2:
        gx, gW, gb = linear_backward(gy.reshape(-1, W.shape[0]), x.reshape(-1, x.shape[-1]),
                                     W, need_gx, need_gb)
        return (None if gx is None else gx.reshape(x.shape)), gW, gb

    def chunk(a, c):
        g = gy[:, a:c]
        return g.T.dot(x), (g.dot(W[a:c]) if need_gx else None)

    parts = parallel_for(W.shape[0], W.shape[1] * W.itemsize, chunk, xp)
    gW = parts[0][0] if len(parts) == 1 else xp.concatenate([p[0] for p in parts])
    gx = add_in_order([p[1] for p in parts]) if need_gx else None  # the chunks' shares
    gb = gy.sum(axis=0) if need_gb else None
    return gx, gW, gb
