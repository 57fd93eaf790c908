# Generated from notebooks/8.4_googlenet.ipynb by notebooks/build.py: edit those, not this file.

# # 8.4 Multi-Branch Networks (GoogLeNet)
#
# The code cells are the PyTorch cells of d2l section 8.4 as the book writes them
# (d2l-en's `googlenet.md`, copied in `tests/d2l_chapters/`); only their import lines were
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

# `F` is `scratchnet.nn.functional`: torch.nn.functional's names (`F.relu`, ...) as ops on
# the tape.

from scratchnet import d2l
import scratchnet as torch
from scratchnet import nn
from scratchnet.nn import functional as F

# ## 8.4.1 Inception Blocks
#
# Four branches on the same input: a 1x1 convolution; a 1x1 then a 3x3; a 1x1 then a 5x5;
# a 3x3 max-pool then a 1x1. Each keeps the image size, and `torch.cat(..., dim=1)` stacks
# their outputs along the channels. `Inception` defines only `forward`, so it runs on the
# tape: each layer records one node whose backward is the layer's own, and `F.relu` and
# `torch.cat` record tape ops.

class Inception(nn.Module):
    # c1--c4 are the number of output channels for each branch
    def __init__(self, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        # Branch 1
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        # Branch 2
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        # Branch 3
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        # Branch 4
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)

# ### Underneath: Inception's backward, by the tape and by hand
#
# On the tape, `torch.cat`'s backward (`CatBackward`) splits dL/dY into the four branches'
# slices (64, 128, 32 and 32 channels here), each branch runs back, and x, which all four
# branches read, sums four gradients (the last line). `scratchnet.models.Inception` is the
# same block with a `backward` written by hand that does exactly that. With the book's
# weights loaded (the same `state_dict` keys) it gives the same dL/dX.

import scratchnet.autograd as ag
from scratchnet import models

book = Inception(64, (96, 128), (16, 32), 32)
X = torch.randn(2, 192, 12, 12, requires_grad=True)
W = torch.randn(2, 256, 12, 12)  # L = sum(W * Y), so dL/dY = W
loss = (book(X) * W).sum()
print('\n'.join(ag.backward_order(loss)))
loss.backward()
mine = models.Inception(64, (96, 128), (16, 32), 32)
mine.load_state_dict(book.state_dict())
mine(X.array)
dX = mine.backward(W.array)  # W split four ways, the branches' gradients summed at x
print('largest |dL/dX by hand - dL/dX by the tape|:', float(abs(dX - X.grad.array).max()))

# ## 8.4.2 GoogLeNet Model
#
# Five stages, b1 to b5, added to the class one by one with `d2l.add_to_class`. b1: a 7x7
# convolution and a max-pool.

class GoogleNet(d2l.Classifier):
    def b1(self):
        if tab.selected('mxnet'):
            net = nn.Sequential()
            net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3,
                              activation='relu'),
                    nn.MaxPool2D(pool_size=3, strides=2, padding=1))
            return net
        if tab.selected('pytorch'):
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        if tab.selected('tensorflow'):
            return tf.keras.models.Sequential([
                tf.keras.layers.Conv2D(64, 7, strides=2, padding='same',
                                       activation='relu'),
                tf.keras.layers.MaxPool2D(pool_size=3, strides=2,
                                          padding='same')])

# b2: a 1x1 and a 3x3 convolution, and a max-pool.

