"""ops.conv: the im2col convolution against the naive loops, torch, and finite differences."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import dev
from scratchnet.gradcheck import numerical_gradient, rel_error
from scratchnet.ops import conv2d, conv2d_backward, conv_pads, out_size, pair
from scratchnet.reference import conv2d_naive


def naive_grid():
    """kernel x stride x padding x dilation, minus kernels larger than the padded input."""
    kernels = [1, 2, 3, 5, (2, 3)]
    strides = [1, 2, 3, (2, 1)]
    paddings = [0, 1, 2, (1, 0)]
    for k, s, p, d in itertools.product(kernels, strides, paddings, [1, 2]):
        (kh, kw), (ph, pw) = pair(k), pair(p)
        size = (7, 8) if (kh + kw + ph + d) % 2 else (8, 7)
        if d * (kh - 1) < size[0] + 2 * ph and d * (kw - 1) < size[1] + 2 * pw:
            yield size, k, s, p, d


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", list(naive_grid()), ids=str)
def test_conv2d_matches_naive_reference(device, size, kernel, stride, padding, dilation):
    rs = np.random.default_rng(0)
    x = rs.standard_normal((2, 2) + size)
    W = rs.standard_normal((3, 2) + pair(kernel))
    b = rs.standard_normal(3)
    ph, pw = pair(padding)
    y, _ = conv2d(dev(x), dev(W), dev(b), pair(stride), (ph, ph, pw, pw), pair(dilation))
    expected = conv2d_naive(x, W, b, stride, padding, dilation)
    assert y.shape == expected.shape
    np.testing.assert_allclose(sn.to_numpy(y), expected, rtol=1e-12, atol=1e-12)


# torch warns that an even kernel makes it copy the input; that is its business.
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, dilation", [(2, 1), ((2, 4), (1, 1)), ((3, 4), (2, 1)),
                                              (3, 2), (1, 1)], ids=str)
def test_same_padding_matches_torch(device, dtype, kernel, dilation):
    # An odd total is split with the extra row / column at the end, as PyTorch does.
    rs = np.random.default_rng(1)
    x = rs.standard_normal((2, 3, 7, 8)).astype(dtype)
    W = rs.standard_normal((2, 3) + pair(kernel)).astype(dtype)
    pads = conv_pads("same", *pair(kernel), *pair(dilation))
    y, _ = conv2d(sn.to_device(x, device), sn.to_device(W, device), None, (1, 1), pads,
                  pair(dilation))
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(W), padding="same",
                        dilation=dilation)
    assert y.shape == (2, 2, 7, 8) and y.dtype == dtype
    assert rel_error(y, expected.numpy()) <= (1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("padding, kernel, dilation, expected", [
    ("valid", (3, 3), (1, 1), (0, 0, 0, 0)),
    ("same", (3, 3), (1, 1), (1, 1, 1, 1)),
    ("same", (5, 1), (1, 1), (2, 2, 0, 0)),
    ("same", (2, 4), (1, 1), (0, 1, 1, 2)),
    ("same", (3, 2), (2, 3), (2, 2, 1, 2)),
    (1, (3, 3), (1, 1), (1, 1, 1, 1)),
    ((2, 0), (5, 3), (1, 1), (2, 2, 0, 0)),
])
def test_conv_pads(padding, kernel, dilation, expected):
    assert conv_pads(padding, *kernel, *dilation) == expected


def test_conv_pads_rejects_unknown_string():
    with pytest.raises(ValueError, match=r"padding: expected an int, an \(h, w\) pair, "
                                         r"'valid' or 'same', got 'full'"):
        conv_pads("full", 3, 3)


# (N, C, O, H, W), kernel, stride, (top, bottom, left, right), dilation
FD_CASES = [
    ((1, 1, 1, 5, 5), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((2, 2, 3, 6, 7), (2, 2), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((1, 3, 2, 7, 6), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((2, 1, 2, 8, 8), (5, 5), (3, 3), (2, 2, 2, 2), (1, 1)),
    ((1, 2, 2, 7, 8), (2, 3), (1, 2), (1, 1, 0, 0), (2, 1)),
    ((2, 2, 1, 5, 6), (3, 1), (3, 1), (0, 0, 2, 2), (2, 2)),
    ((1, 1, 2, 6, 5), (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),
    ((2, 2, 2, 5, 6), (2, 4), (1, 1), (0, 1, 1, 2), (1, 1)),
]


@pytest.mark.parametrize("shape, kernel, stride, pads, dilation", FD_CASES, ids=str)
def test_conv2d_backward_by_finite_differences(device, shape, kernel, stride, pads, dilation):
    n, c, o, h, w = shape
    rs = np.random.default_rng(2)
    x = dev(rs.standard_normal((n, c, h, w)))
    W = dev(rs.standard_normal((o, c) + kernel))
    b = dev(rs.standard_normal(o))
    y, col = conv2d(x, W, b, stride, pads, dilation)
    gy = dev(rs.standard_normal(y.shape))
    gx, gW, gb = conv2d_backward(gy, col, W, x.shape, stride, pads, dilation)

    def loss():
        return (conv2d(x, W, b, stride, pads, dilation)[0] * gy).sum()

    for name, arr, grad in (("x", x, gx), ("W", W, gW), ("b", b, gb)):
        err = rel_error(grad, numerical_gradient(loss, arr))
        assert err <= 1e-7, f"{name}: {err:.2e}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride, pads, dilation", FD_CASES[1::2], ids=str)
def test_conv2d_backward_matches_torch_autograd(device, dtype, shape, kernel, stride, pads,
                                                dilation):
    n, c, o, h, w = shape
    rs = np.random.default_rng(3)
    x, W, b = (rs.standard_normal(s).astype(dtype) for s in ((n, c, h, w), (o, c) + kernel, (o,)))
    y, col = conv2d(*(sn.to_device(a, device) for a in (x, W, b)), stride, pads, dilation)
    gy = rs.standard_normal(y.shape).astype(dtype)
    gx, gW, gb = conv2d_backward(sn.to_device(gy, device), col, sn.to_device(W, device),
                                 x.shape, stride, pads, dilation)
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    yt = F.conv2d(F.pad(xt, (pads[2], pads[3], pads[0], pads[1])), Wt, bt, stride,
                  dilation=dilation)
    yt.backward(torch.from_numpy(gy))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for ours, theirs in ((y, yt), (gx, xt.grad), (gW, Wt.grad), (gb, bt.grad)):
        assert ours.dtype == dtype
        assert rel_error(ours, theirs.detach().numpy()) <= tol


def test_backward_skips_what_is_not_needed(device):
    rs = np.random.default_rng(4)
    x, W = dev(rs.standard_normal((2, 2, 5, 5))), dev(rs.standard_normal((3, 2, 3, 3)))
    y, col = conv2d(x, W, None)
    gx, gW, gb = conv2d_backward(sn.get_array_module(y).ones_like(y), col, W, x.shape,
                                 need_gx=False, need_gb=False)
    assert gx is None and gb is None and gW.shape == W.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(device, dtype):
    rs = np.random.default_rng(5)
    x, W, b = (sn.to_device(rs.standard_normal(s).astype(dtype), device)
               for s in ((2, 3, 6, 5), (4, 3, 3, 2), (4,)))
    y, col = conv2d(x, W, b, (2, 1), (1, 1, 0, 0), (1, 2))
    assert y.dtype == col.dtype == dtype
    assert y.shape == (2, 4, out_size(6, 3, 2, 1, 1), out_size(5, 2, 1, 0, 0, 2))
    gx, gW, gb = conv2d_backward(sn.to_device(np.ones(y.shape, dtype), device), col, W,
                                 x.shape, (2, 1), (1, 1, 0, 0), (1, 2))
    assert gx.dtype == gW.dtype == gb.dtype == dtype


# Grouped convolution: (N, C, O, groups, H, W), kernel, stride, pads, dilation.
GROUPED = [
    ((2, 4, 6, 2, 7, 8), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((2, 4, 4, 4, 7, 8), (3, 2), (1, 1), (2, 2, 1, 1), (2, 1)),  # depthwise
    ((3, 6, 3, 3, 6, 5), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((2, 8, 8, 4, 9, 9), (5, 3), (3, 2), (2, 2, 0, 0), (1, 2)),
    # 2 MiB of columns and more: several chunks on the CPU, dL/dW summed over them
    ((64, 16, 16, 8, 16, 16), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kernel, stride, pads, dilation", GROUPED, ids=str)
def test_grouped_conv2d_matches_torch(device, dtype, shape, kernel, stride, pads, dilation):
    from scratchnet.ops.conv import conv2d_columns
    n, c, o, g, h, w = shape
    rs = np.random.default_rng(2)
    x = rs.standard_normal((n, c, h, w)).astype(dtype)
    W = rs.standard_normal((o, c // g) + kernel).astype(dtype)
    b = rs.standard_normal(o).astype(dtype)
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    yt = F.conv2d(xt, Wt, bt, stride, pads[::2], dilation, groups=g)
    gy = rs.standard_normal(yt.shape).astype(dtype)
    yt.backward(torch.from_numpy(gy))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    y, cols = conv2d(dev(x), dev(W), dev(b), stride, pads, dilation, groups=g)
    assert y.dtype == dtype and rel_error(y, yt.detach().numpy()) <= tol
    again = conv2d_columns(dev(x), W.shape, stride, pads, dilation, groups=g)
    np.testing.assert_array_equal(sn.to_numpy(again), sn.to_numpy(cols))
    y_eval, none = conv2d(dev(x), dev(W), dev(b), stride, pads, dilation, keep=False, groups=g)
    assert none is None
    np.testing.assert_array_equal(sn.to_numpy(y_eval), sn.to_numpy(y))
    gx, gW, gb = conv2d_backward(dev(gy), cols, dev(W), x.shape, stride, pads, dilation,
                                 consume=True, groups=g)
    for got, want in ((gx, xt.grad), (gW, Wt.grad), (gb, bt.grad)):
        assert got.dtype == dtype and rel_error(got, want.numpy()) <= tol
    gx, gW2, gb = conv2d_backward(dev(gy), again, dev(W), x.shape, stride, pads, dilation,
                                  need_gx=False, need_gb=False, groups=g)
    assert gx is None and gb is None
    np.testing.assert_array_equal(sn.to_numpy(gW2), sn.to_numpy(gW))


def test_groups_one_is_the_ungrouped_path(device):
    """groups=1 takes the plain path: the same bits as a call without it."""
    rs = np.random.default_rng(3)
    x, W, b = dev(rs.standard_normal((2, 3, 7, 8))), dev(rs.standard_normal((4, 3, 3, 3))), \
        dev(rs.standard_normal(4))
    args = ((2, 1), (1, 1, 0, 0), (1, 2))
    y1, c1 = conv2d(x, W, b, *args)
    y2, c2 = conv2d(x, W, b, *args, groups=1)
    np.testing.assert_array_equal(sn.to_numpy(y1), sn.to_numpy(y2))
    gy = dev(rs.standard_normal(y1.shape))
    for a, bb in zip(conv2d_backward(gy, c1, W, x.shape, *args),
                     conv2d_backward(gy, c2, W, x.shape, *args, groups=1)):
        np.testing.assert_array_equal(sn.to_numpy(a), sn.to_numpy(bb))
