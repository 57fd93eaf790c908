"""ops.norm: batch_norm_train / batch_norm_eval and their backward against torch's
functional batch_norm and central differences, over (N, C), (N, C, L), (N, C, H, W)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import dev
from scratchnet import ops
from scratchnet.gradcheck import numerical_gradient, rel_error

TOL = {np.float64: 1e-12, np.float32: 1e-5}
SHAPES = [(5, 3), (3, 3, 4), (2, 3, 3, 4)]


def data(shape, dtype, seed=0, affine=True):
    rs = np.random.default_rng(seed)
    c = shape[1]
    x = (rs.standard_normal(shape) * rs.uniform(0.5, 3, (1, c) + (1,) * (len(shape) - 2))
         + rs.standard_normal((1, c) + (1,) * (len(shape) - 2))).astype(dtype)
    gamma = rs.uniform(0.5, 2, c).astype(dtype) if affine else None
    beta = rs.standard_normal(c).astype(dtype) if affine else None
    gy = rs.standard_normal(shape).astype(dtype)
    mean, var = rs.standard_normal(c).astype(dtype), rs.uniform(0.5, 2, c).astype(dtype)
    return x, gamma, beta, gy, mean, var


def axes_of(shape):
    return (0,) + tuple(range(2, len(shape)))


def torch_grads(x, gamma, beta, gy, mean, var, training, eps):
    xt = torch.tensor(x, requires_grad=True)
    gt = None if gamma is None else torch.tensor(gamma, requires_grad=True)
    bt = None if beta is None else torch.tensor(beta, requires_grad=True)
    rm, rv = (None, None) if training else (torch.from_numpy(mean), torch.from_numpy(var))
    yt = F.batch_norm(xt, rm, rv, gt, bt, training=training, eps=eps)
    yt.backward(torch.from_numpy(gy))
    return yt.detach().numpy(), xt.grad.numpy(), gt, bt


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_train_matches_torch(shape, affine, dtype, device):
    x, gamma, beta, gy, _, _ = data(shape, dtype, affine=affine)
    axes = axes_of(shape)
    y, cache, mean, var = ops.batch_norm_train(dev(x), dev(gamma), dev(beta), 1e-3, axes)
    gx, ggamma, gbeta = ops.batch_norm_train_backward(dev(gy), cache, dev(gamma), axes)
    yt, gxt, gt, bt = torch_grads(x, gamma, beta, gy, None, None, True, 1e-3)
    for a in (y, gx, mean, var) + ((ggamma, gbeta) if affine else ()):
        assert a.dtype == dtype
        assert sn.get_array_module(a) is sn.backend.device_module()
    assert rel_error(y, yt) <= TOL[dtype] and rel_error(gx, gxt) <= TOL[dtype]
    assert rel_error(mean, x.mean(axis=axes)) <= TOL[dtype]
    assert rel_error(var, x.astype(np.float64).var(axis=axes)) <= TOL[dtype]  # biased
    if affine:
        assert rel_error(ggamma, gt.grad.numpy()) <= TOL[dtype]
        assert rel_error(gbeta, bt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_eval_matches_torch(shape, affine, dtype, device):
    x, gamma, beta, gy, mean, var = data(shape, dtype, seed=1, affine=affine)
    axes = axes_of(shape)
    y, cache = ops.batch_norm_eval(dev(x), dev(gamma), dev(beta), dev(mean), dev(var), 1e-5,
                                   axes)
    gx, ggamma, gbeta = ops.batch_norm_eval_backward(dev(gy), cache, dev(gamma), axes)
    yt, gxt, gt, bt = torch_grads(x, gamma, beta, gy, mean, var, False, 1e-5)
    assert y.dtype == dtype and gx.dtype == dtype
    assert rel_error(y, yt) <= TOL[dtype] and rel_error(gx, gxt) <= TOL[dtype]
    if affine:
        assert rel_error(ggamma, gt.grad.numpy()) <= TOL[dtype]
        assert rel_error(gbeta, bt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 2), (1, 2, 3), (2, 2, 2, 3)], ids=str)
def test_backward_matches_finite_differences(shape, training, device):
    x, gamma, beta, gy, mean, var = (dev(a) for a in data(shape, np.float64, seed=2))
    axes = axes_of(shape)

    def forward():
        if training:
            return ops.batch_norm_train(x, gamma, beta, 1e-5, axes)[0]
        return ops.batch_norm_eval(x, gamma, beta, mean, var, 1e-5, axes)[0]

    cache = (ops.batch_norm_train(x, gamma, beta, 1e-5, axes)[1] if training
             else ops.batch_norm_eval(x, gamma, beta, mean, var, 1e-5, axes)[1])
    backward = ops.batch_norm_train_backward if training else ops.batch_norm_eval_backward
    gx, ggamma, gbeta = backward(gy, cache, gamma, axes)
    for analytic, arr in ((gx, x), (ggamma, gamma), (gbeta, beta)):
        num = numerical_gradient(lambda: (forward() * gy).sum(), arr)
        assert rel_error(analytic, num) < 1e-7


def test_constant_channel_gives_beta_and_finite_gradients(device):
    x, gamma, beta, gy, _, _ = data((4, 2, 3, 3), np.float32)
    x[:, 0] = 3.0
    with np.errstate(all="raise"):
        y, cache, _, var = ops.batch_norm_train(dev(x), dev(gamma), dev(beta), 1e-5, (0, 2, 3))
        gx, ggamma, gbeta = ops.batch_norm_train_backward(dev(gy), cache, dev(gamma), (0, 2, 3))
    y, var, gx, ggamma, gbeta = (sn.to_numpy(a) for a in (y, var, gx, ggamma, gbeta))
    assert var[0] == 0.0
    np.testing.assert_array_equal(y[:, 0], beta[0])
    assert np.isfinite(gx).all() and np.isfinite(ggamma).all() and np.isfinite(gbeta).all()
    _, gxt, _, _ = torch_grads(x, gamma, beta, gy, None, None, True, 1e-5)
    assert rel_error(gx, gxt) <= 1e-5
