"""d2l 7.4: multiple input and output channels, and the 1x1 convolution.

    python examples/sec7_4_channels.py
"""
import numpy as np

import scratchnet as sn
from scratchnet import nn

X = np.array([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
              [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]], dtype=np.float32)
K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]], dtype=np.float32)
print("corr2d_multi_in(X, K) =\n", sn.corr2d_multi_in(X, K))

K = np.stack((K, K + 1, K + 2), 0)
print("K.shape =", K.shape)
print("corr2d_multi_in_out(X, K) =\n", sn.corr2d_multi_in_out(X, K))

# 7.4.3 A 1x1 convolution is a fully connected layer applied at every pixel.
rs = np.random.default_rng(0)
X = rs.standard_normal((3, 3, 3)).astype(np.float32)
K = rs.standard_normal((2, 3, 1, 1)).astype(np.float32)
Y1 = sn.corr2d_multi_in_out_1x1(X, K)
Y2 = sn.corr2d_multi_in_out(X, K)
assert float(np.abs(Y1 - Y2).sum()) < 1e-6
# ... and the fast im2col layer gives the same.
conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
conv.weight.data[...] = K
Y3 = conv(X[None])[0]
print("1x1 by matmul, by loops and by Conv2d agree:",
      float(np.abs(Y1 - Y2).max()), float(np.abs(Y1 - Y3).max()))
