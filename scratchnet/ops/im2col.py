"""im2col / col2im: unfold image patches into columns and fold them back.

The column buffer has shape ``(C, kh, kw, N, oh, ow)``:
``col[c, i, j, n, y, x] = x_pad[n, c, y*sh + i*dh, x*sw + j*dw]``.
Read as a matrix it is (C*kh*kw, N*oh*ow), so a convolution is ONE matrix
product with W.reshape(O, C*kh*kw) for a whole batch (or a chunk of it), not N
small ones (Chainer's (N, C, kh, kw, oh, ow) layout needs a batched product).

Both directions work on a padded copy of the images with the channels first,
(C, N, Hp, Wp) (``pad_channels_first``), whose rows are contiguous in memory.
im2col is one copy: :func:`patch_view` sees that image as the (C, kh, kw, N,
oh, ow) array of its patches (a strided view, nothing copied), and
:func:`im2col_into` copies the view into the columns. col2im is the adjoint:
for each of the ``kh*kw`` kernel offsets, one strided addition covers every
image and channel (:func:`offset_views`), so the Python loop is short and the
additions are large; no ``np.add.at``, which is slower.

``im2col_into`` / ``col2im_into`` do this for one chunk of images, in either
of two layouts: images second, (C, N, H, W), or images last, (C, H, W, N),
where the rows a copy or an addition runs along are ow*N values long instead
of ow (the convolution picks per layer, see ``ops.conv``). ``im2col`` /
``col2im`` are the whole-batch versions in the first layout (the tests check
them against the book's loops).

On the GPU, where every operation is a kernel launch, :func:`col2im_gather`
folds columns back in three kernels whatever the kernel size (Chainer's CUDA
col2im is a gather too): each pixel takes the column entries copied from it.

The timings behind these choices are in BENCHMARKS.md.
"""
import numbers

import numpy as np

from ..backend import get_array_module
from .workspace import reuse


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def pair(v, name="value", single=True):
    """``v`` as an (h, w) tuple of ints: an int stands for both, and so does a 1-tuple
    ``(v,)`` (or list) where PyTorch takes one (``single``: every int-or-pair argument
    but Conv2d's kernel_size and adaptive pooling's output_size)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2 and not (single and len(v) == 1):
            raise ValueError(f"{name}: expected an int or an (h, w) pair, got {v!r}")
        h, w = v if len(v) == 2 else (v[0], v[0])
    else:
        h = w = v
    # int() would silently turn 2.5 into 2; PyTorch refuses non-integers too.
    if not (_is_int(h) and _is_int(w)):
        raise TypeError(f"{name}: expected an int or an (h, w) pair of ints, got {v!r}")
    return int(h), int(w)


def pool_stride(stride, kernel, name="stride"):
    """A pooling window's stride as an (h, w) pair: the kernel size when None or, as
    PyTorch reads it, empty (``stride=()``)."""
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return kernel
    return pair(stride, name)


def out_size(size, k, s, p_lo, p_hi, d=1, ceil_mode=False):
    """Output length along one axis, as PyTorch computes it: floor mode, or with
    ``ceil_mode`` (pooling) rounded up, but the last window must start inside the
    input or its leading padding."""
    if not ceil_mode:
        return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1
    n = (size + p_lo + p_hi - d * (k - 1) - 1 + s - 1) // s + 1
    return n - 1 if (n - 1) * s >= size + p_lo else n


def conv_output_hw(x_shape, kernel, stride, pads, dilation=(1, 1), ceil_mode=False):
    """(oh, ow) of a convolution or pooling window over x (N, C, H, W); ``pads`` is
    (top, bottom, left, right)."""
    return (out_size(x_shape[2], kernel[0], stride[0], pads[0], pads[1], dilation[0],
                     ceil_mode),
            out_size(x_shape[3], kernel[1], stride[1], pads[2], pads[3], dilation[1],
                     ceil_mode))


def pad_images(x, pads, value=0.0):
    """Pad the last two axes of ``x`` by ``pads = (top, bottom, left, right)``."""
    top, bottom, left, right = pads
    if not (top or bottom or left or right):
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out = xp.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def pad_channels_first(x, pads, pad_value=0.0, out=None, images_last=False):
    """x: (N, C, H, W) -> (C, N, Hp, Wp), padded; with ``images_last`` (C, Hp, Wp, N).

    ``out``, when it has that shape and dtype, is filled and returned instead of
    a new array (scratch memory: fresh memory costs page faults, see ``workspace``).
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    shape = (c, hp, wp, n) if images_last else (c, n, hp, wp)
    img = reuse(out, shape, x.dtype, xp)
    if top or bottom or left or right:
        img[...] = pad_value
    inner = spatial_slice(img, slice(top, top + h), slice(left, left + w), images_last)
    inner[...] = x.transpose((1, 2, 3, 0) if images_last else (1, 0, 2, 3))
    return img


