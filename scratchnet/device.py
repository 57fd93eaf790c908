"""``torch.device``: where a tensor's values live, under PyTorch's names.

    import scratchnet as torch
    torch.device('cpu'), torch.device('cuda'), torch.device('cuda:1'), torch.device('cuda', 1)
    torch.cuda.device_count()            # 1 when scratchnet's GPU is there, else 0

scratchnet keeps arrays in two places: host memory (NumPy arrays), which PyTorch calls
``cpu``, and one GPU (CuPy arrays), ``cuda:0``. A :class:`device` is only a name: making
``device('cuda:1')`` works anywhere, as in PyTorch; putting values there
(:func:`placement`) is what fails, with PyTorch's errors, when there is no GPU or no
such GPU. ``backend`` speaks of "cpu" and "gpu"; this file translates.
"""
import numbers
import re

import numpy as np

from . import backend

TYPES = ("cpu", "cuda")
# PyTorch's device string: a type, then optionally ":" and an index without leading zeros.
_STRING = re.compile(r"([A-Za-z_]+)(?::(0|[1-9][0-9]*))?")
NO_ACCELERATOR = "Cannot access accelerator device when none is available."


class AcceleratorError(RuntimeError):
    """PyTorch's ``torch.AcceleratorError``: a CUDA call failed. Here: a GPU index past the
    one GPU scratchnet computes on."""


class device:
    """``device(type, index=None)``: PyTorch's forms are ``device('cuda:1')``,
    ``device('cuda', 1)``, ``device(type='cuda', index=1)``, ``device(other_device)`` and
    ``device(1)`` (GPU 1; refused without a GPU, as PyTorch refuses it without an
    accelerator). ``type`` is "cpu" or "cuda"; ``index`` is None unless given. Two devices
    are equal when type and index are (``device('cuda') != device('cuda:0')``, as in
    PyTorch); a device never equals a string."""

    __slots__ = ("_type", "_index")

    def __init__(self, type, index=None):  # noqa: A002 (PyTorch's keyword names)
        spec = type
        if isinstance(spec, device):
            if index is not None:
                raise TypeError("device(): argument 'type' (position 1) must be str, not "
                                "torch.device")
            kind, index = spec.type, spec.index
        elif isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
            if index is not None:
                raise TypeError("device(): argument 'type' (position 1) must be str, not int")
            if not backend.gpu_available():
                raise _no_accelerator()
            kind, index = "cuda", int(spec)
        elif isinstance(spec, str):
            kind, index = _parse(spec, index)
        else:
            raise TypeError(f"device(): expected a device type ('cpu', 'cuda', 'cuda:1'), a "
                            f"torch.device or a GPU index, got {spec.__class__.__name__}")
        if index is not None and index < 0:
            raise RuntimeError("Device index must not be negative")
        self._type, self._index = kind, index

    type = property(lambda self: self._type, doc='"cpu" or "cuda".')
    index = property(lambda self: self._index, doc="The device's number, or None.")

    def __eq__(self, other):
        if not isinstance(other, device):
            return NotImplemented
        return (self._type, self._index) == (other._type, other._index)

    def __hash__(self):
        return hash((self._type, self._index))

    def __repr__(self):
        if self._index is None:
            return f"device(type='{self._type}')"
        return f"device(type='{self._type}', index={self._index})"

    def __str__(self):
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __reduce__(self):
        return device, (self._type, self._index)


def _parse(text, index):
    """(type, index) of a device string such as "cuda:1", with PyTorch's errors."""
    if not text:
        raise RuntimeError("Device string must not be empty")
    if index is not None and (isinstance(index, bool)
                              or not isinstance(index, numbers.Integral)):
        raise TypeError(f"device(): argument 'index' (position 2) must be int, not "
                        f"{index.__class__.__name__}")
    found = _STRING.fullmatch(text)
    if found is None:
        raise RuntimeError(f"Invalid device string: '{text}'")
    kind, number = found.groups()
    if kind not in TYPES:
        raise RuntimeError(f"Expected one of {', '.join(TYPES)} device type at start of device "
                           f"string: {kind} (scratchnet computes on the CPU and on one CUDA GPU)")
    if number is not None:
        if index is not None:
            raise RuntimeError(f"type (string) must not include an index because index was "
                               f"passed explicitly: {text}")
        index = int(number)
    return kind, None if index is None else int(index)


