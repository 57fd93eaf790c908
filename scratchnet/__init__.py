"""scratchnet: a from-scratch CNN framework on NumPy (CPU) and CuPy (GPU), with
manual backprop and PyTorch's names, for learning how convolutional networks work.
"""
import builtins as _builtins

from . import backend, data, gradcheck, models, nn, ops, optim, receptive, trace, train, viz
from .backend import (DeviceError, get_array_module, get_default_dtype, get_device,
                      gpu_available, is_grad_enabled, manual_seed, no_grad, set_default_dtype,
                      to_device, to_numpy, use_device)
from .serialization import load, save
from .ops.parallel import get_num_threads, set_num_threads
from .reference import (corr2d, corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1,
                        pool2d)

from .autograd import Size, Tensor
from . import distributions  # torch.distributions (above the tape and tensors.py)
from . import cuda  # torch.cuda.device_count(), torch.cuda.is_available()
from . import utils  # torch.utils.data: TensorDataset, DataLoader
from .device import AcceleratorError, device  # noqa: F811  (torch.device: the class)
from .dtypes import *  # noqa: F401,F403  (torch.dtype, float32, int64, long, bool, ...)
from .dtypes import __all__ as _dtype_names
from .tensors import *  # noqa: F401,F403  (tensor, zeros, rand, stack, ...)
from .tensors import __all__ as _tensor_names

__version__ = "0.1.0"

# Optimizers under PyTorch's path too: torch.optim.SGD.
__all__ = ["Tensor", "Size", "nn", "optim", "data", "no_grad", "is_grad_enabled",
           "manual_seed", "use_device",
           "get_device", "gpu_available", "save", "load", "device", "AcceleratorError"] + [
    # torch.sum, torch.abs, torch.float, torch.bool stay attributes; a star import must
    # not hide Python's own sum, abs, float and bool (the book's cells use sum(...)).
    n for n in dict.fromkeys(_tensor_names + _dtype_names) if not hasattr(_builtins, n)]


def __getattr__(name):
    """``import scratchnet as torch`` meets PyTorch code: a name scratchnet lacks says so,
    instead of an AttributeError from somewhere deeper."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torch.{name} is not part of scratchnet (it covers what "
                         f"d2l's chapters 7-8 use; see the README's API tour)")
