"""Module: the base of every layer, and Sequential.

A module owns Parameters (learnable), buffers (state such as BatchNorm's
running statistics) and child modules, registered by attribute assignment as
in PyTorch. ``forward(x)`` computes and caches what ``backward`` needs;
``backward(gy)`` returns dL/dx and adds into each parameter's ``grad``.
"""
import inspect
from collections import OrderedDict

import numpy as np

from .. import backend
from ..backend import is_torch_tensor, refuse_torch
from ..autograd import Tensor, call_module, has_backward
from ..autograd.parameter import Parameter, zero_grads
from ..autograd.tensor import shares
from ..device import as_device, placement, to_arguments

# Module.receptive_geometry() of a layer whose outputs see more than a fixed window.
WHOLE_INPUT = "whole input"


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 "assigning attributes")
        # A reassigned name keeps its place, so state_dict keeps PyTorch's order.
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
            if name in self._buffers:
                self._buffers[name] = value
                return
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only reached when normal lookup fails: buffers live in _buffers.
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            return buffers[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_buffer(self, name, value):
        """State saved in state_dict but not trained (running statistics)."""
        self._buffers[name] = value
        self.__dict__.pop(name, None)

    def add_module(self, name, module):
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"add_module: expected a Module, got {type(module).__name__}")
        setattr(self, name, module)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, gy):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    # The placeholder mark: a module whose class keeps this backward defines only
    # forward, and the tape records its forward's ops (autograd.has_backward).
    backward.placeholder = True

    def __call__(self, *args, **kwargs):
        # Before anything else: a torch.Tensor's grad_fn (None) would pass for a tape Tensor's.
        for key, a in [*enumerate(args), *kwargs.items()]:
            if is_torch_tensor(a):
                what = key if isinstance(key, str) else _argument_name(self.forward, key)
                refuse_torch(self.name, what, a)
        tensors = any(getattr(a, "grad_fn", False) is not False for a in args)
        if tensors or not has_backward(self):
            # An autograd Tensor, or a module that defines only forward (PyTorch's
            # style): record this layer (or the ops of its forward) on the tape.
            if not tensors:  # plain arrays become constants of the tape
                args = tuple(Tensor(a) if hasattr(a, "shape") and hasattr(a, "dtype")
                             and not isinstance(a, Parameter) else a for a in args)
            return call_module(self, *args, **kwargs)
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def check_input(self, x, ndims, layout):
        """Raise before any state changes unless x is a floating array of the
        right rank, on the device and in the dtype of this layer's parameters."""
        refuse_torch(self.name, "the input", x)
        xp = backend.get_array_module(x)
        if not isinstance(x, xp.ndarray):
            raise TypeError(f"{self.name}: expected a numpy or cupy array {layout}, "
                            f"got {type(x).__name__}")
        if x.ndim not in ndims:
            ndims = tuple(ndims)
            if len(ndims) > 2 and ndims == tuple(range(ndims[0], ndims[-1] + 1)):
                want = f"{ndims[0]}-D or higher"  # not "1 or 2 or ... or 32-D"
            else:
                want = f"{' or '.join(map(str, ndims))}-D"
            raise ValueError(f"{self.name}: expected a {want} input {layout}, got {x.ndim}-D "
                             f"input of shape {tuple(x.shape)}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{self.name}: expected a floating-point input, got {x.dtype}")
        for pname, p in self._parameters.items():
            if p.array is None:
                if p.lazy_device not in (None, backend.device_of(x)):
                    raise ValueError(
                        f"{self.name}: input is on {backend.device_of(x)} but the layer was "
                        f"moved to {p.lazy_device} before its first input (its {pname} will "
                        f"be made there); move the input with .to(...) or the model")
                continue
            if backend.device_of(p.array) != backend.device_of(x):
                raise ValueError(
                    f"{self.name}: input is a {type(x).__module__.split('.')[0]} array "
                    f"({backend.device_of(x)}) but {pname} is a "
                    f"{type(p.array).__module__.split('.')[0]} array "
                    f"({backend.device_of(p.array)}); move the input with sn.to_device(x, "
                    f"{backend.device_of(p.array)!r}) or the model with .to(...)")
            if p.array.dtype != x.dtype:
                raise TypeError(f"{self.name}: input dtype {x.dtype} does not match {pname} "
                                f"dtype {p.array.dtype}; cast the input (x.astype) or the "
                                f"model (.double() / .float())")

    def cache_for_backward(self, y, *cache):
        """Keep what backward needs in ``self._cache``, unless inside sn.no_grad().

        ``y`` is the forward output (gy must match its shape, dtype and device)
        or just a shape (a loss's scalar output).
        """
        object.__setattr__(self, "_cache_used", False)
        if not backend.is_grad_enabled():
            object.__setattr__(self, "_cache", None)
            return
        if hasattr(y, "dtype"):
            meta = (tuple(y.shape), y.dtype, backend.device_of(y))
        else:
            meta = (tuple(y), None, None)
        object.__setattr__(self, "_cache", (meta, cache))

    def pop_cache(self, gy):
        """Check gy against the forward output, then return (and release) the cache."""
        refuse_torch(f"{self.name}.backward", "gy", gy)
        saved = self.__dict__.get("_cache")
        if saved is None:
            raise self._nothing_cached()
        (y_shape, y_dtype, y_device), cache = saved
        if tuple(getattr(gy, "shape", ())) != y_shape:
            raise ValueError(f"{self.name}.backward: expected gy of shape {y_shape} (the forward "
                             f"output), got {tuple(getattr(gy, 'shape', ()))}")
        if y_dtype is not None:
            if backend.device_of(gy) != y_device:
                raise ValueError(f"{self.name}.backward: the output is on {y_device} but gy on "
                                 f"{backend.device_of(gy)}")
            if gy.dtype != y_dtype:
                raise TypeError(f"{self.name}.backward: expected gy of dtype {y_dtype} (the "
                                f"forward output's), got {gy.dtype}")
        object.__setattr__(self, "_cache", None)
        object.__setattr__(self, "_cache_used", True)
        return cache

    def _nothing_cached(self):
        """The ValueError of a backward with no cache: the last forward's was used up by
        an earlier backward, or there was no forward (or only under sn.no_grad())."""
        if self.__dict__.get("_cache_used"):
            return ValueError(f"{self.name}.backward: the cache of the last forward was "
                              "already used by a previous backward (one forward serves one "
                              "backward); call the layer on its input again first")
        return ValueError(f"{self.name}.backward: called before forward (nothing cached); "
                          "call the layer on an input first, outside sn.no_grad()")

    def receptive_geometry(self):
        """The windows this layer slides over its input's last two axes, for
        scratchnet.receptive: a list of (kernel, stride, pad before, pad after,
        dilation), each an (h, w) pair, in the order they apply; [] when each output
        sees only its own position (activations, BatchNorm); ``WHOLE_INPUT`` when the
        field is no fixed window any more (Flatten, Linear, adaptive pooling), where a
        receptive-field table ends; None when the layer does not say (the default).
        """
        return None

    def flops(self, x_shape, y_shape):
        """(forward FLOPs, backward FLOPs) of one call on an input of ``x_shape`` giving
        ``y_shape``, as scratchnet.trace counts them (a multiply-add is 2 FLOPs, bias
        additions are not counted); None when the layer does not say (the default, and
        a block, whose FLOPs are its layers')."""
        return None

    @property
    def name(self):
        return type(self).__name__

    def children(self):
        return iter(m for m in self._modules.values() if m is not None)

    def named_children(self):
        return iter((k, m) for k, m in self._modules.items() if m is not None)

    def named_modules(self, prefix=""):
        yield prefix, self
        for k, m in self.named_children():
            yield from m.named_modules(f"{prefix}.{k}" if prefix else k)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", remove_duplicate=True):
        """A parameter shared by several layers is listed once (as in PyTorch), so an
        optimizer steps it once; state_dict still names it under every owner."""
        seen = set()
        for mod_prefix, m in self.named_modules(prefix):
            for k, p in m._parameters.items():
                if remove_duplicate:
                    if id(p) in seen:
                        continue
                    seen.add(id(p))
                yield (f"{mod_prefix}.{k}" if mod_prefix else k), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix=""):
        for mod_prefix, m in self.named_modules(prefix):
            for k, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{k}" if mod_prefix else k), b

    def zero_grad(self):
        """Zero every gradient in place (one fill for parameters an optimizer packed)."""
        zero_grads(self.parameters())

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def apply(self, fn):
        """Call ``fn`` on every submodule, children first, then self (PyTorch's order)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def state_dict(self):
        """Parameters and buffers by dotted name (PyTorch's keys), as an OrderedDict of
        Tensors that share their arrays and are cut from the graph (PyTorch's detached
        tensors): a write into one writes the model. A lazy layer's parameters are left
        out until their first forward gives them a shape."""
        out = OrderedDict()
        for mod_prefix, m in self.named_modules():
            # Per module, parameters then buffers: the order of PyTorch's state_dict.
            for table in (m._parameters, m._buffers):
                for k, v in table.items():
                    v = v.array if isinstance(v, Parameter) else v
                    if v is not None:
                        out[f"{mod_prefix}.{k}" if mod_prefix else k] = shares(v)
        return out

    def _lazy_shapes(self, state):
        """The shapes this module's not yet materialised (lazy) parameters and buffers
        must have, by local name, with None for a dimension the first input fixes.

        ``state`` holds the entries being loaded into this module, by local name (a lazy
        BatchNorm reads its channel count from them). Modules that know nothing: {}.
        """
        return {}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into parameters and buffers; lazy parameters take the saved shape.

        Every key is checked before anything is copied, so a mismatch changes nothing.
        A lazy layer checks what it already knows: a LazyConv2d(6, 5) takes a weight of
        shape (6, any, 5, 5) only; it stays lazy in name (PyTorch prints it as
        ``LazyConv2d(0, 6, ...)``) until its next forward makes it a Conv2d.
        The values may be Tensors (``state_dict()``, ``torch.load``), NumPy or CuPy arrays.
        """
        state = _arrays_of(state, f"{self.name}.load_state_dict")
        slots = self._state_slots()
        problems = (_key_problems(slots, state, strict) + _shape_problems(slots, state)
                    + _dtype_problems(slots, state))
        if problems:
            raise ValueError(f"{self.name}.load_state_dict: " + ", ".join(problems))
        for k, v in state.items():
            if k in slots:
                _copy_into(*slots[k], v)
        return self

    def _state_slots(self):
        """{dotted key: (module, local name)} of every parameter and buffer, a shared
        one under every owner's key (as state_dict names it)."""
        slots = {}
        for mod_prefix, m in self.named_modules():
            # A lazy layer's None entries are slots still to be shaped; anywhere else a
            # None (bias=False, a loss without class weights) is absent, as in torch.
            lazy = any(isinstance(p, Parameter) and p.array is None
                       for p in m._parameters.values())
            for table in (m._parameters, m._buffers):
                for name, v in table.items():
                    if v is None and not lazy:
                        continue
                    slots[f"{mod_prefix}.{name}" if mod_prefix else name] = (m, name)
        return slots

    def to(self, *args, device=None, dtype=None, non_blocking=False):
        """PyTorch's ``net.to(device)``, ``net.to(dtype)``, ``net.to(device, dtype)`` and
        ``net.to(tensor)``: move parameters and buffers to the device (in place) and cast
        the floating ones to ``dtype``; returns the module. ``device`` is a torch.device,
        "cpu", "cuda", "cuda:0" (scratchnet's "gpu" too).

        Gradients move with their parameters; an optimizer moves its state at its
        next step. A lazy layer's parameters have no array yet: they remember the device,
        and the layer materialises there at its first input (which must be there too).
        """
        target, dtype = to_arguments(f"{self.name}.to", args, device, dtype)
        device = None if target is None else placement(target, f"{self.name}.to")
        if dtype is not None and dtype.kind not in "fc":
            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but "
                            f"got desired dtype=torch.{dtype.name}")
        for m in self.modules():
            for p in m._parameters.values():
                if p.array is not None:
                    p.array = _convert(p.array, device, dtype)
                    if p.grad_array is not None:
                        p.grad_array = _convert(p.grad_array, device, dtype)
                elif device is not None:
                    p.lazy_device = device
            for k, b in m._buffers.items():
                if b is not None:
                    floating = np.issubdtype(b.dtype, np.floating)
                    m._buffers[k] = _convert(b, device, dtype if floating else None)
        return self

    def cuda(self, device=None):
        """PyTorch's ``net.cuda()``: ``net.to(device)``, by default the GPU (cuda:0)."""
        target = as_device("cuda" if device is None else device, f"{self.name}.cuda")
        if target.type != "cuda":
            raise RuntimeError(f"Invalid device, must be cuda device ({self.name}.cuda got "
                               f"{target})")
        placement(target, f"{self.name}.cuda")  # (so that an error names Module.cuda)
        return self.to(target)

    def cpu(self):
        """PyTorch's ``net.cpu()``: ``net.to("cpu")``."""
        return self.to("cpu")

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def num_parameters(self):
        """The number of learnable values (a lazy layer's count none until its first
        forward)."""
        return sum(int(p.array.size) for p in self.parameters() if p.array is not None)

    def __repr__(self):
        lines = [f"{self.name}({self.extra_repr()}"]
        children = list(self.named_children())
        if not children:
            return lines[0] + ")"
        for k, m in children:
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({k}): {sub}")
        return "\n".join(lines) + "\n)"


