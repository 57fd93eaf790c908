"""d2l 8.6.5: grouped convolution and the ResNeXt block.

    python examples/sec8_6_resnext.py [--size 96]

A convolution with ``groups=g`` splits its C input and O output channels into g
groups, each output group seeing its own input group only: g times fewer weights
and FLOPs than the full convolution. ResNeXt's block puts a grouped 3x3 between
two 1x1 convolutions; the book checks that it keeps its input's shape.
"""
import argparse

import numpy as np

import scratchnet as sn
from scratchnet import nn
from scratchnet.models import ResNeXtBlock

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--size", type=int, default=96, help="height and width of the input")
args = parser.parse_args()

sn.manual_seed(0)
x = np.random.default_rng(0).standard_normal((1, 32, 8, 8)).astype(np.float32)
for groups in (1, 4, 32):
    conv = nn.Conv2d(32, 32, kernel_size=3, padding=1, groups=groups)
    y = conv(x)
    fwd, _ = conv.flops(x.shape, y.shape)
    kind = {1: "full", 32: "depthwise"}.get(groups, "grouped")
    print(f"Conv2d(32, 32, 3, groups={groups:2d}) ({kind}): weight "
          f"{tuple(conv.weight.data.shape)}, {conv.weight.data.size} weights, "
          f"{fwd:,} forward FLOPs on {x.shape}")

blk = ResNeXtBlock(32, 16, 1)
X = np.random.default_rng(1).standard_normal((4, 32, args.size, args.size)).astype(np.float32)
print(f"ResNeXtBlock(32, 16, 1) on {X.shape}:", blk(X).shape)
print("its grouped 3x3:", blk.conv2)
blk = ResNeXtBlock(64, 16, 0.5, use_1x1conv=True, strides=2)
print(f"ResNeXtBlock(64, 16, 0.5, use_1x1conv=True, strides=2) on {X.shape}:", blk(X).shape)
