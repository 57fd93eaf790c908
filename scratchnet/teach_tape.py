"""The tape, readable: :mod:`scratchnet.autograd` in one short file, NumPy only
(docs/tape.md builds it step by step).

An op on a Tensor that requires grad gives its output a ``grad_fn``: a :class:`Node`
with the op's inputs and a function from dL/d(output) to one dL/d(input) per input.
``backward()`` runs the tensors in topological order, root first, so a tensor passes
its gradient on only once every use of it has sent its part (the parts are summed).
Leaves add into ``.grad`` across calls, as in PyTorch; intermediate gradients are
dropped; each node frees what it saved as it runs, so a second backward is refused.

The real tape, scratchnet/autograd/tensor.py, does each step in a function of the
same name: ``Node`` and ``record``; ``topological_order`` (without recursion, which a
deep graph would overflow); ``run_backward`` (the sums, ``Node.free``, the refusal);
``_accumulate`` (a leaf's ``.grad``). Its ops and ``unbroadcast`` are in
autograd/_ops.py. It adds arrays on the GPU (CuPy); dtypes (float32 by default, with
PyTorch's promotion); layers as nodes whose backward is the layer's own, with
Parameters as leaves; writes into a tensor as CopySlicesBackward nodes; and
``retain_grad``, ``no_grad``, ``retain_graph``.
"""
import numpy as np


def unbroadcast(g, shape):
    """Sum g over the axes broadcasting added or stretched, back to ``shape``: a value
    that was copied to many places gets the sum of their gradients."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


class Node:
    """One recorded op: its input Tensors and ``backward(gy) -> a gradient per input``.
    ``backward`` keeps what the op saved (its inputs' values); None once it has run."""

    def __init__(self, name, inputs, backward):
        self.name, self.inputs, self.backward = name, inputs, backward

    def __repr__(self):
        return f"<{self.name}>"


def lift(v):
    """A Tensor for v: numbers and arrays become constants (leaves without grad)."""
    return v if isinstance(v, Tensor) else Tensor(v)


def record(name, data, inputs, backward):
    """The output Tensor of an op; it gets a Node if any input requires grad."""
    out = Tensor(data)
    if any(t.requires_grad for t in inputs):
        out.requires_grad, out.grad_fn = True, Node(name, inputs, backward)
    return out


def topological_order(root):
    """The tensors root was made from that require grad, root first, each tensor before
    every tensor it was made from (a depth-first search: a tensor is added after all
    its inputs, and the list is reversed)."""
    order, seen = [], set()

    def visit(t):
        if id(t) not in seen:
            seen.add(id(t))
            for inp in (t.grad_fn.inputs if t.grad_fn else ()):
                if inp.requires_grad:
                    visit(inp)
            order.append(t)
    visit(root)
    return order[::-1]


class Tensor:
    """A float64 NumPy array (a number is a 0-d array) with ``grad`` and ``grad_fn``."""

    def __init__(self, data, requires_grad=False):
        self.data = np.asarray(data, dtype=np.float64)
        self.requires_grad, self.grad, self.grad_fn = requires_grad, None, None

    def __repr__(self):
        return f"Tensor({self.data}, grad_fn={self.grad_fn})"

    def __len__(self):
        return len(self.data)

    def detach(self):
        """The same array as a new leaf without grad: the graph stops here."""
        return Tensor(self.data)

    def backward(self, gradient=None):
        """dL/d(leaf) for every leaf that requires grad, L being this tensor (or the
        sum of this tensor times ``gradient``, PyTorch's vector-Jacobian product)."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input of "
                               "the ops that made it had requires_grad=True)")
        g = np.ones_like(self.data) if gradient is None else lift(gradient).data
        order = topological_order(self)
        if any(t.grad_fn is not None and t.grad_fn.backward is None for t in order):
            raise RuntimeError("backward: trying to go backward through the graph a second "
                               "time; the first backward() freed what the ops saved "
                               "(compute the forward again)")
        grads = {id(self): g}
        for t in order:
            gy = grads.pop(id(t))  # complete: every use of t has run before it
            if t.grad_fn is None:  # a leaf: its .grad adds up over backward calls
                t.grad = gy.copy() if t.grad is None else t.grad + gy
                continue
            gins = t.grad_fn.backward(gy)
            t.grad_fn.backward = None  # free what the op saved
            for inp, gin in zip(t.grad_fn.inputs, gins):
                if inp.requires_grad:  # a tensor used twice: the gradients add up
                    gin = unbroadcast(gin, inp.data.shape)
                    grads[id(inp)] = grads[id(inp)] + gin if id(inp) in grads else gin

    # Each op: its forward, and its backward from gy = dL/d(output).

    def __add__(self, other):
        other = lift(other)
        return record("AddBackward", self.data + other.data, (self, other), lambda g: (g, g))

    def __sub__(self, other):
        other = lift(other)
        return record("SubBackward", self.data - other.data, (self, other), lambda g: (g, -g))

    def __mul__(self, other):
        other = lift(other)
        a, b = self.data, other.data
        return record("MulBackward", a * b, (self, other), lambda g: (g * b, g * a))

    def __truediv__(self, other):
        other = lift(other)
        a, b = self.data, other.data
        y = a / b  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -y/b
        return record("DivBackward", y, (self, other), lambda g: (g / b, -g * y / b))

    def __pow__(self, n):
        """x ** n for a number n: d(x^n)/dx = n x^(n-1)."""
        x, n = self.data, np.float64(n)
        return record("PowBackward", x ** n, (self,), lambda g: (g * n * x ** (n - 1),))

    __radd__, __rmul__ = __add__, __mul__

    def __rsub__(self, other):
        return lift(other) - self

    def __rtruediv__(self, other):
        return lift(other) / self

    def __neg__(self):
        return record("NegBackward", -self.data, (self,), lambda g: (-g,))

    def relu(self):
        y = np.maximum(self.data, 0)  # the slope at 0 is taken as 0, as in PyTorch
        return record("ReluBackward", y, (self,), lambda g: (g * (y > 0),))

    def tanh(self):
        y = np.tanh(self.data)
        return record("TanhBackward", y, (self,), lambda g: (g * (1 - y * y),))

    def exp(self):
        y = np.exp(self.data)
        return record("ExpBackward", y, (self,), lambda g: (g * y,))

    def sum(self):
        """The sum of every entry: each entry's gradient is the output's."""
        shape = self.data.shape
        return record("SumBackward", self.data.sum(), (self,),
                      lambda g: (np.broadcast_to(g, shape).copy(),))

    def mean(self):
        return self.sum() / self.data.size

    def dot(self, other):
        """The inner product of two 1-D tensors: d(a . b)/da = b, d(a . b)/db = a."""
        a, b = self.data, other.data
        return record("DotBackward", a.dot(b), (self, other), lambda g: (g * b, g * a))

    def norm(self):
        return (self * self).sum() ** 0.5

    def __lt__(self, other):  # comparisons give plain booleans, off the tape
        return self.data < lift(other).data

    def __gt__(self, other):
        return self.data > lift(other).data
