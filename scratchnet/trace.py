"""trace: one forward and backward of a model, layer by layer, as a table.

    report = trace(model, X)            # X: one batch (N, C, H, W)
    print(report)                       # or report.print(); report.rows is the data

For each layer (the leaves of ``model.net`` / the Sequential tree, in forward
order) a row gives the input and output shapes, the parameter count, the FLOPs
of forward and backward, the bytes the layer keeps between forward and
backward, the time of its forward and its backward, and the norms of the
gradient leaving it (dL/dx) and of its weight's gradient (dL/dW).

How it runs: the leaves are called one after the other, exactly as
``Sequential.forward`` would, each timed alone; then their ``backward`` in
reverse order. No hooks. A block that is not a Sequential (a ResNet
``Residual``) is one row: its own forward and backward, its children's FLOPs
and caches summed (the skip addition itself is not counted).

``expand=True`` looks inside such blocks: under each block's row, one indented
row per layer inside it (``net.b2.0.conv1``, ``net.b2.0.bn1``, ...) in the
order its forward calls them, measured while the block runs (its layers'
``forward`` and ``backward`` are wrapped for that call only, and the block's
own times include that measuring). A last column, ``bwd #``, gives the step
at which backward reaches each layer, in the order the autograd tape runs it:
the model is called once more on a ``scratchnet.autograd.Tensor`` and the
layers are read off its graph in reverse topological order
(``report.backward_order``). In a Residual that is relu2, then the main path
bn2 .. conv1, then the 1x1 conv3, whose gradient is summed with conv1's at X:
the order ``Residual.backward`` follows by hand.

The gradient that starts the backward pass (``gy=None``):

- ``labels`` given: the gradient of ``CrossEntropyLoss`` (batch mean) on them;
- the output is 2-D logits (N, K) with K > 1: the same with random labels
  drawn from a fixed local generator (``np.random.default_rng(0)``), so the
  gradients have a classifier's size at initialisation;
- otherwise ``gy = ones``: the gradient of ``y.sum()``.

Conventions:

- FLOPs: a multiply-add is 2 FLOPs; bias additions are not counted.
  Conv2d: ``2*N*O*oh*ow*C*kh*kw`` forward; backward the same for dL/dW and
  again for dL/dx, which a layer with ``needs_input_grad = False`` skips.
  Linear: ``2*N*in*out`` forward, likewise doubled backward.
  Element-wise layers count per element, exp and tanh as one FLOP:
  ReLU 1 forward / 1 backward, Sigmoid 4 / 3, Tanh 1 / 3, Dropout 1 / 1
  (0 in eval), BatchNorm 6 / 7 in training (statistics, centring, scaling,
  shift; and the three per-channel sums of backward) and 2 / 4 in eval.
  MaxPool2d: kh*kw per output element forward, 1 backward (the scatter);
  AvgPool2d: kh*kw per output element both ways; AdaptiveAvgPool2d: one per
  input element both ways; Flatten: 0. A layer of another kind shows "?".
- Cached bytes: the ``nbytes`` of every array in the layer's ``_cache``
  after its forward (what ``cache_for_backward`` kept): a convolution's im2col
  column buffer, an activation's output, a Linear's input. An array that two
  layers keep (a Sigmoid's output is the next Linear's input) counts in both
  rows; the total counts it once.
- Times are wall-clock seconds of one call (the GPU is synchronised around
  each call), so they include Python overhead; ``repeat=k`` keeps each
  layer's fastest of k passes.

The model runs in its current mode (train or eval) and is left as found:
parameter gradients, BatchNorm's running statistics and the host random
generator (dropout masks) are restored, so a trace before training does not
change the training run.
"""
import time

import numpy as np

from . import autograd as ag
from . import backend
from .nn.loss import CrossEntropyLoss
from .nn.module import Module, Sequential

__all__ = ["trace", "TraceReport", "leaf_layers", "layer_flops"]


