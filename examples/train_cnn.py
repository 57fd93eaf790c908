"""Train any CNN of d2l chapters 7-8 on Fashion-MNIST, with the book's settings.

    python examples/train_cnn.py --model googlenet --device gpu   # the book: 96x96, lr 0.01
    python examples/train_cnn.py --model densenet --subset 512 --epochs 1 --resize 48   # a CPU

--model picks the network; --lr and --resize default to what the book uses for it (the
table below). Every other flag is train_lenet.py's (examples/common.py).
"""
from common import parse, parser, positive_int, run

from scratchnet import nn
from scratchnet import models
from scratchnet.models import check_image_size

# name: (the model, its name, the book's learning rate, the book's image side, section)
MODELS = {
    "lenet": (models.LeNet, "LeNet", 0.1, 28, "7.6"),
    "alexnet": (models.AlexNet, "AlexNet", 0.01, 224, "8.1"),
    "vgg": (lambda: models.VGG(arch=models.VGG_SMALL), "VGG-small", 0.01, 224, "8.2"),
    "nin": (models.NiN, "NiN", 0.05, 224, "8.3"),
    "googlenet": (models.GoogleNet, "GoogleNet", 0.01, 96, "8.4"),
    "bnlenet": (models.BNLeNet, "BNLeNet", 0.1, 28, "8.5"),
    "resnet18": (models.ResNet18, "ResNet-18", 0.01, 96, "8.6"),
    "densenet": (models.DenseNet, "DenseNet", 0.01, 96, "8.7"),
    "regnetx32": (models.RegNetX32, "RegNetX-32", 0.05, 96, "8.8"),
}
BOOK = "book"  # the recipe's lr: the model's own, from MODELS
RECIPES = {"d2l": dict(lr=BOOK, momentum=0.0, weight_decay=0.0, batch_size=128, epochs=10,
                       schedule="constant")}


def smallest_side(make_model, largest):
    """The smallest square image the model's layers take (their windows and strides,
    checked before anything runs by models.check_image_size)."""
    model = make_model()
    for side in range(1, largest + 1):
        try:
            check_image_size(model, (1, 1, side, side))
            return side
        except ValueError:
            continue
    return largest


def main(argv=None):
    p = parser(__doc__.split("\n")[0], RECIPES, "runs/{model}")
    p.add_argument("--model", choices=MODELS, required=True,
                   help="; ".join(f"{k}: d2l {m[4]}, lr {m[2]}, {m[3]}x{m[3]}"
                                  for k, m in MODELS.items()))
    p.add_argument("--resize", type=positive_int,
                   help="image side (default: the book's for the model)")
    args = parse(p, RECIPES, argv)
    make_model, name, lr, side, _ = MODELS[args.model]
    args.lr = lr if args.lr == BOOK else args.lr
    args.resize = side if args.resize is None else args.resize
    least = smallest_side(make_model, side)
    if args.resize < least:
        p.error(f"argument --resize: {name} takes images of at least {least}x{least} "
                f"(its windows and strides), got {args.resize}; the book uses {side}")
    resize = None if args.resize == 28 else (args.resize, args.resize)
    return run(args, make_model, name, resize=resize, init=nn.init.init_cnn)


if __name__ == "__main__":
    main()
