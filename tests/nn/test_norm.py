"""nn.norm: BatchNorm1d, BatchNorm2d, LazyBatchNorm1d and LazyBatchNorm2d against finite
differences and
torch, running statistics included, in training and in evaluation."""
import copy
import re

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import (GPU_DEVICES, assert_dtype_kept, assert_equal, assert_host_input_refused,
                     dev, fd_check, torch_parity)
from scratchnet import nn

DTYPES = [np.float64, np.float32]
# (scratchnet class, torch class, input shape); the lazy ones take no num_features.
KINDS = {
    "1d-NC": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3)),
    "1d-NCL": (nn.BatchNorm1d, torch.nn.BatchNorm1d, (3, 3, 5)),
    "2d": (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 3, 4, 4)),
    "lazy-1d": (nn.LazyBatchNorm1d, torch.nn.LazyBatchNorm1d, (4, 3)),
    "lazy-2d": (nn.LazyBatchNorm2d, torch.nn.LazyBatchNorm2d, (3, 3, 4, 4)),
}


def make(kind, **kw):
    cls, tcls, shape = KINDS[kind]
    if kind.startswith("lazy"):
        return cls(**kw), tcls(**kw), shape
    return cls(shape[1], **kw), tcls(shape[1], **kw), shape


def randomize(layer, rs):
    """Non-trivial gamma, beta and running statistics (materialising a lazy layer in eval)."""
    if layer.num_features is None:
        training = layer.training
        kind = "lazy-1d" if isinstance(layer, nn.LazyBatchNorm1d) else "lazy-2d"
        shape = (2,) + KINDS[kind][2][1:]
        with sn.no_grad():
            layer.eval()(dev(np.zeros(shape, np.float32)))
        layer.train(training)
    c = layer.num_features
    values = {"running_mean": rs.standard_normal(c), "running_var": rs.uniform(0.5, 2.0, c),
              "num_batches_tracked": np.array(3), "weight": rs.uniform(0.5, 2.0, c),
              "bias": rs.standard_normal(c)}
    layer.load_state_dict({k: values[k] for k in layer.state_dict()})
    return layer


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind", list(KINDS))
def test_finite_differences(kind, training, affine, device):
    layer, _, shape = make(kind, affine=affine)
    rs = np.random.default_rng(0)
    if not kind.startswith("lazy") or not training:
        randomize(layer, rs)
    layer.train(training)
    report = fd_check(layer, rs.standard_normal(shape) * 2 + 1)
    assert set(report.rows) == {"input"} | ({"weight", "bias"} if affine else set())


@pytest.mark.parametrize("kind, shape", [("1d-NCL", (1, 3, 4)), ("2d", (1, 3, 2, 3)),
                                         ("1d-NC", (1, 3))])
