"""The Tensor's operators and methods, each a forward line and its backward (micrograd's
habit: the derivative sits beside the op). Broadcasting: a gradient is summed back to
its input's shape (:func:`unbroadcast`)."""
import weakref

import numpy as np

from .. import backend, ops
from .tensor import Tensor, record, to_tensor


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
        b = to_tensor(b, a)
        ad, bd = a.array, b.array  # the values read now (a later a[i] = v makes a new array)
        y = f(ad, bd)

        def backward(gy):
            ga, gb = df(ad, bd, y, gy)
            return (unbroadcast(ga, a.shape) if a.requires_grad else None,
                    unbroadcast(gb, b.shape) if b.requires_grad else None)
        return record(name, y, (a, b), backward)

    def rop(a, b):
        return op(to_tensor(b, a), a)
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


SHORT = 16  # inner lengths up to this are summed in order (see _mm)


def _mm(a, b):
    """a @ b of two 2-D arrays. With a short inner axis (the chapters' 1x1 convolution as
    a matrix product, 7.4.3) the products are added one after another, as the book's loop
    version adds them (and as PyTorch's small products do), so the two agree to the bit
    and the book's ``assert float(torch.abs(Y1 - Y2).sum()) < 1e-6`` holds. BLAS's fused
    multiply-adds round differently: in float32 that check failed for 7% of seeds.
    Otherwise it is BLAS's product, ``a.dot(b)``."""
    if a.shape[1] > SHORT or a.shape[1] == 0:
        return a.dot(b)
    y = a[:, :1] * b[:1, :]
    for k in range(1, a.shape[1]):
        y = y + a[:, k:k + 1] * b[k:k + 1, :]
    return y


def _matmul(a, b):
    b = to_tensor(b, a)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"autograd @: expected two 2-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    ad, bd = a.array, b.array
    y = _mm(ad, bd)
    return record("MmBackward", y, (a, b),
                  lambda g: (g.dot(bd.T) if a.requires_grad else None,
                             ad.T.dot(g) if b.requires_grad else None))


Tensor.__matmul__ = _matmul
Tensor.__rmatmul__ = lambda a, b: _matmul(to_tensor(b, a), a)
Tensor.__neg__ = lambda a: record("NegBackward", -a.array, (a,), lambda g: (-g,))


def _unary(name, f, df):
    """A one-input op: f(x) forward; df(x, y, gy) -> gx."""
    def op(a):
        x = a.array
        y = f(x)
        return record(name, y, (a,), lambda g: (df(x, y, g),))
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


