# Generated from notebooks/8.2_vgg.ipynb by notebooks/build.py: edit those, not this file.

# # 8.2 Networks Using Blocks (VGG)
#
# The code cells are the seed notebook's cells for d2l 1.0.3 section 8.2, as written;
# only their import lines were changed (`scratchnet.port`: `import torch` became
# `import scratchnet as torch`, and so on). The text between them says what each cell
# shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
# own additions, after the book's cells.

# The imports, as in 7.2.

import scratchnet as torch
from scratchnet import nn
from scratchnet import d2l

# ## 8.2.1 VGG Blocks
#
# `num_convs` 3x3 convolutions with padding 1, each followed by a ReLU, then a 2x2
# max-pool that halves the height and width.

def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2,stride=2))
    return nn.Sequential(*layers)

# ## 8.2.2 VGG Network
#
# Five blocks, then three fully connected layers with dropout. `self.net.apply(d2l.init_cnn)`
# finds only lazy layers here (not yet `nn.Conv2d` or `nn.Linear`), so it changes nothing;
# `apply_init` in 8.2.3 initialises after a first batch, as in PyTorch.

class VGG(d2l.Classifier):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        conv_blks = []
        for (num_convs, out_channels) in arch:
            conv_blks.append(vgg_block(num_convs, out_channels))
        self.net = nn.Sequential(
            *conv_blks, nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(num_classes))
        self.net.apply(d2l.init_cnn)

# VGG-11 at 224x224: each block halves the size, down to 512x7x7 = 25088 features for the
# first fully connected layer, whose 25088x4096 weight holds most of the network's
# parameters.

VGG(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))).layer_summary(
    (1, 1, 224, 224))

# ## 8.2.3 Training
#
# The small VGG (a quarter of the channels) on Fashion-MNIST resized to 224x224. All its
# layers have their own backward, so the trainer backpropagates by hand.
#
# **The stored output below is a CPU subset run, not the book's recipe.**
# `notebooks/build.py` ran this notebook with `SCRATCHNET_D2L_SUBSET=2048` (the first 2048
# training and the first 2048 test images) and `SCRATCHNET_D2L_MAX_EPOCHS=3` (3 epochs,
# 48 SGD steps), because the full recipe (10 epochs of 60000 images at 224x224) takes hours on the 2-core CPU it was
# built on. The code is the book's: unset those variables and it runs the full recipe. On a
# GPU (`pip install -e ".[gpu]"`) `num_gpus=1` trains there; without one the trainer says
# so and uses the CPU.
#
# The stored run shows the start of training only: in 48 steps the d2l recipe (SGD, lr
# 0.01, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
# accuracy. The full recipe takes 4690 steps.

model = VGG(arch=((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)), lr=0.01)
trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128, resize=(224, 224))
model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer.fit(model, data)
