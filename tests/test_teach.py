"""scratchnet.teach: each readable forward/backward pair against its fast op in
``scratchnet.ops`` (the output and every gradient, float64 to 1e-12) and against
central differences; and each fast op's docstring opens by naming its readable
version."""
import inspect

import numpy as np
import pytest
import torch
from helpers import dev, distinct, rel_err

import scratchnet as sn
from scratchnet import nn, ops, teach
from scratchnet.gradcheck import numerical_gradient, rel_error
from scratchnet.ops import pair

# Readable against fast: the same sums in another order, float64.
TOL = 1e-12
# Against central differences (eps 1e-6, float64), as fd_check in helpers.
FD_TOL = 1e-6


def normal(*shape, seed=0):
    return np.random.default_rng((seed, len(shape))).standard_normal(shape)


def pads(padding):
    """The fast ops' (top, bottom, left, right) of an int or (h, w) padding."""
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


def assert_same(got, want, what):
    """A readable result against the fast op's: None for both, or arrays of one dtype on
    the active device, equal to TOL relative to the largest magnitude."""
    if want is None:
        assert got is None, f"{what}: expected None"
        return
    assert sn.get_array_module(got) is sn.backend.device_module(), f"{what}: left the device"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, fast op {want.dtype}"
    err = rel_err(got, want)
    assert err <= TOL, f"{what} differs from the fast op: {err:.1e}"


def assert_fd(forward, inputs, grads, gy):
    """Each of ``grads`` against central differences of sum(forward() * gy) with respect
    to the input of the same place (``forward`` reads them; they are perturbed in place)."""
    def loss():
        return float((forward() * gy).sum())

    for k, (a, g) in enumerate(zip(inputs, grads)):
        err = rel_error(g, numerical_gradient(loss, a))
        assert err <= FD_TOL, f"gradient {k} differs from finite differences: {err:.1e}"


# x shape, W shape, stride, padding, dilation, bias
CONV = [((2, 3, 7, 8), (4, 3, 3, 3), 1, 0, 1, True),
        ((2, 3, 7, 8), (4, 3, 3, 2), 2, 1, 1, True),
        ((2, 2, 8, 7), (3, 2, 2, 3), (2, 1), (1, 0), (1, 2), False),
        ((1, 2, 9, 9), (2, 2, 3, 3), 3, 2, 2, True),
        ((2, 4, 5, 6), (6, 4, 1, 1), 1, 0, 1, True),
        # many input channels, few outputs: the fast op's other layout, and on the CPU
        # its input gradient through the flipped kernel
        ((2, 20, 5, 5), (2, 20, 3, 3), 1, 1, 1, True)]


def test_im2col_and_col2im_match_the_fast_ones(device):
    x = dev(normal(2, 3, 7, 8))
    for kh, kw, stride, padding, dilation in [(3, 2, 2, 1, 1), (2, 3, (2, 1), (1, 0), (1, 2))]:
        (sh, sw), (dh, dw) = pair(stride), pair(dilation)
        col = teach.im2col(x, kh, kw, stride, padding, dilation)
        fast = ops.im2col(x, kh, kw, sh, sw, pads(padding), dh, dw)
        assert_same(col, fast.transpose(3, 0, 1, 2, 4, 5), "im2col")
        c = dev(normal(*col.shape, seed=1))
        gx = teach.col2im(c, x.shape, stride, padding, dilation)
        fast = ops.col2im(c.transpose(1, 2, 3, 0, 4, 5), 7, 8, sh, sw, pads(padding), dh, dw)
        assert_same(gx, fast, "col2im")
        # col2im is im2col's adjoint: <im2col(x), c> = <x, col2im(c)>
        assert abs(float((col * c).sum() - (x * gx).sum())) <= TOL * float(abs(col * c).sum())


def conv_against_fast_op(x_shape, W_shape, stride, padding, dilation, bias, groups=1):
    """The readable conv's output and gradients equal the fast op's; returns
    (x, W, b, gy, the readable gradients) for a finite-difference check."""
    x, W = dev(normal(*x_shape)), dev(normal(*W_shape, seed=1))
    b = dev(normal(W_shape[0], seed=2)) if bias else None
    y, cache = teach.conv2d_forward(x, W, b, stride, padding, dilation, groups)
    args = (pair(stride), pads(padding), pair(dilation))
    y_fast, cols = ops.conv2d(x, W, b, *args, groups=groups)
    assert_same(y, y_fast, "y")
    gy = dev(normal(*y.shape, seed=3))
    grads = teach.conv2d_backward(gy, cache)
    fast = ops.conv2d_backward(gy, cols, W, x.shape, *args, need_gb=bias, groups=groups)
    for what, g, f in zip(("gx", "gW", "gb"), grads, fast):
        assert_same(g, f, what)
    return x, W, b, gy, grads


