"""Train ResNet-18 (d2l 8.6) on Fashion-MNIST resized to 96x96.

    python examples/train_resnet.py --device gpu       # d2l's settings: lr 0.01, 10 epochs
    python examples/train_resnet.py --subset 512 --epochs 1   # minutes on a CPU
"""
from common import parse, parser, run

from scratchnet import nn
from scratchnet.models import ResNet18

RECIPES = {"d2l": dict(lr=0.01, momentum=0.0, weight_decay=0.0, batch_size=128, epochs=10)}

if __name__ == "__main__":
    p = parser(__doc__.split("\n")[0], RECIPES, "runs/resnet")
    p.add_argument("--resize", type=int, default=96, help="image side (d2l: 96)")
    args = parse(p, RECIPES)
    run(args, ResNet18, "ResNet-18", resize=(args.resize, args.resize), init=nn.init.init_cnn)
