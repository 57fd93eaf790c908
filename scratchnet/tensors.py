"""PyTorch's tensor-making functions: ``torch.tensor``, ``zeros``, ``rand``, ``stack`` ...

    import scratchnet as torch
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    K = torch.rand(size=(2, 2))            # or torch.rand(2, 2)

Each returns a :class:`scratchnet.autograd.Tensor` on the active device
(``sn.use_device``), so d2l's cells run with ``import scratchnet as torch``. Floats
get the default dtype (float32, as PyTorch's), integers int64, as PyTorch's. Random
values come from scratchnet's host generator (``sn.manual_seed``) and are then put on
the device, so a seed gives the same numbers on the CPU and the GPU. ``stack`` and
``cat`` record on the tape, so gradients flow through them.
"""
import numbers

import numpy as np

from . import backend, ops
from .autograd import Tensor, record, to_tensor

__all__ = ["tensor", "as_tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "rand",
           "randn", "normal", "randint", "arange", "linspace", "eye", "stack", "cat",
           "matmul", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "sum", "mean",
           "float32", "float64", "int32", "int64", "float", "double", "long", "bool"]

float32, float64 = np.dtype(np.float32), np.dtype(np.float64)
int32, int64 = np.dtype(np.int32), np.dtype(np.int64)
float, double, long = float32, float64, int64  # noqa: A001 (PyTorch's aliases)
bool = np.dtype(np.bool_)  # noqa: A001


def _make(a, requires_grad=False):
    """Tensor holding the host array ``a`` (moved to the active device)."""
    a = np.asarray(a, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    return Tensor(backend.to_device(a, backend.get_device()), requires_grad=requires_grad)


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor with a copy of ``data`` (nested lists, numbers, an array, a tensor).
    An array or tensor keeps its dtype; Python floats get the default dtype (float32)
    and ints int64, as in PyTorch."""
    if isinstance(data, Tensor):
        data = data.array
    typed = isinstance(data, (np.ndarray, np.generic)) or backend.is_cupy_array(data)
    a = np.array(backend.to_numpy(data) if backend.is_cupy_array(data) else data)
    if dtype is not None:
        a = a.astype(dtype)
    elif typed:
        pass
    elif a.dtype.kind == "f":
        a = a.astype(backend.get_default_dtype())
    elif a.dtype.kind in "iu":
        a = a.astype(np.int64)
    elif a.dtype.kind not in "bc":
        raise TypeError(f"tensor: expected numbers, got {a.dtype} values")
    return _make(a, requires_grad)


def as_tensor(data, dtype=None):
    """``data`` as a tensor, without a copy when it already is one (or an array)."""
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        return Tensor(data if dtype is None else data.astype(dtype))
    return tensor(data, dtype)


def _size(shape, size, where):
    """PyTorch's ways of giving a shape: f(2, 3), f((2, 3)), f([2, 3]), f(size=(2, 3))."""
    if size is not None:
        if shape:
            raise TypeError(f"{where}: give the size once, positionally or as size=")
        shape = (size,)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, numbers.Integral) or isinstance(s, type(True)) or s < 0:
            raise TypeError(f"{where}: a size is non-negative ints, got {tuple(shape)!r}")
    return tuple(int(s) for s in shape)


def _float(dtype):
    return np.dtype(backend.get_default_dtype() if dtype is None else dtype)


def zeros(*shape, size=None, dtype=None, requires_grad=False):
    return _make(np.zeros(_size(shape, size, "zeros"), _float(dtype)), requires_grad)


