"""The Tensor's operators and methods, each a forward line and its backward (micrograd's
habit: the derivative sits beside the op). Broadcasting: a gradient is summed back to
its input's shape (:func:`unbroadcast`)."""
import weakref

import numpy as np

from .. import backend, ops
from ..device import as_device, placement, to_arguments
from .tensor import KIND_RANK, Tensor, record, shares, to_tensor


def result_type(a, b):
    """The dtype of an op on Tensors a and b, by PyTorch's type promotion (numpy's differs:
    float32 with int64 gives float64 there, float32 here). Of two kinds (bool < integer <
    float < complex) the higher one's dtype wins, ``x + y`` of float32 and int64 is float32;
    within a kind the wider, as numpy's promote_types. A 0-d tensor counts only when its
    kind is higher than a tensor with dimensions (numbers were made 0-d tensors of the
    right dtype by ``to_tensor``)."""
    da, db = a.dtype, b.dtype
    if da == db:
        return da
    ra, rb = KIND_RANK[da.kind], KIND_RANK[db.kind]
    if (a.ndim == 0) != (b.ndim == 0):
        dims, zero = (b, a) if a.ndim == 0 else (a, b)
        return zero.dtype if KIND_RANK[zero.dtype.kind] > KIND_RANK[dims.dtype.kind] \
            else dims.dtype
    if ra != rb:
        return da if ra > rb else db
    return np.promote_types(da, db)


def _cast(g, dtype):
    """A gradient in its input's dtype, as PyTorch's are."""
    return g.astype(dtype, copy=False)


def unbroadcast(g, shape):
    """Sum g over the axes broadcasting added or stretched, down to ``shape``."""
    if tuple(g.shape) == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, s in enumerate(shape)
                                       if s == 1 and g.shape[extra + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _binary(name, f, df, rname=None, number_name=None, true_divide=False):
    """A two-input op: f(a, b) forward; df(a, b, y, gy) -> (ga, gb) before unbroadcast.
    Both inputs are cast to :func:`result_type` first (for a division of integers, to the
    default float dtype, as PyTorch's ``/``). ``rname`` names the node of the reflected form
    (``1 - x`` is PyTorch's RsubBackward1), ``number_name`` the node when b is a number
    (``x ** 2`` is PowBackward0, ``x ** y`` PowBackward1)."""
    def forward(a, b, name):
        dtype = result_type(a, b)
        if true_divide and dtype.kind in "biu":
            dtype = np.dtype(backend.get_default_dtype())
        # the values read now (a later a[i] = v makes a new array)
        ad, bd = a.array.astype(dtype, copy=False), b.array.astype(dtype, copy=False)
        y = f(ad, bd)

        def backward(gy):
            ga, gb = df(ad, bd, y, gy)
            return (_cast(unbroadcast(ga, a.shape), a.dtype) if a.requires_grad else None,
                    _cast(unbroadcast(gb, b.shape), b.dtype) if b.requires_grad else None)
        return record(name, y, (a, b), backward)

    def op(a, b):
        number = isinstance(b, (bool, int, float, complex, np.generic))
        return forward(a, to_tensor(b, a), number_name if number and number_name else name)

    def rop(a, b):
        return forward(to_tensor(b, a), a, rname or name)
    return op, rop


Tensor.__add__, Tensor.__radd__ = _binary("AddBackward", lambda a, b: a + b,
                                          lambda a, b, y, g: (g, g))
Tensor.__sub__, Tensor.__rsub__ = _binary("SubBackward", lambda a, b: a - b,
                                          lambda a, b, y, g: (g, -g), "RsubBackward1")
Tensor.__mul__, Tensor.__rmul__ = _binary("MulBackward", lambda a, b: a * b,
                                          lambda a, b, y, g: (g * b, g * a))
# PyTorch computes ``2 / x`` as 2 * x.reciprocal(): its last node is a MulBackward0.
Tensor.__truediv__, Tensor.__rtruediv__ = _binary(
    "DivBackward", lambda a, b: a / b, lambda a, b, y, g: (g / b, -g * y / b), "MulBackward",
    true_divide=True)


def _pow_backward(a, b, y, g):
    xp = backend.get_array_module(a)
    # d(a^b)/db = a^b log a, as PyTorch: 0 where a == 0 and b >= 0, nan for a < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        gb = xp.where((a == 0) & (b >= 0), 0, g * y * xp.log(a))
    return g * b * a ** (b - 1), gb


Tensor.__pow__, Tensor.__rpow__ = _binary("PowBackward1", lambda a, b: a ** b, _pow_backward,
                                          "PowBackward2", "PowBackward")


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


# PyTorch's names of dtypes in its error messages ("found Float and Double")
TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
               "bool": "Bool", "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def _torch_name(dtype):
    return TORCH_NAMES.get(dtype.name, dtype.name)


def dot(a, b):
    """``torch.dot(a, b)``: the inner product of two 1-D tensors of one length and dtype,
    a 0-d tensor. Backward: d(a . b)/da = b, d(a . b)/db = a, each times the 0-d gradient."""
    b = to_tensor(b, a)
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape != b.shape:
        raise RuntimeError(f"dot: inconsistent tensor size, expected tensor [{a.shape[0]}] and "
                           f"src [{b.shape[0]}] to have the same number of elements, but got "
                           f"{a.shape[0]} and {b.shape[0]} elements respectively")
    if a.dtype != b.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_torch_name(a.dtype)} and {_torch_name(b.dtype)}")
    ad, bd = a.array, b.array
    y = _mm(ad[None, :], bd[:, None]).reshape(())
    return record("DotBackward", y, (a, b),
                  lambda g: (g * bd if a.requires_grad else None,
                             g * ad if b.requires_grad else None))


