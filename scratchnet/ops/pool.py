"""Max, average and adaptive average pooling over (N, C, H, W).

Both window poolings loop over the kh*kw kernel offsets, each a strided view
of the padded input covering every window at once, so no column buffer of
kh*kw times the input is built. Semantics follow PyTorch: floor mode output
sizes by default; max pooling pads with -inf and sends each window's gradient to
its first maximum; average pooling counts padded zeros (count_include_pad=True).

PyTorch's other options reduce to these: ``ceil_mode`` is floor mode over an input
padded a little more at the bottom and right (:func:`ceil_pads`), which max pooling
fills with -inf and average pooling with zeros it does not count; a divisor other than
kh*kw (``count_include_pad=False``, ``divisor_override``, a window cut short by ceil
mode) is one per window (:func:`avg_divisor`); ``return_indices`` turns each window's
offset into PyTorch's flat index (:func:`max_pool2d_indices`).

On the GPU, where each of those passes is a kernel launch, the windows are one
(N, C, kh, kw, oh, ow) view instead, reduced over (kh, kw) at once (``_gpu_*``).
"""

import numpy as np

from ..backend import get_array_module
from .activation import fused
from .im2col import col2im_gather, conv_output_hw, offset_views, out_size, pad_images, patch_view
from .parallel import parallel_for


def _disjoint(kernel, stride, dilation):
    """Windows that do not overlap write disjoint pixels: backward can store, not add."""
    return all(s >= d * (k - 1) + 1 for s, d, k in zip(stride, dilation, kernel))


def _tiles(x_shape, out_hw, kernel, stride, pads, dilation):
    """Windows that tile the image exactly (LeNet's 2x2/2 on 28x28): every pixel is in
    exactly one window, so a backward that stores into each window writes all of gx."""
    return (not any(pads) and dilation == (1, 1) and tuple(kernel) == tuple(stride)
            and x_shape[2] == out_hw[0] * kernel[0] and x_shape[3] == out_hw[1] * kernel[1])


def _grad_image(gx, a, b, pads, xp, tiles=False):
    """A zeroed gradient image for images a..b-1: gx's own slice when there is no padding,
    else a padded buffer whose centre is copied into gx afterwards. Windows that tile
    the image overwrite every pixel, so their slice is not zeroed first."""
    if not any(pads):
        g = gx[a:b]
        if not tiles:
            g.fill(0)
        return g
    n, c, h, w = gx[a:b].shape
    return xp.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=gx.dtype)


