"""The seed notebook's code cells, ported to scratchnet by the four import lines alone,
and a Jupyter-like runner for them (tests/test_seed.py).

The seed (``tests/seed/000_f6b39f2976603ebe.txt``, a copy of the project's
``shared/seeds`` file) is an exported d2l notebook: each code cell follows a line
``In [None]:`` and runs until the next cell, a markdown heading or the end.
"""
import ast
import contextlib
import io
import pathlib

SEED = pathlib.Path(__file__).parent / "seed" / "000_f6b39f2976603ebe.txt"

# The only change a student makes: PyTorch's and d2l's imports become scratchnet's.
IMPORTS = {
    "import torch": "import scratchnet as torch",
    "from torch import nn": "from scratchnet import nn",
    "from torch.nn import functional as F": "from scratchnet.autograd import functional as F",
    "import torch.nn.functional as F": "from scratchnet.autograd import functional as F",
    "from d2l import torch as d2l": "from scratchnet import d2l",
}


def code_cells(text=None):
    """Every code cell of the seed, in order (the two ``pip install`` cells included)."""
    text = SEED.read_text(encoding="utf-8") if text is None else text
    cells, cur = [], None
    for line in text.splitlines():
        if line.startswith("In [") and line.rstrip().endswith("]:"):
            if cur is not None:
                cells.append(cur)
            cur = []
        elif cur is not None and line.startswith(("## ", "### ", "# **")):
            cells.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    if cur is not None:
        cells.append(cur)
    return ["\n".join(c).strip("\n") for c in cells]


def port(cell):
    """The cell with its import lines replaced, and nothing else changed."""
    return "\n".join(IMPORTS.get(line.strip(), line) for line in cell.splitlines())


def run_cell(code, namespace):
    """Run ``code`` as Jupyter does: statements, then the value of a final expression
    shown by its repr. Returns what the cell printed."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
            if value is not None:
                print(repr(value))
    return out.getvalue()
