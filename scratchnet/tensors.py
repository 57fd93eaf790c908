"""PyTorch's tensor-making functions: ``torch.tensor``, ``zeros``, ``rand``, ``stack`` ...

    import scratchnet as torch
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    K = torch.rand(size=(2, 2))            # or torch.rand(2, 2)

Each returns a :class:`scratchnet.autograd.Tensor` on the active device
(``sn.use_device``), or on the one named by ``device=`` ("cpu", "cuda", a
``torch.device``), so d2l's cells run with ``import scratchnet as torch``. Floats
get the default dtype (float32, as PyTorch's), integers int64, as PyTorch's. Random
values come from scratchnet's host generator (``sn.manual_seed``) and are then put on
the device, so a seed gives the same numbers on the CPU and the GPU. ``stack`` and
``cat`` record on the tape, so gradients flow through them.
"""
import numbers

import numpy as np

from . import backend, ops
from .autograd import Tensor, record, shares, to_tensor
from .device import array_device, placement
from .dtypes import (bool, double, float, float32, float64, int32, int64,  # noqa: A004
                     long)  # torch.float32 ...: PyTorch's dtypes (scratchnet/dtypes.py)

__all__ = ["tensor", "as_tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "rand",
           "randn", "normal", "randint", "arange", "linspace", "eye", "stack", "cat",
           "matmul", "abs", "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "sum", "mean",
           "float32", "float64", "int32", "int64", "float", "double", "long", "bool",
           "dot", "mv", "mm", "norm", "cumsum", "maximum", "minimum", "max", "min",
           "from_numpy"]


def _checked(where, device=None, requires_grad=False, dtype=None):
    """The backend's name ("cpu" or "gpu") of ``device=`` (None: the active device), after
    PyTorch's checks of ``device`` and ``requires_grad``: made before anything is drawn, so
    a refused call leaves the random generator where it was."""
    if requires_grad and dtype is not None and np.dtype(dtype).kind not in "fc":
        raise RuntimeError(f"{where}: Only Tensors of floating point and complex dtype can "
                           f"require gradients (got dtype {np.dtype(dtype)})")
    return backend.get_device() if device is None else placement(device, where)


def _make(a, requires_grad=False, target=None):
    """A new leaf Tensor holding the host array ``a``, copied to ``target`` ("cpu" or
    "gpu"; None: the active device)."""
    a = np.asarray(a, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    t = shares(backend.to_device(a, backend.get_device() if target is None else target))
    t.requires_grad = True if requires_grad else False  # (bool is torch.bool here)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor with a copy of ``data`` (nested lists, numbers, an array, a tensor).
    An array or tensor keeps its dtype; Python floats get the default dtype (float32)
    and ints int64, as in PyTorch. The copy goes to ``device``; by default a tensor's (or
    CuPy array's) own, and the active device for everything else."""
    if device is None and (isinstance(data, Tensor) or backend.is_cupy_array(data)):
        device = array_device(data)
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
    return _make(a, requires_grad, _checked("tensor", device, requires_grad, a.dtype))


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, without a copy when it already is one (or an array) of that
    dtype on that device: a tensor goes through ``data.to(device, dtype)`` (on the tape, as
    PyTorch keeps the graph); a NumPy array goes to the active device, a CuPy array stays
    on the GPU, unless ``device`` says otherwise."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        target = (_checked("as_tensor", device) if device is not None or isinstance(
            data, np.ndarray) else backend.device_of(data))
        a = data if dtype is None else data.astype(dtype, copy=False)
        return shares(backend.to_device(a, target))
    return tensor(data, dtype, device)


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


def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False):
    shape, dtype = _size(shape, size, "zeros"), _float(dtype)
    target = _checked("zeros", device, requires_grad, dtype)
    return _make(np.zeros(shape, dtype), requires_grad, target)


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False):
    shape, dtype = _size(shape, size, "ones"), _float(dtype)
    target = _checked("ones", device, requires_grad, dtype)
    return _make(np.ones(shape, dtype), requires_grad, target)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """The dtype follows the fill value when not given: bool, int64 or the default float."""
    if dtype is None:
        dtype = bool if isinstance(fill_value, type(True)) else (
            int64 if isinstance(fill_value, numbers.Integral) else None)
    shape, dtype = _size((), size, "full"), _float(dtype)
    target = _checked("full", device, requires_grad, dtype)
    return _make(np.full(shape, fill_value, dtype), requires_grad, target)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    """Zeros of ``t``'s shape, in its dtype and on its device unless told otherwise."""
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype,
                 device=array_device(t) if device is None else device,
                 requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    """Ones of ``t``'s shape, in its dtype and on its device unless told otherwise."""
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype,
                device=array_device(t) if device is None else device,
                requires_grad=requires_grad)


