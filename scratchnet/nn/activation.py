"""Activation layers: ReLU, Sigmoid, Tanh. Each caches its output for backward."""
import math

from .. import ops
from .module import Module


class _Activation(Module):
    _f = _df = None
    _flops = None  # (forward, backward) FLOPs per element; exp and tanh count as one

    def forward(self, x):
        self.check_input(x, tuple(range(0, 33)), "of any shape")
        y = type(self)._f(x)
        self.cache_for_backward(y, y)
        return y

    def backward(self, gy):
        (y,) = self.pop_cache(gy)
        return type(self)._df(gy, y)

    def receptive_geometry(self):
        return []

    def flops(self, x_shape, y_shape):
        f, b = self._flops
        return f * math.prod(y_shape), b * math.prod(y_shape)


class ReLU(_Activation):
    _f, _df = ops.relu, ops.relu_backward
    _flops = (1, 1)
    grad_fn_name = "ReluBackward0"  # PyTorch's node, as printed in grad_fn=<...>


class Sigmoid(_Activation):
    _f, _df = ops.sigmoid, ops.sigmoid_backward
    _flops = (4, 3)
    grad_fn_name = "SigmoidBackward0"


class Tanh(_Activation):
    """y = tanh(x), elementwise; readable version: :func:`scratchnet.teach.tanh_forward`
    and :func:`scratchnet.teach.tanh_backward` (read those first)."""

    _f, _df = ops.tanh, ops.tanh_backward
    _flops = (1, 3)
    grad_fn_name = "TanhBackward0"
