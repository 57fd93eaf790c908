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
