"""d2l 7.5: maximum and average pooling, padding and stride, multiple channels.

    python examples/sec7_5_pooling.py
"""
import numpy as np

import scratchnet as sn
from scratchnet import nn

X = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], dtype=np.float32)
print("pool2d(X, (2, 2)) =\n", sn.pool2d(X, (2, 2)))
print("pool2d(X, (2, 2), 'avg') =\n", sn.pool2d(X, (2, 2), "avg"))

X = np.arange(16, dtype=np.float32).reshape((1, 1, 4, 4))
print("X =\n", X)
print("MaxPool2d(3) ->\n", nn.MaxPool2d(3)(X))
print("MaxPool2d(3, padding=1, stride=2) ->\n", nn.MaxPool2d(3, padding=1, stride=2)(X))
print("MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)) ->\n",
      nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))(X))

# 7.5.3 Pooling works on each channel separately.
X = np.concatenate((X, X + 1), 1)
print("two channels ->\n", nn.MaxPool2d(3, padding=1, stride=2)(X))
