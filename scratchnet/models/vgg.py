"""VGG as in d2l 8.2: blocks of 3x3 convolutions with ReLU, each ending in a 2x2 max pool."""
from .. import nn
from .classifier import Classifier

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
# d2l 8.2.3's smaller variant (channels divided by 4) that trains on Fashion-MNIST.
VGG_SMALL = ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))


def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(Classifier):
    book_input = (224, 224)

    def __init__(self, arch=VGG11, num_classes=10):
        super().__init__()
        conv_blks = [vgg_block(num_convs, out_channels) for num_convs, out_channels in arch]
        self.net = nn.Sequential(
            *conv_blks, nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(num_classes))
