"""Convolution layers: Conv2d, LazyConv2d and Conv1d (a Conv2d over 1 x L images).

``groups`` as PyTorch's: in and out channels split into that many groups, each output
group seeing its input group only; ``groups == in_channels`` is a depthwise convolution.
An unbatched input, (C, H, W) for Conv2d or (C, L) for Conv1d, is one image, as in
PyTorch; backward then takes and returns unbatched arrays too."""
import math

import numpy as np

from .. import backend, ops
from ..ops.conv import conv2d_columns
from ..ops.im2col import conv_output_hw, pair
from . import init
from .lazy import LazyModuleMixin
from .module import Module
from .parameter import Parameter


class Conv2d(Module):
    """Cross-correlation of x (N, C, H, W) or (C, H, W) with weight
    (out, in/groups, kh, kw), plus bias (out,)."""

    grad_fn_name = "ConvolutionBackward0"  # PyTorch's node, as printed in grad_fn=<...>

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, groups=1):
        super().__init__()
        self.out_channels = int(out_channels)
        self.groups = groups
        # PyTorch's Conv2d takes kernel_size=(3,) but fails at the first call: refused here
        self.kernel_size = pair(kernel_size, f"{self.name} kernel_size", single=False)
        self.stride = pair(stride, f"{self.name} stride")
        self.dilation = pair(dilation, f"{self.name} dilation")
        self.padding = padding if isinstance(padding, str) else pair(padding, f"{self.name} padding")
        self._check_hyper()
        self.pads = ops.conv_pads(self.padding, *self.kernel_size, *self.dilation)
        # A network's first layer may skip dL/dx (set by the user or the Trainer).
        self.needs_input_grad = True
        self.weight = Parameter()
        self.bias = Parameter() if bias else None
        if in_channels is not None:
            self._materialize(int(in_channels), backend.device_module(),
                              backend.get_default_dtype())

    def _check_hyper(self):
        if self.out_channels < 1:
            raise ValueError(f"{self.name}: out_channels must be positive, got {self.out_channels}")
        if not isinstance(self.groups, (int, np.integer)) or isinstance(self.groups, bool):
            raise TypeError(f"{self.name}: groups must be an int, got {self.groups!r}")
        self.groups = int(self.groups)
        if self.groups < 1:
            raise ValueError(f"{self.name}: groups must be >= 1, got {self.groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"{self.name}: out_channels ({self.out_channels}) must be "
                             f"divisible by groups ({self.groups})")
        for what, v, low in (("kernel_size", self.kernel_size, 1), ("stride", self.stride, 1),
                             ("dilation", self.dilation, 1)):
            if min(v) < low:
                raise ValueError(f"{self.name}: {what} must be >= {low}, got {v}")
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"{self.name}: padding must be an int, a pair, 'same' or "
                                 f"'valid', got {self.padding!r}")
            if self.padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{self.name}: padding='same' needs stride 1, got {self.stride}")
        elif min(self.padding) < 0:
            raise ValueError(f"{self.name}: padding must be >= 0, got {self.padding}")

    @property
    def in_channels(self):
        """Read from the weight: None until a lazy layer sees its first input (or a state_dict)."""
        w = self._parameters.get("weight")
        return None if w is None or w.array is None else int(w.array.shape[1]) * self.groups

    def _weight_shape(self, in_channels):
        per_group = None if in_channels is None else in_channels // self.groups
        return (self.out_channels, per_group) + self.kernel_size

    def _check_in_channels(self, in_channels):
        if in_channels < 1:
            raise ValueError(f"{self.name}: in_channels must be positive, got {in_channels}")
        if in_channels % self.groups:
            raise ValueError(f"{self.name}: in_channels ({in_channels}) must be divisible "
                             f"by groups ({self.groups})")

    def _lazy_shapes(self, state):
        shapes = {"weight": self._weight_shape(None)}
        if self.bias is not None:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def _materialize(self, in_channels, xp, dtype):
        self._check_in_channels(in_channels)
        self.weight.materialize(xp.empty(self._weight_shape(in_channels), dtype=dtype))
        if self.bias is not None:
            self.bias.materialize(xp.empty((self.out_channels,), dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias,
        fan_in = in/groups * kh * kw."""
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def output_shape(self, x_shape):
        oh, ow = conv_output_hw(x_shape, self.kernel_size, self.stride, self.pads,
                                self.dilation)
        if len(x_shape) == 3:  # unbatched
            return self.out_channels, oh, ow
        return x_shape[0], self.out_channels, oh, ow

    def receptive_geometry(self):
        top, bottom, left, right = self.pads  # "same": an odd total's extra row is last
        return [(self.kernel_size, self.stride, (top, left), (bottom, right), self.dilation)]

    def flops(self, x_shape, y_shape):
        """``2*N*O*oh*ow*(C/groups)*kh*kw`` forward; backward that for dL/dW, again for
        dL/dx."""
        f = (2 * math.prod(y_shape) * (self.in_channels // self.groups)
             * math.prod(self.kernel_size))
        return f, f * (2 if self.needs_input_grad else 1)

    def forward(self, x):
        self.check_input(x, (3, 4), "(N, C, H, W) or (C, H, W)")
        if x.ndim == 4:
            return self._forward4(x)
        return self._forward_view(x[None], lambda y: y[0])

    def _forward_view(self, x4, unview):
        """The output of the 4-D input ``x4``, through ``unview`` (to the caller's rank),
        cached again with that shape: gy comes in the caller's rank."""
        y = unview(self._forward4(x4))
        if self.__dict__.get("_cache") is not None:
            _, cache = self._cache
            self.cache_for_backward(y, *cache)
        return y

    def _cached_ndim(self):
        saved = self.__dict__.get("_cache")
        return None if saved is None else len(saved[0][0])

    def _kernel(self):
        """The weight as (out, in/groups, kh, kw); Conv1d stores it as (out, in/groups, k)."""
        return self.weight.array

    def _forward4(self, x):
        if self.weight.array is not None and x.shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} input channels, got "
                             f"input of shape {tuple(x.shape)} with {x.shape[1]}")
        if self.weight.array is None:
            self._check_in_channels(x.shape[1])
        shape = self.output_shape(x.shape)
        if shape[2] < 1 or shape[3] < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel_size} (dilation "
                             f"{self.dilation}) is larger than the padded input "
                             f"{x.shape[2] + self.pads[0] + self.pads[1]}x"
                             f"{x.shape[3] + self.pads[2] + self.pads[3]}")
        # Only now, every check passed: a rejected first input must not fix a lazy
        # layer's in_channels (nor draw its weights).
        if self.weight.array is None:
            self._materialize(x.shape[1], backend.get_array_module(x), x.dtype)
        b = None if self.bias is None else self.bias.array
        if self.training and backend.is_grad_enabled():
            # Training keeps the memory of its im2col columns from one step to the next:
            # fresh memory every step costs page faults (see ops.workspace).
            y, cols = ops.conv2d(x, self._kernel(), b, self.stride, self.pads,
                                 self.dilation, saved=self.__dict__.get("_columns_buffer"),
                                 groups=self.groups)
            object.__setattr__(self, "_columns_buffer", cols)
            self.cache_for_backward(y, cols, x.shape, None)
            return y
        # Evaluation keeps no columns (kh*kw times the input; VGG-small at 224x224 held
        # 6.9 GB for an eval batch of 256) and lets go of training's. A backward in
        # eval() with gradients on (rare) builds them again from x.
        object.__setattr__(self, "_columns_buffer", None)
        y, _ = ops.conv2d(x, self._kernel(), b, self.stride, self.pads, self.dilation,
                          keep=False, groups=self.groups)
        self.cache_for_backward(y, None, x.shape, x)
        return y

    def backward(self, gy):
        if self._cached_ndim() != 3:
            return self._backward4(gy, gy)
        # Unbatched: a gy that is not a 3-D array goes through as it is, to be rejected.
        gy4 = gy[None] if getattr(gy, "ndim", None) == 3 else gy
        gx = self._backward4(gy, gy4)
        return None if gx is None else gx[0]

    def _backward4(self, gy, gy4):
        """gy as the caller gave it (checked against the forward output), gy4 as 4-D."""
        cols, x_shape, x = self.pop_cache(gy)
        if cols is None:  # an eval() forward kept its input, not the columns
            cols = conv2d_columns(x, self._kernel().shape, self.stride, self.pads,
                                  self.dilation, groups=self.groups)
        gx, gW, gb = ops.conv2d_backward(gy4, cols, self._kernel(), x_shape, self.stride,
                                         self.pads, self.dilation,
                                         need_gx=self.needs_input_grad,
                                         need_gb=self.bias is not None, consume=True,
                                         groups=self.groups)
        self.weight.accumulate(gW.reshape(self.weight.array.shape))
        if self.bias is not None:
            self.bias.accumulate(gb)
        return gx

    def extra_repr(self):
        return self._extra_repr(self.in_channels)

    def _extra_repr(self, in_channels):
        s = (f"{in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class LazyConv2d(LazyModuleMixin, Conv2d):
    """Conv2d whose in_channels is read from the first input (d2l's favourite;
    nn/lazy.py)."""

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 groups=1):
        super().__init__(None, out_channels, kernel_size, stride, padding, dilation, bias,
                         groups)

    cls_to_become = Conv2d


