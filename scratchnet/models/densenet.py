"""DenseNet as in d2l 8.7: dense blocks, where each convolution block's output is
stacked onto its input along the channels, and transition layers (BatchNorm, ReLU,
1x1 convolution, 2x2 average pooling) that halve the channels and the image size."""
from .. import nn, ops
from .classifier import Classifier
from .googlenet import concat_channels
from .resnet import ResNet


def conv_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    """num_convs conv_blocks, each seeing all the channels before it:

        X_0 = X,  Y_k = blk_k(X_{k-1}),  X_k = [X_{k-1}, Y_k]  (channels),  output X_n

    so the output has C + num_convs * num_channels channels. backward walks the blocks
    in reverse: dL/dX_k splits into the part for X_{k-1} and the part for Y_k, and
    Y_k's part, sent back through blk_k, is added to X_{k-1}'s (X_{k-1} made Y_k too).
    """

    def __init__(self, num_convs, num_channels):
        super().__init__()
        self.net = nn.Sequential(*[conv_block(num_channels) for _ in range(num_convs)])
        self.num_channels = num_channels

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate input and output of each block along the channels
            X = concat_channels(self.name, (X, Y))
        return X

    def backward(self, gy):
        g = gy  # dL/dX_k, from k = n down
        for blk in reversed(list(self.net)):
            g_x, g_y = ops.concat_backward(g, (g.shape[1] - self.num_channels,
                                               self.num_channels))
            g = g_x + blk.backward(g_y)
        return g

    def receptive_geometry(self):
        """The last block's, which sees the input through every 3x3 convolution before it."""
        return [w for blk in self.net for layer in blk for w in layer.receptive_geometry()]


def transition_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(Classifier):
    book_input = (96, 96)

    def __init__(self, num_channels=64, growth_rate=32, arch=(4, 4, 4, 4), num_classes=10):
        super().__init__()
        self.net = nn.Sequential(self.b1())
        for i, num_convs in enumerate(arch):
            self.net.add_module(f"dense_blk{i + 1}", DenseBlock(num_convs, growth_rate))
            # The number of output channels in the previous dense block
            num_channels += num_convs * growth_rate
            # A transition layer that halves the number of channels is added
            # between the dense blocks
            if i != len(arch) - 1:
                num_channels //= 2
                self.net.add_module(f"tran_blk{i + 1}", transition_block(num_channels))
        self.net.add_module("last", nn.Sequential(
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.LazyLinear(num_classes)))

    # The same stem as ResNet's (d2l 8.7.4: 7x7 convolution, BatchNorm, ReLU, max pool).
    b1 = staticmethod(ResNet.b1)
