"""Seeing the tape: the order backward runs in, Graphviz DOT text, and a PNG.

Edges point the way gradients flow: from an op to the ops (and leaves) that made its
inputs. Leaves are named as the model names its parameters (``net.0.weight``).
"""
import os
import pathlib
import shutil
import subprocess
import tempfile

from ..figures import save_figure, subplots
from .tensor import topological_order


def _graph(t):
    """(ops in backward order, leaves in first-seen order, edges (from, to), uses).

    ``uses[id]`` counts the ops that consumed a node's or leaf's output: where it is
    above 1, backward sums that many gradients.
    """
    if t.grad_fn is None:
        raise ValueError("autograd graph: the tensor has no grad_fn (a leaf, or computed "
                         "without requires_grad / under no_grad())")
    order = topological_order(t.grad_fn)
    leaves, edges, uses = {}, [], {}
    for node in order:
        for inp, (fn, needs) in zip(node.inputs, node.edges):
            if not needs:
                continue
            target = fn if fn is not None else inp
            if fn is None:
                leaves.setdefault(id(inp), inp)
            uses[id(target)] = uses.get(id(target), 0) + 1
            edges.append((node, target))
    return order, list(leaves.values()), edges, uses


def _label(x):
    if hasattr(x, "inputs"):  # a Node
        return f"{x.name}\n{x.out_shape}"
    return f"{x.name or 'tensor'}\n{tuple(x.shape)}"


def backward_order(t):
    """The ops in the order ``t.backward()`` runs them, one line each, marking where
    gradients from several uses are summed first."""
    order, leaves, _, uses = _graph(t)
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


def to_dot(t):
    """Graphviz DOT text of the graph that made t (ops as boxes, leaves as ellipses)."""
    order, leaves, edges, uses = _graph(t)
    ids = {id(x): f"n{i}" for i, x in enumerate(order + leaves)}
    lines = ["digraph autograd {", "  rankdir=TB;", '  node [fontname="Helvetica"];']
    for node in order:
        extra = f"\\nsums {uses[id(node)]}" if uses.get(id(node), 0) > 1 else ""
        lines.append(f'  {ids[id(node)]} [shape=box, label="{_label(node)}{extra}"];'
                     .replace("\n", "\\n"))
    for leaf in leaves:
        extra = f"\\nsums {uses[id(leaf)]}" if uses.get(id(leaf), 0) > 1 else ""
        lines.append(f'  {ids[id(leaf)]} [shape=ellipse, style=filled, fillcolor="#dde8f5", '
                     f'label="{_label(leaf)}{extra}"];'.replace("\n", "\\n"))
    for a, b in edges:
        lines.append(f"  {ids[id(a)]} -> {ids[id(b)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _levels(order, edges):
    """Row of each node: its longest distance from the root (the root on row 0)."""
    level = {id(order[0]): 0}
    for a, b in edges:  # edges come in backward order: a's row is final when seen
        level[id(b)] = max(level.get(id(b), 0), level[id(a)] + 1)
    return level


def plot_graph(t, path, use_dot=None):
    """Draw the graph of t to a PNG at ``path``: with Graphviz's ``dot`` when it is
    installed (or ``use_dot=True``), otherwise with matplotlib alone. Returns the path."""
    path = pathlib.Path(path)
    if use_dot is None:
        use_dot = shutil.which("dot") is not None
    if use_dot:
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", suffix=".png.tmp")
        os.close(fd)
        try:
            subprocess.run(["dot", "-Tpng", "-o", tmp], input=to_dot(t).encode(), check=True)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path
    order, leaves, edges, uses = _graph(t)
    level = _levels(order, edges)
    rows = {}
    for x in order + leaves:
        rows.setdefault(level[id(x)], []).append(x)
    width = max(len(r) for r in rows.values())
    pos = {id(x): ((i + 0.5) / len(r) * width, -lvl)
           for lvl, r in rows.items() for i, x in enumerate(r)}
    fig, ax = subplots(figsize=(max(4, 2.2 * width), max(3, 0.9 * (len(rows) + 1))))
    for a, b in edges:
        (x0, y0), (x1, y1) = pos[id(a)], pos[id(b)]
        ax.annotate("", xy=(x1, y1 + 0.22), xytext=(x0, y0 - 0.22),
                    arrowprops=dict(arrowstyle="->", color="#555555", lw=0.8))
    for x in order + leaves:
        leaf = not hasattr(x, "inputs")
        text = _label(x) + (f"\nsums {uses[id(x)]}" if uses.get(id(x), 0) > 1 else "")
        ax.text(*pos[id(x)], text, ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round" if leaf else "square",
                          fc="#dde8f5" if leaf else "white", ec="#333333"))
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.axis("off")
    return save_figure(fig, path)
