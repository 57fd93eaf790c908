"""Losses: CrossEntropyLoss and MSELoss.

Calling a loss returns a 0-d array on the input's device (the mean over the
batch by default), as PyTorch returns a 0-d tensor: ``float(loss)`` or
``loss.item()`` reads it, and on the GPU that read waits for the GPU (a host
sync), so a training loop reads it only when it shows it. ``backward()`` with
no argument returns dL/d(input), the gradient a network's ``backward`` starts from.
"""
import numpy as np

from .. import backend, ops
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{self.name}: reduction must be one of {_REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def _result(self, loss):
        # numpy's reductions give numpy scalars: a 0-d array on every device instead.
        return backend.get_array_module(loss).asarray(loss)

    def _upstream(self, gy):
        if self.reduction == "none":
            if gy is None:
                raise ValueError(f"{self.name}.backward: reduction='none' needs gy, the "
                                 "gradient for each element")
            return gy
        if gy is not None and getattr(gy, "ndim", 0) != 0:
            raise ValueError(f"{self.name}.backward: reduction={self.reduction!r} gives a scalar "
                             f"loss, so gy must be a scalar, got shape {tuple(gy.shape)}")
        if gy is None:
            return 1.0
        # A 0-d device array stays there: reading it would be a host sync.
        return gy if backend.is_cupy_array(gy) else float(gy)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,) in [0, C).

    A label outside [0, C) is an immediate ValueError on the CPU. On the GPU,
    checking it at once would wait for the GPU at every step; instead the loss
    keeps the largest label seen (negative ones count as huge) on the device,
    and :meth:`check_labels` raises the same error when it is read: the Trainer
    does so whenever it reads the loss, and ``float(loss)`` callers may too.
    """

    def __init__(self, reduction="mean"):
        super().__init__(reduction)
        object.__setattr__(self, "_label_max", None)

    def forward(self, logits, labels):
        self.check_input(logits, (2,), "(N, C) logits")
        xp = backend.get_array_module(logits)
        labels = xp.asarray(labels) if not backend.is_cupy_array(labels) else labels
        if backend.device_of(labels) != backend.device_of(logits):
            raise ValueError(f"{self.name}: logits are on {backend.device_of(logits)} but "
                             f"labels on {backend.device_of(labels)}")
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"{self.name}: expected labels of shape ({logits.shape[0]},) for "
                             f"logits {tuple(logits.shape)}, got {tuple(labels.shape)}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"{self.name}: expected integer class labels, got {labels.dtype}")
        c = logits.shape[1]
        if labels.size and not backend.is_cupy_array(labels):
            if int(labels.min()) < 0 or int(labels.max()) >= c:
                self._label_error(int(labels.min()), int(labels.max()), c)
        elif labels.size:
            # As unsigned, a negative label is larger than any class count.
            top = labels.view(np.uint64 if labels.itemsize == 8 else np.uint32).max()
            prev = self.__dict__["_label_max"]
            top = top if prev is None or prev[1] != c else xp.maximum(prev[0], top)
            object.__setattr__(self, "_label_max", (top, c))
        loss, probs = ops.softmax_cross_entropy(logits, labels, self.reduction)
        self.cache_for_backward(loss.shape if self.reduction == "none" else (), probs, labels)
        return self._result(loss)

    def _label_error(self, low, high, c):
        raise ValueError(f"{self.name}: labels must be in [0, {c}), got values in "
                         f"[{low}, {high}]")

    def check_labels(self):
        """Raise the out-of-range label error for any batch since the last check (GPU);
        reads one number from the device."""
        pending = self.__dict__["_label_max"]
        if pending is None:
            return
        object.__setattr__(self, "_label_max", None)
        top, c = pending
        top = int(top)
        if top >= c:
            bits = 64 if top >= 1 << 32 else 32
            shown = top - (1 << bits) if top >= 1 << (bits - 1) else top
            raise ValueError(f"{self.name}: labels must be in [0, {c}), got a label {shown} "
                             f"in a batch since the last check (on the GPU labels are "
                             f"checked when the loss is read)")

    def backward(self, gy=None):
        g = self._upstream(gy)
        probs, labels = self.pop_cache(g if self.reduction == "none" else np.float64(0))
        return ops.softmax_cross_entropy_backward(probs, labels, self.reduction, g)


class MSELoss(_Loss):
    """Mean squared error between an input and a target of the same shape."""

    def forward(self, y, target):
        self.check_input(y, tuple(range(0, 33)), "of any shape")
        if getattr(target, "shape", None) != y.shape:
            raise ValueError(f"{self.name}: expected a target of shape {tuple(y.shape)}, got "
                             f"{getattr(target, 'shape', type(target).__name__)}")
        if backend.device_of(target) != backend.device_of(y):
            raise ValueError(f"{self.name}: input is on {backend.device_of(y)} but the target "
                             f"on {backend.device_of(target)}")
        # The target takes the input's dtype: float64 targets must not upcast a float32 network.
        loss, d = ops.mse(y, target.astype(y.dtype, copy=False), self.reduction)
        self.cache_for_backward(loss.shape if self.reduction == "none" else (), d)
        return self._result(loss)

    def backward(self, gy=None):
        g = self._upstream(gy)
        (d,) = self.pop_cache(g if self.reduction == "none" else np.float64(0))
        return ops.mse_backward(d, self.reduction, g)
