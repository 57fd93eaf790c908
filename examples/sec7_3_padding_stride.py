# Generated from notebooks/7.3_padding_and_stride.ipynb by notebooks/build.py: edit those, not this file.

# # 7.3 Padding and Stride
#
# The code cells are the seed notebook's cells for d2l 1.0.3 section 7.3, as written;
# only their import lines were changed (`scratchnet.port`: `import torch` became
# `import scratchnet as torch`, and so on). The text between them says what each cell
# shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
# own additions, after the book's cells.

# `nn.LazyConv2d` is `nn.Conv2d` with its number of input channels read from its first
# input.

import scratchnet as torch
from scratchnet import nn

# ## 7.3.1 Padding
#
# `comp_conv2d` adds the batch and channel axes, runs the layer and strips them. A 3x3
# kernel with one row and column of zeros on each side keeps the 8x8 size. `conv2d(X)` runs
# `Conv2d.forward`: every padded window copied into a column (im2col), then one matrix
# product.

# We define a helper function to calculate convolutions. It initializes the
# convolutional layer weights and performs corresponding dimensionality
# elevations and reductions on the input and output
def comp_conv2d(conv2d, X):
    # (1, 1) indicates that batch size and the number of channels are both 1
    X = X.reshape((1, 1) + X.shape)
    Y = conv2d(X)
    # Strip the first two dimensions: examples and channels
    return Y.reshape(Y.shape[2:])

# 1 row and column is padded on either side, so a total of 2 rows or columns
# are added
conv2d = nn.LazyConv2d(1, kernel_size=3, padding=1)
X = torch.rand(size=(8, 8))
print(comp_conv2d(conv2d, X).shape)

# A 5x3 kernel with padding (2, 1) keeps the size too: (k - 1) / 2 on each side.

# We use a convolution kernel with height 5 and width 3. The padding on either
# side of the height and width are 2 and 1, respectively
conv2d = nn.LazyConv2d(1, kernel_size=(5, 3), padding=(2, 1))
print(comp_conv2d(conv2d, X).shape)

# ## 7.3.2 Stride
#
# With stride 2 the window moves two pixels at a time: floor((8 + 2 - 3) / 2) + 1 = 4.

conv2d = nn.LazyConv2d(1, kernel_size=3, padding=1, stride=2)
print(comp_conv2d(conv2d, X).shape)

# Height floor((8 - 3) / 3) + 1 = 2, width floor((8 + 2 - 5) / 4) + 1 = 2.

conv2d = nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
print(comp_conv2d(conv2d, X).shape)

# ### Underneath: padding and stride in im2col
#
# `scratchnet.teach.im2col` copies each window the kernel visits into a column, shaped
# (N, C, kh, kw, oh, ow): for the last layer a 3x5 window at 2x2 places. Padding and
# stride only change which windows are copied; the product with the kernel is the same.

from scratchnet import teach

col = teach.im2col(X.array.reshape(1, 1, 8, 8), 3, 5, stride=(3, 4), padding=(0, 1))
print(col.shape)
