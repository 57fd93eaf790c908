"""nn.dropout: inverted dropout. Identity in eval and for p=0 (checked against torch);
in training, the structure of the mask, its rate and its gradient."""
import copy
import re

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import GPU_DEVICES, assert_equal, dev, fd_check, torch_parity
from scratchnet import nn

DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("shape", [(1, 6), (3, 4), (2, 3, 2, 2)])
def test_finite_differences(shape, p, training, device):
    """check_module reseeds before every forward, so each draws the same mask."""
    layer = nn.Dropout(p).train(training)
    report = fd_check(layer, np.random.default_rng(1).standard_normal(shape))
    assert list(report.rows) == ["input"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p, training", [(0.5, False), (0.9, False), (0.0, True)])
def test_identity_matches_torch(p, training, dtype, device):
    layer = nn.Dropout(p).train(training)
    tlayer = torch.nn.Dropout(p).train(training)
    x = np.random.default_rng(10).standard_normal((4, 3, 5))
    torch_parity(layer, tlayer, x, dtype, steps=2, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_training_mask_structure_rate_and_gradient(p, dtype, device):
    """On the GPU the mask is drawn by the device's generator: other values than the
    host's, the same structure, rate and scaling."""
    rs = np.random.default_rng(2)
    # Values away from 0, so y == 0 marks exactly the dropped ones.
    x = (rs.uniform(0.5, 2.0, (200, 500)) * rs.choice([-1, 1], (200, 500))).astype(dtype)
    layer = nn.Dropout(p)
    y = layer(dev(x))
    assert y.dtype == dtype and y.shape == x.shape
    assert sn.get_array_module(y) is sn.backend.device_module()
    y = sn.to_numpy(y)
    kept = y != 0
    scale = dtype(1.0 / (1.0 - p))
    np.testing.assert_array_equal(y[kept], x[kept] * scale)
    # 1e5 draws: the dropped fraction is within ~6 standard deviations of p.
    assert abs((~kept).mean() - p) < 6 * np.sqrt(p * (1 - p) / x.size)
    gy = rs.standard_normal(x.shape).astype(dtype)
    gx = layer.backward(dev(gy))
    assert gx.dtype == dtype
    assert_equal(gx, gy * kept.astype(dtype) * scale)


def test_eval_is_identity_and_train_is_not(device):
    x = dev(np.random.default_rng(0).standard_normal((50, 50)).astype(np.float32))
    layer = nn.Dropout(0.5)
    assert (sn.to_numpy(layer(x)) != sn.to_numpy(x)).any()
    layer.eval()
    assert_equal(layer(x), x)
    assert_equal(layer.backward(x), x)


def test_p_one_drops_everything_without_nan(device):
    layer = nn.Dropout(1.0)
    x = np.ones((3, 4), np.float32)
    with np.errstate(all="raise"):
        y = layer(dev(x))
        gx = layer.backward(dev(np.ones_like(x)))
    assert y.dtype == gx.dtype == np.float32
    assert_equal(y, np.zeros_like(x))
    assert_equal(gx, np.zeros_like(x))
    np.testing.assert_array_equal(torch.nn.Dropout(1.0)(torch.from_numpy(x)).numpy(), 0.0)


def test_same_seed_same_mask(device):
    """manual_seed seeds the device's generator too."""
    x = dev(np.ones((20, 30), np.float32))
    sn.manual_seed(5)
    a = sn.to_numpy(nn.Dropout(0.4)(x))
    b = sn.to_numpy(nn.Dropout(0.4)(x))
    sn.manual_seed(5)
    assert_equal(nn.Dropout(0.4)(x), a)
    assert (a != b).any()


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_p_outside_unit_interval_is_refused(p):
    with pytest.raises(ValueError, match=re.escape(f"Dropout: p must be in [0, 1], got {p}")):
        nn.Dropout(p)


@pytest.mark.parametrize("bad, exc, message", [
    ([1.0, 2.0], TypeError, "Dropout: expected a numpy or cupy array of any shape, got list"),
    (np.array([1, 2]), TypeError, "Dropout: expected a floating-point input, got int64"),
], ids=["list", "int64"])
def test_bad_input_names_layer_and_keeps_the_mask(bad, exc, message, device):
    """The refused call draws no mask and keeps the cached one: backward still drops
    what the forward before it dropped, as an untouched twin does; the generators are
    where they were."""
    layer = nn.Dropout(0.5)
    y = sn.to_numpy(layer(dev(np.ones((20, 30), np.float32))))
    fresh = copy.deepcopy(layer)
    rng, device_rng = sn.backend.rng().bit_generator.state, sn.backend.device_rng_state()
    with pytest.raises(exc, match=re.escape(message)):
        layer(dev(bad))
    assert sn.backend.rng().bit_generator.state == rng
    assert sn.backend.device_rng_state() == device_rng
    gy = dev(np.ones((20, 30), np.float32))
    gx = layer.backward(gy)
    assert_equal(gx, fresh.backward(gy))
    assert_equal(gx, y)  # the mask of the good forward: 0 or 2 where y is 0 or 2
    layer(dev(np.ones((2, 3), np.float32)))


def test_backward_before_forward_and_wrong_gy(device):
    layer = nn.Dropout(0.5)
    with pytest.raises(ValueError, match="Dropout.backward: called before forward"):
        layer.backward(dev(np.ones(3)))
    x = dev(np.random.default_rng(0).standard_normal((4, 5)))
    sn.manual_seed(1)
    y = sn.to_numpy(layer(x))
    fresh = copy.deepcopy(layer)
    with pytest.raises(ValueError, match=re.escape("Dropout.backward: expected gy of shape "
                                                   "(4, 5) (the forward output), got (5, 4)")):
        layer.backward(dev(np.ones((5, 4))))
    # Still the mask of the forward above.
    assert_equal(sn.to_numpy(layer.backward(dev(np.ones((4, 5))))) != 0, y != 0)
    assert_equal(sn.to_numpy(fresh.backward(dev(np.ones((4, 5))))) != 0, y != 0)


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_host_gy_for_a_device_output_is_refused_and_keeps_the_mask(device):
    layer = nn.Dropout(0.5)
    y = sn.to_numpy(layer(dev(np.random.default_rng(0).standard_normal((4, 5)))))
    with pytest.raises(ValueError, match="Dropout.backward: the output is on gpu but gy on cpu"):
        layer.backward(np.ones((4, 5)))
    assert_equal(sn.to_numpy(layer.backward(dev(np.ones((4, 5))))) != 0, y != 0)
