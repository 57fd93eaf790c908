"""Fully connected layer: y = x @ W.T + b, with W (out, in) as in PyTorch.

Shapes: x (N, in), W (out, in), b (out,), y (N, out).
``dot`` rather than ``@``: NumPy's matmul skips BLAS for a transposed operand
(measured 7 ms against 0.04 ms for a (32, 400) x (400, 120) product).
"""


def linear(x, W, b):
    y = x.dot(W.T)
    if b is not None:
        y += b
    return y


def linear_backward(gy, x, W, need_gx=True, need_gb=True):
    """Returns (gx, gW, gb): gx = gy @ W, gW = gy.T @ x, gb = sum over the batch."""
    gx = gy.dot(W) if need_gx else None
    gW = gy.T.dot(x)
    gb = gy.sum(axis=0) if need_gb else None
    return gx, gW, gb
