"""LeNet-5 as in d2l 7.6: sigmoid, average pooling, lazy layers, Xavier init; and
8.5's BNLeNet, the same with BatchNorm after each convolution and linear layer."""
from .. import nn
from .classifier import Classifier


class LeNet(Classifier):
    """The LeNet-5 model. ``modern=True`` swaps in ReLU, BatchNorm and max pooling."""

    book_input = (28, 28)

    def __init__(self, num_classes=10, modern=False):
        super().__init__()
        if not modern:
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.Sigmoid(),
                nn.LazyLinear(84), nn.Sigmoid(),
                nn.LazyLinear(num_classes))
        else:
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5, padding=2), nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.MaxPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(), nn.ReLU(),
                nn.MaxPool2d(kernel_size=2, stride=2),
                nn.Flatten(),
                nn.LazyLinear(120), nn.BatchNorm1d(120), nn.ReLU(),
                nn.LazyLinear(84), nn.BatchNorm1d(84), nn.ReLU(),
                nn.LazyLinear(num_classes))


class BNLeNet(Classifier):
    """d2l 8.5's concise LeNet with batch normalization: LazyBatchNorm2d after each
    convolution (no padding: 28x28 -> 24x24), LazyBatchNorm1d after each hidden
    LazyLinear, sigmoid activations."""

    book_input = (28, 28)

    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), nn.LazyBatchNorm1d(),
            nn.Sigmoid(), nn.LazyLinear(84), nn.LazyBatchNorm1d(),
            nn.Sigmoid(), nn.LazyLinear(num_classes))
