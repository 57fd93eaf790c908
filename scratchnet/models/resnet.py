"""ResNet as in d2l 8.6: Residual blocks, the b1 stem, four stages, global pooling;
and ResNeXt's block (8.6.5), grouped convolution inside a bottleneck."""
from .. import nn
from .classifier import Classifier


def add_paths(block, Y, skip):
    """Y + skip for a residual block, refused clearly when the two shapes differ. A new
    array: the layer that made Y may still hold it for its backward."""
    if skip.shape != Y.shape:
        raise ValueError(f"{block}: the skip path gives {tuple(skip.shape)} but the main "
                         f"path {tuple(Y.shape)}; use use_1x1conv=True when the channels "
                         "or the stride change")
    return Y + skip


class Residual(nn.Module):
    """Y = relu(bn2(conv2(relu(bn1(conv1(X))))) + skip(X)), skip = conv3 (1x1) or identity.

    backward sends the gradient down both paths and sums them at X.
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) \
            if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()

    def forward(self, X):
        Y = self.relu1(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        skip = self.conv3(X) if self.conv3 is not None else X
        return self.relu2(add_paths(self.name, Y, skip))

    def backward(self, gy):
        g = self.relu2.backward(gy)
        g_main = self.conv1.backward(self.bn1.backward(self.relu1.backward(
            self.conv2.backward(self.bn2.backward(g)))))
        g_skip = self.conv3.backward(g) if self.conv3 is not None else g
        return g_skip if g_main is None else g_main + g_skip

    def receptive_geometry(self):
        """The main path's (two 3x3 convolutions, the first with the block's stride),
        whose field contains the skip path's."""
        return self.conv1.receptive_geometry() + self.conv2.receptive_geometry()


class ResNeXtBlock(nn.Module):
    """d2l 8.6.5: a bottleneck of 1x1 (to bot_channels = round(num_channels * bot_mul)),
    grouped 3x3 (``bot_channels // groups`` groups, so ``groups`` channels per group,
    with the block's stride) and 1x1 (back to num_channels), each with BatchNorm:

        Y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(X)))))))) + skip(X)),

    skip = bn4(conv4(X)) (1x1 with the stride) or identity. backward sends the
    gradient down both paths and sums them at X, as :class:`Residual`'s.
    """

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3, stride=strides, padding=1,
                                   groups=bot_channels // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) \
            if use_1x1conv else None
        self.bn4 = nn.LazyBatchNorm2d() if use_1x1conv else None
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()
        self.relu3 = nn.ReLU()

    def forward(self, X):
        Y = self.relu1(self.bn1(self.conv1(X)))
        Y = self.relu2(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        skip = self.bn4(self.conv4(X)) if self.conv4 is not None else X
        return self.relu3(add_paths(self.name, Y, skip))

    def backward(self, gy):
        g = self.relu3.backward(gy)
        g_main = self.conv3.backward(self.bn3.backward(g))
        g_main = self.conv2.backward(self.bn2.backward(self.relu2.backward(g_main)))
        g_main = self.conv1.backward(self.bn1.backward(self.relu1.backward(g_main)))
        g_skip = self.conv4.backward(self.bn4.backward(g)) if self.conv4 is not None else g
        return g_skip if g_main is None else g_main + g_skip

    def receptive_geometry(self):
        """The main path's (1x1, the 3x3 with the block's stride, 1x1), whose field
        contains the skip path's."""
        return (self.conv1.receptive_geometry() + self.conv2.receptive_geometry()
                + self.conv3.receptive_geometry())


class ResNet(Classifier):
    book_input = (96, 96)

    def __init__(self, arch, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(self.b1())
        for i, b in enumerate(arch):
            self.net.add_module(f"b{i + 2}", self.block(*b, first_block=(i == 0)))
        self.net.add_module("last", nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))

    @staticmethod
    def b1():
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    @staticmethod
    def block(num_residuals, num_channels, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)


class ResNet18(ResNet):
    def __init__(self, num_classes=10):
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)), num_classes)