def ceil_pads(x_shape, kernel, stride, pads, dilation=(1, 1)):
    """The pads (top, bottom, left, right) under which floor mode gives the windows of
    PyTorch's ceil_mode: the bottom and right grown just enough to hold the last
    window (which starts inside the input or its top/left padding)."""
    top, bottom, left, right = pads
    oh, ow = conv_output_hw(x_shape, kernel, stride, pads, dilation, ceil_mode=True)
    need_h = (oh - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - x_shape[2] - top
    need_w = (ow - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - x_shape[3] - left
    return top, max(bottom, need_h), left, max(right, need_w)


def max_pool2d(x, kernel, stride, pads=(0, 0, 0, 0), dilation=(1, 1), ceil_mode=False):
    """Fast version of :func:`scratchnet.teach.max_pool2d_forward` (read that first).

    Returns y: (N, C, oh, ow) and idx, the offset (i*kw + j) of each window's first
    maximum.

    First the maximum (kh*kw - 1 ``maximum`` passes), then idx as the number of
    leading offsets whose value is not the maximum: a running "not yet" mask,
    and-ed and added offset by offset (3 cheap passes each, faster than tracking
    the argmax while taking the maximum). A NaN wins its window, and its gradient
    goes to the window's last NaN, as in PyTorch. A large batch runs in chunks of
    images on all cores (``parallel_for``). ``ceil_mode``: see :func:`ceil_pads`.
    """
    if ceil_mode:
        pads = ceil_pads(x.shape, kernel, stride, pads, dilation)
    xp = get_array_module(x)
    n, c = x.shape[:2]
    oh, ow = conv_output_hw(x.shape, kernel, stride, pads, dilation)
    if xp is not np:
        return _gpu_max_pool(xp, x, kernel, stride, pads, dilation, oh, ow)
    y = xp.empty((n, c, oh, ow), dtype=x.dtype)
    idx = xp.empty(y.shape, dtype=xp.uint8 if kernel[0] * kernel[1] <= 256 else xp.int32)

    def chunk(a, b):
        img = pad_images(x[a:b], pads, -xp.inf)
        ya, ia = y[a:b], idx[a:b]
        views = [v for _, _, v in offset_views(img, *kernel, *stride, *dilation, oh, ow)]
        ya[...] = views[0]
        for v in views[1:]:
            xp.maximum(ya, v, out=ya)  # propagates NaN, as PyTorch does
        # idx = the first offset holding the maximum: count the offsets before it.
        not_yet = views[0] != ya
        ia[...] = not_yet
        for v in views[1:-1]:
            not_yet &= v != ya
            ia += not_yet
        # A window whose pixels are all -inf ties with its -inf padding: PyTorch sends
        # its gradient to its first pixel inside the image, never to the padding.
        if any(pads):
            low = ya == -xp.inf
            if low.any():
                first = first_inside(x.shape, (oh, ow), kernel, stride, pads, dilation)
                ia[low] = np.broadcast_to(first.astype(ia.dtype), ia.shape)[low]
        # NaN != NaN, so a window with a NaN counted past its end: PyTorch sends its
        # gradient to the last NaN.
        if np.isnan(ya).any():
            for k, v in enumerate(views):
                nan = xp.isnan(v)
                ia *= ~nan
                ia += nan * ia.dtype.type(k)

    parallel_for(n, x[:1].nbytes, chunk, xp, blas=False)
    return y, idx


def first_inside(x_shape, out_hw, kernel, stride, pads, dilation):
    """(oh, ow): the offset i*kw + j of each window's first entry inside the image (not
    in the padding). Rows and columns are independent, so it is the first row i inside
    times kw plus the first column j inside."""
    def first(out, k, s, pad, d):
        starts = np.arange(out) * s - pad  # the image row (column) of offset 0
        i = np.maximum(0, -(starts // d))  # first offset at or past row 0: ceil(-start/d)
        return np.minimum(i, k - 1)
    i = first(out_hw[0], kernel[0], stride[0], pads[0], dilation[0])
    j = first(out_hw[1], kernel[1], stride[1], pads[2], dilation[1])
    return i[:, None] * kernel[1] + j[None, :]


def max_pool2d_backward(gy, idx, x_shape, kernel, stride, pads=(0, 0, 0, 0), dilation=(1, 1),
                        ceil_mode=False):
    """Fast version of :func:`scratchnet.teach.max_pool2d_backward` (read that first).

    Each window's gradient goes to its first maximum (the offset idx recorded).
    """
    if ceil_mode:
        pads = ceil_pads(x_shape, kernel, stride, pads, dilation)
    xp = get_array_module(gy)
    n, c, h, w = x_shape
    oh, ow = gy.shape[2:]
    if xp is not np:
        return _gpu_max_pool_backward(xp, gy, idx, x_shape, kernel, stride, pads, dilation)
    gx = xp.empty(x_shape, dtype=gy.dtype)
    disjoint = _disjoint(kernel, stride, dilation)
    tiles = _tiles(x_shape, (oh, ow), kernel, stride, pads, dilation)

    def chunk(a, b):
        gimg = _grad_image(gx, a, b, pads, xp, tiles)
        ga, ia = gy[a:b], idx[a:b]
        for i, j, v in offset_views(gimg, *kernel, *stride, *dilation, oh, ow):
            k = i * kernel[1] + j
            if disjoint:
                xp.multiply(ia == k, ga, out=v)
            else:
                g = (ia == k).astype(gy.dtype)
                g *= ga
                v += g
        if any(pads):  # gimg was a padded buffer: copy its centre
            gx[a:b] = gimg[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w]

    parallel_for(n, gx[:1].nbytes, chunk, xp, blas=False)
    return gx


def max_pool2d_indices(idx, x_shape, kernel, stride, pads=(0, 0, 0, 0), dilation=(1, 1)):
    """PyTorch's ``return_indices``: the offset idx (i*kw + j) of each window's maximum as
    the flat index h*W + w of that pixel in its (H, W) input plane, int64."""
    xp = get_array_module(idx)
    kh, kw = kernel
    oh, ow = idx.shape[2:]
    k = idx.astype(np.int64)
    rows = xp.arange(oh, dtype=np.int64)[:, None] * stride[0] - pads[0] + (k // kw) * dilation[0]
    cols = xp.arange(ow, dtype=np.int64) * stride[1] - pads[2] + (k % kw) * dilation[1]
    return rows * x_shape[3] + cols


def avg_divisor(x_shape, kernel, stride, pads, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
    """What PyTorch divides each window's sum by: ``divisor_override``; else the window's
    extent clipped to the padded input (``count_include_pad``) or to the input itself,
    a host (oh, ow) array; None where that is kh*kw for every window (the plain mean).
    A ceil-mode window that runs past the padded input counts only what lies inside."""
    if divisor_override is not None:
        return divisor_override
    if count_include_pad and not ceil_mode:  # floor-mode windows lie in the padded input
        return None
    counts = []
    for size, k, s, lo, hi in ((x_shape[2], kernel[0], stride[0], *pads[:2]),
                               (x_shape[3], kernel[1], stride[1], *pads[2:])):
        start = np.arange(out_size(size, k, s, lo, hi, 1, ceil_mode)) * s - lo
        end = np.minimum(start + k, size + hi)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    if all((c == k).all() for c, k in zip(counts, kernel)):
        return None
    return np.outer(*counts).astype(np.float64)


_DIVISORS = {}


def _divisor_on(xp, divisor, dtype):
    """A divisor of :func:`avg_divisor` in ``dtype`` on the device: a scalar, or the
    (oh, ow) array, copied there once per device and value."""
    if np.ndim(divisor) == 0:
        return np.dtype(dtype).type(divisor)
    device = None if xp is np else xp.cuda.runtime.getDevice()
    key = (xp.__name__, device, np.dtype(dtype).str, divisor.shape, divisor.tobytes())
    a = _DIVISORS.get(key)
    if a is None:
        a = _DIVISORS[key] = xp.asarray(divisor.astype(dtype))
    return a


def avg_pool2d(x, kernel, stride, pads=(0, 0, 0, 0), ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Fast version of :func:`scratchnet.teach.avg_pool2d_forward` (read that first).

    y: (N, C, oh, ow), each window's sum over kh*kw (padding counts as zeros); with
    PyTorch's other options, over :func:`avg_divisor`'s divisor.
    """
    xp = get_array_module(x)
    kh, kw = kernel
    divisor = avg_divisor(x.shape, kernel, stride, pads, ceil_mode, count_include_pad,
                          divisor_override)
    if ceil_mode:
        pads = ceil_pads(x.shape, kernel, stride, pads)
    oh, ow = conv_output_hw(x.shape, kernel, stride, pads)
    if divisor is not None:
        return _avg_pool_divided(xp, x, kernel, stride, pads, oh, ow,
                                 _divisor_on(xp, divisor, x.dtype))
    if xp is not np:  # one mean over a window view (see the module docstring)
        return _window_view(pad_images(x, pads, 0.0), kernel, stride, (1, 1), oh, ow).mean(
            axis=(2, 3))
    y = xp.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)

    def chunk(a, b):
        img = pad_images(x[a:b], pads, 0.0)
        ya = y[a:b]
        views = [v for _, _, v in offset_views(img, kh, kw, *stride, 1, 1, oh, ow)]
        ya[...] = views[0]
        for v in views[1:]:
            ya += v
        ya *= ya.dtype.type(1.0 / (kh * kw))

    parallel_for(x.shape[0], x[:1].nbytes, chunk, xp, blas=False)
    return y


def _avg_pool_divided(xp, x, kernel, stride, pads, oh, ow, divisor):
    """avg_pool2d's window sums over ``divisor`` (a scalar or (oh, ow)), divided as PyTorch
    divides them."""
    if xp is not np:
        win = _window_view(pad_images(x, pads, 0.0), kernel, stride, (1, 1), oh, ow)
        return win.sum(axis=(2, 3)) / divisor
    y = xp.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)

    def chunk(a, b):
        img = pad_images(x[a:b], pads, 0.0)
        ya = y[a:b]
        views = [v for _, _, v in offset_views(img, *kernel, *stride, 1, 1, oh, ow)]
        ya[...] = views[0]
        for v in views[1:]:
            ya += v
        ya /= divisor

    parallel_for(x.shape[0], x[:1].nbytes, chunk, xp, blas=False)
    return y


def avg_pool2d_backward(gy, x_shape, kernel, stride, pads=(0, 0, 0, 0), ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Fast version of :func:`scratchnet.teach.avg_pool2d_backward` (read that first)."""
    xp = get_array_module(gy)
    kh, kw = kernel
    n, c, h, w = x_shape
    oh, ow = gy.shape[2:]
    divisor = avg_divisor(x_shape, kernel, stride, pads, ceil_mode, count_include_pad,
                          divisor_override)
    if divisor is not None:
        divisor = _divisor_on(xp, divisor, gy.dtype)
    if ceil_mode:
        pads = ceil_pads(x_shape, kernel, stride, pads)
    if xp is not np:
        return _gpu_avg_pool_backward(xp, gy, x_shape, kernel, stride, pads, divisor)
    gx = xp.empty(x_shape, dtype=gy.dtype)
    disjoint = _disjoint(kernel, stride, (1, 1))
    tiles = _tiles(x_shape, (oh, ow), kernel, stride, pads, (1, 1))

    def chunk(a, b):
        if divisor is None:
            g = gy[a:b] * gy.dtype.type(1.0 / (kh * kw))
        else:
            g = gy[a:b] / divisor
        gimg = _grad_image(gx, a, b, pads, xp, tiles)
        for _, _, v in offset_views(gimg, kh, kw, *stride, 1, 1, oh, ow):
            if disjoint:
                v[...] = g
            else:
                v += g
        if any(pads):  # gimg was a padded buffer: copy its centre
            gx[a:b] = gimg[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w]

    parallel_for(n, gx[:1].nbytes, chunk, xp, blas=False)
    return gx


def _window_view(img, kernel, stride, dilation, oh, ow):
    """img (N, C, Hp, Wp) -> its (N, C, kh, kw, oh, ow) window view (no copy):
    ``view[n, c, i, j, y, x] = img[n, c, y*sh + i*dh, x*sw + j*dw]``."""
    return patch_view(img, *kernel, *stride, *dilation, oh, ow).transpose(0, 3, 1, 2, 4, 5)


_OFFSETS = {}


def _offsets_on(xp, kernel, first=0):
    """first, first + 1, ... for the kernel offsets i*kw + j, a (kh, kw) device array
    made once per device (a view of it broadcasts against a window layout)."""
    kh, kw = kernel
    device = None if xp is np else xp.cuda.runtime.getDevice()
    key = (xp.__name__, device, kh, kw, first)
    a = _OFFSETS.get(key)
    if a is None:
        dtype = np.uint8 if kh * kw + first <= 255 else np.int32
        a = _OFFSETS[key] = xp.asarray(
            np.arange(first, first + kh * kw, dtype=dtype).reshape(kh, kw))
    return a


def _gpu_max_pool(xp, x, kernel, stride, pads, dilation, oh, ow):
    """max_pool2d in three kernels (plus two to pad): a max over the window view, a
    fused key per window entry, and its argmax.

    The key folds PyTorch's NaN rule into the same pass: 1 where the entry equals the
    window's maximum, and offset + 2 where it is NaN (a window with a NaN has the NaN
    as its maximum, and no entry equals it). Its argmax, which returns the first of
    equal keys, is the first maximum, or the last NaN.
    """
    n, c = x.shape[:2]
    win = _window_view(pad_images(x, pads, -xp.inf), kernel, stride, dilation, oh, ow)
    y = win.max(axis=(2, 3))
    inside = _inside_on(xp, x.shape[2:], pads)
    inside = 1 if inside is None else _window_view(inside, kernel, stride, dilation, oh, ow)
    key = fused(xp, _gpu_max_key)(win, y[:, :, None, None], inside,
                                  _offsets_on(xp, kernel, 2)[:, :, None, None])
    return y, key.reshape(n, c, -1, oh, ow).argmax(axis=2)


def _gpu_max_key(xp, v, vmax, inside, rank):
    """1 where an entry inside the image equals the window's maximum (padding never
    counts: a window of -inf pixels ties with it), offset + 2 where it is NaN."""
    return (v == vmax) * inside + xp.isnan(v) * rank


_INSIDE = {}


def _inside_on(xp, hw, pads):
    """1 on the image, 0 on its padding: a (1, 1, Hp, Wp) device array made once per
    device and geometry; None without padding."""
    if not any(pads):
        return None
    device = None if xp is np else xp.cuda.runtime.getDevice()
    key = (xp.__name__, device, tuple(hw), tuple(pads))
    a = _INSIDE.get(key)
    if a is None:
        top, bottom, left, right = pads
        mask = np.zeros((1, 1, hw[0] + top + bottom, hw[1] + left + right), dtype=np.uint8)
        mask[:, :, top:top + hw[0], left:left + hw[1]] = 1
        a = _INSIDE[key] = xp.asarray(mask)
    return a


def _gpu_route(xp, gy, idx, offset):
    """Each window's gradient at the offset idx recorded, 0 at the others."""
    return (idx == offset) * gy


def _gpu_max_pool_backward(xp, gy, idx, x_shape, kernel, stride, pads, dilation):
    """One fused kernel spreads gy over the window entries; they are dL/dx itself when
    the windows tile the image, are stored by one strided copy when they do not
    overlap, and are folded by ``col2im_gather`` when they do."""
    n, c, h, w = x_shape
    oh, ow = gy.shape[2:]
    route, offsets = fused(xp, _gpu_route), _offsets_on(xp, kernel)
    if _tiles(x_shape, (oh, ow), kernel, stride, pads, dilation):
        # entries in image order, (N, C, oh, kh, ow, kw), are (N, C, H, W)
        return route(gy[:, :, :, None, :, None], idx[:, :, :, None, :, None],
                     offsets[:, None, :]).reshape(x_shape)
    g = route(gy[:, :, None, None], idx[:, :, None, None], offsets[:, :, None, None])
    if _disjoint(kernel, stride, dilation):
        return _gpu_store_windows(xp, g, x_shape, kernel, stride, pads, dilation)
    gx = col2im_gather(g.reshape((n * c,) + g.shape[2:]), h, w, *stride, *dilation, pads)
    return gx.reshape(x_shape)


def _gpu_store_windows(xp, g, x_shape, kernel, stride, pads, dilation):
    """dL/dx from the entries g (N, C, kh, kw, oh, ow) of windows that do not overlap:
    each pixel is in at most one window, so one strided copy places them all."""
    n, c, h, w = x_shape
    oh, ow = g.shape[4:]
    gimg = xp.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]), dtype=g.dtype)
    _window_view(gimg, kernel, stride, dilation, oh, ow)[...] = g
    if any(pads):  # gimg was a padded buffer: its centre
        return xp.ascontiguousarray(gimg[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w])
    return gimg


def _gpu_avg_pool_backward(xp, gy, x_shape, kernel, stride, pads, divisor=None):
    """As the max's: gy / (kh*kw), or gy / divisor, at every entry of its window."""
    n, c, h, w = x_shape
    oh, ow = gy.shape[2:]
    kh, kw = kernel
    scale = gy.dtype.type(1.0 / (kh * kw))
    if divisor is not None:
        gy, scale = gy / divisor, gy.dtype.type(1.0)
    if _tiles(x_shape, (oh, ow), kernel, stride, pads, (1, 1)):
        g = xp.broadcast_to(gy[:, :, :, None, :, None], (n, c, oh, kh, ow, kw))
        return xp.multiply(g, scale).reshape(x_shape)
    if _disjoint(kernel, stride, (1, 1)):
        g = xp.broadcast_to(gy[:, :, None, None], (n, c, kh, kw, oh, ow))
        return _gpu_store_windows(xp, g * scale, x_shape, kernel, stride, pads, (1, 1))
    gx = col2im_gather(gy.reshape(n * c, oh, ow), h, w, *stride, 1, 1, pads, kernel=kernel,
                       scale=scale)
    return gx.reshape(x_shape)


def adaptive_bins(size, out):
    """PyTorch's adaptive pooling bins: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_avg_axis(x, out, axis):
    xp = get_array_module(x)
    bins = adaptive_bins(x.shape[axis], out)
    parts = [x.take(xp.arange(a, b), axis=axis).mean(axis=axis, keepdims=True) for a, b in bins]
    return xp.concatenate(parts, axis=axis)


def adaptive_avg_pool2d(x, output_size):
    """Fast version of :func:`scratchnet.teach.adaptive_avg_pool2d_forward` (read that first).

    x: (N, C, H, W) -> (N, C, oh, ow). A bin is a rectangle, so its mean is
    the mean over rows of the mean over columns: pool H, then W. None in output_size
    keeps that axis's size (PyTorch's rule)."""
    oh, ow = (x.shape[2 + a] if o is None else o for a, o in enumerate(output_size))
    if (oh, ow) == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True)
    return _adaptive_avg_axis(_adaptive_avg_axis(x, oh, 2), ow, 3)


def _adaptive_avg_axis_backward(gy, size, axis):
    xp = get_array_module(gy)
    shape = list(gy.shape)
    shape[axis] = size
    gx = xp.zeros(shape, dtype=gy.dtype)
    index = [slice(None)] * gy.ndim
    for i, (a, b) in enumerate(adaptive_bins(size, gy.shape[axis])):
        index[axis] = slice(a, b)
        g = gy.take(xp.arange(i, i + 1), axis=axis)
        gx[tuple(index)] += g * g.dtype.type(1.0 / (b - a))
    return gx


def adaptive_avg_pool2d_backward(gy, x_shape):
    """Fast version of :func:`scratchnet.teach.adaptive_avg_pool2d_backward` (read that first)."""
    n, c, h, w = x_shape
    if gy.shape[2:] == (1, 1):
        xp = get_array_module(gy)
        scale = gy.dtype.type(1.0 / (h * w))
        return xp.broadcast_to(gy * scale, x_shape).copy()
    g = _adaptive_avg_axis_backward(gy, w, 3)
    return _adaptive_avg_axis_backward(g, h, 2)
