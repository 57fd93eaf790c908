"""The array-module switch: numpy on the CPU, cupy on the GPU.

This is the only module that decides between numpy and cupy. Everything else
asks it for ``xp`` (the array module of the arrays at hand, Chainer's
``get_array_module``) or for the active device.
"""
import contextlib
import sys
import threading

import numpy as np

from . import dtypes

_CUPY_HINT = 'install it with: pip install -e ".[gpu]"  (or the cupy wheel matching your CUDA)'


class DeviceError(RuntimeError):
    """The requested device cannot be used (no CuPy, no CUDA device)."""


class _State(threading.local):
    def __init__(self):
        self.device = "cpu"
        self.dtype = dtypes.float32
        self.grad_enabled = True
        self.rng = np.random.default_rng()
        # The device generator: (seed, number of draws so far); see random_uniform.
        self.device_rng = [int(np.random.SeedSequence().entropy % 2**63), 0]


_state = _State()
_cupy = None


def _import_cupy():
    """Return the cupy module, or raise DeviceError saying what is missing."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as e:
        raise DeviceError(f"GPU requested but CuPy is not installed ({e}); {_CUPY_HINT}") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise DeviceError(f"GPU requested but no CUDA device is usable: {e}; check the NVIDIA "
                          f"driver, or {_CUPY_HINT}") from None
    if count < 1:
        raise DeviceError(f"GPU requested but CuPy sees no CUDA device; check the NVIDIA "
                          f"driver, or {_CUPY_HINT}")
    _cupy = cupy
    return cupy


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        _import_cupy()
    except DeviceError:
        return False
    return True


def _normalize_device(device):
    name = str(device).lower()
    if name in ("cpu", "numpy"):
        return "cpu"
    if name in ("gpu", "cuda", "cupy") or name.startswith("cuda:"):
        return "gpu"
    raise ValueError(f"use_device: expected 'cpu' or 'gpu', got {device!r}")


class use_device:
    """Select the device for new arrays and parameters.

    Works as a plain call (``sn.use_device("gpu")``) and as a context manager
    that restores the previous device on exit.
    """

    def __init__(self, device):
        device = _normalize_device(device)
        if device == "gpu":
            _import_cupy()
        self._previous = _state.device
        _state.device = device

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.device = self._previous
        return False


def get_device():
    """The active device name, "cpu" or "gpu"."""
    return _state.device


def device_module(device=None):
    """The array module (numpy or cupy) for ``device`` (default: the active one)."""
    device = _state.device if device is None else _normalize_device(device)
    return _import_cupy() if device == "gpu" else np


def is_cupy_array(a):
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(*arrays):
    """numpy, or cupy when any of ``arrays`` is a cupy array (or a scratchnet Tensor or
    Parameter holding one)."""
    for a in arrays:
        if is_cupy_array(getattr(a, "array", a)):
            return _cupy
    return np


def device_of(a):
    """"gpu" for a cupy array (or a Tensor or Parameter holding one), "cpu" otherwise."""
    return "gpu" if is_cupy_array(getattr(a, "array", a)) else "cpu"


def synchronize(a=None):
    """Wait for the GPU to finish queued work (for timing); a no-op for numpy arrays."""
    if a is None or is_cupy_array(a):
        if _cupy is not None:
            _cupy.cuda.get_current_stream().synchronize()


def to_numpy(a):
    """A numpy array holding ``a`` (copies from the GPU when needed); a scratchnet Tensor
    or Parameter gives its array."""
    a = getattr(a, "array", a)
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def to_device(a, device=None):
    """``a`` as an array on ``device`` (default: the active device)."""
    device = _state.device if device is None else _normalize_device(device)
    a = getattr(a, "array", a)  # a scratchnet Tensor or Parameter: its array
    if device == "gpu":
        return _import_cupy().asarray(a)
    return to_numpy(a)


def get_default_dtype():
    """The dtype of new float tensors and parameters, ``torch.float32`` unless set (a
    :class:`scratchnet.dtype`, which NumPy and CuPy take as their own dtype)."""
    return _state.dtype


def set_default_dtype(dtype):
    """Set the dtype of new parameters: float32 (default) or float64 (``torch.float64``,
    ``np.float64`` or "float64")."""
    dtype = dtypes.as_dtype(dtype)
    if dtype not in (dtypes.float32, dtypes.float64):
        raise ValueError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _state.dtype = dtype


def manual_seed(seed):
    """Seed every generator scratchnet uses: numpy's (host) and cupy's (device)."""
    seed = int(seed)
    _state.rng = np.random.default_rng(seed)
    np.random.seed(seed % 2**32)
    _state.device_rng = [seed % 2**63, 0]
    if _cupy is not None or gpu_available():
        _cupy.random.seed(seed)


def rng():
    """The host random generator used for parameter initialisation."""
    return _state.rng


def set_rng(generator):
    """Make ``generator`` (a numpy Generator, e.g. one :func:`rng` returned) the host
    random generator again."""
    _state.rng = generator


def device_rng_state():
    """The device generator's state, two ints (a checkpoint stores them)."""
    return list(_state.device_rng)


