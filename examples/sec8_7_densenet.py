# Generated from notebooks/8.7_densenet.ipynb by notebooks/build.py: edit those, not this file.

# # 8.7 Densely Connected Networks (DenseNet)
#
# The code cells are the PyTorch cells of d2l section 8.7 as the book writes them
# (d2l-en's `densenet.md`, copied in `tests/d2l_chapters/`); only their import lines were
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

# ## 8.7.2 Dense Blocks
#
# `conv_block`: batch normalisation, ReLU, then a 3x3 convolution.

def conv_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=3, padding=1))

# `DenseBlock` stacks each block's output onto its input along the channels, so every
# block sees all the channels before it. It defines only `forward`, so it runs on the
# tape.

class DenseBlock(nn.Module):
    def __init__(self, num_convs, num_channels):
        super(DenseBlock, self).__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate input and output of each block along the channels
            X = torch.cat((X, Y), dim=1)
        return X

# Two blocks of 10 channels on 3 input channels: 3 + 2 x 10 = 23 channels out.

blk = DenseBlock(2, 10)
if tab.selected('mxnet'):
    X = np.random.uniform(size=(4, 3, 8, 8))
    blk.initialize()
if tab.selected('pytorch'):
    X = torch.randn(4, 3, 8, 8)
if tab.selected('tensorflow'):
    X = tf.random.uniform((4, 8, 8, 3))
Y = blk(X)
print(Y.shape)

# ### Underneath: DenseBlock's backward, by the tape and by hand
#
# Walking back, each `CatBackward` splits dL/d[X, Y] into the part for X and the part for
# the block's output Y; Y's part runs back through the block and is added to X's, since
# X made Y too (the "sums 2 gradients" lines). `scratchnet.models.DenseBlock` does the
# same in a `backward` written by hand; with the book's weights loaded (the same
# `state_dict` keys) it gives the same dL/dX.

import scratchnet.autograd as ag
from scratchnet import models

book = DenseBlock(2, 10)
X = torch.randn(4, 3, 8, 8, requires_grad=True)
W = torch.randn(4, 23, 8, 8)  # L = sum(W * Y), so dL/dY = W
loss = (book(X) * W).sum()
print('\n'.join(ag.backward_order(loss)))
loss.backward()
mine = models.DenseBlock(2, 10)
mine.load_state_dict(book.state_dict())
mine(X.array)
dX = mine.backward(W.array)
print('largest |dL/dX by hand - dL/dX by the tape|:', float(abs(dX - X.grad.array).max()))

# ## 8.7.3 Transition Layers
#
# Each dense block adds channels; a transition layer brings them down with a 1x1
# convolution and halves the height and width with a 2x2 average pool.

def transition_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))

# 23 channels to 10, 8x8 to 4x4.

blk = transition_block(10)
print(blk(Y).shape)

# ## 8.7.4 DenseNet Model
#
# The first stage as in ResNet: a 7x7 convolution, batch normalisation, ReLU, max-pool.

class DenseNet(d2l.Classifier):
    def b1(self):
        if tab.selected('mxnet'):
            net = nn.Sequential()
            net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
                nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
            return net
        if tab.selected('pytorch'):
            return nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        if tab.selected('tensorflow'):
            return tf.keras.models.Sequential([
                tf.keras.layers.Conv2D(
                    64, kernel_size=7, strides=2, padding='same'),
                tf.keras.layers.BatchNormalization(),
                tf.keras.layers.ReLU(),
                tf.keras.layers.MaxPool2D(
                    pool_size=3, strides=2, padding='same')])

# Four dense blocks of four convolutions with 32 channels each (the growth rate), a
# transition layer between each two, then batch normalisation, ReLU, global average
# pooling and a linear layer.

@d2l.add_to_class(DenseNet)
def __init__(self, num_channels=64, growth_rate=32, arch=(4, 4, 4, 4),
             lr=0.1, num_classes=10):
    super(DenseNet, self).__init__()
    self.save_hyperparameters()
    if tab.selected('mxnet'):
        self.net = nn.Sequential()
        self.net.add(self.b1())
        for i, num_convs in enumerate(arch):
            self.net.add(DenseBlock(num_convs, growth_rate))
            # The number of output channels in the previous dense block
            num_channels += num_convs * growth_rate
            # A transition layer that halves the number of channels is added
            # between the dense blocks
            if i != len(arch) - 1:
                num_channels //= 2
                self.net.add(transition_block(num_channels))
        self.net.add(nn.BatchNorm(), nn.Activation('relu'),
                     nn.GlobalAvgPool2D(), nn.Dense(num_classes))
        self.net.initialize(init.Xavier())
    if tab.selected('pytorch'):
        self.net = nn.Sequential(self.b1())
        for i, num_convs in enumerate(arch):
            self.net.add_module(f'dense_blk{i+1}', DenseBlock(num_convs,
                                                              growth_rate))
            # The number of output channels in the previous dense block
            num_channels += num_convs * growth_rate
            # A transition layer that halves the number of channels is added
            # between the dense blocks
            if i != len(arch) - 1:
                num_channels //= 2
                self.net.add_module(f'tran_blk{i+1}', transition_block(
                    num_channels))
        self.net.add_module('last', nn.Sequential(
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.LazyLinear(num_classes)))
        self.net.apply(d2l.init_cnn)
    if tab.selected('tensorflow'):
        self.net = tf.keras.models.Sequential(self.b1())
        for i, num_convs in enumerate(arch):
            self.net.add(DenseBlock(num_convs, growth_rate))
            # The number of output channels in the previous dense block
            num_channels += num_convs * growth_rate
            # A transition layer that halves the number of channels is added
            # between the dense blocks
            if i != len(arch) - 1:
                num_channels //= 2
                self.net.add(TransitionBlock(num_channels))
        self.net.add(tf.keras.models.Sequential([
            tf.keras.layers.BatchNormalization(),
            tf.keras.layers.ReLU(),
            tf.keras.layers.GlobalAvgPool2D(),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(num_classes)]))

# ### Underneath: the channels through DenseNet
#
# The book prints no summary here. d2l's `layer_summary` at 96x96 shows each dense block
# adding 4 x 32 = 128 channels and each transition layer halving the channels and the
# size.

DenseNet().layer_summary((1, 1, 96, 96))

# ## 8.7.5 Training
#
# DenseNet on Fashion-MNIST resized to 96x96, lr 0.01. `DenseBlock` defines only
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
# In its 16 steps the training loss falls while the validation accuracy stays at chance,
# as ResNet's did in its first two epochs (8.6). The full recipe takes 4690 steps.

model = DenseNet(lr=0.01)
trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128, resize=(96, 96))
trainer.fit(model, data)

# ### Underneath: `scratchnet.models.DenseNet`
#
# `scratchnet.models.DenseNet` is the same network: the same layers under the same
# `state_dict` keys (so weights load from one into the other), every layer and block with
# a `backward` of its own, so it always trains by hand.
# `python examples/train_cnn.py --model densenet` trains it with the book's settings.

from scratchnet import models

mine = models.DenseNet()
mine(torch.zeros(1, 1, 96, 96))  # the lazy layers take their shapes
print(list(model.state_dict()) == list(mine.state_dict()))
