"""scratchnet.teach's chapter 8 pairs against what the models run: concatenation and
its split (ops.concat), the global average pooling head (AdaptiveAvgPool2d((1, 1)) +
Flatten), NiN's 1x1 convolution as a per-pixel matrix product (conv2d with a 1x1
kernel) and DenseNet's transition layer (models.transition_block); forward and every
gradient in float64, to TOL, and against central differences."""
import numpy as np
import pytest
from helpers import dev, rel_err

import scratchnet as sn
from scratchnet import nn, ops, teach
from scratchnet.gradcheck import numerical_gradient, rel_error
from scratchnet.models import transition_block

TOL = 1e-12
FD_TOL = 1e-6


def normal(*shape, seed=0):
    return np.random.default_rng((seed, len(shape))).standard_normal(shape)


def assert_same(got, want, what):
    assert sn.get_array_module(got) is sn.backend.device_module(), f"{what}: left the device"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, fast op {want.dtype}"
    err = rel_err(got, want)
    assert err <= TOL, f"{what} differs from the fast op: {err:.1e}"


def assert_fd(forward, inputs, grads, gy):
    def loss():
        return float((forward() * gy).sum())

    for k, (a, g) in enumerate(zip(inputs, grads)):
        err = rel_error(g, numerical_gradient(loss, a))
        assert err <= FD_TOL, f"gradient {k} differs from finite differences: {err:.1e}"


@pytest.mark.parametrize("axis", [1, 0, 3, -1])
def test_concat_matches_the_op_and_finite_differences(device, axis):
    base = [2, 3, 4, 5]
    xs = []
    for k, size in enumerate((2, 1, 3)):
        shape = list(base)
        shape[axis] = size
        xs.append(dev(normal(*shape, seed=k)))
    y, cache = teach.concat_forward(xs, axis)
    assert_same(y, ops.concat(xs, axis), "y")
    gy = dev(normal(*y.shape, seed=9))
    grads = teach.concat_backward(gy, cache)
    for k, (g, f) in enumerate(zip(grads, ops.concat_backward(gy, cache[0], axis))):
        assert g.shape == xs[k].shape
        assert_same(g, f, f"gx_{k}")
    assert_fd(lambda: teach.concat_forward(xs, axis)[0], xs, grads, gy)


def test_global_avg_pool_is_the_books_head(device):
    x = dev(normal(2, 3, 5, 4))
    head = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    y, cache = teach.global_avg_pool_forward(x)
    assert_same(y, head(x), "y")
    gy = dev(normal(2, 3, seed=1))
    gx = teach.global_avg_pool_backward(gy, cache)
    assert_same(gx, head.backward(gy), "gx")
    assert_fd(lambda: teach.global_avg_pool_forward(x)[0], [x], [gx], gy)


@pytest.mark.parametrize("bias", [True, False])
def test_conv1x1_is_conv2d_with_a_1x1_kernel(device, bias):
    x, W = dev(normal(2, 4, 5, 3)), dev(normal(6, 4, 1, 1, seed=1))
    b = dev(normal(6, seed=2)) if bias else None
    y, cache = teach.conv1x1_forward(x, W, b)
    fast, cols = ops.conv2d(x, W, b)
    assert_same(y, fast, "y")
    gy = dev(normal(2, 6, 5, 3, seed=3))
    grads = teach.conv1x1_backward(gy, cache)
    fast = ops.conv2d_backward(gy, cols, W, x.shape, need_gb=bias)
    for what, g, f in zip(("gx", "gW", "gb"), grads, fast):
        if f is None:
            assert g is None, what
        else:
            assert_same(g, f.reshape(g.shape), what)
    # and the readable convolution says the same
    ref, ref_cache = teach.conv2d_forward(x, W, b)
    assert_same(y, ref, "y against teach.conv2d_forward")
    assert_same(grads[1], teach.conv2d_backward(gy, ref_cache)[1], "gW against teach")
    assert_fd(lambda: teach.conv1x1_forward(x, W, b)[0], [x, W] + ([b] if bias else []),
              grads, gy)


def test_transition_matches_the_books_transition_block(device):
    sn.set_default_dtype(np.float64)
    x = dev(normal(2, 4, 6, 6))
    block = transition_block(3)
    block(x)  # shapes the lazy layers
    rs = np.random.default_rng(5)
    state = {k: dev(rs.uniform(0.5, 1.5, v.shape)) if k.endswith(("0.weight", "0.bias"))
             else v.array for k, v in block.state_dict().items()}
    block.load_state_dict(state)
    params = [state[k] for k in ("0.weight", "0.bias", "2.weight", "2.bias")]
    y, cache = teach.transition_forward(x, *params)
    assert y.shape == (2, 3, 3, 3)
    block.zero_grad()
    assert_same(y, block(x), "y")
    gy = dev(normal(2, 3, 3, 3, seed=2))
    grads = teach.transition_backward(gy, cache)
    assert_same(grads[0], block.backward(gy), "gx")
    named = dict(block.named_parameters())
    for what, g in zip(("0.weight", "0.bias", "2.weight", "2.bias"), grads[1:]):
        assert_same(g, sn.to_device(sn.to_numpy(named[what].grad)), what)
    assert_fd(lambda: teach.transition_forward(x, *params)[0], [x] + params, grads, gy)


def test_float32_stays_float32(device):
    x = dev(normal(2, 4, 4, 4).astype(np.float32))
    c = dev(np.ones(4, np.float32))
    W, b = dev(normal(3, 4, 1, 1).astype(np.float32)), dev(np.zeros(3, np.float32))
    runs = [(teach.concat_forward, teach.concat_backward, ([x, x],)),
            (teach.global_avg_pool_forward, teach.global_avg_pool_backward, (x,)),
            (teach.conv1x1_forward, teach.conv1x1_backward, (x, W, b)),
            (teach.transition_forward, teach.transition_backward, (x, c, c, W, b))]
    for forward, backward, args in runs:
        y, cache = forward(*args)
        grads = backward(sn.get_array_module(y).ones_like(y), cache)
        for a in [y] + list(grads):
            assert a.dtype == np.float32, forward.__name__