def leaf_layers(model):
    """The layers of ``model`` in forward order, as (dotted path, module) pairs.

    Follows d2l's ``model.net`` (a model whose only child is ``net``) and
    Sequential children recursively; any other module is one layer, so a
    Residual block stays whole, and so does a DenseBlock, whose layers live in
    a ``net`` of its own but whose forward is not theirs in a row.
    """
    out = []

    def walk(path, m, root=False):
        children = list(m.named_children())
        if isinstance(m, Sequential):
            for k, c in children:
                walk(f"{path}.{k}" if path else k, c)
        elif root and len(children) == 1 and children[0][0] == "net":
            walk("net", children[0][1])
        else:
            out.append((path or type(m).__name__, m))

    walk("", model, root=True)
    return out


def _numel(shape):
    return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


def layer_flops(layer, in_shape, out_shape):
    """(forward FLOPs, backward FLOPs) of one leaf layer, or (None, None) if unknown.

    See the module docstring for the conventions. Each layer says its own
    (``Module.flops``); a block without its own count sums its leaves'.
    """
    f = layer.flops(in_shape, out_shape)
    if f is not None:
        return f
    if list(layer.children()):
        return _block_flops(layer)
    return None, None


def _block_flops(block):
    """A composite layer's FLOPs, summed over its leaves, read from their caches.

    Called right after the block's forward: each leaf's ``_cache`` still holds
    its output's shape (and, last, its input's shape or input array).
    """
    fwd = bwd = 0
    for m in block.modules():
        if m is block or list(m.children()):
            continue
        saved = m.__dict__.get("_cache")
        if saved is None:
            continue  # not called in this forward (an absent skip path)
        (out_shape, _, _), cache = saved
        last = cache[-1] if cache else None
        if hasattr(last, "shape"):
            in_shape = tuple(last.shape)
        elif isinstance(last, tuple) and all(isinstance(v, (int, np.integer)) for v in last):
            in_shape = last
        else:
            in_shape = out_shape
        f, b = layer_flops(m, in_shape, out_shape)
        if f is None:
            return None, None
        fwd, bwd = fwd + f, bwd + b
    return fwd, bwd