def mv(A, x):
    """``torch.mv(A, x)``: the matrix-vector product of A (m, n) and x (n,), shape (m,).
    Backward: dL/dA = outer(g, x), dL/dx = A^T g."""
    x = to_tensor(x, A)
    if A.ndim != 2 or x.ndim != 1:
        raise RuntimeError(f"mv: vector + matrix @ vector expected, got 1, {A.ndim}, {x.ndim}")
    if A.shape[1] != x.shape[0]:
        raise RuntimeError(f"mv: size mismatch, got input ({A.shape[0]}), mat "
                           f"({A.shape[0]}x{A.shape[1]}), vec ({x.shape[0]})")
    if A.dtype != x.dtype:
        raise RuntimeError(f"mv: expected the matrix and the vector to have the same dtype, "
                           f"but got {_torch_name(A.dtype)} and {_torch_name(x.dtype)}")
    Ad, xd = A.array, x.array
    y = _mm(Ad, xd[:, None])[:, 0]
    return record("MvBackward", y, (A, x),
                  lambda g: (g[:, None] * xd[None, :] if A.requires_grad else None,
                             Ad.T.dot(g) if x.requires_grad else None))


def mm(a, b):
    """``torch.mm(a, b)``: the product of two matrices (n, k) and (k, m), shape (n, m).
    Backward: dL/da = g b^T, dL/db = a^T g."""
    b = to_tensor(b, a)
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: {'self' if a.ndim != 2 else 'mat2'} must be a matrix, got "
                           f"{a.ndim if a.ndim != 2 else b.ndim}-D")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mm: mat1 and mat2 shapes cannot be multiplied "
                           f"({a.shape[0]}x{a.shape[1]} and {b.shape[0]}x{b.shape[1]})")
    if a.dtype != b.dtype:
        c_name = {"float32": "float", "float64": "double", "int64": "long int"}
        raise RuntimeError(f"mm: expected m1 and m2 to have the same dtype, but got: "
                           f"{c_name.get(a.dtype.name, a.dtype.name)} != "
                           f"{c_name.get(b.dtype.name, b.dtype.name)}")
    ad, bd = a.array, b.array
    return record("MmBackward", _mm(ad, bd), (a, b),
                  lambda g: (g.dot(bd.T) if a.requires_grad else None,
                             ad.T.dot(g) if b.requires_grad else None))