def set_device_rng_state(state):
    seed, draws = (int(v) for v in state)
    _state.device_rng = [seed, draws]


def random_uniform(xp, shape, dtype):
    """Uniform [0, 1) samples of ``dtype`` made directly on the device of ``xp``.

    On the GPU, draw k comes from a CuPy generator seeded by (seed, k): CuPy cannot
    hand its generator's state back, but these two numbers say exactly where the
    stream is, so a checkpoint can store them and a resumed run draws the same masks.
    """
    if xp is np:
        return _state.rng.random(shape, dtype=np.dtype(dtype))
    seed, draws = _state.device_rng
    _state.device_rng[1] += 1
    words = np.random.SeedSequence([seed, draws]).generate_state(2, np.uint32)
    stream = xp.random.RandomState((int(words[0]) << 31) ^ int(words[1]))
    return stream.random_sample(shape, dtype=dtype)


def is_grad_enabled():
    return _state.grad_enabled


@contextlib.contextmanager
def no_grad():
    """Forward passes inside keep no cache for backward (saves memory in evaluation)."""
    previous = _state.grad_enabled
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


def is_torch_tensor(x):
    """Whether ``x`` is a torch.Tensor (or Parameter), found without importing torch:
    where torch was never imported there is none."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, getattr(torch, "Tensor", ()))


def refuse_torch(who, what, x, tape=True):
    """A TypeError naming ``who`` and the argument ``what`` when ``x`` is a torch.Tensor:
    scratchnet computes on numpy and cupy arrays (and, where ``tape``, its own Tensors)."""
    if is_torch_tensor(x):
        raise TypeError(f"{who}: got a torch.Tensor as {what}; convert it with .numpy() "
                        f"(.detach().cpu().numpy() if it requires grad or is on a GPU)"
                        + (" or sn.tensor(...)" if tape else ""))


def draw_normal(shape, dtype, mean=0.0, std=1.0):
    """N(mean, std^2) samples from the seeded host generator, in ``dtype`` (nn.init and
    Tensor.normal_ draw the same numbers for the same seed)."""
    dtype = np.dtype(dtype)
    z = rng().standard_normal(shape, dtype=dtype)
    return z * dtype.type(std) + dtype.type(mean)


def draw_uniform(shape, dtype, a=0.0, b=1.0):
    """U(a, b) samples from the seeded host generator, in ``dtype``."""
    dtype = np.dtype(dtype)
    u = rng().random(shape, dtype=dtype)
    return u * dtype.type(b - a) + dtype.type(a)


def put(array, values):
    """Write host ``values`` into ``array`` in place, on the array's device."""
    array[...] = to_device(np.asarray(values).astype(array.dtype, copy=False), device_of(array))
