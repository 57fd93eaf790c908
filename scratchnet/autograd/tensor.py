"""The tape's Tensor: an array, the Node of the op that made it, and backward.

Every operation on a Tensor that requires grad records a :class:`Node` (the op's
name, its inputs and a function from the output's gradient to the inputs'),
define-by-run. :func:`run_backward` visits the nodes in reverse topological order, so
a node runs only when every use of its output has sent its gradient back; where a
tensor was used twice the two gradients are summed. This file knows nothing of
layers or parameters: a Parameter takes part through its ``as_tensor`` (parameter.py),
a layer through :func:`record` (modules.py).
"""
import os
import sys
import weakref

import numpy as np

from .. import backend, dtypes
from ..device import array_device, mixed
from .printing import tensor_format, tensor_repr


class Size(tuple):
    """A tensor's shape: a tuple, printed as PyTorch prints one (``torch.Size([2, 3])``),
    so a cell's output reads line by line against the book's."""

    def __repr__(self):
        return f"torch.Size({list(self)})"


class Node:
    """One recorded op: ``name`` (e.g. "MulBackward"), the input Tensors, and
    ``backward_fn(gy) -> one gradient (or None) per input``."""

    def __init__(self, name, inputs, backward_fn, out):
        self.name = name
        self.inputs = tuple(inputs)
        # Each input's producer and need for a gradient as they were when this op ran:
        # an in-place write (``Y[i, j] = ...``) later gives the tensor a new grad_fn,
        # but this op read the old value.
        self.edges = tuple((t.grad_fn, t.requires_grad) for t in self.inputs)
        self.backward_fn = backward_fn
        self.out_shape = tuple(out.shape)
        self.out = weakref.ref(out)
        self.freed = False
        # PyTorch's name for the node, where a layer's one node stands for PyTorch's
        # own ("Linear0" prints as grad_fn=<AddmmBackward0>): autograd/modules.py.
        self.torch_name = None
        self.where = made_at()

    def free(self):
        """Drop what the op saved for backward: its graph can be walked only once."""
        self.backward_fn = None
        self.freed = True

    def __repr__(self):
        return f"<{self.name}>"


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tape's own machinery: a node is said to be made by the first line outside these
# (the user's code, a model's forward, the d2l module).
_MACHINERY = tuple(os.path.join(_PACKAGE, part) for part in (
    "autograd", "nn", "ops", "tensors.py", "backend.py", "dtypes.py", "device.py"))


def made_at():
    """(file, line) of the code that asked for the op being recorded: the first frame
    outside the tape's machinery; None if there is none."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_MACHINERY):
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)


class TorchNamed(type):
    """The metaclass of classes that print under PyTorch's name: ``type(x)`` shows
    ``<class 'torch.Tensor'>``, as a tensor's dtype prints as ``torch.float32`` (a
    student compares a cell's output with the book's). ``__module__`` and ``__name__``
    stay scratchnet's, so tracebacks and pickling say where the class really lives."""

    def __repr__(cls):
        name = cls.__dict__.get("torch_name")
        return type.__repr__(cls) if name is None else f"<class '{name}'>"


