"""A strict stand-in for CuPy, so that every test run exercises the GPU code path.

No GPU has to be present: device arrays are numpy arrays in a wrapper that
behaves like ``cupy.ndarray`` where scratchnet depends on it, and is stricter
where CuPy would only be slow or would fail on a real card:

- numpy functions and ufuncs called on a device array are refused
  (``np.sum(x)`` must be ``xp.sum(x)`` or ``x.sum()``), and so is implicit
  conversion to numpy (``np.asarray(x)``, as CuPy refuses it);
- a host numpy array mixed with device arrays (in an operator, a ufunc, an
  index or an assignment) is refused, as CuPy refuses it (stricter: CuPy
  accepts a numpy array on the right of an assignment, copying it);
- every host sync is counted: ``float``, ``int``, ``bool``, ``item``,
  ``tolist``, ``get``, ``asnumpy``, printing, boolean-mask indexing and a stream
  or device ``synchronize``;
- every array operation is counted, the proxy for a kernel launch: a ufunc
  call (reductions included), a call of a ``cupy.*`` function, an assignment
  into a device array, or an array method that computes (``astype``, ``copy``,
  ``dot``, ``argmax``, ``take``, ...). Views (``reshape``, ``transpose``,
  basic slicing, ``as_strided``) and metadata (``result_type``) are free.

    with fakecupy.installed():           # scratchnet's backend now sees a "GPU"
        with fakecupy.counting() as c:
            ...                           # c.syncs, c.ops, c.op_names

What it cannot see: asynchrony (every operation runs at once on the host, so
a missing synchronize before a timer goes unnoticed), memory pools and device
memory limits, cuBLAS/cuDNN rounding (results are numpy's, bit for bit), the
cost of a launch or a transfer (speed), and CUDA-C kernels
(``ElementwiseKernel``, ``RawKernel``), which it does not provide: code that
uses one is code only a real GPU can check.
"""
import collections
import contextlib
import numbers
import sys
import types

import numpy as np


class Counts:
    """Host syncs and array operations, with the names of each for a readable failure."""

    def __init__(self):
        self.syncs = 0
        self.ops = 0
        self.sync_names = collections.Counter()
        self.op_names = collections.Counter()

    def __repr__(self):
        return (f"Counts(syncs={self.syncs} {dict(self.sync_names)}, ops={self.ops} "
                f"{dict(self.op_names.most_common(12))})")


_active = []  # the open counting() contexts, innermost last
_fused = [0]  # > 0 inside a fused function: its operations count as one
# Every use of the double (installed, an operation, a sync), counted or not: conftest
# fails a test that used the double without the fakegpu mark.
uses = [0, None]  # the count, and the name of the last use (for the error message)


def _sync(name):
    uses[0] += 1
    uses[1] = name
    for c in _active:
        c.syncs += 1
        c.sync_names[name] += 1


def _op(name):
    uses[0] += 1
    uses[1] = name
    if _fused[0]:
        return
    for c in _active:
        c.ops += 1
        c.op_names[name] += 1


@contextlib.contextmanager
def counting():
    """Count syncs and operations inside the block; yields the Counts."""
    c = Counts()
    _active.append(c)
    try:
        yield c
    finally:
        _active.remove(c)


class HostDeviceMixError(TypeError):
    """A host (numpy) array met a device array."""


def _refuse_host(what):
    raise HostDeviceMixError(f"fakecupy: {what} mixes a host numpy array with device arrays; "
                             "move it with cupy.asarray first (CuPy refuses this too)")


def _unwrap(v, what):
    """The numpy array behind a device array; scalars pass; host arrays are refused."""
    if isinstance(v, ndarray):
        return v._a
    if isinstance(v, np.ndarray):
        _refuse_host(what)
    if isinstance(v, (numbers.Number, np.generic)) or v is None:
        return v
    raise TypeError(f"fakecupy: {what}: unsupported operand type {type(v).__name__}")