def ones(*shape, size=None, dtype=None, requires_grad=False):
    return _make(np.ones(_size(shape, size, "ones"), _float(dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    """The dtype follows the fill value when not given: bool, int64 or the default float."""
    if dtype is None:
        dtype = bool if isinstance(fill_value, type(True)) else (
            int64 if isinstance(fill_value, numbers.Integral) else None)
    return _make(np.full(_size((), size, "full"), fill_value, _float(dtype)), requires_grad)


def zeros_like(t, dtype=None):
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype)


def ones_like(t, dtype=None):
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype)


def rand(*shape, size=None, dtype=None, requires_grad=False):
    """Uniform on [0, 1)."""
    u = backend.rng().random(_size(shape, size, "rand"), dtype=_float(dtype))
    return _make(u, requires_grad)


def randn(*shape, size=None, dtype=None, requires_grad=False):
    """Standard normal."""
    z = backend.rng().standard_normal(_size(shape, size, "randn"), dtype=_float(dtype))
    return _make(z, requires_grad)


def normal(mean, std, size, dtype=None, requires_grad=False):
    """``torch.normal(mean, std, size)`` with number mean and std."""
    z = backend.rng().standard_normal(_size((), size, "normal"), dtype=_float(dtype))
    return _make(z * _float(dtype).type(std) + _float(dtype).type(mean), requires_grad)


def randint(low, high=None, size=None, dtype=int64):
    """``randint(high, size)`` or ``randint(low, high, size)``: ints in [low, high)."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    low, high = (0, low) if high is None else (low, high)
    return _make(backend.rng().integers(low, high, _size((), size, "randint")).astype(dtype))


def arange(start, end=None, step=1, dtype=None):
    """PyTorch's rule: int64 when start, end and step are all ints, else float32."""
    start, end = (0, start) if end is None else (start, end)
    ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    dtype = (int64 if ints else backend.get_default_dtype()) if dtype is None else dtype
    return _make(np.arange(start, end, step).astype(dtype))


def linspace(start, end, steps, dtype=None):
    return _make(np.linspace(start, end, steps).astype(_float(dtype)))


def eye(n, m=None, dtype=None):
    return _make(np.eye(n, m, dtype=_float(dtype)))


def _tensors(ts, where):
    ts = list(ts)
    if not ts:
        raise ValueError(f"{where}: expected a non-empty list of tensors")
    first = next((t for t in ts if isinstance(t, Tensor)), None)
    first = first if first is not None else Tensor(ts[0])
    return [to_tensor(t, first) for t in ts]


def stack(tensors, dim=0):
    """Join same-shape tensors along a new axis ``dim``; backward splits the gradient."""
    ts = _tensors(tensors, "stack")
    if len({t.shape for t in ts}) > 1:
        raise ValueError(f"stack: expected tensors of one shape, got "
                         f"{[tuple(t.shape) for t in ts]}")
    xp = backend.get_array_module(ts[0].array)
    y = xp.stack([t.array for t in ts], axis=dim)
    axis = dim % y.ndim
    return record("StackBackward", y, ts,
                  lambda g: tuple(xp.take(g, i, axis=axis) for i in range(len(ts))))


def cat(tensors, dim=0):
    """Join tensors along the existing axis ``dim``; backward cuts the gradient apart
    (``ops.concat`` and ``ops.concat_backward``, which Inception and DenseBlock use)."""
    ts = _tensors(tensors, "cat")
    y = ops.concat([t.array for t in ts], axis=dim, name="cat")
    axis = dim % y.ndim
    sizes = [t.shape[axis] for t in ts]
    return record("CatBackward", y, ts, lambda g: tuple(ops.concat_backward(g, sizes, axis)))


def matmul(a, b):
    """``a @ b`` for two 2-D tensors (what the chapters use)."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    return a @ b


def _method(name):
    def f(t, *args, **kwargs):
        return getattr(t if isinstance(t, Tensor) else Tensor(t), name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"``torch.{name}(t, ...)``: the same as ``t.{name}(...)``."
    return f


abs, exp, log, sqrt = _method("abs"), _method("exp"), _method("log"), _method("sqrt")  # noqa: A001
relu, sigmoid, tanh = _method("relu"), _method("sigmoid"), _method("tanh")
sum, mean = _method("sum"), _method("mean")  # noqa: A001
