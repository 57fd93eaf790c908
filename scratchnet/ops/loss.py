"""Losses. Each returns the loss as an array scalar and what backward needs.

Cross-entropy takes raw logits and integer class labels (PyTorch's
``CrossEntropyLoss``): log-softmax is computed with the log-sum-exp shift,
so a logit of 1e4 neither overflows nor gives NaN.
"""
import numpy as np

from ..backend import get_array_module


def _exp(z):
    """exp of z <= 0. A logit far below the largest one gives exp(z) = 0 (a probability
    below 1e-308, correctly rounded): expected, so not reported even under
    np.errstate(all="raise")."""
    with np.errstate(under="ignore"):
        return get_array_module(z).exp(z)


def log_softmax(x, axis=1):
    xp = get_array_module(x)
    z = x - x.max(axis=axis, keepdims=True)
    return z - xp.log(_exp(z).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(logits, labels, reduction="mean"):
    """Fast version of :func:`scratchnet.teach.softmax_cross_entropy_forward` (read that first).

    logits: (N, C), labels: (N,) ints in [0, C). Returns (loss, probs).
    """
    xp = get_array_module(logits)
    logp = log_softmax(logits)
    picked = -logp[xp.arange(logits.shape[0]), labels]
    loss = picked.mean() if reduction == "mean" else picked.sum() if reduction == "sum" else picked
    return loss, _exp(logp)


def softmax_cross_entropy_backward(probs, labels, reduction="mean", gy=1.0):
    """Fast version of :func:`scratchnet.teach.softmax_cross_entropy_backward` (read that first).

    dL/dlogits = (softmax - onehot) * gy, divided by N for the mean.
    """
    xp = get_array_module(probs)
    n = probs.shape[0]
    g = probs.copy()
    g[xp.arange(n), labels] -= 1
    # Scaling a probability that is already tiny may round it to 0 (as _exp may).
    with np.errstate(under="ignore"):
        if reduction == "none":
            return g * gy.reshape(n, 1).astype(g.dtype, copy=False)
        return g * _scale(gy, n if reduction == "mean" else 1, g.dtype)


def mse(y, t, reduction="mean"):
    d = y - t
    sq = d * d
    loss = sq.mean() if reduction == "mean" else sq.sum() if reduction == "sum" else sq
    return loss, d


def mse_backward(d, reduction="mean", gy=1.0):
    if reduction == "none":
        return 2 * d * gy.astype(d.dtype, copy=False)
    return d * _scale(2 * gy, d.size if reduction == "mean" else 1, d.dtype)


def _scale(gy, n, dtype):
    """gy / n in ``dtype``: a Python number, or a 0-d device array that stays there."""
    if isinstance(gy, (int, float, np.generic)):
        return dtype.type(gy / n)
    return (gy / n).astype(dtype)