def _wrap(r):
    """numpy results as device arrays (a numpy scalar becomes a 0-d array, as in CuPy)."""
    if isinstance(r, tuple):
        return tuple(_wrap(x) for x in r)
    if isinstance(r, list):  # split
        return [_wrap(x) for x in r]
    if isinstance(r, (np.ndarray, np.generic)):
        a = object.__new__(ndarray)
        a._a = r if isinstance(r, np.ndarray) else np.asarray(r)
        return a
    return r


def _unwrap_index(key):
    if not isinstance(key, tuple):
        key = (key,)
    out, gather, mask = [], False, False
    for k in key:
        if isinstance(k, ndarray):
            if k.dtype == np.bool_:
                mask = True
            gather = True
            out.append(k._a)
        elif isinstance(k, np.ndarray):
            _refuse_host("an index")
        elif isinstance(k, (list, tuple)):
            raise TypeError("fakecupy: index with a list: use a device array (cupy.asarray)")
        else:
            out.append(k)
    return tuple(out), gather, mask


class _Data:
    """``a.data``: a device pointer (here the host address) for identifying memory."""

    def __init__(self, ptr):
        self.ptr = ptr


def _ufunc(uf, *args, out=None, **kwargs):
    name = uf.__name__
    raw = [_unwrap(a, f"{name}()") for a in args]
    if out is not None:
        if isinstance(out, tuple):
            out = out[0]
        if not isinstance(out, ndarray):
            raise TypeError(f"fakecupy: {name}(out=...) must be a device array, "
                            f"got {type(out).__name__}")
        kwargs["out"] = out._a
    for k, v in kwargs.items():
        if k != "out":
            kwargs[k] = _unwrap(v, f"{name}({k}=)") if isinstance(v, (ndarray, np.ndarray)) else v
    _op(name)
    r = uf(*raw, **kwargs)
    return out if out is not None else _wrap(r)


def _binary(uf):
    def op(self, other):
        return _ufunc(uf, self, other)

    def rop(self, other):
        return _ufunc(uf, other, self)

    def iop(self, other):
        _ufunc(uf, self, other, out=self)
        return self

    return op, rop, iop


