"""Convolution (cross-correlation, as in deep learning) through im2col.

For a chunk of images (the whole batch on the GPU):

Forward:  col = im2col(x) as a (C*kh*kw, m*oh*ow) matrix;  y = W2 @ col + b,
          with W2 = W.reshape(O, C*kh*kw), then (O, m, oh, ow) -> (m, O, oh, ow)
Backward: gy2 = gy as (O, m*oh*ow);  gW = gy2 @ col.T (summed over chunks);
          gb = sum gy;  gx = col2im(W2.T @ gy2)

Each is one BLAS product per chunk. The chunks run on all CPU cores
(``parallel_for``). The columns are kept from forward to backward (kh*kw
times the input: 25x for LeNet's 5x5 kernels), as Caffe and Chainer do;
building them again in backward from the padded input saved that memory but
cost a LeNet step about 1 ms and ResNet-18's 24x24 layers 2 ms each.

Shapes: x (N, C, H, W), W (O, C, kh, kw), b (O,), y (N, O, oh, ow).
``pads`` is always the resolved (top, bottom, left, right); :func:`conv_pads`
turns PyTorch's ``padding`` argument (int, (h, w), "valid", "same") into it.
"""
from functools import reduce

from ..backend import get_array_module
from .im2col import col2im_chunk, im2col_chunk, out_size, pad_channels_first, pair
from .parallel import parallel_for
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


def _geometry(img, W, stride, dilation):
    """(oh, ow) of a convolution of the padded image ``img`` (C, N, Hp, Wp) with W."""
    kh, kw = W.shape[2:]
    hp, wp = img.shape[2:]
    return (out_size(hp, kh, stride[0], 0, 0, dilation[0]),
            out_size(wp, kw, stride[1], 0, 0, dilation[1]))


def conv2d(x, W, bias, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), saved=None):
    """Returns y: (N, O, oh, ow) and ``cols``, the im2col columns backward needs.

    ``cols`` is one flat buffer: the columns of chunk (a, b) are its items
    ``a*per .. b*per`` (per = C*kh*kw*oh*ow, one image's worth), a contiguous
    (C, kh, kw, b - a, oh, ow) block. ``saved``: the ``cols`` of an earlier
    call, refilled when the size matches (a layer does this every step: fresh
    memory costs page faults, see ``workspace``); None means new memory.
    """
    xp = get_array_module(x)
    o, c, kh, kw = W.shape
    n, _, h, w = x.shape
    top, bottom, left, right = pads
    img = scratch("conv2d.img", (c, n, h + top + bottom, w + left + right), x.dtype, xp)
    pad_channels_first(x, pads, out=img)
    oh, ow = _geometry(img, W, stride, dilation)
    per = c * kh * kw * oh * ow
    cols = reuse(saved, (n * per,), x.dtype, xp)
    W2 = W.reshape(o, -1)
    y = xp.empty((n, o, oh, ow), dtype=x.dtype)

    def chunk(a, b):
        m = b - a
        col = cols[a * per:b * per].reshape(c, kh, kw, m, oh, ow)
        im2col_chunk(img, a, b, kh, kw, *stride, *dilation, oh, ow, col)
        y2 = scratch("conv2d.y", (o, m * oh * ow), x.dtype, xp)
        xp.dot(W2, col.reshape(c * kh * kw, -1), out=y2)
        if bias is not None:
            y2 += bias.reshape(o, 1)  # while the chunk is in the cache
        y[a:b] = y2.reshape(o, m, oh, ow).transpose(1, 0, 2, 3)

    parallel_for(n, per * x.itemsize, chunk, xp)
    return y, cols


