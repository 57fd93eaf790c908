"""Train LeNet on Fashion-MNIST with scratchnet (d2l 7.6).

    python examples/train_lenet.py                     # d2l recipe on the CPU
    python examples/train_lenet.py --device gpu        # the same on the GPU (CuPy)
    python examples/train_lenet.py --recipe modern     # ReLU + BatchNorm + momentum
    python examples/train_lenet.py --trace --epochs 1  # first, a per-layer table of one step

Prints one line per epoch and writes history.json/.csv, curves.png and
checkpoint.npz to --out; --resume continues an interrupted run. --trace prints,
before training, each layer's shapes, FLOPs, cached bytes, times and gradient
norms on the first batch (scratchnet.trace).
"""
from common import parse, parser, run

from scratchnet import nn
from scratchnet.models import LeNet

RECIPES = {
    # d2l 7.6: sigmoid LeNet, Xavier init, plain SGD.
    "d2l": dict(lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=128, epochs=10,
                schedule="constant"),
    # ReLU + BatchNorm + max pooling, PyTorch's default init, SGD with momentum and a
    # cosine schedule (a constant rate leaves the test accuracy jumping by 2-3 points).
    "modern": dict(lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=128, epochs=10,
                   schedule="cosine"),
}

if __name__ == "__main__":
    args = parse(parser(__doc__.split("\n")[0], RECIPES, "runs/lenet"), RECIPES)
    run(args, lambda: LeNet(modern=args.recipe == "modern"), "LeNet",
        init=nn.init.init_cnn if args.recipe == "d2l" else None)