class ndarray:
    """A device array: a numpy array that numpy may not touch directly."""

    __slots__ = ("_a", "__weakref__")
    # numpy ufuncs refuse this type, and numpy scalars and arrays defer to its operators.
    __array_ufunc__ = None

    def __init__(self, shape, dtype=float):
        self._a = np.empty(shape, dtype)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("fakecupy: implicit conversion to a NumPy array is not allowed; "
                        "use .get() or cupy.asnumpy() (CuPy refuses it too)")

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(f"fakecupy: numpy.{func.__name__} called on a device array; use the "
                        f"array module (xp.{func.__name__}) or an array method")

    # Metadata, free.
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    data = property(lambda self: _Data(self._a.__array_interface__["data"][0]))
    device = property(lambda self: cuda.Device(0))

    @property
    def base(self):
        return None if self._a.base is None else _wrap(self._a.base)

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    # Views, free.
    def reshape(self, *shape, order="C"):
        return _wrap(self._a.reshape(*shape, order=order))

    def transpose(self, *axes):
        return _wrap(self._a.transpose(*axes))

    T = property(lambda self: _wrap(self._a.T))

    def swapaxes(self, a, b):
        return _wrap(self._a.swapaxes(a, b))

    def squeeze(self, axis=None):
        return _wrap(self._a.squeeze(axis))

    def view(self, dtype=None):
        return _wrap(self._a.view() if dtype is None else self._a.view(dtype))

    def ravel(self):
        r = self._a.ravel()
        if not np.shares_memory(r, self._a):
            _op("ravel")
        return _wrap(r)

    # Host syncs.
    def get(self, stream=None):
        _sync("get")
        return self._a.copy()

    def item(self):
        _sync("item")
        return self._a.item()

    def tolist(self):
        _sync("tolist")
        return self._a.tolist()

    def __float__(self):
        _sync("float")
        return float(self._a)

    def __int__(self):
        _sync("int")
        return int(self._a)

    def __index__(self):
        if self._a.dtype.kind not in "iu" or self._a.ndim:
            raise TypeError("only integer 0-d arrays can be used as an index")
        _sync("index")
        return int(self._a)

    def __bool__(self):
        _sync("bool")
        return bool(self._a)

    def __repr__(self):
        _sync("repr")
        return repr(self._a)

    def __str__(self):
        _sync("str")
        return str(self._a)

    def __format__(self, spec):
        _sync("format")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    # Methods that compute: one operation each.
    def _method(self, name, *args, **kwargs):
        args = _args(args, f".{name}()")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _unwrap(out, f".{name}(out=)")
        _op(name)
        r = getattr(self._a, name)(*args, **kwargs)
        return out if out is not None else _wrap(r)

    def astype(self, dtype, copy=True, **kwargs):
        if not copy and np.dtype(dtype) == self._a.dtype:
            return self
        return self._method("astype", dtype, **kwargs)

    def copy(self, order="C"):
        return self._method("copy", order=order)

    def fill(self, value):
        _unwrap(value, ".fill()")
        _op("fill")
        self._a.fill(value)

    def dot(self, b, out=None):
        return self._method("dot", b, out=out) if out is not None else self._method("dot", b)

    def nonzero(self):
        _sync("nonzero")
        return self._method("nonzero")

    def __getattr__(self, name):
        if name in _METHODS:
            return lambda *a, **k: self._method(name, *a, **k)
        raise AttributeError(f"fakecupy.ndarray has no attribute {name!r}")

    # Indexing.
    def __getitem__(self, key):
        raw, gather, mask = _unwrap_index(key)
        if mask:
            _sync("boolean index")  # the result's size is known only on the device
        if gather:
            _op("take")
            raw = self._wrap_indices(raw)
        return _wrap(self._a[raw if len(raw) != 1 else raw[0]])

    def _wrap_indices(self, raw):
        # CuPy wraps out-of-bounds integer array indices around instead of raising.
        if any(k is None or k is Ellipsis for k in raw):
            return raw
        return tuple(k % self._a.shape[i] if isinstance(k, np.ndarray) and k.dtype.kind in "iu"
                     else k for i, k in enumerate(raw))

    def __setitem__(self, key, value):
        raw, gather, _ = _unwrap_index(key)
        if gather:
            raw = self._wrap_indices(raw)
        v = _unwrap(value, "an assignment")
        _op("setitem")
        self._a[raw if len(raw) != 1 else raw[0]] = v

    # Operators: ufunc calls.
    __add__, __radd__, __iadd__ = _binary(np.add)
    __sub__, __rsub__, __isub__ = _binary(np.subtract)
    __mul__, __rmul__, __imul__ = _binary(np.multiply)
    __truediv__, __rtruediv__, __itruediv__ = _binary(np.true_divide)
    __floordiv__, __rfloordiv__, __ifloordiv__ = _binary(np.floor_divide)
    __mod__, __rmod__, __imod__ = _binary(np.remainder)
    __pow__, __rpow__, __ipow__ = _binary(np.power)
    __and__, __rand__, __iand__ = _binary(np.bitwise_and)
    __or__, __ror__, __ior__ = _binary(np.bitwise_or)
    __xor__, __rxor__, __ixor__ = _binary(np.bitwise_xor)
    __matmul__, __rmatmul__ = _binary(np.matmul)[:2]
    __lt__ = lambda self, o: _ufunc(np.less, self, o)  # noqa: E731
    __le__ = lambda self, o: _ufunc(np.less_equal, self, o)  # noqa: E731
    __gt__ = lambda self, o: _ufunc(np.greater, self, o)  # noqa: E731
    __ge__ = lambda self, o: _ufunc(np.greater_equal, self, o)  # noqa: E731
    __eq__ = lambda self, o: _ufunc(np.equal, self, o)  # noqa: E731
    __ne__ = lambda self, o: _ufunc(np.not_equal, self, o)  # noqa: E731
    __neg__ = lambda self: _ufunc(np.negative, self)  # noqa: E731
    __pos__ = lambda self: _ufunc(np.positive, self)  # noqa: E731
    __abs__ = lambda self: _ufunc(np.absolute, self)  # noqa: E731
    __invert__ = lambda self: _ufunc(np.invert, self)  # noqa: E731
    __hash__ = None