def spatial_slice(img, rows, cols, images_last=False):
    """img[rows, cols] over the spatial axes of either padded layout: a view."""
    return img[:, rows, cols, :] if images_last else img[:, :, rows, cols]


def images_first(a, images_last):
    """A padded-layout array (C, N, h, w) or (C, h, w, N) seen as (N, C, h, w): a view."""
    return a.transpose((3, 0, 1, 2) if images_last else (1, 0, 2, 3))


def offset_views(img, kh, kw, sh, sw, dh, dw, oh, ow, images_last=False):
    """Yield (i, j, view) for each kernel offset, i major: the strided view of the padded
    ``img`` that offset (i, j) reads in every window, ``view[.., y, x] = img[..,
    y*sh + i*dh, x*sw + j*dw]`` over the spatial axes of either layout (or of (N, C, H, W)).
    """
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * oh, sh)
            cols = slice(j * dw, j * dw + sw * ow, sw)
            yield i, j, spatial_slice(img, rows, cols, images_last)


def patch_view(img, kh, kw, sh, sw, dh, dw, oh, ow, images_last=False):
    """A (C, kh, kw, N, oh, ow) *view* of ``img`` (C, N, Hp, Wp), no copy:
    ``view[c, i, j, n, y, x] = img[c, n, y*sh + i*dh, x*sw + j*dw]``;
    with ``images_last``, a (C, kh, kw, oh, ow, N) view of (C, Hp, Wp, N).

    Only the strides are new: moving one kernel row (i) moves dh image rows,
    one output row (y) moves sh image rows, and so on. Read-only: several view
    entries share one pixel.
    """
    xp = get_array_module(img)
    as_strided = xp.lib.stride_tricks.as_strided
    if images_last:
        c, _, _, n = img.shape
        s_c, s_y, s_x, s_n = img.strides
        return as_strided(img, (c, kh, kw, oh, ow, n),
                          (s_c, s_y * dh, s_x * dw, s_y * sh, s_x * sw, s_n))
    c, n = img.shape[:2]
    s_c, s_n, s_y, s_x = img.strides
    return as_strided(img, (c, kh, kw, n, oh, ow),
                      (s_c, s_y * dh, s_x * dw, s_n, s_y * sh, s_x * sw))


def im2col_into(img, kh, kw, sh, sw, dh, dw, oh, ow, col, images_last=False):
    """Fill ``col`` (C, kh, kw, N, oh, ow), or (C, kh, kw, oh, ow, N) with
    ``images_last``, from the padded ``img`` of the same layout.

    One copy of :func:`patch_view`: the same work as a loop over the kh*kw
    offsets, each a strided slice copy, in one call, which is faster and lets go
    of the GIL once for ``parallel_for``'s threads instead of kh*kw times.
    """
    col[...] = patch_view(img, kh, kw, sh, sw, dh, dw, oh, ow, images_last)
    return col


def col2im_into(col, gimg, sh, sw, dh, dw, images_last=False):
    """Add every entry of ``col`` back into the padded ``gimg`` of the same layout
    (the adjoint of :func:`im2col_into`): one strided addition per kernel offset."""
    xp = get_array_module(col)
    kh, kw = col.shape[1:3]
    oh, ow = col.shape[3:5] if images_last else col.shape[4:6]
    for i, j, g in offset_views(gimg, kh, kw, sh, sw, dh, dw, oh, ow, images_last):
        xp.add(g, col[:, i, j], out=g)  # not ``g[...] +=``: on CuPy that is a second copy
    return gimg


def col2im_gather(col, h, w, sh, sw, dh, dw, pads, kernel=None, scale=1.0):
    """The adjoint of im2col as a gather (for the GPU): col (B, kh, kw, oh, ow, *E) ->
    (B, h, w, *E), each pixel of the unpadded image the sum of the entries copied from it.

    With ``kernel=(kh, kw)``, col is (B, oh, ow, *E): one value per window that stands
    for every kernel offset (average pooling). Every entry is multiplied by ``scale``.

    Three kernels, whatever the kernel size: a take of the entries of each pixel
    through an index table, a multiply by 0/1 (where a pixel has fewer entries than
    the table's width), and a sum; :func:`col2im_into` launches one per kernel offset.
    The take's result is (B, h*w, k, *E), k the most entries a pixel has: kh*kw at
    stride 1, about kh*kw / (sh*sw) otherwise.
    """
    xp = get_array_module(col)
    kh, kw = kernel or col.shape[1:3]
    oh, ow = col.shape[1:3] if kernel else col.shape[3:5]
    extra = col.shape[3:] if kernel else col.shape[5:]
    b = col.shape[0]
    src, weight = _fold_index(xp, col.dtype, (h, w, kh, kw, sh, sw, dh, dw, pads[0], pads[2],
                                              oh, ow, kernel is not None, float(scale)))
    g = col.reshape((b, -1) + extra).take(src, axis=1)  # (B, h*w, k, *E)
    g *= weight.reshape(weight.shape + (1,) * len(extra))
    return g.sum(axis=2).reshape((b, h, w) + extra)