@pytest.mark.parametrize("x_shape, W_shape, stride, padding, dilation, bias", CONV, ids=str)
def test_conv2d_matches_fast_op(device, x_shape, W_shape, stride, padding, dilation, bias):
    conv_against_fast_op(x_shape, W_shape, stride, padding, dilation, bias)


@pytest.mark.parametrize("x_shape, W_shape, stride, padding, dilation, bias", CONV[:4], ids=str)
def test_conv2d_matches_finite_differences(device, x_shape, W_shape, stride, padding,
                                           dilation, bias):
    x, W = dev(normal(*x_shape)), dev(normal(*W_shape, seed=1))
    b = dev(normal(W_shape[0], seed=2)) if bias else None
    y, cache = teach.conv2d_forward(x, W, b, stride, padding, dilation)
    gy = dev(normal(*y.shape, seed=3))
    gx, gW, gb = teach.conv2d_backward(gy, cache)
    assert_fd(lambda: teach.conv2d_forward(x, W, b, stride, padding, dilation)[0],
              [x, W] + ([b] if bias else []), [gx, gW, gb], gy)


# x shape, W shape (O, C/groups, kh, kw), stride, padding, dilation, groups
GROUPED = [((2, 4, 6, 7), (6, 2, 3, 3), 2, 1, 1, 2),
           ((2, 4, 7, 6), (4, 1, 3, 2), 1, (2, 1), 2, 4),  # depthwise
           ((1, 6, 5, 5), (3, 2, 1, 1), 1, 0, 1, 3)]


@pytest.mark.parametrize("x_shape, W_shape, stride, padding, dilation, groups", GROUPED,
                         ids=str)
def test_grouped_conv2d_matches_fast_op_and_finite_differences(device, x_shape, W_shape,
                                                               stride, padding, dilation,
                                                               groups):
    x, W, b, gy, grads = conv_against_fast_op(x_shape, W_shape, stride, padding, dilation,
                                              True, groups)
    assert_fd(lambda: teach.conv2d_forward(x, W, b, stride, padding, dilation, groups)[0],
              [x, W, b], list(grads), gy)


# x shape, kernel, stride, padding, dilation
MAX_POOL = [((2, 3, 6, 8), 2, None, 0, 1),  # LeNet's 2x2/2: windows that tile the image
            ((2, 2, 7, 8), 3, 2, 1, 1),  # overlapping, padded
            ((2, 2, 7, 7), 3, 1, 1, 1),
            ((1, 2, 8, 7), (2, 3), (1, 2), (1, 1), (2, 1))]  # dilated


@pytest.mark.parametrize("x_shape, kernel, stride, padding, dilation", MAX_POOL, ids=str)
def test_max_pool2d_matches_fast_op_and_finite_differences(device, x_shape, kernel, stride,
                                                            padding, dilation):
    x = dev(distinct(x_shape))  # no ties: finite differences need a unique maximum
    y, cache = teach.max_pool2d_forward(x, kernel, stride, padding, dilation)
    k = pair(kernel)
    args = (k, pair(k if stride is None else stride), pads(padding), pair(dilation))
    y_fast, idx = ops.max_pool2d(x, *args)
    assert_same(y, y_fast, "y")
    gy = dev(normal(*y.shape, seed=3))
    gx = teach.max_pool2d_backward(gy, cache)
    assert_same(gx, ops.max_pool2d_backward(gy, idx, x.shape, *args), "gx")
    assert_fd(lambda: teach.max_pool2d_forward(x, kernel, stride, padding, dilation)[0],
              [x], [gx], gy)


def test_max_pool2d_gives_a_tie_to_the_first_maximum(device):
    # As PyTorch: of equal maxima, only the first in the window gets the gradient.
    x = dev(np.array([[[[1.0, 3.0], [3.0, 0.0]]]]))
    y, cache = teach.max_pool2d_forward(x, 2)
    gx = teach.max_pool2d_backward(dev(np.array([[[[5.0]]]])), cache)
    np.testing.assert_array_equal(sn.to_numpy(gx), [[[[0.0, 5.0], [0.0, 0.0]]]])


