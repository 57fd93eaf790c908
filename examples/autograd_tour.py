"""Backprop three ways: by hand, on a tape, and in PyTorch, with the same numbers.

    python examples/autograd_tour.py          # prints the tour, draws docs/img/autograd_*.png
    python examples/autograd_tour.py --out /tmp/tour --device gpu

1. By hand. Every scratchnet layer has a forward and a backward. Sequential.backward
   calls its layers' backward in reverse order; Residual.backward sends the gradient
   down both paths of the block and adds the two at X.
2. The tape (``scratchnet.autograd``). Called on an ``ag.Tensor`` the same model
   records one node per layer and per operator; ``backward()`` visits the nodes in
   reverse topological order and sums the gradients where a tensor was used twice.
   The tape finds by itself the order Residual.backward was written in.
3. PyTorch. ``y.grad_fn`` and its ``next_functions`` are PyTorch's record of the
   same graph, one node per operation.

All three run on the same weights in float64 and give the same parameter gradients:
the script prints the largest relative difference between each pair. Then
``sn.trace.trace(model, X, expand=True)`` shows the layers inside each Residual
block and the step at which backward reaches each one, and the tape's graphs of a
Residual block and of LeNet are drawn to --out (matplotlib, no Graphviz needed).
"""
import argparse
import copy
import inspect
import pathlib
import sys
import textwrap

import numpy as np

import scratchnet as sn
import scratchnet.autograd as ag
from scratchnet import interop, nn
from scratchnet.nn import functional as F
from scratchnet.models import LeNet, Residual
from scratchnet.trace import trace

try:
    import torch
except ImportError:  # PyTorch is only the third opinion: the tour runs without it
    torch = None

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A Residual's conv1.bias and conv2.bias feed a BatchNorm, which subtracts their mean
# again: their exact gradient is 0 and each method returns rounding noise (1e-14 here),
# whose relative difference means nothing. Those two are compared relative to FLOOR,
# as tests/test_autograd.py does; every other gradient relative to its own size.
ZERO_GRADIENT = ("conv1.bias", "conv2.bias")
FLOOR = 1e-2


def title(text):
    print(f"\n{text}\n{'-' * len(text)}")


def shown(path):
    """path, relative to the working directory when it lies below it."""
    try:
        return path.resolve().relative_to(pathlib.Path.cwd())
    except ValueError:
        return path


def rel_diff(a, b, floor=0.0):
    """max|a - b| / max(max|b|, floor), on the host in float64."""
    a = np.asarray(sn.to_numpy(a), dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor))


def micrograd(picture=None):
    """Karpathy's micrograd example, unchanged, on the tape: each op's value and gradient
    (and a picture of them)."""
    title("The tape on numbers: micrograd's example")
    x = ag.Tensor(-4.0, requires_grad=True, name="x")
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    print("\n".join(ag.backward_order(y, numbers=True)))
    if picture is not None:
        ag.plot_graph(y, picture, use_dot=False, numbers=True)
        print(f"graph drawn to {shown(picture)}")
    y.backward()
    print(f"y = {float(y.data):g}, dy/dx = {float(x.grad):g} (micrograd and PyTorch: -20, 46)")


def by_hand(model, X, labels):
    """Module.backward: each layer's own backward, in the order its author wrote.
    (parameter gradients, dL/dX)."""
    model.zero_grad()
    out = model(X)
    if labels is not None:
        loss = nn.CrossEntropyLoss()
        L = float(loss(out, labels))
        gx = model.backward(loss.backward())
    else:  # L = sum(y ** 2)
        L = float((out ** 2).sum())
        gx = model.backward(2 * out)
    grads = {k: sn.to_numpy(p.grad) for k, p in model.named_parameters()}
    print(f"L = {L:.6f}; backward returned dL/dX {tuple(gx.shape)} and filled "
          f"{len(grads)} parameter gradients")
    return grads, sn.to_numpy(gx)


