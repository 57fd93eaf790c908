"""nn.linear: Linear, LazyLinear and Flatten against finite differences and torch."""
import copy
import re

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import (GPU_DEVICES, assert_dtype_kept, assert_equal, assert_host_input_refused,
                     assert_works_like, dev, fd_check, torch_parity)
from scratchnet import nn

DTYPES = [np.float64, np.float32]


def make(kind, bias=True, in_features=4, out_features=3):
    """The scratchnet layer and its torch twin."""
    if kind == "Linear":
        return (nn.Linear(in_features, out_features, bias=bias),
                torch.nn.Linear(in_features, out_features, bias=bias))
    if kind == "LazyLinear":
        return nn.LazyLinear(out_features, bias=bias), torch.nn.LazyLinear(out_features, bias=bias)
    return nn.Flatten(), torch.nn.Flatten()


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", ["Linear", "LazyLinear"])
def test_linear_finite_differences(kind, bias, batch, device):
    layer, _ = make(kind, bias)
    x = np.random.default_rng(batch).standard_normal((batch, 4))
    report = fd_check(layer, x)
    assert set(report.rows) == {"input", "weight"} | ({"bias"} if bias else set())


LEADING = [(4,), (2, 3, 4), (2, 1, 3, 4)]  # x shapes (*, in): 1-D, 3-D, 4-D


@pytest.mark.parametrize("shape", LEADING, ids=str)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", ["Linear", "LazyLinear"])
def test_linear_on_any_leading_axes_finite_differences(kind, bias, shape, device):
    layer, _ = make(kind, bias)
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    report = fd_check(layer, x)
    assert set(report.rows) == {"input", "weight"} | ({"bias"} if bias else set())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LEADING, ids=str)
@pytest.mark.parametrize("kind", ["Linear", "LazyLinear"])
def test_linear_on_any_leading_axes_matches_torch(kind, shape, dtype, device):
    """y (*, out) and dL/dx of the input's shape, as torch.nn.Linear; LazyLinear reads
    in_features from the last axis."""
    layer, tlayer = make(kind, True)
    x = np.random.default_rng(11).standard_normal(shape)
    torch_parity(layer, tlayer, x, dtype, steps=2, device=device)
    y = layer(dev(x.astype(dtype)))
    assert y.shape == shape[:-1] + (3,) and layer.in_features == 4
    assert layer.backward(dev(np.ones(y.shape, dtype))).shape == shape


def test_linear_of_a_2d_input_is_unchanged_by_leading_axes(device):
    """A (2, 3, 4) input gives, row for row, what its (6, 4) reshape gives."""
    layer = nn.Linear(4, 3).double()
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    gy = np.random.default_rng(4).standard_normal((2, 3, 3))
    y3, gx3 = layer(dev(x)), layer.backward(dev(gy))
    gW3 = sn.to_numpy(layer.weight.grad).copy()
    layer.zero_grad()
    y2, gx2 = layer(dev(x.reshape(6, 4))), layer.backward(dev(gy.reshape(6, 3)))
    assert_equal(y3, sn.to_numpy(y2).reshape(2, 3, 3))
    assert_equal(gx3, sn.to_numpy(gx2).reshape(2, 3, 4))
    assert_equal(gW3, layer.weight.grad)


@pytest.mark.parametrize("shape", [(1, 4), (2, 3, 2, 2), (3, 2, 5)])
def test_flatten_finite_differences(shape, device):
    fd_check(nn.Flatten(), np.random.default_rng(0).standard_normal(shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", ["Linear", "LazyLinear"])
def test_linear_matches_torch(kind, bias, dtype, device):
    layer, tlayer = make(kind, bias)
    x = np.random.default_rng(10).standard_normal((5, 4))
    torch_parity(layer, tlayer, x, dtype, steps=3, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 7), (2, 1, 1, 1)])
def test_flatten_matches_torch(shape, dtype, device):
    x = np.random.default_rng(10).standard_normal(shape)
    torch_parity(nn.Flatten(), torch.nn.Flatten(), x, dtype, steps=2, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["Linear", "LazyLinear", "Flatten"])
def test_dtype_is_kept_through_forward_and_backward(kind, dtype, device):
    layer, _ = make(kind)
    layer.to(dtype=dtype)
    shape = (2, 4) if kind != "Flatten" else (2, 2, 2)
    assert_dtype_kept(layer, dev(np.random.default_rng(0).standard_normal(shape).astype(dtype)),
                      dtype)


def test_lazy_linear_materialises_with_the_input_dtype(device):
    layer = nn.LazyLinear(3)
    assert layer.weight.array is None and layer.name == "LazyLinear"
    layer(dev(np.ones((2, 5))))
    for p in (layer.weight.data, layer.bias.data):
        assert sn.get_array_module(p) is sn.backend.device_module()
    assert layer.weight.grad is None and layer.bias.grad is None  # until a backward
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    assert layer.in_features == 5 and layer.name == "Linear"