# x shape, kernel, stride, padding
AVG_POOL = [((2, 3, 6, 8), 2, None, 0),
            ((2, 2, 7, 8), 3, 2, 1),
            ((1, 2, 8, 7), (2, 3), (1, 2), (1, 1)),
            ((2, 2, 5, 5), 5, 1, 2)]  # every window holds padding


@pytest.mark.parametrize("x_shape, kernel, stride, padding", AVG_POOL, ids=str)
def test_avg_pool2d_matches_fast_op_and_finite_differences(device, x_shape, kernel, stride,
                                                            padding):
    x = dev(normal(*x_shape))
    y, cache = teach.avg_pool2d_forward(x, kernel, stride, padding)
    k = pair(kernel)
    args = (k, pair(k if stride is None else stride), pads(padding))
    assert_same(y, ops.avg_pool2d(x, *args), "y")
    gy = dev(normal(*y.shape, seed=3))
    gx = teach.avg_pool2d_backward(gy, cache)
    assert_same(gx, ops.avg_pool2d_backward(gy, x.shape, *args), "gx")
    assert_fd(lambda: teach.avg_pool2d_forward(x, kernel, stride, padding)[0], [x], [gx], gy)


def bn_data(shape):
    """x with its own mean and scale per channel; gamma, beta; running stats."""
    c, rs = shape[1], np.random.default_rng(4)
    per_channel = (1, c) + (1,) * (len(shape) - 2)
    x = rs.standard_normal(shape) * rs.uniform(0.5, 3, per_channel) + rs.standard_normal(
        per_channel)
    gamma, beta = rs.uniform(0.5, 2, c), rs.standard_normal(c)
    mean, var = rs.standard_normal(c), rs.uniform(0.5, 2, c)
    return [dev(a) for a in (x, gamma, beta, mean, var)]


