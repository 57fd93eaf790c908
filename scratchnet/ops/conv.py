"""Convolution (cross-correlation, as in deep learning) through im2col.

Forward:  col = im2col(x) as a (C*kh*kw, N*oh*ow) matrix;  y = W2 @ col + b,
          with W2 = W.reshape(O, C*kh*kw), then (O, N, oh, ow) -> (N, O, oh, ow)
Backward: gy2 = gy as (O, N*oh*ow);  gW = gy2 @ col.T;  gb = sum gy;
          gx = col2im(W2.T @ gy2)
Each is one BLAS product for the whole batch (``dot``: NumPy's ``@`` skips BLAS
for a transposed operand).

Shapes: x (N, C, H, W), W (O, C, kh, kw), b (O,), y (N, O, oh, ow).
``pads`` is always the resolved (top, bottom, left, right); :func:`conv_pads`
turns PyTorch's ``padding`` argument (int, (h, w), "valid", "same") into it.
"""
from ..backend import get_array_module
from .im2col import col2im, im2col, pair


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


def conv2d(x, W, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """Returns y: (N, O, oh, ow) and the column buffer backward needs."""
    o, c, kh, kw = W.shape
    sh, sw = stride
    dh, dw = dilation
    xp = get_array_module(x)
    col = im2col(x, kh, kw, sh, sw, pads, dh, dw)
    n, oh, ow = col.shape[3:]
    y = W.reshape(o, -1).dot(col.reshape(c * kh * kw, -1))
    y = xp.ascontiguousarray(y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3))
    if b is not None:
        y += b.reshape(1, o, 1, 1)
    return y, col


def conv2d_backward(gy, col, W, x_shape, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                    need_gx=True, need_gb=True):
    """Returns (gx, gW, gb); gx is None when not needed (a network's first layer)."""
    xp = get_array_module(gy)
    o = W.shape[0]
    gy2 = xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(o, -1)
    col2 = col.reshape(-1, gy2.shape[1])
    gW = gy2.dot(col2.T).reshape(W.shape)
    gb = gy2.sum(axis=1) if need_gb else None
    gx = None
    if need_gx:
        gcol = W.reshape(o, -1).T.dot(gy2).reshape(col.shape)
        gx = col2im(gcol, x_shape[2], x_shape[3], *stride, pads, *dilation)
    return gx, gW, gb
