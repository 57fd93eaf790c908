"""Naive loop versions of cross-correlation and pooling (d2l 7.2 to 7.5).

These are the book's functions, written the way the book writes them: one
Python loop step per output element. They are here to be read, and to serve
as test oracles for the fast im2col path in ``scratchnet.ops``; they are far
too slow for training. Each works on numpy and cupy arrays alike and returns
an array of the input's floating dtype. They take array-likes (nested lists) as
NumPy's functions do; those, and integer arrays, are computed in the default dtype
(float32), the dtype of the book's ``torch.zeros`` output.
"""
from scratchnet.backend import get_array_module, get_default_dtype
from scratchnet.ops.im2col import pair, pool_stride


def _check_ndim(fname, name, a, ndim, layout):
    if a.ndim != ndim:
        raise ValueError(
            f"{fname}: expected {name} to be {ndim}-D {layout}, got shape {tuple(a.shape)}")


def _pair(fname, name, v, minimum, stride_of=None):
    """``v`` as an (h, w) pair of ints, each at least ``minimum``; an int or a 1-tuple
    stands for both, as in PyTorch (``ops.pair`` reads it). ``stride_of``: the kernel
    size of a pooling window, which a stride of None (or empty) stands for."""
    try:
        h, w = pair(v, name) if stride_of is None else pool_stride(v, stride_of, name)
    except (TypeError, ValueError):
        h = w = None
    if h is None or min(h, w) < minimum:
        raise ValueError(f"{fname}: expected {name} to be an int >= {minimum} "
                         f"or a pair of them, got {v!r}")
    return h, w


def _arrays(fname, *values):
    """Each value as an array on the device of the arrays among them: an array of a
    floating dtype as it is; anything else (a list, an integer array) in the default
    dtype (float32), as the book's ``torch.zeros`` output is. None stays None."""
    xp = get_array_module(*values)
    out = []
    for v in values:
        a = v if v is None or isinstance(v, xp.ndarray) else xp.asarray(v)
        if a is not None and a.dtype.kind != "f":
            if a.dtype.kind not in "biu":
                raise TypeError(f"{fname}: expected arrays of numbers, got {a.dtype} values")
            a = a.astype(get_default_dtype())
        out.append(a)
    return out


def corr2d(X, K):
    """2-D cross-correlation of one channel with one kernel, no padding.

    X: (H, W), K: (kh, kw) -> Y: (H - kh + 1, W - kw + 1)
    """
    X, K = _arrays("corr2d", X, K)
    _check_ndim("corr2d", "X", X, 2, "(H, W)")
    _check_ndim("corr2d", "K", K, 2, "(kh, kw)")
    h, w = K.shape
    if h > X.shape[0] or w > X.shape[1]:
        raise ValueError(f"corr2d: expected a kernel no larger than the input "
                         f"{tuple(X.shape)}, got kernel {tuple(K.shape)}")
    xp = get_array_module(X, K)
    Y = xp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=xp.result_type(X, K))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_multi_in(X, K):
    """Cross-correlation over several input channels, summed into one output.

    X: (C, H, W), K: (C, kh, kw) -> Y: (H - kh + 1, W - kw + 1)
    """
    X, K = _arrays("corr2d_multi_in", X, K)
    _check_ndim("corr2d_multi_in", "X", X, 3, "(C, H, W)")
    _check_ndim("corr2d_multi_in", "K", K, 3, "(C, kh, kw)")
    if X.shape[0] != K.shape[0]:
        raise ValueError(f"corr2d_multi_in: expected K to have X's {X.shape[0]} channels, "
                         f"got K of shape {tuple(K.shape)}")
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X, K):
    """Cross-correlation with one (C, kh, kw) kernel per output channel.

    X: (C, H, W), K: (O, C, kh, kw) -> Y: (O, H - kh + 1, W - kw + 1)
    """
    X, K = _arrays("corr2d_multi_in_out", X, K)
    _check_ndim("corr2d_multi_in_out", "K", K, 4, "(O, C, kh, kw)")
    xp = get_array_module(X, K)
    return xp.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X, K):
    """1x1 convolution as a matrix product over the channels at each pixel.

    X: (C, H, W), K: (O, C, 1, 1) -> Y: (O, H, W)
    """
    X, K = _arrays("corr2d_multi_in_out_1x1", X, K)
    _check_ndim("corr2d_multi_in_out_1x1", "X", X, 3, "(C, H, W)")
    _check_ndim("corr2d_multi_in_out_1x1", "K", K, 4, "(O, C, 1, 1)")
    c_i, h, w = X.shape
    c_o = K.shape[0]
    if K.shape[1:] != (c_i, 1, 1):
        raise ValueError(f"corr2d_multi_in_out_1x1: expected K of shape (O, {c_i}, 1, 1), "
                         f"got {tuple(K.shape)}")
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    # Each pixel's channel vector goes through the same fully connected layer.
    Y = K @ X
    return Y.reshape((c_o, h, w))


