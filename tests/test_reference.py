"""The naive reference functions: the book's numbers (d2l 7.2 to 7.5) and torch parity."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scratchnet.reference import (conv2d_naive, corr2d, corr2d_multi_in, corr2d_multi_in_out,
                                  corr2d_multi_in_out_1x1, pool2d, pool2d_naive)

X3 = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
K2 = np.array([[0.0, 1.0], [2.0, 3.0]])
X_MULTI = np.array([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
K_MULTI = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])


def test_corr2d_book_example():
    np.testing.assert_array_equal(corr2d(X3, K2), [[19.0, 25.0], [37.0, 43.0]])


def test_corr2d_edge_detection():
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    K = np.array([[1.0, -1.0]])
    expected = np.zeros((6, 7))
    expected[:, 1] = 1
    expected[:, 5] = -1
    np.testing.assert_array_equal(corr2d(X, K), expected)
    # A horizontal-difference kernel sees nothing once the edges are horizontal.
    Yt = corr2d(X.T, K)
    assert Yt.shape == (8, 5)
    np.testing.assert_array_equal(Yt, np.zeros((8, 5)))


def test_corr2d_multi_in_book_example():
    np.testing.assert_array_equal(corr2d_multi_in(X_MULTI, K_MULTI),
                                  [[56.0, 72.0], [104.0, 120.0]])


def test_corr2d_multi_in_out_book_example():
    K = np.stack((K_MULTI, K_MULTI + 1, K_MULTI + 2), 0)
    Y = corr2d_multi_in_out(X_MULTI, K)
    assert Y.shape == (3, 2, 2)
    np.testing.assert_array_equal(Y, [[[56.0, 72.0], [104.0, 120.0]],
                                      [[76.0, 100.0], [148.0, 172.0]],
                                      [[96.0, 128.0], [192.0, 224.0]]])


def test_corr2d_multi_in_out_1x1_matches_general_path():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (3, 3, 3))
    K = rng.normal(0, 1, (2, 3, 1, 1))
    Y1 = corr2d_multi_in_out_1x1(X, K)
    Y2 = corr2d_multi_in_out(X, K)
    assert Y1.shape == Y2.shape == (2, 3, 3)
    np.testing.assert_allclose(Y1, Y2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode, expected", [("max", [[4.0, 5.0], [7.0, 8.0]]),
                                            ("avg", [[2.0, 3.0], [5.0, 6.0]])])
def test_pool2d_book_example(mode, expected):
    np.testing.assert_array_equal(pool2d(X3, (2, 2), mode), expected)
    np.testing.assert_array_equal(pool2d(X3, 2, mode=mode), expected)


@pytest.mark.parametrize("stride, padding, dilation", [
    (1, 0, 1), (2, 0, 1), (1, 1, 1), (2, 1, 1), (1, 0, 2), (2, 2, 2),
    ((2, 1), (1, 0), (1, 2)), ((3, 4), (0, 1), 1), ((1, 2), 2, (2, 1)),
    ((2,), [1], (2,)),  # PyTorch's 1-tuple (or list) for an int
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_naive_matches_torch(stride, padding, dilation, bias):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 3, 7, 8))
    W = rng.normal(size=(4, 3, 3, 2))
    b = rng.normal(size=4) if bias else None
    Y = conv2d_naive(X, W, b, stride=stride, padding=padding, dilation=dilation)
    expected = F.conv2d(torch.from_numpy(X), torch.from_numpy(W),
                        None if b is None else torch.from_numpy(b),
                        stride=stride, padding=padding, dilation=dilation).numpy()
    assert Y.dtype == np.float64
    assert Y.shape == expected.shape
    np.testing.assert_allclose(Y, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel_size, stride, padding", [
    (2, None, 0), (3, None, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (2, 3), (0, 1)),
    ((3, 2), (1, 2), (1, 1)), (2, 3, 1),
    ((3,), (2,), [1]), ([2], (), (1,)),  # 1-tuples for ints; an empty stride is the kernel's
])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool2d_naive_matches_torch(kernel_size, stride, padding, mode):
    rng = np.random.default_rng(2)
    # Negative values make sure max padding is -inf rather than zero.
    X = rng.normal(size=(2, 3, 7, 6)) - 3.0
    Y = pool2d_naive(X, kernel_size, stride, padding, mode)
    Xt = torch.from_numpy(X)
    if mode == "max":
        expected = F.max_pool2d(Xt, kernel_size, stride, padding)
    else:
        expected = F.avg_pool2d(Xt, kernel_size, stride, padding, count_include_pad=True)
    assert Y.shape == tuple(expected.shape)
    np.testing.assert_allclose(Y, expected.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel_size, stride, padding, expected", [
    (3, None, 0, [[[[10.0]]]]),
    (3, 2, 1, [[[[5.0, 7.0], [13.0, 15.0]]]]),
    ((2, 3), (2, 3), (0, 1), [[[[5.0, 7.0], [13.0, 15.0]]]]),
])
def test_pool2d_naive_book_examples(kernel_size, stride, padding, expected):
    X = np.arange(16, dtype=np.float32).reshape((1, 1, 4, 4))
    np.testing.assert_array_equal(pool2d_naive(X, kernel_size, stride, padding), expected)
    # Pooling treats channels separately (7.5.3).
    X2 = np.concatenate((X, X + 1), 1)
    Y2 = pool2d_naive(X2, kernel_size, stride, padding)
    np.testing.assert_array_equal(Y2[:, 1], np.asarray(expected)[:, 0] + 1)


def test_dtype_preserved():
    X = X_MULTI.astype(np.float32)
    K = K_MULTI.astype(np.float32)
    K4 = np.stack((K, K + 1), 0)
    assert corr2d(X[0], K[0]).dtype == np.float32
    assert corr2d_multi_in(X, K).dtype == np.float32
    assert corr2d_multi_in_out(X, K4).dtype == np.float32
    assert corr2d_multi_in_out_1x1(X, K4[:, :, :1, :1]).dtype == np.float32
    assert pool2d(X[0], 2).dtype == np.float32
    assert pool2d(X[0], 2, "avg").dtype == np.float32
    X4 = X[None]
    assert conv2d_naive(X4, K4, np.zeros(2, np.float32), padding=1).dtype == np.float32
    assert pool2d_naive(X4, 2, padding=1).dtype == np.float32
    assert pool2d_naive(X4, 2, mode="avg").dtype == np.float32


@pytest.mark.parametrize("call, name", [
    (lambda: corr2d(np.zeros((2, 2)), np.zeros((3, 1))), "corr2d"),
    (lambda: corr2d(np.zeros((2, 2)), np.zeros((1, 3))), "corr2d"),
    (lambda: corr2d(np.zeros((1, 3, 3)), np.zeros((2, 2))), "corr2d"),
    (lambda: corr2d(np.zeros((3, 3)), np.zeros(2)), "corr2d"),
    (lambda: corr2d_multi_in(X_MULTI, K_MULTI[:1]), "corr2d_multi_in"),
    (lambda: corr2d_multi_in_out_1x1(X_MULTI, np.zeros((2, 2, 2, 2))),
     "corr2d_multi_in_out_1x1"),
    (lambda: pool2d(X3, (2, 2), "min"), "pool2d"),
    (lambda: pool2d(X3, (4, 1)), "pool2d"),
    (lambda: conv2d_naive(np.zeros((1, 2, 4, 4)), np.zeros((1, 3, 2, 2))), "conv2d_naive"),
    (lambda: conv2d_naive(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 5, 5))), "conv2d_naive"),
    (lambda: conv2d_naive(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), stride=0),
     "conv2d_naive"),
    (lambda: pool2d_naive(np.zeros((1, 1, 4, 4)), 2, mode="sum"), "pool2d_naive"),
    (lambda: pool2d_naive(np.zeros((1, 1, 4, 4)), 2, padding=2), "pool2d_naive"),
    (lambda: pool2d_naive(np.zeros((4, 4)), 2), "pool2d_naive"),
    (lambda: pool2d_naive(np.zeros((1, 1, 4, 4)), (2, 2, 2)), "pool2d_naive"),
    (lambda: pool2d_naive(np.zeros((1, 1, 4, 4)), 2, stride=1.5), "pool2d_naive"),
    (lambda: conv2d_naive(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), padding=()),
     "conv2d_naive"),
    (lambda: corr2d([[1.0, 2.0]], [1.0]), "corr2d"),
])
def test_bad_input_raises_value_error(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        call()


def test_lists_are_taken_as_the_book_takes_tensors():
    """Nested lists (and integer arrays) as NumPy functions take them: the book's values,
    in float32, the dtype of the book's torch.zeros output."""
    X, K = X3.astype(int).tolist(), K2.astype(int).tolist()
    for Y in (corr2d(X, K), corr2d(np.array(X), np.array(K))):
        assert Y.dtype == np.float32
        np.testing.assert_array_equal(Y, [[19.0, 25.0], [37.0, 43.0]])
    np.testing.assert_array_equal(corr2d_multi_in(X_MULTI.tolist(), K_MULTI.tolist()),
                                  [[56.0, 72.0], [104.0, 120.0]])
    K4 = np.stack((K_MULTI, K_MULTI + 1), 0)
    np.testing.assert_array_equal(corr2d_multi_in_out(X_MULTI.tolist(), K4.tolist()),
                                  corr2d_multi_in_out(X_MULTI, K4))
    np.testing.assert_array_equal(
        corr2d_multi_in_out_1x1(X_MULTI.tolist(), K4[:, :, :1, :1].tolist()),
        corr2d_multi_in_out_1x1(X_MULTI, K4[:, :, :1, :1]))
    # An average of integers is no integer: [[0, 1], [2, 4]] averages to 1.75.
    assert pool2d([[0, 1], [2, 4]], 2, "avg").tolist() == [[1.75]]
    assert pool2d([[0, 1], [2, 4]], (2,)).tolist() == [[4.0]]
    X4 = np.arange(16).reshape((1, 1, 4, 4))
    np.testing.assert_array_equal(pool2d_naive(X4.tolist(), 3, 2, 1, "avg"),
                                  pool2d_naive(X4.astype(np.float32), 3, 2, 1, "avg"))
    np.testing.assert_array_equal(conv2d_naive(X4.tolist(), [[[[1, 1], [1, 1]]]], [1]),
                                  conv2d_naive(X4.astype(np.float32),
                                               np.ones((1, 1, 2, 2), np.float32),
                                               np.ones(1, np.float32)))


def test_non_numbers_are_refused_by_name():
    with pytest.raises(TypeError, match=r"^corr2d: expected arrays of numbers, got <U1 values"):
        corr2d([["a"]], [[1.0]])


def test_pool2d_mode_error_says_what_it_got():
    with pytest.raises(ValueError, match=r"pool2d: expected mode 'max' or 'avg', got 'min'"):
        pool2d(X3, 2, "min")
