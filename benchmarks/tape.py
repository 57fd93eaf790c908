"""The book's ResNet-18 on the autograd tape against scratchnet's own by manual backprop.

    python -m benchmarks.tape [--batch 32] [--steps 5] [--rounds 2]

The same layers either way: d2l 8.6's ``Residual`` (only a ``forward``, ``F.relu`` and
``Y += X``) as the seed notebook writes it, ported by ``scratchnet.port``, trains on
the tape; ``scratchnet.models.ResNet18`` (whose blocks have their own ``backward``)
by manual backprop. One training step: forward, cross-entropy, zero_grad, backward
(no optimizer step, the same for both). Rounds alternate so drift hits both alike.
"""
import argparse
import pathlib
import time

import numpy as np

from .common import machine

SEED = pathlib.Path(__file__).resolve().parents[1] / "tests" / "seed" / \
    "000_f6b39f2976603ebe.txt"
RESNET_CELLS = (44, 45, 48, 49, 50)  # imports, Residual, ResNet's b1, block, __init__


def book_resnet18():
    """The seed's ResNet-18, its cells run as ported (only the imports changed)."""
    from scratchnet.port import cells_from_export, port
    cells = cells_from_export(SEED.read_text(encoding="utf-8"))
    namespace = {"__name__": "__main__"}
    for i in RESNET_CELLS:
        exec(port(cells[i]), namespace)
    resnet = namespace["ResNet"]
    return resnet(((2, 64), (2, 128), (2, 256), (2, 512)), lr=0.01), namespace["d2l"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    import scratchnet as sn
    from scratchnet import models, nn
    from scratchnet.nn import functional as F
    sn.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.random((args.batch, 1, 96, 96), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
    book, d2l = book_resnet18()
    book.apply_init([sn.tensor(X[:2])], d2l.init_cnn)
    own = models.ResNet18()
    own(X[:2])
    loss = nn.CrossEntropyLoss()

    def tape_step():
        l = F.cross_entropy(book(sn.as_tensor(X)), sn.as_tensor(y))  # noqa: E741
        book.zero_grad()
        l.backward()

    def manual_step():
        l = loss(own(X), y)  # noqa: E741
        own.zero_grad()
        own.backward(loss.backward())

    print(machine())
    times = {"tape": [], "manual": []}
    for _ in range(args.rounds):
        for name, step in (("tape", tape_step), ("manual", manual_step)):
            step()  # warm: workspaces, caches
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t) / args.steps)
    for name, ts in times.items():
        print(f"ResNet-18 96x96 batch {args.batch}, {name}: "
              + ", ".join(f"{t:.3f}" for t in ts) + " s per step")
    ratios = [a / b for a, b in zip(times["tape"], times["manual"])]
    print("tape / manual: " + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
