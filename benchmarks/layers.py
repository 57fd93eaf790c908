"""Per-layer forward + backward time, scratchnet against PyTorch, float32.

    python -m benchmarks.layers [--device gpu] [--quick]

Conv2d at the layer shapes of LeNet (28x28), VGG-small (224x224) and ResNet-18
(96x96), then pooling, BatchNorm, Linear and cross-entropy. Prints a Markdown
table of milliseconds (best of --repeat runs, the two frameworks alternating)
and the ratio scratchnet / PyTorch. ``run()`` yields the same rows, for callers
in one process (benchmarks.gpu_check runs it with fewer repeats).
"""
import argparse

import numpy as np
import torch

import scratchnet as sn
from scratchnet import nn

from .common import machine, paired, print_rows

# (name, batch, C_in, H, C_out, kernel, stride, padding)
CONVS = [
    ("LeNet conv1", 128, 1, 28, 6, 5, 1, 2),
    ("LeNet conv2", 128, 6, 14, 16, 5, 1, 0),
    ("VGG-small b1 conv", 16, 1, 224, 16, 3, 1, 1),
    ("VGG-small b2 conv", 16, 16, 112, 32, 3, 1, 1),
    ("VGG-small b3 conv", 16, 32, 56, 64, 3, 1, 1),
    ("VGG-small b5 conv", 16, 128, 14, 128, 3, 1, 1),
    ("ResNet-18 stem 7x7/2", 32, 1, 96, 64, 7, 2, 3),
    ("ResNet-18 b2 3x3", 32, 64, 24, 64, 3, 1, 1),
    ("ResNet-18 b3 3x3/2", 32, 64, 24, 128, 3, 2, 1),
    ("ResNet-18 b3 1x1/2", 32, 64, 24, 128, 1, 2, 0),
    ("ResNet-18 b4 3x3", 32, 256, 6, 256, 3, 1, 1),
    ("ResNet-18 b5 3x3", 32, 512, 3, 512, 3, 1, 1),
]


HEADERS = ["layer (forward + backward)", "input", "scratchnet ms", "PyTorch ms", "ratio"]


def bench_pair(layer, tlayer, shape, xp, sync, repeat, labels=None, warmup_s=0.3, rounds=3):
    rs = np.random.default_rng(0)
    x = xp.asarray(rs.standard_normal(shape).astype(np.float32))
    dev = "cuda" if xp is not np else "cpu"
    xt = torch.tensor(sn.to_numpy(x), device=dev, requires_grad=True)
    if labels is not None:
        y = xp.asarray(rs.integers(0, shape[1], shape[0]))
        yt = torch.tensor(sn.to_numpy(y), device=dev)

        def ours():
            layer(x, y)
            layer.backward()

        def theirs():
            tlayer(xt, yt).backward()
    else:
        out = layer(x)
        gy = xp.asarray(rs.standard_normal(out.shape).astype(np.float32))
        gyt = torch.tensor(sn.to_numpy(gy), device=dev)

        def ours():
            layer(x)
            layer.backward(gy)

        def theirs():
            tlayer(xt).backward(gyt)
    tsync = torch.cuda.synchronize if dev == "cuda" else None
    return paired(ours, theirs, repeat, sync, tsync, rounds=rounds, warmup_s=warmup_s)


def run(device="cpu", repeat=9, warmup_s=0.3, rounds=3):
    """Yield one row per layer (the columns of HEADERS), as soon as it is measured.

    ``repeat``, ``warmup_s`` and ``rounds`` go to common.paired; a caller short of
    time (benchmarks.gpu_check) lowers them.
    """
    with sn.use_device(device):
        xp = sn.backend.device_module()
        sync = None if xp is np else (lambda: xp.cuda.Device().synchronize())
        dev = "cuda" if xp is not np else "cpu"
        timing = dict(warmup_s=warmup_s, rounds=rounds)

        def row(name, shape, ours, theirs):
            return [name, str(shape), f"{ours * 1e3:.2f}", f"{theirs * 1e3:.2f}",
                    f"{ours / theirs:.2f}"]

        for name, n, c, h, o, k, s, pd in CONVS:
            layer = nn.Conv2d(c, o, k, stride=s, padding=pd)
            tlayer = torch.nn.Conv2d(c, o, k, stride=s, padding=pd).to(dev)
            yield row(f"Conv2d {name} ({k}x{k}, {c}->{o})", (n, c, h, h),
                      *bench_pair(layer, tlayer, (n, c, h, h), xp, sync, repeat, **timing))
        others = [
            ("MaxPool2d 2/2 (VGG)", nn.MaxPool2d(2, 2), torch.nn.MaxPool2d(2, 2),
             (16, 64, 112, 112)),
            ("MaxPool2d 3/2 pad 1 (ResNet stem)", nn.MaxPool2d(3, 2, 1),
             torch.nn.MaxPool2d(3, 2, 1), (32, 64, 48, 48)),
            ("AvgPool2d 2/2 (LeNet)", nn.AvgPool2d(2, 2), torch.nn.AvgPool2d(2, 2),
             (128, 6, 28, 28)),
            ("BatchNorm2d (ResNet b2)", nn.BatchNorm2d(64), torch.nn.BatchNorm2d(64),
             (32, 64, 24, 24)),
            ("Linear 400->120 (LeNet)", nn.Linear(400, 120), torch.nn.Linear(400, 120),
             (128, 400)),
            ("Linear 6272->4096 (VGG-small)", nn.Linear(6272, 4096),
             torch.nn.Linear(6272, 4096), (16, 6272)),
            ("Sigmoid (LeNet conv1 output)", nn.Sigmoid(), torch.nn.Sigmoid(), (128, 6, 28, 28)),
            ("ReLU (ResNet b2)", nn.ReLU(), torch.nn.ReLU(), (32, 64, 24, 24)),
        ]
        for name, layer, tlayer, shape in others:
            yield row(name, shape,
                      *bench_pair(layer, tlayer.to(dev), shape, xp, sync, repeat, **timing))
        yield row("CrossEntropyLoss (128, 10)", (128, 10),
                  *bench_pair(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), (128, 10), xp,
                              sync, repeat, labels=True, **timing))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args()
    sn.use_device(args.device)  # fails here, before any output, without a GPU
    print(machine())
    print_rows(run(args.device, args.repeat), HEADERS)


if __name__ == "__main__":
    main()
