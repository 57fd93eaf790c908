"""PyTorch's dtypes, ``torch.float32``, ``torch.int64`` ..., over NumPy's.

A tensor's values are a NumPy (or CuPy) array, and its dtype a ``np.dtype``, which prints
as ``float32``; PyTorch's prints as ``torch.float32``. So a scratchnet ``dtype`` holds one
NumPy dtype, as ``.dtype``, and prints as PyTorch's:

    >>> X.dtype, torch.float32, torch.float is torch.float32
    (torch.float32, torch.float32, True)

NumPy and CuPy read the ``.dtype`` of whatever they are given as a dtype (NumPy 2.4 first
asks for ``__numpy_dtype__``, the same dtype), so a torch dtype goes wherever a NumPy
dtype goes: ``np.zeros(3, dtype=torch.float64)``, ``a.astype(t.dtype)``,
``np.dtype(torch.int64)``. It equals, and hashes as, its NumPy dtype
(``torch.float32 == np.float32``, where PyTorch says False), so code written for NumPy's
dtypes keeps working, and it answers NumPy's questions (``.kind``, ``.type``,
``.itemsize``, ``.name``) and PyTorch's (``.is_floating_point``, ``.is_complex``,
``.is_signed``). There is one object per dtype: ``of(np_dtype)`` finds it.
"""
import numpy as np

__all__ = ["dtype", "float16", "float32", "float64", "complex64", "complex128", "int8",
           "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool", "half",
           "float", "double", "cfloat", "cdouble", "short", "int", "long"]


class dtype:
    """``torch.dtype``: one of PyTorch's dtypes, printed as PyTorch prints it, over the
    NumPy dtype ``.dtype`` that the arrays use. Made once per dtype, here; ``of`` finds
    it. The NumPy attributes a caller reads often are copied in; the rest are passed on."""

    __slots__ = ("dtype", "__numpy_dtype__", "kind", "type", "name", "char", "itemsize",
                 "is_floating_point", "is_complex", "is_signed", "_hash")

    def __init__(self, name):
        d = np.dtype(name)
        values = dict(dtype=d, __numpy_dtype__=d, kind=d.kind, type=d.type, name=name,
                      char=d.char, itemsize=d.itemsize, is_floating_point=d.kind == "f",
                      is_complex=d.kind == "c", is_signed=d.kind in "ifc", _hash=hash(d))
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{self} is read-only (there is one of it)")

    def __repr__(self):
        return f"torch.{self.name}"

    __str__ = __repr__  # (and f"{dtype}"; a format spec is refused, as PyTorch refuses it)

    def __eq__(self, other):
        """Equal to itself, to its NumPy dtype, and to whatever NumPy takes as that dtype
        (``np.float32``, ``"float32"``), as ``np.dtype``'s own equality says."""
        if isinstance(other, dtype):
            return self is other
        return self.dtype == other

    def __hash__(self):
        return self._hash

    def __getattr__(self, name):
        """NumPy's attributes the slots lack (``str``, ``byteorder`` ...), from ``.dtype``."""
        if name == "dtype":  # (not set yet: no recursion)
            raise AttributeError(name)
        return getattr(self.dtype, name)

    def __reduce__(self):
        return self.name  # pickle and copy find the one object by its name in this module


# The NumPy dtypes PyTorch has, under the names the two share, then PyTorch's other names
# for them. They hide Python's bool, float and int in this file below this line.
float16, float32, float64 = dtype("float16"), dtype("float32"), dtype("float64")
complex64, complex128 = dtype("complex64"), dtype("complex128")
int8, int16, int32, int64 = dtype("int8"), dtype("int16"), dtype("int32"), dtype("int64")
uint8, uint16, uint32, uint64 = dtype("uint8"), dtype("uint16"), dtype("uint32"), dtype("uint64")
bool = dtype("bool")  # noqa: A001
half, float, double = float16, float32, float64  # noqa: A001
cfloat, cdouble = complex64, complex128
short, int, long = int16, int32, int64  # noqa: A001

_BY_NUMPY = {d.dtype: d for d in (float16, float32, float64, complex64, complex128, int8, int16,
                                  int32, int64, uint8, uint16, uint32, uint64, bool)}


def of(np_dtype):
    """The torch dtype of a NumPy dtype (``of(a.dtype)``); a dtype PyTorch lacks (float128,
    a string, a big-endian float) comes back as the NumPy dtype it is."""
    return _BY_NUMPY.get(np_dtype, np_dtype)


def as_dtype(d):
    """The torch dtype of anything NumPy takes as a dtype: a torch dtype, a NumPy dtype or
    scalar type (``np.float32``), a Python type (``float`` is float64, as NumPy says) or a
    name ("float32")."""
    if isinstance(d, dtype):
        return d
    return of(np.dtype(d))
