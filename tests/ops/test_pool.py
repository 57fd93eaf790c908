"""ops.pool: max, average and adaptive average pooling against the naive loops, torch and
finite differences."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import dev, distinct

import scratchnet as sn
from scratchnet.gradcheck import numerical_gradient, rel_error
from scratchnet.ops import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_bins,
                            avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward,
                            pair)
from scratchnet.reference import pool2d_naive


def naive_grid():
    """kernel x stride x padding, minus what PyTorch refuses (padding over half the kernel)."""
    for k, s, p in itertools.product([1, 2, 3, 5, (2, 3)], [1, 2, 3, (2, 1)], [0, 1, 2, (1, 0)]):
        (kh, kw), (ph, pw) = pair(k), pair(p)
        if 2 * ph <= kh and 2 * pw <= kw:
            yield ((7, 8) if (kh + ph) % 2 else (8, 7)), k, s, p


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("size, kernel, stride, padding", list(naive_grid()), ids=str)
def test_pool_matches_naive_reference(device, mode, size, kernel, stride, padding):
    x = distinct((2, 3) + size)
    ph, pw = pair(padding)
    pads = (ph, ph, pw, pw)
    if mode == "max":
        y, _ = max_pool2d(dev(x), pair(kernel), pair(stride), pads)
    else:
        y = avg_pool2d(dev(x), pair(kernel), pair(stride), pads)
    expected = pool2d_naive(x, kernel, stride, padding, mode)
    assert y.shape == expected.shape
    np.testing.assert_allclose(sn.to_numpy(y), expected, rtol=1e-12, atol=1e-15)


def dilated_max_naive(x, kernel, stride, padding, dilation):
    """Max pooling with dilation, one window at a time (pool2d_naive has no dilation)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel, stride, padding, dilation))
    img = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    oh, ow = (img.shape[2] - eh) // sh + 1, (img.shape[3] - ew) // sw + 1
    y = np.empty(x.shape[:2] + (oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        window = img[:, :, i * sh:i * sh + eh:dh, j * sw:j * sw + ew:dw]
        y[:, :, i, j] = window.max(axis=(2, 3))
    return y


DILATED = [(2, 1, 0, 2), (3, 2, 1, 2), (2, 1, 1, 2), ((2, 3), (1, 2), (1, 1), (2, 1)),
           ((3, 2), 2, (1, 0), (1, 3)), (3, 1, 1, 1)]


@pytest.mark.parametrize("kernel, stride, padding, dilation", DILATED, ids=str)
def test_dilated_max_pool_matches_loops_and_torch(device, kernel, stride, padding, dilation):
    x = distinct((2, 2, 8, 7))
    ph, pw = pair(padding)
    y, _ = max_pool2d(sn.to_device(x, device), pair(kernel), pair(stride), (ph, ph, pw, pw),
                      pair(dilation))
    np.testing.assert_array_equal(sn.to_numpy(y),
                                  dilated_max_naive(x, kernel, stride, padding, dilation))
    expected = F.max_pool2d(torch.from_numpy(x), kernel, stride, padding, dilation)
    np.testing.assert_array_equal(sn.to_numpy(y), expected.numpy())


# (N, C, H, W), kernel, stride, padding, dilation
FD_CASES = [
    ((1, 1, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 2, 6, 7), (2, 2), (2, 2), (0, 0), (1, 1)),
    ((1, 3, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 1, 8, 8), (5, 5), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 7, 8), (2, 3), (1, 2), (1, 1), (1, 1)),
    ((2, 2, 5, 6), (3, 1), (3, 1), (1, 0), (1, 1)),
    ((1, 2, 7, 7), (3, 3), (1, 1), (1, 1), (1, 1)),
]
MAX_ONLY = [((1, 2, 8, 7), (3, 2), (2, 1), (1, 1), (2, 2)),
            ((2, 1, 7, 6), (2, 2), (1, 3), (1, 0), (2, 1))]


def check_fd(f, x, grad, gy, rtol=1e-7):
    err = rel_error(grad, numerical_gradient(lambda: (f() * gy).sum(), x))
    assert err <= rtol, f"{err:.2e}"


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", FD_CASES + MAX_ONLY,
                         ids=str)
