"""What the three training scripts share: flags, device and seed, data, optimizer,
one-line errors and the report. train_lenet.py takes these steps one by one;
train_vgg.py and train_resnet.py call :func:`run`, which takes the same.

Every flag's value is checked by the parser, before any data is read or any folder is
made: a bad one ends in argparse's one line (``error: argument --batch-size: must be a
positive integer, got 0``) and exit status 2. Ctrl-C ends in one line too, naming the
last good checkpoint and the command that resumes from it (exit status 130)."""
import argparse
import contextlib
import math
import os
import pathlib
import shlex
import sys

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DownloadError, DataLoader, FashionMNIST
from scratchnet.trace import trace
from scratchnet.train import NonFiniteLossError, Trainer, evaluate, skipping_input_grad


# Flag types: each says its range, and its error is the one line argparse prints after
# "error: argument --flag: ".
def _number(text, convert, what, in_range):
    """``text`` as ``convert`` (int or float) reads it, if finite and ``in_range``; the
    error quotes the text as typed."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a {what}, got {text!r}") from None
    if not math.isfinite(value) or not in_range(value):
        raise argparse.ArgumentTypeError(f"must be a {what}, got {text}")
    return value


def positive_int(text):
    return _number(text, int, "positive integer", lambda v: v >= 1)


def non_negative_int(text):
    return _number(text, int, "non-negative integer", lambda v: v >= 0)


def positive_float(text):
    """A learning rate: finite and above 0 (a rate of 0 trains nothing)."""
    return _number(text, float, "finite positive number", lambda v: v > 0)


def non_negative_float(text):
    """Momentum and weight decay: finite, 0 or more (PyTorch refuses negative ones)."""
    return _number(text, float, "finite non-negative number", lambda v: v >= 0)


def image_side(minimum, why):
    """--resize's type: an image side of at least ``minimum`` pixels (``why`` says why)."""
    def side(text):
        value = positive_int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} ({why}), got {value}")
        return value
    return side


