"""Convolution (cross-correlation, as in deep learning) through im2col.

For a chunk of images (the whole batch on the GPU):

Forward:  col = im2col(x) as a (C*kh*kw, m*oh*ow) matrix;  y = W2 @ col + b,
          with W2 = W.reshape(O, C*kh*kw), then (O, m, oh, ow) -> (m, O, oh, ow)
Backward: gy2 = gy as (O, m*oh*ow), then
          dL/dW, dL/db:  gW = gy2 @ col.T (summed over chunks);  gb = sum gy
          dL/dx:         gx = col2im(W2.T @ gy2), or, where :func:`flipped_input_grad`
                         says so, the correlation of the padded gy with the flipped
                         kernel (im2col of gy and one product)

Each is one BLAS product per chunk. The chunks run on all CPU cores
(``parallel_for``), each in one of two layouts, images second or images last
(:func:`use_images_last`); the arithmetic is the same, only the order of the
columns differs. In training the columns are kept from forward to backward
(kh*kw times the input: 25x for LeNet's 5x5 kernels), as Caffe and Chainer do:
building them again in backward would save that memory at the cost of a second
im2col every step. An evaluation forward keeps none (:func:`conv2d`'s ``keep``).

On the GPU the batch is one chunk, always in the images-last layout, and
dL/dx folds dL/dcol back with ``col2im_gather`` (three kernels) rather than one
strided addition per kernel offset: there every operation is a kernel launch.

Shapes: x (N, C, H, W), W (O, C, kh, kw), b (O,), y (N, O, oh, ow).

Grouped (``groups`` = G > 1, PyTorch's rule): W is (O, C/G, kh, kw) and output
channels g*O/G .. (g+1)*O/G see input channels g*C/G .. (g+1)*C/G only. The
columns are built as for G = 1; their C*kh*kw rows are G blocks of C/G*kh*kw,
so each product becomes one batched product over the groups,
(G, O/G, C/G*kh*kw) @ (G, C/G*kh*kw, cols), with no loop over the groups.
``pads`` is always the resolved (top, bottom, left, right); :func:`conv_pads`
turns PyTorch's ``padding`` argument (int, (h, w), "valid", "same") into it.

Pointwise (1x1, stride 1, no padding, one group) on the CPU: the columns would be x
itself, so there are none (:func:`pointwise`): y = W2 @ x per image, x kept as ``cols``.
"""
import numpy as np

from ..backend import get_array_module
from .im2col import (col2im_gather, col2im_into, conv_output_hw, im2col_into, images_first,
                     pad_channels_first, pair, spatial_slice)
from .parallel import add_in_order, parallel_for
from .workspace import reuse, scratch


