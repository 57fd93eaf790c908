"""Batch normalization over the axes ``axes`` (all but the channel axis).

Training: xhat = (x - mean) / sqrt(var + eps) with the batch's biased
variance; y = gamma * xhat + beta. Evaluation uses the running statistics.
The running variance is updated with the unbiased batch variance, as in
PyTorch. Shapes: x (N, C) or (N, C, H, W); gamma, beta, running stats (C,).

The CPU sums per channel with ``einsum`` over chunks of the batch on all cores.
The GPU takes each statistic as one reduction and each element-wise chain as one
fused kernel (``_gpu_*`` below, the same formulas): there a launch costs more than
a pass, and CuPy's two-operand ``einsum`` is transposed copies plus a batched matmul.
"""
import numpy as np

from ..backend import get_array_module
from .activation import fused
from .parallel import add_in_order, parallel_for


def _bshape(x, axes):
    """Shape that broadcasts a (C,) vector against x."""
    return tuple(1 if a in axes else s for a, s in enumerate(x.shape))


def _channel_sum(a, b=None):
    """Per-channel sum of a (or of a * b, without building the product) over every
    axis but 1. einsum on an (N, C, P) view: faster than sum(axis=(0, 2, 3)) in
    NumPy; on CuPy a product and a reduction (its einsum would transpose and copy)."""
    xp = get_array_module(a)
    a3 = a.reshape(a.shape[0], a.shape[1], -1)
    if xp is not np:
        return (a3 if b is None else a3 * b.reshape(a3.shape)).sum(axis=(0, 2))
    if b is None:
        return xp.einsum("ncp->c", a3)
    return xp.einsum("ncp,ncp->c", a3, b.reshape(a3.shape))


def batch_norm_train(x, gamma, beta, eps, axes):
    """Fast version of :func:`scratchnet.teach.batch_norm_train_forward` (read that first).

    Returns y, (xc, invstd) for backward (xc = x - mean), and the batch mean and
    biased variance. Two passes for the variance (no E[x^2] - E[x]^2 cancellation).

    Each pass runs over chunks of the batch on all cores (``parallel_for``); the
    per-channel sums are added chunk by chunk.
    """
    xp = get_array_module(x)
    shape = _bshape(x, axes)
    if xp is not np:
        return _gpu_train(xp, x, gamma, beta, eps, axes, shape)
    m = x.size // x.shape[1]
    n, per = x.shape[0], x[:1].nbytes
    mean = add_in_order(parallel_for(n, per, lambda a, b: _channel_sum(x[a:b]), xp,
                                    blas=False)) / m
    xc = xp.empty_like(x)

    def center(a, b):
        xp.subtract(x[a:b], mean.reshape(shape), out=xc[a:b])
        return _channel_sum(xc[a:b], xc[a:b])

    var = add_in_order(parallel_for(n, per, center, xp, blas=False)) / m
    invstd = 1.0 / (var + eps) ** 0.5
    scale = (invstd * gamma if gamma is not None else invstd).reshape(shape)
    y = xp.empty_like(x)

    def affine(a, b):
        xp.multiply(xc[a:b], scale, out=y[a:b])
        if beta is not None:
            y[a:b] += beta.reshape(shape)

    parallel_for(n, per, affine, xp, blas=False)
    return y, (xc, invstd), mean, var


def batch_norm_train_backward(gy, cache, gamma, axes):
    """Fast version of :func:`scratchnet.teach.batch_norm_train_backward` (read that first).

    Returns (gx, ggamma, gbeta): the batch statistics depend on x too.

    With xhat = xc * invstd, gxhat = gy * gamma and m values per channel,
    gx = invstd / m * (m * gxhat - sum(gxhat) - xhat * sum(gxhat * xhat)),
    computed as gy * A + xc * B + C with per-channel A, B, C (four passes),
    chunk by chunk on all cores like the forward.
    """
    xp = get_array_module(gy)
    xc, invstd = cache
    shape = _bshape(gy, axes)
    m = xc.size // xc.shape[1]
    if xp is not np:
        return _gpu_train_backward(xp, gy, xc, invstd, gamma, m, shape)
    n, per = gy.shape[0], gy[:1].nbytes
    parts = parallel_for(n, per, lambda a, b: (_channel_sum(gy[a:b]),
                                               _channel_sum(gy[a:b], xc[a:b])), xp,
                         blas=False)
    gbeta = add_in_order([p[0] for p in parts])
    ggamma = add_in_order([p[1] for p in parts]) * invstd  # sum(gy * xhat)
    g = gamma if gamma is not None else 1.0
    A = g * invstd
    B = -A * invstd * ggamma / m
    C = -A * gbeta / m
    gx = xp.empty_like(gy)

    def grad(a, b):
        out = gx[a:b]
        xp.multiply(gy[a:b], A.reshape(shape), out=out)
        t = xc[a:b] * B.reshape(shape)
        out += t
        out += C.reshape(shape)

    parallel_for(n, per, grad, xp, blas=False)
    return gx, ggamma, gbeta


