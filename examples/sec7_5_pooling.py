# Generated from notebooks/7.5_pooling.ipynb by notebooks/build.py: edit those, not this file.

# # 7.5 Pooling
#
# The code cells are the seed notebook's cells for d2l 1.0.3 section 7.5, as written;
# only their import lines were changed (`scratchnet.port`: `import torch` became
# `import scratchnet as torch`, and so on). The text between them says what each cell
# shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
# own additions, after the book's cells.

# The imports, as in 7.2.

import scratchnet as torch
from scratchnet import nn
from scratchnet import d2l

# ## 7.5.1 Maximum Pooling and Average Pooling
#
# The book's `pool2d` is `corr2d` with the sum of products replaced by the window's
# maximum or mean.

def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y

# Maximum pooling with a 2x2 window.

X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
print(pool2d(X, (2, 2)))

# Average pooling.

print(pool2d(X, (2, 2), 'avg'))

# ## 7.5.2 Padding and Stride
#
# A 4x4 input with batch and channel axes; `torch.arange` and `reshape` are Tensor ops as
# in PyTorch.

X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
print(X)

# `nn.MaxPool2d(3)`: the stride defaults to the window, so one 3x3 window fits.

pool2d = nn.MaxPool2d(3)
# Pooling has no model parameters, hence it needs no initialization
print(pool2d(X))

# Padding 1 and stride 2: four windows. A padded pixel never wins the maximum.

pool2d = nn.MaxPool2d(3, padding=1, stride=2)
print(pool2d(X))

# A 2x3 window, with its own stride and padding per axis.

pool2d = nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))
print(pool2d(X))

# ## 7.5.3 Multiple Channels
#
# `torch.cat` joins X and X + 1 along the channel axis.

X = torch.cat((X, X + 1), 1)
print(X)

# Pooling works on each channel alone: two channels in, two out.

pool2d = nn.MaxPool2d(3, padding=1, stride=2)
print(pool2d(X))

# ### Underneath: max pooling's backward
#
# `MaxPool2d` keeps where each window's maximum was; its `backward` sends each output's
# gradient there and nowhere else. On the arrays, with a gradient of ones, the 1s mark the
# four winners in each channel (`scratchnet.teach.max_pool2d_backward` is the readable
# version).

import numpy as np

Y = pool2d(X.array)
print(pool2d.backward(np.ones_like(Y)))
