"""Train the small VGG of d2l 8.2.3 on Fashion-MNIST resized to 224x224.

    python examples/train_vgg.py --device gpu          # d2l's settings: lr 0.01, 10 epochs
    python examples/train_vgg.py --subset 512 --epochs 1 --resize 64   # minutes on a CPU
"""
from common import image_side, parse, parser, run

from scratchnet import nn
from scratchnet.models import VGG, VGG_SMALL

RECIPES = {"d2l": dict(lr=0.01, momentum=0.0, weight_decay=0.0, batch_size=128, epochs=10,
                    schedule="constant")}

if __name__ == "__main__":
    p = parser(__doc__.split("\n")[0], RECIPES, "runs/vgg")
    # Five 2x2 max-pools halve the side five times: below 32 the last has nothing to pool.
    p.add_argument("--resize", type=image_side(32, "VGG halves the side five times"),
                   default=224, help="image side, at least 32 (default and d2l: %(default)s)")
    args = parse(p, RECIPES)
    run(args, lambda: VGG(arch=VGG_SMALL), "VGG-small", resize=(args.resize, args.resize),
        init=nn.init.init_cnn)
