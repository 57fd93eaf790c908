"""im2col / col2im: the column layout, torch's unfold / fold, adjointness, dtype, pair()."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import dev
from scratchnet.gradcheck import numerical_gradient, rel_error
from scratchnet.ops import col2im, im2col, out_size, pair
from scratchnet.ops.im2col import pool_stride


# (kh, kw), (sh, sw), (top, bottom, left, right), (dh, dw)
GEOMETRIES = [
    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((2, 2), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((5, 5), (3, 3), (2, 2, 2, 2), (1, 1)),
    ((2, 3), (1, 2), (1, 1, 0, 0), (2, 1)),
    ((3, 1), (3, 1), (0, 0, 2, 2), (2, 2)),
    ((3, 2), (2, 3), (2, 2, 1, 1), (1, 2)),
    # Asymmetric, as padding='same' makes for an even kernel: the extra row at the end.
    ((2, 4), (1, 1), (0, 1, 1, 2), (1, 1)),
    ((4, 3), (1, 1), (1, 2, 0, 1), (1, 1)),
]
# (N, C, H, W): odd and even sizes, batch and channels 1 and more.
SHAPES = [(1, 1, 7, 8), (2, 3, 8, 7)]


def loop_im2col(x, kh, kw, sh, sw, pads, dh, dw):
    """The layout's definition, one element at a time."""
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    img = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    oh = out_size(h, kh, sh, top, bottom, dh)
    ow = out_size(w, kw, sw, left, right, dw)
    col = np.zeros((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i, j, y, z in itertools.product(range(kh), range(kw), range(oh), range(ow)):
        col[:, i, j, :, y, z] = img[:, :, y * sh + i * dh, z * sw + j * dw].T
    return col


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kernel, stride, pads, dilation", GEOMETRIES, ids=str)
def test_im2col_matches_definition(device, shape, kernel, stride, pads, dilation):
    x = np.random.default_rng(0).standard_normal(shape)
    col = im2col(sn.to_device(x, device), *kernel, *stride, pads, *dilation)
    expected = loop_im2col(x, *kernel, *stride, pads, *dilation)
    assert col.shape == expected.shape
    np.testing.assert_array_equal(sn.to_numpy(col), expected)


@pytest.mark.parametrize("kernel, stride, pads, dilation",
                         [g for g in GEOMETRIES if g[2][0::2] == g[2][1::2]], ids=str)
def test_im2col_and_col2im_match_torch_unfold_and_fold(device, kernel, stride, pads, dilation):
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 7))
    kw = dict(kernel_size=kernel, dilation=dilation, padding=pads[0::2], stride=stride)
    col = sn.to_numpy(im2col(dev(x), *kernel, *stride, pads, *dilation))
    c, kh, kw_, n, oh, ow = col.shape
    # torch's unfold is (N, C*kh*kw, oh*ow); ours keeps the batch inside the columns.
    as_torch = col.transpose(3, 0, 1, 2, 4, 5).reshape(n, c * kh * kw_, oh * ow)
    unfolded = F.unfold(torch.from_numpy(x), **kw).numpy()
    np.testing.assert_array_equal(as_torch, unfolded)
    u_rand = np.random.default_rng(2).standard_normal(unfolded.shape)
    folded = F.fold(torch.from_numpy(u_rand), (8, 7), **kw).numpy()
    c_rand = u_rand.reshape(n, c, kh, kw_, oh, ow).transpose(1, 2, 3, 0, 4, 5)
    img = col2im(dev(c_rand), 8, 7, *stride, pads, *dilation)
    assert sn.get_array_module(img) is sn.backend.device_module()
    assert rel_error(img, folded) <= 1e-14


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kernel, stride, pads, dilation", GEOMETRIES, ids=str)
def test_col2im_is_the_adjoint_of_im2col(device, shape, kernel, stride, pads, dilation):
    # <im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col's backward.
    rs = np.random.default_rng(3)
    x = rs.standard_normal(shape)
    col = sn.to_numpy(im2col(sn.to_device(x, device), *kernel, *stride, pads, *dilation))
    c = rs.standard_normal(col.shape)
    back = sn.to_numpy(col2im(sn.to_device(c, device), *shape[2:], *stride, pads, *dilation))
    assert back.shape == shape
    lhs, rhs = float((col * c).sum()), float((x * back).sum())
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0)


