"""Convolution (cross-correlation, as in deep learning) through im2col.

Forward:  col = im2col(x);  y[n] = W2 @ col[n] + b   with W2 = W.reshape(O, C*kh*kw)
Backward: gW = sum_n gy[n] @ col[n].T;  gb = sum gy;  gx = col2im(W2.T @ gy[n])

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
    col = im2col(x, kh, kw, sh, sw, pads, dh, dw)
    n, _, _, _, oh, ow = col.shape
    y = W.reshape(o, -1) @ col.reshape(n, c * kh * kw, oh * ow)
    y = y.reshape(n, o, oh, ow)
    if b is not None:
        y += b.reshape(1, o, 1, 1)
    return y, col


def conv2d_backward(gy, col, W, x_shape, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                    need_gx=True, need_gb=True):
    """Returns (gx, gW, gb); gx is None when not needed (a network's first layer)."""
    o, c, kh, kw = W.shape
    n, _, _, _, oh, ow = col.shape
    gy3 = gy.reshape(n, o, oh * ow)
    col3 = col.reshape(n, c * kh * kw, oh * ow)
    gW = (gy3 @ col3.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)
    gb = gy.sum(axis=(0, 2, 3)) if need_gb else None
    gx = None
    if need_gx:
        # A contiguous W.T: batched matmul with a transposed operand is 2x slower.
        W2t = get_array_module(W).ascontiguousarray(W.reshape(o, -1).T)
        gcol = (W2t @ gy3).reshape(col.shape)
        gx = col2im(gcol, x_shape[2], x_shape[3], *stride, pads, *dilation)
    return gx, gW, gb