def matmul(a, b):
    """``a @ b`` (``torch.matmul``) by the tensors' dimensions, as PyTorch: 1-D with 1-D is
    :func:`dot`, 2-D with 1-D :func:`mv`, 1-D with 2-D a row vector times the matrix, 2-D
    with 2-D :func:`mm`. Batched (3-D and up) products are not part of scratchnet."""
    b = to_tensor(b, a)
    if a.ndim == 1 and b.ndim == 1:
        return dot(a, b)
    if a.ndim == 2 and b.ndim == 1:
        return mv(a, b)
    if a.ndim == 1 and b.ndim == 2:  # PyTorch's last node here is a SqueezeBackward4
        row = mm(_unsqueeze(a, 0), b)
        return _reshape(row, row.shape[1:], name="SqueezeBackward4")
    if a.ndim == 2 and b.ndim == 2:
        return mm(a, b)
    raise RuntimeError(f"matmul: scratchnet multiplies 1-D and 2-D tensors, got shapes "
                       f"{list(a.shape)} and {list(b.shape)} (batched products are not part "
                       "of it)")


Tensor.__matmul__ = Tensor.matmul = matmul
Tensor.__rmatmul__ = lambda a, b: matmul(to_tensor(b, a), a)
Tensor.dot, Tensor.mv, Tensor.mm = dot, mv, mm
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


def _exp(x):
    """e**x, correctly rounded for float32: computed in float64, then rounded once.
    The readable version is ``np.exp(x)``; NumPy's float32 exp is off by 1-2 ulp for
    about 8% of float32 inputs (printing e**12 as 162754.7812, not PyTorch's 162754.7969).
    PyTorch's CPU build computes it with MKL, itself 1 ulp from this in about 1% of
    inputs (docs/porting.md)."""
    xp = _xp(x)
    if x.dtype == xp.float32:
        return xp.exp(x.astype(xp.float64)).astype(xp.float32)
    return xp.exp(x)


Tensor.exp = _unary("ExpBackward", _exp, lambda x, y, g: g * y)
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
    # PyTorch's sum over every element is SumBackward0, over given dims SumBackward1
    return record("SumBackward" if axis is None else "SumBackward1", xp.asarray(y), (a,),
                  lambda g: (xp.broadcast_to(g.reshape(kept), a.shape).copy(),))


