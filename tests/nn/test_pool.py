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
    # PyTorch's other spellings of an int: a 1-tuple or list; an empty stride is the kernel's
    dict(kernel_size=(3,), stride=(2,), padding=(1,), dilation=(2,)),
    dict(kernel_size=[2], stride=(), padding=[1]),
]
AVG_POOL = [
    dict(kernel_size=2),
    dict(kernel_size=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 3), padding=(0, 1)),
    dict(kernel_size=5, stride=3, padding=2),
    dict(kernel_size=(3, 1), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=(3,), stride=(2,), padding=(1,)),
    dict(kernel_size=[2], stride=[], padding=[1]),
]
# The same windows spelt as 1-tuples (and empty strides) and as ints: the same layer.
ONE_TUPLES = [
    (nn.MaxPool2d, dict(kernel_size=(3,), stride=(2,), padding=(1,), dilation=(2,)),
     dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    (nn.MaxPool2d, dict(kernel_size=[2], stride=(), padding=[1]),
     dict(kernel_size=2, padding=1)),
    (nn.AvgPool2d, dict(kernel_size=(3,), stride=[2], padding=(1,)),
     dict(kernel_size=3, stride=2, padding=1)),
    (nn.AvgPool2d, dict(kernel_size=(2,), stride=[]), dict(kernel_size=2)),
]
# PyTorch's other arguments (issue 13): ceil_mode, count_include_pad, divisor_override,
# return_indices, None in AdaptiveAvgPool2d's output_size, one image (C, H, W).
MAX_POOL_OPTIONS = [
    dict(kernel_size=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(3, 2), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
    dict(kernel_size=2, stride=1, padding=1, dilation=2, ceil_mode=True),
]
AVG_POOL_OPTIONS = [
    dict(kernel_size=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(3, 2), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, divisor_override=-5),
]
# output size, input (H, W): (1, 1), divisible, non-divisible, larger than the input.
ADAPTIVE = [((1, 1), (6, 6)), (1, (5, 4)), ((3, 2), (6, 4)), (3, (5, 5)), ((2, 3), (7, 7)),
            ((3, 4), (7, 9)), ((5, 3), (3, 2)), (7, (7, 7))]
# None in the output size keeps the input's size along that axis.
ADAPTIVE_NONE = [((None, 3), (5, 7)), ((2, None), (5, 7)), ((None, None), (4, 3)),
                 ([None, 1], (6, 2))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", MAX_POOL + MAX_POOL_OPTIONS, ids=str)
def test_max_pool_matches_torch(device, kwargs, dtype):
    torch_parity(nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), distinct((2, 3, 7, 8)),
                 dtype, steps=3, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", AVG_POOL + AVG_POOL_OPTIONS, ids=str)
def test_avg_pool_matches_torch(device, kwargs, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 7))
    torch_parity(nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), x, dtype, steps=3,
                 device=device)


@pytest.mark.parametrize("make, tuples, ints", ONE_TUPLES, ids=str)
def test_one_tuples_are_the_ints(device, make, tuples, ints):
    """A 1-tuple (or list) stands for (v, v) as an int does, an empty stride for the
    kernel's: the same geometry, and the same bits forward and backward (the torch
    parity of these forms is in MAX_POOL and AVG_POOL)."""
    layer, same = make(**tuples), make(**ints)
    assert repr(layer) == repr(same)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.dilation) == (
        same.kernel_size, same.stride, same.padding, same.dilation)
    assert_works_like(layer, same, dev(distinct((2, 3, 7, 8))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output_size, size", ADAPTIVE + ADAPTIVE_NONE, ids=str)
def test_adaptive_avg_pool_matches_torch(device, output_size, size, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3) + size)
    layer = nn.AdaptiveAvgPool2d(output_size)
    assert layer.output_size == ((output_size,) * 2 if isinstance(output_size, int)
                                 else tuple(output_size))
    torch_parity(layer, torch.nn.AdaptiveAvgPool2d(output_size), x, dtype, steps=2,
                 device=device)


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
        ("2D", X4[0, 0], ValueError,
         r"NAME: expected a 3 or 4-D input \(N, C, H, W\) or \(C, H, W\), got 2-D input of "
         r"shape \(5, 5\)"),
        ("5D", X4[None], ValueError, r"NAME: expected a 3 or 4-D input .*got 5-D input"),
        ("list", X4.tolist(), TypeError,
         r"NAME: expected a numpy or cupy array \(N, C, H, W\) or \(C, H, W\), got list"),
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
    # What PyTorch refuses of the int-or-pair spellings (a 1-tuple only where it does)
    (lambda: nn.MaxPool2d(()), ValueError,
     r"MaxPool2d kernel_size: expected an int or an \(h, w\) pair, got \(\)"),
    (lambda: nn.MaxPool2d(2, padding=[]), ValueError,
     r"MaxPool2d padding: expected an int or an \(h, w\) pair, got \[\]"),
    (lambda: nn.AvgPool2d(3, stride=(1, 1, 1)), ValueError,
     r"AvgPool2d stride: expected an int or an \(h, w\) pair, got \(1, 1, 1\)"),
    (lambda: nn.MaxPool2d(3, dilation=(1, 2, 1)), ValueError,
     r"MaxPool2d dilation: expected an int or an \(h, w\) pair"),
    (lambda: nn.MaxPool2d((2.0,)), TypeError,
     r"MaxPool2d kernel_size: expected an int or an \(h, w\) pair of ints, got \(2\.0,\)"),
    (lambda: nn.AdaptiveAvgPool2d((3,)), ValueError,
     r"AdaptiveAvgPool2d output_size: expected an int or an \(h, w\) pair, got \(3,\)"),
], ids=range(22))
def test_bad_hyper_parameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("make", [
    lambda m: m.MaxPool2d(()), lambda m: m.AvgPool2d(2, padding=()),
    lambda m: m.MaxPool2d(2, stride=(1, 1, 1)), lambda m: m.AdaptiveAvgPool2d((3,)),
    lambda m: m.AdaptiveAvgPool2d([3]),
], ids=range(5))
def test_torch_refuses_these_spellings_too(make):
    """The spellings refused above (an empty kernel or padding, a 3-tuple, a 1-tuple
    output_size) fail in PyTorch as well, at its first call."""
    with pytest.raises(ValueError):
        make(nn)
    with pytest.raises(RuntimeError):
        make(torch.nn)(torch.zeros(1, 1, 6, 6))


