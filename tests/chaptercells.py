"""The PyTorch code cells of d2l's chapters 2-8, read from the book's own markdown
(tests/d2l_chapters/, byte-identical copies of d2l-en at the commit its README names),
the ``tab`` object they expect, and how each cell's output is checked (``CHECKS``).
tests/test_chapters_2_6.py and tests/test_chapters_7_8.py run them with
seedcells.run_cell after scratchnet.port.port; tests/d2l_chapters/make_reference.py runs
the same cells on PyTorch.

A section's code cells are fenced ```` ```{.python .input} ```` (optionally with
``n=...``). Which framework a cell belongs to follows d2lbook (``notebook.get_cell_tab``
and ``get_tab_notebook``): a ``%%tab a, b`` mark anywhere in the cell (``# %%tab jax``
too) names its frameworks, and ``all`` means every one; the cell that loads d2lbook's
tab extension (``%load_ext d2lbook.tab``) is dropped from every framework's notebook.
One cell of these chapters has no mark at all: the last of linear-regression-concise
(3.5), which prints the estimation errors after both frameworks' ``get_w_b``. d2lbook
gives an unmarked cell to its default tab; the PyTorch edition is counted here with it
(as the issue that asked for these chapters counts it: 266 cells), since it is written
for every framework and runs on PyTorch. The PyTorch edition is every cell whose mark
names ``pytorch`` or ``all``, plus that cell, in order, with the mark line removed as
d2lbook removes it. Nothing else of a cell changes here: ``port`` then changes its
import lines, and ``if tab.selected('pytorch'):`` branches run against the ``tab``
object that ``namespace()`` supplies, as d2lbook's ``tab`` module does in the book's
PyTorch notebooks.
"""
import hashlib
import json
import pathlib
import re

# Standard library only: tests/d2l_chapters/make_reference.py imports this module in a
# venv with PyTorch and without scratchnet.
HERE = pathlib.Path(__file__).parent / "d2l_chapters"
REFERENCE = HERE / "reference_outputs.json"
COMMIT = "23d7a5aecceee57d1292c56e90cce307f183bb0a"

# d2l-en's chapters 2-6: the 28 sections with code (the others are text and maths:
# linear-regression's generalization, softmax-regression,
# generalization-classification, environment-and-distribution-shift, backprop,
# generalization-deep).
CHAPTER_2 = ["ndarray", "pandas", "linear-algebra", "calculus", "autograd", "probability"]
CHAPTER_3 = ["linear-regression", "oo-design", "synthetic-regression-data",
             "linear-regression-scratch", "linear-regression-concise", "weight-decay"]
CHAPTER_4 = ["image-classification-dataset", "classification", "softmax-regression-scratch",
             "softmax-regression-concise"]
CHAPTER_5 = ["mlp", "mlp-implementation", "numerical-stability-and-init", "dropout",
             "kaggle-house-price"]
CHAPTER_6 = ["model-construction", "parameters", "init-param", "lazy-init", "custom-layer",
             "read-write", "use-gpu"]
SECTIONS_2_6 = CHAPTER_2 + CHAPTER_3 + CHAPTER_4 + CHAPTER_5 + CHAPTER_6

# d2l-en's chapters 7 (convolutional-neural-networks) and 8 (convolutional-modern).
CHAPTER_7 = ["why-conv", "conv-layer", "padding-and-strides", "channels", "pooling", "lenet"]
CHAPTER_8 = ["alexnet", "vgg", "nin", "googlenet", "batch-norm", "resnet", "densenet",
             "cnn-design"]
SECTIONS_7_8 = CHAPTER_7 + CHAPTER_8
SECTIONS = SECTIONS_2_6 + SECTIONS_7_8

FENCE = re.compile(r"^```\{\.python \.input[^}]*\}[ \t]*\n(.*?)^```", re.S | re.M)
# d2lbook's common.source_tab_pattern_2 (a search, not a match: "# %%tab jax" is jax's).
TAB_MARK = re.compile(r"%%tab +([\w\, ]+)")
DEFAULT_TAB = "mxnet"


def digest(section):
    """The SHA-256 of the book's file of ``section``: the tests check the copies are the
    book's, byte for byte."""
    return hashlib.sha256((HERE / f"{section}.md").read_bytes()).hexdigest()


def code_cells(text):
    """Every ```{.python .input}``` cell of a section's markdown, in order."""
    return [m.group(1) for m in FENCE.finditer(text)]


def cell_tabs(cell):
    """The frameworks a cell belongs to, as d2lbook decides (unmarked: the default)."""
    mark = TAB_MARK.search(cell)
    return [t.strip() for t in mark.group(1).split(",")] if mark else [DEFAULT_TAB]


