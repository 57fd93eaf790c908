"""Backprop exercises that check themselves (cs231n's "write it, then gradient-check it").

Six backwards to write: sigmoid, average and max pooling, convolution, batch norm in
training mode, and a ResNet block from its layers' backwards. Start from the stubs:

    python -m scratchnet.backprop_exercises --template my_answers.py   # writes the stubs
    python -m scratchnet.backprop_exercises my_answers.py              # checks what you wrote

or at the REPL, ``print(check("sigmoid", my_sigmoid_backward))``. Each stub takes what
its twin in :mod:`scratchnet.teach` takes (the cache of teach's forward; the block for
:func:`residual_backward`) and returns what the twin returns. The checker runs teach's
forward on small float64 inputs on the active device, and compares every gradient the
attempt returns with central differences and with the readable backward (the block's
own for Residual). A wrong gradient is named, with its worst entries, a picture of the
error for images, and a hint when it equals one of the typical mistakes, each of which
the checker computes too: a transposed product, a missing sum over the batch, the
max-pool tie, batch norm's missing mean terms, ...
"""
import argparse
import importlib.util
import inspect
import pathlib
import sys
import traceback

import numpy as np

from . import backend, teach
from .gradcheck import numerical_gradient
from .io import atomic_write_text
from .models.resnet import Residual
from .ops.im2col import pair


def sigmoid_backward(gy, cache):
    """dL/dx of y = sigmoid(x) = 1 / (1 + exp(-x)), entry by entry.

    gy: dL/dy, any shape. cache: what teach.sigmoid_forward keeps, y itself (not x).
    Return gx, shaped as x. Derive dy/dx from the formula of y, then write it with y
    alone: look for 1 / (1 + exp(-x)) in your derivative.
    """
    raise NotImplementedError("write me: sigmoid_backward(gy, cache) -> gx")


def avg_pool2d_backward(gy, cache):
    """dL/dx of average pooling,

        y[n, c, p, q] = 1/(kh kw) sum_{i, j} x_pad[n, c, p*sh + i, q*sw + j].

    gy: dL/dy (N, C, oh, ow). cache = (x_shape, kh, kw, stride, padding), as
    teach.avg_pool2d_forward keeps it (stride and padding: an int or an (h, w) pair; the
    padding is zeros and counts in the kh*kw). Return gx of shape x_shape.
    Derive dy[n, c, p, q] / dx_pad[n, c, p*sh + i, q*sw + j] for one window. Windows may
    overlap: a pixel read by several windows gets the sum of what each sends back, and
    teach.col2im(gcol, x_shape, stride, padding) does that sum for a gcol of
    shape (N, C, kh, kw, oh, ow), the padding dropped.
    """
    raise NotImplementedError("write me: avg_pool2d_backward(gy, cache) -> gx")


def max_pool2d_backward(gy, cache):
    """dL/dx of max pooling,

        y[n, c, p, q] = max_{i, j} x_pad[n, c, p*sh + i*dh, q*sw + j*dw].

    gy: dL/dy (N, C, oh, ow). cache = (x_shape, first, kh, kw, stride, padding, dilation),
    as teach.max_pool2d_forward keeps it: first (N, C, oh, ow) holds, for each window, the
    flat offset i*kw + j of its first maximum. (The checker's cache also carries the input
    as ``cache.x``, should you rather find the maxima yourself.) Return gx of shape x_shape.
    Which entries of a window move its maximum, and by how much? When entries tie for
    the maximum, PyTorch's rule gives the whole gradient to the first of them. Windows may
    overlap: teach.col2im(gcol, x_shape, stride, padding, dilation) sums a gcol of shape
    (N, C, kh, kw, oh, ow) back into the pixels.
    """
    raise NotImplementedError("write me: max_pool2d_backward(gy, cache) -> gx")


def conv2d_backward(gy, cache):
    """dL/dx, dL/dW, dL/db of the convolution (a cross-correlation)

        y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, p*sh + i*dh, q*sw + j*dw],

    which teach.conv2d_forward computes as one product, y2 = col2 @ W2.T + b, with col2
    (N*oh*ow, C*kh*kw) one row per output pixel (its window) and W2 = W as (O, C*kh*kw).

    gy: dL/dy (N, O, oh, ow). cache = (x_shape, col2, W, has_b, stride, padding, dilation).
    Return (gx, gW, gb), shaped as x, W and b (gb None when has_b is False).
    Derive the gradients of col2, W2 and b from y2 = col2 @ W2.T + b (each gradient has
    the shape of its variable: let the shapes tell you which product), with gy2 = gy as
    (N*oh*ow, O) in col2's row order. Then gcol2 -> gx: col2 is col (N, C, kh, kw, oh, ow)
    transposed to (N, oh, ow, C, kh, kw) and flattened, and teach.col2im(gcol, x_shape,
    stride, padding, dilation) sums each window's entries back into their pixels.
    """
    raise NotImplementedError("write me: conv2d_backward(gy, cache) -> (gx, gW, gb)")


