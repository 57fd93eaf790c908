"""Losses. Each returns the loss as an array scalar and what backward needs.

Cross-entropy takes raw logits and a target as PyTorch's ``cross_entropy``
does: integer class indices (an entry equal to ``ignore_index`` adds nothing)
or class probabilities of the logits' shape, with optional per-class weights
and label smoothing. Logits (N, C, d1, ...) are read as N*d1*... rows of C.
log-softmax is computed with the log-sum-exp shift, so a logit of 1e4 neither
overflows nor gives NaN.

With weights, smoothing or probabilities, each row's loss is
``-sum_c a[c] * log p[c]`` for a row ``a`` of target weights: w[c] * t[c]
for probabilities t (smoothed: t * (1 - e) + e / C), and
w[c] * ((1 - e) * onehot[c] + e / C) for a class index (0 when ignored).
Its gradient is ``p * sum_c a[c] - a``. Plain class indices keep the cheaper
pick of one log-probability per row, ``-log p[y]``, with gradient ``p - onehot``.
"""
import functools

import numpy as np

from ..backend import get_array_module
from .activation import fused


def _exp(z):
    """exp of z <= 0. A logit far below the largest one gives exp(z) = 0 (a probability
    below 1e-308, correctly rounded): expected, so not reported even under
    np.errstate(all="raise")."""
    with np.errstate(under="ignore"):
        return get_array_module(z).exp(z)


def _kernel(xp, f):
    """``f(xp, ...)``: one fused kernel on the GPU, plain NumPy on the CPU."""
    return functools.partial(f, np) if xp is np else fused(xp, f)


def log_softmax(x, axis=1):
    xp = get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    if xp is not np:  # the same formulas in two fused kernels: a launch costs more than a pass
        with np.errstate(under="ignore"):  # as _exp
            e = fused(xp, _gpu_exp_shifted)(x, m)
        return fused(xp, _gpu_log_softmax)(x, m, e.sum(axis=axis, keepdims=True))
    z = x - m
    return z - xp.log(_exp(z).sum(axis=axis, keepdims=True))


def _gpu_exp_shifted(xp, x, m):
    return xp.exp(x - m)


def _gpu_log_softmax(xp, x, m, s):
    return (x - m) - xp.log(s)


def _rows(a):
    """(N, C, d1, ...) -> (N*d1*..., C): one row of C per position, in C order."""
    n, c = a.shape[:2]
    return a.reshape(n, c, -1).transpose(0, 2, 1).reshape(-1, c)


def _not_ignored(labels, ignore_index):
    """The mask of labels that count, or None when none can be ignored: on the CPU when
    no label equals ignore_index, on the GPU (where looking would wait for it) only when
    the labels' dtype cannot hold it."""
    info = np.iinfo(labels.dtype)
    if not info.min <= ignore_index <= info.max:
        return None
    valid = labels != ignore_index
    if get_array_module(labels) is np and valid.all():
        return None
    return valid


def softmax_cross_entropy(logits, target, reduction="mean", weight=None, ignore_index=-100,
                          label_smoothing=0.0):
    """Fast version of :func:`scratchnet.teach.softmax_cross_entropy_forward` (read that first).

    logits: (N, C) or (N, C, d1, ...); target: class indices (N,) or (N, d1, ...), ints in
    [0, C) or ``ignore_index``, or class probabilities of the logits' shape (floats);
    weight: (C,) or None. The mean divides by the summed weight (the count) of the
    labels not ignored; for probability targets by the number of rows, as PyTorch.
    Returns (loss, saved): ``saved`` is what :func:`softmax_cross_entropy_backward` needs.
    """
    xp = get_array_module(logits)
    shape, c = logits.shape, logits.shape[1]
    probabilities = target.dtype.kind == "f"
    if logits.ndim > 2:
        logits = _rows(logits)
        target = _rows(target) if probabilities else target.reshape(-1)
    logp = log_softmax(logits)
    a = valid = None
    den = logits.shape[0]
    if probabilities or weight is not None or label_smoothing:
        a, valid, den = _target_weights(target, c, weight, ignore_index, label_smoothing,
                                        logp.dtype)
        rowloss = -(logp * a).sum(axis=1)
    else:
        rows = xp.arange(logits.shape[0])
        valid = _not_ignored(target, ignore_index)
        if valid is None:
            rowloss = -logp[rows, target]
        else:
            # CuPy wraps an out-of-range index around (NumPy would raise); the row is
            # zeroed either way.
            picked = logp[rows, target if xp is not np else np.where(valid, target, 0)]
            rowloss = _kernel(xp, _masked_neg)(picked, valid, logp.dtype.type(0))
            if reduction == "mean":
                den = valid.sum(dtype=logp.dtype)
    if reduction == "none":
        loss = rowloss.reshape(shape[:1] + shape[2:])
    elif reduction == "sum":
        loss = rowloss.sum()
    elif isinstance(den, int):
        loss = rowloss.mean()
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # all ignored: NaN, as PyTorch
            loss = rowloss.sum() / den
    return loss, (_exp(logp), valid, den, a, shape)