def test_finite_differences_batch_of_one(kind, shape, device):
    """Batch 1 is legal in training when a channel still has several values (and in eval)."""
    layer, _, _ = make(kind)
    randomize(layer, np.random.default_rng(0))
    layer.train(shape[2:] != ())
    fd_check(layer, np.random.default_rng(1).standard_normal(shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind", list(KINDS))
def test_matches_torch(kind, training, dtype, device):
    layer, tlayer, shape = make(kind)
    # Not seed 0: torch_parity draws gy from default_rng(0), and a gy that is an affine
    # function of x is exactly what BatchNorm's input gradient projects away.
    rs = np.random.default_rng(10)
    if not kind.startswith("lazy") or not training:
        randomize(layer, rs)
    layer.train(training)
    torch_parity(layer, tlayer, rs.standard_normal(shape) * 3 + 2, dtype, steps=4, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kw", [dict(momentum=None), dict(momentum=0.3, eps=1e-3),
                                dict(affine=False), dict(track_running_stats=False),
                                dict(momentum=None, affine=False, eps=0.1)], ids=str)
@pytest.mark.parametrize("kind", ["1d-NCL", "2d", "lazy-2d"])
def test_matches_torch_options(kind, kw, training, dtype, device):
    """Cumulative averaging (momentum=None), other momentum and eps, no affine, no stats."""
    layer, tlayer, shape = make(kind, **kw)
    rs = np.random.default_rng(1)
    layer.train(training)
    torch_parity(layer, tlayer, rs.standard_normal(shape) * 3 - 1, dtype, steps=5, device=device)


@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
def test_running_statistics_formula(momentum, device):
    """PyTorch's convention: new = (1 - m) old + m batch, unbiased variance; m = 1/k for None."""
    layer = nn.BatchNorm1d(2, momentum=momentum).double()
    rs = np.random.default_rng(0)
    mean, var = np.zeros(2), np.ones(2)
    for k in range(1, 4):
        x = rs.standard_normal((5, 2)) * [1.0, 3.0] + [2.0, -1.0]
        layer(dev(x))
        f = 1.0 / k if momentum is None else momentum
        mean = (1 - f) * mean + f * x.mean(0)
        var = (1 - f) * var + f * x.var(0, ddof=1)
        for buf in (layer.running_mean, layer.running_var, layer.num_batches_tracked):
            assert sn.get_array_module(buf) is sn.backend.device_module()
        np.testing.assert_allclose(sn.to_numpy(layer.running_mean), mean, rtol=1e-13)
        np.testing.assert_allclose(sn.to_numpy(layer.running_var), var, rtol=1e-13)
        assert sn.to_numpy(layer.num_batches_tracked) == k
        assert layer.num_batches_tracked.dtype == np.int64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["1d-NC", "2d"])
def test_constant_channel_is_finite(kind, dtype, device):
    """Zero batch variance: eps keeps it finite; the output is beta, the grads match torch."""
    layer, tlayer, shape = make(kind)
    layer.to(dtype=dtype)
    beta = np.array([0.5, -1.0, 2.0])
    layer.bias.data[...] = dev(beta.astype(dtype))
    x = np.random.default_rng(10).standard_normal(shape).astype(dtype)
    x[:, 1] = 7.0
    with np.errstate(all="raise"):
        y = layer(dev(x))
        gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        gx = layer.backward(dev(gy))
    y, gx = sn.to_numpy(y), sn.to_numpy(gx)
    wgrad, bgrad = sn.to_numpy(layer.weight.grad), sn.to_numpy(layer.bias.grad)
    running_var = sn.to_numpy(layer.running_var)
    assert np.isfinite(y).all() and np.isfinite(gx).all()
    assert np.isfinite(wgrad).all() and np.isfinite(bgrad).all()
    np.testing.assert_array_equal(y[:, 1], np.full_like(y[:, 1], -1.0))
    assert np.isfinite(running_var).all() and running_var[1] == dtype(0.9)
    # The same thing in torch, in float64: torch's float32 statistics of a constant channel
    # are off by rounding (its output is beta + 3e-5 where this one is beta exactly).
    layer2, tlayer, _ = make(kind)
    layer2.bias.data[...] = dev(beta.astype(np.float32))
    torch_parity(layer2, tlayer, x, np.float64, device=device)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_dtype_is_kept(kind, dtype, training, device):
    layer, _, shape = make(kind)
    layer.to(dtype=dtype).train(training)
    assert_dtype_kept(layer, dev(np.random.default_rng(0).standard_normal(shape).astype(dtype)),
                      dtype)
    assert layer.running_mean.dtype == dtype and layer.running_var.dtype == dtype
    assert layer.num_batches_tracked.dtype == np.int64


def test_lazy_materialises_with_the_input_dtype(device):
    layer = nn.LazyBatchNorm2d()
    assert layer.weight.array is None and layer.running_mean is None
    assert layer.name == "LazyBatchNorm2d"
    layer(dev(np.random.default_rng(0).standard_normal((2, 5, 3, 3))))
    assert layer.num_features == 5 and layer.name == "BatchNorm2d"
    for a in (layer.weight.data, layer.bias.data, layer.running_mean, layer.running_var):
        assert a.shape == (5,) and a.dtype == np.float64
        assert sn.get_array_module(a) is sn.backend.device_module()
    assert sn.to_numpy(layer.num_batches_tracked) == 1


