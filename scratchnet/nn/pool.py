"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (no parameters)."""
import math

from .. import ops
from ..ops.im2col import conv_output_hw, pair
from .module import WHOLE_INPUT, Module


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size = pair(kernel_size, f"{self.name} kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, f"{self.name} stride")
        self.padding = pair(padding, f"{self.name} padding")
        self.dilation = pair(dilation, f"{self.name} dilation")
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
        oh, ow = conv_output_hw(x_shape, self.kernel_size, self.stride, self.pads,
                                self.dilation)
        return x_shape[0], x_shape[1], oh, ow

    def receptive_geometry(self):
        return [(self.kernel_size, self.stride, self.padding, self.padding, self.dilation)]

    def _checked(self, x):
        self.check_input(x, (4,), "(N, C, H, W)")
        shape = self.output_shape(x.shape)
        if shape[2] < 1 or shape[3] < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel_size} is larger than the padded "
                             f"input {x.shape[2] + 2 * self.padding[0]}x"
                             f"{x.shape[3] + 2 * self.padding[1]}")
        return shape

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Window maximum; pads with -inf; the first maximum of a window gets the gradient."""

    def forward(self, x):
        self._checked(x)
        y, idx = ops.max_pool2d(x, self.kernel_size, self.stride, self.pads, self.dilation)
        self.cache_for_backward(y, idx, x.shape)
        return y

    def backward(self, gy):
        idx, x_shape = self.pop_cache(gy)
        return ops.max_pool2d_backward(gy, idx, x_shape, self.kernel_size, self.stride,
                                       self.pads, self.dilation)

    def flops(self, x_shape, y_shape):
        """kh*kw comparisons per output forward; backward one scatter per output."""
        n_out = math.prod(y_shape)
        return n_out * math.prod(self.kernel_size), n_out


class AvgPool2d(_Pool2d):
    """Window mean over kh*kw values, padded zeros included (count_include_pad=True)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)

    def forward(self, x):
        self._checked(x)
        y = ops.avg_pool2d(x, self.kernel_size, self.stride, self.pads)
        self.cache_for_backward(y, x.shape)
        return y

    def backward(self, gy):
        (x_shape,) = self.pop_cache(gy)
        return ops.avg_pool2d_backward(gy, x_shape, self.kernel_size, self.stride, self.pads)

    def flops(self, x_shape, y_shape):
        """kh*kw per output element, both ways."""
        f = math.prod(y_shape) * math.prod(self.kernel_size)
        return f, f


class AdaptiveAvgPool2d(Module):
    """Average over PyTorch's adaptive bins to a fixed (oh, ow) output."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = pair(output_size, f"{self.name} output_size")
        if min(self.output_size) < 1:
            raise ValueError(f"{self.name}: output_size must be positive, got {output_size}")

    def forward(self, x):
        self.check_input(x, (4,), "(N, C, H, W)")
        if x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"{self.name}: expected a non-empty image, got {tuple(x.shape)}")
        y = ops.adaptive_avg_pool2d(x, self.output_size)
        self.cache_for_backward(y, x.shape)
        return y

    def backward(self, gy):
        (x_shape,) = self.pop_cache(gy)
        return ops.adaptive_avg_pool2d_backward(gy, x_shape)

    def receptive_geometry(self):
        return WHOLE_INPUT  # its bins are no fixed window

    def flops(self, x_shape, y_shape):
        """One per input element, both ways."""
        return math.prod(x_shape), math.prod(x_shape)

    def extra_repr(self):
        return f"output_size={self.output_size}"