@pytest.mark.parametrize("kernel, stride, pads, dilation", GEOMETRIES[1:6], ids=str)
def test_col2im_is_im2col_gradient_by_finite_differences(device, kernel, stride, pads,
                                                         dilation):
    rs = np.random.default_rng(4)
    x = dev(rs.standard_normal((2, 2, 7, 6)))
    gc = dev(rs.standard_normal(im2col(x, *kernel, *stride, pads, *dilation).shape))
    num = numerical_gradient(lambda: (im2col(x, *kernel, *stride, pads, *dilation) * gc).sum(), x)
    assert rel_error(col2im(gc, 7, 6, *stride, pads, *dilation), num) <= 1e-8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(device, dtype):
    x = sn.to_device(np.ones((1, 2, 5, 6), dtype=dtype), device)
    col = im2col(x, 3, 2, 2, 1, (1, 1, 0, 0), 1, 2)
    assert col.dtype == dtype
    assert col2im(col, 5, 6, 2, 1, (1, 1, 0, 0), 1, 2).dtype == dtype


@pytest.mark.parametrize("size, k, s, p_lo, p_hi, d", [
    (8, 3, 1, 1, 1, 1), (8, 3, 2, 1, 1, 1), (7, 2, 2, 0, 0, 1), (10, 3, 3, 0, 0, 1),
    (10, 5, 4, 1, 1, 1), (9, 3, 1, 2, 2, 2), (5, 5, 1, 0, 0, 1), (6, 2, 1, 0, 1, 3)])
def test_out_size_is_floor_mode(size, k, s, p_lo, p_hi, d):
    x = torch.zeros(1, 1, 1, size)
    x = F.pad(x, (p_lo, p_hi))
    expected = F.conv2d(x, torch.zeros(1, 1, 1, k), stride=(1, s), dilation=(1, d)).shape[-1]
    assert out_size(size, k, s, p_lo, p_hi, d) == expected


def test_pair():
    assert pair(3) == (3, 3)
    assert pair((2, 5)) == (2, 5)
    assert pair([1, 4]) == (1, 4)
    assert pair(np.int64(2)) == (2, 2)
    # PyTorch's 1-tuple (or list) spelling of an int, where it takes one
    assert pair((3,)) == pair([3]) == (3, 3)
    with pytest.raises(ValueError, match=r"kernel_size: expected an int or an \(h, w\) pair, "
                                         r"got \(3,\)"):
        pair((3,), "kernel_size", single=False)


def test_pool_stride():
    """None, or (as PyTorch reads it) an empty stride, is the kernel size."""
    assert pool_stride(None, (2, 3)) == pool_stride((), (2, 3)) == pool_stride([], (2, 3)) \
        == (2, 3)
    assert pool_stride(1, (2, 3)) == pool_stride((1,), (2, 3)) == (1, 1)
    assert pool_stride((1, 2), (2, 3)) == (1, 2)


@pytest.mark.parametrize("value, error, match", [
    ((1, 2, 3), ValueError,
     r"Conv2d stride: expected an int or an \(h, w\) pair, got \(1, 2, 3\)"),
    (2.5, TypeError, r"Conv2d stride: expected an int or an \(h, w\) pair of ints, got 2\.5"),
    ("2", TypeError, r"Conv2d stride: expected .* ints, got '2'"),
    ((2, None), TypeError, r"Conv2d stride: expected .* ints, got \(2, None\)"),
    ((), ValueError, r"Conv2d stride: expected an int or an \(h, w\) pair, got \(\)"),
    ((1.5,), TypeError, r"Conv2d stride: expected .* ints, got \(1\.5,\)"),
    (True, TypeError, r"Conv2d stride: expected .* ints, got True"),
])
def test_pair_rejects(value, error, match):
    with pytest.raises(error, match=match):
        pair(value, "Conv2d stride")