def test_max_pool_backward_by_finite_differences(device, shape, kernel, stride, padding,
                                                 dilation):
    x = dev(distinct(shape))
    pads = (padding[0], padding[0], padding[1], padding[1])
    y, idx = max_pool2d(x, kernel, stride, pads, dilation)
    gy = dev(np.random.default_rng(1).standard_normal(y.shape))
    gx = max_pool2d_backward(gy, idx, x.shape, kernel, stride, pads, dilation)
    check_fd(lambda: max_pool2d(x, kernel, stride, pads, dilation)[0], x, gx, gy)


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", FD_CASES, ids=str)
def test_avg_pool_backward_by_finite_differences(device, shape, kernel, stride, padding,
                                                 dilation):
    x = dev(np.random.default_rng(0).standard_normal(shape))
    pads = (padding[0], padding[0], padding[1], padding[1])
    y = avg_pool2d(x, kernel, stride, pads)
    gy = dev(np.random.default_rng(1).standard_normal(y.shape))
    gx = avg_pool2d_backward(gy, x.shape, kernel, stride, pads)
    check_fd(lambda: avg_pool2d(x, kernel, stride, pads), x, gx, gy)


# (H, W), output size: (1, 1), divisible, non-divisible, larger than the input.
ADAPTIVE = [((6, 6), (1, 1)), ((6, 4), (3, 2)), ((5, 5), (3, 3)), ((7, 7), (2, 3)),
            ((7, 8), (3, 5)), ((3, 2), (5, 3)), ((5, 7), (5, 7)), ((1, 1), (2, 2))]


@pytest.mark.parametrize("size, output_size", ADAPTIVE, ids=str)
def test_adaptive_avg_pool_matches_torch_and_finite_differences(device, size, output_size):
    x = np.random.default_rng(0).standard_normal((2, 2) + size)
    expected = F.adaptive_avg_pool2d(torch.from_numpy(x), output_size).numpy()
    x = dev(x)
    y = adaptive_avg_pool2d(x, output_size)
    assert y.shape == expected.shape
    assert rel_error(y, expected) <= 1e-14
    gy = dev(np.random.default_rng(1).standard_normal(y.shape))
    gx = adaptive_avg_pool2d_backward(gy, x.shape)
    check_fd(lambda: adaptive_avg_pool2d(x, output_size), x, gx, gy)


@pytest.mark.parametrize("size, out, expected", [
    (5, 3, [(0, 2), (1, 4), (3, 5)]),
    (7, 2, [(0, 4), (3, 7)]),
    (6, 3, [(0, 2), (2, 4), (4, 6)]),
    (4, 1, [(0, 4)]),
    (2, 3, [(0, 1), (0, 2), (1, 2)]),
])
def test_adaptive_bins_are_pytorchs(size, out, expected):
    assert adaptive_bins(size, out) == expected


def test_max_pool_pads_with_minus_infinity(device):
    # Zero padding would win every border window of an all-negative input.
    x = -1.0 - distinct((1, 2, 4, 4)) ** 2
    y, _ = max_pool2d(dev(x), (3, 3), (2, 2), (1, 1, 1, 1))
    y = sn.to_numpy(y)
    assert (y < 0).all()
    np.testing.assert_array_equal(y, pool2d_naive(x, 3, 2, 1, "max"))