# Array methods that compute, forwarded to numpy and counted as one operation each.
_METHODS = {"sum", "mean", "max", "min", "argmax", "argmin", "all", "any", "prod", "var",
            "std", "take", "clip", "cumsum", "round", "flatten", "conj", "repeat", "sort",
            "argsort", "trace", "put"}

ndarray.__module__ = "cupy"


def _args(values, what):
    """Unwrap arrays in positional arguments, also inside lists and tuples (concatenate)."""
    out = []
    for v in values:
        if isinstance(v, (list, tuple)) and any(isinstance(x, (ndarray, np.ndarray))
                                                for x in v):
            out.append(type(v)(_unwrap(x, what) for x in v))
        else:
            out.append(_unwrap(v, what) if isinstance(v, (ndarray, np.ndarray)) else v)
    return out


def _function(name, np_func=None, free=False):
    """cupy.<name>: numpy's function on unwrapped device arrays, one operation."""
    np_func = np_func or getattr(np, name)

    def f(*args, **kwargs):
        raw = _args(args, f"cupy.{name}()")
        out = kwargs.get("out")
        for k, v in list(kwargs.items()):
            if isinstance(v, (ndarray, np.ndarray)):
                kwargs[k] = _unwrap(v, f"cupy.{name}({k}=)")
        if not free:
            _op(name)
        r = np_func(*raw, **kwargs)
        return out if out is not None else _wrap(r)

    f.__name__ = name
    return f


# Creation: a host value given to asarray/array is a host-to-device copy (not a sync).
def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return a.astype(dtype)
    if isinstance(a, (list, tuple)) and any(isinstance(x, ndarray) for x in a):
        raise TypeError("fakecupy: asarray of a list holding device arrays: use cupy.stack")
    _op("asarray")
    return _wrap(np.array(a, dtype=dtype, order=order or "K"))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        _op("array")
        return _wrap(np.array(a._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    _op("array")
    return _wrap(np.array(a, dtype=dtype, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        return asarray(np.ascontiguousarray(a, dtype=dtype))
    if a._a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    _op("ascontiguousarray")
    return _wrap(np.ascontiguousarray(a._a, dtype=dtype))


def asnumpy(a, stream=None):
    if isinstance(a, ndarray):
        return a.get()
    return np.asarray(a)


def get_array_module(*args):
    return _this if any(isinstance(a, ndarray) for a in args) else np


def result_type(*args):
    return np.result_type(*(a.dtype if isinstance(a, ndarray) else a for a in args))


def broadcast_to(a, shape):
    return _wrap(np.broadcast_to(_unwrap(a, "broadcast_to"), shape))


def _as_strided(x, shape=None, strides=None):
    return _wrap(np.lib.stride_tricks.as_strided(_unwrap(x, "as_strided"), shape, strides))


lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))
linalg = types.SimpleNamespace(norm=_function("linalg.norm", np.linalg.norm))


def fuse(*args, **kwargs):
    """cupy.fuse: the function's operations count as one kernel."""
    def decorate(f):
        def fused(*a, **k):
            _op(f"fused {f.__name__}")
            _fused[0] += 1
            try:
                return f(*a, **k)
            finally:
                _fused[0] -= 1
        fused.__name__ = f.__name__
        return fused
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


for _name in ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like",
              "full_like", "arange", "linspace", "eye", "dot", "matmul", "concatenate",
              "stack", "pad", "einsum", "where", "sum", "mean", "take", "clip", "tensordot",
              "outer", "cumsum", "unique", "copyto", "flip", "tile", "repeat", "isclose",
              "allclose", "array_equal", "prod", "argmax", "nonzero", "count_nonzero",
              "vstack", "hstack", "split", "expand_dims", "moveaxis", "take_along_axis",
              "put_along_axis"):
    globals()[_name] = _function(_name)
for _name in ("shape", "ndim", "iinfo", "finfo", "dtype", "can_cast", "isscalar"):
    globals()[_name] = getattr(np, _name)
for _name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
              "uint16", "uint32", "uint64", "bool_", "intp", "uint", "int_", "inf", "nan",
              "pi", "e", "newaxis"):
    globals()[_name] = getattr(np, _name)