def _arrays_of(state, who):
    """The entries of ``state`` with each Tensor (or Parameter) replaced by its array;
    arrays and numbers pass as they are. A torch.Tensor is refused by name."""
    if not (hasattr(state, "items") and hasattr(state, "keys")):
        raise TypeError(f"{who}: expected a dict of Tensors or arrays (a state_dict), got "
                        f"{type(state).__name__}")
    out = {}
    for k, v in state.items():
        refuse_torch(who, f"{k!r}", v)
        out[k] = v.array if isinstance(v, (Tensor, Parameter)) else v
    return out


def _key_problems(slots, state, strict):
    """Missing and unexpected keys, when ``strict``."""
    if not strict:
        return []
    missing = sorted(set(slots) - set(state))
    unexpected = sorted(set(state) - set(slots))
    return ([f"missing keys {missing}"] if missing else []) + (
        [f"unexpected keys {unexpected}"] if unexpected else [])


def _current(m, name):
    """The array now in parameter or buffer ``name`` of ``m`` (None while lazy)."""
    p = m._parameters.get(name)
    return p.array if p is not None else m._buffers[name]


def _shape_problems(slots, state):
    """Values whose shape does not fit: the current array's, or for a lazy one the
    shape its module expects (None in it: any size)."""
    misshaped, lazy = [], {}
    for k, v in state.items():
        if k not in slots:
            continue
        m, name = slots[k]
        got = tuple(v.shape) if hasattr(v, "shape") else tuple(np.shape(v))
        cur = _current(m, name)
        if cur is not None:
            want = tuple(cur.shape)
        else:
            if id(m) not in lazy:
                prefix = k[:len(k) - len(name)]  # "net.0." of "net.0.weight"
                lazy[id(m)] = m._lazy_shapes({n: state[prefix + n] for n in
                                              (*m._parameters, *m._buffers)
                                              if prefix + n in state})
            want = lazy[id(m)].get(name)
            if want is None:
                continue
        if not (len(got) == len(want) and all(w is None or w == g for w, g in zip(want, got))):
            shown = ", ".join("any" if w is None else str(w) for w in want)
            shown = f"({shown},)" if len(want) == 1 else f"({shown})"
            misshaped.append(f"{k}: expected {shown}, got {got}")
    return ["mis-shaped " + "; ".join(misshaped)] if misshaped else []


