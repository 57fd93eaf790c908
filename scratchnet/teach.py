"""Readable forward and backward of every layer, to read before the fast ops.

Each layer is a pair in cs231n's form: ``y, cache = <layer>_forward(...)`` keeps
what the backward needs, ``<layer>_backward(gy, cache)`` turns dL/dy into the
gradient of every input. Each function is straight-line array code with its
formula in the docstring, and works on numpy and cupy arrays alike. Shapes as
in PyTorch: x (N, C, H, W), W (O, C, kh, kw) for a convolution, (out, in) for a
linear layer. ``stride``, ``padding`` and ``dilation`` are an int or an (h, w)
pair: kernel offset (i, j) of the window of output pixel (p, q) reads
x_pad[p*sh + i*dh, q*sw + j*dw], x_pad being x with ``padding`` on each side.

The fast ops in ``scratchnet.ops`` compute the same numbers with chunks on all
cores, reused memory and other layouts; each names its readable version here (Tanh,
Dropout, Conv1d, MSELoss and AdaptiveAvgPool2d in their layer's docstring in
``scratchnet.nn``), and ``tests/test_teach.py`` holds the two equal (forward and every
gradient) and each of these equal to finite differences. Chapter 8's pairs at the end
(concatenation, the global average pooling head, NiN's 1x1 convolution, DenseNet's
transition layer) are held equal to what the models run in
``tests/test_teach_chapter8.py``. This module is not imported by ``scratchnet`` itself:
``from scratchnet import teach``.
"""
import numpy as np

from .backend import get_array_module
from .ops.im2col import pair


def im2col(x, kh, kw, stride=1, padding=0, dilation=1, pad_value=0.0):
    """Every window of x side by side: x (N, C, H, W) -> col (N, C, kh, kw, oh, ow),

        col[n, c, i, j, p, q] = x_pad[n, c, p*sh + i*dh, q*sw + j*dw],
        oh = (H + 2 ph - dh (kh - 1) - 1) // sh + 1, and ow alike.

    One slice copy per kernel offset (i, j): the slice holds the pixel that offset
    reads in every window at once.
    """
    xp = get_array_module(x)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, C, H, W = x.shape
    oh = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    col = xp.empty((N, C, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * oh, sh)  # p*sh + i*dh for p = 0 .. oh-1
            cols = slice(j * dw, j * dw + sw * ow, sw)
            col[:, :, i, j] = x_pad[:, :, rows, cols]
    return col


def col2im(col, x_shape, stride=1, padding=0, dilation=1):
    """The mirror of :func:`im2col`: col (N, C, kh, kw, oh, ow) -> (N, C, H, W),

        g_pad[n, c, p*sh + i*dh, q*sw + j*dw] += col[n, c, i, j, p, q].

    A pixel that several windows read gets the sum of their entries (``+=``, not
    ``=``); entries read from the padding are dropped with it.
    """
    xp = get_array_module(col)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, C, kh, kw, oh, ow = col.shape
    H, W = x_shape[2:]
    g_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * oh, sh)
            cols = slice(j * dw, j * dw + sw * ow, sw)
            g_pad[:, :, rows, cols] += col[:, :, i, j]
    return g_pad[:, :, ph:ph + H, pw:pw + W]


