"""d2l 7.2: cross-correlation, edge detection, and learning a kernel.

    python examples/sec7_2_cross_correlation.py [--plot docs/img/learned_kernel.png]
"""
import argparse

import numpy as np

import scratchnet as sn
from scratchnet import nn

p = argparse.ArgumentParser(description="d2l 7.2: cross-correlation and learning a kernel")
p.add_argument("--plot", help="write the learned and the hand-made kernel side by side (PNG)")
args = p.parse_args()

# 7.2.1 The cross-correlation operation.
X = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], dtype=np.float32)
K = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
print("corr2d(X, K) =\n", sn.corr2d(X, K))

# 7.2.3 Object edge detection: a 1x2 kernel [1, -1] marks vertical edges.
X = np.ones((6, 8), dtype=np.float32)
X[:, 2:6] = 0
K = np.array([[1.0, -1.0]], dtype=np.float32)
Y = sn.corr2d(X, K)
print("X =\n", X)
print("edges, corr2d(X, K) =\n", Y)
print("on the transpose (no vertical edges left), corr2d(X.T, K) =\n", sn.corr2d(X.T, K))

# 7.2.4 Learning a kernel: recover [1, -1] from X and Y by gradient descent.
sn.manual_seed(0)
conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
X = X.reshape((1, 1, 6, 8))
Y = Y.reshape((1, 1, 6, 7))
lr = 3e-2
for i in range(10):
    Y_hat = conv2d(X)
    l = (Y_hat - Y) ** 2
    conv2d.zero_grad()
    conv2d.backward(2 * (Y_hat - Y))  # d(sum l)/dY_hat: the manual backward of l.sum()
    conv2d.weight.data[:] -= lr * conv2d.weight.grad
    if (i + 1) % 2 == 0:
        print(f"epoch {i + 1}, loss {l.sum():.3f}")
print("learned kernel:", conv2d.weight.data.reshape((1, 2)), " hand-made: [[ 1. -1.]]")

if args.plot:
    sn.viz.plot_kernel_pair(conv2d.weight.data.reshape((1, 2)), K, args.plot)
    print("kernels drawn in", args.plot)
