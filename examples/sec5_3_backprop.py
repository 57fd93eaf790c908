# Generated from notebooks/5.3_backprop.ipynb by notebooks/build.py: edit those, not this file.

# # 5.3 Forward Propagation, Backward Propagation, and Computational Graphs
#
# Section 5.3 of d2l has no code: it derives backpropagation for a one-hidden-layer MLP
# with weight decay, by hand. Here are its equations as code, three ways: the backward
# written by hand on NumPy arrays, scratchnet's tape, and PyTorch, side by side. This
# notebook is scratchnet's own (no cell of the book to port).
#
# The book's network, for one example $\mathbf{x} \in \mathbb{R}^d$ with label $y$
# (no biases, as in the book):
#
# $$\mathbf{z} = \mathbf{W}^{(1)} \mathbf{x}, \quad \mathbf{h} = \phi(\mathbf{z}), \quad
# \mathbf{o} = \mathbf{W}^{(2)} \mathbf{h}, \quad L = l(\mathbf{o}, y), \quad
# s = \frac{\lambda}{2}\left(\|\mathbf{W}^{(1)}\|_F^2 + \|\mathbf{W}^{(2)}\|_F^2\right),
# \quad J = L + s.$$
#
# Here $\phi$ is ReLU and $l$ the cross-entropy loss of the softmax of $\mathbf{o}$.

import numpy as np
import scratchnet as torch
import scratchnet.autograd as ag
from IPython.display import Image

rng = np.random.default_rng(0)
d, h, q, lambd = 4, 5, 3, 0.1
x = rng.standard_normal(d)
y = 2
W1 = rng.standard_normal((h, d)) * 0.5
W2 = rng.standard_normal((q, h)) * 0.5

# ## 5.3.1 Forward Propagation
#
# The forward pass, step by step as the equations write it, keeping every intermediate:
# the backward pass needs them.

z = W1 @ x
hid = np.maximum(z, 0)
o = W2 @ hid
p = np.exp(o - o.max()) / np.exp(o - o.max()).sum()  # softmax
L = -np.log(p[y])
s = lambd / 2 * ((W1 ** 2).sum() + (W2 ** 2).sum())
J = L + s
print(f'L = {L:.6f}, s = {s:.6f}, J = {J:.6f}')

# ## 5.3.3 Backpropagation, by hand
#
# The chain rule from $J$ back to the parameters, in the book's order. The gradient of
# cross-entropy after softmax with respect to $\mathbf{o}$ is $\mathrm{softmax}(\mathbf{o})
# - \mathrm{onehot}(y)$.
#
# $$\frac{\partial J}{\partial \mathbf{W}^{(2)}} = \frac{\partial J}{\partial \mathbf{o}}
# \mathbf{h}^\top + \lambda \mathbf{W}^{(2)}, \quad
# \frac{\partial J}{\partial \mathbf{h}} = {\mathbf{W}^{(2)}}^\top
# \frac{\partial J}{\partial \mathbf{o}}, \quad
# \frac{\partial J}{\partial \mathbf{z}} = \frac{\partial J}{\partial \mathbf{h}} \odot
# \phi'(\mathbf{z}), \quad
# \frac{\partial J}{\partial \mathbf{W}^{(1)}} = \frac{\partial J}{\partial \mathbf{z}}
# \mathbf{x}^\top + \lambda \mathbf{W}^{(1)}.$$

dJ_do = p.copy()
dJ_do[y] -= 1
dJ_dW2 = np.outer(dJ_do, hid) + lambd * W2
dJ_dh = W2.T @ dJ_do
dJ_dz = dJ_dh * (z > 0)  # ReLU's derivative: 1 where z > 0
dJ_dW1 = np.outer(dJ_dz, x) + lambd * W1
print(dJ_dW1)
print(dJ_dW2)

# ## 5.3.2 The computational graph, on the tape
#
# The same forward on scratchnet Tensors: `W1` and `W2` are leaves that require
# gradients, and every op records a node. The picture is the book's computational graph
# (its Figure 5.3.1), as the tape recorded it: `W1` and `W2` each feed two paths, the
# network and the penalty, so each sums two gradients. (`backward_order` and the picture
# name the nodes as scratchnet does, without PyTorch's trailing 0; a leaf's `name` is
# scratchnet's own label for the pictures.)

import scratchnet.nn.functional as F

tW1 = torch.tensor(W1, requires_grad=True)
tW2 = torch.tensor(W2, requires_grad=True)
tW1.name, tW2.name = 'W1', 'W2'  # scratchnet's: how the pictures label a leaf
tx = torch.tensor(x)
tz = torch.mv(tW1, tx)
th = torch.relu(tz)
to = torch.mv(tW2, th)
tL = F.cross_entropy(to.reshape(1, -1), torch.tensor([y]))
ts = lambd / 2 * ((tW1 ** 2).sum() + (tW2 ** 2).sum())
tJ = tL + ts
print('\n'.join(ag.backward_order(tJ)))
print(Image(filename=ag.plot_graph(tJ, 'backprop_mlp.png', use_dot=False)))

# `backward()` runs those nodes in that order, each one's backward being one of the
# equations above.

tJ.backward()
print('J, by hand and on the tape:', J, float(tJ))
print('largest |dJ/dW1, tape - by hand|:', np.abs(tW1.grad.array - dJ_dW1).max())
print('largest |dJ/dW2, tape - by hand|:', np.abs(tW2.grad.array - dJ_dW2).max())

# ## Beside PyTorch
#
# The same network on PyTorch (`pytorch` is the real one, when it is installed), in
# float64: its autograd gives the same gradients.

try:
    import torch as pytorch
except ImportError:
    pytorch = None
    print('PyTorch is not installed (pip install torch): nothing to compare with')

if pytorch is not None:
    pW1 = pytorch.tensor(W1, requires_grad=True)
    pW2 = pytorch.tensor(W2, requires_grad=True)
    po = pW2 @ pytorch.relu(pW1 @ pytorch.tensor(x))
    pL = pytorch.nn.functional.cross_entropy(po.reshape(1, -1), pytorch.tensor([y]))
    pJ = pL + lambd / 2 * ((pW1 ** 2).sum() + (pW2 ** 2).sum())
    pJ.backward()
    print('largest |dJ/dW1, PyTorch - by hand|:', np.abs(pW1.grad.numpy() - dJ_dW1).max())
    print('largest |dJ/dW2, PyTorch - by hand|:', np.abs(pW2.grad.numpy() - dJ_dW2).max())

# ## 5.3.4 Training Neural Networks: what the memory holds
#
# To run the backward pass, the forward pass keeps its intermediates: here `z`, `hid`,
# `o` and `p` by hand, and on the tape the arrays each node saved. That is why training
# needs more memory than prediction, which can drop each intermediate once the next
# layer has it. After `backward()` the tape frees what its nodes saved (unless
# `retain_graph=True`): a second backward has nothing to run on.

try:
    tJ.backward()
except RuntimeError as e:
    print('RuntimeError:', e)
