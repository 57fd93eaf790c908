"""GoogLeNet as in d2l 8.4: Inception blocks, four branches side by side (1x1, 3x3 and
5x5 convolutions and a max pool) joined along the channels; and concat_channels, the
book's ``torch.cat(..., dim=1)`` in a block's forward."""
from .. import nn, ops
from ..autograd import Tensor
from ..tensors import cat
from .classifier import Classifier


def concat_channels(name, parts):
    """``torch.cat(parts, dim=1)``: arrays joined by ops.concat (the block's backward
    splits dL/dY with ops.concat_backward), or, on the autograd tape, Tensors joined by
    the tape's cat, which records the split. Parts whose batch or image sizes differ are
    refused, naming the block ``name`` and both shapes."""
    if any(isinstance(p, Tensor) for p in parts):
        # checked here too, so that the error names the block and not the tape's cat
        ops.check_concat([p.shape for p in parts], axis=1, name=name)
        return cat(parts, dim=1)
    return ops.concat(parts, axis=1, name=name)  # (which checks the shapes, naming it)


class Inception(nn.Module):
    """Four branches on the same x, their outputs stacked along the channels:

        b1 = relu(1x1(x)),  b2 = relu(3x3(relu(1x1(x)))),  b3 = relu(5x5(relu(1x1(x)))),
        b4 = relu(1x1(maxpool3x3(x))),  y = [b1, b2, b3, b4]

    with c1, c2[1], c3[1], c4 output channels (c2[0], c3[0]: the 1x1 reductions).
    Every branch keeps the image size. backward sends each branch its slice of dL/dy
    (the split of the concatenation) and sums the four branch gradients at x.
    The book's F.relu are ReLU modules here (no parameters: the keys stay the book's).
    """

    def __init__(self, c1, c2, c3, c4):
        super().__init__()
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)
        self.relu1 = nn.ReLU()
        self.relu2_1, self.relu2_2 = nn.ReLU(), nn.ReLU()
        self.relu3_1, self.relu3_2 = nn.ReLU(), nn.ReLU()
        self.relu4 = nn.ReLU()
        self.branch_channels = (c1, c2[1], c3[1], c4)  # how backward splits dL/dy

    def forward(self, x):
        b1 = self.relu1(self.b1_1(x))
        b2 = self.relu2_2(self.b2_2(self.relu2_1(self.b2_1(x))))
        b3 = self.relu3_2(self.b3_2(self.relu3_1(self.b3_1(x))))
        b4 = self.relu4(self.b4_2(self.b4_1(x)))
        return concat_channels(self.name, (b1, b2, b3, b4))

    def backward(self, gy):
        g1, g2, g3, g4 = ops.concat_backward(gy, self.branch_channels)
        gx1 = self.b1_1.backward(self.relu1.backward(g1))
        gx2 = self.b2_1.backward(self.relu2_1.backward(
            self.b2_2.backward(self.relu2_2.backward(g2))))
        gx3 = self.b3_1.backward(self.relu3_1.backward(
            self.b3_2.backward(self.relu3_2.backward(g3))))
        gx4 = self.b4_1.backward(self.b4_2.backward(self.relu4.backward(g4)))
        return gx1 + gx2 + gx3 + gx4

    def receptive_geometry(self):
        """Branch 3's (1x1, then 5x5 with padding 2), whose field contains the others'."""
        return self.b3_1.receptive_geometry() + self.b3_2.receptive_geometry()


class GoogleNet(Classifier):
    book_input = (96, 96)

    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(self.b1(), self.b2(), self.b3(), self.b4(),
                                 self.b5(), nn.LazyLinear(num_classes))

    @staticmethod
    def b1():
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    @staticmethod
    def b2():
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=1), nn.ReLU(),
            nn.LazyConv2d(192, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    @staticmethod
    def b3():
        return nn.Sequential(Inception(64, (96, 128), (16, 32), 32),
                             Inception(128, (128, 192), (32, 96), 64),
                             nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    @staticmethod
    def b4():
        return nn.Sequential(Inception(192, (96, 208), (16, 48), 64),
                             Inception(160, (112, 224), (24, 64), 64),
                             Inception(128, (128, 256), (24, 64), 64),
                             Inception(112, (144, 288), (32, 64), 64),
                             Inception(256, (160, 320), (32, 128), 128),
                             nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    @staticmethod
    def b5():
        return nn.Sequential(Inception(256, (160, 320), (32, 128), 128),
                             Inception(384, (192, 384), (48, 128), 128),
                             nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


GoogLeNet = GoogleNet  # the paper's spelling