def _dtype_problems(slots, state):
    not_numbers = sorted(k for k, v in state.items() if k in slots and (
        v.dtype if hasattr(v, "dtype") else np.asarray(v).dtype).kind not in "biuf")
    return [f"not arrays of numbers: {not_numbers}"] if not_numbers else []


def _copy_into(m, name, v):
    """Copy ``v`` into parameter or buffer ``name`` of ``m``; a lazy one takes a new
    array of v's shape on the default device. Values are copied in, never aliased: two
    models loaded from one state_dict (or a model and the dict it was loaded from) must
    not share memory."""
    cur = _current(m, name)
    if cur is not None:
        cur[...] = _on_device(v, backend.device_of(cur))
    elif name in m._parameters:
        a = np.array(backend.to_numpy(v), dtype=backend.get_default_dtype())
        m._parameters[name].materialize(backend.to_device(a, backend.get_device()))
    else:
        m._buffers[name] = backend.to_device(np.array(backend.to_numpy(v)),
                                             backend.get_device())


def _on_device(v, device):
    """``v`` (an array of either device, or a number) as an array on ``device``; one
    already there is not sent through the host."""
    if hasattr(v, "dtype") and backend.device_of(v) == device:
        return v
    return backend.to_device(backend.to_numpy(v), device)


def _convert(a, device, dtype):
    if device is not None:
        a = backend.to_device(a, device)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    return a


def _argument_name(fn, i):
    """The name of the i-th positional parameter of ``fn`` ("argument 3" when unnamed)."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params[i] if i < len(params) else f"argument {i + 1}"


class Sequential(Module):
    """Children called in order; backward runs them in reverse."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for k, m in modules[0].items():
                self.add_module(k, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x

    def backward(self, gy):
        for m in reversed(list(self.children())):
            gy = m.backward(gy)
        return gy

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        items = list(self._modules.items())
        if isinstance(i, slice):
            return Sequential(OrderedDict(items[i]))
        if isinstance(i, str):
            return self._modules[i]
        return items[i][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