def _masked_neg(xp, picked, valid, zero):
    return xp.where(valid, -picked, zero)


def _target_weights(target, c, weight, ignore_index, eps, dtype):
    """(a, valid, den): the target weights a (rows, C), the mask of rows that count (None:
    all) and the mean's divisor."""
    xp = get_array_module(target)
    w = None if weight is None else weight.astype(dtype, copy=False)
    if target.dtype.kind == "f":
        a = target.astype(dtype, copy=False)
        if eps:
            a = a * (1 - eps) + eps / c
        return (a if w is None else a * w), None, target.shape[0]
    valid = _not_ignored(target, ignore_index)
    labels = target if valid is None or xp is not np else np.where(valid, target, 0)
    onehot = xp.arange(c) == labels[:, None]
    a = xp.where(onehot, dtype.type(1 - eps + eps / c), dtype.type(eps / c))
    wy = xp.ones(target.shape, dtype) if w is None else w[labels]
    if w is not None:
        a = a * w
    if valid is not None:
        a = a * valid[:, None]
        wy = wy * valid
    return a, valid, wy.sum()


def softmax_cross_entropy_backward(saved, target, reduction="mean", gy=1.0):
    """Fast version of :func:`scratchnet.teach.softmax_cross_entropy_backward` (read that first).

    ``saved``: what the forward returned with the loss; ``target``: the forward's.
    dL/dlogits = (softmax - onehot) * gy per row, divided by the mean's divisor; with
    target weights a: (softmax * sum(a) - a) * gy.
    """
    probs, valid, den, a, shape = saved
    xp = get_array_module(probs)
    m, c = probs.shape
    dtype = probs.dtype
    if reduction == "none":
        s = gy.reshape(m, 1).astype(dtype, copy=False)
    else:
        with np.errstate(divide="ignore"):
            s = _scale(gy, den if reduction == "mean" else 1, dtype)
    if a is None and target.ndim > 1:
        target = target.reshape(-1)
    # Scaling a probability that is already tiny may round it to 0 (as _exp may).
    with np.errstate(under="ignore"):
        if a is not None:
            if valid is not None:  # rows that count nothing get 0, even when all are ignored
                s = xp.where(valid[:, None], s, dtype.type(0))
            g = (probs * a.sum(axis=1, keepdims=True) - a) * s
        elif valid is not None:
            g = _kernel(xp, _softmax_minus_onehot)(probs, xp.arange(c), target[:, None],
                                                   valid[:, None], s, dtype.type(0))
        else:
            g = probs.copy()
            g[xp.arange(m), target] -= 1
            g = g * s
    if len(shape) > 2:  # rows back to (N, C, d1, ...)
        n = shape[0]
        g = g.reshape(n, -1, c).transpose(0, 2, 1).reshape(shape)
    return g


def _softmax_minus_onehot(xp, p, cols, labels, valid, s, zero):
    return xp.where(cols == labels, p - 1, p) * xp.where(valid, s, zero)


def mse(y, t, reduction="mean"):
    """Fast version of :func:`scratchnet.teach.mse_loss_forward` (read that first).

    Returns the loss and d = y - t, which :func:`mse_backward` takes."""
    d = y - t
    sq = d * d
    loss = sq.mean() if reduction == "mean" else sq.sum() if reduction == "sum" else sq
    return loss, d


def mse_backward(d, reduction="mean", gy=1.0):
    """Fast version of :func:`scratchnet.teach.mse_loss_backward` (read that first)."""
    if reduction == "none":
        return 2 * d * gy.astype(d.dtype, copy=False)
    return d * _scale(2 * gy, d.size if reduction == "mean" else 1, d.dtype)


def _scale(gy, n, dtype):
    """gy / n in ``dtype``: a Python number, or a 0-d device array that stays there
    (gy or n may be one)."""
    if isinstance(gy, (int, float, np.generic)) and isinstance(n, (int, float, np.generic)):
        return dtype.type(gy / n)
    s = gy / n
    return s if s.dtype == dtype else s.astype(dtype)
