"""``torch.cuda``: how many GPUs there are, as d2l's ``num_gpus()`` and ``try_gpu()`` ask.

scratchnet computes on at most one GPU, through CuPy: ``device_count()`` is 1 when CuPy
(or, in the test suite, its CuPy double) sees a CUDA device, and 0 otherwise.
"""
from . import backend
from .device import count

__all__ = ["device_count", "is_available"]


def device_count():
    """The number of GPUs tensors can be put on: 0 or 1 (PyTorch's counts every card)."""
    return count()


def is_available():
    """Whether a GPU can be used (PyTorch's ``torch.cuda.is_available()``)."""
    return backend.gpu_available()