UNBATCHED = [
    (lambda m: m.MaxPool2d(3, stride=2, padding=1), "MaxPool2d"),
    (lambda m: m.MaxPool2d(2, ceil_mode=True), "MaxPool2d-ceil"),
    (lambda m: m.AvgPool2d(3, stride=2, padding=1), "AvgPool2d"),
    (lambda m: m.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
     "AvgPool2d-ceil-exclude-pad"),
    (lambda m: m.AvgPool2d(2, divisor_override=3), "AvgPool2d-divisor"),
    (lambda m: m.AdaptiveAvgPool2d((2, 3)), "AdaptiveAvgPool2d"),
    (lambda m: m.AdaptiveAvgPool2d((None, 1)), "AdaptiveAvgPool2d-None"),
    (lambda m: m.AdaptiveAvgPool2d(1), "AdaptiveAvgPool2d-1"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [m for m, _ in UNBATCHED], ids=[n for _, n in UNBATCHED])
def test_one_image_matches_torch(device, make, dtype):
    """(C, H, W) in, (C, oh, ow) out, dL/dx (C, H, W) back, as torch's."""
    torch_parity(make(nn), make(torch.nn), distinct((3, 7, 8)), dtype, steps=2, device=device)


@pytest.mark.parametrize("make", [m for m, _ in UNBATCHED], ids=[n for _, n in UNBATCHED])
def test_one_image_is_the_batch_of_one(device, make):
    """The same bits as the batch (1, C, H, W), and the layer's own finite differences."""
    x = distinct((3, 7, 8))
    one, batch = make(nn), make(nn)
    y, yb = one(dev(x)), batch(dev(x[None]))
    assert y.shape == yb.shape[1:]
    if hasattr(one, "kernel_size"):
        assert one.output_shape(x.shape) == y.shape
    assert_equal(y, yb[0])
    gy = np.random.default_rng(1).standard_normal(y.shape)
    gx = one.backward(dev(gy))
    assert gx.shape == x.shape
    assert_equal(gx, batch.backward(dev(gy[None]))[0])
    fd_check(make(nn), x)


@pytest.mark.parametrize("shape, kwargs", [
    ((1, 2, 7, 8), dict(kernel_size=2, ceil_mode=True)),
    ((2, 1, 6, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 8, 7), dict(kernel_size=(3, 2), stride=(3, 2), padding=(1, 0), ceil_mode=True)),
    ((2, 1, 7, 7), dict(kernel_size=2, stride=1, padding=1, dilation=2, ceil_mode=True)),
    ((1, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, return_indices=True)),
], ids=str)
def test_max_pool_options_by_finite_differences(shape, kwargs, device):
    make = _MaxPoolValues if kwargs.get("return_indices") else nn.MaxPool2d
    fd_check(make(**kwargs), distinct(shape))


class _MaxPoolValues(nn.MaxPool2d):
    """y alone of a MaxPool2d(return_indices=True), for the finite differences."""

    def forward(self, x):
        y, indices = super().forward(x)
        return y


@pytest.mark.parametrize("shape, kwargs", [((1, 2, 7, 8), kw) for kw in AVG_POOL_OPTIONS] +
                         [((2, 1, 6, 5), kw) for kw in AVG_POOL_OPTIONS[1:4]], ids=str)
def test_avg_pool_options_by_finite_differences(shape, kwargs, device):
    fd_check(nn.AvgPool2d(**kwargs), np.random.default_rng(1).standard_normal(shape))


@pytest.mark.parametrize("output_size, size", ADAPTIVE_NONE, ids=str)
def test_adaptive_avg_pool_none_by_finite_differences(output_size, size, device):
    fd_check(nn.AdaptiveAvgPool2d(output_size),
             np.random.default_rng(2).standard_normal((2, 2) + size))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2,
                                                               padding=1, ceil_mode=True),
                                    dict(kernel_size=2, stride=1, padding=1, dilation=2)],
                         ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (3, 6, 5)], ids=str)