def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps, axes):
    """Fast version of :func:`scratchnet.teach.batch_norm_eval_forward` (read that first).

    Returns y and (x, mean, invstd); the statistics are constants here.

    The cache holds the input itself, not xhat: evaluation keeps no array of its own
    for a backward that rarely comes (backward computes xhat again).
    """
    xp = get_array_module(x)
    shape = _bshape(x, axes)
    mean = running_mean.reshape(shape)
    if xp is not np:
        invstd, scale = fused(xp, _gpu_scale)(running_var, gamma, x.dtype.type(eps))
        y = fused(xp, _gpu_normalize)(x, mean, scale.reshape(shape), _b(beta, shape))
        return y, (x, mean, invstd.reshape(shape))
    invstd = (1.0 / (running_var + eps) ** 0.5).reshape(shape)
    xhat = (x - mean) * invstd
    y = xhat * gamma.reshape(shape) if gamma is not None else xhat
    if beta is not None:
        y += beta.reshape(shape)
    return y, (x, mean, invstd)


def batch_norm_eval_backward(gy, cache, gamma, axes):
    """Fast version of :func:`scratchnet.teach.batch_norm_eval_backward` (read that first)."""
    x, mean, invstd = cache
    scale = invstd * gamma.reshape(invstd.shape) if gamma is not None else invstd
    ggamma = _channel_sum(gy, x - mean) * invstd.reshape(-1)  # sum(gy * xhat)
    return gy * scale, ggamma, _channel_sum(gy)


def _b(v, shape):
    """A (C,) vector as a view that broadcasts against x, or None."""
    return None if v is None else v.reshape(shape)


def _gpu_train(xp, x, gamma, beta, eps, axes, shape):
    """batch_norm_train in five kernels: two reductions, three fused chains."""
    mean = x.mean(axis=axes, keepdims=True)
    xc, sq = fused(xp, _gpu_centre)(x, mean)
    var = sq.mean(axis=axes)  # two passes, as on the CPU: no E[x^2] - E[x]^2
    invstd, scale = fused(xp, _gpu_scale)(var, gamma, x.dtype.type(eps))
    y = fused(xp, _gpu_normalize)(xc, None, scale.reshape(shape), _b(beta, shape))
    return y, (xc, invstd), mean.reshape(-1), var


def _gpu_centre(xp, x, mean):
    xc = x - mean
    return xc, xc * xc


def _gpu_scale(xp, var, gamma, eps):
    """invstd = 1 / sqrt(var + eps) and the scale gamma * invstd."""
    invstd = 1 / (var + eps) ** 0.5
    return invstd, (invstd if gamma is None else invstd * gamma)


def _gpu_normalize(xp, x, mean, scale, beta):
    """(x - mean) * scale + beta; mean and beta may be None."""
    y = (x if mean is None else x - mean) * scale
    return y if beta is None else y + beta


def _gpu_train_backward(xp, gy, xc, invstd, gamma, m, shape):
    """batch_norm_train_backward in five kernels: two reductions, a product, two fused
    chains."""
    gbeta, gxc = _channel_sum(gy), _channel_sum(gy, xc)
    ggamma, A, B, C = fused(xp, _gpu_grad_coefficients)(gbeta, gxc, invstd, gamma,
                                                        gy.dtype.type(m))
    gx = fused(xp, _gpu_grad)(gy, xc, A.reshape(shape), B.reshape(shape), C.reshape(shape))
    return gx, ggamma, gbeta


def _gpu_grad_coefficients(xp, gbeta, gxc, invstd, gamma, m):
    """The per-channel A, B, C of gx = gy * A + xc * B + C (see the CPU's backward)."""
    ggamma = gxc * invstd
    A = invstd if gamma is None else gamma * invstd
    return ggamma, A, -A * invstd * ggamma / m, -A * gbeta / m


def _gpu_grad(xp, gy, xc, A, B, C):
    return gy * A + xc * B + C
