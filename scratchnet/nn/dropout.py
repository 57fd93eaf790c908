"""Dropout: inverted, so it scales in training and is the identity in eval()."""
import math

from .. import ops
from .module import Module


class Dropout(Module):
    """Inverted dropout: y = x keep / (1 - p) in training, keep drawn as u >= p for u
    uniform in [0, 1); the identity in eval(). Readable version:
    :func:`scratchnet.teach.dropout_forward` and :func:`scratchnet.teach.dropout_backward`
    (read those first)."""

    grad_fn_name = "MulBackward0"  # PyTorch's node in training, as printed in grad_fn=<...>

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{self.name}: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x):
        self.check_input(x, tuple(range(0, 33)), "of any shape")
        if not self.training or self.p == 0.0:
            self.cache_for_backward(x, None)
            return x
        mask = ops.dropout_mask(x, self.p)
        self.cache_for_backward(x, mask)
        return ops.dropout(x, mask)

    def backward(self, gy):
        (mask,) = self.pop_cache(gy)
        return gy if mask is None else ops.dropout_backward(gy, mask)

    def receptive_geometry(self):
        return []

    def flops(self, x_shape, y_shape):
        """One per element each way while it drops; none as the identity (eval)."""
        n = math.prod(y_shape) if self.training and self.p > 0 else 0
        return n, n

    def extra_repr(self):
        return f"p={self.p}"
