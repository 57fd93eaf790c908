"""The chapter's models: LeNet (7.6), VGG (8.2), ResNet-18 (8.6), ResNeXt's block (8.6.5),
and layer_summary."""
from .classifier import Classifier, layer_summary
from .lenet import LeNet
from .resnet import ResNet, ResNet18, ResNeXtBlock, Residual
from .vgg import VGG, VGG11, VGG_SMALL, vgg_block
