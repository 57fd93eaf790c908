"""Build the notebooks of notebooks/, one per section of the seed and of chapter 8, and the
section scripts of examples/ from them: one source per section, the lists below.

    python notebooks/build.py                 # every notebook: build, execute, write; scripts
    python notebooks/build.py --only 7.2      # one notebook (and its scripts)
    python notebooks/build.py --no-execute    # cells only (see below)

Each notebook is a list of items: markdown (a str), a seed cell (an int: that code cell
of tests/seed/000_f6b39f2976603ebe.txt, its import lines ported by scratchnet.port and
nothing else changed), a book cell (``Book``: a PyTorch cell of d2l-en's chapter 8 as
tests/chaptercells.py reads it from tests/d2l_chapters/, ported the same way; for the
sections the seed lacks) or an extra code cell (``Code``: the book's ResNeXt cells, the
``tab`` setup cell, and the cells headed "Underneath", scratchnet's own additions after
the book's cells).

The notebooks are stored with their outputs, executed by nbclient top to bottom on a
fresh ``python3`` kernel in a temporary folder. Every kernel starts with
``scratchnet.manual_seed(0)`` (as tests/conftest.py seeds every test), so a rebuild
draws the same random numbers. The training cells of chapter 8 but 8.5 run on a subset
(``Notebook.env``, made by ``subset()``, set in the kernel's environment, never in the
notebooks' code); their markdown says so. The tests train on ``Notebook.test_images``.
Fashion-MNIST is found as the tests find it (``$SCRATCHNET_DATA``, else ../shared/data).
``--no-execute`` rebuilds the cells and keeps the stored outputs when every code cell is
unchanged (a markdown edit), and drops them otherwise.

The scripts (examples/sec*.py, examples/exercises.py) are the notebooks exported: the
markdown as ``#`` comments, the code as it is, and a cell's final bare expression, whose
value Jupyter shows, wrapped in ``print(...)``.
"""
import argparse
import ast
import dataclasses
import os
import pathlib
import re
import sys
import tempfile
import textwrap
import time

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's scratchnet, installed or not
sys.path.insert(1, str(ROOT / "tests"))  # chaptercells: the book's chapter 7-8 cells
from chaptercells import pytorch_cells  # noqa: E402
from scratchnet.io import atomic_write_text  # noqa: E402
from scratchnet.port import cells_from_export, port  # noqa: E402

SEED = ROOT / "tests" / "seed" / "000_f6b39f2976603ebe.txt"
NOTEBOOKS_DIR = ROOT / "notebooks"
EXAMPLES_DIR = ROOT / "examples"
KERNEL_START = "import scratchnet; scratchnet.manual_seed(0)"
BATCH_SIZE = 128  # the book's, in every training cell


def subset(images, epochs):
    """The kernel's environment for a training run on the first ``images`` training and
    test images for ``epochs`` epochs (d2l.FashionMNIST and d2l.Trainer read it)."""
    return {"SCRATCHNET_D2L_SUBSET": str(images), "SCRATCHNET_D2L_MAX_EPOCHS": str(epochs)}


SUBSET = subset(2048, 3)
HEAVY = subset(1024, 2)  # AlexNet, NiN, GoogLeNet and DenseNet, the heaviest
# Calls whose value is None: Jupyter shows nothing for them, so the script prints nothing.
NO_VALUE = {"print", "fit", "layer_summary"}


class Code(str):
    """An extra code cell (not from the seed); ``output`` says how a fresh run's output is
    compared with the stored one when that is not character for character (see
    output_policy)."""

    def __new__(cls, source, output=None):
        cell = super().__new__(cls, source)
        cell.output = output
        return cell


@dataclasses.dataclass(frozen=True)
class Book:
    """A PyTorch code cell of d2l-en as written: the ``index``-th of ``section`` ("alexnet",
    tests/d2l_chapters/alexnet.md), its import lines ported; ``output`` as Code's."""
    section: str
    index: int
    output: dict = None


def book_cell(section, index):
    """The source of that cell in a notebook: the book's, its import lines ported."""
    return port(pytorch_cells(section)[index])


# How a test's fresh run of a cell is compared with its stored output (tests/
# test_notebooks.py). Exact unless the cell's metadata says otherwise:
#   {"compare": "numbers", "atol": x, "why": ...}: the text outside the numbers exactly,
#        each number within atol (an order of float additions, e.g. BLAS's, decides it);
#   {"compare": "no", "why": ...}: not compared (a training run, or what it trained).
# Pictures (image/png) are never compared: matplotlib's pixels change between versions.
def training_output(images):
    return {"compare": "no",
            "why": "a training run: its losses, accuracies and times depend on the images "
                   "and epochs it ran (the stored run's are in the markdown above; a test "
                   f"runs one epoch on {images} images) and on the machine"}


# The same float64 value computed twice, with additions in different orders (BLAS's, the
# tape's sum of a leaf's gradients, PyTorch's kernels): 0.0 or a few 1e-16.
F64_ROUNDING = {"compare": "numbers", "atol": 1e-12,
                "why": "float64 differences of the same gradient computed by hand, on the "
                       "tape and on PyTorch, whose additions run in different orders (0.0 "
                       "or a few 1e-16)"}
TRAINED_OUTPUT = {"compare": "no", "why": "it reads the model the training cell above trained"}
# A difference of two float32 results that add in different orders (BLAS's, or the tape's
# sum of a tensor's gradients against a hand-written backward's).
ROUNDING = {"compare": "numbers", "atol": 1e-5,
            "why": "the largest difference of two float32 computations of the same value, "
                   "whose additions run in different orders (0.0 or about 1e-7)"}


def output_policy(item, source, test_images):
    """The comparison ``item``'s output gets (None: character for character)."""
    if "trainer.fit(" in source:
        return training_output(test_images)
    return getattr(item, "output", None)


@dataclasses.dataclass
class Notebook:
    key: str  # what --only takes
    name: str  # notebooks/<name>.ipynb
    items: list
    scripts: list  # (examples/<script>, Part)
    env: dict = dataclasses.field(default_factory=dict)  # the kernel's, for the stored run
    test_images: int = 256  # the tests train on this many images, one epoch


@dataclasses.dataclass
class Part:
    """The cells of a notebook that go into one script: all of them, only those of one
    section (``only``, with the notebook's import cells before it), or all but one
    section (``skip``). A cell belongs to the section of the last numbered heading above."""
    only: str = None
    skip: str = None


def intro(title, section):
    return f"""\
# {title}

The code cells are the seed notebook's cells for d2l 1.0.3 section {section}, as written;
only their import lines were changed (`scratchnet.port`: `import torch` became
`import scratchnet as torch`, and so on). The text between them says what each cell
shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
own additions, after the book's cells."""


def book_intro(title, section, name):
    return f"""\
# {title}

The code cells are the PyTorch cells of d2l section {section} as the book writes them
(d2l-en's `{name}.md`, copied in `tests/d2l_chapters/`); only their import lines were
changed (`scratchnet.port`: `import torch` became `import scratchnet as torch`, and so
on). The text between them says what each cell shows and what scratchnet runs
underneath. Cells headed *Underneath* are scratchnet's own additions, after the book's
cells; so is the setup cell below."""


TAB_NOTE = """\
### Setup: `tab` (scratchnet's cell, not the book's)

The book writes each cell for four frameworks at once and asks d2lbook's `tab` which
branch to run: `if tab.selected('pytorch'):`. Here the cells stay as written, so this
cell stands in for d2lbook: `tab.selected(...)` is true when `'pytorch'` is among its
names, and only the PyTorch branches run."""
TAB_CELL = Code("""\
import types

tab = types.SimpleNamespace(selected=lambda *tabs: 'pytorch' in tabs)""")


def same_keys(model, shape):
    """An Underneath cell: the book's trained ``model`` and scratchnet.models' twin (the
    same name) have the same state_dict keys; ``shape`` initialises the twin's lazy layers."""
    return Code(f"""\
from scratchnet import models

mine = models.{model}()
mine(torch.zeros{shape})  # the lazy layers take their shapes
list(model.state_dict()) == list(mine.state_dict())""")


def twin_note(model, name):
    return f"""\
### Underneath: `scratchnet.models.{model}`

`scratchnet.models.{model}` is the same network: the same layers under the same
`state_dict` keys (so weights load from one into the other), every layer and block with
a `backward` of its own, so it always trains by hand.
`python examples/train_cnn.py --model {name}` trains it with the book's settings."""


