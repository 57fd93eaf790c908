"""Build the notebooks of notebooks/, one per section of the seed, and the section scripts
of examples/ from them: one source per section, the lists below.

    python notebooks/build.py                 # every notebook: build, execute, write; scripts
    python notebooks/build.py --only 7.2      # one notebook (and its scripts)
    python notebooks/build.py --no-execute    # cells only (see below)

Each notebook is a list of items: markdown (a str), a seed cell (an int: that code cell
of tests/seed/000_f6b39f2976603ebe.txt, its import lines ported by scratchnet.port and
nothing else changed) or an extra code cell (``Code``: the book's ResNeXt cells, and the
cells headed "Underneath", scratchnet's own additions after the book's cells).

The notebooks are stored with their outputs, executed by nbclient top to bottom on a
fresh ``python3`` kernel in a temporary folder. Every kernel starts with
``scratchnet.manual_seed(0)`` (as tests/conftest.py seeds every test), so a rebuild
draws the same random numbers. The training cells of 8.2 and 8.6 run on a subset
(``SUBSET`` below, set in the kernel's environment, never in the notebooks' code);
their markdown says so. Fashion-MNIST is found as the tests find it
(``$SCRATCHNET_DATA``, else ../shared/data). ``--no-execute`` rebuilds the cells and
keeps the stored outputs when every code cell is unchanged (a markdown edit), and drops
them otherwise.

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
from scratchnet.io import atomic_write_text  # noqa: E402
from scratchnet.port import cells_from_export, port  # noqa: E402

SEED = ROOT / "tests" / "seed" / "000_f6b39f2976603ebe.txt"
NOTEBOOKS_DIR = ROOT / "notebooks"
EXAMPLES_DIR = ROOT / "examples"
KERNEL_START = "import scratchnet; scratchnet.manual_seed(0)"
SUBSET = {"SCRATCHNET_D2L_SUBSET": "2048", "SCRATCHNET_D2L_MAX_EPOCHS": "3"}
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


# How a test's fresh run of a cell is compared with its stored output (tests/
# test_notebooks.py). Exact unless the cell's metadata says otherwise:
#   {"compare": "numbers", "atol": x, "why": ...}: the text outside the numbers exactly,
#        each number within atol (an order of float additions, e.g. BLAS's, decides it);
#   {"compare": "no", "why": ...}: not compared (a training run, or what it trained).
# Pictures (image/png) are never compared: matplotlib's pixels change between versions.
TRAINING_OUTPUT = {
    "compare": "no",
    "why": "a training run: its losses, accuracies and times depend on the images and "
           "epochs it ran (the stored run's are in the markdown above; a test runs one "
           "epoch on 256 images) and on the machine"}
TRAINED_OUTPUT = {"compare": "no", "why": "it reads the model the training cell above trained"}


def output_policy(item, source):
    """The comparison ``item``'s output gets (None: character for character)."""
    if "trainer.fit(" in source:
        return TRAINING_OUTPUT
    return getattr(item, "output", None)


@dataclasses.dataclass
class Notebook:
    key: str  # what --only takes
    name: str  # notebooks/<name>.ipynb
    items: list
    scripts: list  # (examples/<script>, Part)
    env: dict = dataclasses.field(default_factory=dict)  # the kernel's, for the stored run


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


def subset_note(recipe):
    return f"""\
**The stored output below is a CPU subset run, not the book's recipe.**
`notebooks/build.py` ran this notebook with `SCRATCHNET_D2L_SUBSET=2048` (the first 2048
training and the first 2048 test images) and `SCRATCHNET_D2L_MAX_EPOCHS=3` (3 epochs,
48 SGD steps), because the full recipe ({recipe}) takes hours on the 2-core CPU it was
built on. The code is the book's: unset those variables and it runs the full recipe. On a
GPU (`pip install -e ".[gpu]"`) `num_gpus=1` trains there; without one the trainer says
so and uses the CPU."""


NOTEBOOKS = [
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
    ], [("sec8_2_vgg.py", Part())], env=SUBSET),

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
        else:
            cell = nbformat.v4.new_markdown_cell(textwrap.dedent(item).strip())
        policy = None if cell.cell_type == "markdown" else output_policy(item, cell.source)
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
        return name not in NO_VALUE
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
