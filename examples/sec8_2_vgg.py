"""d2l 8.2: VGG-11's layer summary and the smaller VGG trained in 8.2.3.

    python examples/sec8_2_vgg.py          (training: examples/train_vgg.py)
"""
import scratchnet as sn
from scratchnet.models import VGG, VGG11, VGG_SMALL

sn.manual_seed(0)
print("VGG-11, arch", VGG11)
VGG(arch=VGG11).layer_summary((1, 1, 224, 224))
print("\nthe small VGG of 8.2.3, arch", VGG_SMALL)
VGG(arch=VGG_SMALL).layer_summary((1, 1, 224, 224))
