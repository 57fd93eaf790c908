"""Layers: thin classes that own parameters and call the pure ops in scratchnet.ops, each
with its own backward (manual backprop); the tape (scratchnet.autograd) is the floor
below, which Module.__call__ hands a call on Tensors to; ``nn.functional`` has
torch.nn.functional's ops on the tape."""
from . import functional, init
from .activation import ReLU, Sigmoid, Tanh
from .conv import Conv1d, Conv2d, LazyConv2d
from .dropout import Dropout
from .linear import Flatten, LazyLinear, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Sequential
from .norm import BatchNorm1d, BatchNorm2d, LazyBatchNorm1d, LazyBatchNorm2d
from .parameter import Parameter
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["functional", "init", "Module", "Sequential", "Parameter", "Conv1d", "Conv2d",
           "LazyConv2d", "Linear", "LazyLinear", "Flatten", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "LazyBatchNorm1d",
           "LazyBatchNorm2d", "ReLU", "Sigmoid", "Tanh", "Dropout", "CrossEntropyLoss",
           "MSELoss"]


def __getattr__(name):
    """A PyTorch layer scratchnet lacks is named in the error (``torch.nn.Conv3d is not
    part of scratchnet``)."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torch.nn.{name} is not part of scratchnet (its layers: "
                         f"{', '.join(n for n in __all__ if n not in ('functional', 'init', 'Module'))})")