def batch_norm_train_backward(gy, cache):
    """dL/dx, dL/dgamma, dL/dbeta of batch norm in training mode:

        mu = mean(x),  var = mean((x - mu)^2),  std = sqrt(var + eps),
        xhat = (x - mu) / std,  y = gamma xhat + beta,

    the means over the m values of each channel (m = N*H*W for x (N, C, H, W), N for
    x (N, C)). gy: dL/dy, shaped as x. cache = (xhat, std, gamma, mu, var), as
    teach.batch_norm_train_forward keeps it: xhat shaped as x, std (1, C, 1, 1) (or
    (1, C)), gamma, mu and var (C,). Return (gx, ggamma, gbeta): gx shaped as x, the
    others (C,). mu and var depend on every x of the channel: derive dxhat_k / dx_l for
    k != l too, not only for k = l.
    """
    raise NotImplementedError("write me: batch_norm_train_backward(gy, cache) -> "
                              "(gx, ggamma, gbeta)")


def residual_backward(block, gy):
    """dL/dX of a ResNet block (scratchnet.models.Residual, d2l 8.6) from its layers':

        Y = relu2(bn2(conv2(relu1(bn1(conv1(X))))) + skip(X)),

    skip = block.conv3 (a 1x1 convolution) or the identity when block.conv3 is None.
    block: after its forward block(X), so each layer holds what its backward needs.
    ``layer.backward(g)`` takes dL/d(the layer's output) and returns dL/d(its input),
    adding its parameters' gradients into their ``.grad`` as it goes; each layer's
    backward may run once per forward. gy: dL/dY. Return dL/dX. Where is X used twice,
    and what does the chain rule do there?
    """
    raise NotImplementedError("write me: residual_backward(block, gy) -> gx")


STUBS = (sigmoid_backward, avg_pool2d_backward, max_pool2d_backward, conv2d_backward,
         batch_norm_train_backward, residual_backward)

# An attempt passes when every gradient is within these of the central differences (eps
# 1e-6, float64) and of the readable backward, relative to the gradient's largest entry;
# below FLOOR (a gradient that is zero in truth) the comparison turns absolute.
FD_RTOL = 1e-6
REF_RTOL = 1e-9
FLOOR = 1e-2
EPS = 1e-6
# The Residual blocks have many parameters: finite differences on a sample of entries.
SAMPLES = 8


class _Exercise:
    def __init__(self, name, function, grads, reference, ref_name, cases):
        self.name, self.function, self.grads = name, function, grads
        self.reference, self.ref_name, self.cases = reference, ref_name, cases


class _Case:
    """One input an attempt is checked on. ``call(fn)`` runs a fresh forward, calls fn
    and gives (what fn returned, the gradients it filled elsewhere, named ``filled``);
    ``numeric()`` the central differences, per gradient (flat indices, values), or None
    where they do not exist (a tie); ``variants`` the typical wrong answers, (gradient
    name, array or None, hint)."""

    def __init__(self, label, call, numeric=None, variants=(), filled=()):
        self.label, self.call, self.numeric = label, call, numeric
        self.variants, self.filled = variants, filled


class Result:
    """What :func:`check` found: ``ok`` (also its truth value), ``status`` ("ok", "wrong",
    "not written", "raised") and the report, which ``str()`` and ``print`` give."""

    def __init__(self, exercise, status, text):
        self.exercise, self.status, self.text = exercise, status, text

    @property
    def ok(self):
        return self.status == "ok"

    def __bool__(self):
        return self.ok

    def __str__(self):
        return self.text

    __repr__ = __str__


class Report(list):
    """The :class:`Result` of each exercise :func:`check_all` found; ``ok`` when each is
    right, ``str()`` one after the other and a count."""

    @property
    def ok(self):
        return bool(self) and all(r.ok for r in self)

    def __str__(self):
        count = {s: sum(r.status == s for r in self) for s in ("ok", "wrong", "raised",
                                                               "not written")}
        tail = (f"{count['ok']} of {len(self)} right, {count['wrong']} wrong, "
                f"{count['raised']} raised an error, {count['not written']} not written yet")
        return "\n".join([r.text for r in self] + [tail])


def _host(a):
    return np.asarray(backend.to_numpy(a), dtype=np.float64)