def conv2d_forward(x, W, b, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation, as deep learning calls convolution:

        y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, p*sh + i*dh, q*sw + j*dw]

    x (N, C, H, W), W (O, C, kh, kw), b (O,) or None -> y (N, O, oh, ow).
    With one row of col2 per output pixel and one column per weight, the sum over
    (c, i, j) for every pixel of the batch is one matrix product: y = col2 @ W2.T.

    ``groups`` = G: W is (O, C/G, kh, kw); the g-th O/G output channels are the
    above of the g-th C/G input channels only, stacked along the channels.
    """
    if groups != 1:
        xp = get_array_module(x)
        xs, Ws = _split(x, groups, axis=1), _split(W, groups, axis=0)
        bs = [None] * groups if b is None else _split(b, groups, axis=0)
        parts = [conv2d_forward(xg, Wg, bg, stride, padding, dilation)
                 for xg, Wg, bg in zip(xs, Ws, bs)]
        y = xp.concatenate([y for y, _ in parts], axis=1)
        return y, ("groups", [cache for _, cache in parts])
    O, C, kh, kw = W.shape
    col = im2col(x, kh, kw, stride, padding, dilation)  # (N, C, kh, kw, oh, ow)
    N, _, _, _, oh, ow = col.shape
    col2 = col.transpose(0, 4, 5, 1, 2, 3).reshape(N * oh * ow, C * kh * kw)
    W2 = W.reshape(O, C * kh * kw)
    y = col2 @ W2.T  # (N*oh*ow, O)
    if b is not None:
        y = y + b
    y = y.reshape(N, oh, ow, O).transpose(0, 3, 1, 2)
    return y, (x.shape, col2, W, b is not None, stride, padding, dilation)


def conv2d_backward(gy, cache):
    """The product's two gradients, then col2im:

        gb = sum_{n, p, q} gy,   gW2 = gy2.T @ col2,   gcol2 = gy2 @ W2,   gx = col2im(gcol)

    with gy2 = gy as (N*oh*ow, O), one row per output pixel like col2.
    Returns (gx, gW, gb); gb is None when the forward had no bias. Grouped: each
    group's gradients from its slice of gy, stacked as its forward stacked y.
    """
    if cache[0] == "groups":
        xp = get_array_module(gy)
        parts = [conv2d_backward(g, c) for g, c in
                 zip(_split(gy, len(cache[1]), axis=1), cache[1])]
        gx, gW, gb = ([p[i] for p in parts] for i in range(3))
        return (xp.concatenate(gx, axis=1), xp.concatenate(gW, axis=0),
                None if gb[0] is None else xp.concatenate(gb))
    x_shape, col2, W, has_b, stride, padding, dilation = cache
    O, C, kh, kw = W.shape
    N, _, oh, ow = gy.shape
    gy2 = gy.transpose(0, 2, 3, 1).reshape(N * oh * ow, O)
    gW = (gy2.T @ col2).reshape(O, C, kh, kw)
    gb = gy2.sum(axis=0) if has_b else None
    gcol2 = gy2 @ W.reshape(O, C * kh * kw)  # (N*oh*ow, C*kh*kw)
    gcol = gcol2.reshape(N, oh, ow, C, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    gx = col2im(gcol, x_shape, stride, padding, dilation)
    return gx, gW, gb


def _split(a, groups, axis):
    """``a`` cut into ``groups`` equal slices along ``axis`` (views)."""
    size = a.shape[axis] // groups
    index = [slice(None)] * a.ndim
    return [a[tuple(index[:axis] + [slice(g * size, (g + 1) * size)])] for g in range(groups)]


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1):
    """y[n, c, p, q] = max_{i, j} x_pad[n, c, p*sh + i*dh, q*sw + j*dw]

    x (N, C, H, W) -> y (N, C, oh, ow). The padding is -inf, so it never wins a
    window; stride defaults to kernel_size, as in PyTorch. The cache keeps which
    of the kh*kw entries is each window's first maximum inside the image (a window
    of -inf pixels ties with its -inf padding; PyTorch picks a pixel, and so does
    this). The fast op also follows PyTorch for NaN inputs; this one does not try.
    """
    xp = get_array_module(x)
    kh, kw = pair(kernel_size)
    stride = (kh, kw) if stride is None else stride
    col = im2col(x, kh, kw, stride, padding, dilation, pad_value=-xp.inf)
    N, C, _, _, oh, ow = col.shape
    col = col.reshape(N, C, kh * kw, oh, ow)
    y = col.max(axis=2)
    inside = im2col(xp.ones((1, 1) + x.shape[2:]), kh, kw, stride, padding, dilation,
                    pad_value=0).reshape(1, 1, kh * kw, oh, ow) > 0
    hit = (col == y[:, :, None]) | xp.isnan(col)
    first = (hit & inside).argmax(axis=2)  # argmax returns the first True
    return y, (x.shape, first, kh, kw, stride, padding, dilation)


def max_pool2d_backward(gy, cache):
    """Only the first maximum of a window moves its output, so it alone gets gy:

        gx_pad[n, c, p*sh + i*dh, q*sw + j*dw] += gy[n, c, p, q]   for (i, j) = that maximum.
    """
    xp = get_array_module(gy)
    x_shape, first, kh, kw, stride, padding, dilation = cache
    N, C, oh, ow = gy.shape
    # One-hot over each window's kh*kw entries: True at its first maximum.
    onehot = first[:, :, None] == xp.arange(kh * kw).reshape(1, 1, kh * kw, 1, 1)
    gcol = (onehot * gy[:, :, None]).reshape(N, C, kh, kw, oh, ow)
    return col2im(gcol, x_shape, stride, padding, dilation)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """y[n, c, p, q] = 1/(kh kw) sum_{i, j} x_pad[n, c, p*sh + i, q*sw + j]

    x (N, C, H, W) -> y (N, C, oh, ow). The padding is zeros and counts in the
    kh*kw (PyTorch's count_include_pad=True); stride defaults to kernel_size.
    """
    kh, kw = pair(kernel_size)
    stride = (kh, kw) if stride is None else stride
    col = im2col(x, kh, kw, stride, padding)  # (N, C, kh, kw, oh, ow)
    y = col.mean(axis=(2, 3))
    return y, (x.shape, kh, kw, stride, padding)


def avg_pool2d_backward(gy, cache):
    """Every entry of a window moves its mean by 1/(kh kw):

        gx_pad[n, c, p*sh + i, q*sw + j] += gy[n, c, p, q] / (kh kw)   for every (i, j).
    """
    xp = get_array_module(gy)
    x_shape, kh, kw, stride, padding = cache
    N, C, oh, ow = gy.shape
    gcol = xp.broadcast_to(gy[:, :, None, None] / (kh * kw), (N, C, kh, kw, oh, ow))
    return col2im(gcol, x_shape, stride, padding)


def conv1d_forward(x, W, b, stride=1, padding=0, dilation=1, groups=1):
    """The 1-D cross-correlation, x (N, C, L), W (O, C/G, k), b (O,) or None -> y (N, O, ol):

        y[n, o, p] = b[o] + sum_{c, j} W[o, c, j] x_pad[n, c, p*stride + j*dilation]

    This is conv2d_forward on images of height 1 (a kernel of height 1, no stride or
    padding along the height): the 2-D sum with i = 0 only. It reuses that code rather
    than repeating im2col in 1-D, as nn.Conv1d runs Conv2d on (N, C, 1, L).
    """
    y, cache = conv2d_forward(x[:, :, None, :], W[:, :, None, :], b, (1, stride),
                              (0, padding), (1, dilation), groups)
    return y[:, :, 0, :], cache


def conv1d_backward(gy, cache):
    """conv2d_backward on the same height-1 images, the height dropped again.
    Returns (gx, gW, gb); gb is None when the forward had no bias."""
    gx, gW, gb = conv2d_backward(gy[:, :, None, :], cache)
    return gx[:, :, 0, :], gW[:, :, 0, :], gb


def batch_norm_train_forward(x, gamma, beta, eps=1e-5):
    """Normalise each channel by the batch's own statistics, then scale and shift:

        mu = mean(x),  var = mean((x - mu)^2)  (biased),  std = sqrt(var + eps),
        xhat = (x - mu) / std,  y = gamma xhat + beta

    the means over the m = N*H*W values of a channel. x (N, C) or (N, C, H, W);
    gamma, beta (C,). The cache ends with mu and var (C,), which a layer folds
    into its running statistics (``nn.BatchNorm2d``).
    """
    axes = (0,) + tuple(range(2, x.ndim))  # every axis but the channels
    shape = (1, -1) + (1,) * (x.ndim - 2)  # a (C,) vector against x
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    std = (var + eps) ** 0.5
    xhat = (x - mu) / std
    y = gamma.reshape(shape) * xhat + beta.reshape(shape)
    return y, (xhat, std, gamma, mu.reshape(-1), var.reshape(-1))


def batch_norm_train_backward(gy, cache):
    """With sums over the m values of a channel:

        gbeta = sum gy,   ggamma = sum gy xhat,
        gx = gamma / (m std) (m gy - sum gy - xhat sum gy xhat)

    The two sums are there because mu and var depend on x too: moving one value
    moves every xhat of its channel. Returns (gx, ggamma, gbeta).
    """
    xhat, std, gamma = cache[:3]
    axes = (0,) + tuple(range(2, gy.ndim))
    shape = (1, -1) + (1,) * (gy.ndim - 2)
    m = gy.size // gy.shape[1]
    gbeta = gy.sum(axis=axes)
    ggamma = (gy * xhat).sum(axis=axes)
    gx = gamma.reshape(shape) / (m * std) * (
        m * gy - gbeta.reshape(shape) - xhat * ggamma.reshape(shape))
    return gx, ggamma, gbeta


def batch_norm_eval_forward(x, gamma, beta, running_mean, running_var, eps=1e-5):
    """The same normalisation with the running statistics, constants here:

        xhat = (x - running_mean) / sqrt(running_var + eps),  y = gamma xhat + beta

    so y is an affine function of x, channel by channel. Shapes as in training.
    """
    shape = (1, -1) + (1,) * (x.ndim - 2)
    std = (running_var.reshape(shape) + eps) ** 0.5
    xhat = (x - running_mean.reshape(shape)) / std
    y = gamma.reshape(shape) * xhat + beta.reshape(shape)
    return y, (xhat, std, gamma)


def batch_norm_eval_backward(gy, cache):
    """gx = gy gamma / std (no sums: the statistics do not depend on x),
    ggamma = sum gy xhat, gbeta = sum gy. Returns (gx, ggamma, gbeta).
    """
    xhat, std, gamma = cache
    axes = (0,) + tuple(range(2, gy.ndim))
    shape = (1, -1) + (1,) * (gy.ndim - 2)
    gx = gamma.reshape(shape) / std * gy
    return gx, (gy * xhat).sum(axis=axes), gy.sum(axis=axes)


def linear_forward(x, W, b):
    """y = x @ W.T + b, x (N, in), W (out, in) as PyTorch stores it, b (out,) or None."""
    y = x @ W.T
    if b is not None:
        y = y + b
    return y, (x, W, b is not None)


def linear_backward(gy, cache):
    """gx = gy @ W,  gW = gy.T @ x,  gb = sum_n gy (b is added to every row).

    Returns (gx, gW, gb); gb is None when the forward had no bias.
    """
    x, W, has_b = cache
    return gy @ W, gy.T @ x, (gy.sum(axis=0) if has_b else None)


def relu_forward(x):
    """y = max(x, 0). The cache is the mask x > 0."""
    return get_array_module(x).maximum(x, 0), x > 0


def relu_backward(gy, cache):
    """gx = gy where x > 0, else 0 (the derivative at 0 taken as 0, as in PyTorch)."""
    return gy * cache


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)). The cache is y itself: the derivative is made of it."""
    # exp(-x) is inf for x below about -709 (float64) and 0 for x above 745, giving
    # y = 0 and y = 1: the right answers, so neither is warned about.
    with np.errstate(over="ignore", under="ignore"):
        y = 1 / (1 + get_array_module(x).exp(-x))
    return y, y


def sigmoid_backward(gy, cache):
    """gx = gy y (1 - y), since dsigma/dx = sigma(x) (1 - sigma(x))."""
    y = cache
    return gy * y * (1 - y)


def tanh_forward(x):
    """y = tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x)). The cache is y, as for sigmoid."""
    y = get_array_module(x).tanh(x)
    return y, y


def tanh_backward(gy, cache):
    """gx = gy (1 - y^2), since dtanh/dx = 1 - tanh(x)^2."""
    y = cache
    return gy * (1 - y * y)


def dropout_forward(x, p, keep):
    """Inverted dropout, as PyTorch's in training: y = x keep / (1 - p),

    keep a boolean array of x's shape, True with probability 1 - p. The mask is an
    argument so the same draw can be replayed: nn.Dropout keeps x where u >= p for u
    uniform in [0, 1). Scaling the kept values by 1/(1 - p) keeps E[y] = x, so eval()
    is the identity with no rescaling; p = 1 drops everything (y = 0).
    """
    scale = 1.0 / (1.0 - p) if p < 1 else 0.0
    mask = keep.astype(x.dtype) * x.dtype.type(scale)  # 0 or 1/(1 - p)
    return x * mask, mask


def dropout_backward(gy, cache):
    """y is x times a constant mask, so gx = gy mask: 0 where dropped, gy/(1 - p) where kept."""
    return gy * cache


def mse_loss_forward(y, t):
    """nn.MSELoss's mean: L = 1/n sum (y - t)^2 over all n entries; y, t of one shape."""
    d = y - t
    return (d * d).mean(), d


def mse_loss_backward(gy, cache):
    """gy_y = gy 2 (y - t) / n: each entry of y is in one square of the mean; gy is 1.0
    when L is the loss. Returns the gradient for y; that for t is its negative."""
    d = cache
    return d * (2 * gy / d.size)


def softmax_cross_entropy_forward(logits, labels):
    """The mean over the batch of -log softmax(z)[label]:

        log p[n, k] = z[n, k] - log sum_j exp(z[n, j]),   L = -1/N sum_n log p[n, labels[n]]

    logits z (N, K), labels (N,) ints in [0, K) -> the scalar L. Each row is
    shifted by its maximum first: softmax does not change, and exp never overflows.
    """
    xp = get_array_module(logits)
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
    loss = -log_p[xp.arange(logits.shape[0]), labels].mean()
    return loss, (xp.exp(log_p), labels)


def softmax_cross_entropy_backward(gy, cache):
    """gz = gy (p - onehot(labels)) / N with p = softmax(z); gy is 1.0 when L is the loss.

    Raising z[n, k] by a little moves L by (p[n, k] - 1) / N times that for the
    label k = labels[n], and by p[n, k] / N times that for any other k.
    """
    p, labels = cache
    xp = get_array_module(p)
    N, K = p.shape
    onehot = labels[:, None] == xp.arange(K)
    return (p - onehot) * (gy / N)


def concat_forward(xs, axis=1):
    """Inputs side by side along ``axis`` (the channels of d2l 8.4's Inception and
    8.7's DenseBlock): with C_1, C_2, ... channels,

        y[:, :C_1] = x_1,  y[:, C_1:C_1 + C_2] = x_2, ...

    Every other axis must agree. The cache is each input's size along ``axis``.
    """
    xp = get_array_module(xs[0])
    return xp.concatenate(xs, axis=axis), ([x.shape[axis] for x in xs], axis)


def concat_backward(gy, cache):
    """The split: each input moved only its own slice of y, so its gradient is that
    slice of gy, gx_k = gy[:, start_k : start_k + C_k]. Returns the list of gx_k."""
    sizes, axis = cache
    grads, start = [], 0
    for size in sizes:
        index = [slice(None)] * gy.ndim  # every entry of the other axes ...
        index[axis] = slice(start, start + size)  # ... and input k's slice of this one
        grads.append(gy[tuple(index)])
        start += size
    return grads


def global_avg_pool_forward(x):
    """d2l's head AdaptiveAvgPool2d((1, 1)) + Flatten: each channel's mean over the image,

        y[n, c] = 1/(H W) sum_{i, j} x[n, c, i, j],   x (N, C, H, W) -> y (N, C).
    """
    return x.mean(axis=(2, 3)), x.shape


def global_avg_pool_backward(gy, cache):
    """Every pixel moves its channel's mean by 1/(H W): gx[n, c, i, j] = gy[n, c] / (H W)."""
    xp = get_array_module(gy)
    N, C, H, W = cache
    return xp.broadcast_to(gy[:, :, None, None] / (H * W), (N, C, H, W))


def adaptive_avg_pool2d_forward(x, output_size):
    """Mean over PyTorch's adaptive bins, x (N, C, H, W) -> y (N, C, oh, ow):

        y[n, c, p, q] = mean of x[n, c, h0:h1, w0:w1],
        h0 = floor(p H / oh), h1 = ceil((p + 1) H / oh), and w0, w1 alike.

    The bins cover the image; where oh does not divide H, neighbours share a row.
    """
    xp = get_array_module(x)
    oh, ow = pair(output_size)
    N, C, H, W = x.shape
    y = xp.empty((N, C, oh, ow), dtype=x.dtype)
    for p in range(oh):
        h0, h1 = p * H // oh, -(-(p + 1) * H // oh)  # -(-a // b) is ceil(a / b)
        for q in range(ow):
            w0, w1 = q * W // ow, -(-(q + 1) * W // ow)
            y[:, :, p, q] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y, x.shape


def adaptive_avg_pool2d_backward(gy, cache):
    """Each pixel of bin (p, q) moves its mean by 1 / (bin size):

        gx[n, c, h0:h1, w0:w1] += gy[n, c, p, q] / ((h1 - h0) (w1 - w0))

    (``+=``: a pixel in two bins gets both shares).
    """
    xp = get_array_module(gy)
    N, C, H, W = cache
    _, _, oh, ow = gy.shape
    gx = xp.zeros(cache, dtype=gy.dtype)
    for p in range(oh):
        h0, h1 = p * H // oh, -(-(p + 1) * H // oh)
        for q in range(ow):
            w0, w1 = q * W // ow, -(-(q + 1) * W // ow)
            gx[:, :, h0:h1, w0:w1] += gy[:, :, p, q, None, None] / ((h1 - h0) * (w1 - w0))
    return gx


def conv1x1_forward(x, W, b):
    """NiN's 1x1 convolution: the same linear layer applied at every pixel,

        y[n, o, p, q] = b[o] + sum_c W[o, c, 0, 0] x[n, c, p, q],

    so with one row per pixel (its C channels), x2 (N*H*W, C), it is
    linear_forward(x2, W as (O, C), b): conv2d_forward with a 1x1 kernel, no im2col.
    """
    N, C, H, Wd = x.shape
    x2 = x.transpose(0, 2, 3, 1).reshape(N * H * Wd, C)
    y2, cache = linear_forward(x2, W.reshape(W.shape[0], C), b)
    return y2.reshape(N, H, Wd, -1).transpose(0, 3, 1, 2), (x.shape, W.shape, cache)


def conv1x1_backward(gy, cache):
    """linear_backward on the same rows: gy2 = gy as (N*H*W, O), one row per pixel,
    gx2 = gy2 @ W2, gW2 = gy2.T @ x2, gb = sum of gy2's rows. Returns (gx, gW, gb)."""
    x_shape, W_shape, linear_cache = cache
    N, C, H, Wd = x_shape
    gy2 = gy.transpose(0, 2, 3, 1).reshape(N * H * Wd, W_shape[0])
    gx2, gW, gb = linear_backward(gy2, linear_cache)
    return gx2.reshape(N, H, Wd, C).transpose(0, 3, 1, 2), gW.reshape(W_shape), gb


def transition_forward(x, gamma, beta, W, b, eps=1e-5):
    """d2l 8.7's transition layer in training: BatchNorm (batch statistics), ReLU, a 1x1
    convolution (to fewer channels), then 2x2 average pooling with stride 2 (half the
    height and width): y = avgpool(conv1x1(relu(bn(x)))). Each step's cache is kept."""
    h, bn_cache = batch_norm_train_forward(x, gamma, beta, eps)
    h, relu_cache = relu_forward(h)
    h, conv_cache = conv1x1_forward(h, W, b)
    y, pool_cache = avg_pool2d_forward(h, 2, 2)
    return y, (bn_cache, relu_cache, conv_cache, pool_cache)


def transition_backward(gy, cache):
    """The four backwards in reverse order, each turning the gradient of its output into
    that of its input. Returns (gx, ggamma, gbeta, gW, gb)."""
    bn_cache, relu_cache, conv_cache, pool_cache = cache
    g = avg_pool2d_backward(gy, pool_cache)
    g, gW, gb = conv1x1_backward(g, conv_cache)
    g = relu_backward(g, relu_cache)
    gx, ggamma, gbeta = batch_norm_train_backward(g, bn_cache)
    return gx, ggamma, gbeta, gW, gb
