"""Parameter: a learnable array and the gradient accumulated into it."""
import numpy as np

from .. import backend


class Parameter:
    """``data`` holds the value, ``grad`` the accumulated dL/d(data).

    ``data`` is None for a lazy layer's parameter until its first forward pass
    fixes the shape (d2l's ``LazyConv2d``).
    """

    def __init__(self, data=None):
        self.data = data
        self.grad = None if data is None else backend.get_array_module(data).zeros_like(data)

    @property
    def shape(self):
        return None if self.data is None else self.data.shape

    @property
    def dtype(self):
        return None if self.data is None else self.data.dtype

    @property
    def is_materialized(self):
        return self.data is not None

    def materialize(self, data):
        self.data = data
        self.grad = backend.get_array_module(data).zeros_like(data)

    def accumulate(self, g):
        """Add ``g`` into ``grad`` (a parameter used twice gets both contributions)."""
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    def zero_grad(self):
        if self.grad is not None:
            self.grad[...] = 0

    def numel(self):
        return 0 if self.data is None else int(np.prod(self.data.shape))

    def __repr__(self):
        if self.data is None:
            return "Parameter(<uninitialized>)"
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype}, device={backend.device_of(self.data)})"
