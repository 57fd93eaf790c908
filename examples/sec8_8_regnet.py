# Generated from notebooks/8.8_regnet.ipynb by notebooks/build.py: edit those, not this file.

# # 8.8 Designing Convolution Network Architectures (RegNet)
#
# The code cells are the PyTorch cells of d2l section 8.8 as the book writes them
# (d2l-en's `cnn-design.md`, copied in `tests/d2l_chapters/`); only their import lines were
# changed (`scratchnet.port`: `import torch` became `import scratchnet as torch`, and so
# on). The text between them says what each cell shows and what scratchnet runs
# underneath. Cells headed *Underneath* are scratchnet's own additions, after the book's
# cells; so is the setup cell below.

# ### Setup: `tab` (scratchnet's cell, not the book's)
#
# The book writes each cell for four frameworks at once and asks d2lbook's `tab` which
# branch to run: `if tab.selected('pytorch'):`. Here the cells stay as written, so this
# cell stands in for d2lbook: `tab.selected(...)` is true when `'pytorch'` is among its
# names, and only the PyTorch branches run.

import types

tab = types.SimpleNamespace(selected=lambda *tabs: 'pytorch' in tabs)

# The imports, as in 8.4.

from scratchnet import d2l
import scratchnet as torch
from scratchnet import nn
from scratchnet.nn import functional as F

# ## 8.8.1 The AnyNet Design Space
#
# AnyNet: a stem (a 3x3 convolution with stride 2, batch normalisation, ReLU), stages of
# ResNeXt blocks, and a head (global average pooling and a linear layer).

class AnyNet(d2l.Classifier):
    def stem(self, num_channels):
        return nn.Sequential(
            nn.LazyConv2d(num_channels, kernel_size=3, stride=2, padding=1),
            nn.LazyBatchNorm2d(), nn.ReLU())

# A stage: `depth` ResNeXt blocks, the first of which halves the size and sets the
# channels. `d2l.ResNeXtBlock` is scratchnet's copy of 8.6.5's block, with the book's
# `state_dict` keys and a backward of its own.

@d2l.add_to_class(AnyNet)
def stage(self, depth, num_channels, groups, bot_mul):
    blk = []
    for i in range(depth):
        if i == 0:
            blk.append(d2l.ResNeXtBlock(num_channels, groups, bot_mul,
                use_1x1conv=True, strides=2))
        else:
            blk.append(d2l.ResNeXtBlock(num_channels, groups, bot_mul))
    return nn.Sequential(*blk)

# `__init__`: the stem, the stages of `arch`, the head.

@d2l.add_to_class(AnyNet)
def __init__(self, arch, stem_channels, lr=0.1, num_classes=10):
    super(AnyNet, self).__init__()
    self.save_hyperparameters()
    if tab.selected('mxnet'):
        self.net = nn.Sequential()
        self.net.add(self.stem(stem_channels))
        for i, s in enumerate(arch):
            self.net.add(self.stage(*s))
        self.net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
        self.net.initialize(init.Xavier())
    if tab.selected('pytorch'):
        self.net = nn.Sequential(self.stem(stem_channels))
        for i, s in enumerate(arch):
            self.net.add_module(f'stage{i+1}', self.stage(*s))
        self.net.add_module('head', nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.LazyLinear(num_classes)))
        self.net.apply(d2l.init_cnn)
    if tab.selected('tensorflow'):
        self.net = tf.keras.models.Sequential(self.stem(stem_channels))
        for i, s in enumerate(arch):
            self.net.add(self.stage(*s))
        self.net.add(tf.keras.models.Sequential([
            tf.keras.layers.GlobalAvgPool2D(),
            tf.keras.layers.Dense(units=num_classes)]))

# ## 8.8.3 RegNet
#
# RegNetX-32: two stages of depths 4 and 6 and widths 32 and 80, group width 16,
# bottleneck ratio 1.

class RegNetX32(AnyNet):
    def __init__(self, lr=0.1, num_classes=10):
        stem_channels, groups, bot_mul = 32, 16, 1
        depths, channels = (4, 6), (32, 80)
        super().__init__(
            ((depths[0], channels[0], groups, bot_mul),
             (depths[1], channels[1], groups, bot_mul)),
            stem_channels, lr, num_classes)

# At 96x96: the stem halves the size to 48, each stage halves it again.

RegNetX32().layer_summary((1, 1, 96, 96))

# ## 8.8.4 Training
#
# RegNetX-32 on Fashion-MNIST resized to 96x96, lr 0.05. Every layer and every ResNeXt
# block has its own backward, so the trainer backpropagates by hand.
#
# **The stored output below is a CPU subset run, not the book's recipe.**
# `notebooks/build.py` ran this notebook with `SCRATCHNET_D2L_SUBSET=2048` (the first 2048
# training and the first 2048 test images) and `SCRATCHNET_D2L_MAX_EPOCHS=3` (3 epochs,
# 48 SGD steps), because the full recipe (10 epochs of 60000 images at 96x96) takes hours on the 2-core CPU it was
# built on. The code is the book's: unset those variables and it runs the full recipe. On a
# GPU (`pip install -e ".[gpu]"`) `num_gpus=1` trains there; without one the trainer says
# so and uses the CPU.
#
# In its 48 steps the training loss falls and the validation accuracy starts to rise above
# chance. The full recipe takes 4690 steps.

model = RegNetX32(lr=0.05)
trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128, resize=(96, 96))
trainer.fit(model, data)

# ### Underneath: the groups, and where the work is
#
# `ResNeXtBlock` gets `groups=16` and passes `groups=bot_channels//groups` to its 3x3
# convolution, so 16 is the width of a group: 32 channels make 2 groups, 80 make 5, and
# each weight is (out, 16, 3, 3). `sn.trace.trace` counts each layer's and block's
# parameters and forward FLOPs on one test image.

import scratchnet as sn

for name in ('stage1', 'stage2'):
    conv2 = getattr(model.net, name)[0].conv2
    print(f'{name}: {conv2.groups} groups, weight {tuple(conv2.weight.shape)}')
X = next(iter(data.val_dataloader()))[0][:1]  # one test image, 1x1x96x96
for r in sn.trace.trace(model, X.array).rows:
    print(f"{r['name']:<13} {r['layer']:<17} {r['params']:>6,} parameters, "
          f"{r['fwd_flops'] / 1e6:4.1f} MFLOPs forward")

# ### Underneath: `scratchnet.models.RegNetX32`
#
# `scratchnet.models.RegNetX32` is the same network: the same layers under the same
# `state_dict` keys (so weights load from one into the other), every layer and block with
# a `backward` of its own, so it always trains by hand.
# `python examples/train_cnn.py --model regnetx32` trains it with the book's settings.

from scratchnet import models

mine = models.RegNetX32()
mine(torch.zeros(1, 1, 96, 96))  # the lazy layers take their shapes
print(list(model.state_dict()) == list(mine.state_dict()))