def subset_note(recipe, env=SUBSET):
    n, epochs = env["SCRATCHNET_D2L_SUBSET"], int(env["SCRATCHNET_D2L_MAX_EPOCHS"])
    steps = epochs * -(-int(n) // BATCH_SIZE)
    return f"""\
**The stored output below is a CPU subset run, not the book's recipe.**
`notebooks/build.py` ran this notebook with `SCRATCHNET_D2L_SUBSET={n}` (the first {n}
training and the first {n} test images) and `SCRATCHNET_D2L_MAX_EPOCHS={epochs}` ({epochs} epochs,
{steps} SGD steps), because the full recipe ({recipe}) takes hours on the 2-core CPU it was
built on. The code is the book's: unset those variables and it runs the full recipe. On a
GPU (`pip install -e ".[gpu]"`) `num_gpus=1` trains there; without one the trainer says
so and uses the CPU."""


NOTEBOOKS = [
    Notebook("2.5", "2.5_automatic_differentiation", [
        book_intro("2.5 Automatic Differentiation", "2.5", "autograd"),
        "The import line, as the book writes it: `torch` is scratchnet here.",
        Book("autograd", 0),
        r"""## 2.5.1 A Simple Function

The book differentiates $y = 2\mathbf{x}^\top\mathbf{x}$ with respect to the column
vector $\mathbf{x}$. `torch.arange(4.0)` makes a Tensor: a NumPy array (`x.array`) with
the tape's bookkeeping around it.""",
        Book("autograd", 1),
        """\
`requires_grad_(True)` makes `x` a leaf of the tape: every op on it from now on
records a node. Its gradient is None until a backward writes one, as in PyTorch.""",
        Book("autograd", 2),
        """\
`torch.dot` records one node, `DotBackward0`, and `2 * ...` records `MulBackward0`. The
printed `grad_fn` is the last node: the one `backward()` starts from.""",
        Book("autograd", 3),
        r"""### Underneath: the graph `backward()` will walk

`backward_order` lists the nodes in the order `backward()` runs them, and `plot_graph`
draws them (ops as boxes, leaves as rounded boxes). With `numbers=True` each shows its
value, the gradient that reaches it (computed on the side: `x.grad` stays as it is) and
the line that made it. `x` enters `dot` twice, so the leaf sums two gradients:
$2\mathbf{x}$ from each side, each times the 2 of `MulBackward0` above, is $4\mathbf{x}$.
The 2 itself needs no gradient, and the last line says it is left out.""",
        Code("""\
import scratchnet.autograd as ag
from IPython.display import Image

print('\\n'.join(ag.backward_order(y, numbers=True)))
Image(filename=ag.plot_graph(y, 'autograd_dot.png', use_dot=False, numbers=True))"""),
        Book("autograd", 4),
        r"The gradient of $2\mathbf{x}^\top\mathbf{x}$ is $4\mathbf{x}$:",
        Book("autograd", 5),
        """\
A leaf's gradient accumulates over backward calls, as in PyTorch: the book zeroes it
with `x.grad.zero_()` (in place: `x.grad` is a Tensor sharing the gradient's array)
before the next one. The gradient of `x.sum()` is a vector of ones.""",
        Book("autograd", 6),
        r"""## 2.5.2 Backward for Non-Scalar Variables

`y = x * x` is a vector. `y.backward(gradient=v)` computes the vector-Jacobian product
$\mathbf{v}^\top \partial \mathbf{y} / \partial \mathbf{x}$; with $\mathbf{v}$ all
ones, that is the gradient of `y.sum()`.""",
        Book("autograd", 7),
        r"""### Underneath: `gradient=` is the gradient coming from above

The Jacobian of `x * x` is $\mathrm{diag}(2\mathbf{x})$, and each `v` takes a
combination of its rows: the first unit vector gives the first row. `retain_graph=True`
keeps what the nodes saved for a second backward (without it the first backward frees
it).""",
        Code("""\
x.grad.zero_()
y = x * x
y.backward(gradient=torch.tensor([1.0, 0.0, 0.0, 0.0]), retain_graph=True)
print(x.grad)  # 2 * x[0] in place 0, zeros elsewhere
x.grad.zero_()
y.backward(gradient=torch.tensor([0.0, 1.0, 1.0, 0.0]))
x.grad"""),
        """\
## 2.5.3 Detaching Computation

`y.detach()` is a Tensor sharing `y`'s array with no node behind it: for the tape `u`
is a constant, so the gradient of `z = u * x` with respect to `x` is `u`.""",
        Book("autograd", 8),
        """\
### Underneath: where the graph stops

In the graph of `z`, `u` is an input that needs no gradient: no edge leads from it back
to `x * x`, and the last line names it among what the graph leaves out.""",
        Code("""\
z = u * x
print('\\n'.join(ag.backward_order(z.sum(), numbers=True)))
Image(filename=ag.plot_graph(z.sum(), 'autograd_detach.png', use_dot=False, numbers=True))"""),
        "`y` itself was not detached: its own graph still leads to `x`.",
        Book("autograd", 9),
        """\
## 2.5.4 Gradients and Python Control Flow

`f` doubles `b` until its norm reaches 1000, then maybe multiplies it by 100. The tape
records only the ops that ran, so whatever path Python took, `d` is `a` times a
constant, and the gradient is that constant, `d / a`.""",
        Book("autograd", 10),
        Book("autograd", 11),
        Book("autograd", 12),
        """\
### Underneath: the tape recorded one path

One `MulBackward0` per doubling that the `while` loop ran, and no node for the tests
that decided it: `b.norm() < 1000` and `b.sum() > 0` are comparisons, which need no
gradient.""",
        Code("""\
order = ag.backward_order(f(a))
print(len(order), 'nodes:', sorted({line.split()[1] for line in order}))
print('the constant d / a =', float(d / a))"""),
        """\
### Underneath: the same gradients on PyTorch

The gradients of this section again, in float64, on scratchnet's tape and on PyTorch
(`pytorch` below is the real one, when it is installed).""",
        Code("""\
import numpy as np

try:
    import torch as pytorch
except ImportError:
    pytorch = None
    print('PyTorch is not installed (pip install torch): nothing to compare with')


def gradients(lib):
    x = lib.arange(4.0, dtype=lib.float64, requires_grad=True)
    grads = []
    for make in (lambda x: 2 * lib.dot(x, x), lambda x: x.sum(),
                 lambda x: (x * x).sum(), lambda x: ((x * x).detach() * x).sum()):
        x.grad = None
        make(x).backward()
        grads.append(np.array(x.grad.tolist()))
    return grads


if pytorch is not None:
    for ours, theirs in zip(gradients(torch), gradients(pytorch)):
        print(ours, 'largest difference from PyTorch:', np.abs(ours - theirs).max())""",
             output=F64_ROUNDING),
    ], [("sec2_5_autograd.py", Part())]),

    Notebook("5.3", "5.3_backprop", [
        r"""# 5.3 Forward Propagation, Backward Propagation, and Computational Graphs

Section 5.3 of d2l has no code: it derives backpropagation for a one-hidden-layer MLP
with weight decay, by hand. Here are its equations as code, three ways: the backward
written by hand on NumPy arrays, scratchnet's tape, and PyTorch, side by side. This
notebook is scratchnet's own (no cell of the book to port).

The book's network, for one example $\mathbf{x} \in \mathbb{R}^d$ with label $y$
(no biases, as in the book):

$$\mathbf{z} = \mathbf{W}^{(1)} \mathbf{x}, \quad \mathbf{h} = \phi(\mathbf{z}), \quad
\mathbf{o} = \mathbf{W}^{(2)} \mathbf{h}, \quad L = l(\mathbf{o}, y), \quad
s = \frac{\lambda}{2}\left(\|\mathbf{W}^{(1)}\|_F^2 + \|\mathbf{W}^{(2)}\|_F^2\right),
\quad J = L + s.$$

Here $\phi$ is ReLU and $l$ the cross-entropy loss of the softmax of $\mathbf{o}$.""",
        Code("""\
import numpy as np
import scratchnet as torch
import scratchnet.autograd as ag
from IPython.display import Image

rng = np.random.default_rng(0)
d, h, q, lambd = 4, 5, 3, 0.1
x = rng.standard_normal(d)
y = 2
W1 = rng.standard_normal((h, d)) * 0.5
W2 = rng.standard_normal((q, h)) * 0.5"""),
        """\
## 5.3.1 Forward Propagation

The forward pass, step by step as the equations write it, keeping every intermediate:
the backward pass needs them.""",
        Code("""\
z = W1 @ x
hid = np.maximum(z, 0)
o = W2 @ hid
p = np.exp(o - o.max()) / np.exp(o - o.max()).sum()  # softmax
L = -np.log(p[y])
s = lambd / 2 * ((W1 ** 2).sum() + (W2 ** 2).sum())
J = L + s
print(f'L = {L:.6f}, s = {s:.6f}, J = {J:.6f}')"""),
        r"""## 5.3.3 Backpropagation, by hand

The chain rule from $J$ back to the parameters, in the book's order. The gradient of
cross-entropy after softmax with respect to $\mathbf{o}$ is $\mathrm{softmax}(\mathbf{o})
- \mathrm{onehot}(y)$.

$$\frac{\partial J}{\partial \mathbf{W}^{(2)}} = \frac{\partial J}{\partial \mathbf{o}}
\mathbf{h}^\top + \lambda \mathbf{W}^{(2)}, \quad
\frac{\partial J}{\partial \mathbf{h}} = {\mathbf{W}^{(2)}}^\top
\frac{\partial J}{\partial \mathbf{o}}, \quad
\frac{\partial J}{\partial \mathbf{z}} = \frac{\partial J}{\partial \mathbf{h}} \odot
\phi'(\mathbf{z}), \quad
\frac{\partial J}{\partial \mathbf{W}^{(1)}} = \frac{\partial J}{\partial \mathbf{z}}
\mathbf{x}^\top + \lambda \mathbf{W}^{(1)}.$$""",
        Code("""\
dJ_do = p.copy()
dJ_do[y] -= 1
dJ_dW2 = np.outer(dJ_do, hid) + lambd * W2
dJ_dh = W2.T @ dJ_do
dJ_dz = dJ_dh * (z > 0)  # ReLU's derivative: 1 where z > 0
dJ_dW1 = np.outer(dJ_dz, x) + lambd * W1
print(dJ_dW1)
print(dJ_dW2)"""),
        """\
## 5.3.2 The computational graph, on the tape

The same forward on scratchnet Tensors: `W1` and `W2` are leaves that require
gradients, and every op records a node. The picture is the book's computational graph
(its Figure 5.3.1), as the tape recorded it: `W1` and `W2` each feed two paths, the
network and the penalty, so each sums two gradients. (`backward_order` and the picture
name the nodes as scratchnet does, without PyTorch's trailing 0; a leaf's `name` is
scratchnet's own label for the pictures.)""",
        Code("""\
import scratchnet.nn.functional as F

tW1 = torch.tensor(W1, requires_grad=True)
tW2 = torch.tensor(W2, requires_grad=True)
tW1.name, tW2.name = 'W1', 'W2'  # scratchnet's: how the pictures label a leaf
tx = torch.tensor(x)
tz = torch.mv(tW1, tx)
th = torch.relu(tz)
to = torch.mv(tW2, th)
tL = F.cross_entropy(to.reshape(1, -1), torch.tensor([y]))
ts = lambd / 2 * ((tW1 ** 2).sum() + (tW2 ** 2).sum())
tJ = tL + ts
print('\\n'.join(ag.backward_order(tJ)))
Image(filename=ag.plot_graph(tJ, 'backprop_mlp.png', use_dot=False))"""),
        """\
`backward()` runs those nodes in that order, each one's backward being one of the
equations above.""",
        Code("""\
tJ.backward()
print('J, by hand and on the tape:', J, float(tJ))
print('largest |dJ/dW1, tape - by hand|:', np.abs(tW1.grad.array - dJ_dW1).max())
print('largest |dJ/dW2, tape - by hand|:', np.abs(tW2.grad.array - dJ_dW2).max())""",
             output=F64_ROUNDING),
        """\
## Beside PyTorch

The same network on PyTorch (`pytorch` is the real one, when it is installed), in
float64: its autograd gives the same gradients.""",
        Code("""\
try:
    import torch as pytorch
except ImportError:
    pytorch = None
    print('PyTorch is not installed (pip install torch): nothing to compare with')

if pytorch is not None:
    pW1 = pytorch.tensor(W1, requires_grad=True)
    pW2 = pytorch.tensor(W2, requires_grad=True)
    po = pW2 @ pytorch.relu(pW1 @ pytorch.tensor(x))
    pL = pytorch.nn.functional.cross_entropy(po.reshape(1, -1), pytorch.tensor([y]))
    pJ = pL + lambd / 2 * ((pW1 ** 2).sum() + (pW2 ** 2).sum())
    pJ.backward()
    print('largest |dJ/dW1, PyTorch - by hand|:', np.abs(pW1.grad.numpy() - dJ_dW1).max())
    print('largest |dJ/dW2, PyTorch - by hand|:', np.abs(pW2.grad.numpy() - dJ_dW2).max())""",
             output=F64_ROUNDING),
        """\
## 5.3.4 Training Neural Networks: what the memory holds

To run the backward pass, the forward pass keeps its intermediates: here `z`, `hid`,
`o` and `p` by hand, and on the tape the arrays each node saved. That is why training
needs more memory than prediction, which can drop each intermediate once the next
layer has it. After `backward()` the tape frees what its nodes saved (unless
`retain_graph=True`): a second backward has nothing to run on.""",
        Code("""\
try:
    tJ.backward()
except RuntimeError as e:
    print('RuntimeError:', e)"""),
    ], [("sec5_3_backprop.py", Part())]),

    Notebook("7.1", "7.1_from_fully_connected_layers_to_convolutions", [
        """\
# 7.1 From Fully Connected Layers to Convolutions

Section 7.1 of d2l has no code: it derives the convolutional layer from a fully
connected one. Its steps in the seed's formulas, then exercise 7.1.6, the seed's code
with only its import lines changed.""",
        r"""## 7.1.2 Constraining the MLP

A fully connected layer from an image $\mathbf{X}$ to a hidden image $\mathbf{H}$ has a
weight for every pair of pixels; written with offsets $k = i + a$, $l = j + b$:

$$[\mathbf{H}]_{i,j} = [\mathbf{U}]_{i,j}
    + \sum_{a} \sum_{b} [\mathbf{V}]_{i,j,a,b} [\mathbf{X}]_{i+a,j+b}.$$""",
        r"""### 7.1.2.1 Translation Invariance

A shifted input should give a shifted $\mathbf{H}$, so $\mathbf{V}$ and $\mathbf{U}$ may
not depend on $(i, j)$:

$$[\mathbf{H}]_{i,j} = u + \sum_{a} \sum_{b} [\mathbf{V}]_{a,b} [\mathbf{X}]_{i+a,j+b}.$$""",
        r"""### 7.1.2.2 Locality

Only pixels near $(i, j)$ matter: $|a|, |b| \le \Delta$. What is left is a convolutional
layer with the kernel $\mathbf{V}$, $(2\Delta + 1)^2$ weights in all:

$$[\mathbf{H}]_{i,j} = u + \sum_{a=-\Delta}^{\Delta} \sum_{b=-\Delta}^{\Delta}
    [\mathbf{V}]_{a,b} [\mathbf{X}]_{i+a,j+b}.$$""",
        r"""## 7.1.4 Channels

With input channels $c$ and output channels $d$ the kernel gets two more axes. This is
what `nn.Conv2d` computes; its weight is laid out as (d, c, a, b):

$$[\mathbf{H}]_{i,j,d} = \sum_{a=-\Delta}^{\Delta} \sum_{b=-\Delta}^{\Delta} \sum_{c}
    [\mathbf{V}]_{a,b,c,d} [\mathbf{X}]_{i+a,j+b,c}.$$""",
        """\
## 7.1.6 Exercise: a 1-D convolution over an audio signal

The same layer along one axis. `torch.nn.Conv1d` is scratchnet's `nn.Conv1d`, with
PyTorch's arguments; called on a Tensor it records one node on the autograd tape, whose
backward is `Conv1d.backward`.""",
        53,
        """\
### Underneath: the tape

`backward()` on the output runs the one recorded node, that is `Conv1d.backward`, which
fills the layer's `weight.grad`: as in PyTorch, a Tensor of the weight's shape, (out,
in, k), sharing the array that `Conv1d.backward` wrote into.""",
        Code("""\
output_signal.sum().backward()
conv1d.weight.grad"""),
    ], [("sec7_1_conv1d.py", Part())]),

    Notebook("7.2", "7.2_convolutions_for_images", [
        intro("7.2 Convolutions for Images", "7.2"),
        """\
The three import lines are all a student changes: `torch` is scratchnet, `nn` its
layers, `d2l` its copy of d2l 1.0's helpers (`scratchnet/d2l.py`).""",
        2,
        """\
## 7.2.1 The Cross-Correlation Operation

`corr2d` slides the kernel over the input and sums the products. `torch.zeros` makes a
scratchnet Tensor (a NumPy array inside); nothing here asks for a gradient, so
`Y[i, j] = ...` writes into that array and nothing is recorded on the tape.""",
        3,
        "The book's example: a 2x2 kernel fits 2x2 times in a 3x3 input.",
        4,
        """\
## 7.2.2 Convolutional Layers

The book's `Conv2D` defines only `forward`. scratchnet runs such a module on the tape:
its `nn.Parameter`s are leaves that require gradients, every op of `corr2d` on them
records a node, and `backward()` reaches `weight` and `bias` as in PyTorch.""",
        5,
        """\
## 7.2.3 Object Edge Detection in Images

A 6x8 image: black (0) in the four middle columns, white (1) elsewhere.""",
        6,
        "The kernel [1, -1] takes the difference of horizontal neighbours.",
        7,
        "1 marks the edge from white to black, -1 the edge from black to white.",
        8,
        "On the transposed image the edges are horizontal: this kernel sees none.",
        9,
        """\
## 7.2.4 Learning a Kernel

`nn.LazyConv2d` becomes an `nn.Conv2d` at its first call. Called on a Tensor it records
one node on the tape, whose backward is `Conv2d.backward`; `l.sum().backward()` runs the
backwards of the sum, the square and the difference, then that node, which fills
`conv2d.weight.grad`. The update writes through `conv2d.weight.data`, a Tensor that
shares the weight's array and is cut from the graph, as PyTorch's is.""",
        10,
        """\
The learned kernel is close to [1, -1]. As in PyTorch, `.data` is a Tensor sharing the
weight's storage, so it prints as the book's does; the NumPy array underneath is
`conv2d.weight.array`.""",
        11,
        """\
### Underneath: what `l.sum().backward()` runs

`scratchnet.autograd.backward_order` lists the recorded nodes in the order backward runs
them: the sum, the square, the difference, and the convolution as one node.""",
        Code("""\
import scratchnet.autograd as ag

l = (conv2d(X) - Y) ** 2
print('\\n'.join(ag.backward_order(l.sum())))"""),
        """\
### Underneath: the same loop by manual backprop

On NumPy arrays (`X.array` is the array inside the Tensor) a layer runs its own forward
and records nothing. The gradient of `l.sum()` with respect to `Y_hat` is
`2 * (Y_hat - Y)`; `conv2d.backward` turns it into `conv2d.weight.grad`, as the tape's
node did above.""",
        Code("""\
conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
X_, Y_ = X.array, Y.array
for i in range(10):
    Y_hat = conv2d(X_)
    l = (Y_hat - Y_) ** 2
    conv2d.zero_grad()
    conv2d.backward(2 * (Y_hat - Y_))  # d l.sum() / d Y_hat
    conv2d.weight.array[:] -= lr * conv2d.weight.grad_array
    if (i + 1) % 2 == 0:
        print(f'epoch {i + 1}, loss {l.sum():.3f}')
conv2d.weight.array.reshape((1, 2))"""),
        """\
### Underneath: the readable convolution in `scratchnet.teach`

`Conv2d` runs the fast ops of `scratchnet/ops/`; `scratchnet.teach` has the same forward
and backward as short functions to read: im2col (every window as a column), then one
matrix product. Both give the same kernel gradient.""",
        Code("""\
from scratchnet import teach

conv2d.zero_grad()
Y_hat = conv2d(X_)
conv2d.backward(2 * (Y_hat - Y_))
Y_hat2, cache = teach.conv2d_forward(X_, conv2d.weight.array, None)
gX, gW, gb = teach.conv2d_backward(2 * (Y_hat2 - Y_), cache)
print('Conv2d.backward:      ', conv2d.weight.grad_array.reshape(-1))
print('teach.conv2d_backward:', gW.reshape(-1))"""),
        """\
### Underneath: `sn.corr2d`

`scratchnet.reference` keeps the book's loops on plain NumPy arrays (`sn.corr2d`,
`sn.pool2d`, ...); the tests hold the fast layers equal to them.""",
        Code("""\
import scratchnet as sn

sn.corr2d(X_[0, 0], K.array)"""),
    ], [("sec7_2_cross_correlation.py", Part())]),

    Notebook("7.3", "7.3_padding_and_stride", [
        intro("7.3 Padding and Stride", "7.3"),
        """\
`nn.LazyConv2d` is `nn.Conv2d` with its number of input channels read from its first
input.""",
        12,
        """\
## 7.3.1 Padding

`comp_conv2d` adds the batch and channel axes, runs the layer and strips them. A 3x3
kernel with one row and column of zeros on each side keeps the 8x8 size. `conv2d(X)` runs
`Conv2d.forward`: every padded window copied into a column (im2col), then one matrix
product.""",
        13,
        "A 5x3 kernel with padding (2, 1) keeps the size too: (k - 1) / 2 on each side.",
        14,
        """\
## 7.3.2 Stride

With stride 2 the window moves two pixels at a time: floor((8 + 2 - 3) / 2) + 1 = 4.""",
        15,
        "Height floor((8 - 3) / 3) + 1 = 2, width floor((8 + 2 - 5) / 4) + 1 = 2.",
        16,
        """\
### Underneath: padding and stride in im2col

`scratchnet.teach.im2col` copies each window the kernel visits into a column, shaped
(N, C, kh, kw, oh, ow): for the last layer a 3x5 window at 2x2 places. Padding and
stride only change which windows are copied; the product with the kernel is the same.""",
        Code("""\
from scratchnet import teach

col = teach.im2col(X.array.reshape(1, 1, 8, 8), 3, 5, stride=(3, 4), padding=(0, 1))
col.shape"""),
    ], [("sec7_3_padding_stride.py", Part())]),

    Notebook("7.4", "7.4_multiple_input_and_output_channels", [
        intro("7.4 Multiple Input and Multiple Output Channels", "7.4"),
        "`d2l.corr2d` is scratchnet.d2l's copy of the book's loop from 7.2.",
        17,
        """\
## 7.4.1 Multiple Input Channels

One 2-D cross-correlation per input channel, summed.""",
        18,
        """\
Two input channels and a two-channel kernel; the corner is
(0·0 + 1·1 + 3·2 + 4·3) + (1·1 + 2·2 + 4·3 + 5·4) = 19 + 37 = 56.""",
        19,
        """\
## 7.4.2 Multiple Output Channels

One multi-input cross-correlation per output channel, stacked with `torch.stack` (a
Tensor op, as in PyTorch).""",
        20,
        "Three output channels: the kernels K, K + 1 and K + 2.",
        21,
        """\
The first channel is 7.4.1's result; each next one adds the window's sum over both
input channels (20 in the corner).""",
        22,
        """\
## 7.4.3 1x1 Convolutional Layer

A 1x1 convolution mixes the channels at each pixel alone: a matrix product of the
(c_o, c_i) kernel with the (c_i, h·w) input.""",
        23,
        "Both ways agree on random inputs: the `assert` holds, and the cell prints nothing.",
        24,
        """\
### Underneath: the same 1x1 convolution as `nn.Conv2d`

scratchnet's `Conv2d` computes every convolution that way: im2col, then one matrix
product. Given the same kernel, its output on the arrays matches `Y1` to float32
rounding.""",
        Code("""\
from scratchnet import nn

conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
conv.weight.array[...] = K.array
Y3 = conv(X.array[None])[0]
float(abs(Y3 - Y1.array).max())""", output={
            "compare": "numbers", "atol": 1e-6,
            "why": "the largest difference of two float32 products, which add in BLAS's "
                   "order (0.0 or about 1.2e-07); the book's check asks for < 1e-6"}),
    ], [("sec7_4_channels.py", Part())]),

    Notebook("7.5", "7.5_pooling", [
        intro("7.5 Pooling", "7.5"),
        "The imports, as in 7.2.",
        25,
        """\
## 7.5.1 Maximum Pooling and Average Pooling

The book's `pool2d` is `corr2d` with the sum of products replaced by the window's
maximum or mean.""",
        26,
        "Maximum pooling with a 2x2 window.",
        27,
        "Average pooling.",
        28,
        """\
## 7.5.2 Padding and Stride

A 4x4 input with batch and channel axes; `torch.arange` and `reshape` are Tensor ops as
in PyTorch.""",
        29,
        "`nn.MaxPool2d(3)`: the stride defaults to the window, so one 3x3 window fits.",
        30,
        "Padding 1 and stride 2: four windows. A padded pixel never wins the maximum.",
        31,
        "A 2x3 window, with its own stride and padding per axis.",
        32,
        """\
## 7.5.3 Multiple Channels

`torch.cat` joins X and X + 1 along the channel axis.""",
        33,
        "Pooling works on each channel alone: two channels in, two out.",
        34,
        """\
### Underneath: max pooling's backward

`MaxPool2d` keeps where each window's maximum was; its `backward` sends each output's
gradient there and nowhere else. On the arrays, with a gradient of ones, the 1s mark the
four winners in each channel (`scratchnet.teach.max_pool2d_backward` is the readable
version).""",
        Code("""\
import numpy as np

Y = pool2d(X.array)
pool2d.backward(np.ones_like(Y))"""),
    ], [("sec7_5_pooling.py", Part())]),

    Notebook("7.6", "7.6_lenet", [
        intro("7.6 Convolutional Neural Networks (LeNet)", "7.6"),
        "The imports, as in 7.2.",
        35,
        """\
## 7.6.1 LeNet

`LeNet` is a `d2l.Classifier` whose `net` is an `nn.Sequential` of scratchnet's layers,
each with its own `forward` and `backward`. `init_cnn` tests `type(module) == nn.Linear`,
which holds: the lazy layers become `nn.Conv2d` and `nn.Linear` at their first call, as
PyTorch's do.""",
        36,
        "`layer_summary` passes a random 28x28 image through the layers one by one.",
        37,
        """\
## 7.6.2 Training

The stored output is the book's recipe in full: 10 epochs over all 60000 training
images, batch 128, SGD with lr 0.1, on the CPU (`num_gpus=1` finds no GPU there and says
so). Every layer has its own backward, so `Trainer.fit` backpropagates by hand:
`model.net.backward(...)` runs each layer's backward, last to first, with no tape (the
first epoch line says so). d2l's plot is redrawn after every epoch.""",
        38,
        """\
### Underneath: one training step by hand

What `Trainer.fit` did at every step, written out on one batch: each layer's own forward
on the arrays, the loss's backward (softmax minus one-hot, over the batch size), then
`model.net.backward`, which returns dL/dX and fills every parameter's `.grad`.""",
        Code("""\
X, y = next(iter(data.val_dataloader()))
loss = nn.CrossEntropyLoss()
l = loss(model.net(X.array), y.array)
model.net.zero_grad()
dX = model.net.backward(loss.backward())
print(f'loss {float(l):.4f}, dL/dX {dX.shape}, '
      f'dL/dW of the first convolution {model.net[0].weight.grad.shape}')""",
             output=TRAINED_OUTPUT),
    ], [("sec7_6_lenet.py", Part())]),

    Notebook("8.1", "8.1_alexnet", [
        book_intro("8.1 Deep Convolutional Neural Networks (AlexNet)", "8.1", "alexnet"),
        TAB_NOTE,
        TAB_CELL,
        "The imports, as in 7.2.",
        Book("alexnet", 0),
        """\
## 8.1.2 AlexNet

Five convolutions (the first 11x11 with stride 4), three 3x3 max-pools with stride 2, and
two fully connected layers of 4096 units with dropout. Only the `tab.selected('pytorch')`
branch runs. Every layer is one of scratchnet's, with its own `forward` and `backward`.""",
        Book("alexnet", 1),
        """\
At 224x224 the first convolution gives 54x54 and each max-pool about halves the size,
down to 256x5x5 = 6400 features for the first fully connected layer.""",
        Book("alexnet", 2),
        """\
## 8.1.3 Training

AlexNet on Fashion-MNIST resized to 224x224, lr 0.01. Every layer has its own backward,
so the trainer backpropagates by hand (the first epoch line says so).

""" + subset_note("10 epochs of 60000 images at 224x224", HEAVY) + """

The stored run shows the start of training only: in 16 steps the d2l recipe (SGD, lr
0.01, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
accuracy, as VGG's did in 8.2. The full recipe takes 4690 steps.""",
        Book("alexnet", 3),
        """\
### Underneath: where the parameters and the arithmetic are

`sn.trace.trace` runs one forward and backward layer by layer and counts each layer's
parameters and forward FLOPs (a multiply-add is 2). The two 4096-wide fully connected
layers hold 43 of the 47 million parameters; the convolutions do almost all the
arithmetic.""",
        Code("""\
import scratchnet as sn

X = next(iter(data.val_dataloader()))[0][:1]  # one test image, 1x1x224x224
for r in sn.trace.trace(model, X.array).rows:
    if r['params']:
        print(f"{r['name']:<7} {r['layer']:<7} {r['params']:>11,} parameters, "
              f"{r['fwd_flops'] / 1e6:6.1f} MFLOPs forward")"""),
        twin_note("AlexNet", "alexnet"),
        same_keys("AlexNet", (1, 1, 224, 224)),
    ], [("sec8_1_alexnet.py", Part())], env=HEAVY, test_images=16),

    Notebook("8.2", "8.2_vgg", [
        intro("8.2 Networks Using Blocks (VGG)", "8.2"),
        "The imports, as in 7.2.",
        39,
        """\
## 8.2.1 VGG Blocks

`num_convs` 3x3 convolutions with padding 1, each followed by a ReLU, then a 2x2
max-pool that halves the height and width.""",
        40,
        """\
## 8.2.2 VGG Network

Five blocks, then three fully connected layers with dropout. `self.net.apply(d2l.init_cnn)`
finds only lazy layers here (not yet `nn.Conv2d` or `nn.Linear`), so it changes nothing;
`apply_init` in 8.2.3 initialises after a first batch, as in PyTorch.""",
        41,
        """\
VGG-11 at 224x224: each block halves the size, down to 512x7x7 = 25088 features for the
first fully connected layer, whose 25088x4096 weight holds most of the network's
parameters.""",
        42,
        """\
## 8.2.3 Training

The small VGG (a quarter of the channels) on Fashion-MNIST resized to 224x224. All its
layers have their own backward, so the trainer backpropagates by hand.

""" + subset_note("10 epochs of 60000 images at 224x224") + """

The stored run shows the start of training only: in 48 steps the d2l recipe (SGD, lr
0.01, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
accuracy. The full recipe takes 4690 steps.""",
        43,
    ], [("sec8_2_vgg.py", Part())], env=SUBSET, test_images=32),

    Notebook("8.3", "8.3_nin", [
        book_intro("8.3 Network in Network (NiN)", "8.3", "nin"),
        TAB_NOTE,
        TAB_CELL,
        "The imports, as in 7.2.",
        Book("nin", 0),
        """\
## 8.3.1 NiN Blocks

One convolution of the given size, then two 1x1 convolutions, each followed by a ReLU.""",
        Book("nin", 1),
        """\
### Underneath: a 1x1 convolution is a fully connected layer at every pixel

A 1x1 convolution with weight (out, in, 1, 1) takes each pixel's `in` channels to `out`
channels, the same way at every pixel: it is `nn.Linear(in, out)` applied to each pixel
alone. Given the convolution's weights (`.data` reshaped: the same numbers), the linear
layer on the channels-last image gives the same output.""",
        Code("""\
conv = nn.Conv2d(96, 96, kernel_size=1)
fc = nn.Linear(96, 96)
fc.weight.data = conv.weight.data.reshape(96, 96)
fc.bias.data = conv.bias.data
X = torch.randn(1, 96, 5, 5)
Y_fc = fc(X.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # every pixel through fc
float((conv(X) - Y_fc).abs().max())""", output=ROUNDING),
        """\
## 8.3.2 NiN Model

Four NiN blocks, the last with one channel per class, and no fully connected layer at
the end: `nn.AdaptiveAvgPool2d((1, 1))` averages each channel over the image (global
average pooling), and those 10 averages are the logits.""",
        Book("nin", 2),
        "At 224x224 the last block's 10 channels are 5x5; the pooling leaves 10 numbers.",
        Book("nin", 3),
        """\
### Underneath: the global average pooling head

Its backward hands every pixel an equal share of its channel's gradient: on the 5x5
map, 1/25 of dL/dy each. `AdaptiveAvgPool2d` on the arrays, with a gradient of ones:""",
        Code("""\
import numpy as np

gap = nn.AdaptiveAvgPool2d((1, 1))
y = gap(np.ones((1, 10, 5, 5), dtype=np.float32))
gap.backward(np.ones_like(y))[0, 0]"""),
        """\
## 8.3.3 Training

NiN on Fashion-MNIST resized to 224x224, lr 0.05. `apply_init` runs one batch through
the lazy layers, then initialises them with `init_cnn`. Every layer has its own
backward, so the trainer backpropagates by hand.

""" + subset_note("10 epochs of 60000 images at 224x224", HEAVY) + """

The stored run shows the start of training only: in 16 steps the d2l recipe (SGD, lr
0.05, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
accuracy, as VGG's did in 8.2. The full recipe takes 4690 steps.""",
        Book("nin", 4),
        """\
### Underneath: NiN's parameters

Without AlexNet's fully connected layers NiN has about 2 million parameters, against
AlexNet's 47 million.""",
        Code("print(f'{model.num_parameters():,} parameters')"),
        twin_note("NiN", "nin"),
        same_keys("NiN", (1, 1, 224, 224)),
    ], [("sec8_3_nin.py", Part())], env=HEAVY, test_images=16),

    Notebook("8.4", "8.4_googlenet", [
        book_intro("8.4 Multi-Branch Networks (GoogLeNet)", "8.4", "googlenet"),
        TAB_NOTE,
        TAB_CELL,
        """\
`F` is `scratchnet.nn.functional`: torch.nn.functional's names (`F.relu`, ...) as ops on
the tape.""",
        Book("googlenet", 0),
        """\
## 8.4.1 Inception Blocks

Four branches on the same input: a 1x1 convolution; a 1x1 then a 3x3; a 1x1 then a 5x5;
a 3x3 max-pool then a 1x1. Each keeps the image size, and `torch.cat(..., dim=1)` stacks
their outputs along the channels. `Inception` defines only `forward`, so it runs on the
tape: each layer records one node whose backward is the layer's own, and `F.relu` and
`torch.cat` record tape ops.""",
        Book("googlenet", 1),
        """\
### Underneath: Inception's backward, by the tape and by hand

On the tape, `torch.cat`'s backward (`CatBackward`) splits dL/dY into the four branches'
slices (64, 128, 32 and 32 channels here), each branch runs back, and x, which all four
branches read, sums four gradients (the last line). `scratchnet.models.Inception` is the
same block with a `backward` written by hand that does exactly that. With the book's
weights loaded (the same `state_dict` keys) it gives the same dL/dX.""",
        Code("""\
import scratchnet.autograd as ag
from scratchnet import models

book = Inception(64, (96, 128), (16, 32), 32)
X = torch.randn(2, 192, 12, 12, requires_grad=True)
W = torch.randn(2, 256, 12, 12)  # L = sum(W * Y), so dL/dY = W
loss = (book(X) * W).sum()
print('\\n'.join(ag.backward_order(loss)))
loss.backward()
mine = models.Inception(64, (96, 128), (16, 32), 32)
mine.load_state_dict(book.state_dict())
mine(X.array)
dX = mine.backward(W.array)  # W split four ways, the branches' gradients summed at x
print('largest |dL/dX by hand - dL/dX by the tape|:', float(abs(dX - X.grad.array).max()))""",
             output=ROUNDING),
        """\
## 8.4.2 GoogLeNet Model

Five stages, b1 to b5, added to the class one by one with `d2l.add_to_class`. b1: a 7x7
convolution and a max-pool.""",
        Book("googlenet", 2),
        "b2: a 1x1 and a 3x3 convolution, and a max-pool.",
        Book("googlenet", 3),
        "b3: two Inception blocks, then a max-pool.",
        Book("googlenet", 4),
        "b4: five Inception blocks, then a max-pool.",
        Book("googlenet", 5),
        """\
b5: two Inception blocks, then global average pooling (as NiN's head) and `Flatten`.""",
        Book("googlenet", 6),
        "`__init__`: the five stages and a linear layer for the 10 classes.",
        Book("googlenet", 7),
        """\
At 96x96 (the book trains GoogLeNet on smaller images than ImageNet's 224x224) the size
goes 24, 12, 6, 3 and then 1 after the pooling.""",
        Book("googlenet", 8),
        """\
## 8.4.3 Training

GoogLeNet on Fashion-MNIST resized to 96x96, lr 0.01. `Inception` defines only
`forward`, so the trainer backpropagates through the tape (the first epoch line says
so).

""" + subset_note("10 epochs of 60000 images at 96x96", HEAVY) + """

The stored run shows the start of training only: in 16 steps the d2l recipe (SGD, lr
0.01, no momentum) stays on its starting plateau, a loss of ln 10 = 2.30 and chance
accuracy, as VGG's did in 8.2. The full recipe takes 4690 steps.""",
        Book("googlenet", 9),
        twin_note("GoogleNet", "googlenet"),
        same_keys("GoogleNet", (1, 1, 96, 96)),
    ], [("sec8_4_googlenet.py", Part())], env=HEAVY, test_images=16),

    Notebook("8.5", "8.5_batch_norm", [
        book_intro("8.5 Batch Normalization", "8.5", "batch-norm"),
        TAB_NOTE,
        TAB_CELL,
        "The imports, as in 7.2.",
        Book("batch-norm", 0),
        """\
## 8.5.3 Implementation from Scratch

`batch_norm` uses tensor ops alone. In training (`torch.is_grad_enabled()` is true
outside `torch.no_grad()`) it normalises with the batch's mean and variance and updates
the moving averages; in prediction it uses the moving averages. It returns
`moving_mean.data`: as in PyTorch, a Tensor sharing the array but cut from the graph,
so each step's moving average does not carry the graphs of all the steps before.""",
        Book("batch-norm", 1),
        """\
`BatchNorm` keeps gamma and beta as parameters and the moving averages as plain
tensors. It defines only `forward`, so it runs on the tape.""",
        Book("batch-norm", 2),
        """\
### Underneath: the tape's gradient equals `nn.BatchNorm2d`'s backward

On the tape the book's layer is a dozen recorded ops. X reaches Y three ways (directly,
through the mean and through the variance), so the leaf sums three gradients (the last
line). scratchnet's `nn.BatchNorm2d` has one `backward` derived by hand, with the three
paths in one formula (`scratchnet.teach.batch_norm_train_backward` is its readable
version; docs/autograd.md sets the two side by side). From the same X and dL/dY they
give the same gradients.""",
        Code("""\
import scratchnet.autograd as ag

torch.manual_seed(0)
X = torch.randn(4, 3, 5, 5, requires_grad=True)
W = torch.randn(4, 3, 5, 5)  # L = sum(W * Y), so dL/dY = W
bn_book = BatchNorm(3, num_dims=4)
loss = (bn_book(X) * W).sum()
print('\\n'.join(ag.backward_order(loss)))
loss.backward()
bn = nn.BatchNorm2d(3)
bn(X.array)
dX = bn.backward(W.array)
print('dL/dgamma, tape:  ', bn_book.gamma.grad.reshape(-1))
print('dL/dgamma, manual:', bn.weight.grad)
print('dL/dbeta,  tape:  ', bn_book.beta.grad.reshape(-1))
print('dL/dbeta,  manual:', bn.bias.grad)
print('largest |dL/dX, tape - dL/dX, manual|:', float(abs(X.grad.array - dX).max()))""",
             output=ROUNDING),
        """\
### Underneath: `.data`

The layer keeps what `batch_norm` returned, `moving_mean.data`: a Tensor that needs no
gradient. And `.data` shares its parameter's array, as in PyTorch:
a write into `gamma.data` is a write into gamma (docs/porting.md).""",
        Code("""\
print(type(bn_book.moving_mean).__name__, bn_book.moving_mean.requires_grad)
d = bn_book.gamma.data
d += 1
bn_book.gamma.reshape(-1)"""),
        """\
## 8.5.4 LeNet with Batch Normalization

LeNet with the book's `BatchNorm` after each convolution and each hidden linear layer.""",
        Book("batch-norm", 3),
        """\
The stored output is the book's recipe in full: 10 epochs over all 60000 training
images, batch 128, lr 0.1, on the CPU (`num_gpus=1` finds no GPU there and says so).
`BatchNorm` has no backward of its own, so the trainer backpropagates through the tape
(the first epoch line says so).""",
        Book("batch-norm", 4),
        """\
With batch normalisation LeNet learns from the first epoch, where 7.6's LeNet (the same
recipe without it) stayed near chance for two epochs. The first `BatchNorm` layer's
learned gamma and beta, one per channel:""",
        Book("batch-norm", 5, output=TRAINED_OUTPUT),
        """\
## 8.5.5 Concise Implementation

`nn.LazyBatchNorm2d` and `nn.LazyBatchNorm1d` are scratchnet's layers, each with its
own backward; with them every layer of `BNLeNet` has one.""",
        Book("batch-norm", 6),
        """\
The same recipe in full. This time the trainer backpropagates by hand.""",
        Book("batch-norm", 7),
        twin_note("BNLeNet", "bnlenet"),
        same_keys("BNLeNet", (2, 1, 28, 28)),
    ], [("sec8_5_batch_norm.py", Part())]),

    Notebook("8.6", "8.6_resnet", [
        intro("8.6 Residual Networks (ResNet) and ResNeXt", "8.6"),
        """\
`F` is `scratchnet.nn.functional`: torch.nn.functional's names (`F.relu`, ...) as
ops on the tape.""",
        44,
        """\
## 8.6.2 Residual Blocks

`Residual` defines only `forward`, so it runs on the tape: each layer it calls records
one node whose backward is the layer's own, `F.relu` records a node, and `Y += X` an
addition (a new tensor in scratchnet, see docs/porting.md) whose backward sends the
gradient down both paths.""",
        45,
        "Without the 1x1 convolution the block keeps its input's shape.",
        46,
        """\
With `use_1x1conv=True, strides=2` the main path halves the height and width, and the
1x1 convolution on the shortcut matches it: 6 channels, 3x3.""",
        47,
        """\
## 8.6.3 ResNet Model

The first stage: a 7x7 convolution with stride 2, batch normalisation, ReLU, and a 3x3
max-pool with stride 2.""",
        48,
        """\
`block` stacks residual blocks; every stage but the first starts with one that halves
the size and changes the number of channels.""",
        49,
        """\
`__init__`, added to the class with `d2l.add_to_class` as in the book: the first stage,
the residual stages, then global average pooling and a linear layer.""",
        50,
        "ResNet-18: four stages of two blocks. At 96x96 the size goes 24, 24, 12, 6, 3, 1.",
        51,
        """\
## 8.6.4 Training

ResNet-18 on Fashion-MNIST resized to 96x96. `Residual` has no backward of its own, so
the trainer backpropagates through the tape (the first epoch line says so).

""" + subset_note("10 epochs of 60000 images at 96x96"),
        52,
        """\
### Underneath: the tape of one residual block

The nodes `backward()` runs for one `Residual(3)`: the convolutions and batch norms one
node each (their own backward), `F.relu` and the addition as tape ops. The input is used
by both paths, so its gradient is the sum of two.""",
        Code("""\
import scratchnet.autograd as ag

blk = Residual(3)
X = torch.randn(4, 3, 6, 6, requires_grad=True)
print('\\n'.join(ag.backward_order(blk(X).sum())))"""),
        """\
## 8.6.5 ResNeXt

The book's ResNeXt block (d2l 8.6.5; not in the seed), as d2l writes it for PyTorch: a
1x1 convolution, a grouped 3x3 convolution (`groups=bot_channels//groups`: the channels
are split into groups, each convolved alone), a 1x1 convolution, and the shortcut. Like
`Residual` it defines only `forward`, so it runs on the tape.""",
        Code('''\
class ResNeXtBlock(nn.Module):
    """The ResNeXt block."""
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False,
                 strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3,
                                   stride=strides, padding=1,
                                   groups=bot_channels//groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1,
                                       stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)'''),
        "The book's check: the block keeps the shape of its input.",
        Code("""\
blk = ResNeXtBlock(32, 16, 1)
X = torch.randn(4, 32, 96, 96)
blk(X).shape"""),
        """\
### Underneath: what `groups` saves

A convolution with `groups=g` has its weight shaped (out, in/g, kh, kw): g times fewer
weights and multiply-adds than the full one. `Conv2d.flops` counts the forward's
floating-point operations; the block above uses groups=2.""",
        Code("""\
import numpy as np

x = np.random.default_rng(0).standard_normal((1, 32, 8, 8)).astype(np.float32)
for groups in (1, 2, 32):
    conv = nn.Conv2d(32, 32, kernel_size=3, padding=1, groups=groups)
    fwd, _ = conv.flops(x.shape, conv(x).shape)
    print(f'groups={groups:2d}: weight {tuple(conv.weight.data.shape)}, '
          f'{conv.weight.array.size} weights, {fwd:,} forward FLOPs on {x.shape}')"""),
    ], [("sec8_6_resnet.py", Part(skip="8.6.5")),
        ("sec8_6_resnext.py", Part(only="8.6.5"))], env=SUBSET),

    Notebook("8.7", "8.7_densenet", [
        book_intro("8.7 Densely Connected Networks (DenseNet)", "8.7", "densenet"),
        TAB_NOTE,
        TAB_CELL,
        "The imports, as in 7.2.",
        Book("densenet", 0),
        """\
## 8.7.2 Dense Blocks

`conv_block`: batch normalisation, ReLU, then a 3x3 convolution.""",
        Book("densenet", 1),
        """\
`DenseBlock` stacks each block's output onto its input along the channels, so every
block sees all the channels before it. It defines only `forward`, so it runs on the
tape.""",
        Book("densenet", 2),
        "Two blocks of 10 channels on 3 input channels: 3 + 2 x 10 = 23 channels out.",
        Book("densenet", 3),
        """\
### Underneath: DenseBlock's backward, by the tape and by hand

Walking back, each `CatBackward` splits dL/d[X, Y] into the part for X and the part for
the block's output Y; Y's part runs back through the block and is added to X's, since
X made Y too (the "sums 2 gradients" lines). `scratchnet.models.DenseBlock` does the
same in a `backward` written by hand; with the book's weights loaded (the same
`state_dict` keys) it gives the same dL/dX.""",
        Code("""\
import scratchnet.autograd as ag
from scratchnet import models

book = DenseBlock(2, 10)
X = torch.randn(4, 3, 8, 8, requires_grad=True)
W = torch.randn(4, 23, 8, 8)  # L = sum(W * Y), so dL/dY = W
loss = (book(X) * W).sum()
print('\\n'.join(ag.backward_order(loss)))
loss.backward()
mine = models.DenseBlock(2, 10)
mine.load_state_dict(book.state_dict())
mine(X.array)
dX = mine.backward(W.array)
print('largest |dL/dX by hand - dL/dX by the tape|:', float(abs(dX - X.grad.array).max()))""",
             output=ROUNDING),
        """\
## 8.7.3 Transition Layers

Each dense block adds channels; a transition layer brings them down with a 1x1
convolution and halves the height and width with a 2x2 average pool.""",
        Book("densenet", 4),
        "23 channels to 10, 8x8 to 4x4.",
        Book("densenet", 5),
        """\
## 8.7.4 DenseNet Model

The first stage as in ResNet: a 7x7 convolution, batch normalisation, ReLU, max-pool.""",
        Book("densenet", 6),
        """\
Four dense blocks of four convolutions with 32 channels each (the growth rate), a
transition layer between each two, then batch normalisation, ReLU, global average
pooling and a linear layer.""",
        Book("densenet", 7),
        """\
### Underneath: the channels through DenseNet

The book prints no summary here. d2l's `layer_summary` at 96x96 shows each dense block
adding 4 x 32 = 128 channels and each transition layer halving the channels and the
size.""",
        Code("DenseNet().layer_summary((1, 1, 96, 96))"),
        """\
## 8.7.5 Training

DenseNet on Fashion-MNIST resized to 96x96, lr 0.01. `DenseBlock` defines only
`forward`, so the trainer backpropagates through the tape (the first epoch line says
so).

""" + subset_note("10 epochs of 60000 images at 96x96", HEAVY) + """

In its 16 steps the training loss falls while the validation accuracy stays at chance,
as ResNet's did in its first two epochs (8.6). The full recipe takes 4690 steps.""",
        Book("densenet", 8),
        twin_note("DenseNet", "densenet"),
        same_keys("DenseNet", (1, 1, 96, 96)),
    ], [("sec8_7_densenet.py", Part())], env=HEAVY, test_images=16),

    Notebook("8.8", "8.8_regnet", [
        book_intro("8.8 Designing Convolution Network Architectures (RegNet)", "8.8",
                   "cnn-design"),
        TAB_NOTE,
        TAB_CELL,
        "The imports, as in 8.4.",
        Book("cnn-design", 0),
        """\
## 8.8.1 The AnyNet Design Space

AnyNet: a stem (a 3x3 convolution with stride 2, batch normalisation, ReLU), stages of
ResNeXt blocks, and a head (global average pooling and a linear layer).""",
        Book("cnn-design", 1),
        """\
A stage: `depth` ResNeXt blocks, the first of which halves the size and sets the
channels. `d2l.ResNeXtBlock` is scratchnet's copy of 8.6.5's block, with the book's
`state_dict` keys and a backward of its own.""",
        Book("cnn-design", 2),
        "`__init__`: the stem, the stages of `arch`, the head.",
        Book("cnn-design", 3),
        """\
## 8.8.3 RegNet

RegNetX-32: two stages of depths 4 and 6 and widths 32 and 80, group width 16,
bottleneck ratio 1.""",
        Book("cnn-design", 4),
        "At 96x96: the stem halves the size to 48, each stage halves it again.",
        Book("cnn-design", 5),
        """\
## 8.8.4 Training

RegNetX-32 on Fashion-MNIST resized to 96x96, lr 0.05. Every layer and every ResNeXt
block has its own backward, so the trainer backpropagates by hand.

""" + subset_note("10 epochs of 60000 images at 96x96") + """

In its 48 steps the training loss falls and the validation accuracy starts to rise above
chance. The full recipe takes 4690 steps.""",
        Book("cnn-design", 6),
        """\
### Underneath: the groups, and where the work is

`ResNeXtBlock` gets `groups=16` and passes `groups=bot_channels//groups` to its 3x3
convolution, so 16 is the width of a group: 32 channels make 2 groups, 80 make 5, and
each weight is (out, 16, 3, 3). `sn.trace.trace` counts each layer's and block's
parameters and forward FLOPs on one test image.""",
        Code("""\
import scratchnet as sn

for name in ('stage1', 'stage2'):
    conv2 = getattr(model.net, name)[0].conv2
    print(f'{name}: {conv2.groups} groups, weight {tuple(conv2.weight.shape)}')
X = next(iter(data.val_dataloader()))[0][:1]  # one test image, 1x1x96x96
for r in sn.trace.trace(model, X.array).rows:
    print(f"{r['name']:<13} {r['layer']:<17} {r['params']:>6,} parameters, "
          f"{r['fwd_flops'] / 1e6:4.1f} MFLOPs forward")"""),
        twin_note("RegNetX32", "regnetx32"),
        same_keys("RegNetX32", (1, 1, 96, 96)),
    ], [("sec8_8_regnet.py", Part())], env=SUBSET, test_images=32),

    Notebook("exercises", "exercises", [
        """\
# Exercises 7.2.8, 7.3.4 and 7.4.5

The seed notebook's answers to three of d2l's exercises (7.1.6 is in the 7.1 notebook),
as written; only their import lines were changed (`scratchnet.port`).""",
        """\
## 7.2.8 A directional edge detector

A 3x3 kernel that takes the difference between the columns right and left of each
pixel. `unsqueeze` adds the output and input channel axes; `F.conv2d` is
`scratchnet.nn.functional.conv2d`, which on Tensors records one node whose
backward is the convolution's.""",
        54,
        """\
## 7.3.4 Kernel (3, 5), padding (0, 1), stride (3, 4)

On a 10x10 image: floor((10 - 3) / 3) + 1 = 3 rows and floor((10 + 2 - 5) / 4) + 1 = 2
columns.""",
        55,
        """\
## 7.4.5 Two stacked convolutions

Two 3x3 convolutions with padding 1 keep the 10x10 size.""",
        56,
        """\
### Underneath: the receptive field

`scratchnet.receptive.receptive_fields` follows each layer's geometry: after the two
3x3 convolutions every output sees a 5x5 patch of the input, as after one 5x5
convolution, with 18 weights instead of 25.""",
        Code("""\
import scratchnet as sn

print(sn.receptive.receptive_fields(torch.nn.Sequential(conv1, conv2), (10, 10)))"""),
    ], [("exercises.py", Part())]),
]


def seed_cells():
    """Every code cell of the seed, in order (the two ``pip install`` cells included)."""
    return cells_from_export(SEED.read_text(encoding="utf-8"))


def notebook(spec, seed=None):
    """The notebook of ``spec``, not executed: its cells from the items."""
    seed = seed_cells() if seed is None else seed
    cells = []
    for item in spec.items:
        if isinstance(item, Code):
            cell = nbformat.v4.new_code_cell(str(item))
        elif isinstance(item, int):
            cell = nbformat.v4.new_code_cell(port(seed[item]),
                                             metadata={"scratchnet": {"seed_cell": item}})
        elif isinstance(item, Book):
            where = {"section": item.section, "cell": item.index}
            cell = nbformat.v4.new_code_cell(book_cell(item.section, item.index),
                                             metadata={"scratchnet": {"book_cell": where}})
        else:
            cell = nbformat.v4.new_markdown_cell(textwrap.dedent(item).strip())
        policy = None if cell.cell_type == "markdown" else \
            output_policy(item, cell.source, spec.test_images)
        if policy is not None:
            cell.metadata.setdefault("scratchnet", {})["output"] = dict(policy)
        cell.id = f"cell{len(cells):02d}"  # stable ids: a rebuild changes no id
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})