BN_SHAPES = [(6, 3), (3, 3, 4), (2, 3, 3, 4)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_train_matches_fast_op_and_finite_differences(device, shape):
    x, gamma, beta, _, _ = bn_data(shape)
    axes = (0,) + tuple(range(2, len(shape)))
    y, cache = teach.batch_norm_train_forward(x, gamma, beta, 1e-3)
    y_fast, fast_cache, mean, var = ops.batch_norm_train(x, gamma, beta, 1e-3, axes)
    for what, a, b in (("y", y, y_fast), ("mean", cache[3], mean), ("var", cache[4], var)):
        assert_same(a, b, what)
    gy = dev(normal(*shape, seed=3))
    grads = teach.batch_norm_train_backward(gy, cache)
    fast = ops.batch_norm_train_backward(gy, fast_cache, gamma, axes)
    for what, g, f in zip(("gx", "ggamma", "gbeta"), grads, fast):
        assert_same(g, f, what)
    assert_fd(lambda: teach.batch_norm_train_forward(x, gamma, beta, 1e-3)[0],
              [x, gamma, beta], grads, gy)


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_eval_matches_fast_op_and_finite_differences(device, shape):
    x, gamma, beta, mean, var = bn_data(shape)
    axes = (0,) + tuple(range(2, len(shape)))
    y, cache = teach.batch_norm_eval_forward(x, gamma, beta, mean, var, 1e-3)
    y_fast, fast_cache = ops.batch_norm_eval(x, gamma, beta, mean, var, 1e-3, axes)
    assert_same(y, y_fast, "y")
    gy = dev(normal(*shape, seed=3))
    grads = teach.batch_norm_eval_backward(gy, cache)
    fast = ops.batch_norm_eval_backward(gy, fast_cache, gamma, axes)
    for what, g, f in zip(("gx", "ggamma", "gbeta"), grads, fast):
        assert_same(g, f, what)
    assert_fd(lambda: teach.batch_norm_eval_forward(x, gamma, beta, mean, var, 1e-3)[0],
              [x, gamma, beta], grads, gy)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_fast_op_and_finite_differences(device, bias):
    x, W = dev(normal(5, 7)), dev(normal(4, 7, seed=1))
    b = dev(normal(4, seed=2)) if bias else None
    y, cache = teach.linear_forward(x, W, b)
    assert_same(y, ops.linear(x, W, b), "y")
    gy = dev(normal(5, 4, seed=3))
    grads = teach.linear_backward(gy, cache)
    for what, g, f in zip(("gx", "gW", "gb"), grads,
                          ops.linear_backward(gy, x, W, need_gb=bias)):
        assert_same(g, f, what)
    assert_fd(lambda: teach.linear_forward(x, W, b)[0], [x, W] + ([b] if bias else []),
              grads, gy)


@pytest.mark.parametrize("name", ["relu", "sigmoid"])
def test_activation_matches_fast_op_and_finite_differences(device, name):
    forward, backward = getattr(teach, f"{name}_forward"), getattr(teach, f"{name}_backward")
    x = dev(distinct((2, 3, 4, 5), scale=6.0))  # nothing at ReLU's kink
    y, cache = forward(x)
    y_fast = getattr(ops, name)(x)
    assert_same(y, y_fast, "y")
    gy = dev(normal(*x.shape, seed=3))
    gx = backward(gy, cache)
    assert_same(gx, getattr(ops, f"{name}_backward")(gy, y_fast), "gx")
    assert_fd(lambda: forward(x)[0], [x], [gx], gy)


def test_sigmoid_of_large_inputs_is_exact_and_quiet():
    # exp(-x) overflows to inf for x = -1e4: y is then exactly 0, with no warning.
    with np.errstate(all="raise"):
        y, _ = teach.sigmoid_forward(np.array([-1e4, 0.0, 1e4]))
    np.testing.assert_array_equal(y, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("gy", [1.0, 0.7])
def test_softmax_cross_entropy_matches_fast_op_and_finite_differences(device, gy):
    # Logits up to 1e2 apart: exp without the shift by the row maximum would overflow.
    z = dev(normal(6, 5) * 3 + np.array([[0.0], [1e2], [-1e2], [0.0], [5.0], [0.0]]))
    labels = dev(np.array([0, 4, 2, 2, 1, 3]))
    loss, cache = teach.softmax_cross_entropy_forward(z, labels)
    loss_fast, probs = ops.softmax_cross_entropy(z, labels)
    assert_same(loss, loss_fast, "loss")
    gz = teach.softmax_cross_entropy_backward(gy, cache)
    assert_same(gz, ops.softmax_cross_entropy_backward(probs, labels, "mean", gy), "gz")
    assert_fd(lambda: teach.softmax_cross_entropy_forward(z, labels)[0], [z], [gz], gy)


def layer_against_readable(layer, forward, backward, inputs, gy_shape=None, seed=3):
    """The layer's output and dL/d(first input) equal the readable pair's; returns
    (y, gy, the readable gradients) for the finite-difference and PyTorch checks."""
    y, cache = forward(*inputs)
    assert_same(y, layer(*inputs), "y")
    gy = dev(normal(*(y.shape if gy_shape is None else gy_shape), seed=seed))
    grads = backward(gy, cache)
    first = grads[0] if isinstance(grads, tuple) else grads
    assert_same(first, layer.backward(gy), "gx")
    return y, gy, grads


def assert_torch(got, want, what):
    err = rel_err(got, want)
    assert err <= TOL, f"{what} differs from PyTorch: {err:.1e}"


def torch_grads(f, inputs, gy):
    """f's output on torch copies of ``inputs`` and the gradient of sum(f * gy) for each."""
    ts = [torch.tensor(sn.to_numpy(a), requires_grad=True) for a in inputs]
    y = f(*ts)
    y.backward(torch.as_tensor(sn.to_numpy(gy)))
    return y, [t.grad for t in ts]


def test_tanh_matches_the_layer_pytorch_and_finite_differences(device):
    x = dev(normal(2, 3, 4, 5) * 2)
    y, gy, gx = layer_against_readable(nn.Tanh(), teach.tanh_forward, teach.tanh_backward, [x])
    assert_fd(lambda: teach.tanh_forward(x)[0], [x], [gx], gy)
    ty, (tgx,) = torch_grads(torch.tanh, [x], gy)
    assert_torch(y, ty, "y")
    assert_torch(gx, tgx, "gx")


@pytest.mark.parametrize("p", [0.5, 0.2, 1.0])
def test_dropout_with_the_layers_draw_matches_it_and_finite_differences(device, p):
    x = dev(normal(3, 4, 5) + 10.0)  # no zeros: y == 0 exactly where dropped
    layer = nn.Dropout(p)
    sn.manual_seed(7)
    y_fast = layer(x)
    sn.manual_seed(7)  # the same uniform draw as the layer's, kept where u >= p
    keep = sn.backend.random_uniform(sn.get_array_module(x), x.shape, x.dtype) >= p
    assert (sn.to_numpy(y_fast) != 0).tolist() == sn.to_numpy(keep).tolist()
    y, cache = teach.dropout_forward(x, p, keep)
    assert_same(y, y_fast, "y")
    gy = dev(normal(3, 4, 5, seed=3))
    gx = teach.dropout_backward(gy, cache)
    assert_same(gx, layer.backward(gy), "gx")
    kept = sn.to_numpy(keep)
    if p < 1:  # inverted: a kept value is scaled by 1/(1 - p), as PyTorch's
        np.testing.assert_allclose(sn.to_numpy(y)[kept], sn.to_numpy(x)[kept] / (1 - p),
                                   rtol=1e-15)
    assert not sn.to_numpy(y)[~kept].any()
    assert_fd(lambda: teach.dropout_forward(x, p, keep)[0], [x], [gx], gy)


# x shape, W shape (O, C/groups, k), stride, padding, dilation, groups, bias
CONV1D = [((2, 3, 9), (4, 3, 3), 1, 0, 1, 1, True),
          ((2, 4, 11), (6, 2, 3), 2, 1, 2, 2, False),
          ((1, 2, 8), (3, 2, 1), 1, 0, 1, 1, True)]


@pytest.mark.parametrize("x_shape, W_shape, stride, padding, dilation, groups, bias", CONV1D,
                         ids=str)
def test_conv1d_matches_the_layer_pytorch_and_finite_differences(device, x_shape, W_shape,
                                                                 stride, padding, dilation,
                                                                 groups, bias):
    sn.set_default_dtype(np.float64)
    x, W = dev(normal(*x_shape)), dev(normal(*W_shape, seed=1))
    b = dev(normal(W_shape[0], seed=2)) if bias else None
    layer = nn.Conv1d(x_shape[1], W_shape[0], W_shape[2], stride, padding, dilation, bias,
                      groups)
    layer.load_state_dict({"weight": W, **({"bias": b} if bias else {})})
    args = (stride, padding, dilation, groups)
    y, gy, grads = layer_against_readable(
        layer, lambda x: teach.conv1d_forward(x, W, b, *args), teach.conv1d_backward, [x])
    named = dict(layer.named_parameters())
    assert_same(grads[1], sn.to_device(sn.to_numpy(named["weight"].grad)), "gW")
    assert_same(grads[2], None if not bias else sn.to_device(sn.to_numpy(named["bias"].grad)),
                "gb")
    inputs = [x, W] + ([b] if bias else [])
    assert_fd(lambda: teach.conv1d_forward(x, W, b, *args)[0], inputs, grads, gy)
    ty, tgrads = torch_grads(lambda *t: torch.nn.functional.conv1d(
        t[0], t[1], t[2] if bias else None, *args), inputs, gy)
    assert_torch(y, ty, "y")
    for what, g, t in zip(("gx", "gW", "gb"), grads, tgrads):
        assert_torch(g, t, what)


@pytest.mark.parametrize("gy", [1.0, 0.7])
def test_mse_loss_matches_the_layer_pytorch_and_finite_differences(device, gy):
    y, t = dev(normal(4, 3, 2)), dev(normal(4, 3, 2, seed=1))
    loss, cache = teach.mse_loss_forward(y, t)
    layer = nn.MSELoss()
    assert_same(loss, layer(y, t), "loss")
    g = teach.mse_loss_backward(gy, cache)
    assert_same(g, layer.backward(gy), "gy")
    assert_fd(lambda: teach.mse_loss_forward(y, t)[0], [y], [g], gy)
    tl, (tg, tgt) = torch_grads(torch.nn.functional.mse_loss, [y, t], np.float64(gy))
    assert_torch(loss, tl, "loss")
    assert_torch(g, tg, "gy")
    assert_torch(-g, tgt, "gt")  # the target's gradient is the negative


# x shape, output size: 7x5 -> 3x2 has bins that share a row and a column
ADAPTIVE = [((2, 3, 7, 5), (3, 2)), ((1, 2, 6, 6), 4), ((2, 2, 5, 7), (5, 1)),
            ((1, 2, 4, 3), (1, 1)), ((1, 1, 3, 4), (6, 5))]  # larger than the input


@pytest.mark.parametrize("x_shape, out", ADAPTIVE, ids=str)
def test_adaptive_avg_pool2d_matches_the_layer_pytorch_and_finite_differences(device, x_shape,
                                                                              out):
    x = dev(normal(*x_shape))
    y, gy, gx = layer_against_readable(
        nn.AdaptiveAvgPool2d(out), lambda x: teach.adaptive_avg_pool2d_forward(x, out),
        teach.adaptive_avg_pool2d_backward, [x])
    assert y.shape == x_shape[:2] + pair(out)
    assert_fd(lambda: teach.adaptive_avg_pool2d_forward(x, out)[0], [x], [gx], gy)
    ty, (tgx,) = torch_grads(lambda t: torch.nn.functional.adaptive_avg_pool2d(t, out), [x], gy)
    assert_torch(y, ty, "y")
    assert_torch(gx, tgx, "gx")


def test_float32_stays_float32(device):
    def f32(*shape, seed=0):
        return dev(np.abs(normal(*shape, seed=seed)).astype(np.float32) + np.float32(0.1))

    x, c = f32(2, 3, 6, 6), f32(3)
    pairs = {"conv2d": (f32(4, 3, 3, 3), f32(4), 1, 1), "max_pool2d": (2,), "avg_pool2d": (2,),
             "batch_norm_train": (c, c), "batch_norm_eval": (c, c, c, c), "relu": (),
             "sigmoid": (), "tanh": (), "dropout": (0.5, x > 0.5),
             "adaptive_avg_pool2d": ((4, 3),), "mse_loss": (x * 2,)}
    for name, args in pairs.items():
        y, cache = getattr(teach, f"{name}_forward")(x, *args)
        grads = getattr(teach, f"{name}_backward")(sn.get_array_module(y).ones_like(y), cache)
        for a in [y] + list(grads if isinstance(grads, tuple) else [grads]):
            assert a.dtype == np.float32, name
    y, cache = teach.linear_forward(f32(5, 7), f32(3, 7), f32(3))
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in teach.linear_backward(y, cache))
    y, cache = teach.conv1d_forward(f32(2, 3, 7), f32(4, 3, 3), f32(4), 2, 1)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in teach.conv1d_backward(y, cache))
    loss, cache = teach.softmax_cross_entropy_forward(f32(5, 4), dev(np.arange(5) % 4))
    assert loss.dtype == np.float32
    assert teach.softmax_cross_entropy_backward(1.0, cache).dtype == np.float32


