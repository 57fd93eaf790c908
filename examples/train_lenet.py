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
from common import (describe, fashion_mnist, one_line_errors, parse, parser, print_trace,
                    report, sgd, start)

from scratchnet import nn
from scratchnet.models import LeNet
from scratchnet.train import Trainer

RECIPES = {
    # d2l 7.6: sigmoid LeNet, Xavier init, plain SGD.
    "d2l": dict(lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=128, epochs=10,
                schedule="constant"),
    # ReLU + BatchNorm + max pooling, PyTorch's default init, SGD with momentum and a
    # cosine schedule (a constant rate leaves the test accuracy jumping by 2-3 points).
    "modern": dict(lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=128, epochs=10,
                   schedule="cosine"),
}


def main():
    # Flags: every value is checked here, before anything is read or written.
    args = parse(parser(__doc__.split("\n")[0], RECIPES, "runs/lenet"), RECIPES)
    # Ctrl-C, a damaged file or a diverged run: one line, not a traceback.
    with one_line_errors() as run:
        start(args)  # --device, and the seed (weights, shuffling) from --seed

        # Data: 28x28 grey images of ten kinds of clothing, in shuffled minibatches.
        train_iter, test_iter = fashion_mnist(args)

        # Model: a first batch fixes the lazy layers' sizes; the d2l recipe then draws
        # Xavier weights, the modern one keeps PyTorch's default init.
        model = LeNet(modern=args.recipe == "modern")
        nn.init.apply_init(model, [next(iter(train_iter))[0][:2]],
                           nn.init.init_cnn if args.recipe == "d2l" else None)
        optimizer, scheduler = sgd(args, model)
        describe(args, "LeNet", model, train_iter)
        if args.trace:
            print_trace(model, train_iter)

        # Training loop: minibatch SGD, a line per epoch; history, curves and a
        # checkpoint in --out after every epoch.
        run.trainer = Trainer(max_epochs=args.epochs, out=args.out,
                              progress=not args.no_progress)
        run.trainer.fit(model, train_iter, test_iter, optimizer, resume=args.resume,
                        scheduler=scheduler)

        # Result: the accuracy on the test images.
        report(args, model, test_iter)


if __name__ == "__main__":
    main()
