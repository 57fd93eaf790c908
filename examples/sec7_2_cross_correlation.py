# Generated from notebooks/7.2_convolutions_for_images.ipynb by notebooks/build.py: edit those, not this file.

# # 7.2 Convolutions for Images
#
# The code cells are the seed notebook's cells for d2l 1.0.3 section 7.2, as written;
# only their import lines were changed (`scratchnet.port`: `import torch` became
# `import scratchnet as torch`, and so on). The text between them says what each cell
# shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
# own additions, after the book's cells.

# The three import lines are all a student changes: `torch` is scratchnet, `nn` its
# layers, `d2l` its copy of d2l 1.0's helpers (`scratchnet/d2l.py`).

import scratchnet as torch
from scratchnet import nn
from scratchnet import d2l

# ## 7.2.1 The Cross-Correlation Operation
#
# `corr2d` slides the kernel over the input and sums the products. `torch.zeros` makes a
# scratchnet Tensor (a NumPy array inside); nothing here asks for a gradient, so
# `Y[i, j] = ...` writes into that array and nothing is recorded on the tape.

def corr2d(X, K):
    """Compute 2D cross-correlation."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y

# The book's example: a 2x2 kernel fits 2x2 times in a 3x3 input.

X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
print(corr2d(X, K))

# ## 7.2.2 Convolutional Layers
#
# The book's `Conv2D` defines only `forward`. scratchnet runs such a module on the tape:
# its `nn.Parameter`s are leaves that require gradients, every op of `corr2d` on them
# records a node, and `backward()` reaches `weight` and `bias` as in PyTorch.

class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias

# ## 7.2.3 Object Edge Detection in Images
#
# A 6x8 image: black (0) in the four middle columns, white (1) elsewhere.

X = torch.ones((6, 8))
X[:, 2:6] = 0
print(X)

# The kernel [1, -1] takes the difference of horizontal neighbours.

K = torch.tensor([[1.0, -1.0]])

# 1 marks the edge from white to black, -1 the edge from black to white.

Y = corr2d(X, K)
print(Y)

# On the transposed image the edges are horizontal: this kernel sees none.

print(corr2d(X.t(), K))

# ## 7.2.4 Learning a Kernel
#
# `nn.LazyConv2d` becomes an `nn.Conv2d` at its first call. Called on a Tensor it records
# one node on the tape, whose backward is `Conv2d.backward`; `l.sum().backward()` runs the
# backwards of the sum, the square and the difference, then that node, which fills
# `conv2d.weight.grad`. The update writes through `conv2d.weight.data`, a Tensor that
# shares the weight's array and is cut from the graph, as PyTorch's is.

# Construct a two-dimensional convolutional layer with 1 output channel and a
# kernel of shape (1, 2). For the sake of simplicity, we ignore the bias here
conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)

# The two-dimensional convolutional layer uses four-dimensional input and
# output in the format of (example, channel, height, width), where the batch
# size (number of examples in the batch) and the number of channels are both 1
X = X.reshape((1, 1, 6, 8))
Y = Y.reshape((1, 1, 6, 7))
lr = 3e-2  # Learning rate

for i in range(10):
    Y_hat = conv2d(X)
    l = (Y_hat - Y) ** 2
    conv2d.zero_grad()
    l.sum().backward()
    # Update the kernel
    conv2d.weight.data[:] -= lr * conv2d.weight.grad
    if (i + 1) % 2 == 0:
        print(f'epoch {i + 1}, loss {l.sum():.3f}')

# The learned kernel is close to [1, -1]. As in PyTorch, `.data` is a Tensor sharing the
# weight's storage, so it prints as the book's does; the NumPy array underneath is
# `conv2d.weight.array`.

print(conv2d.weight.data.reshape((1, 2)))

# ### Underneath: what `l.sum().backward()` runs
#
# `scratchnet.autograd.backward_order` lists the recorded nodes in the order backward runs
# them: the sum, the square, the difference, and the convolution as one node.

import scratchnet.autograd as ag

l = (conv2d(X) - Y) ** 2
print('\n'.join(ag.backward_order(l.sum())))

# ### Underneath: the same loop by manual backprop
#
# On NumPy arrays (`X.array` is the array inside the Tensor) a layer runs its own forward
# and records nothing. The gradient of `l.sum()` with respect to `Y_hat` is
# `2 * (Y_hat - Y)`; `conv2d.backward` turns it into `conv2d.weight.grad`, as the tape's
# node did above.

conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
X_, Y_ = X.array, Y.array
for i in range(10):
    Y_hat = conv2d(X_)
    l = (Y_hat - Y_) ** 2
    conv2d.zero_grad()
    conv2d.backward(2 * (Y_hat - Y_))  # d l.sum() / d Y_hat
    conv2d.weight.array[:] -= lr * conv2d.weight.grad_array
    if (i + 1) % 2 == 0:
        print(f'epoch {i + 1}, loss {l.sum():.3f}')
print(conv2d.weight.array.reshape((1, 2)))

# ### Underneath: the readable convolution in `scratchnet.teach`
#
# `Conv2d` runs the fast ops of `scratchnet/ops/`; `scratchnet.teach` has the same forward
# and backward as short functions to read: im2col (every window as a column), then one
# matrix product. Both give the same kernel gradient.

from scratchnet import teach

conv2d.zero_grad()
Y_hat = conv2d(X_)
conv2d.backward(2 * (Y_hat - Y_))
Y_hat2, cache = teach.conv2d_forward(X_, conv2d.weight.array, None)
gX, gW, gb = teach.conv2d_backward(2 * (Y_hat2 - Y_), cache)
print('Conv2d.backward:      ', conv2d.weight.grad_array.reshape(-1))
print('teach.conv2d_backward:', gW.reshape(-1))

# ### Underneath: `sn.corr2d`
#
# `scratchnet.reference` keeps the book's loops on plain NumPy arrays (`sn.corr2d`,
# `sn.pool2d`, ...); the tests hold the fast layers equal to them.

import scratchnet as sn

print(sn.corr2d(X_[0, 0], K.array))
