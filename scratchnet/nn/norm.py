"""Batch normalization layers: BatchNorm1d, BatchNorm2d, LazyBatchNorm1d, LazyBatchNorm2d.

Statistics per channel over (N,) or (N, L) for 1d and (N, H, W) for 2d.
Running statistics follow PyTorch: momentum 0.1 (new = (1 - m) * old + m * batch),
unbiased batch variance, and ``momentum=None`` for a cumulative average.
"""
import math

import numpy as np

from .. import backend, ops
from ..ops.activation import fused
from .lazy import LazyModuleMixin
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    _ndims = ()
    _layout = ""
    grad_fn_name = "NativeBatchNormBackward0"  # PyTorch's node, as printed in grad_fn=<...>

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True):
        super().__init__()
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.num_features = None
        self.weight = Parameter() if affine else None
        self.bias = Parameter() if affine else None
        for k in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(k, None)
        if num_features is not None:
            self._materialize(int(num_features), backend.device_module(),
                              backend.get_default_dtype())

    def _materialize(self, c, xp, dtype):
        if c < 1:
            raise ValueError(f"{self.name}: num_features must be positive, got {c}")
        self.num_features = c
        if self.affine:
            self.weight.materialize(xp.ones((c,), dtype=dtype))
            self.bias.materialize(xp.zeros((c,), dtype=dtype))
        if self.track_running_stats:
            self.running_mean = xp.zeros((c,), dtype=dtype)
            self.running_var = xp.ones((c,), dtype=dtype)
            self.num_batches_tracked = xp.zeros((), dtype=np.int64)

    def _lazy_shapes(self, state):
        """Every per-channel entry has the channel count of the first one present."""
        c = self.num_features
        for k in ("weight", "bias", "running_mean", "running_var"):
            shape = getattr(state.get(k), "shape", None) if k in state else None
            if shape is None and k in state:
                shape = np.shape(state[k])  # a list or a number
            if c is None and shape is not None and len(shape) == 1:
                c = shape[0]
        shapes = {"num_batches_tracked": ()}
        if c is not None:
            shapes.update((k, (c,)) for k in ("weight", "bias", "running_mean", "running_var"))
        return shapes

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        self.check_input(x, self._ndims, self._layout)
        axes = (0,) + tuple(range(2, x.ndim))
        m = x.size // x.shape[1]
        use_batch = self.training or not self.track_running_stats
        # Every check comes before a lazy layer materialises: a bad input changes nothing.
        if use_batch and m < 2:
            raise ValueError(f"{self.name}: expected more than 1 value per channel when "
                             f"training, got input of shape {tuple(x.shape)}")
        if self.num_features is None:
            loaded = self.weight.array if self.affine else self.running_mean
            if loaded is None:
                self._materialize(x.shape[1], backend.get_array_module(x), x.dtype)
            else:  # a lazy layer given its state by load_state_dict
                self.num_features = loaded.shape[0]
        if x.shape[1] != self.num_features:
            raise ValueError(f"{self.name}: expected {self.num_features} channels, got input "
                             f"of shape {tuple(x.shape)} with {x.shape[1]}")
        if self.running_mean is not None:
            if backend.device_of(self.running_mean) != backend.device_of(x):
                raise ValueError(f"{self.name}: input is on {backend.device_of(x)} but the "
                                 f"running statistics on {backend.device_of(self.running_mean)}"
                                 "; move the model with .to(...)")
            if self.running_mean.dtype != x.dtype:
                raise TypeError(f"{self.name}: input dtype {x.dtype} does not match the running "
                                f"statistics dtype {self.running_mean.dtype}; cast the input "
                                "(x.astype) or the model (.double() / .float())")
        gamma = self.weight.array if self.affine else None
        beta = self.bias.array if self.affine else None
        if use_batch:
            y, cache, mean, var = ops.batch_norm_train(x, gamma, beta, self.eps, axes)
            if self.training and self.track_running_stats:
                self._update_running(mean, var, m)
        else:
            y, cache = ops.batch_norm_eval(x, gamma, beta, self.running_mean, self.running_var,
                                           self.eps, axes)
        self.cache_for_backward(y, cache, axes, use_batch)
        return y

    def _update_running(self, mean, var, m):
        self.num_batches_tracked += 1
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = float(self.momentum)
        dt = self.running_mean.dtype.type
        args = (self.running_mean, self.running_var, mean, var, dt(1 - factor), dt(factor),
                dt(factor * m / (m - 1)))
        xp = backend.get_array_module(mean)
        if xp is np:
            _update_running(np, *args)
        else:  # one fused kernel instead of six tiny ones
            fused(xp, _update_running)(*args)

    def backward(self, gy):
        cache, axes, use_batch = self.pop_cache(gy)
        gamma = self.weight.array if self.affine else None
        fn = ops.batch_norm_train_backward if use_batch else ops.batch_norm_eval_backward
        gx, ggamma, gbeta = fn(gy, cache, gamma, axes)
        if self.affine:
            self.weight.accumulate(ggamma)
            self.bias.accumulate(gbeta)
        return gx

    def receptive_geometry(self):
        return []

    def flops(self, x_shape, y_shape):
        """Per element, training: 6 forward (statistics, centring, scaling, shift), 7
        backward (with the three per-channel sums); eval: 2 and 4."""
        n = math.prod(y_shape)
        if self.training or not self.track_running_stats:
            return 6 * n, 7 * n
        return 2 * n, 4 * n

    def extra_repr(self):
        return self._extra_repr(self.num_features)

    def _extra_repr(self, num_features):
        return f"{num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


def _update_running(xp, running_mean, running_var, mean, var, keep, f, f_unbiased):
    """In place: running = keep * running + f * batch (the variance made unbiased)."""
    running_mean *= keep
    running_mean += f * mean
    running_var *= keep
    running_var += f_unbiased * var


class BatchNorm1d(_BatchNorm):
    """x (N, C) or (N, C, L)."""
    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """x (N, C, H, W), statistics per channel over (N, H, W)."""
    _ndims = (4,)
    _layout = "(N, C, H, W)"


class _LazyBatchNorm(LazyModuleMixin):
    """A batch norm whose num_features is read from the first input; once its shapes are
    known it becomes its plain class (``cls_to_become``), PyTorch's rule (nn/lazy.py)."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__(None, eps, momentum, affine, track_running_stats)


class LazyBatchNorm1d(_LazyBatchNorm, BatchNorm1d):
    """BatchNorm1d whose num_features is read from the first input (d2l 8.5's BNLeNet
    puts one after each of its LazyLinear layers)."""
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm, BatchNorm2d):
    """BatchNorm2d whose num_features is read from the first input."""
    cls_to_become = BatchNorm2d
