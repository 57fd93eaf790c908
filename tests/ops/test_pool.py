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
from scratchnet.ops.pool import avg_divisor, max_pool2d_indices
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
            ((7, 8), (3, 5)), ((3, 2), (5, 3)), ((5, 7), (5, 7)), ((1, 1), (2, 2)),
            # None keeps the input's size along that axis
            ((5, 7), (None, 3)), ((5, 7), (2, None)), ((5, 7), (None, None))]


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


# PyTorch's other options (issue 13): ceil_mode, count_include_pad=False, divisor_override
# and return_indices, against torch.nn.functional over a grid of kernels 1-4, strides 1-3,
# paddings 0 to half the kernel, odd and even sizes, ceil on and off.
OPTION_GRID = [(k, s, p) for k in (1, 2, 3, 4) for s in (1, 2, 3) for p in range(k // 2 + 1)]
OPTION_SIZES = [(7, 8), (8, 5), (2, 3)]
# The worst relative errors the options reach against torch (max|a - b| / max|b|): the
# default path's README bounds.
OPTION_TOL = {np.float64: 4e-15, np.float32: 8e-6}
AVG_OPTIONS = [dict(count_include_pad=c, divisor_override=d)
               for c in (True, False) for d in (None, 3, -2)]


def _torch_run(f, x, gy):
    """f(x) and dL/dx under torch, gy the upstream gradient."""
    xt = torch.tensor(x, requires_grad=True)
    yt = f(xt)
    yt = yt[0] if isinstance(yt, tuple) else yt
    yt.backward(torch.from_numpy(gy))
    return yt.detach().numpy(), xt.grad.numpy()


def _option_cases(k, s, p):
    """(size, ceil_mode) pairs torch accepts for this geometry."""
    for size, ceil in itertools.product(OPTION_SIZES, (False, True)):
        if all(sn.ops.out_size(n, k, s, p, p, 1, ceil) >= 1 for n in size):
            yield size, ceil


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k, s, p", OPTION_GRID, ids=str)
def test_max_pool_options_match_torch(device, k, s, p, dtype):
    """ceil_mode on and off, and return_indices: output, indices and dL/dx as torch's."""
    for size, ceil in _option_cases(k, s, p):
        x = distinct((2, 3) + size).astype(dtype)
        pads = (p, p, p, p)
        y, idx = max_pool2d(dev(x), (k, k), (s, s), pads, ceil_mode=ceil)
        gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        gx = max_pool2d_backward(dev(gy), idx, x.shape, (k, k), (s, s), pads, ceil_mode=ceil)
        yt, gxt = _torch_run(lambda t: F.max_pool2d(t, k, s, p, ceil_mode=ceil), x, gy)
        what = f"size {size}, ceil_mode={ceil}"
        np.testing.assert_array_equal(sn.to_numpy(y), yt, err_msg=what)
        assert sn.to_numpy(gx).dtype == dtype
        assert rel_error(gx, gxt) <= OPTION_TOL[dtype], what
        indices = max_pool2d_indices(idx, x.shape, (k, k), (s, s), pads)
        _, it = F.max_pool2d(torch.from_numpy(x), k, s, p, ceil_mode=ceil, return_indices=True)
        assert sn.to_numpy(indices).dtype == np.int64
        np.testing.assert_array_equal(sn.to_numpy(indices), it.numpy(), err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k, s, p", OPTION_GRID, ids=str)
def test_avg_pool_options_match_torch(device, k, s, p, dtype):
    """ceil_mode x count_include_pad x divisor_override: output and dL/dx as torch's."""
    for (size, ceil), kw in itertools.product(_option_cases(k, s, p), AVG_OPTIONS):
        x = np.random.default_rng(0).standard_normal((2, 3) + size).astype(dtype)
        pads = (p, p, p, p)
        y = avg_pool2d(dev(x), (k, k), (s, s), pads, ceil, **kw)
        gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        gx = avg_pool2d_backward(dev(gy), x.shape, (k, k), (s, s), pads, ceil, **kw)
        yt, gxt = _torch_run(lambda t: F.avg_pool2d(t, k, s, p, ceil, **kw), x, gy)
        what = f"size {size}, ceil_mode={ceil}, {kw}"
        assert sn.to_numpy(y).dtype == sn.to_numpy(gx).dtype == dtype
        assert rel_error(y, yt) <= OPTION_TOL[dtype], what
        assert rel_error(gx, gxt) <= OPTION_TOL[dtype], what


# (N, C, H, W), kernel, stride, padding: windows that ceil mode cuts short at the bottom,
# at the right, or both, and one it does not change.
FD_CEIL = [((1, 2, 7, 8), (2, 2), (2, 2), (0, 0)),
           ((2, 1, 6, 7), (3, 3), (2, 2), (1, 1)),
           ((1, 2, 8, 7), (3, 2), (3, 2), (1, 0)),
           ((1, 1, 5, 5), (4, 4), (3, 3), (2, 2)),
           ((2, 1, 6, 6), (2, 2), (2, 2), (1, 1))]


@pytest.mark.parametrize("shape, kernel, stride, padding", FD_CEIL, ids=str)
def test_max_pool_ceil_mode_by_finite_differences(device, shape, kernel, stride, padding):
    x = dev(distinct(shape))
    pads = (padding[0], padding[0], padding[1], padding[1])
    y, idx = max_pool2d(x, kernel, stride, pads, ceil_mode=True)
    gy = dev(np.random.default_rng(1).standard_normal(y.shape))
    gx = max_pool2d_backward(gy, idx, x.shape, kernel, stride, pads, ceil_mode=True)
    check_fd(lambda: max_pool2d(x, kernel, stride, pads, ceil_mode=True)[0], x, gx, gy)


@pytest.mark.parametrize("kw", [dict(ceil_mode=True), dict(count_include_pad=False),
                                dict(ceil_mode=True, count_include_pad=False),
                                dict(divisor_override=5), dict(ceil_mode=True,
                                                               divisor_override=-3)], ids=str)
@pytest.mark.parametrize("shape, kernel, stride, padding", FD_CEIL, ids=str)
def test_avg_pool_options_by_finite_differences(device, shape, kernel, stride, padding, kw):
    x = dev(np.random.default_rng(0).standard_normal(shape))
    pads = (padding[0], padding[0], padding[1], padding[1])
    y = avg_pool2d(x, kernel, stride, pads, **kw)
    gy = dev(np.random.default_rng(1).standard_normal(y.shape))
    gx = avg_pool2d_backward(gy, x.shape, kernel, stride, pads, **kw)
    check_fd(lambda: avg_pool2d(x, kernel, stride, pads, **kw), x, gx, gy)


def test_ceil_mode_output_size_is_pytorchs():
    """out_size's ceil mode against torch's output shapes (dilation 1-2 too), and the
    floor-mode pads MaxPool2d.receptive_geometry gives for it agree with both."""
    for n, k, s, d in itertools.product(range(1, 10), range(1, 5), range(1, 4), (1, 2)):
        for p in range(k // 2 + 1):
            x = torch.zeros(1, 1, n, 1)
            try:
                expected = F.max_pool2d(x, (k, 1), (s, 1), (p, 0), (d, 1), ceil_mode=True).shape[2]
            except RuntimeError:  # output size too small
                expected = 0
            got = sn.ops.out_size(n, k, s, p, p, d, ceil_mode=True)
            assert max(got, 0) == expected, (n, k, s, p, d)
            assert sn.ops.out_size(n, k, s, p, p, d) == (n + 2 * p - d * (k - 1) - 1) // s + 1
            geometry = sn.nn.MaxPool2d(k, s, p, d, ceil_mode=True).receptive_geometry()
            pad_hi = geometry[0][3][0]
            assert sn.ops.out_size(n, k, s, p, pad_hi, d) == got, (n, k, s, p, d)


@pytest.mark.parametrize("size", [(8, 6), (6, 9)])
def test_options_that_change_nothing_take_the_default_path(device, size):
    """ceil_mode where the windows fit, count_include_pad=False without padding and
    divisor_override=kh*kw give the default's bits (and so the same code)."""
    x = dev(np.random.default_rng(4).standard_normal((2, 3) + size))
    gy = dev(np.random.default_rng(5).standard_normal((2, 3, size[0] // 2, size[1] // 3)))
    k, s = (2, 3), (2, 3)
    y, idx = max_pool2d(x, k, s)
    y_ceil, idx_ceil = max_pool2d(x, k, s, ceil_mode=True)
    assert_equal = np.testing.assert_array_equal
    assert_equal(sn.to_numpy(y), sn.to_numpy(y_ceil))
    assert_equal(sn.to_numpy(max_pool2d_backward(gy, idx, x.shape, k, s)),
                 sn.to_numpy(max_pool2d_backward(gy, idx_ceil, x.shape, k, s, ceil_mode=True)))
    plain = avg_pool2d(x, k, s)
    g_plain = avg_pool2d_backward(gy, x.shape, k, s)
    for kw in (dict(ceil_mode=True), dict(count_include_pad=False)):
        assert avg_divisor(x.shape, k, s, (0, 0, 0, 0), **kw) is None
        assert_equal(sn.to_numpy(avg_pool2d(x, k, s, **kw)), sn.to_numpy(plain))
        assert_equal(sn.to_numpy(avg_pool2d_backward(gy, x.shape, k, s, **kw)),
                     sn.to_numpy(g_plain))
    np.testing.assert_allclose(sn.to_numpy(avg_pool2d(x, k, s, divisor_override=6)),
                               sn.to_numpy(plain), rtol=1e-15, atol=0)


def test_avg_divisor_is_pytorchs_rule():
    """3x3 windows, stride 2, padding 1, ceil mode: on 5x5 every window fits the padded
    input (None: the plain mean); on 6x6 the last row and column of windows start at 5
    and are cut at 6 + 1 (2 of their 3 rows in the padded input) and, without the padding
    counted, the first ones lose a row and a column too."""
    pads = (1, 1, 1, 1)
    assert avg_divisor((1, 1, 5, 5), (3, 3), (2, 2), pads, True) is None
    assert avg_divisor((1, 1, 6, 6), (3, 3), (2, 2), pads) is None
    np.testing.assert_array_equal(avg_divisor((1, 1, 6, 6), (3, 3), (2, 2), pads, True),
                                  np.outer([3, 3, 3, 2], [3, 3, 3, 2]) * 1.0)
    np.testing.assert_array_equal(
        avg_divisor((1, 1, 6, 6), (3, 3), (2, 2), pads, True, count_include_pad=False),
        np.outer([2, 3, 3, 1], [2, 3, 3, 1]) * 1.0)
    assert avg_divisor((1, 1, 6, 6), (3, 3), (2, 2), pads, True, False, -4) == -4
