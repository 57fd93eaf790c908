"""im2col / col2im: unfold image patches into columns and fold them back.

The column buffer has shape ``(C, kh, kw, N, oh, ow)``:
``col[c, i, j, n, y, x] = x_pad[n, c, y*sh + i*dh, x*sw + j*dw]``.
Read as a matrix it is (C*kh*kw, N*oh*ow), so a convolution is ONE matrix
product with W.reshape(O, C*kh*kw) for a whole batch (or a chunk of it), not N
small ones (Chainer's (N, C, kh, kw, oh, ow) layout needs a batched product;
measured here 1.5-2x slower for ResNet's 3x3 layers, forward and backward).

Both directions read and write the padded image in the layout (C, N, Hp, Wp)
(``pad_channels_first``): for each of the ``kh*kw`` kernel offsets, one strided
slice copy covers every image and channel, so the Python loop is short and the
copies are large, and their rows are contiguous in memory (measured up to 1.5x
faster than slicing (N, C, H, W)). col2im is the mirror loop with ``+=``; no
``np.add.at`` (measured several times slower).

``im2col_chunk`` / ``col2im_chunk`` do this for the images ``a..b-1`` only:
the convolution runs chunk by chunk (``parallel_for``) so that a chunk's
columns stay in the CPU cache. ``im2col`` / ``col2im`` are the whole-batch
versions (the tests check them against the book's loops).
"""
import numbers

from ..backend import get_array_module
from .workspace import reuse


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def pair(v, name="value"):
    """``v`` as an (h, w) tuple of ints; an int stands for both."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected an int or an (h, w) pair, got {v!r}")
        h, w = v
    else:
        h = w = v
    # int() would silently turn 2.5 into 2; PyTorch refuses non-integers too.
    if not (_is_int(h) and _is_int(w)):
        raise TypeError(f"{name}: expected an int or an (h, w) pair of ints, got {v!r}")
    return int(h), int(w)


def out_size(size, k, s, p_lo, p_hi, d=1):
    """Output length along one axis (floor mode), as PyTorch computes it."""
    return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1


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


def pad_channels_first(x, pads, pad_value=0.0, out=None):
    """x: (N, C, H, W) -> (C, N, H + top + bottom, W + left + right), padded.

    ``out``, when it has that shape and dtype, is filled and returned instead of
    a new array (a layer keeps its buffer from one step to the next: fresh
    memory costs page faults, see ``workspace``).
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    img = reuse(out, (c, n, h + top + bottom, w + left + right), x.dtype, xp)
    if top or bottom or left or right:
        img[...] = pad_value
    img[:, :, top:top + h, left:left + w] = x.transpose(1, 0, 2, 3)
    return img


def _offsets(kh, kw, sh, sw, dh, dw, oh, ow):
    """(i, j, rows, cols): the slice of the padded image that kernel offset (i, j) reads."""
    for i in range(kh):
        for j in range(kw):
            yield (i, j, slice(i * dh, i * dh + sh * oh, sh),
                   slice(j * dw, j * dw + sw * ow, sw))


def patch_view(img, kh, kw, sh, sw, dh, dw, oh, ow):
    """A (C, kh, kw, N, oh, ow) *view* of ``img`` (C, N, Hp, Wp), no copy:
    ``view[c, i, j, n, y, x] = img[c, n, y*sh + i*dh, x*sw + j*dw]``.

    Only the strides are new: moving one kernel row (i) moves dh image rows,
    one output row (y) moves sh image rows, and so on. Read-only: several view
    entries share one pixel.
    """
    xp = get_array_module(img)
    c, n = img.shape[:2]
    s_c, s_n, s_y, s_x = img.strides
    return xp.lib.stride_tricks.as_strided(
        img, (c, kh, kw, n, oh, ow), (s_c, s_y * dh, s_x * dw, s_n, s_y * sh, s_x * sw))


def im2col_chunk(img, a, b, kh, kw, sh, sw, dh, dw, oh, ow, col):
    """Fill ``col`` (C, kh, kw, b - a, oh, ow) from images a..b-1 of ``img`` (C, N, Hp, Wp).

    One copy of :func:`patch_view`: the same work as a loop over the kh*kw
    offsets, each a strided slice copy, but one call (measured 1.0-1.5x faster,
    and one release of the GIL for ``parallel_for``'s threads instead of kh*kw).
    """
    col[...] = patch_view(img[:, a:b], kh, kw, sh, sw, dh, dw, oh, ow)
    return col


def col2im_chunk(col, gimg, sh, sw, dh, dw):
    """Add every entry of ``col`` (C, kh, kw, m, oh, ow) back into ``gimg`` (C, m, Hp, Wp)."""
    kh, kw, _, oh, ow = col.shape[1:]
    for i, j, rows, cols in _offsets(kh, kw, sh, sw, dh, dw, oh, ow):
        gimg[:, :, rows, cols] += col[:, i, j]
    return gimg


def im2col(x, kh, kw, sh, sw, pads, dh=1, dw=1, pad_value=0.0):
    """x: (N, C, H, W) -> col: (C, kh, kw, N, oh, ow), a new array.

    ``pads`` is (top, bottom, left, right); ``pad_value`` is 0 for
    convolution and -inf for max pooling.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    oh = out_size(h, kh, sh, pads[0], pads[1], dh)
    ow = out_size(w, kw, sw, pads[2], pads[3], dw)
    img = pad_channels_first(x, pads, pad_value)
    col = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    return im2col_chunk(img, 0, n, kh, kw, sh, sw, dh, dw, oh, ow, col)


def col2im(col, h, w, sh, sw, pads, dh=1, dw=1):
    """col: (C, kh, kw, N, oh, ow) -> (N, C, H, W), a new array, summing overlapping patches.

    The adjoint of :func:`im2col`: every column entry is added back to the
    pixel it was copied from; entries that came from padding are dropped.
    """
    xp = get_array_module(col)
    c, n = col.shape[0], col.shape[3]
    top, bottom, left, right = pads
    gimg = xp.zeros((c, n, h + top + bottom, w + left + right), dtype=col.dtype)
    col2im_chunk(col, gimg, sh, sw, dh, dw)
    return xp.ascontiguousarray(gimg[:, :, top:top + h, left:left + w].transpose(1, 0, 2, 3))
