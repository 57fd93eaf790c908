"""Conv2d, LazyConv2d and Conv1d: torch parity, finite differences, the book's examples
(d2l 7.2 to 7.4), dtype, and bad input."""
import copy

import numpy as np
import pytest
import torch
from helpers import (GPU_DEVICES, assert_dtype_kept, assert_equal, assert_host_input_refused,
                     assert_refusal_changes_nothing, assert_works_like, dev, fd_check,
                     torch_parity)

import scratchnet as sn
from scratchnet import nn
from scratchnet.reference import corr2d, corr2d_multi_in_out_1x1


# torch warns that an even 'same' kernel makes it copy the input; that is its business.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

DTYPES = [np.float64, np.float32]

CONV2D = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0)),
    dict(kernel_size=5, stride=3, padding=2),
    dict(kernel_size=3, stride=2, padding="valid"),
    dict(kernel_size=2, padding="same"),
    dict(kernel_size=(3, 4), padding="same", dilation=(1, 2)),
    dict(kernel_size=3, padding=(2, 1), dilation=2),
    # PyTorch's 1-tuple (or list) spelling of an int stride, padding or dilation
    dict(kernel_size=3, stride=(2,), padding=(1,), dilation=(2,)),
    dict(kernel_size=(2, 3), stride=[1], padding=[2], dilation=[1]),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", CONV2D, ids=str)
def test_conv2d_matches_torch(device, kwargs, dtype, bias):
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 8))
    torch_parity(nn.Conv2d(3, 4, bias=bias, **kwargs),
                 torch.nn.Conv2d(3, 4, bias=bias, **kwargs), x, dtype, steps=3, device=device)


@pytest.mark.parametrize("make", [nn.Conv2d, lambda c, o, **kw: nn.LazyConv2d(o, **kw)],
                         ids=["Conv2d", "LazyConv2d"])
def test_one_tuples_are_the_ints(device, make):
    """stride=(2,), padding=(1,), dilation=(2,) are stride=2, padding=1, dilation=2: the
    same layer, the same bits forward and backward (torch parity: CONV2D)."""
    ones = make(3, 4, kernel_size=3, stride=(2,), padding=[1], dilation=(2,))
    ints = make(3, 4, kernel_size=3, stride=2, padding=1, dilation=2)
    x = dev(np.random.default_rng(5).standard_normal((2, 3, 7, 8)).astype(np.float32))
    ones(x)
    ints.load_state_dict(ones.state_dict())
    ints(x)  # a LazyConv2d given its weights by load_state_dict is a Conv2d from its next call
    assert repr(ones) == repr(ints)
    assert (ones.stride, ones.padding, ones.dilation, ones.pads) == (
        ints.stride, ints.padding, ints.dilation, ints.pads)
    assert_works_like(ones, ints, x)


def test_a_one_tuple_kernel_is_refused_as_torch_fails_on_it():
    """PyTorch's Conv2d takes kernel_size=(3,) and then fails at its first call (a 3-D
    weight); scratchnet refuses it when the layer is made."""
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(1, 1, (3,))(torch.zeros(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"Conv2d kernel_size: expected an int or an \(h, w\) "
                                         r"pair, got \(3,\)"):
        nn.Conv2d(1, 1, (3,))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", CONV2D[::2], ids=str)
def test_lazy_conv2d_matches_torch(device, kwargs, dtype, bias):
    x = np.random.default_rng(2).standard_normal((2, 2, 8, 7))
    torch_parity(nn.LazyConv2d(3, bias=bias, **kwargs),
                 torch.nn.LazyConv2d(3, bias=bias, **kwargs), x, dtype, steps=2, device=device)


CONV1D = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=1),
    dict(kernel_size=4, stride=2, padding=(1,)),
    dict(kernel_size=(5,), stride=3, padding=2, dilation=1),
    dict(kernel_size=2, padding="same", dilation=3),
    dict(kernel_size=3, padding="valid", dilation=2),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", CONV1D, ids=str)
