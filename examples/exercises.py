"""The notebook's exercises: 1-D convolution, a Sobel-like kernel, stacked convolutions.

    python examples/exercises.py
"""
import numpy as np

import scratchnet as sn
from scratchnet import nn

sn.manual_seed(0)
rs = np.random.default_rng(0)

# 7.1.6: a 1-D convolution over an audio signal (batch 1, 1 channel, length 100).
audio_signal = rs.standard_normal((1, 1, 100)).astype(np.float32)
conv1d = nn.Conv1d(in_channels=1, out_channels=1, kernel_size=3, stride=1, padding=1)
print("Audio signal after convolution: ", conv1d(audio_signal).shape)

# 7.2.8: a directional (Sobel-like) edge-detection kernel on an image with a diagonal edge.
kernel = np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]], dtype=np.float32)
image = np.tril(np.ones((5, 5), dtype=np.float32))[None, None]
conv = nn.Conv2d(1, 1, kernel_size=3, padding=1, bias=False)
conv.weight.data[...] = kernel
edge_detected = conv(image)
print("Edge-detected output shape: ", edge_detected.shape)
print(edge_detected[0, 0])

# 7.3.4: kernel (3, 5), padding (0, 1), stride (3, 4) on a 10x10 image.
conv2d = nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))
X = rs.random((1, 1, 10, 10), dtype=np.float32)
print("Output shape with kernel (3, 5), padding (0, 1), and stride (3, 4):", conv2d(X).shape)

# 7.4.5: two stacked 3x3 convolutions with padding 1 keep the size; the receptive
# field of each output grows to 5x5.
conv1 = nn.Conv2d(1, 1, kernel_size=3, padding=1)
conv2 = nn.Conv2d(1, 1, kernel_size=3, padding=1)
X = rs.random((1, 1, 10, 10), dtype=np.float32)
print("Output shape after applying two convolutions: ", conv2(conv1(X)).shape)