def _arrays(obj):
    """Every array inside a (nested) cache."""
    if hasattr(obj, "nbytes") and hasattr(obj, "shape"):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _arrays(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays(v)


def _key(a):
    """Identifies the memory an array occupies (views of one buffer share it)."""
    if backend.is_cupy_array(a):
        return (a.data.ptr, a.nbytes)
    return (a.__array_interface__["data"][0], a.nbytes)


def _cached(layer):
    """{memory key: nbytes} of what ``layer`` and its submodules keep for backward."""
    out = {}
    for m in layer.modules():
        saved = m.__dict__.get("_cache")
        if saved is not None:
            for a in _arrays(saved[1]):
                out[_key(a)] = int(a.nbytes)
    return out


def _norm(a):
    if a is None:
        return None
    xp = backend.get_array_module(a)
    return float(xp.sqrt((a.astype(np.float64) ** 2).sum()))


def _weight_norm(layer):
    w = layer._parameters.get("weight")
    return None if w is None or w.grad_array is None else _norm(w.grad_array)


class _Restore:
    """Snapshot parameter gradients, buffers and the host RNG; put them back on exit."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        m = self.model
        self.grads = [(p, None if p.grad_array is None else p.grad_array.copy())
                      for p in m.parameters()]
        self.lazy = any(p.array is None for p in m.parameters())
        self.buffers = [(mod, k, None if b is None else b.copy())
                        for mod in m.modules() for k, b in mod._buffers.items()]
        self.rng = backend.rng().bit_generator.state
        self.device_rng = backend.device_rng_state()
        return self

    def __exit__(self, *exc):
        for p, g in self.grads:
            if g is not None:
                p.grad_array[...] = g
            elif p.grad_array is not None:
                p.grad_array[...] = 0
        for mod, k, b in self.buffers:
            if b is not None:
                mod._buffers[k][...] = b
            elif hasattr(mod, "reset_running_stats") and mod._buffers.get(k) is not None:
                mod.reset_running_stats()  # a lazy BatchNorm materialised by the trace
        # Lazy layers drew their initial weights in this pass: those draws must stay drawn.
        if not self.lazy:
            backend.rng().bit_generator.state = self.rng
        backend.set_device_rng_state(self.device_rng)
        for mod in self.model.modules():
            object.__setattr__(mod, "_cache", None)
        return False


def trace(model, x, gy=None, labels=None, repeat=1, expand=False):
    """Run one forward and backward of ``model`` on ``x`` layer by layer; a TraceReport.

    ``gy``: the gradient of the loss with respect to the output; None picks one
    (see the module docstring); ``labels``: class labels for a CrossEntropyLoss;
    ``expand``: also a row for each layer inside a block (a Residual), and the
    order backward visits the layers (see the module docstring).
    """
    if not isinstance(model, Module):
        raise TypeError(f"trace: expected a Module, got {type(model).__name__}")
    if not backend.is_grad_enabled():
        raise RuntimeError("trace: called inside sn.no_grad(); the backward pass needs the "
                           "caches the forward keeps")
    if repeat < 1:
        raise ValueError(f"trace: repeat must be >= 1, got {repeat}")
    layers = leaf_layers(model)
    best = None
    with _Restore(model):
        for _ in range(repeat):
            model.zero_grad()
            rows, loss_info, ran = _one_pass(layers, x, gy, labels, CrossEntropyLoss, expand)
            if best is not None:
                for r, b in zip(rows, best):
                    r["fwd_s"] = min(r["fwd_s"], b["fwd_s"])
                    r["bwd_s"] = min(r["bwd_s"], b["bwd_s"])
            best = rows
        order = source = None
        if expand:
            order, source = _backward_order(model, x, layers, ran)
            step = {}
            for i, path in enumerate(order, 1):
                step.setdefault(path, i)  # a layer used twice: where backward first meets it
            for r in best:
                r["bwd_step"] = step.get(r["name"])  # None for a block: not one op
    return TraceReport(best, loss_info[0], loss_info[1], loss_info[2], order, source)


def _one_pass(layers, x, gy, labels, loss_cls, expand=False):
    """(rows, (gy source, loss, cached bytes), paths of the layers whose backward ran,
    in the order they ran)."""
    rows, top, caches, inside, ran = [], [], [], [], []
    h = x
    for path, layer in layers:
        block = _Inside(path, layer, ran) if expand and list(layer.children()) else None
        backend.synchronize(h)
        t0 = time.perf_counter()
        if block is None:
            y = layer(h)
        else:
            with block:
                y = layer(h)
        backend.synchronize(y)
        t = time.perf_counter() - t0
        f, b = layer_flops(layer, tuple(h.shape), tuple(y.shape))
        cache = _cached(layer)
        caches.append(cache)
        row = {"name": path, "layer": layer.name, "in_shape": tuple(int(s) for s in h.shape),
               "out_shape": tuple(int(s) for s in y.shape),
               "params": layer.num_parameters(), "fwd_flops": f, "bwd_flops": b,
               "cache_bytes": sum(cache.values()), "fwd_s": t}
        if expand:
            row["depth"] = 0
        rows.append(row)
        top.append(row)
        inside.append(block)
        if block is not None:
            rows.extend(block.rows)
        h = y
    y = h
    loss = None
    if gy is not None:
        how = "given gy"
    elif labels is not None or (y.ndim == 2 and y.shape[1] > 1):
        crit = loss_cls()
        if labels is None:
            how = "CrossEntropyLoss on random labels"
            labels = np.random.default_rng(0).integers(0, y.shape[1], y.shape[0])
        else:
            how = "CrossEntropyLoss on the given labels"
        labels = backend.to_device(backend.to_numpy(labels), backend.device_of(y))
        loss = float(crit(y, labels))  # shown in the report: read once
        gy = crit.backward()
    else:
        how = "gy = ones (the gradient of y.sum())"
        gy = backend.get_array_module(y).ones_like(y)
    total_cache = {}
    for c in caches:
        total_cache.update(c)
    g = gy
    for (path, layer), row, block in zip(reversed(layers), reversed(top), reversed(inside)):
        backend.synchronize(g)
        t0 = time.perf_counter()
        if block is None:
            ran.append(path)
            g = layer.backward(g)
        else:
            with block:
                g = layer.backward(g)
        if g is not None:
            backend.synchronize(g)
        row["bwd_s"] = time.perf_counter() - t0
        row["grad_norm"] = _norm(g)
        row["weight_grad_norm"] = _weight_norm(layer)
    return rows, (how, loss, sum(total_cache.values())), ran


def _inner_layers(path, block):
    """(dotted path, layer) of the leaf layers inside a composite block."""
    return [(f"{path}.{p}", m) for p, m in block.named_modules()
            if p and not list(m.children())]


class _Inside:
    """While a composite block runs (``with``), one row per layer inside it.

    Its leaf layers' ``forward`` and ``backward`` are wrapped by instance attributes
    that time and measure each call, and put back on exit, so the block's own code
    runs unchanged: Residual.forward and Residual.backward call them as always.
    """

    def __init__(self, path, block, ran):
        self.rows = []  # in the order the block's forward calls its layers
        self.ran = ran
        self.pending = {}  # id(layer) -> its rows whose backward has not run yet
        self.leaves = _inner_layers(path, block)

    def __enter__(self):
        self.saved = [(m, m.__dict__.get("forward"), m.__dict__.get("backward"))
                      for _, m in self.leaves]
        for path, m in self.leaves:
            object.__setattr__(m, "forward", self._forward(path, m, m.forward))
            object.__setattr__(m, "backward", self._backward(path, m, m.backward))
        return self

    def __exit__(self, *exc):
        for m, forward, backward in self.saved:
            for k, v in (("forward", forward), ("backward", backward)):
                if v is None:
                    m.__dict__.pop(k, None)
                else:
                    object.__setattr__(m, k, v)
        return False

    def _forward(self, path, layer, forward):
        def timed(x, *args, **kwargs):
            backend.synchronize(x)
            t0 = time.perf_counter()
            y = forward(x, *args, **kwargs)
            backend.synchronize(y)
            t = time.perf_counter() - t0
            f, b = layer_flops(layer, tuple(x.shape), tuple(y.shape))
            row = {"name": path, "layer": layer.name,
                   "in_shape": tuple(int(s) for s in x.shape),
                   "out_shape": tuple(int(s) for s in y.shape),
                   "params": layer.num_parameters(), "fwd_flops": f, "bwd_flops": b,
                   "cache_bytes": sum(_cached(layer).values()), "fwd_s": t, "bwd_s": 0.0,
                   "grad_norm": None, "weight_grad_norm": None, "depth": 1}
            self.rows.append(row)
            self.pending.setdefault(id(layer), []).append(row)
            return y
        return timed

    def _backward(self, path, layer, backward):
        def timed(gy):
            backend.synchronize(gy)
            t0 = time.perf_counter()
            g = backward(gy)
            if g is not None:
                backend.synchronize(g)
            # A layer called twice in one forward: the later call's backward runs first.
            row = self.pending[id(layer)].pop()
            row["bwd_s"] = time.perf_counter() - t0
            row["grad_norm"] = _norm(g)
            row["weight_grad_norm"] = _weight_norm(layer)
            self.ran.append(path)
            return g
        return timed


def _backward_order(model, x, layers, ran):
    """(dotted paths of the layers in the order backward visits them, where that order
    was read). The tape's order, from the model called on an autograd Tensor; for a
    model the tape cannot record (a block doing its own array maths on the input), the
    order the manual backward of this trace ran."""
    paths = {}
    for path, layer in layers:
        for p, m in [(path, layer)] + _inner_layers(path, layer):
            paths.setdefault(id(m), p)
    # The extra forward must not move the random stream that dropout draws from.
    state, device_state = backend.rng().bit_generator.state, backend.device_rng_state()
    try:
        out = model(ag.Tensor(x, requires_grad=True))
        nodes = ag.topological_order(out.grad_fn)
    except Exception as e:  # whatever stopped the tape: fall back, and say why
        return list(ran), (f"this trace's manual backward: the autograd tape could not "
                           f"record this model, {type(e).__name__}: {e}")
    finally:
        backend.rng().bit_generator.state = state
        backend.set_device_rng_state(device_state)
    order = [paths[id(n.module)] for n in nodes
             if getattr(n, "module", None) is not None and id(n.module) in paths]
    return order, "the autograd tape, scratchnet.autograd"


def _si(v, unit=""):
    if v is None:
        return "?"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.2f}{prefix}{unit}"
    return f"{v:g}{unit}" if isinstance(v, float) else f"{v}{unit}"


def _bytes(n):
    for scale, unit in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _shape(s):
    return "x".join(map(str, s))


def _g(v):
    return "-" if v is None else f"{v:.3e}"


class TraceReport:
    """The result of :func:`trace`: ``rows`` (one dict per layer) and the totals.

    Row keys: name (dotted path), layer (class name), in_shape, out_shape, params,
    fwd_flops, bwd_flops (None when unknown), cache_bytes, fwd_s, bwd_s,
    grad_norm (of dL/dx leaving the layer; None when it computes none) and
    weight_grad_norm (of dL/dW; None without a weight).

    With ``expand=True`` the rows of a block's layers follow the block's row, and
    every row also has depth (0, or 1 inside a block) and bwd_step (1 for the layer
    backward reaches first; None for a block, which the tape does not record as one
    op); ``backward_order`` lists the layers' paths in that order and
    ``backward_source`` says where it was read. Totals count the depth-0 rows.
    """

    COLUMNS = ("layer", "in", "out", "params", "fwd FLOPs", "bwd FLOPs", "cached", "fwd ms",
               "bwd ms", "|dL/dx|", "|dL/dW|")

    def __init__(self, rows, gy_source, loss=None, cache_bytes_total=None,
                 backward_order=None, backward_source=None):
        self.rows = rows
        self.gy_source = gy_source
        self.loss = loss
        self.cache_bytes_total = (sum(r["cache_bytes"] for r in self._top())
                                  if cache_bytes_total is None else cache_bytes_total)
        self.backward_order = backward_order
        self.backward_source = backward_source

    def _top(self):
        return [r for r in self.rows if r.get("depth", 0) == 0]

    def total(self, key):
        values = [r[key] for r in self._top()]
        return None if any(v is None for v in values) else sum(values)

    def _cells(self):
        expand = self.backward_order is not None
        body = []
        for r in self.rows:
            indent = "  " * r.get("depth", 0)
            cells = [f"{indent}{r['name']} {r['layer']}", _shape(r["in_shape"]),
                     _shape(r["out_shape"]), f"{r['params']:,}", _si(r["fwd_flops"]),
                     _si(r["bwd_flops"]), _bytes(r["cache_bytes"]),
                     f"{1e3 * r['fwd_s']:.2f}", f"{1e3 * r['bwd_s']:.2f}",
                     _g(r["grad_norm"]), _g(r["weight_grad_norm"])]
            if expand:
                cells.append("" if r["bwd_step"] is None else str(r["bwd_step"]))
            body.append(cells)
        total = ["total", "", "", f"{self.total('params'):,}", _si(self.total("fwd_flops")),
                 _si(self.total("bwd_flops")), _bytes(self.cache_bytes_total),
                 f"{1e3 * self.total('fwd_s'):.2f}", f"{1e3 * self.total('bwd_s'):.2f}", "", ""]
        if expand:
            total.append("")
        return body, total

    def __str__(self):
        body, total = self._cells()
        header = list(self.COLUMNS) + (["bwd #"] if self.backward_order is not None else [])
        widths = [max(len(row[i]) for row in body + [total, header]) for i in range(len(header))]

        def line(cells):
            # The name and shapes read left-aligned, the numbers right-aligned.
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(line(["-" * w for w in widths]))
        loss = "" if self.loss is None else f", loss {self.loss:.4f}"
        out = [f"trace: backward from {self.gy_source}{loss}", line(header), rule]
        out += [line(c) for c in body]
        out += [rule, line(total)]
        if self.backward_order is not None:
            out.append(f"bwd #: the step at which backward reaches each layer (order read "
                       f"from {self.backward_source})")
            out.append("indented rows: the layers inside a block, in the order its forward "
                       "calls them")
        return "\n".join(out)

    def print(self, file=None):
        print(self, file=file)

    def __repr__(self):
        return f"TraceReport({len(self.rows)} layers)"
