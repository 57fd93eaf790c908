"""Batch normalization over the axes ``axes`` (all but the channel axis).

Training: xhat = (x - mean) / sqrt(var + eps) with the batch's biased
variance; y = gamma * xhat + beta. Evaluation uses the running statistics.
The running variance is updated with the unbiased batch variance, as in
PyTorch. Shapes: x (N, C) or (N, C, H, W); gamma, beta, running stats (C,).
"""


def _bshape(x, axes):
    """Shape that broadcasts a (C,) vector against x."""
    return tuple(1 if a in axes else s for a, s in enumerate(x.shape))


def batch_norm_train(x, gamma, beta, eps, axes):
    """Returns y, (xhat, invstd) for backward, and the batch mean and biased variance."""
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    invstd = 1.0 / (var + eps) ** 0.5
    xhat = xc * invstd
    y = xhat * gamma.reshape(_bshape(x, axes)) if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta.reshape(_bshape(x, axes))
    return y, (xhat, invstd), mean.reshape(-1), var.reshape(-1)


def batch_norm_train_backward(gy, cache, gamma, axes):
    """Returns (gx, ggamma, gbeta): the batch statistics depend on x too.

    gx = invstd / m * (m * gxhat - sum(gxhat) - xhat * sum(gxhat * xhat)),
    with gxhat = gy * gamma and m the number of values per channel.
    """
    xhat, invstd = cache
    m = xhat.size // xhat.shape[1]
    gbeta = gy.sum(axis=axes)
    ggamma = (gy * xhat).sum(axis=axes)
    gxhat = gy * gamma.reshape(_bshape(gy, axes)) if gamma is not None else gy
    s1 = gxhat.sum(axis=axes, keepdims=True)
    s2 = (gxhat * xhat).sum(axis=axes, keepdims=True)
    gx = (gxhat * m - s1 - xhat * s2) * (invstd / m)
    return gx, ggamma, gbeta


def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps, axes):
    """Returns y and (xhat, invstd); the statistics are constants here."""
    shape = _bshape(x, axes)
    invstd = (1.0 / (running_var + eps) ** 0.5).reshape(shape)
    xhat = (x - running_mean.reshape(shape)) * invstd
    y = xhat * gamma.reshape(shape) if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta.reshape(shape)
    return y, (xhat, invstd)


def batch_norm_eval_backward(gy, cache, gamma, axes):
    xhat, invstd = cache
    scale = invstd * gamma.reshape(invstd.shape) if gamma is not None else invstd
    return gy * scale, (gy * xhat).sum(axis=axes), gy.sum(axis=axes)
