"""Seeing the tape: the order backward runs in, with the numbers, as text, DOT and a PNG.

Edges point the way gradients flow: from an op to the ops (and leaves) that made its
inputs. Leaves are named as the model names its parameters (``net.0.weight``); a
layer's node by the layer's path in the model (``conv1 Conv2d``).

With ``numbers=True`` every view shows each node's value (its output) and the gradient
that reached it, and the line of code that made it, as micrograd's ``draw_dot`` and
cs231n's circuits put numbers on every wire. The gradients are computed on the side: a
backward through a kept graph whose leaf gradients are put back afterwards, so no
``.grad`` changes and ``y.backward()`` still works afterwards. Big tensors are summarised
as their norm and first entries (``|4.12| [0.5, -1, 2, ...]``).
"""
import linecache
import os
import pathlib
import shutil
import subprocess
import tempfile

from .. import backend
from ..figures import save_figure, subplots
from . import tensor as _tensor
from .tensor import topological_order


def _graph(t):
    """(ops in backward order, leaves in first-seen order, edges (from, to), uses, left out).

    ``uses[id]`` counts the ops that consumed a node's or leaf's output: where it is
    above 1, backward sums that many gradients. ``left out`` are the inputs that need no
    gradient (constants, data without requires_grad): no view draws them.
    """
    if t.grad_fn is None:
        raise ValueError("autograd graph: the tensor has no grad_fn (a leaf, or computed "
                         "without requires_grad / under no_grad())")
    order = topological_order(t.grad_fn)
    leaves, edges, uses, left_out = {}, [], {}, []
    for node in order:
        for inp, (fn, needs) in zip(node.inputs, node.edges):
            if not needs:
                left_out.append(inp)
                continue
            target = fn if fn is not None else inp
            if fn is None:
                leaves.setdefault(id(inp), inp)
            uses[id(target)] = uses.get(id(target), 0) + 1
            edges.append((node, target))
    return order, list(leaves.values()), edges, uses, left_out


def _name(x):
    """A node's op name, with the layer's path in the model when it is a layer's node."""
    if not hasattr(x, "inputs"):
        return f"leaf {x.name or 'tensor'}"
    path = getattr(getattr(x, "module", None), "_tape_path", "")
    return f"{path} {x.name}" if path else x.name


def _label(x):
    if hasattr(x, "inputs"):  # a Node
        return f"{_name(x)}\n{x.out_shape}"
    return f"{x.name or 'tensor'}\n{tuple(x.shape)}"


def summary(a):
    """A few characters for an array: the number itself, up to four entries, or for
    a bigger array its norm and first three entries."""
    if a is None:
        return "-"
    a = backend.to_device(a, "cpu")
    flat = a.ravel()
    if a.dtype.kind == "b":
        flat = flat.astype(int)

    def num(v):
        return f"{v:.4g}"
    if flat.size == 1:
        return num(flat[0])
    if flat.size <= 4:
        return "[" + ", ".join(num(v) for v in flat) + "]"
    norm = float((flat.astype(float) ** 2).sum() ** 0.5)
    return f"|{norm:.3g}| [" + ", ".join(num(v) for v in flat[:3]) + ", ...]"


def source_line(node):
    """``file:line  code`` of the line that made the node, or "" when unknown."""
    if getattr(node, "where", None) is None:
        return ""
    filename, lineno = node.where
    code = linecache.getline(filename, lineno).strip()
    if len(code) > 44:
        code = code[:41] + "..."
    # A notebook cell's file is a temporary one named by a hash: the cell's line says more.
    where = "cell" if "ipykernel_" in filename else os.path.basename(filename)
    return f"{where}:{lineno}  {code}".rstrip()


def _left_out_text(left_out):
    """One line naming the inputs that need no gradient, grouped: what every view leaves
    out (the images of a batch, numbers like the 2 in ``2 * x``)."""
    if not left_out:
        return None
    groups = {}
    for inp in left_out:
        if inp.name:
            what = f"{inp.name} {tuple(inp.shape)}"
        elif inp.array.size == 1:
            what = f"the number {summary(inp.array)}"
        else:
            what = f"a tensor {tuple(inp.shape)}"
        groups[what] = groups.get(what, 0) + 1
    items = [w if n == 1 else f"{w} (x{n})" for w, n in groups.items()]
    return "left out (they need no gradient): " + ", ".join(items)


def graph_numbers(t):
    """Each op's output value, each op's and each leaf's gradient, for the graph of t.

    Returns (values, grads, note): dicts from ``id(node or leaf)`` to an array (None
    where unknown) and a note on what could not be shown. The gradients come from a
    backward on the side (the graph kept, the leaves' ``.grad`` put back as they were):
    dL/d(node's output) as it reached the node, and for a leaf the sum of its uses.
    """
    order, leaves, _, _, _ = _graph(t)
    return _numbers(t, order, leaves)


