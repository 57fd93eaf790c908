"""Train LeNet in scratchnet and in PyTorch side by side: same initial weights, same batches.

    python examples/compare_torch_lenet.py --recipe d2l --epochs 10

Prints per-epoch test accuracy and time for both, the largest step-by-step
loss difference, and writes compare.json and compare.png to --out. PyTorch is
the reference (pip install -e ".[test]" brings it).
"""
import argparse
import json
import pathlib
import time

import numpy as np
import torch

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader, FashionMNIST
from scratchnet.interop import load_into_torch, torch_lenet
from scratchnet.models import LeNet
from scratchnet.train import evaluate, first_layer

# The recipes of examples/train_lenet.py; modern also anneals the rate (cosine) per epoch.
RECIPES = {"d2l": dict(lr=0.1, momentum=0.0, weight_decay=0.0),
           "modern": dict(lr=0.05, momentum=0.9, weight_decay=5e-4)}
COSINE = {"d2l": False, "modern": True}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", choices=RECIPES, default="d2l")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", type=int)
    p.add_argument("--data-dir", help="folder holding the four Fashion-MNIST IDX files")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default="runs/compare")
    return p.parse_args()


def build(args, train_iter):
    """The scratchnet LeNet (initialised as train_lenet.py does) and a PyTorch LeNet with
    the same weights, each with its optimizer, scheduler (or None) and loss."""
    modern = args.recipe == "modern"
    model = LeNet(modern=modern)
    nn.init.apply_init(model, [next(iter(train_iter))[0]],
                       None if modern else nn.init.init_cnn)
    tmodel = load_into_torch(torch_lenet(modern=modern), model)
    first_layer(model).needs_input_grad = False  # as the Trainer does; torch skips it too
    opt = sn.optim.SGD(model.parameters(), **RECIPES[args.recipe])
    topt = torch.optim.SGD(tmodel.parameters(), **RECIPES[args.recipe])
    sched = tsched = None
    if COSINE[args.recipe]:
        sched = sn.optim.CosineAnnealingLR(opt, T_max=args.epochs)
        tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=args.epochs)
    return ((model, opt, sched, nn.CrossEntropyLoss()),
            (tmodel, topt, tsched, torch.nn.CrossEntropyLoss()))


def train_epoch(model, opt, loss_fn, batches, losses):
    """One scratchnet epoch over ``batches``; appends each step's loss; the seconds."""
    t0 = time.perf_counter()
    model.train()
    for X, y in batches:
        logits = model(X)
        losses.append(float(loss_fn(logits, y)))  # read at once: compared step by step
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    return time.perf_counter() - t0


def torch_train_epoch(tmodel, topt, tloss_fn, batches, tlosses):
    """The same epoch in PyTorch."""
    t0 = time.perf_counter()
    for X, y in batches:
        tl = tloss_fn(tmodel(torch.from_numpy(X)), torch.from_numpy(y))
        tlosses.append(tl.item())
        topt.zero_grad()
        tl.backward()
        topt.step()
    return time.perf_counter() - t0


def torch_evaluate(tmodel, data_iter):
    tmodel.eval()
    correct = n = 0
    with torch.no_grad():
        for X, y in data_iter:
            correct += int((tmodel(torch.from_numpy(X)).argmax(1).numpy() == y).sum())
            n += len(y)
    tmodel.train()
    return correct / n


def plot(path, recipe, rows, losses, tlosses, steps_per_epoch):
    """Training loss per step and test accuracy per epoch, both frameworks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    steps = np.arange(1, len(losses) + 1) / steps_per_epoch
    ax[0].plot(steps, losses, label="scratchnet", lw=1)
    ax[0].plot(steps, tlosses, "--", label="PyTorch", lw=1)
    ax[0].set(xlabel="epoch", ylabel="training loss", title=f"LeNet, {recipe} recipe")
    ax[0].legend()
    e = [r["epoch"] for r in rows]
    ax[1].plot(e, [r["scratchnet_acc"] for r in rows], "o-", label="scratchnet")
    ax[1].plot(e, [r["torch_acc"] for r in rows], "s--", label="PyTorch")
    ax[1].set(xlabel="epoch", ylabel="test accuracy")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    sn.manual_seed(args.seed)
    train_iter = DataLoader(FashionMNIST(root=args.data_dir, train=True), args.batch_size,
                            shuffle=True, seed=args.seed, subset=args.subset)
    test_iter = DataLoader(FashionMNIST(root=args.data_dir, train=False), 1000)
    (model, opt, sched, loss_fn), (tmodel, topt, tsched, tloss_fn) = build(args, train_iter)

    rows, losses, tlosses = [], [], []
    for epoch in range(args.epochs):
        train_iter.epoch = epoch
        batches = list(train_iter)  # both frameworks see exactly these batches
        sn_time = train_epoch(model, opt, loss_fn, batches, losses)
        torch_time = torch_train_epoch(tmodel, topt, tloss_fn, batches, tlosses)
        if sched is not None:
            sched.step()
            tsched.step()
        acc = evaluate(model, test_iter)[1]
        tacc = torch_evaluate(tmodel, test_iter)
        rows.append(dict(epoch=epoch + 1, scratchnet_acc=acc, torch_acc=tacc,
                         scratchnet_s=sn_time, torch_s=torch_time))
        print(f"epoch {epoch + 1:2d}  test acc scratchnet {acc:.4f}  torch {tacc:.4f}  "
              f"time scratchnet {sn_time:.1f} s  torch {torch_time:.1f} s  "
              f"(ratio {sn_time / torch_time:.2f})")

    diff = np.abs(np.array(losses) - np.array(tlosses))
    print(f"step-by-step loss: max |scratchnet - torch| = {diff.max():.2e} over {len(diff)} steps")
    (out / "compare.json").write_text(json.dumps(dict(recipe=args.recipe, epochs=rows,
                                                      max_loss_diff=float(diff.max())), indent=1))
    plot(out / "compare.png", args.recipe, rows, losses, tlosses, len(batches))


if __name__ == "__main__":
    main()
