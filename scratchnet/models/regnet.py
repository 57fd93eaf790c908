"""AnyNet and RegNetX-32 as in d2l 8.8: a stem (3x3 convolution with stride 2,
BatchNorm, ReLU), stages of ResNeXt blocks (the first of each halves the image and
changes the channels), and a head of global average pooling and a linear layer."""
from .. import nn
from .classifier import Classifier
from .resnet import ResNeXtBlock


class AnyNet(Classifier):
    """``arch``: one (depth, num_channels, groups, bot_mul) per stage."""

    book_input = (96, 96)

    def __init__(self, arch, stem_channels, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(self.stem(stem_channels))
        for i, s in enumerate(arch):
            self.net.add_module(f"stage{i + 1}", self.stage(*s))
        self.net.add_module("head", nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.LazyLinear(num_classes)))

    @staticmethod
    def stem(num_channels):
        return nn.Sequential(
            nn.LazyConv2d(num_channels, kernel_size=3, stride=2, padding=1),
            nn.LazyBatchNorm2d(), nn.ReLU())

    @staticmethod
    def stage(depth, num_channels, groups, bot_mul):
        blk = []
        for i in range(depth):
            if i == 0:
                blk.append(ResNeXtBlock(num_channels, groups, bot_mul,
                                        use_1x1conv=True, strides=2))
            else:
                blk.append(ResNeXtBlock(num_channels, groups, bot_mul))
        return nn.Sequential(*blk)


class RegNetX32(AnyNet):
    def __init__(self, num_classes=10):
        stem_channels, groups, bot_mul = 32, 16, 1
        depths, channels = (4, 6), (32, 80)
        super().__init__(
            ((depths[0], channels[0], groups, bot_mul),
             (depths[1], channels[1], groups, bot_mul)),
            stem_channels, num_classes)
