"""Layers on the tape: a module called on a Tensor records one node per layer that
writes its own backward (Conv2d, BatchNorm2d, ReLU, ...), whose backward is that layer's
``backward``; a module with only a forward (the book's style) records the ops its
forward does. Modules are known by what they have (``forward``, ``backward``,
``_parameters``, ``named_modules``), not by their class: nn sits above this floor.
"""
import threading
import weakref

from .parameter import parameter_tensor
from .tensor import Tensor, record, to_tensor


def has_backward(module):
    """Whether the module's class writes its own backward (manual backprop); one whose
    backward is the base class's placeholder (nn.Module marks it) runs on the tape."""
    return not getattr(type(module).backward, "placeholder", False)


_local = threading.local()


def call_module(module, *args, **kwargs):
    """``module(*args)`` with Tensors among args: see the module docstring."""
    outer = not getattr(_local, "depth", 0)
    if outer:  # name every parameter by its path in the model called first
        for path, m in module.named_modules():
            object.__setattr__(m, "_tape_path", path)
            if has_backward(m):
                continue  # a layer names its parameters when it records (_layer_node)
            for k, p in m._parameters.items():  # used directly by a forward-only module
                if p is not None and p.array is not None:
                    parameter_tensor(p, f"{path}.{k}" if path else k)
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        if module._modules or not has_backward(module):
            # A container calls its children on Tensors; a module with only a forward
            # (PyTorch's style) records the ops its forward does.
            return module.forward(*args, **kwargs)
        return _layer_node(module, args, kwargs)
    finally:
        _local.depth -= 1


def torch_grad_fn(module, x):
    """The name PyTorch gives the last node of what ``module(x)`` computes (Linear:
    ``AddmmBackward0``), for printing ``grad_fn=<...>`` as PyTorch does: a layer's
    ``grad_fn_name``, a string or a function of the layer and its input; None when the
    layer has none (the node then prints under scratchnet's name)."""
    name = getattr(module, "grad_fn_name", None)
    return name(x) if callable(name) else name


def _layer_node(module, args, kwargs):
    tensors = [a for a in args if isinstance(a, Tensor)]
    like = tensors[0]
    for a in tensors[1:]:
        to_tensor(a, like)
    raw = [a.array if isinstance(a, Tensor) else a for a in args]
    live = module.__dict__.get("_tape_node")
    if live is not None and live() is not None and not live().freed:
        # The layer is used twice in one graph: its reusable buffers hold the first
        # call's values, which that call's backward still needs.
        object.__setattr__(module, "_columns_buffer", None)
    y = module.forward(*raw, **kwargs)
    extra = ()
    if isinstance(y, tuple):  # MaxPool2d(return_indices=True): (y, indices)
        y, extra = y[0], tuple(y[1:])
    cache = module.__dict__.get("_cache")
    prefix = module.__dict__.get("_tape_path", "")
    params = [parameter_tensor(p, f"{prefix}.{k}" if prefix else k)
              for k, p in module._parameters.items() if p is not None and p.array is not None]
    first = tensors[0]
    inputs = [first] + params

    # A first layer, whose input needs no gradient (the images), skips dL/dx as the
    # Trainer has it do in manual backprop.
    skip = not first.requires_grad and getattr(module, "needs_input_grad", False)

    def backward_fn(gy):
        object.__setattr__(module, "_cache", cache)
        if skip:
            module.needs_input_grad = False
        try:
            gx = module.backward(gy)
        finally:
            if skip:
                module.needs_input_grad = True
        return (None if skip else gx,) + (None,) * len(params)

    out = record(module.name, y, inputs, backward_fn)
    if out.grad_fn is not None:
        out.grad_fn.module = module
        out.grad_fn.torch_name = torch_grad_fn(module, raw[0])
        object.__setattr__(module, "_tape_node", weakref.ref(out.grad_fn))
    return (out,) + extra if extra else out