class Tensor(metaclass=TorchNamed):
    """An array of the active device, with a gradient and the op that made it."""

    torch_name = "torch.Tensor"

    __array_priority__ = 1000  # numpy scalars and arrays defer to our operators

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Tensor) or hasattr(data, "as_tensor"):  # a Parameter: its array
            data = data.array
        if backend.is_cupy_array(data) or isinstance(data, np.ndarray):
            # Host values go to the active device; an array on the GPU stays there,
            # whichever device is active (PyTorch's torch.tensor keeps a CUDA tensor's).
            if backend.device_of(data) == "cpu" and backend.get_device() == "gpu":
                data = backend.to_device(data, "gpu")
        else:
            xp = backend.device_module()
            if isinstance(data, np.generic):  # a numpy op's 0-d result keeps its dtype
                data = xp.asarray(data)
            elif isinstance(data, bool) or isinstance(data, int):
                data = xp.asarray(data)
            elif isinstance(data, float):
                data = xp.asarray(data, dtype=backend.get_default_dtype())
            else:  # nested lists, as torch.tensor takes them
                a = np.asarray(data)
                if a.dtype.kind == "f":
                    a = a.astype(backend.get_default_dtype())
                data = xp.asarray(a)
        if requires_grad and data.dtype.kind not in "fc":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got "
                            f"{data.dtype}")
        self.array = data
        self.requires_grad = bool(requires_grad)
        self.grad_fn = None
        self.name = name
        self._grad = None
        self._param = None  # a leaf that stands for a model's Parameter
        self._retain = False

    # ``array`` is the NumPy (or CuPy) array underneath: what scratchnet's own code reads.
    # ``data`` and ``grad`` are what PyTorch gives: Tensors that share that storage and are
    # cut from the graph, so ``w.data.normal_(0, 0.01)`` or ``x.grad.zero_()`` writes the
    # very array the tape and the optimizers use (see docs/porting.md).

    @property
    def data(self):
        """This tensor's values as a new Tensor sharing the array, outside the graph
        (PyTorch's ``.data``): writes through it change this tensor and are not recorded."""
        return shares(self.array)

    @data.setter
    def data(self, value):
        self.array = _array_of(value, "data")

    @property
    def grad(self):
        """dL/d(this tensor) after backward(), as a Tensor sharing the gradient's array
        (leaves only, and tensors that asked for retain_grad(), as in PyTorch); None before."""
        g = self.grad_array
        return None if g is None else shares(g)

    @grad.setter
    def grad(self, value):
        self.grad_array = None if value is None else _array_of(value, "grad")

    @property
    def grad_array(self):
        """The array of ``grad`` (None before backward); a Parameter's tensor reads its
        Parameter's."""
        return self._param.grad_array if self._param is not None else self._grad

    @grad_array.setter
    def grad_array(self, value):
        if self._param is not None:
            self._param.grad_array = value
        else:
            self._grad = value

    shape = property(lambda self: Size(self.array.shape))
    # torch.float32 ...: PyTorch's dtype of the array's NumPy dtype (one dict lookup)
    dtype = property(lambda self: dtypes.of(self.array.dtype))
    ndim = property(lambda self: self.array.ndim)
    # device(type='cpu') or device(type='cuda', index=0); .to, .cuda, .cpu are in _ops.py.
    device = property(lambda self: array_device(self.array))
    is_leaf = property(lambda self: self.grad_fn is None)

    def numel(self):
        return int(self.array.size)

    def __getattr__(self, name):
        # Only reached when normal lookup fails: a PyTorch method scratchnet lacks.
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"torch.Tensor.{name} is not part of scratchnet's Tensor (it "
                             "has what d2l's chapters 7-8 use; .array is the numpy/cupy "
                             "array underneath, for anything else)")

    def __len__(self):
        return len(self.array)

    def __repr__(self):  # as PyTorch prints: tensor([[19., 25.], ...])
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec):  # f"{loss:.3f}" on a one-number tensor
        return tensor_format(self, spec)

    def detach(self):
        """The same array (shared, as PyTorch shares storage) as a new leaf that requires
        no gradient: nothing computed from it is recorded back to this tensor's graph."""
        return shares(self.array)

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place and return this tensor, as PyTorch does; only a
        leaf's flag can change (detach() a computed tensor instead)."""
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_: you can only change requires_grad flags of "
                               "leaf tensors; to use a computed tensor without its graph, "
                               "take x.detach()")
        if requires_grad and self.dtype.kind not in "fc":
            raise RuntimeError(f"requires_grad_: only floating-point tensors can require "
                               f"grad, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep this intermediate tensor's gradient in .grad after backward()."""
        self._retain = True

    def backward(self, gradient=None, retain_graph=None):
        """Run the recorded graph backwards from this tensor (see the module docstring).
        The graph's saved values are freed on the way, unless ``retain_graph=True``: then
        a second backward through it works, and adds its gradients to the first's."""
        run_backward(self, gradient, retain_graph=bool(retain_graph))

    # The operators and methods below are all small recorded ops (see _ops.py).


def shares(array):
    """A Tensor holding ``array`` itself, wherever it lives (``Tensor(a)`` would move it to
    the active device): a leaf that requires no grad. ``.data``, ``.grad`` and ``detach()``
    hand these out, and every op's result is one (an op's output stays on its inputs'
    device, as in PyTorch). A NumPy scalar becomes a 0-d array."""
    if isinstance(array, np.generic):
        array = np.asarray(array)
    t = Tensor.__new__(Tensor)
    t.array, t.requires_grad, t.grad_fn, t.name = array, False, None, None
    t._grad, t._param, t._retain = None, None, False
    return t


def _array_of(value, what):
    """The array to store for ``t.data = value`` or ``t.grad = value``: a Tensor's
    (or Parameter's) array, or an array as given."""
    if isinstance(value, Tensor) or hasattr(value, "as_tensor"):
        return value.array
    if backend.is_cupy_array(value) or isinstance(value, np.ndarray):
        return value
    raise TypeError(f"Tensor.{what}: expected a Tensor or an array, got {type(value).__name__}")


def to_tensor(v, like):
    """A Tensor for v: Tensors pass; a Parameter (anything with ``as_tensor``) is its
    leaf on the tape; numbers and arrays become constants on like's device."""
    if not isinstance(v, Tensor) and hasattr(v, "as_tensor"):
        v = v.as_tensor()
    if isinstance(v, Tensor):
        if v.device != like.device:  # PyTorch's error; move one with .to(...)
            raise RuntimeError(mixed(like.device, v.device))
        return v
    xp = backend.get_array_module(like.array)
    if isinstance(v, (bool, int, float, complex, np.generic)):
        return shares(xp.asarray(v, dtype=number_dtype(v, like.array.dtype)))
    if not hasattr(v, "dtype"):  # nested lists: made as Tensor makes them, on like's device
        v = backend.to_device(Tensor(v).array, backend.device_of(like.array))
    if array_device(v) != like.device:
        raise RuntimeError(mixed(like.device, array_device(v)) + f" (a "
                           f"{type(v).__module__.split('.')[0]} array)")
    return shares(v)


KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}  # bool < integer < float < complex