def test_return_indices_are_torchs(device, kwargs, shape, dtype):
    """(y, indices): indices as torch's (int64 flat indices into each input plane); the
    backward is the one without indices."""
    x = distinct(shape).astype(dtype)
    layer, plain = nn.MaxPool2d(**kwargs, return_indices=True), nn.MaxPool2d(**kwargs)
    y, indices = layer(dev(x))
    yt, it = torch.nn.MaxPool2d(**kwargs, return_indices=True)(torch.from_numpy(x))
    assert_equal(y, yt.numpy())
    assert sn.to_numpy(indices).dtype == np.int64
    assert_equal(indices, it.numpy())
    gy = dev(np.random.default_rng(1).standard_normal(y.shape).astype(dtype))
    plain(dev(x))
    assert_equal(layer.backward(gy), plain.backward(gy))
    assert "return_indices=True" in repr(layer) and "return_indices" not in repr(plain)


def test_extra_repr_names_the_options():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert repr(nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False,
                             divisor_override=4)) == (
        "AvgPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True, "
        "count_include_pad=False, divisor_override=4)")
    assert repr(nn.AdaptiveAvgPool2d((None, 2))) == "AdaptiveAvgPool2d(output_size=(None, 2))"


OPTION_POOLS = {"MaxPool2d": lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
                "AvgPool2d": lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                                  count_include_pad=False, divisor_override=2),
                "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d((None, 2))}


