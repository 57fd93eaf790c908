"""scratchnet: a from-scratch CNN framework on NumPy (CPU) and CuPy (GPU), with
manual backprop and PyTorch's names, for learning how convolutional networks work.
"""
from . import backend, data, gradcheck, models, nn, ops, optim, receptive, trace, train, viz
from .backend import (DeviceError, get_array_module, get_default_dtype, get_device,
                      gpu_available, manual_seed, no_grad, set_default_dtype, to_device,
                      to_numpy, use_device)
from .io import load, save
from .ops.parallel import get_num_threads, set_num_threads
from .reference import (corr2d, corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1,
                        pool2d)

__version__ = "0.1.0"