def is_pytorch(cell):
    """Whether the PyTorch edition runs ``cell``: a mark naming pytorch or all, or no mark
    at all other than d2lbook's own ``%load_ext`` cell (see the module's docstring)."""
    if "%load_ext d2lbook.tab" in cell:
        return False
    return not TAB_MARK.search(cell) or bool({"pytorch", "all"} & set(cell_tabs(cell)))


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
    return [without_mark(c) for c in code_cells(text) if is_pytorch(c)]


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
#             training loss are checked (d2l's Trainer prints no text to compare);
#   fit       (chapters 2-6) ``trainer.fit`` as the book writes it, or short for
#             Fashion-MNIST (``shortened``): what the cell prints besides scratchnet's
#             Trainer lines is compared with PyTorch's, numbers masked (a trained
#             weight's norm), and the training loss fell;
#   raises    the cell raises on PyTorch too, on a machine with fewer GPUs than it asks
#             for: the same exception type and message;
#   internet  needs the internet on PyTorch too (5.7 downloads Kaggle's data): not run,
#             listed with why (tests/test_chapters_2_6.py's INTERNET).
S, E, P, T = "silent", "exact", "property", "training"
F, R, N = "fit", "raises", "internet"
CHECKS = {
    "ndarray": [S, E, E, E, E, E, E, P, E, E, E, E, E, E, E, E, E, E, E, E, P, E, E, E],
    "pandas": [S, E, E, E, E],
    "linear-algebra": [S] + [E] * 29,
    "calculus": [S, S, E, S, S, S, S, S],
    "autograd": [S, E, S, E, E, E, E, E, E, E, S, S, E],
    "probability": [S, P, P, P, P, P],
    "linear-regression": [S, S, P, P, S, S],
    "oo-design": [S, S, S, E, S, E, S, S, S, S, S],
    "synthetic-regression-data": [S, S, S, P, S, E, S, S, E, E],
    "linear-regression-scratch": [S, S, S, S, S, S, S, S, F, P],
    "linear-regression-concise": [S, S, S, S, S, F, S, P],
    "weight-decay": [S, S, S, S, S, F, F, S, F],
    "image-classification-dataset": [S, S, E, E, S, S, E, P, S, S],
    "classification": [S, S, S, S],
    "softmax-regression-scratch": [S, E, S, P, S, S, E, E, S, F, E, S],
    "softmax-regression-concise": [S, S, S, F],
    "mlp": [S, S, S, S, S, S, S],
    "mlp-implementation": [S, S, S, S, F, S, F],
    "numerical-stability-and-init": [S, S, P],
    "dropout": [S, S, P, S, F, S, F],
    "kaggle-house-price": [S, S, S, N, N, S, N, S, S, S, N, N],
    "model-construction": [S, E, S, E, S, E, S, P, P],
    "parameters": [S, E, P, P, E, E, E],
    "init-param": [S, E, P, E, P, P, P],
    "lazy-init": [S, S, E, E, S],
    "custom-layer": [S, S, E, S, P, S, P, P, P],
    "read-write": [S, S, E, E, E, S, S, E, E],
    "use-gpu": [S, E, E, E, E, E, P, R, R, R, S, P, E, S],
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
del S, E, P, T, F, R, N

NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?")


ADDRESS = re.compile(r"\bat 0x[0-9a-f]+\b")


def masked(text):
    """``text`` with every number replaced by N and its white space removed: a random
    value's digits, its column's width and where a long line wraps are not compared;
    the text around the numbers and how many there are are. An object's address in its
    repr (``<matplotlib.legend.Legend object at 0x7f...>``) is masked whole."""
    return re.sub(r"\s+", "", NUMBER.sub("N", ADDRESS.sub("at ADDRESS", text)))


def values(text):
    """The decimal numbers a cell printed (not the 0 of grad_fn=<ViewBackward0>)."""
    return [float(x) for x in re.findall(r"-?\d+\.\d*(?:e[+-]?\d+)?", text)]


def shortened(cell):
    """A training cell as the tests (and the reference) run it: one epoch, not ten."""
    assert "max_epochs=10" in cell, cell
    return cell.replace("max_epochs=10", "max_epochs=1")


# Chapters 2-6's fit cells that train on Fashion-MNIST run short (``shortened``, on the
# reference's first 256 images); those on 3.3's synthetic data or 3.7's 20 examples run
# as written (seconds).
SHORT_FITS = {("softmax-regression-scratch", 9), ("softmax-regression-concise", 3),
              ("mlp-implementation", 4), ("dropout", 4)}


def as_run(section, i, cell):
    """Cell ``i`` of ``section`` as the tests and the reference run it."""
    check = CHECKS[section][i]
    if check == "training" or (section, i) in SHORT_FITS:
        return shortened(cell)
    return cell


def reference():
    """tests/d2l_chapters/reference_outputs.json: per section, per cell index, what the
    cell printed on PyTorch with d2l 1.0.3 and how it is checked."""
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


class kernel_state:
    """A block after which the classes and names of ``module`` (the d2l module a section
    imports) are as before it: what the section's ``@d2l.add_to_class(d2l.Trainer)``
    cells changed is undone, as a fresh Jupyter kernel per section would have it."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.names = dict(vars(self.module))
        self.classes = {c: dict(vars(c)) for c in self.names.values()
                        if isinstance(c, type) and c.__module__ == self.module.__name__}
        return self

    def __exit__(self, *exc):
        for cls, attrs in self.classes.items():
            for k in set(vars(cls)) - set(attrs):
                delattr(cls, k)
            for k, v in attrs.items():
                if k not in ("__dict__", "__weakref__") and vars(cls).get(k) is not v:
                    setattr(cls, k, v)
        for k in set(vars(self.module)) - set(self.names):
            delattr(self.module, k)
        vars(self.module).update(self.names)
        return False
