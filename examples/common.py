"""What the three training scripts share: flags, data, the fit loop and the report."""
import argparse
import sys

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader, DownloadError, FashionMNIST
from scratchnet.trace import trace
from scratchnet.train import NonFiniteLossError, Trainer, evaluate, first_layer


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


def run(args, make_model, name, resize=None, init=None):
    """Set the device and seed, load Fashion-MNIST, fit, and print the test accuracy."""
    try:
        sn.use_device(args.device)
    except sn.DeviceError as e:
        sys.exit(f"--device {args.device}: {e}")
    sn.manual_seed(args.seed)
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

    model = make_model()
    nn.init.apply_init(model, [next(iter(train_iter))[0][:2]], init)
    opt = sn.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                       weight_decay=args.weight_decay)
    schedule = getattr(args, "schedule", None) or "constant"
    scheduler = (sn.optim.CosineAnnealingLR(opt, T_max=args.epochs) if schedule == "cosine"
                 else None)
    print(f"{name} ({args.recipe} recipe) on {args.device}: {model.num_parameters():,} "
          f"parameters, {len(train_iter.labels)} training images"
          f"{'' if resize is None else f' resized to {resize}'}, batch {args.batch_size}, "
          f"lr {args.lr} ({schedule}), {args.epochs} epochs")
    if getattr(args, "trace", False):
        print_trace(model, train_iter)
    trainer = Trainer(max_epochs=args.epochs, out=args.out, progress=not args.no_progress)
    try:
        trainer.fit(model, train_iter, test_iter, opt, resume=args.resume, scheduler=scheduler)
    except (NonFiniteLossError, ValueError, FileNotFoundError) as e:
        # A diverged run, a corrupt or missing checkpoint, a damaged data file: one
        # line that says which and where, not a traceback.
        sys.exit(f"{type(e).__name__}: {e}")
    loss, acc = evaluate(model, test_iter)
    print(f"test accuracy {acc:.4f} (loss {loss:.4f}) on {len(test_iter.labels)} images; "
          f"history and curves.png in {args.out}/")
    return acc


def print_trace(model, train_iter):
    """The trace of the first batch, with its labels, as the Trainer will run it: the
    first layer computes no dL/dx."""
    X, y = next(iter(train_iter))
    first = first_layer(model)
    previous = first is not None and first.needs_input_grad
    if first is not None:
        first.needs_input_grad = False
    try:
        print(trace(model, X, labels=y))
    finally:
        if first is not None:
            first.needs_input_grad = previous