def _sum(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """PyTorch's ``sum(dim, keepdim)``; numpy's ``axis``/``keepdims`` are taken too."""
    axis = dim if axis is None else axis
    axis = tuple(axis) if isinstance(axis, list) else axis
    keepdims = keepdim if keepdims is None else keepdims
    y = a.array.sum(axis=axis, keepdims=keepdims)
    kept = tuple(1 if i in _axes(axis, a.ndim) else s for i, s in enumerate(a.shape))
    xp = _xp(a.array)
    return record("SumBackward", xp.asarray(y), (a,),
                  lambda g: (xp.broadcast_to(g.reshape(kept), a.shape).copy(),))


def _mean(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    axis = dim if axis is None else axis
    axis = tuple(axis) if isinstance(axis, list) else axis
    keepdims = keepdim if keepdims is None else keepdims
    if a.dtype.kind not in "fc":
        raise TypeError(f"mean(): expected a floating-point tensor, got {a.dtype} (cast it "
                        "with .float() first, as in PyTorch)")
    n = 1
    for i in _axes(axis, a.ndim):
        n *= a.shape[i]
    return _sum(a, axis, keepdims) * (1.0 / n)


Tensor.sum, Tensor.mean = _sum, _mean


def _reshape(a, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return record("ViewBackward", a.array.reshape(shape), (a,), lambda g: (g.reshape(a.shape),))


def _permute(a, *dims):
    """The axes in the order ``dims`` (numpy's transpose(axes))."""
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    dims = tuple(d % a.ndim for d in dims) if dims else tuple(range(a.ndim))[::-1]
    inverse = tuple(int(i) for i in np.argsort(dims))
    return record("PermuteBackward", a.array.transpose(dims), (a,),
                  lambda g: (g.transpose(inverse),))


def _transpose(a, dim0, dim1):
    """Swap two axes, as torch.Tensor.transpose (numpy's transpose takes every axis:
    that is permute here)."""
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return _permute(a, dims)


def _getitem(a, key):
    key = tuple(k.array if isinstance(k, Tensor) else k for k in key) \
        if isinstance(key, tuple) else (key.array if isinstance(key, Tensor) else key)

    def backward(g):
        xp = _xp(g)
        gx = xp.zeros(a.shape, dtype=g.dtype)
        if isinstance(key, tuple) and any(hasattr(k, "shape") for k in key) or \
                hasattr(key, "shape"):
            xp.add.at(gx, key, g)  # a repeated index gets every share
        else:
            gx[key] = g
        return (gx,)
    return record("IndexBackward", a.array[key], (a,), backward)


Tensor.reshape, Tensor.transpose, Tensor.permute = _reshape, _transpose, _permute
Tensor.__getitem__ = _getitem
Tensor.T = property(lambda a: _permute(a))
Tensor.view = _reshape


# PyTorch's tensor methods that the d2l chapters use ----------------------------------

def _index(key):
    """A key with Tensors in it as the arrays they hold."""
    if isinstance(key, tuple):
        return tuple(k.array if isinstance(k, Tensor) else k for k in key)
    return key.array if isinstance(key, Tensor) else key


def _setitem(a, key, value):
    """``a[key] = value``. Without gradients it writes into ``a.array`` in place, as numpy
    does. When ``value`` (or ``a``) is on the tape, ``a`` becomes the output of a
    CopySlicesBackward node, as in PyTorch: dL/d(old a) is g with the slice zeroed, and
    dL/dvalue is g[key] (summed back to value's shape). Ops that read ``a`` before the
    write keep the old value: the write makes a new array (see Node.edges)."""
    key = _index(key)
    v = value if isinstance(value, Tensor) else None
    if v is not None:
        to_tensor(v, a)
    vdata = v.array if v is not None else value
    if not backend.is_grad_enabled() or not (
            a.requires_grad or (v is not None and v.requires_grad)):
        a.array[key] = vdata
        return
    if a.grad_fn is None and a.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation (write into .array, or under no_grad())")
    old = Tensor.__new__(Tensor)
    old.__dict__.update(a.__dict__)  # the value before the write, with its grad_fn
    old._retain = False
    data = a.array.copy()
    data[key] = vdata

    def backward(g):
        g_old = g.copy()
        g_old[key] = 0
        # (xp.asarray: numpy gives a scalar, not an array, for one entry)
        gv = unbroadcast(_xp(g).asarray(g[key]), v.shape) \
            if v is not None and v.requires_grad else None
        return g_old, gv
    made = record("CopySlicesBackward", data, (old, v) if v is not None else (old,), backward)
    a.array, a.requires_grad, a.grad_fn = made.array, made.requires_grad, made.grad_fn
    if a.grad_fn is not None:
        a.grad_fn.out = weakref.ref(a)


def _compare(f):
    """An elementwise comparison: a bool tensor, off the tape (it has no gradient)."""
    def op(a, b):
        return Tensor(f(a.array, to_tensor(b, a).array))
    return op


Tensor.__setitem__ = _setitem
Tensor.__eq__ = _compare(lambda a, b: a == b)
Tensor.__ne__ = _compare(lambda a, b: a != b)
Tensor.__lt__ = _compare(lambda a, b: a < b)
Tensor.__le__ = _compare(lambda a, b: a <= b)
Tensor.__gt__ = _compare(lambda a, b: a > b)
Tensor.__ge__ = _compare(lambda a, b: a >= b)
Tensor.__hash__ = object.__hash__  # a tensor stays usable as a dict key, as in PyTorch


def _extreme(name, pick, argpick):
    """t.max() / t.max(dim): PyTorch's two forms. Over every element, the gradient is
    shared evenly among the tied maxima (PyTorch's rule); along ``dim`` it goes to the
    index returned next to the values."""
    def op(a, dim=None, keepdim=False):
        x, xp = a.array, _xp(a.array)
        if dim is None:
            y = pick(x)

            def backward(g):
                mask = (x == y)
                return (g * mask / mask.sum(),)
            return record(name, xp.asarray(y), (a,), backward)
        dim = dim % a.ndim
        idx = argpick(x, axis=dim)
        values = xp.take_along_axis(x, xp.expand_dims(idx, dim), axis=dim)

        def backward_dim(g):
            gx = xp.zeros(a.shape, dtype=g.dtype)
            gk = g if keepdim else xp.expand_dims(g, dim)
            xp.put_along_axis(gx, xp.expand_dims(idx, dim), gk, axis=dim)
            return (gx,)
        vals = record(name, values if keepdim else values.squeeze(dim), (a,), backward_dim)
        return MaxResult(vals, Tensor(idx if not keepdim else xp.expand_dims(idx, dim)))
    return op


class MaxResult(tuple):
    """(values, indices), as torch.return_types.max."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


Tensor.max = _extreme("MaxBackward", lambda x: x.max(), lambda x, axis: x.argmax(axis=axis))
Tensor.min = _extreme("MinBackward", lambda x: x.min(), lambda x, axis: x.argmin(axis=axis))


def _argmax(a, dim=None, keepdim=False, axis=None):
    """The index of the largest entry (flat when no dim), an int64 tensor off the tape.
    ``axis=`` is accepted as d2l's numpy-style code passes it."""
    dim = axis if dim is None else dim
    xp = _xp(a.array)
    if dim is None:
        return Tensor(xp.asarray(a.array.argmax()).astype(xp.int64))
    idx = a.array.argmax(axis=dim).astype(xp.int64)
    return Tensor(xp.expand_dims(idx, dim) if keepdim else idx)


Tensor.argmax = _argmax


def _unsqueeze(a, dim):
    dim = dim if dim >= 0 else dim + a.ndim + 1
    return _reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def _squeeze(a, dim=None):
    if dim is None:
        shape = tuple(s for s in a.shape if s != 1)
    else:
        dim = dim % a.ndim
        shape = a.shape if a.shape[dim] != 1 else a.shape[:dim] + a.shape[dim + 1:]
    return _reshape(a, shape)


def _flatten(a, start_dim=0, end_dim=-1):
    start, end = start_dim % max(a.ndim, 1), end_dim % max(a.ndim, 1)
    n = 1
    for s in a.shape[start:end + 1]:
        n *= s
    return _reshape(a, a.shape[:start] + (n,) + a.shape[end + 1:])


def _t(a):
    """The transpose of a 2-D tensor (torch.Tensor.t)."""
    if a.ndim > 2:
        raise ValueError(f"t(): expected a tensor of at most 2 dimensions, got {a.ndim}-D; "
                         "use transpose(dim0, dim1) or permute")
    return _permute(a)


Tensor.unsqueeze, Tensor.squeeze, Tensor.flatten, Tensor.t = _unsqueeze, _squeeze, _flatten, _t
Tensor.abs = _unary("AbsBackward", lambda x: _xp(x).abs(x), lambda x, y, g: g * _xp(x).sign(x))
Tensor.__abs__ = Tensor.abs
Tensor.sqrt = _unary("SqrtBackward", lambda x: _xp(x).sqrt(x), lambda x, y, g: g / (2 * y))


def _one(a, what):
    if a.array.size != 1:
        raise ValueError(f"{what}: only a one-element tensor converts to a Python number, "
                         f"got shape {tuple(a.shape)}")
    return a.array.reshape(()).item()  # one host read on the GPU


Tensor.item = lambda a: _one(a, "item()")
Tensor.__float__ = lambda a: float(_one(a, "float()"))
Tensor.__int__ = lambda a: int(_one(a, "int()"))


def _as_index(a):
    if a.dtype.kind not in "iu":
        raise TypeError(f"only integer tensors of a single element can be used as an "
                        f"index, got {a.dtype}")
    return int(_one(a, "an index"))


Tensor.__index__ = _as_index
Tensor.__bool__ = lambda a: bool(_one(a, "bool() (an if or while on a tensor)"))
Tensor.tolist = lambda a: backend.to_numpy(a.array).tolist()


def _numpy(a):
    """The values as a numpy array (a copy from the GPU; the same memory on the CPU)."""
    if a.requires_grad:
        raise RuntimeError("numpy(): the tensor requires grad; call .detach().numpy()")
    return backend.to_numpy(a.array)


def _array(a, dtype=None, copy=None):
    if backend.is_cupy_array(a.array):
        raise TypeError("a GPU tensor cannot become a numpy array implicitly; call "
                        ".numpy() (it copies to the host)")
    return a.array if dtype is None else a.array.astype(dtype)


Tensor.numpy, Tensor.__array__ = _numpy, _array


def _iter(a):
    if a.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (a[i] for i in range(a.shape[0]))


Tensor.__iter__ = _iter


def _astype(a, dtype):
    """The values in another dtype (a copy on the tape; the gradient comes back cast)."""
    dtype = np.dtype(dtype)
    if dtype == a.dtype:
        return a
    if dtype.kind not in "fc":
        return Tensor(a.array.astype(dtype))  # integer and bool tensors carry no gradient
    return record("ToCopyBackward", a.array.astype(dtype), (a,),
                  lambda g: (g.astype(a.dtype),))


def _to(a, *args, dtype=None, **kwargs):
    """``t.to(dtype)``; a device ("cpu", "gpu", "cuda") must be the tensor's own: move
    tensors with sn.use_device(...) when making them (scratchnet keeps one active device)."""
    for v in args:
        if isinstance(v, str):
            want = {"cuda": "gpu"}.get(v.split(":")[0], v.split(":")[0])
            if want != a.device:
                raise ValueError(f"Tensor.to({v!r}): this tensor is on {a.device}; make it "
                                 f"under sn.use_device({want!r}) instead")
        else:
            dtype = v
    return a if dtype is None else _astype(a, dtype)


Tensor.type = lambda a, dtype=None: str(a.dtype) if dtype is None else _astype(a, dtype)
Tensor.to, Tensor.astype = _to, _astype
Tensor.float = lambda a: _astype(a, np.float32)
Tensor.double = lambda a: _astype(a, np.float64)
Tensor.long = lambda a: _astype(a, np.int64)
Tensor.size = lambda a, dim=None: a.shape if dim is None else a.shape[dim]
Tensor.dim = lambda a: a.ndim
Tensor.clone = lambda a: record("CloneBackward", a.array.copy(), (a,), lambda g: (g,))


# In-place methods (PyTorch's trailing underscore) ----------------------------------------
# They write into ``t.array`` and return t. That is safe only off the tape: as in PyTorch,
# a leaf that requires grad must be written under no_grad() or through ``.data``.

def _writable(t, name):
    if backend.is_grad_enabled() and t.requires_grad:
        if t.grad_fn is None:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in "
                               "an in-place operation (write under torch.no_grad(), or "
                               "into .data)")
        raise RuntimeError(f"{name}: scratchnet does not record in-place ops on the tape; "
                           f"use the out-of-place form (t = t + x, not t += x inside a "
                           "method call)")
    return t.array


def _fill_(t, value):
    _writable(t, "fill_")[...] = value.array if isinstance(value, Tensor) else value
    return t


def _copy_(t, src):
    a = _writable(t, "copy_")
    src = to_tensor(src, t)
    a[...] = src.array.astype(a.dtype, copy=False)
    return t


def _normal_(t, mean=0.0, std=1.0):
    backend.put(_writable(t, "normal_"), backend.draw_normal(t.shape, t.dtype, mean, std))
    return t


def _uniform_(t, a=0.0, b=1.0):
    backend.put(_writable(t, "uniform_"), backend.draw_uniform(t.shape, t.dtype, a, b))
    return t


def _inplace(name, f, ufunc):
    """``t op= x``: in place off the tape (``param -= lr * param.grad`` under no_grad,
    ``w.data *= mask``), as numpy's ``out=``; on the tape, a new recorded tensor (Python
    rebinds the name)."""
    def op(a, b):
        if backend.is_grad_enabled() and (a.requires_grad or getattr(b, "requires_grad", False)):
            if a.is_leaf and a.requires_grad:
                _writable(a, name)  # PyTorch's error for a leaf that requires grad
            return f(a, b)
        b = to_tensor(b, a).array
        shape = np.broadcast_shapes(a.shape, b.shape)
        if shape != a.shape:
            raise RuntimeError(f"{name}: output with shape {list(a.shape)} doesn't match the "
                               f"broadcast shape {list(shape)}")
        getattr(_xp(a.array), ufunc)(a.array, b, out=a.array, casting="same_kind")
        return a
    op.__name__ = name
    return op


Tensor.zero_ = lambda t: _fill_(t, 0)
Tensor.fill_, Tensor.copy_, Tensor.normal_, Tensor.uniform_ = _fill_, _copy_, _normal_, _uniform_
Tensor.__iadd__ = _inplace("__iadd__", Tensor.__add__, "add")
Tensor.__isub__ = _inplace("__isub__", Tensor.__sub__, "subtract")
Tensor.__imul__ = _inplace("__imul__", Tensor.__mul__, "multiply")
Tensor.__itruediv__ = _inplace("__itruediv__", Tensor.__truediv__, "true_divide")