# Each fast op and the readable version its docstring must name first.
FAST_OPS = [(ops.conv2d, "conv2d_forward"), (ops.conv2d_backward, "conv2d_backward"),
            (ops.max_pool2d, "max_pool2d_forward"),
            (ops.max_pool2d_backward, "max_pool2d_backward"),
            (ops.avg_pool2d, "avg_pool2d_forward"),
            (ops.avg_pool2d_backward, "avg_pool2d_backward"),
            (ops.batch_norm_train, "batch_norm_train_forward"),
            (ops.batch_norm_train_backward, "batch_norm_train_backward"),
            (ops.batch_norm_eval, "batch_norm_eval_forward"),
            (ops.batch_norm_eval_backward, "batch_norm_eval_backward"),
            (ops.linear, "linear_forward"), (ops.linear_backward, "linear_backward"),
            (ops.relu, "relu_forward"), (ops.relu_backward, "relu_backward"),
            (ops.sigmoid, "sigmoid_forward"), (ops.sigmoid_backward, "sigmoid_backward"),
            (ops.softmax_cross_entropy, "softmax_cross_entropy_forward"),
            (ops.softmax_cross_entropy_backward, "softmax_cross_entropy_backward"),
            (ops.concat, "concat_forward"), (ops.concat_backward, "concat_backward"),
            (ops.tanh, "tanh_forward"), (ops.tanh_backward, "tanh_backward"),
            (ops.dropout, "dropout_forward"), (ops.dropout_backward, "dropout_backward"),
            (ops.mse, "mse_loss_forward"), (ops.mse_backward, "mse_loss_backward"),
            (ops.adaptive_avg_pool2d, "adaptive_avg_pool2d_forward"),
            (ops.adaptive_avg_pool2d_backward, "adaptive_avg_pool2d_backward")]