def test_conv1d_matches_torch(device, kwargs, dtype, bias):
    x = np.random.default_rng(3).standard_normal((2, 3, 11))
    torch_parity(nn.Conv1d(3, 2, bias=bias, **kwargs),
                 torch.nn.Conv1d(3, 2, bias=bias, **kwargs), x, dtype, steps=3, device=device)


# (N, C, O, H, W), Conv2d keyword arguments: kernel 1, 2, 3, 5 and tuples, stride 1 to 3 and
# tuples, padding 0 to 2, tuples and strings, dilation 1 and 2, odd and even sizes.
FD_CONV2D = [
    ((1, 1, 1, 5, 5), dict(kernel_size=1)),
    ((2, 2, 3, 6, 7), dict(kernel_size=2, padding=1)),
    ((1, 3, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 1, 2, 8, 8), dict(kernel_size=5, stride=3, padding=2)),
    ((1, 2, 2, 7, 8), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
    ((2, 2, 1, 5, 6), dict(kernel_size=(3, 1), stride=(3, 1), padding=(0, 2), dilation=2)),
    ((1, 1, 2, 6, 5), dict(kernel_size=3, padding=2, dilation=2, bias=False)),
    ((2, 2, 2, 5, 6), dict(kernel_size=(2, 4), padding="same")),
    ((1, 2, 3, 6, 6), dict(kernel_size=3, stride=(2, 3), padding="valid")),
]


@pytest.mark.parametrize("shape, kwargs", FD_CONV2D, ids=str)
def test_conv2d_by_finite_differences(shape, kwargs, device):
    n, c, o, h, w = shape
    fd_check(nn.Conv2d(c, o, **kwargs), np.random.default_rng(4).standard_normal((n, c, h, w)))


@pytest.mark.parametrize("shape, kwargs", FD_CONV2D[1::3], ids=str)
def test_lazy_conv2d_by_finite_differences(shape, kwargs, device):
    n, c, o, h, w = shape
    fd_check(nn.LazyConv2d(o, **kwargs), np.random.default_rng(5).standard_normal((n, c, h, w)))


@pytest.mark.parametrize("shape, kwargs", [
    ((1, 1, 1, 7), dict(kernel_size=1)),
    ((2, 2, 3, 8), dict(kernel_size=3, padding=1)),
    ((1, 3, 2, 9), dict(kernel_size=5, stride=2, padding=2)),
    ((2, 1, 2, 8), dict(kernel_size=2, stride=3, dilation=2, bias=False)),
    ((2, 2, 2, 7), dict(kernel_size=4, padding="same")),
], ids=str)
def test_conv1d_by_finite_differences(shape, kwargs, device):
    n, c, o, length = shape
    fd_check(nn.Conv1d(c, o, **kwargs), np.random.default_rng(6).standard_normal((n, c, length)))


def comp_conv2d(conv2d, X):
    """d2l 7.3's helper: add and strip the batch and channel axes."""
    Y = conv2d(X.reshape((1, 1) + X.shape))
    return Y.reshape(Y.shape[2:])


@pytest.mark.parametrize("kwargs, shape", [
    (dict(kernel_size=3, padding=1), (8, 8)),
    (dict(kernel_size=(5, 3), padding=(2, 1)), (8, 8)),
    (dict(kernel_size=3, padding=1, stride=2), (4, 4)),
    (dict(kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), (2, 2)),
], ids=str)
def test_book_padding_and_stride_shapes(device, kwargs, shape):
    X = sn.to_device(np.random.default_rng(0).random((8, 8), dtype=np.float32), device)
    assert comp_conv2d(nn.LazyConv2d(1, **kwargs), X).shape == shape


def test_book_exercise_stride_3_4_on_10x10(device):
    kwargs = dict(kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
    conv2d = nn.Conv2d(1, 1, **kwargs)
    X = np.random.default_rng(0).random((1, 1, 10, 10))
    assert conv2d(sn.to_device(X.astype(np.float32), device)).shape == (1, 1, 3, 2)
    torch_parity(conv2d, torch.nn.Conv2d(1, 1, **kwargs), X, np.float32, device=device)


def test_book_exercise_conv1d_on_an_audio_signal(device):
    kwargs = dict(kernel_size=3, stride=1, padding=1)
    conv1d = nn.Conv1d(in_channels=1, out_channels=1, **kwargs)
    signal = np.random.default_rng(0).standard_normal((1, 1, 100))
    assert conv1d(sn.to_device(signal.astype(np.float32), device)).shape == (1, 1, 100)
    torch_parity(conv1d, torch.nn.Conv1d(1, 1, **kwargs), signal, np.float32, device=device)


def edge_image():
    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    return X


def test_book_edge_detection(device):
    X, K = edge_image(), np.array([[1.0, -1.0]], dtype=np.float32)
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    conv2d(sn.to_device(X.reshape(1, 1, 6, 8), device))
    conv2d.weight.data[:] = sn.to_device(K.reshape(1, 1, 1, 2), device)
    Y = conv2d(sn.to_device(X.reshape(1, 1, 6, 8), device))
    np.testing.assert_array_equal(sn.to_numpy(Y).reshape(6, 7), corr2d(X, K))
    assert sn.to_numpy(Y)[0, 0, 0].tolist() == [0, 1, 0, 0, 0, -1, 0]
    # Transposed, the edges are horizontal and this kernel sees none.
    Yt = conv2d(sn.to_device(np.ascontiguousarray(X.T).reshape(1, 1, 8, 6), device))
    assert not sn.to_numpy(Yt).any()


def test_book_learning_a_kernel(device):
    # d2l 7.2.4, line by line, with our backward in place of autograd's.
    X, K = edge_image(), np.array([[1.0, -1.0]], dtype=np.float32)
    Y = sn.to_device(corr2d(X, K).reshape((1, 1, 6, 7)), device)
    X = sn.to_device(X.reshape((1, 1, 6, 8)), device)
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    lr = 3e-2
    losses = []
    for i in range(10):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        conv2d.backward(2 * (Y_hat - Y))
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        losses.append(float(l.sum()))
    assert conv2d.weight.data.dtype == np.float32
    # Measured with manual_seed(0): 6.84 -> 0.0068, kernel [0.984, -0.999].
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.01 * losses[0], losses
    np.testing.assert_allclose(sn.to_numpy(conv2d.weight.data).reshape(2), [1.0, -1.0],
                               atol=0.05)


def test_book_two_stacked_same_size_convolutions(device):
    net = nn.Sequential(nn.Conv2d(1, 1, kernel_size=3, padding=1),
                        nn.Conv2d(1, 1, kernel_size=3, padding=1))
    X = np.random.default_rng(0).random((1, 1, 10, 10), dtype=np.float32)
    assert net(sn.to_device(X, device)).shape == (1, 1, 10, 10)
    assert net.backward(sn.to_device(np.ones((1, 1, 10, 10), np.float32), device)).shape == \
        (1, 1, 10, 10)
    fd_check(net, X)  # on the test's device: the network is there


def test_book_1x1_convolution_is_a_per_pixel_matmul(device):
    rs = np.random.default_rng(0)
    X, K = rs.normal(0, 1, (3, 3, 3)), rs.normal(0, 1, (2, 3, 1, 1))
    sn.set_default_dtype(np.float64)
    conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
    conv.weight.data[:] = sn.to_device(K, device)
    Y = sn.to_numpy(conv(sn.to_device(X[None], device)))[0]
    np.testing.assert_allclose(Y, corr2d_multi_in_out_1x1(X, K), rtol=1e-12, atol=1e-14)


LAYERS = [
    (lambda: nn.Conv2d(2, 3, kernel_size=3, stride=2, padding=1), (2, 2, 7, 6)),
    (lambda: nn.LazyConv2d(3, kernel_size=(2, 3), padding="same"), (1, 2, 6, 7)),
    (lambda: nn.Conv1d(2, 3, kernel_size=3, padding=1, dilation=2), (2, 2, 9)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make, shape", LAYERS, ids=["Conv2d", "LazyConv2d", "Conv1d"])
def test_dtype_is_kept(device, make, shape, dtype):
    sn.set_default_dtype(dtype)
    layer = make()
    x = sn.to_device(np.random.default_rng(0).standard_normal(shape).astype(dtype), device)
    assert_dtype_kept(layer, x, dtype)


X4 = np.random.default_rng(7).standard_normal((2, 2, 5, 5)).astype(np.float32)
X3 = X4[:, :, 0, :].copy()
BAD_INPUT = [
    (nn.Conv2d, X4[0, 0], ValueError,
     r"Conv2d: expected a 3 or 4-D input \(N, C, H, W\) or \(C, H, W\), got 2-D input of "
     r"shape \(5, 5\)"),
    (nn.Conv2d, X4[:, :1], ValueError,
     r"Conv2d: expected 2 input channels, got input of shape \(2, 1, 5, 5\) with 1"),
    (nn.Conv2d, X4[:, :, :2, :2], ValueError,
     r"Conv2d: kernel \(3, 3\) \(dilation \(1, 1\)\) is larger than the padded input 2x2"),
    (nn.Conv2d, X4.tolist(), TypeError,
     r"Conv2d: expected a numpy or cupy array \(N, C, H, W\) or \(C, H, W\), got list"),
    (nn.Conv2d, X4.astype(np.int64), TypeError,
     r"Conv2d: expected a floating-point input, got int64"),
    (nn.Conv2d, X4.astype(np.float64), TypeError,
     r"Conv2d: input dtype float64 does not match weight dtype float32"),
    (nn.Conv1d, X4, ValueError,
     r"Conv1d: expected a 2 or 3-D input \(N, C, L\) or \(C, L\), got 4-D input of shape "
     r"\(2, 2, 5, 5\)"),
    (nn.Conv1d, X3[:, :, :2], ValueError,
     r"Conv1d: kernel \(1, 3\) \(dilation \(1, 1\)\) is larger than the padded input 1x2"),
    (nn.Conv1d, X3[:, :1], ValueError, r"Conv1d: expected 2 input channels, got .* with 1"),
    (nn.Conv1d, X3.tolist(), TypeError, r"Conv1d: expected a numpy or cupy array .*got list"),
    (nn.Conv1d, X3.astype(np.int32), TypeError, r"Conv1d: expected a floating-point input"),
]


@pytest.mark.parametrize("cls, x, error, match", BAD_INPUT,
                         ids=["Conv2d-2D", "Conv2d-channels", "Conv2d-too-small", "Conv2d-list",
                              "Conv2d-int", "Conv2d-float64", "Conv1d-4D", "Conv1d-too-small",
                              "Conv1d-channels", "Conv1d-list", "Conv1d-int"])
def test_bad_input_is_refused_and_changes_nothing(device, cls, x, error, match):
    layer = cls(2, 3, kernel_size=3)
    assert_refusal_changes_nothing(layer, copy.deepcopy(layer),
                                   dev(X4 if cls is nn.Conv2d else X3), dev(x), error, match)


@pytest.mark.parametrize("cls", [nn.Conv2d, nn.Conv1d])
def test_bad_backward_is_refused_and_changes_nothing(device, cls):
    layer = cls(2, 3, kernel_size=3)
    fresh = copy.deepcopy(layer)
    good = dev(X4 if cls is nn.Conv2d else X3)
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}\.backward: called before forward"):
        layer.backward(dev(np.ones((2, 3, 3, 3)[:good.ndim], np.float32)))
    y = layer(good)
    for gy in (dev(np.ones(y.shape[:-1] + (y.shape[-1] + 1,), np.float32)), y[0], y.tolist()):
        shape = tuple(gy.shape) if not isinstance(gy, list) else ()
        with pytest.raises(ValueError, match=rf"{name}\.backward: expected gy of shape "
                                             rf"{_re_shape(y.shape)} \(the forward output\), "
                                             rf"got {_re_shape(shape)}"):
            layer.backward(gy)
    # The refused gy left the forward cache in place.
    layer.zero_grad()
    layer.backward(dev(np.ones(y.shape, np.float32)))
    assert_works_like(layer, fresh, good)


def _re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_lazy_conv2d_refused_first_input_leaves_it_lazy(device):
    x = dev(np.random.default_rng(0).standard_normal((1, 3, 6, 6)).astype(np.float32))
    sn.manual_seed(3)
    fresh = nn.LazyConv2d(2, kernel_size=5)
    fresh(x)
    sn.manual_seed(3)
    layer = nn.LazyConv2d(2, kernel_size=5)
    with pytest.raises(ValueError, match=r"LazyConv2d: kernel \(5, 5\) .* larger than the "
                                         r"padded input 3x3"):
        layer(dev(np.zeros((1, 4, 3, 3), np.float32)))
    with pytest.raises(ValueError, match=r"LazyConv2d: expected a 3 or 4-D input"):
        layer(x[0, 0])
    assert layer.weight.array is None and layer.in_channels is None
    assert_works_like(layer, fresh, x)
    assert layer.in_channels == 3 and layer.name == "Conv2d"
    assert sn.get_array_module(layer.weight.data) is sn.get_array_module(x)


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("make, shape", LAYERS, ids=["Conv2d", "LazyConv2d", "Conv1d"])
def test_device_layer_refuses_host_arrays_and_changes_nothing(device, make, shape):
    """A numpy input or gy for a layer on the GPU (and a device input for the layer moved
    back to the CPU) is a ValueError naming the layer and saying which is where."""
    x = dev(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    layer = make()
    assert_host_input_refused(layer, x)
    name = layer.name
    fresh = copy.deepcopy(layer)
    y = layer(x)
    fresh(x)
    with pytest.raises(ValueError, match=rf"{name}\.backward: the output is on gpu but gy on "
                                         r"cpu"):
        layer.backward(np.ones(y.shape, np.float32))
    gy = dev(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
    layer.zero_grad()
    fresh.zero_grad()
    assert_equal(layer.backward(gy), fresh.backward(gy))
    for p, q in zip(layer.parameters(), fresh.parameters()):
        assert_equal(p.grad, q.grad)
    layer.to(device="cpu")
    with pytest.raises(ValueError, match=rf"{name}: input is a cupy array \(gpu\) but weight "
                                         r"is a numpy array \(cpu\)"):
        layer(x)
    assert sn.to_numpy(layer(sn.to_numpy(x))).shape == y.shape


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Conv2d(1, 1, 0), ValueError, r"Conv2d: kernel_size must be >= 1, got \(0, 0\)"),
    (lambda: nn.Conv2d(1, 1, (3, 0)), ValueError, r"Conv2d: kernel_size must be >= 1"),
    (lambda: nn.Conv2d(1, 1, 3, stride=0), ValueError, r"Conv2d: stride must be >= 1, got"),
    (lambda: nn.Conv2d(1, 1, 3, dilation=0), ValueError, r"Conv2d: dilation must be >= 1"),
    (lambda: nn.Conv2d(1, 1, 3, padding=-1), ValueError,
     r"Conv2d: padding must be >= 0, got \(-1, -1\)"),
    (lambda: nn.Conv2d(1, 1, 3, padding=(1, -2)), ValueError, r"Conv2d: padding must be >= 0"),
    (lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), ValueError,
     r"Conv2d: padding='same' needs stride 1, got \(2, 2\)"),
    (lambda: nn.Conv2d(1, 1, 3, padding="full"), ValueError,
     r"Conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"),
    (lambda: nn.Conv2d(0, 1, 3), ValueError, r"Conv2d: in_channels must be positive, got 0"),
    (lambda: nn.Conv2d(1, 0, 3), ValueError, r"Conv2d: out_channels must be positive, got 0"),
    (lambda: nn.Conv2d(1, 1, (3, 3, 3)), ValueError,
     r"Conv2d kernel_size: expected an int or an \(h, w\) pair, got \(3, 3, 3\)"),
    (lambda: nn.Conv2d(1, 1, 2.5), TypeError,
     r"Conv2d kernel_size: expected an int or an \(h, w\) pair of ints, got 2\.5"),
    (lambda: nn.Conv2d(1, 1, 3, stride="2"), TypeError, r"Conv2d stride: expected an int"),
    (lambda: nn.LazyConv2d(1, 0), ValueError, r"LazyConv2d: kernel_size must be >= 1"),
    (lambda: nn.LazyConv2d(1, 3, stride=(1, 2), padding="same"), ValueError,
     r"LazyConv2d: padding='same' needs stride 1, got \(1, 2\)"),
    (lambda: nn.Conv1d(1, 1, 0), ValueError, r"Conv1d: kernel_size must be >= 1, got \(1, 0\)"),
    (lambda: nn.Conv1d(1, 1, (3, 3)), ValueError,
     r"Conv1d: kernel_size must be an int or a 1-tuple, got \(3, 3\)"),
    (lambda: nn.Conv1d(1, 1, 3.0), TypeError, r"Conv1d: kernel_size must be an int .*got 3\.0"),
    (lambda: nn.Conv1d(1, 1, 3, padding=-1), ValueError, r"Conv1d: padding must be >= 0"),
    (lambda: nn.Conv1d(1, 1, 3, stride=2, padding="same"), ValueError,
     r"Conv1d: padding='same' needs stride 1"),
    # What PyTorch refuses of the int-or-pair spellings: empty, three values
    (lambda: nn.Conv2d(1, 1, 3, stride=()), ValueError,
     r"Conv2d stride: expected an int or an \(h, w\) pair, got \(\)"),
    (lambda: nn.Conv2d(1, 1, 3, padding=(1, 1, 1)), ValueError,
     r"Conv2d padding: expected an int or an \(h, w\) pair, got \(1, 1, 1\)"),
    (lambda: nn.Conv2d(1, 1, 3, dilation=[]), ValueError,
     r"Conv2d dilation: expected an int or an \(h, w\) pair, got \[\]"),
    (lambda: nn.Conv2d(1, 1, 3, stride=(2.0,)), TypeError,
     r"Conv2d stride: expected an int or an \(h, w\) pair of ints, got \(2\.0,\)"),
], ids=range(24))
def test_bad_hyper_parameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


# Grouped convolution: groups 1, 2 and C (depthwise), with stride, padding and dilation.
# (C, O, groups), Conv2d keyword arguments.
GROUPED = [
    ((4, 6, 1), dict(kernel_size=3, padding=1)),
    ((4, 6, 2), dict(kernel_size=3, stride=2, padding=1)),
    ((4, 8, 2), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
    ((4, 4, 4), dict(kernel_size=3, padding=1)),  # depthwise
    ((4, 8, 4), dict(kernel_size=3, stride=2, padding=2, dilation=2, bias=False)),
    ((6, 3, 3), dict(kernel_size=1)),
    ((4, 4, 4), dict(kernel_size=(2, 4), padding="same")),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels, kwargs", GROUPED, ids=str)
def test_grouped_conv2d_matches_torch(device, channels, kwargs, dtype):
    c, o, g = channels
    x = np.random.default_rng(8).standard_normal((3, c, 7, 8))
    torch_parity(nn.Conv2d(c, o, groups=g, **kwargs),
                 torch.nn.Conv2d(c, o, groups=g, **kwargs), x, dtype, steps=2, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels, kwargs", GROUPED[1::2], ids=str)
def test_grouped_lazy_conv2d_matches_torch(device, channels, kwargs, dtype):
    c, o, g = channels
    x = np.random.default_rng(9).standard_normal((2, c, 8, 7))
    torch_parity(nn.LazyConv2d(o, groups=g, **kwargs),
                 torch.nn.LazyConv2d(o, groups=g, **kwargs), x, dtype, steps=2, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels, kwargs", [
    ((4, 4, 4), dict(kernel_size=3, padding=1)),
    ((4, 6, 2), dict(kernel_size=4, stride=2, padding=1, dilation=2)),
    ((6, 3, 3), dict(kernel_size=2, padding="same", bias=False)),
], ids=str)
def test_grouped_conv1d_matches_torch(device, channels, kwargs, dtype):
    c, o, g = channels
    x = np.random.default_rng(10).standard_normal((2, c, 11))
    torch_parity(nn.Conv1d(c, o, groups=g, **kwargs),
                 torch.nn.Conv1d(c, o, groups=g, **kwargs), x, dtype, steps=2, device=device)


@pytest.mark.parametrize("channels, kwargs", GROUPED, ids=str)
def test_grouped_conv2d_by_finite_differences(channels, kwargs, device):
    c, o, g = channels
    fd_check(nn.Conv2d(c, o, groups=g, **kwargs),
             np.random.default_rng(11).standard_normal((2, c, 6, 7)))


def test_grouped_conv_by_finite_differences_lazy_and_1d(device):
    fd_check(nn.LazyConv2d(4, kernel_size=3, stride=2, padding=1, groups=2),
             np.random.default_rng(12).standard_normal((2, 4, 6, 5)))
    fd_check(nn.Conv1d(4, 4, kernel_size=3, padding=2, dilation=2, groups=4),
             np.random.default_rng(13).standard_normal((2, 4, 9)))


def test_groups_equal_the_concatenated_group_convolutions(device):
    """groups=G is G independent convolutions on the channel slices, stacked."""
    sn.set_default_dtype(np.float64)
    conv = nn.Conv2d(6, 4, kernel_size=3, padding=1, groups=2)
    x = dev(np.random.default_rng(14).standard_normal((2, 6, 5, 5)))
    parts = []
    for g in range(2):
        one = nn.Conv2d(3, 2, kernel_size=3, padding=1)
        one.weight.data[...] = conv.weight.data[2 * g:2 * g + 2]
        one.bias.data[...] = conv.bias.data[2 * g:2 * g + 2]
        parts.append(sn.to_numpy(one(x[:, 3 * g:3 * g + 3])))
    np.testing.assert_allclose(sn.to_numpy(conv(x)), np.concatenate(parts, axis=1),
                               rtol=1e-12, atol=1e-13)
    assert conv.weight.data.shape == (4, 3, 3, 3) and conv.in_channels == 6
    assert "groups=2" in repr(conv)


def test_grouped_flops_divide_by_groups():
    full, depthwise = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8)
    shapes = ((2, 8, 5, 5), (2, 8, 5, 5))
    assert depthwise.flops(*shapes)[0] * 8 == full.flops(*shapes)[0]
    assert nn.Conv2d(8, 4, 3, groups=2).flops((1, 8, 5, 5), (1, 4, 3, 3)) == \
        (2 * 36 * 4 * 9, 4 * 36 * 4 * 9)
    assert depthwise.receptive_geometry() == full.receptive_geometry()


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError,
     r"Conv2d: out_channels \(6\) must be divisible by groups \(4\)"),
    (lambda: nn.Conv2d(6, 4, 3, groups=4), ValueError,
     r"Conv2d: in_channels \(6\) must be divisible by groups \(4\)"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), ValueError, r"Conv2d: groups must be >= 1, got 0"),
    (lambda: nn.Conv2d(4, 4, 3, groups=-2), ValueError, r"Conv2d: groups must be >= 1, got -2"),
    (lambda: nn.Conv2d(4, 4, 3, groups=2.0), TypeError,
     r"Conv2d: groups must be an int, got 2\.0"),
    (lambda: nn.LazyConv2d(6, 3, groups=4), ValueError,
     r"LazyConv2d: out_channels \(6\) must be divisible by groups \(4\)"),
    (lambda: nn.LazyConv2d(4, 3, groups=0), ValueError, r"LazyConv2d: groups must be >= 1"),
    (lambda: nn.Conv1d(3, 4, 3, groups=2), ValueError,
     r"Conv1d: in_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: nn.Conv1d(4, 3, 3, groups=2), ValueError,
     r"Conv1d: out_channels \(3\) must be divisible by groups \(2\)"),
], ids=range(9))
def test_bad_groups_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_lazy_grouped_conv_refuses_indivisible_channels_and_stays_lazy(device):
    x = dev(np.random.default_rng(15).standard_normal((1, 4, 6, 6)).astype(np.float32))
    sn.manual_seed(3)
    fresh = nn.LazyConv2d(4, kernel_size=3, groups=2)
    fresh(x)
    sn.manual_seed(3)
    layer = nn.LazyConv2d(4, kernel_size=3, groups=2)
    with pytest.raises(ValueError, match=r"LazyConv2d: in_channels \(3\) must be divisible by "
                                         r"groups \(2\)"):
        layer(dev(np.zeros((1, 3, 6, 6), np.float32)))
    assert layer.weight.array is None and layer.in_channels is None
    assert_works_like(layer, fresh, x)
    assert layer.in_channels == 4 and layer.weight.data.shape == (4, 2, 3, 3)