def test_lazy_linear_rejected_first_input_leaves_it_lazy(device):
    layer = nn.LazyLinear(3)
    with pytest.raises(ValueError, match=re.escape(
            "LazyLinear: expected a 1-D or higher input (*, in_features), got 0-D")):
        layer(dev(np.ones((), dtype=np.float32)))
    assert layer.weight.array is None
    assert layer(dev(np.ones((2, 7), dtype=np.float32))).shape == (2, 3)


@pytest.mark.parametrize("bad, fix", [(0, 1), (-2, 1)])
def test_non_positive_sizes_are_refused(bad, fix):
    with pytest.raises(ValueError, match="Linear: out_features must be positive"):
        nn.Linear(fix, bad)
    with pytest.raises(ValueError, match="Linear: in_features must be positive"):
        nn.Linear(bad, fix)


LINEAR_BAD = [
    (np.ones((), np.float32), ValueError,
     "Linear: expected a 1-D or higher input (*, in_features), got 0-D input of shape ()"),
    (np.ones((2, 4, 1), np.float32), ValueError,
     "Linear: expected 4 input features (the last axis), got input of shape (2, 4, 1) with 1"),
    (np.ones((2, 5), np.float32), ValueError,
     "Linear: expected 4 input features (the last axis), got input of shape (2, 5) with 5"),
    (np.ones(5, np.float32), ValueError,
     "Linear: expected 4 input features (the last axis), got input of shape (5,) with 5"),
    ([[1.0, 2.0, 3.0, 4.0]], TypeError,
     "Linear: expected a numpy or cupy array (*, in_features), got list"),
    (np.ones((2, 4)), TypeError, "Linear: input dtype float64 does not match weight dtype float32"),
    (np.ones((2, 4), np.int64), TypeError, "Linear: expected a floating-point input, got int64"),
]


@pytest.mark.parametrize("bad, exc, message", LINEAR_BAD,
                         ids=["0-D", "3-D", "features", "1-D", "list", "float64", "int64"])
def test_linear_bad_input_names_layer_and_changes_nothing(bad, exc, message, device):
    layer = nn.Linear(4, 3)
    x = dev(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))
    layer(x)
    layer.backward(dev(np.ones((2, 3), np.float32)))
    fresh = copy.deepcopy(layer)
    with pytest.raises(exc, match=re.escape(message)):
        layer(dev(bad))
    assert_works_like(layer, fresh, x)


@pytest.mark.parametrize("kind", ["Linear", "Flatten"])
def test_backward_before_forward_and_wrong_gy(kind, device):
    layer, _ = make(kind)
    x = dev(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))
    fresh = copy.deepcopy(layer)
    with pytest.raises(ValueError, match=f"{kind}.backward: called before forward"):
        layer.backward(dev(np.ones((2, 3), np.float32)))
    y = layer(x)
    fresh(x)
    with pytest.raises(ValueError, match=re.escape(f"{kind}.backward: expected gy of shape "
                                                   f"{y.shape} (the forward output), got (2, 9)")):
        layer.backward(dev(np.ones((2, 9), np.float32)))
    # The cache survives a rejected gy: the right one still works.
    gy = dev(np.ones(y.shape, np.float32))
    assert_equal(layer.backward(gy), fresh.backward(gy))
    with pytest.raises(ValueError, match=f"{kind}.backward: the cache of the last forward was "
                                         "already used by a previous backward"):
        layer.backward(gy)  # one backward per forward: the cache is released


@pytest.mark.parametrize("bad, exc, message", [
    (np.ones((), np.float32), ValueError,
     "Flatten: expected a 1-D or higher input (N, ...), got 0-D input of shape ()"),
    ([1.0, 2.0], TypeError, "Flatten: expected a numpy or cupy array (N, ...), got list"),
    (np.ones((2, 3), np.int32), TypeError, "Flatten: expected a floating-point input, got int32"),
], ids=["0-D", "list", "int32"])
def test_flatten_bad_input(bad, exc, message, device):
    layer = nn.Flatten()
    with pytest.raises(exc, match=re.escape(message)):
        layer(dev(bad))
    assert layer(dev(np.ones((2, 3, 2), np.float32))).shape == (2, 6)


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("kind, bias", [("Linear", True), ("Linear", False),
                                        ("LazyLinear", True)])
def test_device_layer_refuses_host_arrays_and_changes_nothing(device, kind, bias):
    layer, _ = make(kind, bias)
    x = dev(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))
    assert_host_input_refused(layer, x)
    fresh = copy.deepcopy(layer)
    y = layer(x)
    fresh(x)
    with pytest.raises(ValueError, match="Linear.backward: the output is on gpu but gy on cpu"):
        layer.backward(np.ones(y.shape, np.float32))
    gy = dev(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
    assert_equal(layer.backward(gy), fresh.backward(gy))
    for p, q in zip(layer.parameters(), fresh.parameters()):
        assert_equal(p.grad, q.grad)