# Readable pairs whose fast twin is a special case or a row of layers, not one op; each is
# held equal to it in tests/test_teach_chapter8.py (conv1x1 to ops.conv2d with a 1x1 kernel,
# global_avg_pool to AdaptiveAvgPool2d((1, 1)) + Flatten, transition to DenseNet's block).
COMPOSED = {f"{name}_{way}" for name in ("conv1x1", "global_avg_pool", "transition")
            for way in ("forward", "backward")}


# Layers whose class docstring names their readable version: Conv1d's fast code is
# Conv2d's, the others' ops are one line or a layer-level loop.
LAYER_TWINS = [(layer, f"{name}_{way}") for layer, name in
               ((nn.Tanh, "tanh"), (nn.Dropout, "dropout"), (nn.Conv1d, "conv1d"),
                (nn.MSELoss, "mse_loss"), (nn.AdaptiveAvgPool2d, "adaptive_avg_pool2d"))
               for way in ("forward", "backward")]
# Every layer of scratchnet.nn and its readable pairs (each <name>_forward/_backward);
# what is no layer of its own computing (containers, a reshape) is listed apart.
READABLE = {"Conv1d": ["conv1d"], "Conv2d": ["conv2d"], "LazyConv2d": ["conv2d"],
            "Linear": ["linear"], "LazyLinear": ["linear"], "MaxPool2d": ["max_pool2d"],
            "AvgPool2d": ["avg_pool2d"], "AdaptiveAvgPool2d": ["adaptive_avg_pool2d"],
            "ReLU": ["relu"], "Sigmoid": ["sigmoid"], "Tanh": ["tanh"], "Dropout": ["dropout"],
            "CrossEntropyLoss": ["softmax_cross_entropy"], "MSELoss": ["mse_loss"],
            **{bn: ["batch_norm_train", "batch_norm_eval"] for bn in
               ("BatchNorm1d", "BatchNorm2d", "LazyBatchNorm1d", "LazyBatchNorm2d")}}
