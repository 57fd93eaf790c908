# Generated from notebooks/8.1_alexnet.ipynb by notebooks/build.py: edit those, not this file.

# # 8.1 Deep Convolutional Neural Networks (AlexNet)
#
# The code cells are the PyTorch cells of d2l section 8.1 as the book writes them
# (d2l-en's `alexnet.md`, copied in `tests/d2l_chapters/`); only their import lines were
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

# ## 8.1.2 AlexNet
#
# Five convolutions (the first 11x11 with stride 4), three 3x3 max-pools with stride 2, and
# two fully connected layers of 4096 units with dropout. Only the `tab.selected('pytorch')`
# branch runs. Every layer is one of scratchnet's, with its own `forward` and `backward`.

class AlexNet(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        if tab.selected('mxnet'):
            self.net = nn.Sequential()
            self.net.add(
                nn.Conv2D(96, kernel_size=11, strides=4, activation='relu'),
                nn.MaxPool2D(pool_size=3, strides=2),
                nn.Conv2D(256, kernel_size=5, padding=2, activation='relu'),
                nn.MaxPool2D(pool_size=3, strides=2),
                nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
                nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
                nn.Conv2D(256, kernel_size=3, padding=1, activation='relu'),
                nn.MaxPool2D(pool_size=3, strides=2),
                nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
                nn.Dense(4096, activation='relu'), nn.Dropout(0.5),
                nn.Dense(num_classes))
            self.net.initialize(init.Xavier())
        if tab.selected('pytorch'):
            self.net = nn.Sequential(
                nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
                nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
                nn.LazyConv2d(256, kernel_size=5, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
                nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
                nn.LazyConv2d(256, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
                nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
                nn.LazyLinear(4096), nn.ReLU(),nn.Dropout(p=0.5),
                nn.LazyLinear(num_classes))
            self.net.apply(d2l.init_cnn)
        if tab.selected('tensorflow'):
            self.net = tf.keras.models.Sequential([
                tf.keras.layers.Conv2D(filters=96, kernel_size=11, strides=4,
                                       activation='relu'),
                tf.keras.layers.MaxPool2D(pool_size=3, strides=2),
                tf.keras.layers.Conv2D(filters=256, kernel_size=5, padding='same',
                                       activation='relu'),
                tf.keras.layers.MaxPool2D(pool_size=3, strides=2),
                tf.keras.layers.Conv2D(filters=384, kernel_size=3, padding='same',
                                       activation='relu'),
                tf.keras.layers.Conv2D(filters=384, kernel_size=3, padding='same',
                                       activation='relu'),
                tf.keras.layers.Conv2D(filters=256, kernel_size=3, padding='same',
                                       activation='relu'),
                tf.keras.layers.MaxPool2D(pool_size=3, strides=2),
                tf.keras.layers.Flatten(),
                tf.keras.layers.Dense(4096, activation='relu'),
                tf.keras.layers.Dropout(0.5),
                tf.keras.layers.Dense(4096, activation='relu'),
                tf.keras.layers.Dropout(0.5),
                tf.keras.layers.Dense(num_classes)])

# At 224x224 the first convolution gives 54x54 and each max-pool about halves the size,
# down to 256x5x5 = 6400 features for the first fully connected layer.

AlexNet().layer_summary((1, 1, 224, 224))

# ## 8.1.3 Training
#
# AlexNet on Fashion-MNIST resized to 224x224, lr 0.01. Every layer has its own backward,
# so the trainer backpropagates by hand (the first epoch line says so).
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
# 0.01, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
# accuracy, as VGG's did in 8.2. The full recipe takes 4690 steps.

model = AlexNet(lr=0.01)
data = d2l.FashionMNIST(batch_size=128, resize=(224, 224))
trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
trainer.fit(model, data)

# ### Underneath: where the parameters and the arithmetic are
#
# `sn.trace.trace` runs one forward and backward layer by layer and counts each layer's
# parameters and forward FLOPs (a multiply-add is 2). The two 4096-wide fully connected
# layers hold 43 of the 47 million parameters; the convolutions do almost all the
# arithmetic.

import scratchnet as sn

X = next(iter(data.val_dataloader()))[0][:1]  # one test image, 1x1x224x224
for r in sn.trace.trace(model, X.array).rows:
    if r['params']:
        print(f"{r['name']:<7} {r['layer']:<7} {r['params']:>11,} parameters, "
              f"{r['fwd_flops'] / 1e6:6.1f} MFLOPs forward")

# ### Underneath: `scratchnet.models.AlexNet`
#
# `scratchnet.models.AlexNet` is the same network: the same layers under the same
# `state_dict` keys (so weights load from one into the other), every layer and block with
# a `backward` of its own, so it always trains by hand.
# `python examples/train_cnn.py --model alexnet` trains it with the book's settings.

from scratchnet import models

mine = models.AlexNet()
mine(torch.zeros(1, 1, 224, 224))  # the lazy layers take their shapes
print(list(model.state_dict()) == list(mine.state_dict()))
