"""Chapter 8's new CNNs: one training step, scratchnet against the book's PyTorch classes.

    python -m benchmarks.chapter8 [--device gpu] [--models AlexNet NiN ...] [--batch 32]
                                  [--warmup 2] [--steps 5] [--rounds 2] [--threads N]

Each model at the book's input size (1 channel): AlexNet and NiN 224x224, GoogLeNet,
DenseNet and RegNetX-32 96x96, BNLeNet 28x28. The PyTorch side is the book's own class,
its code cells read from tests/d2l_chapters/ by tests/chaptercells.py and run by
``scratchnet.interop.torch_book`` (as tests/models/test_chapter8_models.py does); the
same float32 weights go into scratchnet's model (``interop.load_from_torch``). One step
is zero_grad, forward, cross-entropy loss, backward and an SGD step (lr 0.01); the
layer that sees the images skips dL/dx, as the Trainer does and as PyTorch does for an
input that needs no gradient. Rounds alternate the two frameworks; each round runs
``warmup`` steps untimed, then times ``steps`` steps one by one. The table gives each
side's median step (ms) and the ratio scratchnet / PyTorch. Both use every core by default
(``--threads`` sets both, by ``torch.set_num_threads`` and ``sn.set_num_threads``).
``run()`` yields the same rows, for callers in one process (benchmarks.gpu_check).
"""
import argparse
import gc
import importlib.util
import pathlib
import statistics
import sys
import time
from typing import Callable, NamedTuple

import numpy as np

from .common import machine, print_rows

ROOT = pathlib.Path(__file__).resolve().parents[1]

# name: (the book's section, the book's class, the book's input size)
MODELS = {
    "AlexNet": ("alexnet", "AlexNet", 224),
    "NiN": ("nin", "NiN", 224),
    "GoogleNet": ("googlenet", "GoogleNet", 96),
    "BNLeNet": ("batch-norm", "BNLeNet", 28),
    "DenseNet": ("densenet", "DenseNet", 96),
    "RegNetX32": ("cnn-design", "RegNetX32", 96),
}
LR = 0.01

HEADERS = ["model", "input", "device", "scratchnet ms", "PyTorch ms", "ratio"]


def chaptercells():
    """tests/chaptercells.py (standard library only): the book's PyTorch cells. Loaded
    from its file (benchmarks/ does not put tests/ on the path), once per process."""
    if "chaptercells" not in sys.modules:
        spec = importlib.util.spec_from_file_location("chaptercells",
                                                      ROOT / "tests" / "chaptercells.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["chaptercells"] = module
    return sys.modules["chaptercells"]


def book_model(name):
    """The book's PyTorch class of model ``name``, built with its defaults (lazy)."""
    from scratchnet import interop
    section, cls, _ = MODELS[name]
    cells = chaptercells()
    return interop.torch_book(section, cells.pytorch_cells, cells.namespace)[cls]()


class Steps(NamedTuple):
    """Both models, holding the same weights, and a training step of each on the same batch."""
    model: object  # scratchnet's
    tmodel: object  # the book's, in PyTorch
    ours: Callable[[], None]
    theirs: Callable[[], None]
    sync: Callable[[], None]  # waits for the device (nothing on the CPU)
    tsync: Callable[[], None]


def make_steps(name, batch, device="cpu", seed=0):
    """Steps of model ``name`` on a random batch of ``batch`` images of the book's size."""
    import torch

    import scratchnet as sn
    from scratchnet import interop, models, nn
    from scratchnet.train import first_layer
    size = MODELS[name][2]
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((batch, 1, size, size)).astype(np.float32)
    y = rs.integers(0, 10, batch)
    dev = "cuda" if device == "gpu" else "cpu"
    torch.manual_seed(seed)
    tmodel = book_model(name)
    with torch.no_grad():  # the lazy layers take their shapes, as the test's materialized
        tmodel.eval()(torch.zeros(2, 1, size, size))
    tmodel.train().to(dev)
    with sn.use_device(device):
        xp = sn.backend.device_module()
        model = interop.load_from_torch(getattr(models, name)(), tmodel).to(device)
        first_layer(model).needs_input_grad = False  # as the Trainer does; torch skips it
        opt = sn.optim.SGD(model.parameters(), lr=LR)
        loss_fn = nn.CrossEntropyLoss()
        Xs, ys = xp.asarray(X), xp.asarray(y)
    Xt, yt = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
    topt = torch.optim.SGD(tmodel.parameters(), lr=LR)

    def ours():
        with sn.use_device(device):
            opt.zero_grad()
            loss_fn(model(Xs), ys)
            model.backward(loss_fn.backward())
            opt.step()

    def theirs():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(Xt), yt).backward()
        topt.step()

    sync = (lambda: xp.cuda.Device().synchronize()) if device == "gpu" else (lambda: None)
    tsync = torch.cuda.synchronize if device == "gpu" else (lambda: None)
    return Steps(model, tmodel, ours, theirs, sync, tsync)


def timed(step, sync, warmup, n):
    """Seconds of each of ``n`` steps, after ``warmup`` steps untimed."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return times


def measure(name, batch=32, device="cpu", warmup=2, steps=5, rounds=2):
    """(scratchnet's median step, PyTorch's median step) in seconds, rounds alternating."""
    pair = make_steps(name, batch, device)
    times = ([], [])
    for _ in range(rounds):
        times[0].extend(timed(pair.ours, pair.sync, warmup, steps))
        times[1].extend(timed(pair.theirs, pair.tsync, warmup, steps))
    return statistics.median(times[0]), statistics.median(times[1])


def run(device="cpu", models=tuple(MODELS), batch=32, warmup=2, steps=5, rounds=2):
    """Yield one row per model (the columns of HEADERS)."""
    for name in models:
        s, ts = measure(name, batch, device, warmup, steps, rounds)
        gc.collect()  # the model and its caches go before the next one's
        size = MODELS[name][2]
        yield [name, f"({batch}, 1, {size}, {size})", device, f"{s * 1e3:.1f}",
               f"{ts * 1e3:.1f}", f"{s / ts:.2f}"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, help="CPU threads of each framework (default: "
                   "their own defaults, every core)")
    args = p.parse_args(argv)
    import torch

    import scratchnet as sn
    sn.use_device(args.device)  # fails here, before any output, without a GPU
    if args.threads:
        torch.set_num_threads(args.threads)
        sn.set_num_threads(args.threads)
    print(machine())
    print(f"scratchnet {sn.get_num_threads()} threads; median of {args.rounds} x "
          f"{args.steps} steps, {args.warmup} untimed before each {args.steps}")
    print_rows(run(args.device, args.models, args.batch, args.warmup, args.steps, args.rounds),
               HEADERS)


if __name__ == "__main__":
    main()
