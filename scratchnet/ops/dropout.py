"""Inverted dropout: zero each value with probability p and scale the rest by
1 / (1 - p) during training, so evaluation is the identity."""
from ..backend import get_array_module, random_uniform


def dropout_mask(x, p):
    """The scaled keep-mask, in the dtype of x: 0 or 1 / (1 - p)."""
    xp = get_array_module(x)
    if p >= 1:
        return xp.zeros_like(x)
    keep = random_uniform(xp, x.shape, x.dtype) >= p
    return keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))


def dropout(x, mask):
    """Fast version of :func:`scratchnet.teach.dropout_forward` (read that first).

    ``mask`` is :func:`dropout_mask`'s: the keep-mask already scaled by 1 / (1 - p)."""
    return x * mask


def dropout_backward(gy, mask):
    """Fast version of :func:`scratchnet.teach.dropout_backward` (read that first)."""
    return gy * mask
