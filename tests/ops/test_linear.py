"""ops.linear: y = x @ W.T + b and its backward against torch (forward, dL/dx, dL/dW,
dL/db) and against central differences, with and without bias; the backward skips what
it is told is not needed."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import EPS32, dev, rel_err
from scratchnet import ops
from scratchnet.gradcheck import numerical_gradient, rel_error

TOL = {np.float64: 1e-13, np.float32: 1e-6}
SHAPES = [(1, 1, 1), (5, 4, 3), (7, 33, 17), (16, 300, 200)]  # (N, in, out)


def operands(n, fan_in, fan_out, dtype, seed=0):
    rs = np.random.default_rng(seed)
    x = rs.standard_normal((n, fan_in)).astype(dtype)
    W = (rs.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(dtype)
    b = rs.standard_normal(fan_out).astype(dtype)
    gy = rs.standard_normal((n, fan_out)).astype(dtype)
    return x, W, b, gy


def assert_close(got, want, terms, dtype, what):
    """Relative to max|want|; in float32 also to eps32 * sum|terms| of the product that
    made each entry (tests/helpers.py's rule: a float32 sum is good to the last bit of
    the magnitudes it added)."""
    floor = EPS32 * float(np.max(terms)) / TOL[dtype] if dtype is np.float32 else 1e-30
    assert sn.to_numpy(got).dtype == dtype, what
    err = rel_err(got, want, floor)
    assert err <= TOL[dtype], f"{what}: {err:.2e} > {TOL[dtype]:.0e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_and_backward_match_torch(shape, bias, dtype, device):
    x, W, b, gy = operands(*shape, dtype)
    b = b if bias else None
    y = ops.linear(dev(x), dev(W), None if b is None else dev(b))
    gx, gW, gb = ops.linear_backward(dev(gy), dev(x), dev(W), need_gb=bias)
    assert sn.get_array_module(y) is sn.get_array_module(gW) is sn.backend.device_module()
    xt, Wt = torch.tensor(x, requires_grad=True), torch.tensor(W, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = F.linear(xt, Wt, bt)
    yt.backward(torch.from_numpy(gy))
    ax, aW, agy = np.abs(x), np.abs(W), np.abs(gy)
    assert_close(y, yt.detach(), ax @ aW.T + (0 if b is None else np.abs(b)), dtype, "y")
    assert_close(gx, xt.grad, agy @ aW, dtype, "gx")
    assert_close(gW, Wt.grad, agy.T @ ax, dtype, "gW")
    if bias:
        assert_close(gb, bt.grad, agy.sum(axis=0), dtype, "gb")
    else:
        assert gb is None


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 4, 3), (3, 5, 2)], ids=str)
def test_backward_matches_finite_differences(shape, bias, device):
    """Central differences of L = sum(linear(x, W, b) * gy) in float64, entry by entry."""
    x, W, b, gy = (dev(a) for a in operands(*shape, np.float64, seed=1))
    b = b if bias else None
    gx, gW, gb = ops.linear_backward(gy, x, W, need_gb=bias)

    def loss():
        return (ops.linear(x, W, b) * gy).sum()

    assert rel_error(gx, numerical_gradient(loss, x)) < 1e-8
    assert rel_error(gW, numerical_gradient(loss, W)) < 1e-8
    if bias:
        assert rel_error(gb, numerical_gradient(loss, b)) < 1e-8


def test_backward_skips_what_is_not_needed(device):
    """need_gx=False (the first layer, whose input needs no gradient) and need_gb=False
    return None there and the same dL/dW."""
    x, W, _, gy = (dev(a) for a in operands(4, 6, 3, np.float64, seed=2))
    gx, gW, gb = ops.linear_backward(gy, x, W)
    assert gx is not None and gb is not None
    none_x, gW2, none_b = ops.linear_backward(gy, x, W, need_gx=False, need_gb=False)
    assert none_x is None and none_b is None
    np.testing.assert_array_equal(sn.to_numpy(gW2), sn.to_numpy(gW))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lead", [(), (2, 3), (2, 1, 3)], ids=str)
def test_any_leading_axes_match_torch(lead, dtype, device):
    """x (*, in) -> y (*, out), gx of x's shape, gW and gb summed over every leading axis."""
    rs = np.random.default_rng(5)
    x = rs.standard_normal(lead + (6,)).astype(dtype)
    W, b = rs.standard_normal((4, 6)).astype(dtype), rs.standard_normal(4).astype(dtype)
    gy = rs.standard_normal(lead + (4,)).astype(dtype)
    y = ops.linear(dev(x), dev(W), dev(b))
    gx, gW, gb = ops.linear_backward(dev(gy), dev(x), dev(W))
    xt, Wt = torch.tensor(x, requires_grad=True), torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    F.linear(xt, Wt, bt).backward(torch.from_numpy(gy))
    x2, gy2 = np.abs(x).reshape(-1, 6), np.abs(gy).reshape(-1, 4)
    assert y.shape == lead + (4,) and gx.shape == x.shape
    assert_close(y, F.linear(xt, Wt, bt).detach(),
                 (x2 @ np.abs(W).T + np.abs(b)).reshape(y.shape), dtype, "y")
    assert_close(gx, xt.grad, (gy2 @ np.abs(W)).reshape(x.shape), dtype, "gx")
    assert_close(gW, Wt.grad, gy2.T @ x2, dtype, "gW")
    assert_close(gb, bt.grad, gy2.sum(axis=0), dtype, "gb")
