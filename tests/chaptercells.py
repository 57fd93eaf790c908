"""The PyTorch code cells of d2l's chapters 7 and 8, read from the book's own markdown
(tests/d2l_chapters/, byte-identical copies of d2l-en at the commit its README names),
the ``tab`` object they expect, and how each cell's output is checked (``CHECKS``).
tests/test_chapters_7_8.py runs them with seedcells.run_cell after scratchnet.port.port;
tests/d2l_chapters/make_reference.py runs the same cells on PyTorch.

A section's code cells are fenced ```` ```{.python .input} ```` (optionally with
``n=...``). Which framework a cell belongs to follows d2lbook (``notebook.get_cell_tab``):
a ``%%tab a, b`` mark anywhere in the cell (``# %%tab jax`` too) names its frameworks, and
``all`` means every one; a cell without a mark goes to the default tab, the first of the
book's tabs (mxnet, as ``tab.interact_select(['mxnet', 'pytorch', ...])`` lists them),
not to PyTorch -- in these sections only the ``%load_ext d2lbook.tab`` cell has none.
The PyTorch edition is every cell whose mark names ``pytorch`` or ``all``, in order, with
the mark line removed as d2lbook removes it. Nothing else of a cell changes here:
``port`` then changes its import lines, and ``if tab.selected('pytorch'):`` branches run
against the ``tab`` object that ``namespace()`` supplies, as d2lbook's ``tab`` module
does in the book's PyTorch notebooks.
"""
import json
import pathlib
import re

# Standard library only: tests/d2l_chapters/make_reference.py imports this module in a
# venv with PyTorch and without scratchnet.
HERE = pathlib.Path(__file__).parent / "d2l_chapters"
REFERENCE = HERE / "reference_outputs.json"
COMMIT = "23d7a5aecceee57d1292c56e90cce307f183bb0a"

# d2l-en's chapters 7 (convolutional-neural-networks) and 8 (convolutional-modern).
CHAPTER_7 = ["why-conv", "conv-layer", "padding-and-strides", "channels", "pooling", "lenet"]
CHAPTER_8 = ["alexnet", "vgg", "nin", "googlenet", "batch-norm", "resnet", "densenet",
             "cnn-design"]
SECTIONS = CHAPTER_7 + CHAPTER_8

FENCE = re.compile(r"^```\{\.python \.input[^}]*\}[ \t]*\n(.*?)^```", re.S | re.M)
# d2lbook's common.source_tab_pattern_2 (a search, not a match: "# %%tab jax" is jax's).
TAB_MARK = re.compile(r"%%tab +([\w\, ]+)")
DEFAULT_TAB = "mxnet"


def code_cells(text):
    """Every ```{.python .input}``` cell of a section's markdown, in order."""
    return [m.group(1) for m in FENCE.finditer(text)]


def cell_tabs(cell):
    """The frameworks a cell belongs to, as d2lbook decides."""
    mark = TAB_MARK.search(cell)
    return [t.strip() for t in mark.group(1).split(",")] if mark else [DEFAULT_TAB]


def without_mark(cell):
    """The cell without its ``%%tab`` line (d2lbook drops it from the tab's notebook)."""
    lines = cell.split("\n")
    for j, line in enumerate(lines):
        if TAB_MARK.search(line):
            del lines[j]
            break
    return "\n".join(lines)


def pytorch_cells(section):
    """The PyTorch edition's code cells of ``section`` (its name: "conv-layer"), as the
    book writes them, the ``%%tab`` line removed."""
    text = (HERE / f"{section}.md").read_text(encoding="utf-8")
    return [without_mark(c) for c in code_cells(text)
            if {"pytorch", "all"} & set(cell_tabs(c))]


class Tab:
    """d2lbook's ``tab`` module as the book's PyTorch notebooks see it:
    ``tab.selected('pytorch', 'mxnet')`` is True when pytorch is among the names."""

    selected_tabs = ("pytorch",)

    def selected(self, *tabs):
        return any(t in self.selected_tabs for t in tabs)

    def interact_select(self, *tabs):
        pass


def namespace():
    """A fresh namespace for one section, as one Jupyter kernel: ``tab`` supplied."""
    return {"__name__": "__main__", "tab": Tab()}


# How each cell's output is checked, per section, per PyTorch cell (0 = the first):
#   silent    prints nothing (imports, definitions, an assert that holds);
#   exact     deterministic text (values, shapes, layer summaries), compared character
#             for character with PyTorch's (random inputs whose shapes alone are printed
#             are exact);
#   property  random values (weights drawn at random): compared with PyTorch's text with
#             every number masked (``masked``), plus what the values must satisfy;
#   training  ``trainer.fit``: run short (``shortened``); the epoch line and a falling
#             training loss are checked (d2l's Trainer prints no text to compare).
S, E, P, T = "silent", "exact", "property", "training"
CHECKS = {
    "why-conv": [],  # no code cells
    "conv-layer": [S, S, E, S, E, S, E, E, P, P],  # 8: the kernel learned from torch.rand
    "padding-and-strides": [S, E, E, E, E],
    "channels": [S, S, E, S, E, E, S, S],
    "pooling": [S, S, E, E, E, E, E, E, E, E],
    "lenet": [S, S, S, E, T],
    "alexnet": [S, S, E, T],
    "vgg": [S, S, S, E, T],
    "nin": [S, S, S, E, T],
    "googlenet": [S, S, S, S, S, S, S, S, E, T],
    "batch-norm": [S, S, S, S, T, P, S, T],  # 5: the trained gamma and beta
    "resnet": [S, S, E, E, S, S, S, S, E, T, S, E],
    "densenet": [S, S, S, E, S, E, S, S, T],
    "cnn-design": [S, S, S, S, S, E, T],
}
del S, E, P, T

NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?")


def masked(text):
    """``text`` with every number replaced by N and its white space removed: a random
    value's digits, its column's width and where a long line wraps are not compared;
    the text around the numbers and how many there are are."""
    return re.sub(r"\s+", "", NUMBER.sub("N", text))


def shortened(cell):
    """A training cell as the tests (and the reference) run it: one epoch, not ten."""
    assert "max_epochs=10" in cell, cell
    return cell.replace("max_epochs=10", "max_epochs=1")


def reference():
    """tests/d2l_chapters/reference_outputs.json: per section, per cell index, what the
    cell printed on PyTorch with d2l 1.0.3 and how it is checked."""
    return json.loads(REFERENCE.read_text(encoding="utf-8"))
