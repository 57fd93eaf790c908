# Generated from notebooks/exercises.ipynb by notebooks/build.py: edit those, not this file.

# # Exercises 7.2.8, 7.3.4 and 7.4.5
#
# The seed notebook's answers to three of d2l's exercises (7.1.6 is in the 7.1 notebook),
# as written; only their import lines were changed (`scratchnet.port`).

# ## 7.2.8 A directional edge detector
#
# A 3x3 kernel that takes the difference between the columns right and left of each
# pixel. `unsqueeze` adds the output and input channel axes; `F.conv2d` is
# `scratchnet.nn.functional.conv2d`, which on Tensors records one node whose
# backward is the convolution's.

import scratchnet as torch
from scratchnet.nn import functional as F

# Define a directional edge-detection kernel
kernel = torch.tensor([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])  # Sobel-like kernel
kernel = kernel.unsqueeze(0).unsqueeze(0)  # Shape (1, 1, 3, 3)

# Image with diagonal edges
image = torch.randn(1, 1, 5, 5)

# Apply convolution
edge_detected = F.conv2d(image, kernel, padding=1)
print("Edge-detected output shape: ", edge_detected.shape)

# ## 7.3.4 Kernel (3, 5), padding (0, 1), stride (3, 4)
#
# On a 10x10 image: floor((10 - 3) / 3) + 1 = 3 rows and floor((10 + 2 - 5) / 4) + 1 = 2
# columns.

import scratchnet as torch

# Define a convolutional layer with specific kernel size, padding, and stride
conv2d = torch.nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))

# Input tensor (random image)
X = torch.rand(size=(1, 1, 10, 10))

# Apply convolution
output = conv2d(X)
print("Output shape with kernel (3, 5), padding (0, 1), and stride (3, 4):", output.shape)

# ## 7.4.5 Two stacked convolutions
#
# Two 3x3 convolutions with padding 1 keep the 10x10 size.

import scratchnet as torch

# Define two convolution kernels
conv1 = torch.nn.Conv2d(1, 1, kernel_size=3, padding=1)
conv2 = torch.nn.Conv2d(1, 1, kernel_size=3, padding=1)

# Input tensor
X = torch.rand(size=(1, 1, 10, 10))

# Apply convolutions
output1 = conv1(X)
output2 = conv2(output1)

print("Output shape after applying two convolutions: ", output2.shape)

# ### Underneath: the receptive field
#
# `scratchnet.receptive.receptive_fields` follows each layer's geometry: after the two
# 3x3 convolutions every output sees a 5x5 patch of the input, as after one 5x5
# convolution, with 18 weights instead of 25.

import scratchnet as sn

print(sn.receptive.receptive_fields(torch.nn.Sequential(conv1, conv2), (10, 10)))