def _mean(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The sum divided by the count, as PyTorch's CPU mean computes it; the gradient is
    g / n at every element that was averaged."""
    axis = dim if axis is None else axis
    axis = tuple(axis) if isinstance(axis, list) else axis
    keepdims = keepdim if keepdims is None else keepdims
    if a.dtype.kind not in "fc":
        raise TypeError(f"mean(): expected a floating-point tensor, got {a.dtype} (cast it "
                        "with .float() first, as in PyTorch)")
    n = 1
    for i in _axes(axis, a.ndim):
        n *= a.shape[i]
    xp = _xp(a.array)
    y = xp.asarray(a.array.sum(axis=axis, keepdims=keepdims) / a.dtype.type(n))
    kept = tuple(1 if i in _axes(axis, a.ndim) else s for i, s in enumerate(a.shape))
    return record("MeanBackward" if axis is None else "MeanBackward1", y, (a,),
                  lambda g: (xp.broadcast_to(g.reshape(kept) / g.dtype.type(n), a.shape).copy(),))


Tensor.sum, Tensor.mean = _sum, _mean


def _reshape(a, *shape, name="ViewBackward"):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return record(name, a.array.reshape(shape), (a,), lambda g: (g.reshape(a.shape),))


def _permute(a, *dims, name="PermuteBackward"):
    """The axes in the order ``dims`` (numpy's transpose(axes))."""
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    dims = tuple(d % a.ndim for d in dims) if dims else tuple(range(a.ndim))[::-1]
    inverse = tuple(int(i) for i in np.argsort(dims))
    return record(name, a.array.transpose(dims), (a,), lambda g: (g.transpose(inverse),))


def _transpose(a, dim0, dim1):
    """Swap two axes, as torch.Tensor.transpose (numpy's transpose takes every axis:
    that is permute here)."""
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return _permute(a, dims, name="TransposeBackward")


def _index_node_name(key, shape):
    """PyTorch's node for ``t[key]``: IndexBackward for advanced indexing (a list, an index
    tensor, a mask); otherwise the last view op applied, walking the key left to right:
    SelectBackward for an integer, SliceBackward for a slice, UnsqueezeBackward for None.
    In a tuple a slice that keeps its whole dimension is skipped (``A[1, :]`` is a
    select), and a key that changed nothing is an AliasBackward; a lone slice always
    slices (``x[:]`` is SliceBackward)."""
    items = key if isinstance(key, tuple) else (key,)
    if any(isinstance(k, list) or (hasattr(k, "shape") and (k.ndim > 0 or k.dtype.kind == "b"))
           for k in items):
        return "IndexBackward"
    if isinstance(key, slice):
        return "SliceBackward"
    # each item's dimension of ``shape``: items after an Ellipsis count from the end
    n_dims = sum(1 for k in items if k is not None and k is not Ellipsis)
    name, dim = "AliasBackward", 0
    for k in items:
        if k is Ellipsis:
            dim = len(shape) - (n_dims - dim)
        elif k is None:
            name = "UnsqueezeBackward"
        elif isinstance(k, slice):
            if k.indices(shape[dim]) != (0, shape[dim], 1):
                name = "SliceBackward"
            dim += 1
        else:
            name, dim = "SelectBackward", dim + 1
    return name


def _key_item(k, xp):
    """One item of an index: a Tensor's array; a list as an array of the tensor's device
    (CuPy takes no lists)."""
    return k.array if isinstance(k, Tensor) else xp.asarray(k) if isinstance(k, list) else k


def _getitem(a, key):
    xp = _xp(a.array)
    key = tuple(_key_item(k, xp) for k in key) if isinstance(key, tuple) else _key_item(key, xp)

    name = _index_node_name(key, a.shape)

    def backward(g):
        xp = _xp(g)
        gx = xp.zeros(a.shape, dtype=g.dtype)
        if name == "IndexBackward":
            xp.add.at(gx, key, g)  # a repeated index gets every share
        else:
            gx[key] = g
        return (gx,)
    return record(name, a.array[key], (a,), backward)


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
    """An elementwise comparison in the two tensors' :func:`result_type`: a bool tensor,
    off the tape (it has no gradient). Against None it is Python's (``t == None`` is
    False, as in PyTorch)."""
    def op(a, b):
        if b is None:
            return NotImplemented
        b = to_tensor(b, a)
        dtype = result_type(a, b)
        return shares(f(a.array.astype(dtype, copy=False), b.array.astype(dtype, copy=False)))
    return op


Tensor.__setitem__ = _setitem
Tensor.__eq__ = _compare(lambda a, b: a == b)
Tensor.__ne__ = _compare(lambda a, b: a != b)
Tensor.__lt__ = _compare(lambda a, b: a < b)
Tensor.__le__ = _compare(lambda a, b: a <= b)
Tensor.__gt__ = _compare(lambda a, b: a > b)
Tensor.__ge__ = _compare(lambda a, b: a >= b)
Tensor.__hash__ = object.__hash__  # a tensor stays usable as a dict key, as in PyTorch


def _broadcast_shape(a, b, who):
    """The shape of an element-wise op on a and b, or PyTorch's error naming ``who``."""
    n = max(a.ndim, b.ndim)
    sa, sb = (1,) * (n - a.ndim) + tuple(a.shape), (1,) * (n - b.ndim) + tuple(b.shape)
    for i, (p, q) in enumerate(zip(sa, sb)):
        if p != q and p != 1 and q != 1:
            raise RuntimeError(f"{who}: The size of tensor a ({p}) must match the size of "
                               f"tensor b ({q}) at non-singleton dimension {i}")
    return tuple(max(p, q) for p, q in zip(sa, sb))


def _pairwise(name, pick, wins):
    """``torch.maximum(a, b)`` / ``torch.minimum``: the element-wise larger (smaller) of
    two tensors. Backward, PyTorch's rule: the gradient goes to the input that won, and
    where the two are equal each gets half of it."""
    def op(a, b):
        b = to_tensor(b, a)
        _broadcast_shape(a, b, name)
        dtype = result_type(a, b)
        ad, bd = a.array.astype(dtype, copy=False), b.array.astype(dtype, copy=False)

        def backward(g):
            xp = _xp(g)
            share = xp.where(ad == bd, g / 2, g)
            ga = xp.where(wins(ad, bd) | (ad == bd), share, 0)
            gb = xp.where(wins(bd, ad) | (ad == bd), share, 0)
            return (_cast(unbroadcast(ga, a.shape), a.dtype) if a.requires_grad else None,
                    _cast(unbroadcast(gb, b.shape), b.dtype) if b.requires_grad else None)
        return record(f"{name.capitalize()}Backward", pick(ad, bd), (a, b), backward)
    op.__name__ = name
    return op


maximum = _pairwise("maximum", lambda a, b: _xp(a).maximum(a, b), lambda a, b: a > b)
minimum = _pairwise("minimum", lambda a, b: _xp(a).minimum(a, b), lambda a, b: a < b)
Tensor.maximum, Tensor.minimum = maximum, minimum


def _extreme(name, pick, argpick, pairwise):
    """t.max() / t.max(dim) / t.max(other): PyTorch's three forms. Over every element
    (MaxBackward1), the gradient is shared evenly among the tied maxima (PyTorch's rule);
    along ``dim`` (MaxBackward0) it goes to the index returned next to the values; with
    a tensor ``other`` it is ``pairwise`` (torch.maximum)."""
    def op(a, dim=None, keepdim=False):
        if isinstance(dim, Tensor) or hasattr(dim, "as_tensor"):
            return pairwise(a, dim)
        x, xp = a.array, _xp(a.array)
        if dim is None:
            y = pick(x)

            def backward(g):
                mask = (x == y)
                return (_cast(g * mask / mask.sum(), g.dtype),)
            return record(name + "1", xp.asarray(y), (a,), backward)
        dim = dim % a.ndim
        idx = argpick(x, axis=dim)
        values = xp.take_along_axis(x, xp.expand_dims(idx, dim), axis=dim)

        def backward_dim(g):
            gx = xp.zeros(a.shape, dtype=g.dtype)
            gk = g if keepdim else xp.expand_dims(g, dim)
            xp.put_along_axis(gx, xp.expand_dims(idx, dim), gk, axis=dim)
            return (gx,)
        vals = record(name, values if keepdim else values.squeeze(dim), (a,), backward_dim)
        return MaxResult(vals, shares(idx if not keepdim else xp.expand_dims(idx, dim)),
                         name[:3].lower())
    return op


class MaxResult(tuple):
    """(values, indices), as torch.return_types.max (or min), and printed as it."""

    def __new__(cls, values, indices, op="max"):
        result = super().__new__(cls, (values, indices))
        result.op = op
        return result

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])

    def __repr__(self):
        return f"torch.return_types.{self.op}(\nvalues={self[0]!r},\nindices={self[1]!r})"