def _no_accelerator():
    """PyTorch's error for a GPU asked for where there is none, chained to scratchnet's
    reason (CuPy missing, no CUDA device) so the traceback says what to install."""
    try:
        backend.device_module("gpu")
    except backend.DeviceError as e:
        error = RuntimeError(NO_ACCELERATOR)
        error.__cause__ = e
        return error
    return RuntimeError(NO_ACCELERATOR)


def as_device(spec, where):
    """A :class:`device` for ``spec``: a device, a string ("cpu", "cuda", "cuda:0", and
    scratchnet's own "gpu" for "cuda") or a GPU index. ``where`` names the caller in a
    TypeError for anything else."""
    if isinstance(spec, device):
        return spec
    if spec == "gpu":
        return device("cuda")
    if isinstance(spec, str) or (isinstance(spec, numbers.Integral)
                                 and not isinstance(spec, bool)):
        return device(spec)
    raise TypeError(f"{where}: expected a device ('cpu', 'cuda', 'cuda:0', a torch.device or "
                    f"a GPU index), got {spec!r}")


def count():
    """How many GPUs scratchnet can put arrays on: 1 when CuPy (or the test suite's CuPy
    double) sees a CUDA device, else 0. On a machine with several GPUs scratchnet still
    uses one, the current CuPy device."""
    return 1 if backend.gpu_available() else 0


def placement(spec, where):
    """The backend's name ("cpu" or "gpu") for device ``spec``, after checking that arrays
    can go there: without a GPU, PyTorch's RuntimeError ("Cannot access accelerator device
    when none is available."); for a GPU index past the one scratchnet has, PyTorch's
    AcceleratorError ("CUDA error: invalid device ordinal")."""
    d = as_device(spec, where)
    if d.type == "cpu":
        return "cpu"
    if not count():
        raise _no_accelerator()
    if d.index not in (None, 0):
        raise AcceleratorError(f"CUDA error: invalid device ordinal\nGPU device may be out of "
                               f"range, do you have enough GPUs? ({where}: scratchnet has one "
                               f"GPU, cuda:0; asked for {d})")
    return "gpu"


def array_device(a):
    """The :class:`device` of a NumPy or CuPy array (or of a Tensor or Parameter holding
    one): ``device(type='cpu')`` or ``device(type='cuda', index=0)``."""
    a = getattr(a, "array", a)
    if backend.is_cupy_array(a):
        return device("cuda", int(getattr(a.device, "id", 0)))
    return device("cpu")


def named(name):
    """The :class:`device` of the backend's name: "cpu" or "gpu" (cuda:0)."""
    return device("cpu") if name == "cpu" else device("cuda", 0)


def mixed(a, b):
    """PyTorch's error text for an op given tensors on devices ``a`` and ``b`` (the GPU
    named first, as PyTorch names the device the op runs on first)."""
    first, second = (a, b) if a.type != "cpu" else (b, a)
    return (f"Expected all tensors to be on the same device, but found at least two devices, "
            f"{first} and {second}!")


def to_arguments(where, args, device_kw=None, dtype_kw=None):
    """The target of PyTorch's ``to`` forms, for Tensor.to and Module.to: ``(device)``,
    ``(dtype)``, ``(device, dtype)``, ``(tensor)`` (the tensor's device and dtype) and the
    keywords ``device=`` and ``dtype=``. Returns (a :class:`device` or None, a NumPy dtype
    or None); ``where`` names the caller in the TypeError for anything else."""
    rest = list(args)
    target, dtype = device_kw, dtype_kw
    if rest and hasattr(rest[0], "array") and hasattr(rest[0], "dtype"):  # a Tensor
        other = rest.pop(0)
        target, dtype = array_device(other), other.dtype
    elif rest and (rest[0] is None or isinstance(rest[0], (str, device)) or (
            isinstance(rest[0], numbers.Integral) and not isinstance(rest[0], bool))):
        first = rest.pop(0)
        target = target if first is None else first
    if rest:
        dtype = rest.pop(0)
    if rest:
        raise TypeError(f"{where}: expected (device, dtype), (dtype) or (tensor), got the extra "
                        f"arguments {rest!r}")
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{where}: expected a device ('cpu', 'cuda', ...), a dtype "
                            f"(torch.float32, ...) or a tensor, got {dtype!r}") from None
    return (None if target is None else as_device(target, where)), dtype
