"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (no parameters).

Each takes a batch (N, C, H, W) or, as PyTorch, one image (C, H, W), and its backward
returns dL/dx in the shape it was given.
"""
import math
import numbers

from .. import ops
from ..ops.im2col import conv_output_hw, pair, pool_stride
from ..ops.pool import max_pool2d_indices
from .module import WHOLE_INPUT, Module

LAYOUT = "(N, C, H, W) or (C, H, W)"


def _flag(v, name):
    """A bool option: PyTorch refuses 1 and "yes" for one, and so does scratchnet."""
    if not isinstance(v, bool):
        raise TypeError(f"{name}: expected True or False, got {v!r}")
    return v


def _batched(x):
    """x as a batch (N, C, H, W) (one image gets a batch axis: a view), and whether it
    was one image."""
    return (x[None], True) if x.ndim == 3 else (x, False)


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, f"{self.name} kernel_size")
        self.stride = pool_stride(stride, self.kernel_size, f"{self.name} stride")
        self.padding = pair(padding, f"{self.name} padding")
        self.dilation = pair(dilation, f"{self.name} dilation")
        self.ceil_mode = _flag(ceil_mode, f"{self.name} ceil_mode")
        for what, v, low in (("kernel_size", self.kernel_size, 1), ("stride", self.stride, 1),
                             ("padding", self.padding, 0), ("dilation", self.dilation, 1)):
            if min(v) < low:
                raise ValueError(f"{self.name}: {what} must be >= {low}, got {v}")
        # As PyTorch: a window must never lie entirely in the padding.
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{self.name}: padding should be at most half of kernel_size, got "
                             f"padding {self.padding} with kernel_size {self.kernel_size}")
        ph, pw = self.padding
        self.pads = (ph, ph, pw, pw)

    def output_shape(self, x_shape):
        """(N, C, oh, ow), or (C, oh, ow) for one image (C, H, W)."""
        shape = (1,) * (4 - len(x_shape)) + tuple(x_shape)
        oh, ow = conv_output_hw(shape, self.kernel_size, self.stride, self.pads, self.dilation,
                                self.ceil_mode)
        return tuple(x_shape[:-2]) + (oh, ow)

    def receptive_geometry(self):
        pad_hi = self.padding
        if self.ceil_mode:
            # Floor mode with this much padding after gives ceil mode's output size:
            # ceil rounds up by at most s - 1, and its last window starts before the
            # trailing padding, so it ends at most d*(k - 1) into it.
            pad_hi = tuple(min(p + s - 1, d * (k - 1)) for p, s, d, k in zip(
                self.padding, self.stride, self.dilation, self.kernel_size))
        return [(self.kernel_size, self.stride, self.padding, pad_hi, self.dilation)]

    def _checked(self, x):
        """x as a batch (see ``_batched``), refused before any state changes when bad."""
        self.check_input(x, (3, 4), LAYOUT)
        shape = self.output_shape(x.shape)
        if shape[-2] < 1 or shape[-1] < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel_size} is larger than the padded "
                             f"input {x.shape[-2] + 2 * self.padding[0]}x"
                             f"{x.shape[-1] + 2 * self.padding[1]}")
        return _batched(x)

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return s + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Window maximum; pads with -inf; the first maximum of a window gets the gradient.

    With ``return_indices`` forward returns (y, indices): each maximum's flat index
    h*W + w in its (H, W) input plane, int64, as PyTorch's; backward is unchanged.
    """

    grad_fn_name = "MaxPool2DWithIndicesBackward0"  # PyTorch's node, in grad_fn=<...>

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = _flag(return_indices, f"{self.name} return_indices")

    def forward(self, x):
        x, one = self._checked(x)
        y, idx = ops.max_pool2d(x, self.kernel_size, self.stride, self.pads, self.dilation,
                                self.ceil_mode)
        self.cache_for_backward(y[0] if one else y, idx, x.shape, one)
        if self.return_indices:
            indices = max_pool2d_indices(idx, x.shape, self.kernel_size, self.stride,
                                         self.pads, self.dilation)
            return (y[0], indices[0]) if one else (y, indices)
        return y[0] if one else y

    def backward(self, gy):
        idx, x_shape, one = self.pop_cache(gy)
        gx = ops.max_pool2d_backward(gy[None] if one else gy, idx, x_shape, self.kernel_size,
                                     self.stride, self.pads, self.dilation, self.ceil_mode)
        return gx[0] if one else gx

    def flops(self, x_shape, y_shape):
        """kh*kw comparisons per output forward; backward one scatter per output."""
        n_out = math.prod(y_shape)
        return n_out * math.prod(self.kernel_size), n_out

    def extra_repr(self):
        return super().extra_repr() + (", return_indices=True" if self.return_indices else "")