def pool2d(X, pool_size, mode="max"):
    """Max or average pooling of one channel, stride 1, no padding.

    X: (H, W), pool_size: int or (ph, pw) -> Y: (H - ph + 1, W - pw + 1)
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"pool2d: expected mode 'max' or 'avg', got {mode!r}")
    X, = _arrays("pool2d", X)
    _check_ndim("pool2d", "X", X, 2, "(H, W)")
    p_h, p_w = _pair("pool2d", "pool_size", pool_size, 1)
    if p_h > X.shape[0] or p_w > X.shape[1]:
        raise ValueError(f"pool2d: expected a pool_size no larger than the input "
                         f"{tuple(X.shape)}, got {(p_h, p_w)}")
    xp = get_array_module(X)
    Y = xp.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i:i + p_h, j:j + p_w].max()
            else:
                Y[i, j] = X[i:i + p_h, j:j + p_w].mean()
    return Y


def conv2d_naive(X, W, b=None, stride=1, padding=0, dilation=1):
    """Batched 2-D cross-correlation with zero padding, stride and dilation.

    X: (N, C, H, W), W: (O, C, kh, kw), b: (O,) or None -> Y: (N, O, OH, OW)
    with OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1, and OW alike.
    """
    X, W, b = _arrays("conv2d_naive", X, W, b)
    _check_ndim("conv2d_naive", "X", X, 4, "(N, C, H, W)")
    _check_ndim("conv2d_naive", "W", W, 4, "(O, C, kh, kw)")
    N, C, H, Wd = X.shape
    O, c, kh, kw = W.shape
    if c != C:
        raise ValueError(f"conv2d_naive: expected W to have X's {C} input channels, "
                         f"got W of shape {tuple(W.shape)}")
    if b is not None and tuple(b.shape) != (O,):
        raise ValueError(f"conv2d_naive: expected b of shape ({O},), got {tuple(b.shape)}")
    sh, sw = _pair("conv2d_naive", "stride", stride, 1)
    ph, pw = _pair("conv2d_naive", "padding", padding, 0)
    dh, dw = _pair("conv2d_naive", "dilation", dilation, 1)
    # The span of the dilated kernel on the input.
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if eh > H + 2 * ph or ew > Wd + 2 * pw:
        raise ValueError(f"conv2d_naive: expected a dilated kernel no larger than the padded "
                         f"input {(H + 2 * ph, Wd + 2 * pw)}, got {(eh, ew)}")
    xp = get_array_module(X, W, b)
    dtype = xp.result_type(X, W) if b is None else xp.result_type(X, W, b)
    Xp = xp.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH = (H + 2 * ph - eh) // sh + 1
    OW = (Wd + 2 * pw - ew) // sw + 1
    Y = xp.zeros((N, O, OH, OW), dtype=dtype)
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    window = Xp[n, :, i * sh:i * sh + eh:dh, j * sw:j * sw + ew:dw]
                    Y[n, o, i, j] = (window * W[o]).sum()
            if b is not None:
                Y[n, o] += b[o]
    return Y


def pool2d_naive(X, kernel_size, stride=None, padding=0, mode="max"):
    """Batched max or average pooling with PyTorch's semantics.

    X: (N, C, H, W) -> Y: (N, C, OH, OW), OH = (H + 2 ph - kh) // sh + 1 (floor),
    OW alike. stride defaults to kernel_size. Max pooling pads with -inf;
    average pooling pads with zeros and always divides by kh * kw (PyTorch's
    count_include_pad=True).
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"pool2d_naive: expected mode 'max' or 'avg', got {mode!r}")
    X, = _arrays("pool2d_naive", X)
    _check_ndim("pool2d_naive", "X", X, 4, "(N, C, H, W)")
    kh, kw = _pair("pool2d_naive", "kernel_size", kernel_size, 1)
    sh, sw = _pair("pool2d_naive", "stride", stride, 1, stride_of=(kh, kw))
    ph, pw = _pair("pool2d_naive", "padding", padding, 0)
    # PyTorch refuses larger padding: a window could then hold padding only.
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"pool2d_naive: expected padding at most half of kernel_size "
                         f"{(kh, kw)}, got {(ph, pw)}")
    N, C, H, Wd = X.shape
    if kh > H + 2 * ph or kw > Wd + 2 * pw:
        raise ValueError(f"pool2d_naive: expected a kernel_size no larger than the padded "
                         f"input {(H + 2 * ph, Wd + 2 * pw)}, got {(kh, kw)}")
    xp = get_array_module(X)
    fill = -xp.inf if mode == "max" else 0
    Xp = xp.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    OH = (H + 2 * ph - kh) // sh + 1
    OW = (Wd + 2 * pw - kw) // sw + 1
    Y = xp.zeros((N, C, OH, OW), dtype=X.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = Xp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    if mode == "max":
                        Y[n, c, i, j] = window.max()
                    else:
                        Y[n, c, i, j] = window.sum() / (kh * kw)
    return Y
