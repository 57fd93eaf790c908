# Generated from notebooks/2.5_automatic_differentiation.ipynb by notebooks/build.py: edit those, not this file.

# # 2.5 Automatic Differentiation
#
# The code cells are the PyTorch cells of d2l section 2.5 as the book writes them
# (d2l-en's `autograd.md`, copied in `tests/d2l_chapters/`); only their import lines were
# changed (`scratchnet.port`: `import torch` became `import scratchnet as torch`, and so
# on). The text between them says what each cell shows and what scratchnet runs
# underneath. Cells headed *Underneath* are scratchnet's own additions, after the book's
# cells; so is the setup cell below.

# The import line, as the book writes it: `torch` is scratchnet here.

import scratchnet as torch

# ## 2.5.1 A Simple Function
#
# The book differentiates $y = 2\mathbf{x}^\top\mathbf{x}$ with respect to the column
# vector $\mathbf{x}$. `torch.arange(4.0)` makes a Tensor: a NumPy array (`x.array`) with
# the tape's bookkeeping around it.

x = torch.arange(4.0)
print(x)

# `requires_grad_(True)` makes `x` a leaf of the tape: every op on it from now on
# records a node. Its gradient is None until a backward writes one, as in PyTorch.

# Can also create x = torch.arange(4.0, requires_grad=True)
x.requires_grad_(True)
print(x.grad)  # The gradient is None by default

# `torch.dot` records one node, `DotBackward0`, and `2 * ...` records `MulBackward0`. The
# printed `grad_fn` is the last node: the one `backward()` starts from.

y = 2 * torch.dot(x, x)
print(y)

# ### Underneath: the graph `backward()` will walk
#
# `backward_order` lists the nodes in the order `backward()` runs them, and `plot_graph`
# draws them (ops as boxes, leaves as rounded boxes). With `numbers=True` each shows its
# value, the gradient that reaches it (computed on the side: `x.grad` stays as it is) and
# the line that made it. `x` enters `dot` twice, so the leaf sums two gradients:
# $2\mathbf{x}$ from each side, each times the 2 of `MulBackward0` above, is $4\mathbf{x}$.
# The 2 itself needs no gradient, and the last line says it is left out.

import scratchnet.autograd as ag
from IPython.display import Image

print('\n'.join(ag.backward_order(y, numbers=True)))
print(Image(filename=ag.plot_graph(y, 'autograd_dot.png', use_dot=False, numbers=True)))

y.backward()
print(x.grad)

# The gradient of $2\mathbf{x}^\top\mathbf{x}$ is $4\mathbf{x}$:

print(x.grad == 4 * x)

# A leaf's gradient accumulates over backward calls, as in PyTorch: the book zeroes it
# with `x.grad.zero_()` (in place: `x.grad` is a Tensor sharing the gradient's array)
# before the next one. The gradient of `x.sum()` is a vector of ones.

x.grad.zero_()  # Reset the gradient
y = x.sum()
y.backward()
print(x.grad)

# ## 2.5.2 Backward for Non-Scalar Variables
#
# `y = x * x` is a vector. `y.backward(gradient=v)` computes the vector-Jacobian product
# $\mathbf{v}^\top \partial \mathbf{y} / \partial \mathbf{x}$; with $\mathbf{v}$ all
# ones, that is the gradient of `y.sum()`.

x.grad.zero_()
y = x * x
y.backward(gradient=torch.ones(len(y)))  # Faster: y.sum().backward()
print(x.grad)

# ### Underneath: `gradient=` is the gradient coming from above
#
# The Jacobian of `x * x` is $\mathrm{diag}(2\mathbf{x})$, and each `v` takes a
# combination of its rows: the first unit vector gives the first row. `retain_graph=True`
# keeps what the nodes saved for a second backward (without it the first backward frees
# it).

x.grad.zero_()
y = x * x
y.backward(gradient=torch.tensor([1.0, 0.0, 0.0, 0.0]), retain_graph=True)
print(x.grad)  # 2 * x[0] in place 0, zeros elsewhere
x.grad.zero_()
y.backward(gradient=torch.tensor([0.0, 1.0, 1.0, 0.0]))
print(x.grad)

# ## 2.5.3 Detaching Computation
#
# `y.detach()` is a Tensor sharing `y`'s array with no node behind it: for the tape `u`
# is a constant, so the gradient of `z = u * x` with respect to `x` is `u`.

x.grad.zero_()
y = x * x
u = y.detach()
z = u * x

z.sum().backward()
print(x.grad == u)

# ### Underneath: where the graph stops
#
# In the graph of `z`, `u` is an input that needs no gradient: no edge leads from it back
# to `x * x`, and the last line names it among what the graph leaves out.

z = u * x
print('\n'.join(ag.backward_order(z.sum(), numbers=True)))
print(Image(filename=ag.plot_graph(z.sum(), 'autograd_detach.png', use_dot=False, numbers=True)))

# `y` itself was not detached: its own graph still leads to `x`.

x.grad.zero_()
y.sum().backward()
print(x.grad == 2 * x)

# ## 2.5.4 Gradients and Python Control Flow
#
# `f` doubles `b` until its norm reaches 1000, then maybe multiplies it by 100. The tape
# records only the ops that ran, so whatever path Python took, `d` is `a` times a
# constant, and the gradient is that constant, `d / a`.

def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c

a = torch.randn(size=(), requires_grad=True)
d = f(a)
d.backward()

print(a.grad == d / a)

# ### Underneath: the tape recorded one path
#
# One `MulBackward0` per doubling that the `while` loop ran, and no node for the tests
# that decided it: `b.norm() < 1000` and `b.sum() > 0` are comparisons, which need no
# gradient.

order = ag.backward_order(f(a))
print(len(order), 'nodes:', sorted({line.split()[1] for line in order}))
print('the constant d / a =', float(d / a))

# ### Underneath: the same gradients on PyTorch
#
# The gradients of this section again, in float64, on scratchnet's tape and on PyTorch
# (`pytorch` below is the real one, when it is installed).

import numpy as np

try:
    import torch as pytorch
except ImportError:
    pytorch = None
    print('PyTorch is not installed (pip install torch): nothing to compare with')


def gradients(lib):
    x = lib.arange(4.0, dtype=lib.float64, requires_grad=True)
    grads = []
    for make in (lambda x: 2 * lib.dot(x, x), lambda x: x.sum(),
                 lambda x: (x * x).sum(), lambda x: ((x * x).detach() * x).sum()):
        x.grad = None
        make(x).backward()
        grads.append(np.array(x.grad.tolist()))
    return grads


if pytorch is not None:
    for ours, theirs in zip(gradients(torch), gradients(pytorch)):
        print(ours, 'largest difference from PyTorch:', np.abs(ours - theirs).max())
