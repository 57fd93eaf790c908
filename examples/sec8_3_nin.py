# Generated from notebooks/8.3_nin.ipynb by notebooks/build.py: edit those, not this file.

# # 8.3 Network in Network (NiN)
#
# The code cells are the PyTorch cells of d2l section 8.3 as the book writes them
# (d2l-en's `nin.md`, copied in `tests/d2l_chapters/`); only their import lines were
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

# The imports, as in 7.2.

from scratchnet import d2l
import scratchnet as torch
from scratchnet import nn

# ## 8.3.1 NiN Blocks
#
# One convolution of the given size, then two 1x1 convolutions, each followed by a ReLU.

def nin_block(out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())

# ### Underneath: a 1x1 convolution is a fully connected layer at every pixel
#
# A 1x1 convolution with weight (out, in, 1, 1) takes each pixel's `in` channels to `out`
# channels, the same way at every pixel: it is `nn.Linear(in, out)` applied to each pixel
# alone. Given the convolution's weights (`.data` reshaped: the same numbers), the linear
# layer on the channels-last image gives the same output.

conv = nn.Conv2d(96, 96, kernel_size=1)
fc = nn.Linear(96, 96)
fc.weight.data = conv.weight.data.reshape(96, 96)
fc.bias.data = conv.bias.data
X = torch.randn(1, 96, 5, 5)
Y_fc = fc(X.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # every pixel through fc
print(float((conv(X) - Y_fc).abs().max()))

# ## 8.3.2 NiN Model
#
# Four NiN blocks, the last with one channel per class, and no fully connected layer at
# the end: `nn.AdaptiveAvgPool2d((1, 1))` averages each channel over the image (global
# average pooling), and those 10 averages are the logits.

class NiN(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        if tab.selected('mxnet'):
            self.net = nn.Sequential()
            self.net.add(
                nin_block(96, kernel_size=11, strides=4, padding=0),
                nn.MaxPool2D(pool_size=3, strides=2),
                nin_block(256, kernel_size=5, strides=1, padding=2),
                nn.MaxPool2D(pool_size=3, strides=2),
                nin_block(384, kernel_size=3, strides=1, padding=1),
                nn.MaxPool2D(pool_size=3, strides=2),
                nn.Dropout(0.5),
                nin_block(num_classes, kernel_size=3, strides=1, padding=1),
                nn.GlobalAvgPool2D(),
                nn.Flatten())
            self.net.initialize(init.Xavier())
        if tab.selected('pytorch'):
            self.net = nn.Sequential(
                nin_block(96, kernel_size=11, strides=4, padding=0),
                nn.MaxPool2d(3, stride=2),
                nin_block(256, kernel_size=5, strides=1, padding=2),
                nn.MaxPool2d(3, stride=2),
                nin_block(384, kernel_size=3, strides=1, padding=1),
                nn.MaxPool2d(3, stride=2),
                nn.Dropout(0.5),
                nin_block(num_classes, kernel_size=3, strides=1, padding=1),
                nn.AdaptiveAvgPool2d((1, 1)),
                nn.Flatten())
            self.net.apply(d2l.init_cnn)
        if tab.selected('tensorflow'):
            self.net = tf.keras.models.Sequential([
                nin_block(96, kernel_size=11, strides=4, padding='valid'),
                tf.keras.layers.MaxPool2D(pool_size=3, strides=2),
                nin_block(256, kernel_size=5, strides=1, padding='same'),
                tf.keras.layers.MaxPool2D(pool_size=3, strides=2),
                nin_block(384, kernel_size=3, strides=1, padding='same'),
                tf.keras.layers.MaxPool2D(pool_size=3, strides=2),
                tf.keras.layers.Dropout(0.5),
                nin_block(num_classes, kernel_size=3, strides=1, padding='same'),
                tf.keras.layers.GlobalAvgPool2D(),
                tf.keras.layers.Flatten()])

# At 224x224 the last block's 10 channels are 5x5; the pooling leaves 10 numbers.

NiN().layer_summary((1, 1, 224, 224))

# ### Underneath: the global average pooling head
#
# Its backward hands every pixel an equal share of its channel's gradient: on the 5x5
# map, 1/25 of dL/dy each. `AdaptiveAvgPool2d` on the arrays, with a gradient of ones:

import numpy as np

gap = nn.AdaptiveAvgPool2d((1, 1))
y = gap(np.ones((1, 10, 5, 5), dtype=np.float32))
print(gap.backward(np.ones_like(y))[0, 0])

# ## 8.3.3 Training
#
# NiN on Fashion-MNIST resized to 224x224, lr 0.05. `apply_init` runs one batch through
# the lazy layers, then initialises them with `init_cnn`. Every layer has its own
# backward, so the trainer backpropagates by hand.
#
# **The stored output below is a CPU subset run, not the book's recipe.**
# `notebooks/build.py` ran this notebook with `SCRATCHNET_D2L_SUBSET=1024` (the first 1024
# training and the first 1024 test images) and `SCRATCHNET_D2L_MAX_EPOCHS=2` (2 epochs,
# 16 SGD steps), because the full recipe (10 epochs of 60000 images at 224x224) takes hours on the 2-core CPU it was
# built on. The code is the book's: unset those variables and it runs the full recipe. On a
# GPU (`pip install -e ".[gpu]"`) `num_gpus=1` trains there; without one the trainer says
# so and uses the CPU.
#
# The stored run shows the start of training only: in 16 steps the d2l recipe (SGD, lr
# 0.05, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
# accuracy, as VGG's did in 8.2. The full recipe takes 4690 steps.

model = NiN(lr=0.05)
trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128, resize=(224, 224))
if tab.selected('pytorch'):
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer.fit(model, data)

# ### Underneath: NiN's parameters
#
# Without AlexNet's fully connected layers NiN has about 2 million parameters, against
# AlexNet's 47 million.

print(f'{model.num_parameters():,} parameters')

# ### Underneath: `scratchnet.models.NiN`
#
# `scratchnet.models.NiN` is the same network: the same layers under the same
# `state_dict` keys (so weights load from one into the other), every layer and block with
# a `backward` of its own, so it always trains by hand.
# `python examples/train_cnn.py --model nin` trains it with the book's settings.

from scratchnet import models

mine = models.NiN()
mine(torch.zeros(1, 1, 224, 224))  # the lazy layers take their shapes
print(list(model.state_dict()) == list(mine.state_dict()))