NOT_LAYERS = {"Module", "Sequential", "Flatten"}


@pytest.mark.parametrize("fast, readable", FAST_OPS, ids=[r for _, r in FAST_OPS])
def test_fast_op_docstring_opens_with_its_readable_version(fast, readable):
    assert callable(getattr(teach, readable, None)), f"scratchnet.teach has no {readable}"
    first = (inspect.getdoc(fast) or "").split("\n")[0]
    assert f":func:`scratchnet.teach.{readable}`" in first, \
        f"{fast.__module__}.{fast.__name__}: docstring opens with {first!r}"


@pytest.mark.parametrize("layer, readable", LAYER_TWINS, ids=[r for _, r in LAYER_TWINS])
def test_layer_docstring_names_its_readable_version(layer, readable):
    assert callable(getattr(teach, readable, None)), f"scratchnet.teach has no {readable}"
    doc = layer.__dict__.get("__doc__") or ""  # its own, not one inherited
    assert f":func:`scratchnet.teach.{readable}`" in doc, f"nn.{layer.__name__}: {doc!r}"


def test_every_layer_in_nn_has_a_readable_version():
    layers = {name for name in set(nn.__all__) | set(vars(nn))
              if isinstance(getattr(nn, name, None), type)
              and issubclass(getattr(nn, name), nn.Module)}
    missing = sorted(layers - NOT_LAYERS - set(READABLE))
    assert not missing, f"layers of scratchnet.nn with no readable version listed: {missing}"
    for layer, names in READABLE.items():
        assert layer in layers, f"{layer} is no layer of scratchnet.nn"
        for name in names:
            for way in ("forward", "backward"):
                assert callable(getattr(teach, f"{name}_{way}", None)), \
                    f"nn.{layer}: scratchnet.teach has no {name}_{way}"


def test_every_readable_version_is_a_fast_op_twin_and_fits_a_screen():
    # Each readable function stays short enough to read in one screen.
    public = [f for name, f in vars(teach).items()
              if inspect.isfunction(f) and f.__module__ == teach.__name__
              and not name.startswith("_")]
    named = {r for _, r in FAST_OPS + LAYER_TWINS}
    assert named <= {f.__name__ for f in public}
    for f in public:
        assert f.__name__ in named | COMPOSED | {"im2col", "col2im"}, \
            f"{f.__name__}: no fast twin listed"
        lines = len(inspect.getsource(f).splitlines())
        assert lines <= 30, f"{f.__name__}: {lines} lines"
