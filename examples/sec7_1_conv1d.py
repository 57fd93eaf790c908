# Generated from notebooks/7.1_from_fully_connected_layers_to_convolutions.ipynb by notebooks/build.py: edit those, not this file.

# # 7.1 From Fully Connected Layers to Convolutions
#
# Section 7.1 of d2l has no code: it derives the convolutional layer from a fully
# connected one. Its steps in the seed's formulas, then exercise 7.1.6, the seed's code
# with only its import lines changed.

# ## 7.1.2 Constraining the MLP
#
# A fully connected layer from an image $\mathbf{X}$ to a hidden image $\mathbf{H}$ has a
# weight for every pair of pixels; written with offsets $k = i + a$, $l = j + b$:
#
# $$[\mathbf{H}]_{i,j} = [\mathbf{U}]_{i,j}
#     + \sum_{a} \sum_{b} [\mathbf{V}]_{i,j,a,b} [\mathbf{X}]_{i+a,j+b}.$$

# ### 7.1.2.1 Translation Invariance
#
# A shifted input should give a shifted $\mathbf{H}$, so $\mathbf{V}$ and $\mathbf{U}$ may
# not depend on $(i, j)$:
#
# $$[\mathbf{H}]_{i,j} = u + \sum_{a} \sum_{b} [\mathbf{V}]_{a,b} [\mathbf{X}]_{i+a,j+b}.$$

# ### 7.1.2.2 Locality
#
# Only pixels near $(i, j)$ matter: $|a|, |b| \le \Delta$. What is left is a convolutional
# layer with the kernel $\mathbf{V}$, $(2\Delta + 1)^2$ weights in all:
#
# $$[\mathbf{H}]_{i,j} = u + \sum_{a=-\Delta}^{\Delta} \sum_{b=-\Delta}^{\Delta}
#     [\mathbf{V}]_{a,b} [\mathbf{X}]_{i+a,j+b}.$$

# ## 7.1.4 Channels
#
# With input channels $c$ and output channels $d$ the kernel gets two more axes. This is
# what `nn.Conv2d` computes; its weight is laid out as (d, c, a, b):
#
# $$[\mathbf{H}]_{i,j,d} = \sum_{a=-\Delta}^{\Delta} \sum_{b=-\Delta}^{\Delta} \sum_{c}
#     [\mathbf{V}]_{a,b,c,d} [\mathbf{X}]_{i+a,j+b,c}.$$

# ## 7.1.6 Exercise: a 1-D convolution over an audio signal
#
# The same layer along one axis. `torch.nn.Conv1d` is scratchnet's `nn.Conv1d`, with
# PyTorch's arguments; called on a Tensor it records one node on the autograd tape, whose
# backward is `Conv1d.backward`.

import scratchnet as torch
from scratchnet.nn import functional as F

# Create a 1D convolution for audio signal
audio_signal = torch.randn(1, 1, 100)  # Batch size 1, 1 channel, length 100
conv1d = torch.nn.Conv1d(in_channels=1, out_channels=1, kernel_size=3, stride=1, padding=1)

# Apply convolution
output_signal = conv1d(audio_signal)
print("Audio signal after convolution: ", output_signal.shape)

# ### Underneath: the tape
#
# `backward()` on the output runs the one recorded node, that is `Conv1d.backward`, which
# fills the layer's `weight.grad`: as in PyTorch, a Tensor of the weight's shape, (out,
# in, k), sharing the array that `Conv1d.backward` wrote into.

output_signal.sum().backward()
print(conv1d.weight.grad)
