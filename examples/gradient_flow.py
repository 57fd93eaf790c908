"""Gradient flow in LeNet: sigmoid (d2l 7.6) against ReLU + BatchNorm.

    python examples/gradient_flow.py                  # 200 steps of each recipe
    python examples/gradient_flow.py --steps 100 --every 2

Trains both LeNet recipes on Fashion-MNIST for a few hundred steps, records the
norm of every Conv/Linear layer's weight gradient every --every steps
(``Trainer(grad_norms_every=...)``) and draws them side by side, log scale, to
--out. In the sigmoid network each sigmoid scales the gradient by at most 1/4
on its way down, so the first convolution's gradient is hundreds of times
smaller than the last layer's: it learns slowly (d2l's LeNet barely moves in
its first epoch). With ReLU and BatchNorm every layer's gradient has the same
order of magnitude.
"""
import argparse
import json
import pathlib
import statistics
import sys

import matplotlib

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader, DownloadError, FashionMNIST
from scratchnet.models import LeNet
from scratchnet.train import Trainer, weight_layer_labels
from scratchnet.viz import draw_grad_norms, save_figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

ROOT = pathlib.Path(__file__).resolve().parents[1]

RECIPES = {
    # d2l 7.6: sigmoid, average pooling, Xavier init, plain SGD.
    "d2l": dict(modern=False, init=nn.init.init_cnn, lr=0.1, momentum=0.0),
    # ReLU + BatchNorm + max pooling, PyTorch's default init, SGD with momentum.
    "modern": dict(modern=True, init=None, lr=0.05, momentum=0.9),
}


def train(recipe, data, args):
    """Train one recipe for args.steps steps; (trainer, model)."""
    r = RECIPES[recipe]
    sn.manual_seed(args.seed)
    train_iter = DataLoader(data, args.batch_size, shuffle=True, seed=args.seed,
                            subset=args.steps * args.batch_size, drop_last=True)
    model = LeNet(modern=r["modern"])
    nn.init.apply_init(model, [next(iter(train_iter))[0][:2]], r["init"])
    opt = sn.optim.SGD(model.parameters(), lr=r["lr"], momentum=r["momentum"])
    trainer = Trainer(max_epochs=1, progress=not args.no_progress, log=None,
                      grad_norms_every=args.every)
    trainer.fit(model, train_iter, None, opt)
    return trainer, model


def summarize(recipe, trainer, model, first_steps=5):
    """Print the first and last layer's gradient norms: early median and overall median."""
    names = list(weight_layer_labels(model))
    first, last = names[0], names[-1]
    rows = trainer.grad_norms
    early = rows[:first_steps]
    out = {}
    for when, sel in (("first %d records" % len(early), early), ("all records", rows)):
        f = statistics.median(r[first] for r in sel)
        la = statistics.median(r[last] for r in sel)
        out[when] = (f, la)
        print(f"{recipe:6s} {when:17s}: first layer ({first}) {f:.2e}, last layer ({last}) "
              f"{la:.2e}, ratio last/first {la / f:.0f}")
    h = trainer.history[-1]
    print(f"{recipe:6s} after {trainer.global_step} steps: train loss {h['train_loss']:.3f}, "
          f"train acc {h['train_acc']:.3f}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200, help="training steps per recipe")
    p.add_argument("--every", type=int, default=5, help="record the norms every N steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--data-dir", help="folder holding the four Fashion-MNIST IDX files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "docs" / "img" / "gradient_flow.png"))
    p.add_argument("--json", help="also write the recorded norms of both recipes here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        sn.use_device(args.device)
    except sn.DeviceError as e:
        sys.exit(f"--device {args.device}: {e}")
    try:
        data = FashionMNIST(root=args.data_dir, train=True)
    except DownloadError as e:
        sys.exit(str(e))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    titles = {"d2l": "d2l LeNet: sigmoid, avg pool, SGD lr 0.1",
              "modern": "ReLU + BatchNorm, max pool, SGD lr 0.05 momentum 0.9"}
    record = {}
    for ax, recipe in zip(axes, RECIPES):
        trainer, model = train(recipe, data, args)
        summarize(recipe, trainer, model)
        draw_grad_norms(ax, trainer.grad_norms, titles[recipe], weight_layer_labels(model))
        record[recipe] = trainer.grad_norms
    axes[1].set_ylabel("")
    fig.suptitle(f"Weight-gradient norm per layer, Fashion-MNIST, batch {args.batch_size}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out)
    print(f"wrote {out}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(record, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
