"""d2l's ResNet-18 (8.6) written in PyTorch, the peer of scratchnet.models.ResNet18."""
import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) \
            if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet18(num_classes=10):
    def block(num_residuals, num_channels, first_block=False):
        return nn.Sequential(*[
            Residual(num_channels, use_1x1conv=True, strides=2) if i == 0 and not first_block
            else Residual(num_channels) for i in range(num_residuals)])

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
            for i, b in enumerate(((2, 64), (2, 128), (2, 256), (2, 512))):
                self.net.add_module(f"b{i + 2}", block(*b, first_block=(i == 0)))
            self.net.add_module("last", nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))

        def forward(self, x):
            return self.net(x)

    model = ResNet()
    with torch.no_grad():
        model(torch.zeros(2, 1, 96, 96))
    return model
