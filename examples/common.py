"""What the three training scripts share: flags, device and seed, data, optimizer,
one-line errors and the report. train_lenet.py takes these steps one by one;
train_vgg.py and train_resnet.py call :func:`run`, which takes the same."""
import argparse
import contextlib
import sys

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader, DownloadError, FashionMNIST
from scratchnet.trace import trace
from scratchnet.train import NonFiniteLossError, Trainer, evaluate, skipping_input_grad


def parser(description, recipes, default_out):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--recipe", choices=recipes, default=next(iter(recipes)))
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=("constant", "cosine"),
                   help="learning-rate schedule over the epochs")
    p.add_argument("--data-dir", help="folder holding the four Fashion-MNIST IDX files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", type=int, help="train on the first N images only (and test "
                   "on the first N/6)")
    p.add_argument("--out", default=default_out, help="where history, plot and checkpoints go")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.npz")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--trace", action="store_true", help="before training, print a per-layer "
                   "table of one forward and backward on the first batch (shapes, FLOPs, "
                   "cached bytes, times, gradient norms)")
    return p


def parse(p, recipes, argv=None):
    args = p.parse_args(argv)
    for k, v in recipes[args.recipe].items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    return args


def start(args):
    """Use --device (exit with one line when there is no such device) and seed --seed."""
    try:
        sn.use_device(args.device)
    except sn.DeviceError as e:
        sys.exit(f"--device {args.device}: {e}")
    sn.manual_seed(args.seed)


def fashion_mnist(args, resize=None):
    """(train_iter, test_iter): shuffled minibatches of --batch-size, and the test
    images 256 at a time; --subset N keeps the first N training and N/6 test images."""
    try:
        train = FashionMNIST(root=args.data_dir, train=True)
        test = FashionMNIST(root=args.data_dir, train=False)
    except DownloadError as e:
        sys.exit(str(e))  # it says where it looked and how to provide the files
    except (ValueError, FileNotFoundError) as e:  # a damaged or incomplete data folder
        sys.exit(f"{type(e).__name__}: {e}")
    test_subset = None if args.subset is None else max(args.subset // 6, 1)
    train_iter = DataLoader(train, args.batch_size, shuffle=True, seed=args.seed,
                            subset=args.subset, resize=resize)
    test_iter = DataLoader(test, 256, subset=test_subset, resize=resize)
    return train_iter, test_iter


def sgd(args, model):
    """(optimizer, scheduler or None): SGD with the recipe's rate, momentum and weight
    decay, and its learning-rate schedule over the epochs."""
    optimizer = sn.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                             weight_decay=args.weight_decay)
    if _schedule(args) == "cosine":
        return optimizer, sn.optim.CosineAnnealingLR(optimizer, T_max=args.epochs)
    return optimizer, None


def _schedule(args):
    return getattr(args, "schedule", None) or "constant"


def describe(args, name, model, train_iter, resize=None):
    """One line: the model, the recipe and the data."""
    print(f"{name} ({args.recipe} recipe) on {args.device}: {model.num_parameters():,} "
          f"parameters, {len(train_iter.labels)} training images"
          f"{'' if resize is None else f' resized to {resize}'}, batch {args.batch_size}, "
          f"lr {args.lr} ({_schedule(args)}), {args.epochs} epochs")


@contextlib.contextmanager
def one_line_errors():
    """A diverged run, a corrupt or missing checkpoint, a damaged data file: exit with
    one line that says which and where, not a traceback."""
    try:
        yield
    except (NonFiniteLossError, ValueError, FileNotFoundError) as e:
        sys.exit(f"{type(e).__name__}: {e}")


def report(args, model, test_iter):
    """Print (and return) the accuracy on the test images."""
    loss, acc = evaluate(model, test_iter)
    print(f"test accuracy {acc:.4f} (loss {loss:.4f}) on {len(test_iter.labels)} images; "
          f"history and curves.png in {args.out}/")
    return acc


def print_trace(model, train_iter):
    """The trace of the first batch, with its labels, as the Trainer will run it: the
    first layer computes no dL/dx."""
    X, y = next(iter(train_iter))
    with skipping_input_grad(model):
        print(trace(model, X, labels=y))


def run(args, make_model, name, resize=None, init=None):
    """train_lenet.py's steps for any model: set up, load Fashion-MNIST, fit, and print
    the test accuracy."""
    start(args)
    train_iter, test_iter = fashion_mnist(args, resize)
    model = make_model()
    nn.init.apply_init(model, [next(iter(train_iter))[0][:2]], init)
    optimizer, scheduler = sgd(args, model)
    describe(args, name, model, train_iter, resize)
    if getattr(args, "trace", False):
        print_trace(model, train_iter)
    trainer = Trainer(max_epochs=args.epochs, out=args.out, progress=not args.no_progress)
    with one_line_errors():
        trainer.fit(model, train_iter, test_iter, optimizer, resume=args.resume,
                    scheduler=scheduler)
    return report(args, model, test_iter)