@d2l.add_to_class(GoogleNet)
def b2(self):
    if tab.selected('mxnet'):
        net = nn.Sequential()
        net.add(nn.Conv2D(64, kernel_size=1, activation='relu'),
               nn.Conv2D(192, kernel_size=3, padding=1, activation='relu'),
               nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net
    if tab.selected('pytorch'):
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=1), nn.ReLU(),
            nn.LazyConv2d(192, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    if tab.selected('tensorflow'):
        return tf.keras.Sequential([
            tf.keras.layers.Conv2D(64, 1, activation='relu'),
            tf.keras.layers.Conv2D(192, 3, padding='same', activation='relu'),
            tf.keras.layers.MaxPool2D(pool_size=3, strides=2, padding='same')])
    if tab.selected('jax'):
        return nn.Sequential([nn.Conv(64, kernel_size=(1, 1)),
                              nn.relu,
                              nn.Conv(192, kernel_size=(3, 3), padding='same'),
                              nn.relu,
                              lambda x: nn.max_pool(x, window_shape=(3, 3),
                                                    strides=(2, 2),
                                                    padding='same')])

# b3: two Inception blocks, then a max-pool.

@d2l.add_to_class(GoogleNet)
def b3(self):
    if tab.selected('mxnet'):
        net = nn.Sequential()
        net.add(Inception(64, (96, 128), (16, 32), 32),
               Inception(128, (128, 192), (32, 96), 64),
               nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net
    if tab.selected('pytorch'):
        return nn.Sequential(Inception(64, (96, 128), (16, 32), 32),
                             Inception(128, (128, 192), (32, 96), 64),
                             nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    if tab.selected('tensorflow'):
        return tf.keras.models.Sequential([
            Inception(64, (96, 128), (16, 32), 32),
            Inception(128, (128, 192), (32, 96), 64),
            tf.keras.layers.MaxPool2D(pool_size=3, strides=2, padding='same')])
    if tab.selected('jax'):
        return nn.Sequential([Inception(64, (96, 128), (16, 32), 32),
                              Inception(128, (128, 192), (32, 96), 64),
                              lambda x: nn.max_pool(x, window_shape=(3, 3),
                                                    strides=(2, 2),
                                                    padding='same')])

# b4: five Inception blocks, then a max-pool.

@d2l.add_to_class(GoogleNet)
def b4(self):
    if tab.selected('mxnet'):
        net = nn.Sequential()
        net.add(Inception(192, (96, 208), (16, 48), 64),
                Inception(160, (112, 224), (24, 64), 64),
                Inception(128, (128, 256), (24, 64), 64),
                Inception(112, (144, 288), (32, 64), 64),
                Inception(256, (160, 320), (32, 128), 128),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        return net
    if tab.selected('pytorch'):
        return nn.Sequential(Inception(192, (96, 208), (16, 48), 64),
                             Inception(160, (112, 224), (24, 64), 64),
                             Inception(128, (128, 256), (24, 64), 64),
                             Inception(112, (144, 288), (32, 64), 64),
                             Inception(256, (160, 320), (32, 128), 128),
                             nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    if tab.selected('tensorflow'):
        return tf.keras.Sequential([
            Inception(192, (96, 208), (16, 48), 64),
            Inception(160, (112, 224), (24, 64), 64),
            Inception(128, (128, 256), (24, 64), 64),
            Inception(112, (144, 288), (32, 64), 64),
            Inception(256, (160, 320), (32, 128), 128),
            tf.keras.layers.MaxPool2D(pool_size=3, strides=2, padding='same')])
    if tab.selected('jax'):
        return nn.Sequential([Inception(192, (96, 208), (16, 48), 64),
                              Inception(160, (112, 224), (24, 64), 64),
                              Inception(128, (128, 256), (24, 64), 64),
                              Inception(112, (144, 288), (32, 64), 64),
                              Inception(256, (160, 320), (32, 128), 128),
                              lambda x: nn.max_pool(x, window_shape=(3, 3),
                                                    strides=(2, 2),
                                                    padding='same')])

# b5: two Inception blocks, then global average pooling (as NiN's head) and `Flatten`.

@d2l.add_to_class(GoogleNet)
def b5(self):
    if tab.selected('mxnet'):
        net = nn.Sequential()
        net.add(Inception(256, (160, 320), (32, 128), 128),
                Inception(384, (192, 384), (48, 128), 128),
                nn.GlobalAvgPool2D())
        return net
    if tab.selected('pytorch'):
        return nn.Sequential(Inception(256, (160, 320), (32, 128), 128),
                             Inception(384, (192, 384), (48, 128), 128),
                             nn.AdaptiveAvgPool2d((1,1)), nn.Flatten())
    if tab.selected('tensorflow'):
        return tf.keras.Sequential([
            Inception(256, (160, 320), (32, 128), 128),
            Inception(384, (192, 384), (48, 128), 128),
            tf.keras.layers.GlobalAvgPool2D(),
            tf.keras.layers.Flatten()])
    if tab.selected('jax'):
        return nn.Sequential([Inception(256, (160, 320), (32, 128), 128),
                              Inception(384, (192, 384), (48, 128), 128),
                              # Flax does not provide a GlobalAvgPool2D layer
                              lambda x: nn.avg_pool(x,
                                                    window_shape=x.shape[1:3],
                                                    strides=x.shape[1:3],
                                                    padding='valid'),
                              lambda x: x.reshape((x.shape[0], -1))])

# `__init__`: the five stages and a linear layer for the 10 classes.

@d2l.add_to_class(GoogleNet)
def __init__(self, lr=0.1, num_classes=10):
    super(GoogleNet, self).__init__()
    self.save_hyperparameters()
    if tab.selected('mxnet'):
        self.net = nn.Sequential()
        self.net.add(self.b1(), self.b2(), self.b3(), self.b4(), self.b5(),
                     nn.Dense(num_classes))
        self.net.initialize(init.Xavier())
    if tab.selected('pytorch'):
        self.net = nn.Sequential(self.b1(), self.b2(), self.b3(), self.b4(),
                                 self.b5(), nn.LazyLinear(num_classes))
        self.net.apply(d2l.init_cnn)
    if tab.selected('tensorflow'):
        self.net = tf.keras.Sequential([
            self.b1(), self.b2(), self.b3(), self.b4(), self.b5(),
            tf.keras.layers.Dense(num_classes)])

# At 96x96 (the book trains GoogLeNet on smaller images than ImageNet's 224x224) the size
# goes 24, 12, 6, 3 and then 1 after the pooling.

model = GoogleNet().layer_summary((1, 1, 96, 96))

# ## 8.4.3 Training
#
# GoogLeNet on Fashion-MNIST resized to 96x96, lr 0.01. `Inception` defines only
# `forward`, so the trainer backpropagates through the tape (the first epoch line says
# so).
#
# **The stored output below is a CPU subset run, not the book's recipe.**
# `notebooks/build.py` ran this notebook with `SCRATCHNET_D2L_SUBSET=1024` (the first 1024
# training and the first 1024 test images) and `SCRATCHNET_D2L_MAX_EPOCHS=2` (2 epochs,
# 16 SGD steps), because the full recipe (10 epochs of 60000 images at 96x96) takes hours on the 2-core CPU it was
# built on. The code is the book's: unset those variables and it runs the full recipe. On a
# GPU (`pip install -e ".[gpu]"`) `num_gpus=1` trains there; without one the trainer says
# so and uses the CPU.
#
# The stored run shows the start of training only: in 16 steps the d2l recipe (SGD, lr
# 0.01, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
# accuracy, as VGG's did in 8.2. The full recipe takes 4690 steps.

model = GoogleNet(lr=0.01)
trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128, resize=(96, 96))
if tab.selected('pytorch'):
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer.fit(model, data)

# ### Underneath: `scratchnet.models.GoogleNet`
#
# `scratchnet.models.GoogleNet` is the same network: the same layers under the same
# `state_dict` keys (so weights load from one into the other), every layer and block with
# a `backward` of its own, so it always trains by hand.
# `python examples/train_cnn.py --model googlenet` trains it with the book's settings.

from scratchnet import models

mine = models.GoogleNet()
mine(torch.zeros(1, 1, 96, 96))  # the lazy layers take their shapes
print(list(model.state_dict()) == list(mine.state_dict()))