def rand(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    shape, dtype = _size(shape, size, "rand"), _float(dtype)
    target = _checked("rand", device, requires_grad, dtype)
    return _make(backend.rng().random(shape, dtype=dtype), requires_grad, target)


def randn(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Standard normal."""
    shape, dtype = _size(shape, size, "randn"), _float(dtype)
    target = _checked("randn", device, requires_grad, dtype)
    return _make(backend.rng().standard_normal(shape, dtype=dtype), requires_grad, target)


def normal(mean, std, size, dtype=None, device=None, requires_grad=False):
    """``torch.normal(mean, std, size)`` with number mean and std."""
    shape, dtype = _size((), size, "normal"), _float(dtype)
    target = _checked("normal", device, requires_grad, dtype)
    z = backend.rng().standard_normal(shape, dtype=dtype)
    return _make(z * dtype.type(std) + dtype.type(mean), requires_grad, target)


def randint(low, high=None, size=None, dtype=int64, device=None, requires_grad=False):
    """``randint(high, size)`` or ``randint(low, high, size)``: ints in [low, high)."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    low, high = (0, low) if high is None else (low, high)
    shape = _size((), size, "randint")
    target = _checked("randint", device, requires_grad, dtype)
    return _make(backend.rng().integers(low, high, shape).astype(dtype), requires_grad, target)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """PyTorch's rule: int64 when start, end and step are all ints, else float32
    (``torch.arange(-8.0, 8.0, 0.1, requires_grad=True)``: 160 float32 values, a leaf)."""
    start, end = (0, start) if end is None else (start, end)
    ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    dtype = (int64 if ints else backend.get_default_dtype()) if dtype is None else dtype
    target = _checked("arange", device, requires_grad, dtype)
    return _make(np.arange(start, end, step).astype(dtype), requires_grad, target)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    dtype = _float(dtype)
    target = _checked("linspace", device, requires_grad, dtype)
    return _make(np.linspace(start, end, steps).astype(dtype), requires_grad, target)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    dtype = _float(dtype)
    target = _checked("eye", device, requires_grad, dtype)
    return _make(np.eye(n, m, dtype=dtype), requires_grad, target)


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
        # A Parameter is its leaf on the tape (Tensor(p) would be a copy cut from it)
        t = t if isinstance(t, Tensor) else t.as_tensor() if hasattr(t, "as_tensor") \
            else Tensor(t)
        return getattr(t, name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"``torch.{name}(t, ...)``: the same as ``t.{name}(...)``."
    return f


abs, exp, log, sqrt = _method("abs"), _method("exp"), _method("log"), _method("sqrt")  # noqa: A001
relu, sigmoid, tanh = _method("relu"), _method("sigmoid"), _method("tanh")
sum, mean = _method("sum"), _method("mean")  # noqa: A001


# Linear algebra, reductions and NumPy interop as d2l's chapters 2-5 use them: each is the
# Tensor method of the same name (scratchnet/autograd/_ops.py), recorded on the tape.
dot, mv, mm, norm = _method("dot"), _method("mv"), _method("mm"), _method("norm")
cumsum, maximum, minimum = _method("cumsum"), _method("maximum"), _method("minimum")
# torch.max(X), torch.max(X, dim) and torch.max(X, other) (element-wise, as maximum).
# They hide Python's max and min in this file below this line: use builtins.max here.
max, min = _method("max"), _method("min")  # noqa: A001

FROM_NUMPY_DTYPES = ("float64", "float32", "float16", "complex64", "complex128", "int64",
                     "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool")


def from_numpy(a):
    """``torch.from_numpy(a)``: a tensor sharing the NumPy array's memory, with its dtype:
    a write into one shows in the other. As PyTorch's, it is a CPU tensor, also under
    ``sn.use_device("gpu")`` (the array stays where it is; nothing is copied): ops refuse
    to mix it with GPU tensors, so make a GPU copy with ``torch.tensor(a)`` instead."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(a).__name__})")
    if a.dtype.name not in FROM_NUMPY_DTYPES:
        raise TypeError(f"from_numpy: can't convert np.ndarray of type numpy."
                        f"{a.dtype.type.__name__}. The only supported types are: "
                        f"{', '.join(FROM_NUMPY_DTYPES[:-1])}, and bool.")
    return shares(a)