class _UfuncObject:
    """cupy.<ufunc>: a call is one operation; ``at`` (unbuffered, repeated indices add
    up) is one too."""

    def __init__(self, u):
        self._u = u
        self.__name__ = u.__name__

    def __call__(self, *args, **kwargs):
        return _ufunc(self._u, *args, **kwargs)

    def at(self, a, indices, b=None):
        raw, _, _ = _unwrap_index(indices)
        raw = a._wrap_indices(raw)
        _op(f"{self.__name__}.at")
        args = () if b is None else (_unwrap(b, f"{self.__name__}.at()"),)
        self._u.at(a._a, raw if len(raw) != 1 else raw[0], *args)


def __getattr__(name):
    u = getattr(np, name, None)
    if isinstance(u, np.ufunc):
        f = globals()[name] = _UfuncObject(u)
        return f
    raise AttributeError(f"fakecupy has no {name!r}: add it here if CuPy has it")


class _RandomState:
    def __init__(self, seed=None):
        self._rs = np.random.RandomState(None if seed is None else int(seed) % 2**32)

    def seed(self, seed=None):
        self._rs.seed(None if seed is None else int(seed) % 2**32)

    def random_sample(self, size=None, dtype=float):
        _op("random_sample")
        return _wrap(self._rs.random_sample(size).astype(dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        _op("uniform")
        return _wrap(self._rs.uniform(low, high, size).astype(dtype))

    def standard_normal(self, size=None, dtype=float):
        _op("standard_normal")
        return _wrap(self._rs.standard_normal(size).astype(dtype))


_global_rs = [_RandomState(0)]


def _seed(seed=None):
    _global_rs[0] = _RandomState(seed)


random = types.SimpleNamespace(
    RandomState=_RandomState, seed=_seed,
    get_random_state=lambda: _global_rs[0],
    random_sample=lambda size=None, dtype=float: _global_rs[0].random_sample(size, dtype),
    rand=lambda *size, dtype=float: _global_rs[0].random_sample(size, dtype),
    uniform=lambda low=0.0, high=1.0, size=None, dtype=float:
        _global_rs[0].uniform(low, high, size, dtype),
    standard_normal=lambda size=None, dtype=float: _global_rs[0].standard_normal(size, dtype))


class _Stream:
    def synchronize(self):
        _sync("stream.synchronize")


class _Device:
    def __init__(self, device=0):
        self.id = int(device)

    def synchronize(self):
        _sync("device.synchronize")

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    mem_info = property(lambda self: (64 << 30, 80 << 30))


cuda = types.SimpleNamespace(
    Device=_Device, get_current_stream=lambda: _Stream(), Stream=_Stream,
    runtime=types.SimpleNamespace(
        getDevice=lambda: 0, getDeviceCount=lambda: 1,
        getDeviceProperties=lambda i: {"name": b"fakecupy (numpy on the host)",
                                       "totalGlobalMem": 80 << 30},
        driverGetVersion=lambda: 0, runtimeGetVersion=lambda: 0))

__version__ = "0.0-fake"
_this = sys.modules[__name__]


@contextlib.contextmanager
def installed():
    """scratchnet's backend uses this module as CuPy inside the block."""
    from scratchnet import backend
    uses[0] += 1
    uses[1] = "installed()"
    previous = backend._cupy
    backend._cupy = _this
    try:
        yield _this
    finally:
        backend._cupy = previous