@pytest.mark.parametrize("name", list(OPTION_POOLS))
@pytest.mark.parametrize("good", [X4, X4[0]], ids=["batch", "one image"])
def test_bad_input_to_a_layer_with_options_changes_nothing(device, name, good):
    """A bad input after a good one (a batch or one image) is refused and the good
    forward's cache still serves backward."""
    make = OPTION_POOLS[name]
    assert_refusal_changes_nothing(make(), make(), dev(good), dev(X4[0, 0]), ValueError,
                                   rf"{name}: expected a 3 or 4-D input")
    assert_refusal_changes_nothing(make(), make(), dev(good), dev(X4.astype(np.int64)),
                                   TypeError, rf"{name}: expected a floating-point input")


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError,
     r"AvgPool2d: divisor_override must not be 0"),
    (lambda: nn.AvgPool2d(2, divisor_override=2.5), TypeError,
     r"AvgPool2d: divisor_override must be an int or None, got 2.5"),
    (lambda: nn.AvgPool2d(2, divisor_override=True), TypeError,
     r"AvgPool2d: divisor_override must be an int or None, got True"),
    (lambda: nn.AvgPool2d(2, ceil_mode=1), TypeError,
     r"AvgPool2d ceil_mode: expected True or False, got 1"),
    (lambda: nn.AvgPool2d(2, count_include_pad="no"), TypeError,
     r"AvgPool2d count_include_pad: expected True or False, got 'no'"),
    (lambda: nn.AvgPool2d(3, padding=2, ceil_mode=True), ValueError,
     r"AvgPool2d: padding should be at most half of kernel_size"),
    (lambda: nn.MaxPool2d(2, ceil_mode=None), TypeError,
     r"MaxPool2d ceil_mode: expected True or False, got None"),
    (lambda: nn.MaxPool2d(2, return_indices=1), TypeError,
     r"MaxPool2d return_indices: expected True or False, got 1"),
    (lambda: nn.MaxPool2d(4, padding=3, ceil_mode=True), ValueError,
     r"MaxPool2d: padding should be at most half of kernel_size"),
    (lambda: nn.AdaptiveAvgPool2d(None), TypeError,
     r"AdaptiveAvgPool2d output_size: expected an int or an \(h, w\) pair of ints, got None"),
    (lambda: nn.AdaptiveAvgPool2d((None, 0)), ValueError,
     r"AdaptiveAvgPool2d: output_size must be positive, got \(None, 0\)"),
    (lambda: nn.AdaptiveAvgPool2d((None, 2.5)), TypeError,
     r"AdaptiveAvgPool2d output_size: expected an int or an \(h, w\) pair of ints"),
    (lambda: nn.AdaptiveAvgPool2d((None, None, 2)), ValueError,
     r"AdaptiveAvgPool2d output_size: expected an int or an \(h, w\) pair"),
], ids=range(13))
def test_bad_options(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("make, torch_make", [
    (lambda: nn.AvgPool2d(2, divisor_override=0), lambda: torch.nn.AvgPool2d(
        2, divisor_override=0)),
    (lambda: nn.AvgPool2d(2, divisor_override=2.5), lambda: torch.nn.AvgPool2d(
        2, divisor_override=2.5)),
    (lambda: nn.MaxPool2d(2, ceil_mode=1), lambda: torch.nn.MaxPool2d(2, ceil_mode=1)),
    (lambda: nn.AdaptiveAvgPool2d(None), lambda: torch.nn.AdaptiveAvgPool2d(None)),
], ids=range(4))
def test_options_torch_refuses_are_refused(make, torch_make):
    """What we refuse when building the layer, torch refuses on its first call."""
    with pytest.raises((ValueError, TypeError)):
        make()
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        torch_make()(torch.ones(1, 1, 4, 4))


def test_ceil_mode_keeps_a_window_larger_than_the_input():
    """ceil_mode: a 3x3 window, stride 2, over a 2x2 image is one window (torch's too), not
    an error; one output more than floor mode, where that window does not fit."""
    x = distinct((1, 2, 2, 2))
    layer = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    np.testing.assert_array_equal(layer(x), x.max(axis=(2, 3), keepdims=True))
    with pytest.raises(ValueError, match=r"MaxPool2d: kernel \(3, 3\) is larger than the "):
        nn.MaxPool2d(3, stride=2)(x)
    assert nn.AvgPool2d(3, 2, ceil_mode=True)(x).shape == (1, 2, 1, 1)
    assert nn.AvgPool2d(3, 2, ceil_mode=True)(x)[0, 0, 0, 0] == pytest.approx(x[0, 0].sum() / 4)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2, stride=2, padding=1), dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=2, stride=1, padding=1, dilation=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1))], ids=str)
def test_a_window_of_minus_inf_pixels_sends_its_gradient_to_a_pixel_as_torch(device, kwargs):
    """Pixels of -inf tie with the -inf padding: PyTorch picks the window's first pixel
    inside the image, and so do the fast op (CPU and GPU), its indices and the
    readable version; the padding never takes a gradient."""
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    x[:, :, :3, :3] = -np.inf
    x[0, 1] = -np.inf  # a whole plane
    layer = nn.MaxPool2d(**kwargs, return_indices=True)
    y, indices = layer(dev(x))
    gy = np.random.default_rng(1).standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.MaxPool2d(**kwargs, return_indices=True)(xt)
    yt.backward(torch.from_numpy(gy))
    assert_equal(y, yt.detach().numpy())
    assert_equal(indices, it.numpy())
    # (overlapping windows add their shares in another order than torch's: 1e-15)
    want = xt.grad.numpy()
    np.testing.assert_allclose(sn.to_numpy(layer.backward(dev(gy))), want, rtol=1e-12)
    if "ceil_mode" not in kwargs:
        from scratchnet import teach
        out, cache = teach.max_pool2d_forward(x, kwargs["kernel_size"], kwargs["stride"],
                                              kwargs["padding"], kwargs.get("dilation", 1))
        np.testing.assert_allclose(teach.max_pool2d_backward(gy, cache), want, rtol=1e-12)
