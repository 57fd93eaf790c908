"""Parameter: a learnable array and the gradient accumulated into it, and a leaf of the
tape (``as_tensor``); FlatParams: many parameters packed into one buffer, as the
optimizers keep them. Manual backprop fills ``grad`` from a layer's backward, the tape
from :func:`run_backward`: both write the same field. ``scratchnet.nn`` re-exports
Parameter, as PyTorch's ``torch.nn.Parameter`` is its tensor."""
import weakref

import numpy as np

from .. import backend, dtypes
from ..device import array_device, named
from .tensor import Size, TorchNamed, _array_of, shares


class Parameter(metaclass=TorchNamed):
    """``array`` holds the value, ``grad_array`` the accumulated dL/d(value): the arrays
    that layers and optimizers read and write.

    ``data`` and ``grad`` are what PyTorch gives: Tensors sharing those arrays, cut
    from the graph, so the book's ``net.weight.data.normal_(0, 0.01)`` or
    ``w.grad.zero_()`` writes the parameter itself (docs/porting.md).

    ``array`` is None for a lazy layer's parameter until its first forward pass fixes
    the shape (d2l's ``LazyConv2d``): PyTorch's UninitializedParameter, whose ``data`` is
    an empty tensor (writes into it are lost) and whose shape and values are errors.

    ``grad_array`` (and ``grad``) is None until a backward writes the first gradient,
    as PyTorch's ``.grad``: ``net[2].weight.grad == None`` holds before any backward.
    """

    torch_name = "torch.nn.parameter.Parameter"  # how type(p) prints (TorchNamed)

    def __init__(self, data=None, requires_grad=True):
        if hasattr(data, "grad_fn"):  # nn.Parameter(torch.rand(2, 2)): share its array
            data = data.array
        if requires_grad is not True:
            raise ValueError("Parameter: scratchnet's parameters always require grad "
                             "(freeze one by leaving it out of the optimizer)")
        self.array = data
        # None until a backward writes a gradient (manual backprop's accumulate or the
        # tape's), as PyTorch's ``.grad``; optimizers skip a parameter that has none.
        self.grad_array = None

    def as_tensor(self):
        """This parameter as a leaf of the autograd tape: ops on it record, and
        ``backward()`` adds into this parameter's ``grad``. Operators and tensor methods
        on a Parameter (``w * x``, ``w.sum()``) go through it, as in PyTorch."""
        if self.array is None:
            raise ValueError(_uninitialized("as_tensor"))
        return parameter_tensor(self)

    @property
    def data(self):
        """The value as a Tensor sharing ``array``; while a lazy layer waits for its first
        input, a new empty tensor, as PyTorch's (``w.data.normal_()`` then changes nothing:
        the first forward initializes the parameter)."""
        if self.array is None:
            return shares(backend.device_module().empty((0,), backend.get_default_dtype()))
        return shares(self.array)

    @data.setter
    def data(self, value):
        self.array = _array_of(value, "data")

    @property
    def grad(self):
        """The gradient as a Tensor sharing ``grad_array`` (None when there is none)."""
        return None if self.grad_array is None else shares(self.grad_array)

    @grad.setter
    def grad(self, value):
        self.grad_array = None if value is None else _array_of(value, "grad")

    @property
    def shape(self):
        if self.array is None:
            raise RuntimeError("Can't access the shape of an uninitialized parameter (a lazy "
                               "layer's, before its first forward). Call `forward` to "
                               "initialize the parameters before accessing their attributes.")
        return Size(self.array.shape)

    @property
    def dtype(self):
        return None if self.array is None else dtypes.of(self.array.dtype)

    def materialize(self, data):
        self.array = data
        self.grad_array = None

    def accumulate(self, g):
        """Add ``g`` into ``grad`` (a parameter used twice gets both contributions)."""
        if self.grad_array is None:
            self.grad_array = g.copy()
        else:
            self.grad_array += g

    def zero_grad(self):
        if self.grad_array is not None:
            self.grad_array[...] = 0

    def numel(self):
        if self.array is None:
            raise ValueError(_uninitialized("numel"))
        return int(np.prod(self.array.shape))

    def __repr__(self):
        if self.array is None:
            return "<UninitializedParameter>"
        return "Parameter containing:\n" + repr(self.as_tensor())

    requires_grad = True
    lazy_device = None  # "cpu" or "gpu": where Module.to sent a lazy parameter
    ndim = property(lambda self: self.array.ndim)
    # PyTorch's torch.device; a lazy parameter's is where it will materialise.
    device = property(lambda self: array_device(self.array) if self.array is not None else
                      named(self.lazy_device or backend.get_device()))


def _uninitialized(name):
    return (f"Attempted to use an uninitialized parameter in {name}: a lazy layer's "
            f"parameters get their shape at its first forward (or from load_state_dict). "
            f"Call `forward` with a dummy batch to initialize the parameters before using them")