def on_tape(model, X, labels, picture=None):
    """The same model on an ag.Tensor; prints the order backward will visit its ops and
    draws its graph first (before backward() frees what the ops saved)."""
    model.zero_grad()
    Xt = ag.Tensor(X, requires_grad=True, name="X")
    out = model(Xt)
    loss = F.cross_entropy(out, labels) if labels is not None else (out ** 2).sum()
    print("\n".join(ag.backward_order(loss)))
    if picture is not None:
        ag.plot_graph(out, picture, use_dot=False)
        print(f"graph drawn to {shown(picture)}")
    loss.backward()
    return {k: sn.to_numpy(p.grad) for k, p in model.named_parameters()}, sn.to_numpy(Xt.grad)


def walk(fn, names, seen, depth=0):
    """Print PyTorch's graph under ``fn`` by following next_functions, depth first."""
    if fn is None:  # an input that needs no gradient
        return
    var = getattr(fn, "variable", None)  # AccumulateGrad: writes a leaf's .grad
    text = "  " * depth + type(fn).__name__
    if var is not None:
        text += f"  {names.get(id(var), 'tensor')} {tuple(var.shape)}"
        if id(var) in seen:
            text += "  (again: its two gradients are summed first)"
        seen.add(id(var))
    print(text)
    for child, _ in fn.next_functions:
        walk(child, names, seen, depth + 1)


def chain(fn):
    """The ops met by following each op's first input that is an op itself."""
    names = []
    while fn is not None:
        names.append(type(fn).__name__)
        fn = next((f for f, _ in fn.next_functions
                   if f is not None and not hasattr(f, "variable")), None)
    return names


def in_torch(tmodel, X, labels, whole_graph):
    """d2l's PyTorch model on the same weights: (parameter gradients, dL/dX)."""
    Xt = torch.tensor(sn.to_numpy(X), requires_grad=True)
    out = tmodel(Xt)
    if whole_graph:
        names = {id(p): k for k, p in tmodel.named_parameters()}
        names[id(Xt)] = "X"
        print("y.grad_fn and its next_functions, depth first:")
        walk(out.grad_fn, names, set())
    else:  # a Sequential's graph is a chain: one op per layer, the weights beside it
        print("y.grad_fn, following next_functions:")
        print(textwrap.fill(" <- ".join(chain(out.grad_fn)), 88, initial_indent="  ",
                            subsequent_indent="  "))
    if labels is not None:
        loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(sn.to_numpy(labels)))
    else:
        loss = (out ** 2).sum()
    loss.backward()
    return ({k: p.grad.numpy() for k, p in tmodel.named_parameters()},
            Xt.grad.numpy())


def compare(results):
    """A table of the three pairs, per parameter, then the largest of each column."""
    pairs = [(a, b) for i, a in enumerate(results) for b in list(results)[i + 1:]]
    names = list(results["manual"][0])
    print(f"{'gradient':18s} {'max|g|':>9s} " + " ".join(f"{a + ' vs ' + b:>16s}"
                                                      for a, b in pairs))
    worst = {pair: 0.0 for pair in pairs}
    worst_nonzero = dict(worst)  # without the gradients that are 0 in exact arithmetic
    for k in names + ["X"]:
        row = []
        for a, b in pairs:
            ga = results[a][1] if k == "X" else results[a][0][k]
            gb = results[b][1] if k == "X" else results[b][0][k]
            d = rel_diff(ga, gb, FLOOR if k in ZERO_GRADIENT else 0.0)
            worst[(a, b)] = max(worst[(a, b)], d)
            if k not in ZERO_GRADIENT:
                worst_nonzero[(a, b)] = max(worst_nonzero[(a, b)], d)
            row.append(f"{d:16.1e}")
        g = results["manual"][1] if k == "X" else results["manual"][0][k]
        mark = "*" if k in ZERO_GRADIENT else ""
        print(f"{k + mark:18s} {np.abs(g).max():9.2e} " + " ".join(row))
    zeros = any(k in ZERO_GRADIENT for k in names)
    if zeros:
        print(f"* exactly 0 in exact arithmetic (a BatchNorm follows): relative to {FLOOR:g}")
    for (a, b), d in worst.items():
        print(f"max relative difference, {a} vs {b}: {d:.1e}" + (
            f" ({worst_nonzero[(a, b)]:.1e} without the * rows)" if zeros else ""))


