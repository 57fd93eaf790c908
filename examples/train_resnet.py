"""Train ResNet-18 (d2l 8.6) on Fashion-MNIST resized to 96x96.

    python examples/train_resnet.py --device gpu       # d2l's settings: lr 0.01, 10 epochs
    python examples/train_resnet.py --subset 512 --epochs 1   # minutes on a CPU
"""
from common import image_side, parse, parser, run

from scratchnet import nn
from scratchnet.models import ResNet18

RECIPES = {"d2l": dict(lr=0.01, momentum=0.0, weight_decay=0.0, batch_size=128, epochs=10,
                    schedule="constant")}

if __name__ == "__main__":
    p = parser(__doc__.split("\n")[0], RECIPES, "runs/resnet")
    # The stem and three stages halve the side five times: below 32 the last stage sees
    # less than a pixel's worth of the image (d2l: 96).
    p.add_argument("--resize", type=image_side(32, "ResNet-18 halves the side five times"),
                   default=96, help="image side, at least 32 (default and d2l: %(default)s)")
    args = parse(p, RECIPES)
    run(args, ResNet18, "ResNet-18", resize=(args.resize, args.resize), init=nn.init.init_cnn)