def _on_tape(name):
    def op(self, *args, **kwargs):
        if self.array is None:
            raise ValueError(_uninitialized(name))
        return getattr(self.as_tensor(), name)(*args, **kwargs)
    op.__name__ = name
    return op


# A Parameter in an expression is its tape tensor (see Parameter.as_tensor).
for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
              "__truediv__", "__rtruediv__", "__matmul__", "__rmatmul__", "__pow__",
              "__rpow__", "__neg__", "__getitem__", "__iter__", "__format__",
              "reshape", "view", "t", "transpose", "permute", "unsqueeze", "squeeze",
              "flatten", "sum", "mean", "max", "min", "abs", "exp", "log", "relu",
              "sigmoid", "tanh", "item", "tolist", "numpy", "detach", "clone", "size", "dim",
              "ndimension", "norm", "cumsum", "dot", "mv", "mm", "matmul", "maximum",
              "minimum", "all", "any"):
    setattr(Parameter, _name, _on_tape(_name))
Parameter.T = property(lambda self: self.as_tensor().T)


class FlatParams:
    """Parameters of one device and dtype packed into flat buffers: one for the data,
    one for the gradients, one per state entry (momentum, Adam's moments).

    Each parameter's ``data`` and ``grad`` and each of its state arrays become views
    of their slice, so writing into one writes the buffer. When something replaced
    a view (a ``load_state_dict`` of the optimizer, ``zero_grad(set_to_none=True)``,
    ``Module.to``), :meth:`adopt` copies the new array into the slice and puts the
    view back.
    """

    def __init__(self, params, states, keys):
        p0 = params[0].array
        xp = backend.get_array_module(p0)
        self.params = list(params)
        self.keys = tuple(keys)
        self.device, self.dtype = backend.device_of(p0), p0.dtype
        self.shapes = [tuple(p.array.shape) for p in params]
        bounds, n = [], 0
        for p in params:
            bounds.append((n, n + p.array.size))
            n += p.array.size
        self.array = xp.empty(n, dtype=p0.dtype)
        self.grad_array = xp.empty(n, dtype=p0.dtype)
        self.state = {k: xp.empty(n, dtype=p0.dtype) for k in self.keys}
        self._views = []
        for p, (a, b), st in zip(params, bounds, states):
            views = (self.array[a:b].reshape(p.array.shape),
                     self.grad_array[a:b].reshape(p.array.shape),
                     {k: self.state[k][a:b].reshape(p.array.shape) for k in self.keys})
            self._views.append(views)
        self.adopt(params, states)
        ref = weakref.ref(self)
        for i, p in enumerate(params):
            p._flat = (ref, i)  # lets Module.zero_grad clear the whole buffer at once

    def fits(self, params):
        """True when ``params`` are the packed ones, with the same shapes, device and dtype."""
        return (len(params) == len(self.params)
                and all(p is q for p, q in zip(params, self.params))
                and all(p.array is not None and tuple(p.array.shape) == s
                        and p.array.dtype == self.dtype
                        and backend.device_of(p.array) == self.device
                        for p, s in zip(params, self.shapes)))

    def adopt(self, params, states):
        """Copy any array that is not its view into the buffer, and restore the view."""
        for p, st, (d, g, views) in zip(params, states, self._views):
            if p.array is not d:
                d[...] = p.array
                p.array = d
            if p.grad_array is not g:
                if p.grad_array is None:
                    g.fill(0)
                else:
                    g[...] = p.grad_array
                p.grad_array = g
            for k in self.keys:
                if st[k] is not views[k]:
                    views[k][...] = st[k]
                    st[k] = views[k]

    def owns_grad(self, p, i):
        """True when p is the i-th packed parameter and its grad is still its view."""
        return i < len(self.params) and self.params[i] is p and p.grad_array is self._views[i][1]


def zero_grads(params):
    """Zero every gradient in place: one fill per flat buffer whose parameters are all
    here (see :class:`FlatParams`), one per tensor for the rest."""
    params = [p for p in params if p.grad_array is not None]
    members = {}
    for p in params:
        ref, i = getattr(p, "_flat", (None, 0))
        flat = ref() if ref is not None else None
        if flat is not None and flat.owns_grad(p, i):
            members.setdefault(id(flat), (flat, []))[1].append(p)
        else:
            p.grad_array[...] = 0
    for flat, owned in members.values():
        if len(owned) == len(flat.params):
            flat.grad_array.fill(0)
        else:
            for p in owned:
                p.grad_array[...] = 0


def parameter_tensor(p, name=None):
    """The leaf Tensor standing for Parameter p in graphs (its gradient is p's)."""
    t = getattr(p, "_tape_tensor", None)
    if t is None or t.array is not p.array:
        t = shares(p.array)
        t.requires_grad, t._param = True, p
        p._tape_tensor = t
    if name is not None:
        t.name = name
    return t