Tensor.max = _extreme("MaxBackward", lambda x: x.max(), lambda x, axis: x.argmax(axis=axis),
                      maximum)
Tensor.min = _extreme("MinBackward", lambda x: x.min(), lambda x, axis: x.argmin(axis=axis),
                      minimum)


def _argmax(a, dim=None, keepdim=False, axis=None):
    """The index of the largest entry (flat when no dim), an int64 tensor off the tape.
    ``axis=`` is accepted as d2l's numpy-style code passes it."""
    dim = axis if dim is None else dim
    xp = _xp(a.array)
    if dim is None:
        return shares(xp.asarray(a.array.argmax()).astype(xp.int64))
    idx = a.array.argmax(axis=dim).astype(xp.int64)
    return shares(xp.expand_dims(idx, dim) if keepdim else idx)


Tensor.argmax = _argmax


def _unsqueeze(a, dim):
    dim = dim if dim >= 0 else dim + a.ndim + 1
    return _reshape(a, a.shape[:dim] + (1,) + a.shape[dim:], name="UnsqueezeBackward")


def _squeeze(a, dim=None):
    """Drop the size-1 axes (or axis ``dim`` if it has size 1): PyTorch's SqueezeBackward0,
    or SqueezeBackward1 with a dim."""
    if dim is None:
        shape = tuple(s for s in a.shape if s != 1)
    else:
        dim = dim % a.ndim
        shape = a.shape if a.shape[dim] != 1 else a.shape[:dim] + a.shape[dim + 1:]
    return _reshape(a, shape, name="SqueezeBackward" if dim is None else "SqueezeBackward1")


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
    return _permute(a, name="TBackward")


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
        return shares(a.array.astype(dtype))  # integer and bool tensors carry no gradient
    return record("ToCopyBackward", a.array.astype(dtype), (a,),
                  lambda g: (g.astype(a.dtype),))