@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 3)])
def test_lazy_1d_becomes_batch_norm_1d_from_its_first_input(device, shape):
    """d2l 8.5's BNLeNet: LazyBatchNorm1d after a LazyLinear, on (N, C) or (N, C, L)."""
    layer = nn.LazyBatchNorm1d()
    assert layer.weight.array is None and layer.name == "LazyBatchNorm1d"
    x = dev(np.random.default_rng(0).standard_normal(shape))
    y = layer(x)
    assert layer.num_features == 5 and type(layer) is nn.BatchNorm1d
    t = torch.nn.LazyBatchNorm1d().double()
    ty = t(torch.from_numpy(np.asarray(sn.to_numpy(x))))
    assert type(t) is torch.nn.BatchNorm1d
    np.testing.assert_allclose(sn.to_numpy(y), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sn.to_numpy(layer.running_var), t.running_var.numpy(),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="LazyBatchNorm1d|BatchNorm1d"):
        nn.LazyBatchNorm1d()(dev(np.zeros((2, 3, 4, 4))))  # 4-D: that is BatchNorm2d's


def test_eval_with_one_value_per_channel_is_legal(device):
    layer = randomize(nn.BatchNorm1d(3), np.random.default_rng(0)).eval()
    x = np.ones((1, 3), np.float32)
    s = {k: sn.to_numpy(v) for k, v in layer.state_dict().items()}
    expected = (1 - s["running_mean"]) / np.sqrt(s["running_var"] + 1e-5) * s["weight"] + s["bias"]
    np.testing.assert_allclose(sn.to_numpy(layer(dev(x)))[0], expected, rtol=1e-6)


def assert_same_state(layer, fresh, x):
    """A rejected input changed nothing: same output, grads and running statistics."""
    y, y0 = layer(x), fresh(x)
    assert_equal(y, y0)
    gy = dev(np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype))
    assert_equal(layer.backward(gy), fresh.backward(gy))
    s, s0 = layer.state_dict(), fresh.state_dict()
    assert list(s) == list(s0)
    for k in s:
        assert_equal(s[k], s0[k], err_msg=k)
    for (k, p), (_, p0) in zip(layer.named_parameters(), fresh.named_parameters()):
        assert_equal(p.grad, p0.grad, err_msg=k)


BAD = {
    "1d-NC": [
        (np.ones((2, 3, 4, 5), np.float32), ValueError,
         "BatchNorm1d: expected a 2 or 3-D input (N, C) or (N, C, L), got 4-D input of shape "
         "(2, 3, 4, 5)"),
        (np.ones((4, 2), np.float32), ValueError,
         "BatchNorm1d: expected 3 channels, got input of shape (4, 2) with 2"),
        (np.ones((1, 3), np.float32), ValueError,
         "BatchNorm1d: expected more than 1 value per channel when training, got input of "
         "shape (1, 3)"),
        (np.ones((4, 3)), TypeError,
         "BatchNorm1d: input dtype float64 does not match weight dtype float32"),
        ([[1.0, 2.0, 3.0]] * 4, TypeError, "BatchNorm1d: expected a numpy or cupy array"),
        (np.ones((4, 3), np.int64), TypeError,
         "BatchNorm1d: expected a floating-point input, got int64"),
    ],
    "2d": [
        (np.ones((2, 3, 4), np.float32), ValueError,
         "BatchNorm2d: expected a 4-D input (N, C, H, W), got 3-D input of shape (2, 3, 4)"),
        (np.ones((2, 4, 2, 2), np.float32), ValueError,
         "BatchNorm2d: expected 3 channels, got input of shape (2, 4, 2, 2) with 4"),
        (np.ones((1, 3, 1, 1), np.float32), ValueError,
         "BatchNorm2d: expected more than 1 value per channel when training"),
        (np.ones((2, 3, 2, 2)), TypeError,
         "BatchNorm2d: input dtype float64 does not match weight dtype float32"),
    ],
    "lazy-2d": [
        (np.ones((2, 3, 4), np.float32), ValueError, "LazyBatchNorm2d: expected a 4-D input"),
        (np.ones((1, 5, 1, 1), np.float32), ValueError,
         "LazyBatchNorm2d: expected more than 1 value per channel when training"),
        (np.ones((2, 3, 2, 2), np.int32), TypeError,
         "LazyBatchNorm2d: expected a floating-point input, got int32"),
    ],
}