def _distinct(xp, shape, scale=1.0, seed=0):
    """Shuffled, well-separated values: no max-pool ties, nothing near a ReLU kink."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n // 2 + 0.5) * (scale * 4.0 / n)
    return xp.asarray(np.random.default_rng(seed).permutation(v).reshape(shape))


def _normal(xp, shape, seed):
    return xp.asarray(np.random.default_rng((seed, 27)).standard_normal(shape))


def _numeric_of(forward, inputs, gy, samples=None, seed=0):
    """Central differences of sum(forward() * gy) for each array of ``inputs`` (perturbed
    in place), on every entry or on ``samples`` random ones: [(flat indices, values)]."""
    def loss():
        return float((forward() * gy).sum())

    rs, out = np.random.default_rng(seed), []
    for a in inputs:
        idx = np.arange(a.size) if samples is None or a.size <= samples else \
            np.sort(rs.choice(a.size, samples, replace=False))
        out.append((idx, numerical_gradient(loss, a, EPS, [int(i) for i in idx])))
    return out


def _overwrite_col2im(col, x_shape, stride=1, padding=0, dilation=1):
    """teach.col2im with ``=`` in place of ``+=``: where windows overlap the last one
    wins (the overlap mistake)."""
    xp = backend.get_array_module(col)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, C, kh, kw, oh, ow = col.shape
    H, W = x_shape[2:]
    g_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            g_pad[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw] = col[:, :, i, j]
    return g_pad[:, :, ph:ph + H, pw:pw + W]


OVERLAP = ("where windows overlap, a pixel got only the last window's share: it must get "
           "the sum over every window that reads it (+= as in teach.col2im, not =)")


def _sigmoid_cases(xp):
    x = _distinct(xp, (2, 2, 3, 4), scale=3.0)
    gy = _normal(xp, x.shape, 1)
    y = teach.sigmoid_forward(x)[0]
    s = 1 / (1 + xp.exp(-y))
    variants = [
        ("gx", gy * s * (1 - s), "sigmoid written with x instead of y: the cache is y = "
         "sigmoid(x) itself, and this is sigmoid(y) (1 - sigmoid(y)), the sigmoid taken a "
         "second time. Write dy/dx with y"),
        ("gx", y * (1 - y), "this is dy/dx alone: multiply by gy (the chain rule)"),
        ("gx", gy * (1 - y * y), "this is tanh's derivative, 1 - y^2, not sigmoid's")]
    return [_Case(f"x {x.shape} of distinct values in [-6, 6]",
                  lambda fn: (fn(gy.copy(), teach.sigmoid_forward(x.copy())[1]), ()),
                  lambda: _numeric_of(lambda: teach.sigmoid_forward(x)[0], [x], gy),
                  variants)]


def _avg_pool_cases(xp):
    x, k, stride, padding = _normal(xp, (2, 2, 5, 6), 0), 3, 2, 1
    y, cache = teach.avg_pool2d_forward(x, k, stride, padding)
    gy = _normal(xp, y.shape, 1)
    right = teach.avg_pool2d_backward(gy, cache)
    gcol = xp.broadcast_to(gy[:, :, None, None] / (k * k), y.shape[:2] + (k, k) + y.shape[2:])
    variants = [
        ("gx", right * (k * k), f"avg-pool not dividing by the window size: gx is kh*kw = "
         f"{k * k} times too large; each entry moves its window's mean by 1/(kh kw)"),
        ("gx", _overwrite_col2im(gcol, x.shape, stride, padding), OVERLAP)]
    return [_Case(f"x {x.shape}, kernel {k}, stride {stride}, padding {padding} "
                  "(overlapping windows)",
                  lambda fn: (fn(gy.copy(), teach.avg_pool2d_forward(x.copy(), k, stride,
                                                                     padding)[1]), ()),
                  lambda: _numeric_of(lambda: teach.avg_pool2d_forward(x, k, stride,
                                                                       padding)[0], [x], gy),
                  variants)]


class _MaxPoolCache(tuple):
    """teach.max_pool2d_forward's cache, which also carries the input as ``x``."""


def _max_pool_call(x, gy, args):
    def call(fn):
        cache = _MaxPoolCache(teach.max_pool2d_forward(x, *args)[1])
        cache.x = x.copy()
        return fn(gy.copy(), cache), ()
    return call


