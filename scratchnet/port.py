"""Port d2l's PyTorch code to scratchnet by changing its import lines, and nothing else.

    python -m scratchnet.port chapter.ipynb chapter_scratchnet.ipynb
    python -m scratchnet.port script.py            # prints the ported script

Each line that is exactly one of PyTorch's or d2l's imports below becomes scratchnet's;
every other line stays as written (see docs/porting.md for what runs underneath).
"""
import argparse
import json
import pathlib
import sys

IMPORTS = {
    "import torch": "import scratchnet as torch",
    "from torch import nn": "from scratchnet import nn",
    "from torch.nn import functional as F": "from scratchnet.autograd import functional as F",
    "import torch.nn.functional as F": "from scratchnet.autograd import functional as F",
    "from d2l import torch as d2l": "from scratchnet import d2l",
}


def port(code):
    """``code`` with its import lines replaced (indentation kept), nothing else changed."""
    lines = []
    for line in code.splitlines():
        stripped = line.strip()
        lines.append(line[:len(line) - len(line.lstrip())] + IMPORTS[stripped]
                     if stripped in IMPORTS else line)
    return "\n".join(lines)


def cells_from_export(text):
    """The code cells of a notebook exported as text (each after a line ``In [...]:``,
    up to the next cell, a markdown heading or the end), as the project's seed is."""
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


def port_notebook(nb):
    """A notebook (the parsed .ipynb JSON) with every code cell ported, outputs dropped."""
    out = dict(nb, cells=[])
    for cell in nb["cells"]:
        cell = dict(cell)
        if cell["cell_type"] == "code":
            source = cell["source"]
            source = "".join(source) if isinstance(source, list) else source
            cell.update(source=port(source), outputs=[], execution_count=None)
        out["cells"].append(cell)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m scratchnet.port", description=__doc__.split(
        "\n")[0])
    p.add_argument("source", help="a .ipynb notebook or a .py script")
    p.add_argument("target", nargs="?", help="where to write the ported copy "
                   "(default: print it)")
    args = p.parse_args(argv)
    text = pathlib.Path(args.source).read_text(encoding="utf-8")
    if args.source.endswith(".ipynb"):
        text = json.dumps(port_notebook(json.loads(text)), indent=1, ensure_ascii=False)
    else:
        text = port(text)
    if args.target is None:
        sys.stdout.write(text + "\n")
    else:
        from .io import atomic_write_text
        atomic_write_text(args.target, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
