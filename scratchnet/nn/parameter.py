"""nn's Parameter is the tape's (scratchnet/autograd/parameter.py), as PyTorch's
``torch.nn.Parameter`` is a tensor: a learnable array, its gradient, and a leaf of the
tape. Layers own Parameters; manual backprop and the tape both fill their ``grad``."""
from ..autograd.parameter import FlatParams, Parameter, zero_grads

__all__ = ["Parameter", "FlatParams", "zero_grads"]
