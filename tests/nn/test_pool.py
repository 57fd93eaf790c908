"""MaxPool2d, AvgPool2d and AdaptiveAvgPool2d: torch parity, finite differences, the book's
examples (d2l 7.5), dtype, and bad input."""
import numpy as np
import pytest
import torch
from helpers import (GPU_DEVICES, assert_equal, assert_refusal_changes_nothing,
                     assert_works_like, dev, distinct, fd_check, torch_parity)

import scratchnet as sn
from scratchnet import nn


DTYPES = [np.float64, np.float32]

MAX_POOL = [
    dict(kernel_size=2),
    dict(kernel_size=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 3), padding=(0, 1)),
    dict(kernel_size=5, stride=3, padding=2),
    dict(kernel_size=3, stride=1, padding=1, dilation=2),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), dilation=(1, 2)),
]
AVG_POOL = [
    dict(kernel_size=2),
    dict(kernel_size=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 3), padding=(0, 1)),
    dict(kernel_size=5, stride=3, padding=2),
    dict(kernel_size=(3, 1), stride=(1, 2), padding=(1, 0)),
]
# output size, input (H, W): (1, 1), divisible, non-divisible, larger than the input.
ADAPTIVE = [((1, 1), (6, 6)), (1, (5, 4)), ((3, 2), (6, 4)), (3, (5, 5)), ((2, 3), (7, 7)),
            ((3, 4), (7, 9)), ((5, 3), (3, 2)), (7, (7, 7))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", MAX_POOL, ids=str)
def test_max_pool_matches_torch(device, kwargs, dtype):
    torch_parity(nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), distinct((2, 3, 7, 8)),
                 dtype, steps=3, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", AVG_POOL, ids=str)
def test_avg_pool_matches_torch(device, kwargs, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 7))
    torch_parity(nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), x, dtype, steps=3,
                 device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size, size", ADAPTIVE, ids=str)
def test_adaptive_avg_pool_matches_torch(device, output_size, size, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3) + size)
    torch_parity(nn.AdaptiveAvgPool2d(output_size), torch.nn.AdaptiveAvgPool2d(output_size), x,
                 dtype, steps=2, device=device)


# (N, C, H, W), keyword arguments: kernel 1, 2, 3, 5 and tuples, stride 1 to 3 and tuples,
# padding 0 to 2 and tuples, odd and even sizes, batch and channels 1 and more.
FD_POOL = [
    ((1, 1, 5, 5), dict(kernel_size=1)),
    ((2, 2, 6, 7), dict(kernel_size=2)),
    ((1, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 1, 8, 8), dict(kernel_size=5, stride=3, padding=2)),
    ((1, 2, 7, 8), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1))),
    ((2, 2, 5, 6), dict(kernel_size=(3, 1), stride=(3, 1), padding=(1, 0))),
    ((1, 2, 7, 7), dict(kernel_size=3, stride=1, padding=1)),
]
FD_DILATED = [((1, 2, 8, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=1, dilation=2)),
              ((2, 1, 7, 6), dict(kernel_size=2, stride=(1, 3), padding=(1, 0),
                                  dilation=(2, 1)))]


@pytest.mark.parametrize("shape, kwargs", FD_POOL + FD_DILATED, ids=str)
def test_max_pool_by_finite_differences(shape, kwargs, device):
    fd_check(nn.MaxPool2d(**kwargs), distinct(shape))


@pytest.mark.parametrize("shape, kwargs", FD_POOL, ids=str)
def test_avg_pool_by_finite_differences(shape, kwargs, device):
    fd_check(nn.AvgPool2d(**kwargs), np.random.default_rng(1).standard_normal(shape))


@pytest.mark.parametrize("output_size, size", ADAPTIVE, ids=str)
def test_adaptive_avg_pool_by_finite_differences(output_size, size, device):
    x = np.random.default_rng(2).standard_normal((2, 2) + size)
    fd_check(nn.AdaptiveAvgPool2d(output_size), x)


X16 = np.arange(16, dtype=np.float32).reshape((1, 1, 4, 4))