def _to(a, *args, device=None, dtype=None, non_blocking=False, copy=False):
    """PyTorch's ``t.to(device)``, ``t.to(dtype)``, ``t.to(device, dtype)`` and
    ``t.to(other)`` (other's device and dtype). As in PyTorch, t itself comes back when it
    is already there in that dtype (unless ``copy=True``); otherwise a copy, on the tape
    (ToCopyBackward0): its backward sends the gradient back to t's device and dtype.
    Underneath, a move is ``cupy.asarray`` (to the GPU) or ``.get()`` (to the host), on
    whichever device is active; ``non_blocking`` changes nothing (every copy here waits)."""
    target, dtype = to_arguments("Tensor.to", args, device, dtype)
    src = backend.device_of(a.array)
    dst = src if target is None else placement(target, "Tensor.to")
    dtype = a.dtype if dtype is None else dtype
    if dst == src and dtype == a.dtype and not copy:
        return a
    y = backend.to_device(a.array, dst).astype(dtype, copy=dst == src)
    if dtype.kind not in "fc":
        return shares(y)  # integer and bool tensors carry no gradient
    return record("ToCopyBackward", y, (a,),
                  lambda g: (backend.to_device(g, src).astype(a.dtype, copy=False),))


def _cuda(a, device=None, non_blocking=False):
    """PyTorch's ``t.cuda()``: t on the GPU (``device``: an index, "cuda:0" or a device;
    scratchnet has one GPU, cuda:0). t itself when it is there already."""
    target = as_device("cuda" if device is None else device, "Tensor.cuda")
    if target.type != "cuda":
        raise RuntimeError(f"Invalid device, must be cuda device (Tensor.cuda got {target})")
    placement(target, "Tensor.cuda")  # (so that an error names Tensor.cuda)
    return _to(a, target)


def _cpu(a):
    """PyTorch's ``t.cpu()``: t in host memory (a NumPy array); t itself when it is there."""
    return _to(a, "cpu")


def _type(a, dtype=None):
    """PyTorch's ``t.type()``: the name of its tensor type ("torch.FloatTensor", on the GPU
    "torch.cuda.FloatTensor"); ``t.type(dtype)``: the values in ``dtype``, as ``t.to``."""
    if dtype is not None:
        return _astype(a, dtype)
    where = ".cuda" if backend.is_cupy_array(a.array) else ""
    return f"torch{where}.{_torch_name(a.dtype)}Tensor"