def seed_cell(cell):
    """The seed cell number a notebook cell holds, or None."""
    return cell.get("metadata", {}).get("scratchnet", {}).get("seed_cell")


def book_cell_of(cell):
    """The (section, index) of the book cell a notebook cell holds, or None."""
    where = cell.get("metadata", {}).get("scratchnet", {}).get("book_cell")
    return None if where is None else (where["section"], where["cell"])


def compared_output(cell):
    """How a fresh run's output of ``cell`` is compared with the stored one (its
    metadata; exact when it says nothing)."""
    return cell.get("metadata", {}).get("scratchnet", {}).get("output", {"compare": "exact"})


def path(spec):
    return NOTEBOOKS_DIR / f"{spec.name}.ipynb"


def execute(nb, env, cwd, timeout=None):
    """Run ``nb`` top to bottom on a fresh python3 kernel (outputs filled in place) with
    the environment ``env`` and working directory ``cwd``; the kernel imports this
    checkout's scratchnet and starts seeded (KERNEL_START). An error raises
    nbclient's CellExecutionError."""
    env = dict(env, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(cwd)}},
                   extra_arguments=[f"--IPKernelApp.exec_lines={KERNEL_START}"],
                   ).execute(env=env)
    return nb


def build_env(spec, figures):
    """The kernel's environment for the stored run of ``spec``."""
    env = {k: v for k, v in os.environ.items() if k not in SUBSET}
    shared = ROOT.parent / "shared" / "data"
    if "SCRATCHNET_DATA" not in env and shared.is_dir():
        env["SCRATCHNET_DATA"] = str(shared)
    env["SCRATCHNET_D2L_FIGURES"] = str(figures)
    env["SCRATCHNET_PROGRESS"] = "0"  # a stored notebook keeps no progress bars
    env.update(spec.env)
    return env


