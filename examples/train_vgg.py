"""Train the small VGG of d2l 8.2.3 on Fashion-MNIST resized to 224x224.

    python examples/train_vgg.py --device gpu          # d2l's settings: lr 0.01, 10 epochs
    python examples/train_vgg.py --subset 512 --epochs 1 --resize 64   # minutes on a CPU
"""
from common import parse, parser, run

from scratchnet import nn
from scratchnet.models import VGG, VGG_SMALL

RECIPES = {"d2l": dict(lr=0.01, momentum=0.0, weight_decay=0.0, batch_size=128, epochs=10)}

if __name__ == "__main__":
    p = parser(__doc__.split("\n")[0], RECIPES, "runs/vgg")
    p.add_argument("--resize", type=int, default=224, help="image side (d2l: 224)")
    args = parse(p, RECIPES)
    run(args, lambda: VGG(arch=VGG_SMALL), "VGG-small", resize=(args.resize, args.resize),
        init=nn.init.init_cnn)