def conv_pads(padding, kh, kw, dh=1, dw=1):
    """PyTorch's ``padding`` argument as (top, bottom, left, right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            # As PyTorch: an odd total is split with the extra row at the end.
            th, tw = dh * (kh - 1), dw * (kw - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"padding: expected an int, an (h, w) pair, 'valid' or 'same', "
                         f"got {padding!r}")
    ph, pw = pair(padding, "padding")
    return (ph, ph, pw, pw)


def use_images_last(c, kh, kw, o, xp=np):
    """Whether a layer's chunks take the images-last layout (see ``im2col``): on the
    CPU when the columns (C*kh*kw rows) outweigh the output (O rows) 8 times or
    more; always on the GPU, whose ``col2im_gather`` wants each column's kernel
    offsets next to its output pixels.

    Images last makes im2col's copies and col2im's additions run along rows of
    ow*N values, not ow, but the input, output and gradients must be transposed
    into and out of it, and those transposes grow with O: below about 8 O they
    cost more than the longer rows save (LeNet's conv1, the 1-channel first
    layers, ResNet's 1x1 shortcut).
    """
    return c * kh * kw >= 8 * o if xp is np else True


def conv2d(x, W, bias, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), saved=None,
           keep=True, groups=1):
    """Fast version of :func:`scratchnet.teach.conv2d_forward` (read that first).

    Returns y: (N, O, oh, ow) and ``cols``, the im2col columns backward needs.

    ``cols`` is one flat buffer: the columns of chunk (a, b) are its items
    ``a*per .. b*per`` (per = C*kh*kw*oh*ow, one image's worth), a contiguous
    (C, kh, kw, b - a, oh, ow) block, or (C, kh, kw, oh, ow, b - a) when
    :func:`use_images_last`. ``saved``: the ``cols`` of an earlier call, refilled
    when the size matches (a layer does this every step: fresh memory costs
    page faults, see ``workspace``); None means new memory. ``keep=False``
    (evaluation, where nothing reads them) keeps no columns: each chunk's columns
    go to scratch memory (on the GPU, to memory freed on return); ``cols`` is None.
    ``groups`` > 1: see :func:`_conv2d_grouped`. A :func:`pointwise` convolution builds
    no columns: its ``cols`` is x itself (None with ``keep=False``), ``saved`` unused.
    """
    if groups != 1:
        return _conv2d_grouped(x, W, bias, stride, pads, dilation, saved, keep, groups)
    if pointwise(x.shape, W.shape, stride, pads, groups, get_array_module(x)):
        return _conv2d_pointwise(x, W, bias), (x if keep else None)
    xp = get_array_module(x)
    o, c, kh, kw = W.shape
    n = x.shape[0]
    oh, ow = conv_output_hw(x.shape, (kh, kw), stride, pads, dilation)
    last = use_images_last(c, kh, kw, o, xp)
    per = c * kh * kw * oh * ow
    cols = reuse(saved, (n * per,), x.dtype, xp) if keep else None
    W2 = W.reshape(o, -1)
    y = xp.empty((n, o, oh, ow), dtype=x.dtype)

    def chunk(a, b):
        m = b - a
        shape = (c, kh, kw) + _grid(m, oh, ow, last)
        if keep:
            col = cols[a * per:b * per].reshape(shape)
        elif xp is np:
            col = scratch("conv2d.col", shape, x.dtype, xp)
        else:  # CuPy's pool recycles it; a scratch buffer would hold the largest for good
            col = xp.empty(shape, dtype=x.dtype)
        _im2col_chunk(x[a:b], kh, kw, stride, pads, dilation, oh, ow, col, last)
        y2 = scratch("conv2d.y", (o, m * oh * ow), x.dtype, xp)
        xp.dot(W2, col.reshape(c * kh * kw, -1), out=y2)
        if bias is not None and xp is np:
            y2 += bias.reshape(o, 1)  # while the chunk is in the cache
        y2 = images_first(y2.reshape((o,) + _grid(m, oh, ow, last)), last)
        if bias is None or xp is np:
            y[a:b] = y2
        else:  # the GPU adds the bias in the transposing copy: one kernel, not two
            xp.add(y2, bias.reshape(1, o, 1, 1), out=y[a:b])

    parallel_for(n, per * x.itemsize, chunk, xp)
    return y, cols


def _im2col_chunk(x, kh, kw, stride, pads, dilation, oh, ow, col, last):
    """Fill ``col`` with the columns of the images x (m, C, H, W), through a padded
    copy of x in the chunk's layout (scratch memory)."""
    xp = get_array_module(x)
    m, c, h, w = x.shape
    if xp is not np and not any(pads):  # the GPU reads x in place: one copy fewer
        img = x.transpose(1, 2, 3, 0)
    else:
        hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
        img = scratch("conv2d.img", (c, hp, wp, m) if last else (c, m, hp, wp), x.dtype, xp)
        pad_channels_first(x, pads, out=img, images_last=last)
    im2col_into(img, kh, kw, *stride, *dilation, oh, ow, col, last)


def conv2d_columns(x, W_shape, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                   groups=1):
    """The ``cols`` :func:`conv2d` returns, built again from x (new memory; x itself for
    a :func:`pointwise` convolution): the backward of a layer that kept none in its
    forward."""
    xp = get_array_module(x)
    if pointwise(x.shape, W_shape, stride, pads, groups, xp):
        return x
    o, c, kh, kw = W_shape
    n = x.shape[0]
    oh, ow = conv_output_hw(x.shape, (kh, kw), stride, pads, dilation)
    last = use_images_last(c, kh, kw, o // groups, xp)
    c *= groups
    per = c * kh * kw * oh * ow
    cols = xp.empty((n * per,), dtype=x.dtype)

    def chunk(a, b):
        col = cols[a * per:b * per].reshape((c, kh, kw) + _grid(b - a, oh, ow, last))
        _im2col_chunk(x[a:b], kh, kw, stride, pads, dilation, oh, ow, col, last)

    parallel_for(n, per * x.itemsize, chunk, xp, blas=False)
    return cols


def _grid(m, oh, ow, last):
    """The (images, rows, columns) axes of a chunk in its layout."""
    return (oh, ow, m) if last else (m, oh, ow)


def flipped_input_grad(x_shape, W_shape, stride, pads, dilation):
    """(use, gy_pads): whether backward takes dL/dx through the flipped kernel
    (:func:`_input_grad_flipped`), and the padding of gy that route needs.

    That route correlates gy, padded by d(k-1) - p, with the flipped kernel,
    channels swapped: one product with a long sum (O*kh*kw) replaces the product
    into dL/dcol (a sum over O only) and col2im. It is taken in the images-last
    layout, for stride 1, when gy's columns are no larger than x's (O*H*W <=
    C*oh*ow) and flipping the weight costs less than the data (W.size <= x.size):
    a large weight flipped at every step costs more than the col2im it saves.
    """
    n, c, h, w = x_shape
    o, _, kh, kw = W_shape
    top, bottom, left, right = pads
    oh, ow = conv_output_hw(x_shape, (kh, kw), stride, pads, dilation)
    q = (dilation[0] * (kh - 1) - top, dilation[0] * (kh - 1) - bottom,
         dilation[1] * (kw - 1) - left, dilation[1] * (kw - 1) - right)
    use = (use_images_last(c, kh, kw, o) and tuple(stride) == (1, 1) and min(q) >= 0
           and o * h * w <= c * oh * ow and o * c * kh * kw <= n * c * h * w)
    return use, q


def conv2d_backward(gy, cols, W, x_shape, stride=(1, 1), pads=(0, 0, 0, 0),
                    dilation=(1, 1), need_gx=True, need_gb=True, consume=False, groups=1):
    """Fast version of :func:`scratchnet.teach.conv2d_backward` (read that first).

    Returns (gx, gW, gb); gx is None when not needed (a network's first layer).

    ``cols`` is what :func:`conv2d` returned. ``consume=True`` lets dL/dcol be
    written over it once dL/dW has used it (a layer does this: its cache is
    spent after backward); otherwise it is left as it was. A :func:`pointwise`
    convolution's ``cols`` is x, never written.

    Per chunk of images: gy in the chunk's layout, then dL/dW and dL/db
    (:func:`_weight_grads`), then dL/dx, through the flipped kernel where
    :func:`flipped_input_grad` says so (:func:`_input_grad_flipped`), else
    through dL/dcol and col2im (:func:`_input_grad_col2im`). The chunks' shares
    of dL/dW and dL/db are summed in chunk order. ``groups`` > 1: see
    :func:`_conv2d_grouped_backward`.
    """
    if groups != 1:
        return _conv2d_grouped_backward(gy, cols, W, x_shape, stride, pads, dilation,
                                        need_gx, need_gb, consume, groups)
    if pointwise(x_shape, W.shape, stride, pads, groups, get_array_module(gy)):
        return _conv2d_pointwise_backward(gy, cols, W, need_gx, need_gb)
    xp = get_array_module(gy)
    o, c, kh, kw = W.shape
    n = x_shape[0]
    oh, ow = gy.shape[2:]
    last = use_images_last(c, kh, kw, o, xp)
    per = c * kh * kw * oh * ow
    gx = xp.empty(x_shape, dtype=gy.dtype) if need_gx else None
    flipped, gy_pads = flipped_input_grad(x_shape, W.shape, stride, pads, dilation)
    flipped = flipped and need_gx and xp is np  # the GPU's gather fold takes fewer kernels
    if flipped:
        Wf2 = _flipped_kernel(W)
    W2t = W.reshape(o, -1).T

    def chunk(a, b):
        col = cols[a * per:b * per].reshape((c, kh, kw) + _grid(b - a, oh, ow, last))
        gy2 = _gy_matrix(gy[a:b], last)
        gW, gb = _weight_grads(col.reshape(c * kh * kw, -1), gy2, need_gb)
        if flipped:
            _input_grad_flipped(gy[a:b], Wf2, (kh, kw), gy_pads, dilation, out=gx[a:b])
        elif need_gx:
            _input_grad_col2im(gy2, col, W2t, stride, pads, dilation, last, consume,
                               out=gx[a:b])
        return gW, gb

    parts = parallel_for(n, per * gy.itemsize, chunk, xp)
    gW = add_in_order([p[0] for p in parts]).reshape(W.shape)
    gb = add_in_order([p[1] for p in parts]) if need_gb else None
    return gx, gW, gb


def _gy_matrix(gy, last):
    """gy (m, O, oh, ow) as the (O, m*oh*ow) matrix, its columns in the order of the
    chunk's layout (a copy in scratch memory)."""
    xp = get_array_module(gy)
    m, o, oh, ow = gy.shape
    gy2 = scratch("conv2d.gy", (o,) + _grid(m, oh, ow, last), gy.dtype, xp)
    images_first(gy2, last)[...] = gy
    return gy2.reshape(o, -1)


def _small_weight(o, k):
    """Whether dL/dW (o, k) is taken transposed, as col @ gy^T (see _weight_grads)."""
    return o * k <= 1 << 17


def _weight_grads(col2, gy2, need_gb):
    """A chunk's share of dL/dW, gy2 @ col2^T as (O, C*kh*kw), and of dL/db (or None)."""
    if _small_weight(gy2.shape[0], col2.shape[0]):
        # col2 @ gy2^T, i.e. gW^T: faster in OpenBLAS than gy2 @ col2^T for few output
        # channels and a long sum (gW is returned as that transpose, a view).
        gW = col2.dot(gy2.T).T
    else:
        gW = gy2.dot(col2.T)  # a large transposed gW costs more to sum and reshape
    return gW, (gy2.sum(axis=1) if need_gb else None)


def _input_grad_col2im(gy2, col, W2t, stride, pads, dilation, last, consume, out):
    """dL/dx of a chunk into ``out`` (m, C, H, W): dL/dcol = W2^T @ gy2, folded back
    onto the padded image by col2im (on the GPU by one gather, not kh*kw additions).
    With ``consume``, dL/dcol is written over the chunk's spent columns ``col``."""
    xp = get_array_module(gy2)
    gcol = col if consume else scratch("conv2d.gcol", col.shape, gy2.dtype, xp)
    xp.dot(W2t, gy2, out=gcol.reshape(W2t.shape[0], -1))
    _fold_columns(gcol, stride, pads, dilation, last, out)


def _fold_columns(gcol, stride, pads, dilation, last, out):
    """col2im of a chunk's dL/dcol ``gcol`` (the layout of its columns) into ``out``
    (m, C, H, W)."""
    xp = get_array_module(gcol)
    m, c, h, w = out.shape
    top, bottom, left, right = pads
    if xp is np:
        hp, wp = h + top + bottom, w + left + right
        gimg = scratch("conv2d.gimg", (c, hp, wp, m) if last else (c, m, hp, wp),
                       gcol.dtype, xp)
        gimg.fill(0)
        col2im_into(gcol, gimg, *stride, *dilation, last)
        inner = spatial_slice(gimg, slice(top, top + h), slice(left, left + w), last)
    else:
        inner = col2im_gather(gcol, h, w, *stride, *dilation, pads)
    out[...] = images_first(inner, last)


def _flipped_kernel(W):
    """W (O, C, kh, kw) flipped in both spatial axes, channels swapped, as the
    (C, O*kh*kw) matrix of :func:`_input_grad_flipped` (a copy)."""
    xp = get_array_module(W)
    return xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(
        W.shape[1], -1)


def _input_grad_flipped(gy, Wf2, kernel, gy_pads, dilation, out):
    """dL/dx of a chunk into ``out`` (m, C, H, W), stride 1: the correlation of gy
    (m, O, oh, ow), padded by ``gy_pads``, with the flipped kernel ``Wf2``
    (:func:`_flipped_kernel`): im2col of gy and one product, in the images-last layout."""
    xp = get_array_module(gy)
    m, c, h, w = out.shape
    o, oh, ow = gy.shape[1:]
    kh, kw = kernel
    qt, qb, ql, qr = gy_pads
    gpad = scratch("conv2d.gypad", (o, oh + qt + qb, ow + ql + qr, m), gy.dtype, xp)
    pad_channels_first(gy, gy_pads, out=gpad, images_last=True)
    gcol = scratch("conv2d.gcolf", (o, kh, kw, h, w, m), gy.dtype, xp)
    im2col_into(gpad, kh, kw, 1, 1, *dilation, h, w, gcol, True)
    gx2 = scratch("conv2d.gx", (c, h, w, m), gy.dtype, xp)
    xp.dot(Wf2, gcol.reshape(o * kh * kw, -1), out=gx2.reshape(c, -1))
    out[...] = images_first(gx2, True)


def pointwise(x_shape, W_shape, stride, pads, groups, xp=np):
    """Whether a convolution takes the pointwise route on the CPU: a 1x1 kernel, stride 1,
    no padding, one group (dilation does not matter), over images of at least 64 pixels.
    Its columns would be x itself, (C, m*H*W) after a transposing copy (two copies with
    the padded image), so there are none: y = W2 @ x (C, H*W) image by image, straight
    into the (N, O, H, W) output, and x is what the forward keeps for backward. Products
    over fewer pixels (GoogLeNet's 3x3 and 6x6 last stages) are too small to run one per
    image: those keep the columns."""
    return (xp is np and tuple(W_shape[2:]) == (1, 1) and tuple(stride) == (1, 1)
            and not any(pads) and groups == 1 and x_shape[2] * x_shape[3] >= 64)


def _conv2d_pointwise(x, W, bias):
    """y (N, O, H, W) of a :func:`pointwise` convolution: per chunk of images, one
    product W2 (O, C) @ x (C, H*W) per image, then the bias."""
    n, c, h, w = x.shape
    o = W.shape[0]
    W2 = W.reshape(o, c)
    x3 = x.reshape(n, c, h * w)
    y = np.empty((n, o, h, w), dtype=x.dtype)
    y3 = y.reshape(n, o, h * w)

    def chunk(a, b):
        for i in range(a, b):
            W2.dot(x3[i], out=y3[i])
        if bias is not None:
            y3[a:b] += bias.reshape(o, 1)

    parallel_for(n, x[:1].nbytes + y[:1].nbytes, chunk, np)
    return y


def _conv2d_pointwise_backward(gy, x, W, need_gx, need_gb):
    """(gx, gW, gb) of a :func:`pointwise` convolution from its input x: per image,
    gx = W2^T @ gy and a share gy @ x^T of gW (added image by image within a chunk, the
    chunks' shares in chunk order)."""
    n, c, h, w = x.shape
    o = W.shape[0]
    W2t = W.reshape(o, c).T
    x3 = x.reshape(n, c, h * w)
    gy3 = gy.reshape(n, o, h * w)
    gx = np.empty(x.shape, dtype=gy.dtype) if need_gx else None
    gx3 = None if gx is None else gx.reshape(n, c, h * w)

    def chunk(a, b):
        gW = gy3[a].dot(x3[a].T)
        for i in range(a, b):
            if i > a:
                gW += gy3[i].dot(x3[i].T)
            if gx3 is not None:
                W2t.dot(gy3[i], out=gx3[i])
        return gW, (gy3[a:b].sum(axis=(0, 2)) if need_gb else None)

    parts = parallel_for(n, x[:1].nbytes + gy[:1].nbytes, chunk, np)
    gW = add_in_order([p[0] for p in parts]).reshape(W.shape)
    gb = add_in_order([p[1] for p in parts]) if need_gb else None
    return gx, gW, gb


def _conv2d_grouped(x, W, bias, stride, pads, dilation, saved, keep, groups):
    """:func:`conv2d` with W (O, C/G, kh, kw), G = ``groups``: the columns of all C
    channels as for G = 1, then per chunk one batched product over the groups,
    (G, O/G, C/G*kh*kw) @ (G, C/G*kh*kw, cols) -> the (O, cols) output."""
    xp = get_array_module(x)
    o, cg, kh, kw = W.shape
    n, c = x.shape[:2]
    oh, ow = conv_output_hw(x.shape, (kh, kw), stride, pads, dilation)
    last = use_images_last(cg, kh, kw, o // groups, xp)
    per = c * kh * kw * oh * ow
    cols = reuse(saved, (n * per,), x.dtype, xp) if keep else None
    Wg = W.reshape(groups, o // groups, cg * kh * kw)
    y = xp.empty((n, o, oh, ow), dtype=x.dtype)

    def chunk(a, b):
        m = b - a
        shape = (c, kh, kw) + _grid(m, oh, ow, last)
        col = cols[a * per:b * per].reshape(shape) if keep else xp.empty(shape, x.dtype)
        _im2col_chunk(x[a:b], kh, kw, stride, pads, dilation, oh, ow, col, last)
        y2 = xp.matmul(Wg, col.reshape(groups, cg * kh * kw, -1))  # (G, O/G, cols)
        y2 = images_first(y2.reshape((o,) + _grid(m, oh, ow, last)), last)
        if bias is None:
            y[a:b] = y2
        else:
            xp.add(y2, bias.reshape(1, o, 1, 1), out=y[a:b])

    parallel_for(n, per * x.itemsize, chunk, xp)
    return y, cols


def _conv2d_grouped_backward(gy, cols, W, x_shape, stride, pads, dilation, need_gx,
                             need_gb, consume, groups):
    """:func:`conv2d_backward` for :func:`_conv2d_grouped`: per chunk, with gy2 as
    (G, O/G, cols) and the columns as (G, C/G*kh*kw, cols), two batched products,
    gW = gy2 @ col^T and dL/dcol = W^T @ gy2, then col2im as for G = 1."""
    xp = get_array_module(gy)
    o, cg, kh, kw = W.shape
    n, c = x_shape[:2]
    oh, ow = gy.shape[2:]
    last = use_images_last(cg, kh, kw, o // groups, xp)
    per = c * kh * kw * oh * ow
    gx = xp.empty(x_shape, dtype=gy.dtype) if need_gx else None
    Wgt = W.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)

    def chunk(a, b):
        col = cols[a * per:b * per].reshape((c, kh, kw) + _grid(b - a, oh, ow, last))
        col3 = col.reshape(groups, cg * kh * kw, -1)
        gy2 = _gy_matrix(gy[a:b], last)
        gy3 = gy2.reshape(groups, o // groups, -1)
        if _small_weight(o // groups, cg * kh * kw):  # transposed, as _weight_grads
            gW = xp.matmul(col3, gy3.transpose(0, 2, 1)).transpose(0, 2, 1)
        else:
            gW = xp.matmul(gy3, col3.transpose(0, 2, 1))  # (G, O/G, C/G*kh*kw)
        gb = gy2.sum(axis=1) if need_gb else None
        if need_gx:
            gcol = xp.matmul(Wgt, gy3).reshape(col.shape)  # (G, C/G*kh*kw, cols)
            _fold_columns(gcol, stride, pads, dilation, last, out=gx[a:b])
        return gW, gb

    parts = parallel_for(n, per * gy.itemsize, chunk, xp)
    gW = add_in_order([p[0] for p in parts]).reshape(W.shape)
    gb = add_in_order([p[1] for p in parts]) if need_gb else None
    return gx, gW, gb