Tensor.type = _type
Tensor.to, Tensor.astype = _to, _astype
Tensor.cuda, Tensor.cpu = _cuda, _cpu
Tensor.float = lambda a: _astype(a, np.float32)
Tensor.double = lambda a: _astype(a, np.float64)
Tensor.long = lambda a: _astype(a, np.int64)
Tensor.size = lambda a, dim=None: a.shape if dim is None else a.shape[dim]
Tensor.dim = lambda a: a.ndim
Tensor.clone = lambda a: record("CloneBackward", a.array.copy(), (a,), lambda g: (g,))
Tensor.ndimension = lambda a: a.ndim


def _logical(reduce):
    """``t.all()`` / ``t.any()`` (over ``dim``): a bool tensor, off the tape."""
    def op(a, dim=None, keepdim=False):
        return shares(_xp(a.array).asarray(getattr(a.array, reduce)(axis=dim, keepdims=keepdim)))
    op.__name__ = reduce
    return op


Tensor.all, Tensor.any = _logical("all"), _logical("any")


def _dim(dim, ndim, who):
    """``dim`` as a non-negative axis, or PyTorch's IndexError (a 0-d tensor has dim 0)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{who}: Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def _cumsum(a, dim=None, *, dtype=None, axis=None):
    """The running sums along ``dim`` (``axis=`` as numpy names it, which PyTorch takes
    too); integer and bool tensors sum to int64, as PyTorch's. Backward: the gradient of
    y_i = x_0 + ... + x_i at x_j is the sum of g_i for i >= j, a running sum from the end."""
    dim = axis if dim is None else dim
    if dim is None:
        raise TypeError('cumsum() missing 1 required positional arguments: "dim"')
    dim = _dim(dim, a.ndim, "cumsum")
    if dtype is None and a.dtype.kind in "biu":
        dtype = np.int64
    x, xp = a.array, _xp(a.array)
    if a.ndim == 0:
        return record("CumsumBackward", x.astype(dtype or x.dtype), (a,), lambda g: (g,))
    y = xp.cumsum(x, axis=dim, dtype=dtype)
    return record("CumsumBackward", y, (a,),
                  lambda g: (_cast(xp.flip(xp.cumsum(xp.flip(g, dim), axis=dim), dim), a.dtype),))


def _norm(a, p="fro", dim=None, keepdim=False, dtype=None):
    """``t.norm()``: the 2-norm of all the entries, sqrt(sum x^2), which is the Frobenius
    norm of a matrix (p="fro" or 2); p=1 gives sum |x|. ``dim`` takes the norm along
    those axes only. Backward: g * x / norm for the 2-norm (0 where the norm is 0, as in
    PyTorch), g * sign(x) for p=1. PyTorch's node is LinalgVectorNormBackward0."""
    if p not in ("fro", 1, 2):
        raise ValueError(f"norm: scratchnet computes p='fro', 2 and 1, got p={p!r}")
    if a.dtype.kind not in "fc":
        raise RuntimeError(f"norm: linalg.vector_norm: Expected a floating point or complex "
                           f"tensor as input. Got {_torch_name(a.dtype)}")
    x = a.array if dtype is None else a.array.astype(dtype)
    xp = _xp(x)
    axis = None if dim is None else tuple(_dim(d, a.ndim, "norm") for d in (
        dim if isinstance(dim, (tuple, list)) else (dim,)))
    kept = tuple(1 if axis is None or i in axis else s for i, s in enumerate(a.shape))
    if p == 1:
        y = xp.abs(x).sum(axis=axis, keepdims=keepdim)
        return record("LinalgVectorNormBackward", xp.asarray(y), (a,),
                      lambda g: (_cast(g.reshape(kept) * xp.sign(x), a.dtype),))
    y = xp.asarray(xp.sqrt((x * x).sum(axis=axis, keepdims=keepdim)))

    def backward(g):
        n = y.reshape(kept)
        safe = xp.where(n == 0, 1, n)
        return (_cast(xp.where(n == 0, 0, g.reshape(kept) * x / safe), a.dtype),)
    return record("LinalgVectorNormBackward", y, (a,), backward)


Tensor.cumsum, Tensor.norm = _cumsum, _norm


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
