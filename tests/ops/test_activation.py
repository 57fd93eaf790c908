"""ops.activation: relu, sigmoid, tanh and their backward (which take the forward's
output) against torch and central differences; sigmoid without overflow."""
import warnings

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import assert_equal, dev
from scratchnet import ops
from scratchnet.gradcheck import numerical_gradient, rel_error

FUNCS = {"relu": (ops.relu, ops.relu_backward, torch.relu),
         "sigmoid": (ops.sigmoid, ops.sigmoid_backward, torch.sigmoid),
         "tanh": (ops.tanh, ops.tanh_backward, torch.tanh)}
TOL = {np.float64: 1e-13, np.float32: 1e-6}


def inputs(shape, dtype, seed=0):
    """Normal values moved at least 0.1 away from ReLU's kink."""
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    return (x + np.where(x >= 0, 0.1, -0.1)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("name", list(FUNCS))
def test_forward_and_backward_match_torch(name, shape, dtype, device):
    f, df, tf = FUNCS[name]
    x = inputs(shape, dtype)
    gy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    y = f(dev(x))
    gx = df(dev(gy), y)
    assert sn.get_array_module(y) is sn.get_array_module(gx) is sn.backend.device_module()
    xt = torch.tensor(x, requires_grad=True)
    yt = tf(xt)
    yt.backward(torch.from_numpy(gy))
    assert y.dtype == dtype and gx.dtype == dtype
    assert rel_error(y, yt.detach().numpy()) <= TOL[dtype]
    assert rel_error(gx, xt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("name", list(FUNCS))
def test_backward_matches_finite_differences(name, device):
    f, df, _ = FUNCS[name]
    x = dev(inputs((3, 4), np.float64, seed=2))
    gy = dev(np.random.default_rng(3).standard_normal(x.shape))
    num = numerical_gradient(lambda: (f(x) * gy).sum(), x)
    assert rel_error(df(gy, f(x)), num) < 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_saturates_exactly_without_warnings(dtype, device):
    x = np.array([-1e4, -800.0, -90.0, 90.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = ops.sigmoid(dev(x))
        gx = ops.sigmoid_backward(dev(np.ones_like(x)), y)
    y, gx = sn.to_numpy(y), sn.to_numpy(gx)
    np.testing.assert_array_equal(y[[0, 1, -3, -2, -1]], [0.0, 0.0, 1.0, 1.0, 1.0])
    assert 0.0 <= y[2] < 1e-38
    assert y.dtype == dtype and gx.dtype == dtype and not np.isnan(gx).any()
    np.testing.assert_array_equal(gx[[0, 1, -2, -1]], 0.0)


def test_relu_backward_is_zero_at_the_kink(device):
    y = ops.relu(dev(np.array([-2.0, 0.0, 3.0])))
    assert_equal(ops.relu_backward(dev(np.array([1.0, 1.0, 1.0])), y), [0, 0, 1])