@pytest.mark.parametrize("kind, bad, exc, message",
                         [(k, *case) for k, cases in BAD.items() for case in cases],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 10 else None)
def test_bad_input_names_layer_and_changes_nothing(kind, bad, exc, message, device):
    layer, _, shape = make(kind)
    x = dev(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    if not kind.startswith("lazy"):
        layer(x)  # some history: running statistics and a step count
    fresh = copy.deepcopy(layer)
    with pytest.raises(exc, match=re.escape(message)):
        layer(dev(bad))
    assert_same_state(layer, fresh, x)


def test_dtype_mismatch_without_affine_is_a_type_error(device):
    layer = nn.BatchNorm2d(2, affine=False)
    with pytest.raises(TypeError, match=re.escape("BatchNorm2d: input dtype float64 does not "
                                                  "match the running statistics dtype float32")):
        layer(dev(np.ones((2, 2, 3, 3))))
    assert sn.to_numpy(layer.num_batches_tracked) == 0


@pytest.mark.parametrize("kind", ["1d-NC", "2d"])
def test_backward_before_forward_and_wrong_gy(kind, device):
    layer, _, shape = make(kind)
    name = layer.name
    with pytest.raises(ValueError, match=f"{name}.backward: called before forward"):
        layer.backward(dev(np.ones(shape, np.float32)))
    x = dev(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    fresh = copy.deepcopy(layer)
    y = layer(x)
    fresh(x)
    wrong = dev(np.ones((shape[0] + 1,) + shape[1:], np.float32))
    with pytest.raises(ValueError, match=re.escape(f"{name}.backward: expected gy of shape "
                                                   f"{y.shape} (the forward output), got "
                                                   f"{wrong.shape}")):
        layer.backward(wrong)
    # The cache survives a rejected gy.
    gy = dev(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
    assert_equal(layer.backward(gy), fresh.backward(gy))
    assert_equal(layer.weight.grad, fresh.weight.grad)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_device_layer_refuses_host_arrays_and_changes_nothing(device, kind, training):
    """A numpy input or gy for a BatchNorm on the GPU is a ValueError naming the layer; the
    running statistics and step count stay as they were."""
    layer, _, shape = make(kind)
    layer.train(training)
    x = dev(np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 2 + 1)
    assert_host_input_refused(layer, x)
    name = layer.name
    fresh = copy.deepcopy(layer)
    y = layer(x)
    fresh(x)
    with pytest.raises(ValueError, match=f"{name}.backward: the output is on gpu but gy on cpu"):
        layer.backward(np.ones(y.shape, np.float32))
    assert_same_state(layer, fresh, x)


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_device_layer_without_affine_says_where_its_statistics_are(device):
    layer = nn.BatchNorm2d(2, affine=False)
    x = dev(np.random.default_rng(0).standard_normal((2, 2, 3, 3)).astype(np.float32))
    layer(x)
    fresh = copy.deepcopy(layer)
    with pytest.raises(ValueError, match=re.escape("BatchNorm2d: input is on cpu but the running "
                                                   "statistics on gpu")):
        layer(sn.to_numpy(x))
    assert_same_state(layer, fresh, x)


def test_non_positive_num_features_is_refused():
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be positive, got 0"):
        nn.BatchNorm2d(0)