def test_grouped_conv_refuses_wrong_channels_and_changes_nothing(device):
    layer = nn.Conv2d(4, 4, 3, groups=2)
    good = dev(X4[:, :, :, :].repeat(2, axis=1))
    assert_refusal_changes_nothing(layer, copy.deepcopy(layer), good, good[:, :2], ValueError,
                                   r"Conv2d: expected 4 input channels, got input of shape "
                                   r"\(2, 2, 5, 5\) with 2")


# Unbatched inputs, as PyTorch: (C, H, W) for Conv2d, (C, L) for Conv1d.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups, kwargs", [
    (1, dict(kernel_size=3, padding=1)),
    (1, dict(kernel_size=(2, 3), stride=2, dilation=(1, 2))),
    (2, dict(kernel_size=3, stride=2, padding=1)),
    (4, dict(kernel_size=3, padding="same")),
], ids=str)
def test_unbatched_conv2d_matches_torch(device, groups, kwargs, dtype):
    x = np.random.default_rng(16).standard_normal((4, 7, 8))
    layer = nn.Conv2d(4, 4, groups=groups, **kwargs)
    torch_parity(layer, torch.nn.Conv2d(4, 4, groups=groups, **kwargs), x, dtype, steps=2,
                 device=device)
    y = layer(dev(x.astype(dtype)))
    assert y.ndim == 3 and layer.backward(sn.get_array_module(y).ones_like(y)).shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups, kwargs", [
    (1, dict(kernel_size=3, padding=1)),
    (1, dict(kernel_size=4, stride=2, dilation=2)),
    (2, dict(kernel_size=3, stride=3, padding=1)),
], ids=str)
def test_unbatched_conv1d_matches_torch(device, groups, kwargs, dtype):
    x = np.random.default_rng(17).standard_normal((2, 13))
    layer = nn.Conv1d(2, 4, groups=groups, **kwargs)
    torch_parity(layer, torch.nn.Conv1d(2, 4, groups=groups, **kwargs), x, dtype, steps=2,
                 device=device)
    y = layer(dev(x.astype(dtype)))
    assert y.ndim == 2 and layer.backward(sn.get_array_module(y).ones_like(y)).shape == x.shape


def test_unbatched_by_finite_differences(device):
    fd_check(nn.Conv2d(2, 3, kernel_size=3, stride=2, padding=1),
             np.random.default_rng(18).standard_normal((2, 6, 5)))
    fd_check(nn.Conv1d(2, 2, kernel_size=3, padding=1, groups=2),
             np.random.default_rng(19).standard_normal((2, 7)))


@pytest.mark.parametrize("cls, x", [(nn.Conv2d, X4[0]), (nn.Conv1d, X3[0])], ids=["2d", "1d"])
def test_unbatched_backward_refuses_batched_gy(device, cls, x):
    layer = cls(2, 3, kernel_size=3, padding=1)
    y = layer(dev(x))
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.backward: expected gy of shape "
                                         rf"{_re_shape(y.shape)}"):
        layer.backward(y[None])
    assert layer.backward(y).shape == x.shape  # the refusal kept the cache
