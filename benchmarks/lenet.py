"""LeNet training throughput on real Fashion-MNIST, scratchnet against PyTorch.

    python -m benchmarks.lenet [--device gpu] [--epochs 1] [--recipes d2l modern]

Both frameworks train the same model (same initial weights) on the same
batches of 128; the table gives images/s over whole epochs and the ratio of
epoch times (scratchnet / PyTorch). ``run()`` yields the same rows, for callers in
one process (benchmarks.gpu_check).
"""
import argparse
import time

import numpy as np
import torch

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader, FashionMNIST
from scratchnet.interop import load_into_torch, torch_lenet
from scratchnet.models import LeNet
from scratchnet.train import first_layer

from .common import machine, print_rows

RECIPES = {"d2l": dict(lr=0.1), "modern": dict(lr=0.05, momentum=0.9, weight_decay=5e-4)}


HEADERS = ["model", "device", "scratchnet img/s", "PyTorch img/s", "scratchnet s/epoch",
           "PyTorch s/epoch", "ratio"]


def run(device="cpu", epochs=1, recipes=tuple(RECIPES), root=None, download=True):
    """Yield one row per recipe (the columns of HEADERS) after its ``epochs`` epochs.

    ``root`` and ``download`` go to FashionMNIST: a machine without network
    (the GPU check's) passes download=False, so that a missing data set fails at
    once instead of after every mirror's timeouts.
    """
    with sn.use_device(device):
        xp = sn.backend.device_module()
        dev = "cuda" if xp is not np else "cpu"
        sync = (lambda: xp.cuda.Device().synchronize()) if dev == "cuda" else (lambda: None)
        tsync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        train = FashionMNIST(root=root, train=True, download=download)
        for recipe in recipes:
            modern = recipe == "modern"
            sn.manual_seed(0)
            loader = DataLoader(train, 128, shuffle=True, seed=0)
            model = LeNet(modern=modern)
            nn.init.apply_init(model, [next(iter(loader))[0]],
                               None if modern else nn.init.init_cnn)
            tmodel = load_into_torch(torch_lenet(modern=modern), model).to(dev)
            first_layer(model).needs_input_grad = False  # as the Trainer does; torch skips it
            opt = sn.optim.SGD(model.parameters(), **RECIPES[recipe])
            topt = torch.optim.SGD(tmodel.parameters(), **RECIPES[recipe])
            loss_fn = nn.CrossEntropyLoss()
            ours = theirs = 0.0
            n = 0
            for epoch in range(epochs):
                loader.epoch = epoch
                batches = list(loader)
                tbatches = [(torch.as_tensor(sn.to_numpy(X), device=dev),
                             torch.as_tensor(sn.to_numpy(y), device=dev)) for X, y in batches]
                sync()
                t = time.perf_counter()
                for X, y in batches:
                    loss_fn(model(X), y)
                    opt.zero_grad()
                    model.backward(loss_fn.backward())
                    opt.step()
                sync()
                ours += time.perf_counter() - t
                tsync()
                t = time.perf_counter()
                for X, y in tbatches:
                    loss = torch.nn.functional.cross_entropy(tmodel(X), y)
                    topt.zero_grad()
                    loss.backward()
                    topt.step()
                tsync()
                theirs += time.perf_counter() - t
                n += sum(len(y) for _, y in batches)
            yield [f"LeNet {recipe}", device, f"{n / ours:.0f}", f"{n / theirs:.0f}",
                   f"{ours / epochs:.2f}", f"{theirs / epochs:.2f}", f"{ours / theirs:.2f}"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES))
    args = p.parse_args()
    sn.use_device(args.device)  # fails here, before any output, without a GPU
    print(machine())
    print_rows(run(args.device, args.epochs, args.recipes), HEADERS)


if __name__ == "__main__":
    main()
