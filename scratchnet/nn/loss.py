"""Losses: CrossEntropyLoss and MSELoss.

Calling a loss returns a Python float (the mean over the batch by default);
``backward()`` with no argument returns dL/d(input), the gradient a network's
``backward`` starts from.
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
        return float(loss) if self.reduction != "none" else loss

    def _upstream(self, gy):
        if self.reduction == "none":
            if gy is None:
                raise ValueError(f"{self.name}.backward: reduction='none' needs gy, the "
                                 "gradient for each element")
            return gy
        if gy is not None and getattr(gy, "ndim", 0) != 0:
            raise ValueError(f"{self.name}.backward: reduction={self.reduction!r} gives a scalar "
                             f"loss, so gy must be a scalar, got shape {tuple(gy.shape)}")
        return 1.0 if gy is None else float(gy)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,) in [0, C)."""

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
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= c):
            raise ValueError(f"{self.name}: labels must be in [0, {c}), got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        loss, probs = ops.softmax_cross_entropy(logits, labels, self.reduction)
        self.save_for_backward(loss.shape if self.reduction == "none" else (), probs, labels)
        return self._result(loss)

    def backward(self, gy=None):
        g = self._upstream(gy)
        probs, labels = self.saved_for_backward(g if self.reduction == "none" else np.float64(0))
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
        self.save_for_backward(loss.shape if self.reduction == "none" else (), d)
        return self._result(loss)

    def backward(self, gy=None):
        g = self._upstream(gy)
        (d,) = self.saved_for_backward(g if self.reduction == "none" else np.float64(0))
        return ops.mse_backward(d, self.reduction, g)