_FOLD_INDEX = {}


def _fold_index(xp, dtype, geometry):
    """The index table of :func:`col2im_gather` on the device: (src, weight), both
    (h*w, k). Pixel (y, x) is read by offset (i, j) of window (oy, ox) where
    y + top = oy*sh + i*dh and x + left = ox*sw + j*dw; a row of src holds the
    places in col of the pixel's entries (in the order of the offsets), weight is
    ``scale`` there and 0 past them. Made once per geometry and device (host
    arithmetic, one copy to the device)."""
    device = None if xp is np else xp.cuda.runtime.getDevice()
    key = (xp.__name__, device, np.dtype(dtype).str, geometry)
    table = _FOLD_INDEX.get(key)
    if table is None:
        h, w, kh, kw, sh, sw, dh, dw, top, left, oh, ow, per_window, scale = geometry
        ry = np.arange(h)[:, None] + top - np.arange(kh) * dh  # (h, kh): oy*sh if valid
        rx = np.arange(w)[:, None] + left - np.arange(kw) * dw  # (w, kw): ox*sw if valid
        vy = (ry % sh == 0) & (ry >= 0) & (ry < sh * oh)
        vx = (rx % sw == 0) & (rx >= 0) & (rx < sw * ow)
        src = (ry // sh)[:, None, :, None] * ow + (rx // sw)[None, :, None, :]
        if not per_window:
            src = src + np.arange(kh * kw).reshape(kh, kw) * (oh * ow)
        valid = (vy[:, None, :, None] & vx[None, :, None, :]).reshape(h * w, kh * kw)
        src = np.where(valid, src.reshape(h * w, kh * kw), 0)
        # each row's entries first (a stable sort keeps the offsets' order), then cut
        first = np.argsort(~valid, axis=1, kind="stable")[:, :max(1, valid.sum(1).max())]
        valid = np.take_along_axis(valid, first, axis=1)
        table = (xp.asarray(np.take_along_axis(src, first, axis=1)),
                 xp.asarray((valid * scale).astype(dtype)))
        _FOLD_INDEX[key] = table
    return table


def im2col(x, kh, kw, sh, sw, pads, dh=1, dw=1, pad_value=0.0):
    """Readable version: :func:`scratchnet.teach.im2col` (its col is (N, C, kh, kw, oh, ow)).

    x: (N, C, H, W) -> col: (C, kh, kw, N, oh, ow), a new array: channels first and the
    images after the kernel offsets, so the convolution is one product W2 @ col2 with
    W2 (out, C*kh*kw) and col2 (C*kh*kw, N*oh*ow), as docs/backprop.md writes it.

    ``pads`` is (top, bottom, left, right); ``pad_value`` is 0 for
    convolution and -inf for max pooling.
    """
    xp = get_array_module(x)
    n, c = x.shape[:2]
    oh, ow = conv_output_hw(x.shape, (kh, kw), (sh, sw), pads, (dh, dw))
    img = pad_channels_first(x, pads, pad_value)
    col = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    return im2col_into(img, kh, kw, sh, sw, dh, dw, oh, ow, col)


def col2im(col, h, w, sh, sw, pads, dh=1, dw=1):
    """Readable version: :func:`scratchnet.teach.col2im`.

    col: (C, kh, kw, N, oh, ow) -> (N, C, H, W), a new array, summing overlapping patches.

    The adjoint of :func:`im2col`: every column entry is added back to the
    pixel it was copied from; entries that came from padding are dropped.
    """
    xp = get_array_module(col)
    c, n = col.shape[0], col.shape[3]
    top, bottom, left, right = pads
    gimg = xp.zeros((c, n, h + top + bottom, w + left + right), dtype=col.dtype)
    col2im_into(col, gimg, sh, sw, dh, dw)
    return xp.ascontiguousarray(gimg[:, :, top:top + h, left:left + w].transpose(1, 0, 2, 3))
