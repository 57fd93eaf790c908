"""The Tensor's operators and methods, each a forward line and its backward (micrograd's
habit: the derivative sits beside the op). Broadcasting: a gradient is summed back to
its input's shape (:func:`unbroadcast`)."""
import numpy as np

from .. import backend, ops
from . import Tensor, _ensure, record


def unbroadcast(g, shape):
    """Sum g over the axes broadcasting added or stretched, down to ``shape``."""
    if tuple(g.shape) == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, s in enumerate(shape)
                                       if s == 1 and g.shape[extra + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _binary(name, f, df):
    """A two-input op: f(a, b) forward; df(a, b, y, gy) -> (ga, gb) before unbroadcast."""
    def op(a, b):
        b = _ensure(b, a)
        y = f(a.data, b.data)

        def backward(gy):
            ga, gb = df(a.data, b.data, y, gy)
            return (unbroadcast(ga, a.shape) if a.requires_grad else None,
                    unbroadcast(gb, b.shape) if b.requires_grad else None)
        return record(name, y, (a, b), backward)

    def rop(a, b):
        return op(_ensure(b, a), a)
    return op, rop


Tensor.__add__, Tensor.__radd__ = _binary("AddBackward", lambda a, b: a + b,
                                          lambda a, b, y, g: (g, g))
Tensor.__sub__, Tensor.__rsub__ = _binary("SubBackward", lambda a, b: a - b,
                                          lambda a, b, y, g: (g, -g))
Tensor.__mul__, Tensor.__rmul__ = _binary("MulBackward", lambda a, b: a * b,
                                          lambda a, b, y, g: (g * b, g * a))
Tensor.__truediv__, Tensor.__rtruediv__ = _binary(
    "DivBackward", lambda a, b: a / b, lambda a, b, y, g: (g / b, -g * y / b))


def _pow_backward(a, b, y, g):
    xp = backend.get_array_module(a)
    # d(a^b)/db = a^b log a: only where a > 0 (PyTorch gives the same where it is defined)
    with np.errstate(divide="ignore", invalid="ignore"):
        gb = g * y * xp.log(xp.where(a > 0, a, 1))
    return g * b * a ** (b - 1), gb


Tensor.__pow__, Tensor.__rpow__ = _binary("PowBackward", lambda a, b: a ** b, _pow_backward)


def _matmul(a, b):
    b = _ensure(b, a)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"autograd @: expected two 2-D tensors, got shapes {a.shape} and "
                         f"{b.shape}")
    y = a.data.dot(b.data)
    return record("MmBackward", y, (a, b), lambda g: (g.dot(b.data.T) if a.requires_grad
                                                       else None,
                                                       a.data.T.dot(g) if b.requires_grad
                                                       else None))


Tensor.__matmul__ = _matmul
Tensor.__rmatmul__ = lambda a, b: _matmul(_ensure(b, a), a)
Tensor.__neg__ = lambda a: record("NegBackward", -a.data, (a,), lambda g: (-g,))


def _unary(name, f, df):
    """A one-input op: f(x) forward; df(x, y, gy) -> gx."""
    def op(a):
        y = f(a.data)
        return record(name, y, (a,), lambda g: (df(a.data, y, g),))
    op.__name__ = name
    return op


def _xp(a):
    return backend.get_array_module(a)


Tensor.exp = _unary("ExpBackward", lambda x: _xp(x).exp(x), lambda x, y, g: g * y)
Tensor.log = _unary("LogBackward", lambda x: _xp(x).log(x), lambda x, y, g: g / x)
Tensor.relu = _unary("ReluBackward", ops.relu, lambda x, y, g: ops.relu_backward(g, y))
Tensor.sigmoid = _unary("SigmoidBackward", ops.sigmoid,
                        lambda x, y, g: ops.sigmoid_backward(g, y))
Tensor.tanh = _unary("TanhBackward", ops.tanh, lambda x, y, g: ops.tanh_backward(g, y))


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % ndim for a in axis)


def _sum(a, axis=None, keepdims=False):
    y = a.data.sum(axis=axis, keepdims=keepdims)
    kept = tuple(1 if i in _axes(axis, a.ndim) else s for i, s in enumerate(a.shape))
    xp = _xp(a.data)
    return record("SumBackward", xp.asarray(y), (a,),
                  lambda g: (xp.broadcast_to(g.reshape(kept), a.shape).copy(),))


def _mean(a, axis=None, keepdims=False):
    n = 1
    for i in _axes(axis, a.ndim):
        n *= a.shape[i]
    return _sum(a, axis, keepdims) * (1.0 / n)


Tensor.sum, Tensor.mean = _sum, _mean


def _reshape(a, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return record("ViewBackward", a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),))


def _permute(a, *dims):
    """The axes in the order ``dims`` (numpy's transpose(axes))."""
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    dims = tuple(d % a.ndim for d in dims) if dims else tuple(range(a.ndim))[::-1]
    inverse = tuple(int(i) for i in np.argsort(dims))
    return record("PermuteBackward", a.data.transpose(dims), (a,),
                  lambda g: (g.transpose(inverse),))


def _transpose(a, dim0, dim1):
    """Swap two axes, as torch.Tensor.transpose (numpy's transpose takes every axis:
    that is permute here)."""
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return _permute(a, dims)


def _getitem(a, key):
    key = tuple(k.data if isinstance(k, Tensor) else k for k in key) \
        if isinstance(key, tuple) else (key.data if isinstance(key, Tensor) else key)

    def backward(g):
        xp = _xp(g)
        gx = xp.zeros(a.shape, dtype=g.dtype)
        if isinstance(key, tuple) and any(hasattr(k, "shape") for k in key) or \
                hasattr(key, "shape"):
            xp.add.at(gx, key, g)  # a repeated index gets every share
        else:
            gx[key] = g
        return (gx,)
    return record("IndexBackward", a.data[key], (a,), backward)


Tensor.reshape, Tensor.transpose, Tensor.permute = _reshape, _transpose, _permute
Tensor.__getitem__ = _getitem
Tensor.T = property(lambda a: _permute(a))
Tensor.view = _reshape
