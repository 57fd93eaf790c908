"""nn.activation: ReLU, Sigmoid and Tanh against finite differences and torch, at the
extremes of their range, and with bad input."""
import copy
import re
import warnings

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import GPU_DEVICES, assert_equal, dev, distinct, fd_check, torch_parity
from scratchnet import nn

DTYPES = [np.float64, np.float32]
NAMES = ["ReLU", "Sigmoid", "Tanh"]


def make(name):
    return getattr(nn, name)(), getattr(torch.nn, name)()


def away_from_zero(shape, rs=None):
    """distinct() values moved 0.25 away from 0 (an odd size puts one value at 0 exactly)."""
    x = distinct(shape, rs, scale=2.0)
    return x + np.where(x >= 0, 0.25, -0.25)


@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 4), (2, 2, 3, 3)])
@pytest.mark.parametrize("name", NAMES)
def test_finite_differences(name, shape, device):
    x = away_from_zero(shape)
    assert np.abs(x).min() >= 0.25
    fd_check(make(name)[0], x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 5), (7,)])
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch(name, shape, dtype, device):
    x = distinct(shape, np.random.default_rng(10), scale=3.0)
    torch_parity(*make(name), x, dtype, steps=2, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_extremes_are_exact_and_silent(dtype, device):
    x = np.array([-1e4, -1e3, -100.0, -50.0, 0.0, 50.0, 100.0, 1e3, 1e4], dtype=dtype)
    layer = nn.Sigmoid()
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = layer(dev(x))
        gx = layer.backward(sn.get_array_module(y).ones_like(y))
    assert y.dtype == dtype and gx.dtype == dtype
    y, gx = sn.to_numpy(y), sn.to_numpy(gx)
    assert not np.isnan(y).any() and not np.isnan(gx).any()
    assert y[0] == 0.0 and y[1] == 0.0 and y[-1] == 1.0 and y[-2] == 1.0 and y[4] == 0.5
    assert gx[0] == 0.0 and gx[-1] == 0.0 and gx[4] == 0.25
    np.testing.assert_array_equal(y, torch.sigmoid(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_and_relu_extremes(dtype, device):
    x = np.array([-1e4, -30.0, 0.5, 30.0, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        tanh, relu = nn.Tanh(), nn.ReLU()
        y = tanh(dev(x))
        gx = tanh.backward(dev(np.ones_like(x)))
        assert_equal(relu(dev(x)), np.maximum(x, 0))
        assert_equal(relu.backward(dev(np.ones_like(x))), x > 0)
    assert y.dtype == dtype and gx.dtype == dtype
    y, gx = sn.to_numpy(y), sn.to_numpy(gx)
    assert y[0] == -1.0 and y[-1] == 1.0 and gx[0] == 0.0 and gx[-1] == 0.0


def test_relu_gradient_at_zero_is_zero(device):
    """PyTorch's convention at the kink."""
    layer = nn.ReLU()
    layer(dev(np.array([-1.0, 0.0, 1.0])))
    assert_equal(layer.backward(dev(np.array([5.0, 5.0, 5.0]))), [0.0, 0.0, 5.0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_dtype_is_kept(name, dtype, device):
    layer = make(name)[0]
    x = dev(distinct((2, 3, 4)).astype(dtype))
    y = layer(x)
    gx = layer.backward(sn.get_array_module(y).ones_like(y))
    assert y.dtype == dtype and gx.dtype == dtype
    assert sn.get_array_module(y) is sn.get_array_module(gx) is sn.backend.device_module()


@pytest.mark.parametrize("bad, exc, message", [
    ([1.0, -2.0], TypeError, "expected a numpy or cupy array of any shape, got list"),
    (3.0, TypeError, "expected a numpy or cupy array of any shape, got float"),
    (np.array([1, -2]), TypeError, "expected a floating-point input, got int64"),
], ids=["list", "float", "int64"])
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_names_layer(name, bad, exc, message, device):
    layer = make(name)[0]
    x = dev(distinct((2, 3)))
    y0 = layer(x)
    with pytest.raises(exc, match=re.escape(f"{name}: {message}")):
        layer(dev(bad))
    # The cache of the last good forward is untouched.
    gy = sn.get_array_module(y0).ones_like(y0)
    fresh = make(name)[0]
    fresh(x)
    assert_equal(layer.backward(gy), fresh.backward(gy))


@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward_and_wrong_gy(name, device):
    layer = make(name)[0]
    with pytest.raises(ValueError, match=f"{name}.backward: called before forward"):
        layer.backward(dev(np.ones(3)))
    fresh = copy.deepcopy(layer)
    x = dev(distinct((2, 3)))
    layer(x)
    fresh(x)
    with pytest.raises(ValueError, match=re.escape(f"{name}.backward: expected gy of shape "
                                                   "(2, 3) (the forward output), got (3, 2)")):
        layer.backward(dev(np.ones((3, 2))))
    with pytest.raises(ValueError, match=re.escape("got ()")):
        layer.backward(1.0)
    gy = dev(distinct((2, 3), np.random.default_rng(1)))
    assert_equal(layer.backward(gy), fresh.backward(gy))


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("name", NAMES)
def test_host_gy_for_a_device_output_is_refused_and_changes_nothing(name, device):
    layer, fresh = make(name)[0], make(name)[0]
    x = dev(distinct((2, 3)))
    layer(x)
    fresh(x)
    with pytest.raises(ValueError, match=re.escape(f"{name}.backward: the output is on gpu but "
                                                   "gy on cpu")):
        layer.backward(np.ones((2, 3)))
    gy = dev(distinct((2, 3), np.random.default_rng(1)))
    assert_equal(layer.backward(gy), fresh.backward(gy))