def number_dtype(v, dtype):
    """The dtype a Python (or NumPy) number takes in an op with a tensor of ``dtype``:
    PyTorch's rule for a "wrapped number". It is the tensor's own dtype unless the number
    is of a higher kind; then it is that kind's default (``torch.arange(4) * 2.5`` is
    float32, not int64 and not float64)."""
    kind = ("b" if isinstance(v, (bool, np.bool_)) else "i" if isinstance(v, int) else
            "f" if isinstance(v, float) else "c" if isinstance(v, complex) else v.dtype.kind)
    if KIND_RANK[kind] <= KIND_RANK[dtype.kind]:
        return dtype
    default = np.dtype(backend.get_default_dtype())
    return {"i": np.dtype(np.int64), "u": np.dtype(np.int64), "f": default,
            "c": np.result_type(default, np.complex64)}[kind]


def record(name, out_data, inputs, backward_fn):
    """The Tensor holding ``out_data``; with a Node on it when grad mode is on and any
    input requires grad. ``backward_fn(gy)`` returns one gradient per input."""
    out = shares(out_data) if hasattr(out_data, "dtype") else Tensor(out_data)
    if backend.is_grad_enabled() and any(t.requires_grad for t in inputs):
        out.requires_grad = True
        out.grad_fn = Node(name, inputs, backward_fn, out)
    return out


def topological_order(root):
    """Nodes reachable from root, each after every node that uses its output."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for fn, _ in node.edges:
            if fn is not None and id(fn) not in seen:
                stack.append((fn, False))
    return order[::-1]  # root first


def run_backward(t, gradient=None, retain_graph=False):
    """The engine behind Tensor.backward: checks everything first, so a refused call
    adds nothing to any .grad."""
    if not t.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad and has no grad_fn "
                           "(was it made from tensors without requires_grad=True, or under "
                           "no_grad()?)")
    xp = backend.get_array_module(t.array)
    if gradient is None:
        if t.array.size != 1:
            raise RuntimeError(f"backward: a gradient can be created implicitly only for a "
                               f"scalar output; got shape {tuple(t.shape)}: pass gradient=, an "
                               f"array of that shape")
        g = xp.ones_like(t.array)
    else:
        g = gradient.array if isinstance(gradient, Tensor) else gradient
        g = g if hasattr(g, "shape") else xp.asarray(g, dtype=t.dtype)
        if tuple(g.shape) != t.shape:
            raise RuntimeError(f"backward: expected a gradient of shape {tuple(t.shape)} (the "
                               f"tensor's), got {tuple(g.shape)}")
        if array_device(g) != t.device:
            raise RuntimeError(f"backward: the tensor is on {t.device} but the gradient on "
                               f"{array_device(g)}")
        g = g.astype(t.dtype, copy=False)  # PyTorch casts the gradient to the tensor's dtype
    if t.grad_fn is None:  # a leaf: its own gradient
        _accumulate(t, g)
        return
    order = topological_order(t.grad_fn)
    if any(node.freed for node in order):
        raise RuntimeError("backward: trying to go backward through the graph a second "
                           "time; the first backward() freed what the ops saved (compute "
                           "the forward again)")
    grads = {id(t.grad_fn): g}
    watch = _watchers[-1] if _watchers else None
    for node in order:
        gy = grads.pop(id(node), None)
        if gy is None:
            continue  # nothing that needs a gradient depends on this op
        out = node.out()
        if out is not None and out._retain:
            out._grad = gy
        gins = node.backward_fn(gy)
        if watch is not None:  # graph.py's numbers view: what each node received
            watch(node, gy)
        if not retain_graph:
            node.free()
        for inp, (fn, needs), gin in zip(node.inputs, node.edges, gins):
            if gin is None or not needs:
                continue  # (a layer's backward fills its own Parameters and returns None)
            if fn is None:
                _accumulate(inp, gin)
            else:
                key = id(fn)
                # The tensor was used twice or more: the gradients add up.
                grads[key] = gin if key not in grads else grads[key] + gin
    return None


# Functions called with (node, dL/d(node's output)) as backward runs each node; empty but
# while graph.py computes the numbers it shows.
_watchers = []


def _accumulate(leaf, g):
    if tuple(g.shape) != leaf.shape:  # a broadcast op must have summed it back
        raise RuntimeError(f"backward: internal error, gradient {tuple(g.shape)} for a leaf "
                           f"of shape {tuple(leaf.shape)}")
    if leaf._param is not None:
        leaf._param.accumulate(g)  # in place: an optimizer's flat buffer keeps its view
    else:
        if leaf._grad is None:
            leaf._grad = g.copy()
        else:
            leaf._grad += g  # in place, as PyTorch: a Tensor from an earlier x.grad sees it
