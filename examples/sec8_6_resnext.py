# Generated from notebooks/8.6_resnet.ipynb by notebooks/build.py: edit those, not this file.
# Section 8.6.5 of the notebook, after its import cells.

import scratchnet as torch
from scratchnet import nn
from scratchnet.nn import functional as F
from scratchnet import d2l

# ## 8.6.5 ResNeXt
#
# The book's ResNeXt block (d2l 8.6.5; not in the seed), as d2l writes it for PyTorch: a
# 1x1 convolution, a grouped 3x3 convolution (`groups=bot_channels//groups`: the channels
# are split into groups, each convolved alone), a 1x1 convolution, and the shortcut. Like
# `Residual` it defines only `forward`, so it runs on the tape.

class ResNeXtBlock(nn.Module):
    """The ResNeXt block."""
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False,
                 strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3,
                                   stride=strides, padding=1,
                                   groups=bot_channels//groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1,
                                       stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)

# The book's check: the block keeps the shape of its input.

blk = ResNeXtBlock(32, 16, 1)
X = torch.randn(4, 32, 96, 96)
print(blk(X).shape)

# ### Underneath: what `groups` saves
#
# A convolution with `groups=g` has its weight shaped (out, in/g, kh, kw): g times fewer
# weights and multiply-adds than the full one. `Conv2d.flops` counts the forward's
# floating-point operations; the block above uses groups=2.

import numpy as np

x = np.random.default_rng(0).standard_normal((1, 32, 8, 8)).astype(np.float32)
for groups in (1, 2, 32):
    conv = nn.Conv2d(32, 32, kernel_size=3, padding=1, groups=groups)
    fwd, _ = conv.flops(x.shape, conv(x).shape)
    print(f'groups={groups:2d}: weight {tuple(conv.weight.data.shape)}, '
          f'{conv.weight.array.size} weights, {fwd:,} forward FLOPs on {x.shape}')
