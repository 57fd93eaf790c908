"""d2l 7.3: output shapes under padding and stride (and exercise 7.3.4).

    python examples/sec7_3_padding_stride.py
"""
import numpy as np

import scratchnet as sn
from scratchnet import nn


def comp_conv2d(conv2d, X):
    # (1, 1): batch size and number of channels are both 1
    X = X.reshape((1, 1) + X.shape)
    Y = conv2d(X)
    return Y.reshape(Y.shape[2:])  # strip examples and channels


sn.manual_seed(0)
X = np.random.default_rng(0).random((8, 8), dtype=np.float32)
cases = [
    ("kernel 3, padding 1", nn.LazyConv2d(1, kernel_size=3, padding=1)),
    ("kernel (5, 3), padding (2, 1)", nn.LazyConv2d(1, kernel_size=(5, 3), padding=(2, 1))),
    ("kernel 3, padding 1, stride 2", nn.LazyConv2d(1, kernel_size=3, padding=1, stride=2)),
    ("kernel (3, 5), padding (0, 1), stride (3, 4)",
     nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))),
]
for what, conv2d in cases:
    print(f"8x8 input, {what}: {comp_conv2d(conv2d, X).shape}")

# Exercise 7.3.4: the same layer on a 10x10 image: floor((10 - 3 + 0) / 3) + 1 = 3 rows,
# floor((10 - 5 + 2) / 4) + 1 = 2 columns.
conv2d = nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
X = np.random.default_rng(1).random((1, 1, 10, 10), dtype=np.float32)
print("Output shape with kernel (3, 5), padding (0, 1), and stride (3, 4):", conv2d(X).shape)