def _max_pool_variants(xp, x, gy, k, stride, padding):
    """The tie (every tied maximum, or a split), the offset unravelled the wrong way, the
    overlap, and average pooling's gradient."""
    y, (x_shape, first, *_) = teach.max_pool2d_forward(x, k, stride, padding)
    col = teach.im2col(x, k, k, stride, padding, pad_value=-xp.inf)
    N, C, _, _, oh, ow = col.shape
    hit = col == y[:, :, None, None]  # (N, C, kh, kw, oh, ow): True at every maximum
    g = gy[:, :, None, None]
    swapped = (first % k)[:, :, None] * k + (first // k)[:, :, None]
    onehot = (first[:, :, None] == xp.arange(k * k).reshape(1, 1, k * k, 1, 1))
    wrong_way = (swapped == xp.arange(k * k).reshape(1, 1, k * k, 1, 1))
    shape = (N, C, k, k, oh, ow)
    return [
        ("gx", teach.col2im(hit * g, x_shape, stride, padding), "the max-pool tie: every "
         "maximum of a window got gy where several tie; PyTorch's rule gives it to the "
         "first maximum only (cache's first)"),
        ("gx", teach.col2im(hit * g / hit.sum(axis=(2, 3), keepdims=True), x_shape, stride,
                            padding), "the max-pool tie: gy was split among the tied maxima "
         "of a window; PyTorch's rule gives all of it to the first maximum (cache's first)"),
        ("gx", teach.col2im((wrong_way * gy[:, :, None]).reshape(shape), x_shape, stride,
                            padding), "the window offset is unravelled the wrong way: "
         "first = i*kw + j, so i = first // kw and j = first % kw"),
        ("gx", _overwrite_col2im((onehot * gy[:, :, None]).reshape(shape), x_shape, stride,
                                 padding), OVERLAP),
        ("gx", teach.col2im(xp.broadcast_to(g / (k * k), shape), x_shape, stride, padding),
         "this is average pooling's gradient: only the maximum of a window moves it"),
        ("gx", teach.col2im(xp.broadcast_to(g, shape), x_shape, stride, padding),
         "gy went to every entry of the window: only the maximum moves the output")]


def _max_pool_cases(xp):
    x, k, stride, padding = _distinct(xp, (2, 2, 5, 6)), 3, 2, 1
    gy = _normal(xp, teach.max_pool2d_forward(x, k, stride, padding)[0].shape, 1)
    # Small integers: many windows whose maximum is tied.
    ties = xp.asarray(np.random.default_rng(5).integers(0, 3, (1, 2, 4, 4)).astype(np.float64))
    gy_ties = _normal(xp, (1, 2, 2, 2), 2)
    return [_Case(f"x {x.shape} of distinct values, kernel {k}, stride {stride}, padding "
                  f"{padding} (overlapping windows)",
                  _max_pool_call(x, gy, (k, stride, padding)),
                  lambda: _numeric_of(lambda: teach.max_pool2d_forward(x, k, stride,
                                                                       padding)[0], [x], gy),
                  _max_pool_variants(xp, x, gy, k, stride, padding)),
            _Case(f"x {ties.shape} with tied maxima, kernel 2 (against "
                  "teach.max_pool2d_backward only: finite differences are undefined at a tie)",
                  _max_pool_call(ties, gy_ties, (2,)), None,
                  _max_pool_variants(xp, ties, gy_ties, 2, 2, 0))]


def _conv_cases(xp):
    x, W, b = _normal(xp, (2, 2, 4, 5), 0), _normal(xp, (3, 2, 3, 2), 1), _normal(xp, (3,), 2)
    stride, padding = 1, 1
    y, cache = teach.conv2d_forward(x, W, b, stride, padding)
    gy, col2, (O, C, kh, kw) = _normal(xp, y.shape, 3), cache[1], W.shape
    N, _, oh, ow = gy.shape
    gy2 = gy.transpose(0, 2, 3, 1).reshape(N * oh * ow, O)
    gx, gW, gb = teach.conv2d_backward(gy, cache)
    gcol = (gy2 @ W.reshape(O, -1)).reshape(N, oh, ow, C, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    transposed = ("a transposed product: col2.T @ gy2 is gW2's transpose, (C*kh*kw, O) = "
                  f"{(col2.shape[1], O)}, not gW2 (O, C*kh*kw); reshaped to W's shape its "
                  "entries land in the wrong places. Let the shapes pick the product")
    batch = ("a missing sum over the batch: b is added at every pixel of every example, so "
             "gb[o] sums gy[n, o, p, q] over n, p and q")
    variants = [
        ("gW", (col2.T @ gy2).reshape(W.shape), transposed),
        ("gW", col2.T @ gy2, transposed),
        ("gW", gW.reshape(O, -1), "gW is the matrix gW2 (O, C*kh*kw): reshape it to W's shape"),
        ("gb", gy[0].sum(axis=(1, 2)), batch + " (this is example 0's alone)"),
        ("gb", gy.sum(axis=(2, 3)), batch + " (this has one row per example)"),
        ("gb", gb / N, f"gb is the mean over the batch, N = {N} times too small: "
         "b's gradient is a sum"),
        ("gb", gy.sum(axis=0), "summed over the batch but not over the pixels (p, q)"),
        ("gb", gy2, "gb is gy2 itself: sum it over its rows"),
        ("gx", _overwrite_col2im(gcol, x.shape, stride, padding), OVERLAP)]
    return [_Case(f"x {x.shape}, W {W.shape}, b {b.shape}, stride {stride}, padding "
                  f"{padding}",
                  lambda fn: (fn(gy.copy(), teach.conv2d_forward(
                      x.copy(), W.copy(), b.copy(), stride, padding)[1]), ()),
                  lambda: _numeric_of(lambda: teach.conv2d_forward(x, W, b, stride,
                                                                   padding)[0], [x, W, b], gy),
                  variants)]


def _bn_case(xp, shape, seed):
    C, rs = shape[1], np.random.default_rng(seed)
    per_channel = (1, C) + (1,) * (len(shape) - 2)
    x = xp.asarray(rs.standard_normal(shape) * rs.uniform(0.5, 3, per_channel)
                   + rs.standard_normal(per_channel))
    gamma, beta = xp.asarray(rs.uniform(0.5, 2, C)), xp.asarray(rs.standard_normal(C))
    gy = _normal(xp, shape, seed + 1)
    y, cache = teach.batch_norm_train_forward(x, gamma, beta)
    gx, ggamma, gbeta = teach.batch_norm_train_backward(gy, cache)
    xhat, std = cache[:2]
    g = gamma.reshape(per_channel)
    m, axes = gy.size // C, (0,) + tuple(range(2, len(shape)))
    mu_term, var_term = gbeta.reshape(per_channel), xhat * ggamma.reshape(per_channel)
    variants = [
        ("gx", g / std * gy, "BN's missing mean terms: gx is gamma / std * gy with nothing "
         "taken away, as if mu and var were constants. They are means over the channel, so "
         "moving one x moves every xhat of it: that adds a term from mu and one from var"),
        ("gx", g / (m * std) * (m * gy - var_term), "the term from mu, -sum(gy) over the "
         "channel (times gamma / (m std)), is missing"),
        ("gx", g / (m * std) * (m * gy - mu_term), "the term from var, -xhat sum(gy xhat) "
         "over the channel (times gamma / (m std)), is missing"),
        ("gx", gx / g, "gx misses the factor gamma"),
        ("ggamma", gbeta, "ggamma is sum(gy): gamma multiplies xhat, so sum gy * xhat"),
        ("ggamma", (gy * xhat).sum(axis=0), "sum over every axis but the channels, "
         f"{axes}, not over the batch alone"),
        ("gbeta", gy.sum(axis=0), f"sum over every axis but the channels, {axes}, not over "
         "the batch alone")]
    if len(shape) == 4:
        n = shape[0]
        variants.append(("gx", g / (n * std) * (n * gy - mu_term - var_term),
                         f"m is the number of values per channel, N*H*W = {m}, not N = {n}"))

    def call(fn):
        return fn(gy.copy(), teach.batch_norm_train_forward(x.copy(), gamma.copy(),
                                                            beta)[1]), ()

    return _Case(f"x {x.shape}, gamma {gamma.shape}, beta {beta.shape}", call,
                 lambda: _numeric_of(lambda: teach.batch_norm_train_forward(x, gamma, beta)[0],
                                     [x, gamma, beta], gy), variants)


def _bn_cases(xp):
    return [_bn_case(xp, (4, 3, 2, 3), 4), _bn_case(xp, (5, 3), 6)]


def _block(device, X, channels, use_1x1conv, strides, seed=0):
    """A Residual block in float64 on ``device``, its lazy layers made by a first forward
    from a generator of its own (the caller's random state is left alone)."""
    saved = backend.rng()
    backend.set_rng(np.random.default_rng(seed))
    try:
        block = Residual(channels, use_1x1conv=use_1x1conv, strides=strides)
        block.to(device=device, dtype=np.float64)
        block(X)
    finally:
        backend.set_rng(saved)
    return block


def _residual_case(xp, device, channels, use_1x1conv, strides):
    X = _normal(xp, (2, 2, 4, 4), 0)
    args = (device, X, channels, use_1x1conv, strides)
    probe = _block(*args)
    gy = _normal(xp, probe(X).shape, 1)
    names = [name for name, _ in probe.named_parameters()]

    def call(fn):
        block = _block(*args)
        block(X.copy())
        gx = fn(block, gy.copy())
        return gx, tuple(p.grad_array for _, p in block.named_parameters())

    def run(way):
        """The typical wrong answers, through the block's own layers."""
        block = _block(*args)
        block(X)
        g = block.relu2.backward(gy) if way != "no relu2" else gy
        main = block.conv1.backward(block.bn1.backward(block.relu1.backward(
            block.conv2.backward(block.bn2.backward(g)))))
        if way == "no skip":
            return main
        g_skip = gy if way == "skip before relu2" else g
        return main + (block.conv3.backward(g_skip) if block.conv3 is not None else g_skip)

    def numeric():
        block = _block(*args)
        arrays = [X] + [p.array for _, p in block.named_parameters()]
        return _numeric_of(lambda: block(X), arrays, gy, SAMPLES)

    skip = ("a missing skip-path gradient: X feeds both paths, so dL/dX is the sum of what "
            "each sends back (the skip path sends " + ("conv3's backward of g" if use_1x1conv
                                                       else "g itself: it is the identity")
            + ")")
    variants = [("gx", run("no skip"), skip),
                ("gx", run("skip before relu2"), "the skip path got gy, not what relu2's "
                 "backward gives: the paths are added before relu2, so both get its gradient"),
                ("gx", run("no relu2"), "relu2's backward is missing: both paths get dL/dY "
                 "through relu2 first")]
    if use_1x1conv:
        variants += [(f"{n}.grad", None, skip + "; conv3.backward was never called")
                     for n in names if n.startswith("conv3.")]
    label = (f"Residual({channels}" + (", use_1x1conv=True, strides=2" if use_1x1conv
                                       else "") + f") on X {X.shape}")
    return _Case(label, call, numeric, variants, [f"{n}.grad" for n in names])


def _residual_cases(xp):
    device = "cpu" if xp is np else "gpu"
    return [_residual_case(xp, device, 2, False, 1), _residual_case(xp, device, 3, True, 2)]


EXERCISES = {ex.name: ex for ex in [
    _Exercise("sigmoid", "sigmoid_backward", ("gx",), teach.sigmoid_backward,
              "teach.sigmoid_backward", _sigmoid_cases),
    _Exercise("avg_pool2d", "avg_pool2d_backward", ("gx",), teach.avg_pool2d_backward,
              "teach.avg_pool2d_backward", _avg_pool_cases),
    _Exercise("max_pool2d", "max_pool2d_backward", ("gx",), teach.max_pool2d_backward,
              "teach.max_pool2d_backward", _max_pool_cases),
    _Exercise("conv2d", "conv2d_backward", ("gx", "gW", "gb"), teach.conv2d_backward,
              "teach.conv2d_backward", _conv_cases),
    _Exercise("batch_norm", "batch_norm_train_backward", ("gx", "ggamma", "gbeta"),
              teach.batch_norm_train_backward, "teach.batch_norm_train_backward", _bn_cases),
    _Exercise("residual", "residual_backward", ("gx",), Residual.backward, "Residual.backward",
              _residual_cases)]}


def _exercise(name):
    for ex in EXERCISES.values():
        if name in (ex.name, ex.function):
            return ex
    known = ", ".join(f"{e.name!r}" for e in EXERCISES.values())
    raise ValueError(f"check: no exercise {name!r}; the exercises are {known} (or their "
                     "functions' names, e.g. 'sigmoid_backward')")


def _as_tuple(out, ex):
    """What the attempt returned as a tuple of len(ex.grads), or a one-line complaint."""
    names = ex.grads
    want = f"one array, {names[0]}" if len(names) == 1 else f"({', '.join(names)})"
    if len(names) == 1:
        if isinstance(out, (tuple, list)):
            return None, f"returned a {type(out).__name__} of {len(out)}; expected {want}"
        return (out,), None
    if not isinstance(out, (tuple, list)):
        return None, f"returned a {type(out).__name__}; expected {len(names)} values, {want}"
    if len(out) != len(names):
        return None, f"returned {len(out)} values; expected {len(names)}, {want}"
    return tuple(out), None


def _err(got, want):
    """max|got - want|, and that relative to max|want| (absolute under FLOOR)."""
    diff = float(np.abs(got - want).max(initial=0.0))
    return diff, diff / max(float(np.abs(want).max(initial=0.0)), FLOOR)


def _matches(got, candidate):
    return candidate.shape == got.shape and _err(got, candidate)[1] <= 1e-8


def _shape_hint(got, want):
    """What a wrong shape suggests, when no typical mistake matched."""
    if got.shape == want.shape[::-1]:
        return "its shape is the transpose of the right one"
    extra = got.ndim - want.ndim
    for start in range(extra + 1 if extra > 0 else 0):
        if got.shape[start:start + want.ndim] == want.shape:
            axes = tuple(range(start)) + tuple(range(start + want.ndim, got.ndim))
            return f"it has the extra axes {axes}: a sum over them is missing"
    if got.size == want.size:
        return "it has the right number of entries: reshape it (and mind the order of axes)"
    if got.ndim == want.ndim == 4 and all(g > w for g, w in zip(got.shape[2:], want.shape[2:])):
        return "it is larger than x: drop the padding"
    return None


def _value_hint(name, got, want, others, names):
    """What wrong values suggest, when no typical mistake matched: another gradient, all
    zeros, a constant factor."""
    for other, (value, _) in others.items():
        if other != name and value is not None and _matches(got, value):
            return f"it equals {other}: return them in the order ({', '.join(names)})"
    if not got.any():
        return "it is all zeros"
    c = float((got * want).sum() / max(float((want * want).sum()), 1e-300))
    if _matches(got, c * want):
        return "it has the wrong sign" if abs(c + 1) < 1e-6 else \
            f"it is {c:.4g} times the right gradient"
    return None


def _picture(name, err, tol):
    """|err| over the last two axes of its worst slice [n, c], in characters."""
    n, c = np.unravel_index(int(err.max(axis=(2, 3)).argmax()), err.shape[:2])
    top = float(err.max())
    lines = [f"    |error| of {name}[{n}, {c}], the worst slice ('.' right, '-' under 1/3 of "
             "the largest error, '+' under 2/3, '#' above):"]
    for row in err[n, c]:
        lines.append("      " + " ".join(
            "." if e <= tol else "-" if e < top / 3 else "+" if e < 2 * top / 3 else "#"
            for e in row))
    return lines


def _worst(g, w, tol, k=4):
    """The k entries farthest from right, as lines 'index: expected, got'."""
    err = np.abs(g - w).reshape(-1)
    lines = ["    worst entries, index: expected, got"]
    for flat in np.argsort(-err, kind="stable")[:k]:
        if err[flat] <= tol:
            break
        index = [int(i) for i in np.unravel_index(flat, g.shape)]
        lines.append(f"      {index}: {w.reshape(-1)[flat]:.4g}, {g.reshape(-1)[flat]:.4g}")
    return lines


def _compare(ex, name, got, want, numeric, case, others, names, xp):
    """One gradient: None when right, else the lines that say what is wrong. ``others``
    maps each gradient's name to (its right value, the attempt's), on the host."""
    if got is None or want is None:
        if got is None and want is None:
            return None
        if want is None:
            return [f"  {name}: expected None (the forward had no bias), got "
                    f"{type(got).__name__}"]
        hint = next((h for n, v, h in case.variants if n == name and v is None), None)
        return [f"  {name}: None; expected an array of shape {tuple(want.shape)}"] + \
            ([f"    hint: {hint}"] if hint else [])
    if not isinstance(got, xp.ndarray):
        if xp is not np and isinstance(got, np.ndarray):
            return [f"  {name}: a numpy array, but the inputs are on the GPU (cupy): make it "
                    "with xp = get_array_module(gy)"]
        return [f"  {name}: a {type(got).__name__}; expected an array of shape "
                f"{tuple(want.shape)}"]
    if got.dtype != want.dtype:
        return [f"  {name}: dtype {got.dtype}; expected {want.dtype}, the inputs' dtype"]
    g, w = _host(got), _host(want)
    hint = next((f"it and {n} are swapped: return them in the order ({', '.join(names)})"
                 for n, (right, attempt) in others.items() if n != name and right is not None
                 and attempt is not None and _matches(g, right) and _matches(attempt, w)),
                None)
    hint = hint or next((h for n, v, h in case.variants if n == name and v is not None
                         and _matches(g, _host(v)) and not _matches(w, _host(v))), None)
    if g.shape != w.shape:
        hint = hint or _shape_hint(g, w)
        return [f"  {name}: wrong shape {g.shape}; expected {w.shape}"] + \
            ([f"    hint: {hint}"] if hint else [])
    diff, rel_ref = _err(g, w)
    rel_fd = None if numeric is None else _err(g.reshape(-1)[numeric[0]], numeric[1])[1]
    if rel_ref <= REF_RTOL and (rel_fd is None or rel_fd <= FD_RTOL):
        return None
    against = f"relative error {rel_ref:.4g} against {ex.ref_name}"
    if rel_fd is not None:
        sampled = f" on {numeric[0].size} sampled entries" if numeric[0].size < g.size else ""
        against += f", {rel_fd:.4g} against finite differences{sampled}"
    tol = REF_RTOL * max(float(np.abs(w).max(initial=0.0)), FLOOR)
    lines = [f"  {name}: wrong values, off by up to {diff:.4g} ({against})"] + \
        _worst(g, w, tol)
    if g.ndim == 4 and g.shape[2] * g.shape[3] > 1:
        lines += _picture(name, np.abs(g - w), tol)
    hint = hint or _value_hint(name, g, w, others, names)
    return lines + ([f"    hint: {hint}"] if hint else [])


def _check_case(ex, k, case, fn, xp, device):
    """None when fn is right on the case, else the lines that say what is wrong."""
    raw, filled = case.call(fn)
    got, complaint = _as_tuple(raw, ex)
    if complaint:
        return [f"  {ex.function} {complaint}"]
    want_raw, want_filled = case.call(ex.reference)
    want = _as_tuple(want_raw, ex)[0] + want_filled
    got += filled
    names = ex.grads + tuple(case.filled)
    key = (ex.name, k, device)
    if case.numeric is not None and key not in _NUMERIC:
        _NUMERIC[key] = case.numeric()
    numeric = _NUMERIC.get(key, [None] * len(names))
    others = {n: tuple(None if not isinstance(a, xp.ndarray) else _host(a) for a in (w, g))
              for n, w, g in zip(names, want, got)}
    lines, right = [], []
    for n, g, w, fd in zip(names, got, want, numeric):
        wrong = _compare(ex, n, g, w, fd, case, others, names, xp)
        lines += wrong or []
        right += [] if wrong else [n]
    if not lines:
        return None
    return lines + ([f"  right: {', '.join(right)}"] if right else [])


# Finite differences of the forwards, the same for every attempt: computed once per
# exercise, case and device.
_NUMERIC = {}


def check(exercise, fn=None, device=None):
    """Check ``fn``, an attempt at ``exercise``'s backward, on the active device (or
    ``device``); returns a :class:`Result`, which prints what is right or wrong.

    ``exercise`` is a name ("sigmoid", "avg_pool2d", "max_pool2d", "conv2d",
    "batch_norm", "residual") or a stub's name ("sigmoid_backward"); ``check(fn)`` takes
    it from ``fn.__name__``. An error inside fn (NotImplementedError from a stub) is
    raised as it is.
    """
    if fn is None and callable(exercise):
        exercise, fn = exercise.__name__, exercise
    ex = _exercise(exercise)
    if not callable(fn):
        raise TypeError(f"check: expected a function for {ex.name!r}, got {type(fn).__name__}")
    device = backend.get_device() if device is None else device
    xp = backend.device_module(device)
    cases = ex.cases(xp)
    for k, case in enumerate(cases):
        wrong = _check_case(ex, k, case, fn, xp, device)
        if wrong:
            return Result(ex.name, "wrong", "\n".join(
                [f"{ex.function}: WRONG on {case.label}"] + wrong))
    grads = ", ".join(ex.grads[:-1]) + " and " + ex.grads[-1] if len(ex.grads) > 1 else \
        ex.grads[0] + (" and every parameter's .grad" if cases[0].filled else "")
    on = "; and on ".join(case.label for case in cases)
    verb = "matches" if grads == "gx" else "match"
    return Result(ex.name, "ok", f"{ex.function}: ok. {grads} {verb} finite differences "
                  f"(relative error under {FD_RTOL:.0e}) and {ex.ref_name} (under "
                  f"{REF_RTOL:.0e}) on {on}")


def check_all(namespace, device=None):
    """Check every exercise function ``namespace`` defines (a module, a dict such as
    ``globals()``, or any object with attributes): a :class:`Report`. A stub that still
    raises NotImplementedError counts as not written yet; any other error is reported
    with its traceback."""
    get = namespace.get if isinstance(namespace, dict) else \
        (lambda n: getattr(namespace, n, None))
    report = Report()
    for ex in EXERCISES.values():
        fn = get(ex.function)
        if not callable(fn):
            continue
        try:
            report.append(check(ex.name, fn, device))
        except NotImplementedError as e:
            report.append(Result(ex.name, "not written", f"{ex.function}: not written yet "
                                 f"({e})"))
        except Exception:
            report.append(Result(ex.name, "raised", f"{ex.function}: raised an error\n"
                                 + traceback.format_exc().rstrip()))
    return report


TEMPLATE_HEAD = '''"""My answers to scratchnet's backprop exercises. Fill in each function, then
check them:

    python -m scratchnet.backprop_exercises {name}

Each docstring says what the function gets and returns, and what to derive; the checker
says which gradient is wrong, where and by how much.
"""
import numpy as np

from scratchnet import teach  # teach.col2im and teach.im2col: the helpers for windows
from scratchnet.backend import get_array_module  # xp = get_array_module(gy): numpy or cupy
'''


def template(name="my_answers.py"):
    """The text of a new answers file: the stubs, each with its docstring."""
    return TEMPLATE_HEAD.format(name=name) + "".join(
        "\n\n" + inspect.getsource(f) for f in STUBS)


def write_template(path):
    """Write :func:`template` to ``path`` (atomically); refuses to overwrite a file."""
    path = pathlib.Path(path)
    if path.exists():
        raise FileExistsError(f"write_template: {str(path)!r} exists already; choose a new "
                              "name (nothing was written, your file is as it was)")
    atomic_write_text(path, template(path.name))
    return path


def load_answers(path):
    """Import the Python file ``path`` as a module (by path, with importlib)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_answers: no file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"_answers_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    """The command: check an answers file, or write the stubs to a new one."""
    p = argparse.ArgumentParser(prog="python -m scratchnet.backprop_exercises",
                                description=__doc__.split("\n")[0])
    p.add_argument("answers", nargs="?", help="a .py file with your exercise functions")
    p.add_argument("--template", metavar="FILE", help="write the stubs to FILE (a new file)")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"],
                   help="where to check (default: cpu)")
    args = p.parse_args(argv)
    if (args.answers is None) == (args.template is None):
        p.error("give either an answers file to check or --template FILE")
    if args.template is not None:
        try:
            write_template(args.template)
        except (FileExistsError, OSError) as e:
            p.exit(2, f"{p.prog}: error: {e}\n")
        print(f"wrote {args.template}: fill in its functions, then run\n"
              f"  {p.prog} {args.template}")
        return 0
    try:
        module = load_answers(args.answers)
    except FileNotFoundError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    except Exception:
        print(f"{args.answers} did not import:\n{traceback.format_exc().rstrip()}")
        return 1
    report = check_all(module, args.device)
    if not report:
        print(f"{args.answers} defines none of the exercise functions: "
              + ", ".join(ex.function for ex in EXERCISES.values()))
        return 1
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