def prints_value(source):
    """Whether the cell ends in a bare expression whose value Jupyter shows (a call of
    NO_VALUE shows none)."""
    body = ast.parse(source).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    value = body[-1].value
    if isinstance(value, ast.Call):
        f = value.func
        name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
        # The tape's ``loss.backward()`` returns None; a layer's ``backward(gy)``, called
        # with the gradient, returns dL/dx.
        return name not in NO_VALUE and not (name == "backward" and not value.args)
    return True


def script_code(source):
    """A code cell as a script: its final bare expression wrapped in print(...) when
    Jupyter shows its value."""
    if not prints_value(source):
        return source
    last = ast.parse(source).body[-1]
    lines = source.split("\n")
    end, start = last.end_lineno - 1, last.lineno - 1
    lines[end] = lines[end][:last.end_col_offset] + ")" + lines[end][last.end_col_offset:]
    lines[start] = lines[start][:last.col_offset] + "print(" + lines[start][last.col_offset:]
    return "\n".join(lines)


def is_imports(source):
    return all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in ast.parse(source).body)


def script_cells(nb, part):
    """The cells of ``nb`` that ``part`` puts into its script."""
    out, section = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.match(r"#+ (\d+(?:\.\d+)*)\b", cell.source)
            section = m[1] if m else section
        inside = part.only is not None and (section + ".").startswith(part.only + ".")
        if part.only is not None:
            keep = inside or (cell.cell_type == "code" and is_imports(cell.source))
        else:
            keep = part.skip is None or not (section + ".").startswith(part.skip + ".")
        if keep:
            out.append(cell)
    return out


