"""ops.dropout: the mask's values and statistics against p, the inverted scaling,
PyTorch's dropout given the same mask (forward and backward, to the bit), and the
backward against central differences."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import assert_equal, dev
from scratchnet import ops
from scratchnet.gradcheck import numerical_gradient, rel_error

DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_values_rate_and_scale(p, dtype, device):
    """Every entry is 0 or 1 / (1 - p); over 1e5 draws the dropped fraction is p and the
    mask's mean is 1 (so E[dropout(x)] = x), each within 6 standard deviations."""
    x = dev(np.ones((250, 400), dtype))
    mask = ops.dropout_mask(x, p)
    assert mask.dtype == dtype and mask.shape == x.shape
    assert sn.get_array_module(mask) is sn.backend.device_module()
    mask = sn.to_numpy(mask)
    scale = dtype(1.0 / (1.0 - p))
    kept = mask != 0
    assert_equal(mask[kept], scale)
    n = mask.size
    sd = np.sqrt(p * (1 - p) / n)
    assert abs((~kept).mean() - p) < 6 * sd
    assert abs(mask.astype(np.float64).mean() - 1.0) < 6 * sd * float(scale)
    # Both halves of the array drop at the rate p: no position is favoured.
    for half in (kept[:, :200], kept[:, 200:]):
        assert abs((~half).mean() - p) < 6 * np.sqrt(2) * sd


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_of_p_zero_keeps_and_of_p_one_drops_everything(dtype, device):
    x = dev(np.ones((30, 40), dtype))
    assert_equal(ops.dropout_mask(x, 0.0), np.ones((30, 40), dtype))
    with np.errstate(all="raise"):
        zeros = ops.dropout_mask(x, 1.0)
    assert zeros.dtype == dtype
    assert_equal(zeros, np.zeros((30, 40), dtype))


def test_masks_differ_between_draws_and_repeat_with_the_seed(device):
    x = dev(np.ones((20, 30), np.float32))
    sn.manual_seed(7)
    a, b = sn.to_numpy(ops.dropout_mask(x, 0.5)), sn.to_numpy(ops.dropout_mask(x, 0.5))
    assert (a != b).any()
    sn.manual_seed(7)
    assert_equal(ops.dropout_mask(x, 0.5), a)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_matches_torch_given_the_same_mask(p, dtype, device):
    """PyTorch's own mask (F.dropout of ones, same seed as the real call) drives ours:
    the same scale 1 / (1 - p), and the same output and dL/dx to the bit."""
    rs = np.random.default_rng(1)
    x = rs.standard_normal((6, 7, 5)).astype(dtype)
    gy = rs.standard_normal(x.shape).astype(dtype)
    tdtype = torch.from_numpy(x).dtype
    torch.manual_seed(3)
    tmask = F.dropout(torch.ones(x.shape, dtype=tdtype), p, training=True).numpy()
    torch.manual_seed(3)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.dropout(xt, p, training=True)
    yt.backward(torch.from_numpy(gy))
    kept = tmask != 0
    assert 0 < kept.mean() < 1
    # dropout_mask's kept value is PyTorch's; ours is built on PyTorch's keep pattern.
    scale = sn.to_numpy(ops.dropout_mask(dev(np.ones(x.shape, dtype)), p)).max()
    assert_equal(tmask[kept], scale)
    mask = dev(kept.astype(dtype) * scale)
    y = ops.dropout(dev(x), mask)
    gx = ops.dropout_backward(dev(gy), mask)
    assert y.dtype == gx.dtype == dtype
    assert_equal(y, yt.detach().numpy())
    assert_equal(gx, xt.grad.numpy())


@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
def test_backward_matches_finite_differences(p, device):
    """With the mask held fixed, dropout is linear: central differences of
    L = sum(dropout(x, mask) * gy) give dropout_backward(gy, mask)."""
    rs = np.random.default_rng(2)
    x, gy = dev(rs.standard_normal((3, 4))), dev(rs.standard_normal((3, 4)))
    mask = ops.dropout_mask(x, p)
    num = numerical_gradient(lambda: (ops.dropout(x, mask) * gy).sum(), x)
    assert rel_error(ops.dropout_backward(gy, mask), num) < 1e-8