@pytest.mark.parametrize("pool2d, X, expected", [
    (nn.MaxPool2d(3), X16, [[[[10]]]]),
    (nn.MaxPool2d(3, padding=1, stride=2), X16, [[[[5, 7], [13, 15]]]]),
    (nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)), X16, [[[[5, 7], [13, 15]]]]),
    (nn.MaxPool2d(3, padding=1, stride=2), np.concatenate((X16, X16 + 1), 1),
     [[[[5, 7], [13, 15]], [[6, 8], [14, 16]]]]),
], ids=["3", "3-pad1-stride2", "(2,3)-stride(2,3)-pad(0,1)", "two-channels"])
def test_book_pooling_examples(device, pool2d, X, expected):
    Y = pool2d(sn.to_device(X, device))
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(sn.to_numpy(Y), np.array(expected, dtype=np.float32))


@pytest.mark.parametrize("mode, expected", [("max", [[4.0, 5.0], [7.0, 8.0]]),
                                            ("avg", [[2.0, 3.0], [5.0, 6.0]])])
def test_book_pool2d_equals_the_layers_at_stride_1(device, mode, expected):
    X = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], dtype=np.float32)
    layer = (nn.MaxPool2d if mode == "max" else nn.AvgPool2d)(2, stride=1)
    Y = sn.to_numpy(layer(sn.to_device(X.reshape(1, 1, 3, 3), device)))
    np.testing.assert_array_equal(Y[0, 0], sn.pool2d(X, (2, 2), mode))
    np.testing.assert_array_equal(Y[0, 0], expected)


LAYERS = [
    (lambda: nn.MaxPool2d(3, stride=2, padding=1, dilation=(1, 2)), "MaxPool2d"),
    (lambda: nn.AvgPool2d((3, 2), stride=(2, 1), padding=(1, 0)), "AvgPool2d"),
    (lambda: nn.AdaptiveAvgPool2d((1, 1)), "AdaptiveAvgPool2d(1,1)"),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), "AdaptiveAvgPool2d(2,3)"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [m for m, _ in LAYERS], ids=[n for _, n in LAYERS])
def test_dtype_is_kept(device, make, dtype):
    layer = make()
    x = sn.to_device(distinct((2, 3, 7, 8)).astype(dtype), device)
    y = layer(x)
    gx = layer.backward(sn.to_device(np.ones(y.shape, dtype), device))
    assert y.dtype == gx.dtype == dtype and gx.shape == x.shape