def test_max_pool_ties_send_the_gradient_to_the_first_maximum(device):
    x = dev(np.zeros((1, 1, 4, 4)))
    y, idx = max_pool2d(x, (2, 2), (1, 1), (1, 1, 1, 1))
    gy = np.random.default_rng(0).standard_normal(y.shape)
    gx = max_pool2d_backward(dev(gy), idx, x.shape, (2, 2), (1, 1), (1, 1, 1, 1))
    xt = torch.zeros(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    F.max_pool2d(xt, 2, 1, 1).backward(torch.from_numpy(gy))
    np.testing.assert_allclose(sn.to_numpy(gx), xt.grad.numpy(), rtol=0, atol=1e-15)


def test_avg_pool_counts_padding(device):
    # count_include_pad=True: a corner window of ones padded by 1 holds 4 of 9 ones.
    y = sn.to_numpy(avg_pool2d(dev(np.ones((1, 1, 4, 4))), (3, 3), (1, 1), (1, 1, 1, 1)))
    assert y[0, 0, 0, 0] == pytest.approx(4 / 9) and y[0, 0, 1, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(device, dtype):
    x = sn.to_device(distinct((2, 3, 7, 6)).astype(dtype), device)
    y, idx = max_pool2d(x, (3, 2), (2, 1), (1, 1, 1, 1), (1, 2))
    gx = max_pool2d_backward(sn.to_device(np.ones(y.shape, dtype), device), idx, x.shape,
                             (3, 2), (2, 1), (1, 1, 1, 1), (1, 2))
    assert y.dtype == gx.dtype == dtype
    y = avg_pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1))
    gx = avg_pool2d_backward(sn.to_device(np.ones(y.shape, dtype), device), x.shape, (3, 3),
                             (2, 2), (1, 1, 1, 1))
    assert y.dtype == gx.dtype == dtype
    for output_size in ((1, 1), (3, 4)):
        y = adaptive_avg_pool2d(x, output_size)
        gx = adaptive_avg_pool2d_backward(sn.to_device(np.ones(y.shape, dtype), device),
                                          x.shape)
        assert y.dtype == gx.dtype == dtype and gx.shape == x.shape


@pytest.mark.parametrize("size, tiles", [((8, 6), True), ((9, 7), False), ((8, 7), False)])
def test_backward_writes_every_pixel_whether_or_not_the_windows_tile(device, size, tiles):
    """2x2/2 windows that tile the image skip zeroing dL/dx (every pixel is written);
    a last row or column outside every window must come back exactly 0."""
    from scratchnet.ops.pool import _tiles
    rs = np.random.default_rng(9)
    x = rs.standard_normal((3, 2) + size)
    oh, ow = size[0] // 2, size[1] // 2
    assert _tiles(x.shape, (oh, ow), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1)) == tiles
    gy = rs.standard_normal((3, 2, oh, ow))
    for _ in range(3):  # fresh (uninitialised) memory each time
        y, idx = max_pool2d(dev(x), (2, 2), (2, 2))
        gmax = sn.to_numpy(max_pool2d_backward(dev(gy), idx, x.shape, (2, 2), (2, 2)))
        gavg = sn.to_numpy(avg_pool2d_backward(dev(gy), x.shape, (2, 2), (2, 2)))
        xt = torch.tensor(x, requires_grad=True)
        torch.nn.functional.max_pool2d(xt, 2, 2).backward(torch.from_numpy(gy))
        assert np.array_equal(gmax, xt.grad.numpy())
        xt.grad = None
        torch.nn.functional.avg_pool2d(xt, 2, 2).backward(torch.from_numpy(gy))
        np.testing.assert_allclose(gavg, xt.grad.numpy(), rtol=1e-15, atol=0)
        assert not tiles or np.all(gavg != 0)
        if not tiles:
            assert np.all(gmax[:, :, 2 * oh:, :] == 0) and np.all(gmax[:, :, :, 2 * ow:] == 0)


@pytest.mark.parametrize("kernel, stride, pads", [((2, 2), (2, 2), (0, 0, 0, 0)),
                                                  ((3, 3), (2, 2), (1, 1, 1, 1)),
                                                  ((3, 2), (1, 1), (1, 1, 0, 0))], ids=str)
def test_max_pool_with_nan_matches_torch(device, kernel, stride, pads):
    """A NaN wins its window (the output is NaN) and takes the gradient; with two NaNs
    in a window PyTorch picks the last one, and so do we."""
    rs = np.random.default_rng(10)
    x = rs.standard_normal((2, 3, 6, 7))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[1, 2, 4, 4] = x[1, 1, 5, 6] = np.nan
    y, idx = max_pool2d(dev(x), kernel, stride, pads)
    gy = rs.standard_normal(y.shape)
    gx = sn.to_numpy(max_pool2d_backward(dev(gy), idx, x.shape, kernel, stride, pads))
    y = sn.to_numpy(y)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.max_pool2d(F.pad(xt, (pads[2], pads[3], pads[0], pads[1]), value=-np.inf),
                      kernel, stride)
    yt.backward(torch.from_numpy(gy))
    np.testing.assert_array_equal(y, yt.detach().numpy())  # NaNs in the same places
    # (overlapping windows add their gradients in another order: last-bit differences)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-14, atol=1e-15)