def _numbers(t, order, leaves):
    """:func:`graph_numbers` on the graph's ops and leaves, as :func:`_graph` found them."""
    values = {id(t.grad_fn): t.array}
    for node in order:
        for inp, (fn, _) in zip(node.inputs, node.edges):
            if fn is not None and inp.grad_fn is fn:  # not written over since
                values.setdefault(id(fn), inp.array)
    for leaf in leaves:
        values[id(leaf)] = leaf.array
    note, grads = [], {}
    if any(node.freed for node in order):
        note.append("gradient -: backward() has run and freed this graph; ask for the "
                    "numbers before calling backward()")
        return values, grads, note
    before = [(leaf, None if leaf.grad_array is None else leaf.grad_array.copy())
              for leaf in leaves]
    outs = [n.out() for n in order]
    kept = [(out, out._grad) for out in outs if out is not None and out._retain]
    gradient = None
    if t.array.size != 1:
        gradient = backend.get_array_module(t.array).ones_like(t.array)
        note.append("the output is not a number: the gradient sent back is all ones")

    def watch(node, gy):
        grads[id(node)] = gy
    _tensor._watchers.append(watch)
    try:
        _tensor.run_backward(t, gradient, retain_graph=True)
    finally:
        _tensor._watchers.remove(watch)
        for leaf, old in before:
            now = leaf.grad_array
            if now is not None:
                grads[id(leaf)] = now.copy() if old is None else now - old
            if old is None:
                leaf.grad_array = None
            else:
                now[...] = old  # in place: a Tensor handed out as .grad keeps its values
        for out, g in kept:
            out._grad = g
    return values, grads, note


def backward_order(t, numbers=False):
    """The ops in the order ``t.backward()`` runs them, one line each, marking where
    gradients from several uses are summed first.

    With ``numbers=True``: a table with each op's value and the gradient that reached
    it, every leaf with its gradient, the line of code that made each op, and a last
    line naming the inputs left out (they need no gradient). ``t.backward()`` is not
    run: the gradients are computed on the side (see :func:`graph_numbers`)."""
    if numbers:
        return _numbers_table(t)
    order, leaves, _, uses, _ = _graph(t)
    lines = []
    for i, node in enumerate(order, 1):
        s = f"{i:3d}. {node.name} {node.out_shape}"
        if uses.get(id(node), 0) > 1:
            s += f"  <- sums {uses[id(node)]} gradients"
        lines.append(s)
    for leaf in leaves:
        if uses.get(id(leaf), 0) > 1:
            lines.append(f"     leaf {leaf.name or 'tensor'} {tuple(leaf.shape)}  <- sums "
                         f"{uses[id(leaf)]} gradients")
    return lines


def _numbers_table(t):
    order, leaves, _, uses, left_out = _graph(t)
    values, grads, note = _numbers(t, order, leaves)
    rows = [("step", "op", "shape", "value", "gradient", "sums", "made by")]
    for i, x in enumerate(order + leaves, 1):
        leaf = not hasattr(x, "inputs")
        rows.append(("" if leaf else str(i), _name(x),
                     str(tuple(x.shape) if leaf else x.out_shape),
                     summary(values.get(id(x))), summary(grads.get(id(x))),
                     str(uses[id(x)]) if uses.get(id(x), 0) > 1 else "",
                     "" if leaf else source_line(x)))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if k == 0 else c.ljust(w)
                       for k, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    lines += note
    text = _left_out_text(left_out)
    if text:
        lines.append(text)
    return lines


def _node_text(x, uses, nums):
    text = _label(x)
    if nums is not None:
        values, grads = nums
        text += f"\nvalue {summary(values.get(id(x)))}\ngrad {summary(grads.get(id(x)))}"
    if uses.get(id(x), 0) > 1:
        text += f"\nsums {uses[id(x)]}"
    return text


def to_dot(t, numbers=False):
    """Graphviz DOT text of the graph that made t (ops as boxes, leaves as ellipses); with
    ``numbers=True`` each box also shows its value and gradient."""
    order, leaves, edges, uses, left_out = _graph(t)
    nums = _numbers(t, order, leaves)[:2] if numbers else None
    ids = {id(x): f"n{i}" for i, x in enumerate(order + leaves)}
    lines = ["digraph autograd {", "  rankdir=TB;", '  node [fontname="Helvetica"];']
    for node in order:
        text = _node_text(node, uses, nums).replace("\n", "\\n")
        lines.append(f'  {ids[id(node)]} [shape=box, label="{text}"];')
    for leaf in leaves:
        text = _node_text(leaf, uses, nums).replace("\n", "\\n")
        lines.append(f'  {ids[id(leaf)]} [shape=ellipse, style=filled, fillcolor="#dde8f5", '
                     f'label="{text}"];')
    for a, b in edges:
        lines.append(f"  {ids[id(a)]} -> {ids[id(b)]};")
    caption = _left_out_text(left_out)
    if caption:
        lines.append(f'  label="{caption}"; labelloc=b;')
    lines.append("}")
    return "\n".join(lines) + "\n"


