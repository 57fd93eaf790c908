"""d2l 8.6: residual block shapes and ResNet-18's layer summary.

    python examples/sec8_6_resnet.py       (training: examples/train_resnet.py)
"""
import numpy as np

import scratchnet as sn
from scratchnet.models import Residual, ResNet18

sn.manual_seed(0)
X = np.random.default_rng(0).standard_normal((4, 3, 6, 6)).astype(np.float32)
blk = Residual(3)
print("Residual(3) on (4, 3, 6, 6):", blk(X).shape)
blk = Residual(6, use_1x1conv=True, strides=2)
print("Residual(6, use_1x1conv=True, strides=2):", blk(X).shape)
ResNet18().layer_summary((1, 1, 96, 96))