def three_ways(name, model, X, labels, torch_model, picture):
    """Manual backprop, the tape and PyTorch on copies of one model."""
    model(X)  # materialise the lazy layers: the copies get the same weights
    tape_model = copy.deepcopy(model)
    results = {}
    title(f"{name}: by hand, Module.backward")
    results["manual"] = by_hand(model, X, labels)
    if isinstance(getattr(model, "net", None), nn.Sequential):
        print(textwrap.fill("Sequential.backward called, in this order: " + ", ".join(
            f"net.{k} {m.name}" for k, m in reversed(list(model.net.named_children()))), 88))
    title(f"{name}: on the tape, the order backward() runs the ops")
    results["tape"] = on_tape(tape_model, X, labels, picture)
    if torch is not None:
        title(f"{name}: PyTorch's graph")
        tmodel = torch_model()
        interop.load_into_torch(tmodel, model)
        # The block's graph is small enough to print whole; LeNet's is a chain.
        results["torch"] = in_torch(tmodel, X, labels, whole_graph=labels is None)
    else:
        print("\nPyTorch is not installed (pip install -e '.[test]'): two ways only")
    title(f"{name}: the same numbers (float64, max|a - b| / max|b| per gradient)")
    compare(results)


def torch_residual(X):
    """A maker of d2l's Residual(6, use_1x1conv=True, strides=2) in PyTorch, float64."""
    def make():
        tmodel = interop.torch_residual(6, use_1x1conv=True, strides=2)
        with torch.no_grad():
            tmodel(torch.zeros(X.shape))  # materialise the lazy layers
        return tmodel.double()
    return make


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "img"),
                   help="folder for autograd_residual.png and autograd_lenet.png")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = p.parse_args(argv)
    try:
        sn.use_device(args.device)
    except sn.DeviceError as e:
        sys.exit(f"--device {args.device}: {e}")
    sn.set_default_dtype(np.float64)  # so that rounding cannot hide a wrong gradient
    sn.manual_seed(0)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rs = np.random.default_rng(0)

    title("By hand: the two backward methods the tape automates")
    print(inspect.getsource(nn.Sequential.backward))
    print(inspect.getsource(Residual.backward))

    micrograd(out / "autograd_micrograd.png")

    # A Residual block with the 1x1 shortcut: two paths from X, summed before relu2.
    X = sn.to_device(rs.standard_normal((2, 3, 8, 8)), args.device)
    three_ways("Residual(6, use_1x1conv=True, strides=2)",
               Residual(6, use_1x1conv=True, strides=2), X, None,
               torch_residual(X) if torch is not None else None,
               out / "autograd_residual.png")

    # LeNet (d2l 7.6): a Sequential, so backward is its layers in reverse.
    X = sn.to_device(rs.standard_normal((2, 1, 28, 28)), args.device)
    labels = sn.to_device(np.array([3, 7]), args.device)
    three_ways("LeNet", LeNet(), X, labels, lambda: interop.torch_lenet().double(),
               out / "autograd_lenet.png")

    title("trace(model, X, expand=True): inside each block, and the backward order")
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Residual(4),
                          Residual(8, use_1x1conv=True, strides=2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    X = sn.to_device(rs.standard_normal((2, 1, 8, 8)), args.device)
    report = trace(model, X, expand=True)
    print(report)
    print("backward_order:", " ".join(report.backward_order))


if __name__ == "__main__":
    main()
