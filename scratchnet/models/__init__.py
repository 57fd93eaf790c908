"""The chapters' models: LeNet (7.6), AlexNet (8.1), VGG (8.2), NiN (8.3), GoogLeNet (8.4),
BNLeNet (8.5), ResNet-18 (8.6), ResNeXt's block (8.6.5), DenseNet (8.7), AnyNet and
RegNetX-32 (8.8), and layer_summary."""
from .alexnet import AlexNet
from .classifier import Classifier, check_image_size, layer_summary
from .densenet import DenseBlock, DenseNet, conv_block, transition_block
from .googlenet import GoogLeNet, GoogleNet, Inception, concat_channels
from .lenet import BNLeNet, LeNet
from .nin import NiN, nin_block
from .regnet import AnyNet, RegNetX32
from .resnet import ResNet, ResNet18, ResNeXtBlock, Residual
from .vgg import VGG, VGG11, VGG_SMALL, vgg_block
