"""Element-wise activations. Each backward takes what its forward returned."""
from ..backend import get_array_module, special


def relu(x):
    xp = get_array_module(x)
    return xp.maximum(x, 0)


def relu_backward(gy, y):
    # The derivative at 0 is taken as 0, as PyTorch does: y > 0 iff x > 0.
    xp = get_array_module(gy)
    return xp.where(y > 0, gy, gy.dtype.type(0))


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow for large |x| (scipy's expit)."""
    return special(get_array_module(x)).expit(x)


def sigmoid_backward(gy, y):
    return gy * y * (1 - y)


def tanh(x):
    return get_array_module(x).tanh(x)


def tanh_backward(gy, y):
    return gy * (1 - y * y)