class Conv1d(Conv2d):
    """x (N, C, L) or (C, L) with weight (out, in/groups, k), as PyTorch: a Conv2d over
    (N, C, 1, L). Readable version: :func:`scratchnet.teach.conv1d_forward` and
    :func:`scratchnet.teach.conv1d_backward` (read those first)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, groups=1):
        pad = padding if isinstance(padding, str) else (0, _single(padding, "padding"))
        super().__init__(in_channels, out_channels, (1, _single(kernel_size, "kernel_size")),
                         (1, _single(stride, "stride")), pad,
                         (1, _single(dilation, "dilation")), bias, groups)

    def _weight_shape(self, in_channels):
        return super()._weight_shape(in_channels)[:2] + (self.kernel_size[1],)

    def _kernel(self):
        o, i, k = self.weight.array.shape
        return self.weight.array.reshape(o, i, 1, k)

    def forward(self, x):
        self.check_input(x, (2, 3), "(N, C, L) or (C, L)")
        if x.ndim == 3:
            return self._forward_view(x[:, :, None, :], lambda y: y[:, :, 0, :])
        return self._forward_view(x[None, :, None, :], lambda y: y[0, :, 0, :])

    def backward(self, gy):
        # A gy not of the output's rank goes through as it is, for _backward4 to reject.
        ndim = self._cached_ndim()
        if getattr(gy, "ndim", None) != ndim:
            gy4 = gy
        else:
            gy4 = gy[:, :, None, :] if ndim == 3 else gy[None, :, None, :]
        gx = self._backward4(gy, gy4)
        if gx is None:
            return None
        return gx[:, :, 0, :] if ndim == 3 else gx[0, :, 0, :]

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size=({self.kernel_size[1]},), "
             f"stride=({self.stride[1]},)")
        return s + (f", groups={self.groups}" if self.groups != 1 else "")


def _single(v, name):
    """Conv1d's int-or-1-tuple argument as an int; :func:`pair` checks that it is one."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"Conv1d: {name} must be an int or a 1-tuple, got {v!r}")
        v = v[0]
    try:
        return pair((1, v), name)[1]
    except TypeError:
        raise TypeError(f"Conv1d: {name} must be an int or a 1-tuple of an int, "
                        f"got {v!r}") from None
