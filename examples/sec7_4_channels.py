# Generated from notebooks/7.4_multiple_input_and_output_channels.ipynb by notebooks/build.py: edit those, not this file.

# # 7.4 Multiple Input and Multiple Output Channels
#
# The code cells are the seed notebook's cells for d2l 1.0.3 section 7.4, as written;
# only their import lines were changed (`scratchnet.port`: `import torch` became
# `import scratchnet as torch`, and so on). The text between them says what each cell
# shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
# own additions, after the book's cells.

# `d2l.corr2d` is scratchnet.d2l's copy of the book's loop from 7.2.

import scratchnet as torch
from scratchnet import d2l

# ## 7.4.1 Multiple Input Channels
#
# One 2-D cross-correlation per input channel, summed.

def corr2d_multi_in(X, K):
    # Iterate through the 0th dimension (channel) of K first, then add them up
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))

# Two input channels and a two-channel kernel; the corner is
# (0·0 + 1·1 + 3·2 + 4·3) + (1·1 + 2·2 + 4·3 + 5·4) = 19 + 37 = 56.

X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
               [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])

print(corr2d_multi_in(X, K))

# ## 7.4.2 Multiple Output Channels
#
# One multi-input cross-correlation per output channel, stacked with `torch.stack` (a
# Tensor op, as in PyTorch).

def corr2d_multi_in_out(X, K):
    # Iterate through the 0th dimension of K, and each time, perform
    # cross-correlation operations with input X. All of the results are
    # stacked together
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)

# Three output channels: the kernels K, K + 1 and K + 2.

K = torch.stack((K, K + 1, K + 2), 0)
print(K.shape)

# The first channel is 7.4.1's result; each next one adds the window's sum over both
# input channels (20 in the corner).

print(corr2d_multi_in_out(X, K))

# ## 7.4.3 1x1 Convolutional Layer
#
# A 1x1 convolution mixes the channels at each pixel alone: a matrix product of the
# (c_o, c_i) kernel with the (c_i, h·w) input.

def corr2d_multi_in_out_1x1(X, K):
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    # Matrix multiplication in the fully connected layer
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, h, w))

# Both ways agree on random inputs: the `assert` holds, and the cell prints nothing.

X = torch.normal(0, 1, (3, 3, 3))
K = torch.normal(0, 1, (2, 3, 1, 1))
Y1 = corr2d_multi_in_out_1x1(X, K)
Y2 = corr2d_multi_in_out(X, K)
assert float(torch.abs(Y1 - Y2).sum()) < 1e-6

# ### Underneath: the same 1x1 convolution as `nn.Conv2d`
#
# scratchnet's `Conv2d` computes every convolution that way: im2col, then one matrix
# product. Given the same kernel, its output on the arrays matches `Y1` to float32
# rounding.

from scratchnet import nn

conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
conv.weight.array[...] = K.array
Y3 = conv(X.array[None])[0]
print(float(abs(Y3 - Y1.array).max()))