def conv2d_backward(gy, cols, W, x_shape, stride=(1, 1), pads=(0, 0, 0, 0),
                    dilation=(1, 1), need_gx=True, need_gb=True, consume=False):
    """Returns (gx, gW, gb); gx is None when not needed (a network's first layer).

    ``cols`` is what :func:`conv2d` returned. ``consume=True`` lets dL/dcol be
    written over it once dL/dW has used it (a layer does this: its cache is
    spent after backward); otherwise it is left as it was.
    """
    xp = get_array_module(gy)
    o, c, kh, kw = W.shape
    n, _, h, w = x_shape
    oh, ow = gy.shape[2:]
    top, bottom, left, right = pads
    per = c * kh * kw * oh * ow
    W2t = W.reshape(o, -1).T
    gx = xp.empty(x_shape, dtype=gy.dtype) if need_gx else None
    small_gW = W.size <= 1 << 17
    # dL/dx the other way, when it is cheaper: as the correlation of gy (padded by
    # d(k-1) - p) with the flipped kernel, channels swapped. im2col of gy replaces
    # the product into dL/dcol and col2im's kh*kw strided additions; worth it for
    # stride 1 when gy's columns are no larger than x's (O*H*W <= C*oh*ow: ResNet's
    # and VGG's O = C layers; measured 20-26% faster there, 2-3x slower where O > C).
    qt, qb = dilation[0] * (kh - 1) - top, dilation[0] * (kh - 1) - bottom
    ql, qr = dilation[1] * (kw - 1) - left, dilation[1] * (kw - 1) - right
    transposed = (need_gx and stride == (1, 1) and min(qt, qb, ql, qr) >= 0
                  and o * h * w <= c * oh * ow)
    if transposed:
        Wf2 = xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(c, -1)

    def chunk(a, b):
        m = b - a
        col = cols[a * per:b * per].reshape(c, kh, kw, m, oh, ow)
        col2 = col.reshape(c * kh * kw, -1)
        gy2 = scratch("conv2d.gy", (o, m, oh, ow), gy.dtype, xp)
        gy2[...] = gy[a:b].transpose(1, 0, 2, 3)
        gy2 = gy2.reshape(o, -1)
        if small_gW:
            # col @ gy2^T, i.e. gW^T: 1.3-1.8x faster in OpenBLAS than gy2 @ col^T for
            # few output channels and a long sum; transposing a small gW is cheap.
            gW = col2.dot(gy2.T).T
        else:
            gW = gy2.dot(col2.T)  # transposing a large one is not (18 ms for ResNet's last)
        gb = gy2.sum(axis=1) if need_gb else None
        if transposed:
            gpad = scratch("conv2d.gypad", (o, m, oh + qt + qb, ow + ql + qr), gy.dtype, xp)
            pad_channels_first(gy[a:b], (qt, qb, ql, qr), out=gpad)
            gcol = scratch("conv2d.gcol", (o, kh, kw, m, h, w), gy.dtype, xp)
            im2col_chunk(gpad, 0, m, kh, kw, 1, 1, *dilation, h, w, gcol)
            gx2 = scratch("conv2d.gx", (c, m * h * w), gy.dtype, xp)
            xp.dot(Wf2, gcol.reshape(o * kh * kw, -1), out=gx2)
            gx[a:b] = gx2.reshape(c, m, h, w).transpose(1, 0, 2, 3)
        elif need_gx:
            # dL/dcol, over the spent columns when allowed
            gcol = col if consume else scratch("conv2d.gcol", col.shape, gy.dtype, xp)
            xp.dot(W2t, gy2, out=gcol.reshape(col2.shape))
            gimg = scratch("conv2d.gimg", (c, m, h + top + bottom, w + left + right),
                           gy.dtype, xp)
            gimg.fill(0)
            col2im_chunk(gcol, gimg, *stride, *dilation)
            gx[a:b] = gimg[:, :, top:top + h, left:left + w].transpose(1, 0, 2, 3)
        return gW, gb

    parts = parallel_for(n, per * gy.itemsize, chunk, xp)
    # Partial sums added in chunk order: the same bits every run.
    gW = xp.ascontiguousarray(reduce(xp.add, [p[0] for p in parts])).reshape(W.shape)
    gb = reduce(xp.add, [p[1] for p in parts]) if need_gb else None
    return gx, gW, gb