def layout(order, leaves, edges):
    """Where each op and leaf goes: {id: (x, y)}, the output at the top.

    Ops take the row of their longest distance from the output. Each op goes in the
    column of the op that uses it, its first such input; a second input of an op (the
    skip path of a residual block) opens a new column to the right, so two paths read
    as two columns. A leaf used by one op (a layer's weight) sits just right of that op;
    a leaf used by several (X in a residual block) goes below the lowest of them, in the
    leftmost of their columns. Op columns are 2 apart: the leaves' column between.
    """
    row = {id(order[0]): 0}
    for a, b in edges:  # edges come in backward order: a's row is final when seen
        if hasattr(b, "inputs"):
            row[id(b)] = max(row.get(id(b), 0), row[id(a)] + 1)
    users = {}
    for a, b in edges:
        users.setdefault(id(b), []).append(a)
    own = {}  # the leaves only one op uses, per op
    for leaf in leaves:
        if len(users[id(leaf)]) == 1:
            own.setdefault(id(users[id(leaf)][0]), []).append(leaf)
    step = max(1.0, 0.45 * max((len(v) for v in own.values()), default=0) + 0.25)
    column, next_column = {id(order[0]): 0}, 1
    for node in order:
        first = True
        for a, b in edges:
            if a is not node or not hasattr(b, "inputs") or id(b) in column:
                continue
            if first:
                column[id(b)] = column[id(node)]
                first = False
            else:
                column[id(b)] = next_column
                next_column += 1
    pos = {id(n): (2.0 * column[id(n)], -step * row[id(n)]) for n in order}
    for node_id, mine in own.items():
        x, y = pos[node_id]
        for k, leaf in enumerate(mine):
            pos[id(leaf)] = (x + 1, y - 0.15 - 0.45 * k)
    for leaf in leaves:
        if id(leaf) not in pos:
            us = users[id(leaf)]
            pos[id(leaf)] = (min(pos[id(u)][0] for u in us),
                             min(pos[id(u)][1] for u in us) - step)
    return pos


def plot_graph(t, path, use_dot=None, numbers=False):
    """Draw the graph of t to a PNG at ``path``: with Graphviz's ``dot`` when it is
    installed (or ``use_dot=True``), otherwise with matplotlib alone (:func:`layout`:
    each path of the graph in its own column, in its own colour). ``numbers=True`` puts
    each node's value and gradient in its box. A line under the picture names the inputs
    it leaves out. Returns the path."""
    path = pathlib.Path(path)
    if use_dot is None:
        use_dot = shutil.which("dot") is not None
    if use_dot:
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", suffix=".png.tmp")
        os.close(fd)
        try:
            subprocess.run(["dot", "-Tpng", "-o", tmp], input=to_dot(t, numbers).encode(),
                           check=True)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path
    order, leaves, edges, uses, left_out = _graph(t)
    nums = _numbers(t, order, leaves)[:2] if numbers else None
    pos = layout(order, leaves, edges)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    cols = int(max(xs) - min(xs)) + 1
    colours = ["#333333", "#d95f02", "#1b9e77", "#7570b3", "#e7298a"]
    fig, ax = subplots(figsize=(max(4.0, 1.6 * cols), max(3.0, 0.8 * (max(ys) - min(ys) + 2)
                                                          * (1.6 if numbers else 1))))
    for a, b in edges:
        (x0, y0), (x1, y1) = pos[id(a)], pos[id(b)]
        colour = colours[int(pos[id(b if hasattr(b, "inputs") else a)][0] // 2)
                         % len(colours)]
        if x0 == x1:  # down the same column
            start, end, style = (x0, y0 - 0.2), (x1, y1 + 0.2), "arc3"
        elif abs(x1 - x0) == 1 and not hasattr(b, "inputs"):  # an op's own leaf
            start, end, style = (x0 + 0.4, y0), (x1 - 0.4, y1), "arc3"
        elif x1 > x0 and not _boxes_between(pos, y0, x0, x1):
            # a new path opens to the right: across, then down
            start, end, style = (x0 + 0.4, y0), (x1, y1 + 0.2), "angle,angleA=0,angleB=90"
        elif x1 < x0 and not _boxes_between(pos, y1, x1, x0):
            # a path comes back to a value it shares: down, then across
            start, end, style = (x0, y0 - 0.2), (x1 + 0.4, y1), "angle,angleA=90,angleB=0"
        else:  # a box is in the way of those: a curve
            start, end, style = (x0, y0 - 0.2), (x1, y1 + 0.2), "arc3,rad=0.15"
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="->", color=colour, lw=1.0,
                                    connectionstyle=style))
    for x in order + leaves:
        leaf = not hasattr(x, "inputs")
        ax.text(*pos[id(x)], _node_text(x, uses, nums), ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round" if leaf else "square",
                          fc="#dde8f5" if leaf else "white", ec="#333333"))
    caption = _left_out_text(left_out)
    if caption:
        ax.text(min(xs), min(ys) - 0.9, caption, ha="left", va="center", fontsize=7,
                style="italic", color="#555555")
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 1.3, max(ys) + 0.6)
    ax.axis("off")
    return save_figure(fig, path)


def _boxes_between(pos, y, x0, x1):
    """Whether a box of ``pos`` sits on row y strictly between columns x0 and x1."""
    return any(abs(py - y) < 0.5 and x0 + 0.5 < px < x1 - 0.5 for px, py in pos.values())