X4 = distinct((2, 2, 5, 5)).astype(np.float32)
POOLS = {"MaxPool2d": lambda: nn.MaxPool2d(3, stride=2),
         "AvgPool2d": lambda: nn.AvgPool2d(3, stride=2),
         "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d((2, 3))}
BAD_INPUT = [
    pytest.param(name, x, error, match.replace("NAME", name), id=f"{name}-{what}")
    for name in POOLS
    for what, x, error, match in [
        ("3D", X4[0], ValueError,
         r"NAME: expected a 4-D input \(N, C, H, W\), got 3-D input of shape \(2, 5, 5\)"),
        ("5D", X4[None], ValueError, r"NAME: expected a 4-D input .*got 5-D input"),
        ("list", X4.tolist(), TypeError,
         r"NAME: expected a numpy or cupy array \(N, C, H, W\), got list"),
        ("int", X4.astype(np.int64), TypeError,
         r"NAME: expected a floating-point input, got int64"),
    ]
] + [
    pytest.param("MaxPool2d", X4[:, :, :2, :2], ValueError,
                 r"MaxPool2d: kernel \(3, 3\) is larger than the padded input 2x2",
                 id="MaxPool2d-too-small"),
    pytest.param("AvgPool2d", X4[:, :, :, :1], ValueError,
                 r"AvgPool2d: kernel \(3, 3\) is larger than the padded input 5x1",
                 id="AvgPool2d-too-small"),
    pytest.param("AdaptiveAvgPool2d", X4[:, :, :0], ValueError,
                 r"AdaptiveAvgPool2d: expected a non-empty image, got \(2, 2, 0, 5\)",
                 id="AdaptiveAvgPool2d-empty"),
]


@pytest.mark.parametrize("name, x, error, match", BAD_INPUT)
def test_bad_input_is_refused_and_changes_nothing(device, name, x, error, match):
    assert_refusal_changes_nothing(POOLS[name](), POOLS[name](), dev(X4), dev(x), error, match)


def _re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize("name", list(POOLS))
def test_bad_backward_is_refused_and_changes_nothing(device, name):
    layer, fresh = POOLS[name](), POOLS[name]()
    with pytest.raises(ValueError, match=rf"{name}\.backward: called before forward"):
        layer.backward(dev(np.ones((2, 2, 2, 2), np.float32)))
    y = layer(dev(X4))
    for gy, shape in ((dev(np.ones(y.shape[:-1] + (y.shape[-1] + 1,), np.float32)), None),
                      (y[0], None), (y.tolist(), ())):
        shape = gy.shape if shape is None else shape
        with pytest.raises(ValueError, match=rf"{name}\.backward: expected gy of shape "
                                             rf"{_re_shape(y.shape)} \(the forward output\), "
                                             rf"got {_re_shape(shape)}"):
            layer.backward(gy)
    layer.backward(dev(np.ones(y.shape, np.float32)))
    assert_works_like(layer, fresh, dev(X4))


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("name", list(POOLS))
def test_host_gy_for_a_device_output_is_refused_and_changes_nothing(device, name):
    layer, fresh = POOLS[name](), POOLS[name]()
    y = layer(dev(X4))
    fresh(dev(X4))
    with pytest.raises(ValueError, match=rf"{name}\.backward: the output is on gpu but gy on "
                                         r"cpu"):
        layer.backward(np.ones(y.shape, np.float32))
    gy = dev(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
    assert_equal(layer.backward(gy), fresh.backward(gy))


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.MaxPool2d(0), ValueError, r"MaxPool2d: kernel_size must be >= 1, got \(0, 0\)"),
    (lambda: nn.MaxPool2d((2, 0)), ValueError, r"MaxPool2d: kernel_size must be >= 1"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, r"MaxPool2d: stride must be >= 1, got"),
    (lambda: nn.MaxPool2d(2, dilation=0), ValueError, r"MaxPool2d: dilation must be >= 1"),
    (lambda: nn.MaxPool2d(3, padding=-1), ValueError,
     r"MaxPool2d: padding must be >= 0, got \(-1, -1\)"),
    (lambda: nn.MaxPool2d(3, padding=2), ValueError,
     r"MaxPool2d: padding should be at most half of kernel_size, got padding \(2, 2\) with "
     r"kernel_size \(3, 3\)"),
    (lambda: nn.MaxPool2d((2, 4), padding=(1, 3)), ValueError,
     r"MaxPool2d: padding should be at most half of kernel_size"),
    (lambda: nn.MaxPool2d(3, padding="same"), TypeError,
     r"MaxPool2d padding: expected an int or an \(h, w\) pair of ints, got 'same'"),
    (lambda: nn.MaxPool2d((2, 2, 2)), ValueError,
     r"MaxPool2d kernel_size: expected an int or an \(h, w\) pair, got \(2, 2, 2\)"),
    (lambda: nn.AvgPool2d(0), ValueError, r"AvgPool2d: kernel_size must be >= 1"),
    (lambda: nn.AvgPool2d(2, padding=(0, -1)), ValueError, r"AvgPool2d: padding must be >= 0"),
    (lambda: nn.AvgPool2d(2, padding=(0, 2)), ValueError,
     r"AvgPool2d: padding should be at most half of kernel_size"),
    (lambda: nn.AvgPool2d(2.0), TypeError, r"AvgPool2d kernel_size: expected an int"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError,
     r"AdaptiveAvgPool2d: output_size must be positive, got 0"),
    (lambda: nn.AdaptiveAvgPool2d((2, 0)), ValueError,
     r"AdaptiveAvgPool2d: output_size must be positive"),
    (lambda: nn.AdaptiveAvgPool2d((2, 3, 4)), ValueError,
     r"AdaptiveAvgPool2d output_size: expected an int or an \(h, w\) pair"),
], ids=range(16))
def test_bad_hyper_parameters(make, error, match):
    with pytest.raises(error, match=match):
        make()
