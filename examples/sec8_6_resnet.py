# Generated from notebooks/8.6_resnet.ipynb by notebooks/build.py: edit those, not this file.
# The notebook without section 8.6.5 (that one is another script).

# # 8.6 Residual Networks (ResNet) and ResNeXt
#
# The code cells are the seed notebook's cells for d2l 1.0.3 section 8.6, as written;
# only their import lines were changed (`scratchnet.port`: `import torch` became
# `import scratchnet as torch`, and so on). The text between them says what each cell
# shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
# own additions, after the book's cells.

# `F` is `scratchnet.nn.functional`: torch.nn.functional's names (`F.relu`, ...) as
# ops on the tape.

import scratchnet as torch
from scratchnet import nn
from scratchnet.nn import functional as F
from scratchnet import d2l

# ## 8.6.2 Residual Blocks
#
# `Residual` defines only `forward`, so it runs on the tape: each layer it calls records
# one node whose backward is the layer's own, `F.relu` records a node, and `Y += X` an
# addition (a new tensor in scratchnet, see docs/porting.md) whose backward sends the
# gradient down both paths.

class Residual(nn.Module):
    """The Residual block of ResNet models."""
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1,
                                   stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1,
                                       stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)

# Without the 1x1 convolution the block keeps its input's shape.

blk = Residual(3)
X = torch.randn(4, 3, 6, 6)
print(blk(X).shape)

# With `use_1x1conv=True, strides=2` the main path halves the height and width, and the
# 1x1 convolution on the shortcut matches it: 6 channels, 3x3.

blk = Residual(6, use_1x1conv=True, strides=2)
print(blk(X).shape)

# ## 8.6.3 ResNet Model
#
# The first stage: a 7x7 convolution with stride 2, batch normalisation, ReLU, and a 3x3
# max-pool with stride 2.

class ResNet(d2l.Classifier):
    def b1(self):
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

# `block` stacks residual blocks; every stage but the first starts with one that halves
# the size and changes the number of channels.

@d2l.add_to_class(ResNet)
def block(self, num_residuals, num_channels, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels))
    return nn.Sequential(*blk)

# `__init__`, added to the class with `d2l.add_to_class` as in the book: the first stage,
# the residual stages, then global average pooling and a linear layer.

@d2l.add_to_class(ResNet)
def __init__(self, arch, lr=0.1, num_classes=10):
    super(ResNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential(self.b1())
    for i, b in enumerate(arch):
        self.net.add_module(f'b{i+2}', self.block(*b, first_block=(i==0)))
    self.net.add_module('last', nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.LazyLinear(num_classes)))
    self.net.apply(d2l.init_cnn)

# ResNet-18: four stages of two blocks. At 96x96 the size goes 24, 24, 12, 6, 3, 1.

class ResNet18(ResNet):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)),
                       lr, num_classes)

ResNet18().layer_summary((1, 1, 96, 96))

# ## 8.6.4 Training
#
# ResNet-18 on Fashion-MNIST resized to 96x96. `Residual` has no backward of its own, so
# the trainer backpropagates through the tape (the first epoch line says so).
#
# **The stored output below is a CPU subset run, not the book's recipe.**
# `notebooks/build.py` ran this notebook with `SCRATCHNET_D2L_SUBSET=2048` (the first 2048
# training and the first 2048 test images) and `SCRATCHNET_D2L_MAX_EPOCHS=3` (3 epochs,
# 48 SGD steps), because the full recipe (10 epochs of 60000 images at 96x96) takes hours on the 2-core CPU it was
# built on. The code is the book's: unset those variables and it runs the full recipe. On a
# GPU (`pip install -e ".[gpu]"`) `num_gpus=1` trains there; without one the trainer says
# so and uses the CPU.

model = ResNet18(lr=0.01)
trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128, resize=(96, 96))
model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer.fit(model, data)

# ### Underneath: the tape of one residual block
#
# The nodes `backward()` runs for one `Residual(3)`: the convolutions and batch norms one
# node each (their own backward), `F.relu` and the addition as tape ops. The input is used
# by both paths, so its gradient is the sum of two.

import scratchnet.autograd as ag

blk = Residual(3)
X = torch.randn(4, 3, 6, 6, requires_grad=True)
print('\n'.join(ag.backward_order(blk(X).sum())))
