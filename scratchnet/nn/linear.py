"""Linear (fully connected), LazyLinear and Flatten."""
import math

from .. import backend, ops
from . import init
from .lazy import LazyModuleMixin
from .module import WHOLE_INPUT, Module
from .parameter import Parameter


class Linear(Module):
    """y = x @ weight.T + bias with x (*, in), weight (out, in), bias (out,), y (*, out):
    any leading axes (none for a 1-D x), as PyTorch's."""

    def grad_fn_name(self, x):
        """PyTorch's last node of ``F.linear(x, W, b)``, as printed in grad_fn=<...>: on a
        batch of vectors one addmm (mm without a bias); other shapes end in a view."""
        if x.ndim == 2:
            return "AddmmBackward0" if self.bias is not None else "MmBackward0"
        if self.bias is not None:
            return "ViewBackward0"
        return "SqueezeBackward4" if x.ndim == 1 else "UnsafeViewBackward0"

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.out_features = int(out_features)
        if self.out_features < 1:
            raise ValueError(f"{self.name}: out_features must be positive, got {out_features}")
        self.needs_input_grad = True
        self.weight = Parameter()
        self.bias = Parameter() if bias else None
        if in_features is not None:
            self._materialize(int(in_features), backend.device_module(),
                              backend.get_default_dtype())

    @property
    def in_features(self):
        """Read from the weight: None until a lazy layer sees its first input (or a state_dict)."""
        w = self._parameters.get("weight")
        return None if w is None or w.array is None else int(w.array.shape[1])

    def _lazy_shapes(self, state):
        shapes = {"weight": (self.out_features, None)}
        if self.bias is not None:
            shapes["bias"] = (self.out_features,)
        return shapes

    def _materialize(self, in_features, xp, dtype):
        if in_features < 1:
            raise ValueError(f"{self.name}: in_features must be positive, got {in_features}")
        self.weight.materialize(xp.empty((self.out_features, in_features), dtype=dtype))
        if self.bias is not None:
            self.bias.materialize(xp.empty((self.out_features,), dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias."""
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        self.check_input(x, tuple(range(1, 33)), "(*, in_features)")
        if self.weight.array is None:
            self._materialize(x.shape[-1], backend.get_array_module(x), x.dtype)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{self.name}: expected {self.in_features} input features (the "
                             f"last axis), got input of shape {tuple(x.shape)} with "
                             f"{x.shape[-1]}")
        b = None if self.bias is None else self.bias.array
        y = ops.linear(x, self.weight.array, b)
        self.cache_for_backward(y, x)
        return y

    def backward(self, gy):
        (x,) = self.pop_cache(gy)
        gx, gW, gb = ops.linear_backward(gy, x, self.weight.array, self.needs_input_grad,
                                         self.bias is not None)
        self.weight.accumulate(gW)
        if self.bias is not None:
            self.bias.accumulate(gb)
        return gx

    def receptive_geometry(self):
        return WHOLE_INPUT

    def flops(self, x_shape, y_shape):
        """``2*rows*in*out`` forward; backward that for dL/dW, again for dL/dx."""
        f = 2 * math.prod(y_shape) * self.in_features
        return f, f * (2 if self.needs_input_grad else 1)

    def extra_repr(self):
        return self._extra_repr(self.in_features)

    def _extra_repr(self, in_features):
        return (f"in_features={in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class LazyLinear(LazyModuleMixin, Linear):
    """Linear whose in_features is read from the first input's last axis (nn/lazy.py)."""

    def __init__(self, out_features, bias=True):
        super().__init__(None, out_features, bias)

    cls_to_become = Linear


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...), as PyTorch's default start_dim=1."""

    grad_fn_name = "ViewBackward0"  # PyTorch's node, as printed in grad_fn=<...>

    def forward(self, x):
        self.check_input(x, tuple(range(1, 33)), "(N, ...)")
        y = x.reshape(x.shape[0], -1)
        self.cache_for_backward(y, x.shape)
        return y

    def backward(self, gy):
        (x_shape,) = self.pop_cache(gy)
        return gy.reshape(x_shape)

    def receptive_geometry(self):
        return WHOLE_INPUT

    def flops(self, x_shape, y_shape):
        return 0, 0
