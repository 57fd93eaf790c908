"""ops.loss: log_softmax (on any axis, and its gradient), softmax cross-entropy and MSE
with their backward, against torch and central differences; the log-sum-exp shift keeps
huge logits finite."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import assert_equal, dev
from scratchnet import ops
from scratchnet.gradcheck import numerical_gradient, rel_error

TOL = {np.float64: 1e-13, np.float32: 1e-6}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_softmax_matches_torch_even_for_huge_logits(dtype, device):
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(dtype)
    x[1, 2], x[2] = 1e4, -1e4
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = ops.log_softmax(dev(x))
    assert sn.get_array_module(got) is sn.backend.device_module()
    got = sn.to_numpy(got)
    want = F.log_softmax(torch.from_numpy(x), dim=1).numpy()
    assert got.dtype == dtype and np.isfinite(got).all()
    assert rel_error(got, want) <= TOL[dtype]
    np.testing.assert_allclose(np.exp(got).sum(1), 1.0, rtol=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_log_softmax_matches_torch_on_any_axis(axis, dtype, device):
    x = (np.random.default_rng(5).standard_normal((3, 4, 5)) * 3).astype(dtype)
    got = ops.log_softmax(dev(x), axis=axis)
    assert got.dtype == dtype and sn.get_array_module(got) is sn.backend.device_module()
    assert rel_error(got, F.log_softmax(torch.from_numpy(x), dim=axis).numpy()) <= TOL[dtype]


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("shape", [(1, 1), (4, 5), (2, 3, 4)], ids=str)
def test_log_softmax_gradient_matches_finite_differences_and_torch(shape, axis, device):
    """The vector-Jacobian product gy - softmax * sum(gy) (the cross-entropy backward's
    formula, softmax = exp(log_softmax)) equals central differences of our forward and
    PyTorch's autograd; and so do the central differences themselves."""
    rs = np.random.default_rng(6)
    x, gy = rs.standard_normal(shape) * 2, rs.standard_normal(shape)
    xd, gyd = dev(x), dev(gy)
    num = numerical_gradient(lambda: (ops.log_softmax(xd, axis=axis) * gyd).sum(), xd)
    xt = torch.tensor(x, requires_grad=True)
    F.log_softmax(xt, dim=axis).backward(torch.from_numpy(gy))
    assert rel_error(num, xt.grad.numpy()) < 1e-8
    xp = sn.get_array_module(xd)
    vjp = gyd - xp.exp(ops.log_softmax(xd, axis=axis)) * gyd.sum(axis=axis, keepdims=True)
    assert rel_error(vjp, num) < 1e-8
    assert rel_error(vjp, xt.grad.numpy()) <= TOL[np.float64]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_cross_entropy_matches_torch(reduction, dtype, device):
    rs = np.random.default_rng(1)
    x = (rs.standard_normal((6, 4)) * 3).astype(dtype)
    labels = rs.integers(0, 4, 6)
    gy = rs.standard_normal(6).astype(dtype) if reduction == "none" else 0.7
    loss, saved = ops.softmax_cross_entropy(dev(x), dev(labels), reduction)
    gx = ops.softmax_cross_entropy_backward(saved, dev(labels), reduction, dev(gy))
    assert sn.get_array_module(loss) is sn.get_array_module(gx) is sn.backend.device_module()
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.from_numpy(labels), reduction=reduction)
    lt.backward(torch.from_numpy(np.asarray(gy, dtype=dtype)))
    assert loss.dtype == dtype and gx.dtype == dtype
    assert rel_error(loss, lt.detach().numpy()) <= TOL[dtype]
    assert rel_error(gx, xt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(reduction, dtype, device):
    rs = np.random.default_rng(2)
    y, t = rs.standard_normal((2, 3, 4)).astype(dtype), rs.standard_normal((2, 3, 4)).astype(dtype)
    gy = rs.standard_normal(y.shape).astype(dtype) if reduction == "none" else 1.3
    loss, d = ops.mse(dev(y), dev(t), reduction)
    gx = ops.mse_backward(d, reduction, dev(gy))
    assert sn.get_array_module(loss) is sn.get_array_module(gx) is sn.backend.device_module()
    yt = torch.tensor(y, requires_grad=True)
    lt = F.mse_loss(yt, torch.from_numpy(t), reduction=reduction)
    lt.backward(torch.from_numpy(np.asarray(gy, dtype=dtype)))
    assert loss.dtype == dtype and gx.dtype == dtype
    assert rel_error(loss, lt.detach().numpy()) <= TOL[dtype]
    assert rel_error(gx, yt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n", [1, 3])
def test_backward_matches_finite_differences(n, reduction, device):
    rs = np.random.default_rng(3)
    x, labels, t = rs.standard_normal((n, 4)), rs.integers(0, 4, n), rs.standard_normal((n, 4))
    x, labels, t = dev(x), dev(labels), dev(t)
    w = dev(rs.standard_normal(n)) if reduction == "none" else 1.0
    _, saved = ops.softmax_cross_entropy(x, labels, reduction)
    num = numerical_gradient(
        lambda: (ops.softmax_cross_entropy(x, labels, reduction)[0] * w).sum(), x)
    assert rel_error(ops.softmax_cross_entropy_backward(saved, labels, reduction, w), num) < 1e-8
    w = dev(rs.standard_normal((n, 4))) if reduction == "none" else 1.0
    _, d = ops.mse(x, t, reduction)
    num = numerical_gradient(lambda: (ops.mse(x, t, reduction)[0] * w).sum(), x)
    assert rel_error(ops.mse_backward(d, reduction, w), num) < 1e-8


def test_cross_entropy_of_a_huge_logit_is_finite(device):
    x = dev(np.array([[1e4, 0.0, -1e4]]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, saved = ops.softmax_cross_entropy(x, dev(np.array([1])), "sum")
        gx = ops.softmax_cross_entropy_backward(saved, dev(np.array([1])), "sum")
    assert float(sn.to_numpy(loss)) == 1e4 and np.isfinite(sn.to_numpy(gx)).all()
    assert_equal(gx, [[1.0, -1.0, 0.0]])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_0d_gy_on_the_device_gives_what_a_python_number_gives(reduction, device):
    """A loss's upstream gradient may be a 0-d array (a loss scaled on the device)."""
    rs = np.random.default_rng(4)
    x, labels = dev(rs.standard_normal((5, 3)).astype(np.float32)), dev(rs.integers(0, 3, 5))
    _, saved = ops.softmax_cross_entropy(x, labels, reduction)
    gy = dev(np.array(0.7, np.float32))
    gx = ops.softmax_cross_entropy_backward(saved, labels, reduction, gy)
    assert gx.dtype == np.float32 and sn.get_array_module(gx) is sn.get_array_module(x)
    assert rel_error(gx, ops.softmax_cross_entropy_backward(saved, labels, reduction, 0.7)) < 1e-6
    _, d = ops.mse(x, 2 * x, reduction)
    gm = ops.mse_backward(d, reduction, gy)
    assert gm.dtype == np.float32 and sn.get_array_module(gm) is sn.get_array_module(x)
    assert rel_error(gm, ops.mse_backward(d, reduction, 0.7)) < 1e-6


# (logits shape, target kind, keywords): ops.softmax_cross_entropy's options, as PyTorch's
# F.cross_entropy takes them.
OPTIONS = [
    ((6, 4), "labels", dict(weight=[0.5, 2.0, 1.0, 3.0])),
    ((6, 4), "labels", dict(ignore_index=-100)),
    ((6, 4), "labels", dict(ignore_index=3, label_smoothing=0.3)),
    ((6, 4), "labels", dict(weight=[0.5, 2.0, 1.0, 3.0], label_smoothing=0.1)),
    ((6, 4), "probs", dict()),
    ((6, 4), "probs", dict(weight=[0.5, 2.0, 1.0, 3.0], label_smoothing=0.2)),
    ((2, 4, 3, 2), "labels", dict(weight=[0.5, 2.0, 1.0, 3.0], label_smoothing=0.2)),
    ((2, 4, 3), "labels", dict()),
    ((2, 4, 5), "probs", dict(label_smoothing=0.5)),
]
OPTION_IDS = [f"{k}-{'x'.join(map(str, s))}-{'-'.join(kw) or 'plain'}" for s, k, kw in OPTIONS]


def option_case(shape, kind, kw, dtype, seed=0):
    rs = np.random.default_rng(seed)
    x = (rs.standard_normal(shape) * 3).astype(dtype)
    if kind == "probs":
        t = rs.random(shape).astype(dtype)
        t /= t.sum(axis=1, keepdims=True)
    else:
        t = rs.integers(0, shape[1], shape[:1] + shape[2:])
        t.reshape(-1)[::3] = kw.get("ignore_index", -100)
    w = None if "weight" not in kw else np.array(kw["weight"], dtype)
    return x, t, w


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape, kind, kw", OPTIONS, ids=OPTION_IDS)
def test_softmax_cross_entropy_options_match_torch(shape, kind, kw, reduction, dtype, device):
    x, t, w = option_case(shape, kind, kw, dtype)
    opts = dict(ignore_index=kw.get("ignore_index", -100),
                label_smoothing=kw.get("label_smoothing", 0.0))
    rs = np.random.default_rng(1)
    loss, saved = ops.softmax_cross_entropy(dev(x), dev(t), reduction,
                                            None if w is None else dev(w), **opts)
    gy = rs.standard_normal(loss.shape).astype(dtype) if reduction == "none" else 0.7
    gx = ops.softmax_cross_entropy_backward(saved, dev(t), reduction, dev(gy))
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.from_numpy(t), None if w is None else torch.from_numpy(w),
                         reduction=reduction, **opts)
    lt.backward(torch.from_numpy(np.asarray(gy, dtype=dtype)))
    assert loss.dtype == dtype and gx.dtype == dtype and gx.shape == x.shape
    assert sn.get_array_module(gx) is sn.backend.device_module()
    assert rel_error(loss, lt.detach().numpy()) <= TOL[dtype]
    assert rel_error(gx, xt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape, kind, kw", OPTIONS, ids=OPTION_IDS)
def test_softmax_cross_entropy_options_match_finite_differences(shape, kind, kw, reduction,
                                                               device):
    x, t, w = (None if a is None else dev(a) for a in option_case(shape, kind, kw, np.float64,
                                                                   seed=2))
    opts = dict(ignore_index=kw.get("ignore_index", -100),
                label_smoothing=kw.get("label_smoothing", 0.0))
    loss, saved = ops.softmax_cross_entropy(x, t, reduction, w, **opts)
    g = dev(np.random.default_rng(3).standard_normal(loss.shape)) if reduction == "none" \
        else 1.0
    num = numerical_gradient(
        lambda: (ops.softmax_cross_entropy(x, t, reduction, w, **opts)[0] * g).sum(), x)
    assert rel_error(ops.softmax_cross_entropy_backward(saved, t, reduction, g), num) < 1e-8
