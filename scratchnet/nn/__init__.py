"""Layers: thin classes that own parameters and call the pure ops in scratchnet.ops."""
from . import init
from .activation import ReLU, Sigmoid, Tanh
from .conv import Conv1d, Conv2d, LazyConv2d
from .dropout import Dropout
from .linear import Flatten, LazyLinear, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Sequential
from .norm import BatchNorm1d, BatchNorm2d, LazyBatchNorm2d
from .parameter import Parameter
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["init", "Module", "Sequential", "Parameter", "Conv1d", "Conv2d", "LazyConv2d",
           "Linear", "LazyLinear", "Flatten", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "BatchNorm1d", "BatchNorm2d", "LazyBatchNorm2d", "ReLU", "Sigmoid", "Tanh",
           "Dropout", "CrossEntropyLoss", "MSELoss"]


def __getattr__(name):
    """``nn.functional`` is the tape's functional module; a PyTorch layer scratchnet
    lacks is named in the error (``torch.nn.Conv3d is not part of scratchnet``)."""
    if name == "functional":
        from ..autograd import functional
        return functional
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torch.nn.{name} is not part of scratchnet (its layers: "
                         f"{', '.join(n for n in __all__ if n not in ('init', 'Module'))})")