class AvgPool2d(_Pool2d):
    """Window mean over kh*kw values, padded zeros included (count_include_pad=True);
    PyTorch's ``ceil_mode``, ``count_include_pad=False`` and ``divisor_override`` change
    what each window's sum is divided by (``ops.pool.avg_divisor``)."""

    grad_fn_name = "AvgPool2DBackward0"  # PyTorch's node, as printed in grad_fn=<...>

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode=ceil_mode)
        self.count_include_pad = _flag(count_include_pad, f"{self.name} count_include_pad")
        d = divisor_override
        if d is not None and not (isinstance(d, numbers.Integral) and not isinstance(d, bool)):
            raise TypeError(f"{self.name}: divisor_override must be an int or None, got {d!r}")
        if d == 0:  # PyTorch takes a negative divisor, not 0
            raise ValueError(f"{self.name}: divisor_override must not be 0")
        self.divisor_override = None if d is None else int(d)

    def _options(self):
        return dict(ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x):
        x, one = self._checked(x)
        y = ops.avg_pool2d(x, self.kernel_size, self.stride, self.pads, **self._options())
        self.cache_for_backward(y[0] if one else y, x.shape, one)
        return y[0] if one else y

    def backward(self, gy):
        x_shape, one = self.pop_cache(gy)
        gx = ops.avg_pool2d_backward(gy[None] if one else gy, x_shape, self.kernel_size,
                                     self.stride, self.pads, **self._options())
        return gx[0] if one else gx

    def flops(self, x_shape, y_shape):
        """kh*kw per output element, both ways."""
        f = math.prod(y_shape) * math.prod(self.kernel_size)
        return f, f

    def extra_repr(self):
        s = super().extra_repr()
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s


class AdaptiveAvgPool2d(Module):
    """Average over PyTorch's adaptive bins to a fixed (oh, ow) output; None for oh or ow
    keeps the input's size on that axis. Readable version:
    :func:`scratchnet.teach.adaptive_avg_pool2d_forward` and
    :func:`scratchnet.teach.adaptive_avg_pool2d_backward` (read those first)."""

    def grad_fn_name(self, x):
        """PyTorch's node, as printed in grad_fn=<...>: a 1x1 output is a mean."""
        return "MeanBackward1" if self.output_size == (1, 1) else "AdaptiveAvgPool2DBackward0"

    def __init__(self, output_size):
        super().__init__()
        if isinstance(output_size, (tuple, list)) and len(output_size) == 2 and None in \
                output_size:
            # pair() for the ints, 1 standing in for None
            oh, ow = pair(tuple(1 if v is None else v for v in output_size),
                          f"{self.name} output_size", single=False)
            self.output_size = tuple(None if v is None else o
                                     for v, o in zip(output_size, (oh, ow)))
        else:
            # PyTorch refuses output_size=(n,), unlike the pools' other arguments
            self.output_size = pair(output_size, f"{self.name} output_size", single=False)
        sizes = [v for v in self.output_size if v is not None]
        if sizes and min(sizes) < 1:
            raise ValueError(f"{self.name}: output_size must be positive, got {output_size}")

    def forward(self, x):
        self.check_input(x, (3, 4), LAYOUT)
        if x.shape[-2] < 1 or x.shape[-1] < 1:
            raise ValueError(f"{self.name}: expected a non-empty image, got {tuple(x.shape)}")
        x, one = _batched(x)
        y = ops.adaptive_avg_pool2d(x, self.output_size)
        self.cache_for_backward(y[0] if one else y, x.shape, one)
        return y[0] if one else y

    def backward(self, gy):
        x_shape, one = self.pop_cache(gy)
        gx = ops.adaptive_avg_pool2d_backward(gy[None] if one else gy, x_shape)
        return gx[0] if one else gx

    def receptive_geometry(self):
        return WHOLE_INPUT  # its bins are no fixed window

    def flops(self, x_shape, y_shape):
        """One per input element, both ways."""
        return math.prod(x_shape), math.prod(x_shape)

    def extra_repr(self):
        return f"output_size={self.output_size}"
