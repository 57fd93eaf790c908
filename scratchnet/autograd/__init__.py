"""A small autograd tape over scratchnet's ops, to show what PyTorch's autograd does.

    >>> import scratchnet.autograd as ag
    >>> x = ag.Tensor(-4.0, requires_grad=True)  # micrograd's test_sanity_check
    >>> z = 2 * x + 2 + x
    >>> q = z.relu() + z * x
    >>> h = (z * z).relu()
    >>> y = h + q + q * x
    >>> y.backward()
    >>> y, x.grad                # as PyTorch gives them
    (tensor(-20., grad_fn=<AddBackward0>), tensor(46.))

Every operation on a Tensor that requires grad records a :class:`Node` (the op's
name, its inputs and a function from the output's gradient to the inputs'),
define-by-run. ``backward()`` visits the nodes in reverse topological order, so
a node runs only when every use of its output has sent its gradient back; where
a tensor was used twice the two gradients are summed (the residual connection).
Leaves (tensors made by the user) accumulate into ``.grad`` as PyTorch's do; the
gradients of intermediate tensors are dropped once used, and each node forgets
what it saved, so a second ``backward()`` through the same graph is refused.

Layers on the tape: a scratchnet model called on a Tensor records one node per
layer (Conv2d, BatchNorm2d, ReLU, ...), whose backward is that layer's own
``backward``: the same ``Parameter.grad`` fields fill as with manual backprop.
Composite modules (Sequential, Residual, the models) just call their children,
so their structure, the residual sum included, is what the tape records.
``scratchnet.nn.functional`` has the same ops under torch.nn.functional's names. The
tape adds order, not new maths: every backward is one in ``scratchnet.ops``.

The floor, file by file: tensor.py (Tensor, Node, record, the backward engine),
_ops.py (the operators and methods), parameter.py (Parameter, a leaf), modules.py
(modules called on Tensors), printing.py, graph.py. It imports backend and ops only;
scratchnet.nn, one floor up, imports it.
"""
from ..backend import no_grad
from . import _ops  # noqa: F401  (adds the operators to Tensor)
from .graph import backward_order, plot_graph, to_dot
from .modules import call_module, has_backward
from .parameter import FlatParams, Parameter, parameter_tensor, zero_grads
from .tensor import (Node, Size, Tensor, record, run_backward, shares, to_tensor,
                     topological_order)

__all__ = ["Tensor", "Size", "Node", "Parameter", "no_grad", "backward_order", "to_dot",
           "plot_graph", "record", "run_backward", "to_tensor", "topological_order",
           "call_module", "has_backward", "parameter_tensor", "FlatParams", "zero_grads",
           "shares"]
