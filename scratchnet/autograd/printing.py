"""How a Tensor prints: PyTorch's repr, character for character.

This follows torch's ``_tensor_str`` rules with its default print options, so a
student's output matches the book's:

- every number of a tensor gets one width; floats show 4 decimals, integer-valued
  floats end in a dot (``19.``), and scientific notation takes over when the nonzero
  finite magnitudes span more than 1000x, exceed 1e8 or fall below 1e-4;
- past 1000 elements only 3 items at each end of every axis are shown, around ``...``;
- suffixes follow the numbers: ``device=``, ``dtype=``, then ``grad_fn=<MulBackward0>``
  (torch numbers its backward nodes; ours are named without the 0, see
  :func:`grad_fn_name`) or ``requires_grad=True``.

The dtype suffix reads ``dtype=torch.float64`` exactly as PyTorch prints it: scratchnet
is imported as ``import scratchnet as torch``, so the text is what a student types.
numpy's ``array2string`` is not used for the layout: it wraps a row when its characters
run out, while torch wraps after a fixed count of numbers of the common width (and
writes a summarised row's gap as the item `` ...``), so rows differ when they wrap.
Complex tensors print with Python's complex ``str``, not torch's real/imaginary layout.
"""
import math

import numpy as np

from .. import backend

PRECISION, THRESHOLD, EDGEITEMS, LINEWIDTH = 4, 1000, 3, 80
PREFIX = "tensor("


def _shown(a):
    """The items a summarised print shows: EDGEITEMS at each end of every long axis."""
    for axis, n in enumerate(a.shape):
        if n > 2 * EDGEITEMS:
            a = a.take(np.r_[:EDGEITEMS, n - EDGEITEMS:n], axis=axis)
    return a


def _float_formatter(a):
    """(format one float, the common width), as torch's _Formatter decides them."""
    nonzero = a[np.isfinite(a) & (a != 0)].astype(np.float64).tolist()
    mags = [abs(v) for v in nonzero]
    int_mode = all(v == math.ceil(v) for v in nonzero)
    sci = bool(mags) and (max(mags) / min(mags) > 1000 or max(mags) > 1e8 or min(mags) < 1e-4)
    spec = f".{PRECISION}e" if sci else ".0f" if int_mode else f".{PRECISION}f"
    dot = "." if int_mode and not sci else ""  # "19." says: a float that holds an integer
    # Zeros, nan and inf do not count towards the width, as in torch.
    width = max([1] + [len(format(v, spec) + dot) for v in nonzero])

    def fmt(v):
        v = float(v)
        return (format(v, spec) + (dot if math.isfinite(v) else "")).rjust(width)
    return fmt, width


def _plain_formatter(a):
    """(format one bool or integer, the common width)."""
    width = max(len(str(v)) for v in a.ravel().tolist())
    return (lambda v: str(v).rjust(width)), width


def _pick(a, summarise):
    """The entries along a's first axis that print, with None where torch writes '...'."""
    if summarise and len(a) > 2 * EDGEITEMS:
        return [*a[:EDGEITEMS], None, *a[-EDGEITEMS:]]
    return list(a)


def _layout(a, fmt, width, indent, summarise):
    """Nested brackets; a row holds as many items of ``width`` as fit the line."""
    if a.ndim == 0:
        return fmt(a[()])
    parts = _pick(a, summarise)
    if a.ndim == 1:
        items = [" ..." if v is None else fmt(v) for v in parts]
        per_line = max(1, (LINEWIDTH - indent) // (width + 2))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = ["..." if r is None else _layout(r, fmt, width, indent + 1, summarise)
            for r in parts]
    # One blank line between 2-D blocks of a 3-D tensor, two between 3-D blocks, ...
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _numbers(a):
    """The bracketed numbers of a host array, laid out to follow PREFIX."""
    if a.size == 0:
        return "[]"
    summarise = a.size > THRESHOLD
    make = _float_formatter if a.dtype.kind == "f" else _plain_formatter
    fmt, width = make(_shown(a) if summarise else a)
    return _layout(a, fmt, width, len(PREFIX), summarise)


def _suffixes(t, a):
    """What torch writes after the numbers, in its order."""
    out = []
    if backend.device_of(t.array) != backend.get_device():  # torch names one off the default
        out.append(f"device='{t.device}'")
    default = backend.get_default_dtype()
    if a.size == 0:  # nothing shows the shape or the dtype, so say them
        if a.ndim != 1:
            out.append(f"size={a.shape}")
        if a.dtype != default:
            out.append(f"dtype=torch.{a.dtype.name}")
    elif a.dtype not in (default, np.int64, np.bool_):
        out.append(f"dtype=torch.{a.dtype.name}")
    if t.grad_fn is not None:
        out.append(f"grad_fn=<{t.grad_fn.torch_name or grad_fn_name(t.grad_fn.name)}>")
    elif t.requires_grad:
        out.append("requires_grad=True")
    return out


def grad_fn_name(name):
    """PyTorch's class name of a backward node: ours are named without torch's number
    ("MulBackward" prints as MulBackward0), except the second or third form of an op,
    which carries its own ("SumBackward1", the sum over a dim)."""
    return name if name[-1].isdigit() else name + "0"


def tensor_repr(t):
    """``repr(t)`` as PyTorch writes it, e.g. ``tensor([1., 2.], requires_grad=True)``."""
    a = backend.to_numpy(t.array)
    s = PREFIX + _numbers(a)
    # torch counts two more characters than the last line holds
    line = len(s.rsplit("\n", 1)[-1]) + 2
    for suffix in _suffixes(t, a):
        if line + len(suffix) + 2 > LINEWIDTH:
            s += ",\n" + " " * len(PREFIX) + suffix
            line = len(PREFIX) + len(suffix)
        else:
            s += ", " + suffix
            line += len(suffix) + 2
    return s + ")"


def tensor_format(t, spec):
    """``format(t, spec)`` as torch: a 0-d tensor formats its Python number
    (``f"{loss:.3f}"``); any other tensor takes only the empty spec, giving ``str(t)``."""
    if t.ndim == 0:
        return format(backend.to_numpy(t.array).item(), spec)
    if spec:
        raise TypeError("unsupported format string passed to Tensor.__format__")
    return tensor_repr(t)