def export(nb, name, part):
    """The script of the cells of ``nb`` (notebooks/<name>.ipynb) that ``part`` keeps."""
    lines = [f"# Generated from notebooks/{name}.ipynb by notebooks/build.py: "
             "edit those, not this file."]
    if part.only:
        lines.append(f"# Section {part.only} of the notebook, after its import cells.")
    elif part.skip:
        lines.append(f"# The notebook without section {part.skip} "
                     "(that one is another script).")
    for cell in script_cells(nb, part):
        lines.append("")
        if cell.cell_type == "markdown":
            lines += [f"# {line}".rstrip() for line in cell.source.split("\n")]
        else:
            lines.append(script_code(cell.source))
    return "\n".join(lines) + "\n"


def scripts(spec, nb):
    """{examples/<script> name: its text} for the notebook ``nb`` of ``spec``."""
    return {script: export(nb, spec.name, part) for script, part in spec.scripts}


def keep_outputs(nb, old):
    """Copy the outputs of ``old`` onto ``nb`` when their code cells are the same;
    returns whether it did."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    old_code = [c for c in old.cells if c.cell_type == "code"]
    if [c.source for c in code] != [c.source for c in old_code]:
        return False
    for cell, old_cell in zip(code, old_code):
        cell.outputs, cell.execution_count = old_cell.outputs, old_cell.execution_count
    nb.metadata = old.metadata
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", action="append", choices=[s.key for s in NOTEBOOKS],
                   help="build only this notebook and its scripts (repeatable)")
    p.add_argument("--execute", action=argparse.BooleanOptionalAction, default=True,
                   help="execute each notebook on a fresh kernel (default: yes)")
    args = p.parse_args(argv)
    seed = seed_cells()
    for spec in NOTEBOOKS:
        if args.only and spec.key not in args.only:
            continue
        nb = notebook(spec, seed)
        if args.execute:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                execute(nb, build_env(spec, tmp), tmp)
            note = f"executed in {time.perf_counter() - t0:.0f} s"
        elif path(spec).exists() and keep_outputs(nb, nbformat.read(path(spec), 4)):
            note = "not executed; the stored outputs kept (same code cells)"
        else:
            note = "not executed; NO OUTPUTS (code cells changed: run with --execute)"
        nbformat.validate(nb)
        atomic_write_text(path(spec), nbformat.writes(nb) + "\n")
        print(f"{path(spec).relative_to(ROOT)}: {note}")
        for script, text in scripts(spec, nb).items():
            atomic_write_text(EXAMPLES_DIR / script, text)
            print(f"  examples/{script}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