def parser(description, recipes, default_out):
    """The flags every training script takes; --help shows each recipe's values."""
    p = argparse.ArgumentParser(description=description)

    def recipe_default(key):
        return "default: " + ", ".join(f"{r[key]} ({name})" for name, r in recipes.items())

    p.add_argument("--recipe", choices=recipes, default=next(iter(recipes)),
                   help="the training recipe; its values are the defaults below "
                        "(default: %(default)s)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="default: %(default)s")
    p.add_argument("--epochs", type=positive_int, help=recipe_default("epochs"))
    p.add_argument("--batch-size", type=positive_int, help=recipe_default("batch_size"))
    p.add_argument("--lr", type=positive_float, help="learning rate; "
                   + recipe_default("lr"))
    p.add_argument("--momentum", type=non_negative_float, help=recipe_default("momentum"))
    p.add_argument("--weight-decay", type=non_negative_float,
                   help=recipe_default("weight_decay"))
    p.add_argument("--schedule", choices=("constant", "cosine"),
                   help="learning-rate schedule over the epochs; "
                        + recipe_default("schedule"))
    p.add_argument("--data-dir", help="the folder holding the four Fashion-MNIST IDX files, "
                   "or the folder holding fashion-mnist/ (default: $SCRATCHNET_DATA, "
                   "datasets/, /usr/share/datasets/, then a download)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="weights and shuffling (default: %(default)s)")
    p.add_argument("--subset", type=positive_int, help="train on the first N images only "
                   "(and test on the first N/6; default: all)")
    p.add_argument("--out", default=default_out, help="where history, curves.png and "
                   "checkpoint.npz go (default: %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="continue from --out/checkpoint.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--trace", action="store_true", help="before training, print a per-layer "
                   "table of one forward and backward on the first batch (shapes, FLOPs, "
                   "cached bytes, times, gradient norms)")
    return p


def parse(p, recipes, argv=None):
    """The flags, with the recipe's values where none was given; the values that depend
    on each other or on the disk (--out, --resume, --data-dir) are checked here, still
    before anything is read or made."""
    args = p.parse_args(argv)
    for k, v in recipes[args.recipe].items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    if hasattr(args, "model"):  # train_cnn.py: the default --out names the model
        args.out = args.out.replace("{model}", args.model)
    _check_out(p, args)
    if args.data_dir is not None and not pathlib.Path(args.data_dir).is_dir():
        p.error(f"argument --data-dir: no such folder: {args.data_dir}")
    args.parser = p  # for errors found later (a --subset larger than the data)
    return args


def _check_out(p, args):
    """--out must be a folder or a path where one can be made; --resume needs its
    checkpoint."""
    out = pathlib.Path(args.out)
    if out.exists() and not out.is_dir():
        p.error(f"argument --out: {args.out} is a file, not a folder")
    existing = next(q for q in (out, *out.parents) if q.exists() or q == q.parent)
    if not existing.is_dir():
        p.error(f"argument --out: {existing} is a file, so {args.out} cannot be a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        p.error(f"argument --out: cannot write in {existing}")
    if args.resume and not (out / "checkpoint.npz").is_file():
        p.error(f"argument --resume: no checkpoint at {out / 'checkpoint.npz'} "
                f"(train without --resume first, or pass the --out of that run)")


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
    except DownloadError:
        sys.exit("Fashion-MNIST not found here and the download failed: pass --data-dir "
                 "FOLDER (the four IDX files, or the folder holding fashion-mnist/), set "
                 "SCRATCHNET_DATA, or 'apt install dataset-fashion-mnist'")
    except FileNotFoundError as e:  # --data-dir without the files
        sys.exit(f"argument --data-dir: {e}")
    except ValueError as e:  # a damaged data file
        sys.exit(f"{type(e).__name__}: {e}")
    if args.subset is not None and args.subset > len(train):
        args.parser.error(f"argument --subset: the training set has {len(train)} images, "
                          f"got {args.subset}")
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


def resume_command():
    """The command line that was run, with --resume added (quoted for a shell)."""
    argv = [a for a in sys.argv if a != "--resume"]
    return shlex.join(["python", *argv, "--resume"])


@contextlib.contextmanager
def one_line_errors():
    """A diverged run, a corrupt, missing or foreign checkpoint, a damaged data file:
    exit with one line that says which and where, not a traceback. Ctrl-C: one line
    with the last good checkpoint and the command that resumes, exit status 130.

    Yields a namespace: set its ``trainer`` once there is one, so that Ctrl-C can name
    the trainer's last good checkpoint."""
    run = argparse.Namespace(trainer=None)
    try:
        yield run
    except (NonFiniteLossError, ValueError, FileNotFoundError) as e:
        sys.exit(f"{type(e).__name__}: {e}")
    except KeyboardInterrupt:
        last = getattr(run.trainer, "_good_checkpoint", None)
        if run.trainer is None:
            print("\ninterrupted before training started; nothing was written",
                  file=sys.stderr)
        elif last is None:
            print("\ninterrupted before the first epoch ended: no checkpoint was written",
                  file=sys.stderr)
        else:
            print(f"\ninterrupted; the last good checkpoint is {last} (after epoch "
                  f"{len(run.trainer.history)}); resume with: {resume_command()}",
                  file=sys.stderr)
        sys.exit(130)


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
    with one_line_errors() as run:
        start(args)
        train_iter, test_iter = fashion_mnist(args, resize)
        model = make_model()
        nn.init.apply_init(model, [next(iter(train_iter))[0][:2]], init)
        optimizer, scheduler = sgd(args, model)
        describe(args, name, model, train_iter, resize)
        if getattr(args, "trace", False):
            print_trace(model, train_iter)
        run.trainer = Trainer(max_epochs=args.epochs, out=args.out,
                              progress=not args.no_progress)
        run.trainer.fit(model, train_iter, test_iter, optimizer, resume=args.resume,
                        scheduler=scheduler)
        return report(args, model, test_iter)
