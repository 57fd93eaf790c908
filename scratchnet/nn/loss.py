"""Losses: CrossEntropyLoss and MSELoss.

Calling a loss returns a 0-d array on the input's device (the mean over the
batch by default), as PyTorch returns a 0-d tensor: ``float(loss)`` or
``loss.item()`` reads it, and on the GPU that read waits for the GPU (a host
sync), so a training loop reads it only when it shows it. ``backward()`` with
no argument returns dL/d(input), the gradient a network's ``backward`` starts from.
"""
import numbers

import numpy as np

from .. import backend, ops
from ..ops.activation import fused
from ..backend import refuse_torch
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
            got = repr(reduction) if isinstance(reduction, str) else type(reduction).__name__
            raise ValueError(f"{self.name}: reduction must be one of {_REDUCTIONS}, "
                             f"got {got}")
        self.reduction = reduction

    def _result(self, loss):
        # numpy's reductions give numpy scalars: a 0-d array on every device instead.
        return backend.get_array_module(loss).asarray(loss)

    def _upstream(self, gy):
        refuse_torch(f"{self.name}.backward", "gy", gy)
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
    """Softmax cross-entropy of logits (N, C) or (N, C, d1, ...), as PyTorch's.

    The target holds class indices, integers (N,) or (N, d1, ...) in [0, C), or class
    probabilities, floats of the logits' shape. ``weight`` (C,) weighs each class (the
    mean then divides by the summed weight of the targets); a class index equal to
    ``ignore_index`` adds nothing, not even to the mean's divisor; ``label_smoothing``
    in [0, 1] mixes each target with the uniform distribution.

    A label outside [0, C) (other than ignore_index) is an immediate ValueError on the
    CPU. On the GPU, checking it at once would wait for the GPU at every step; instead
    the loss keeps the largest label seen (negative ones count as huge) on the device,
    and :meth:`check_labels` raises the same error when it is read: the Trainer does so
    whenever it reads the loss, and ``float(loss)`` callers may too.
    """

    grad_fn_name = "NllLossBackward0"  # PyTorch's node, as printed in grad_fn=<...>

    def __init__(self, reduction="mean", *, weight=None, ignore_index=-100,
                 label_smoothing=0.0):
        super().__init__(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"{self.name}: ignore_index must be an int, got "
                            f"{type(ignore_index).__name__}")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
            raise TypeError(f"{self.name}: label_smoothing must be a number in [0, 1], got "
                            f"{type(label_smoothing).__name__}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{self.name}: label_smoothing must be in [0, 1], got "
                             f"{label_smoothing}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", None if weight is None else self._class_weights(weight))
        object.__setattr__(self, "_label_max", None)

    def _class_weights(self, weight):
        """weight as a 1-D floating array on its device (a list or a host array: on the
        active device, in the default dtype unless it is floating already)."""
        if not backend.is_cupy_array(weight):
            host = np.asarray(weight)
            if not (np.issubdtype(host.dtype, np.floating) or np.issubdtype(host.dtype,
                                                                            np.integer)):
                raise TypeError(f"{self.name}: weight must hold numbers, got {host.dtype}")
            if not np.issubdtype(host.dtype, np.floating):
                host = host.astype(backend.get_default_dtype())
            weight = backend.to_device(host)
        elif not np.issubdtype(weight.dtype, np.floating):
            weight = weight.astype(backend.get_default_dtype())
        if weight.ndim != 1 or weight.shape[0] < 1:
            raise ValueError(f"{self.name}: weight must be a 1-D array of one weight per "
                             f"class, got shape {tuple(weight.shape)}")
        return weight

    def forward(self, logits, target):
        self.check_input(logits, tuple(range(2, 33)), "(N, C, ...) logits")
        xp = backend.get_array_module(logits)
        target = xp.asarray(target) if not backend.is_cupy_array(target) else target
        if backend.device_of(target) != backend.device_of(logits):
            what = "labels" if np.issubdtype(target.dtype, np.integer) else "the target"
            raise ValueError(f"{self.name}: logits are on {backend.device_of(logits)} but "
                             f"{what} on {backend.device_of(target)}")
        shape, c = tuple(logits.shape), logits.shape[1]
        if np.issubdtype(target.dtype, np.floating):
            if target.shape != logits.shape:
                raise ValueError(f"{self.name}: a floating-point target holds class "
                                 f"probabilities, of the logits' shape {shape}; got "
                                 f"{tuple(target.shape)} (class indices are integers)")
            if self.ignore_index >= 0:  # PyTorch refuses it too: no label to compare
                raise ValueError(f"{self.name}: ignore_index={self.ignore_index} needs class "
                                 "labels, not class probabilities")
        elif not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"{self.name}: expected integer class labels or floating-point "
                            f"class probabilities, got {target.dtype}")
        elif target.shape != shape[:1] + shape[2:]:
            raise ValueError(f"{self.name}: expected labels of shape {shape[:1] + shape[2:]} "
                             f"for logits {shape}, got {tuple(target.shape)}")
        w = self.weight
        if w is not None:
            if w.shape[0] != c:
                raise ValueError(f"{self.name}: weight has {w.shape[0]} entries but the "
                                 f"logits have {c} classes")
            if backend.device_of(w) != backend.device_of(logits):
                raise ValueError(f"{self.name}: logits are on {backend.device_of(logits)} but "
                                 f"weight on {backend.device_of(w)}; move the loss with "
                                 f".to(...)")
        if np.issubdtype(target.dtype, np.integer) and target.size:
            self._check_or_note_labels(target, c)
        loss, saved = ops.softmax_cross_entropy(logits, target, self.reduction, w,
                                                self.ignore_index, self.label_smoothing)
        self.cache_for_backward(loss.shape if self.reduction == "none" else (), saved, target)
        return self._result(loss)

    def _check_or_note_labels(self, labels, c):
        """CPU: raise for a label outside [0, c) that is not ignore_index. GPU: note the
        largest such label on the device, for check_labels."""
        ii = self.ignore_index
        info = np.iinfo(labels.dtype)
        masked = not 0 <= ii < c and info.min <= ii <= info.max  # else a class, or never there
        if not backend.is_cupy_array(labels):
            if int(labels.min()) < 0 or int(labels.max()) >= c:
                kept = labels[labels != ii] if masked else labels
                if kept.size and (int(kept.min()) < 0 or int(kept.max()) >= c):
                    self._label_error(int(kept.min()), int(kept.max()), c)
            return
        if masked:  # an ignored label counts as 0
            labels = fused(backend.get_array_module(labels), _gpu_drop_ignored)(
                labels, labels.dtype.type(ii))
        # As unsigned, a negative label is larger than any class count.
        top = labels.view(np.uint64 if labels.itemsize == 8 else np.uint32).max()
        prev = self.__dict__["_label_max"]
        top = top if prev is None or prev[1] != c else backend.get_array_module(top).maximum(
            prev[0], top)
        object.__setattr__(self, "_label_max", (top, c))

    def _label_error(self, low, high, c):
        also = (f" (or ignore_index {self.ignore_index})"
                if not 0 <= self.ignore_index < c else "")
        raise ValueError(f"{self.name}: labels must be in [0, {c}){also}, got values in "
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
        saved, target = self.pop_cache(g if self.reduction == "none" else np.float64(0))
        return ops.softmax_cross_entropy_backward(saved, target, self.reduction, g)

    def extra_repr(self):
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight=({self.weight.shape[0]},)")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


def _gpu_drop_ignored(xp, labels, ignore_index):
    return xp.where(labels == ignore_index, 0, labels)


class MSELoss(_Loss):
    """Mean squared error between an input and a target of the same shape. Readable
    version (mean reduction): :func:`scratchnet.teach.mse_loss_forward` and
    :func:`scratchnet.teach.mse_loss_backward` (read those first)."""

    grad_fn_name = "MseLossBackward0"  # PyTorch's node, as printed in grad_fn=<...>

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
