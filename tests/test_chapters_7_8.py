"""d2l's chapters 7 and 8 run on scratchnet with only their import lines changed.

Every PyTorch code cell of the 14 sections (tests/chaptercells.py reads them from the
book's own markdown, tests/d2l_chapters/) runs in order in one namespace per section, as
in one Jupyter kernel, after ``scratchnet.port.port`` (the import lines alone) and with
d2lbook's ``tab`` object in the namespace (``tab.selected('pytorch')`` is True). What each
cell prints, a final expression's repr included, is compared with what the same cell
prints on PyTorch 2.13 with d2l 1.0.3 (tests/d2l_chapters/reference_outputs.json, made by
tests/d2l_chapters/make_reference.py), as chaptercells.CHECKS says:

- silent: nothing printed;
- exact: the same text, character for character (``torch.Size([...])``, ``tensor(...)``,
  layer summaries);
- property: random values (a kernel learned from torch.rand, trained gamma and beta):
  the same text once every number is masked, and the values satisfy what the book
  says of them;
- training: ``trainer.fit`` runs short (see TRAINING: one epoch, one batch of a few
  images, the book's batch size and resize); the Trainer's epoch line is printed, and
  the training loss fell: the loss of the epoch's training images, computed as the
  training step computes it (training mode) but with dropout off, is lower after the
  epoch than before it (``_Probe``). d2l's own Trainer prints no text to compare.

The sections with training cells are marked slow; the quick subset is the five sections
without any (why-conv has no code cells).
"""
import contextlib
import copy

import pytest
from chapterrun import FitProbe, check_printed, run_recorded, section_runs
from seedcells import port

import chaptercells as cc
import scratchnet as sn
from scratchnet import d2l as sn_d2l
from scratchnet import nn

REFERENCE = cc.reference()

# The book's files, as copied (byte-identical) from d2l-en at chaptercells.COMMIT.
BOOK_FILES = {
    "why-conv": "0fa140a9d25c984a7a41578dbd1a96a1aaa9ea0b35c297d581edff4a737e24ef",
    "conv-layer": "5f41b0ebf6844a96372e103e3dd0efe0341ea959532896a340be13d0c8c23275",
    "padding-and-strides": "c0fec95a1a9e9e1b660f98f27b876e7caa3a53932601e5c5c9bb81be45b8e5d2",
    "channels": "3c2cc261f2351a373861af2582104addb9013bb0d222013af6d16b0749fc49dc",
    "pooling": "57b031b5fe27e3b398ebc5857506e8034f2df2b47a8f2351a9e4ed22019d2d89",
    "lenet": "6dfaae50762199fa53bc5fac21ba72f53a69de576fd5bd38a93d3d3a5b7f6701",
    "alexnet": "41a541c64320fe9efc0371c0cde7f47242d8fb740a8d6facf7f47ee676146703",
    "vgg": "c27ef2b630bab632e4090da38f0377f26e5642ab686f4d3ba4b79a4b934d0bfa",
    "nin": "3a711ec1c5adfca2e0e8c448c0930998febc2e0d3381794843e6544046842475",
    "googlenet": "6f945593007bc4f63979c554d6f2078b8b4b75782853e78aab3af732bf259f1d",
    "batch-norm": "a82dc20e9a07dcee5e88ff4e094720bf524aab8ace7d9a6aca47f9827b4e9a33",
    "resnet": "64325be1880bac5ed388512412877b9fae653e4c967789c93319a4a91a316ed5",
    "densenet": "cd099c68314e35fe4a7164ead9cc8c100f5791af42f4455558593385d35832e4",
    "cnn-design": "d28aec8bde19f8e2f4333e4d621902a8dc1fab3df5b2a4da3c24b56339cbdf35",
}

# PyTorch code cells per section, as d2lbook selects the PyTorch tab (chaptercells).
COUNTS = {"why-conv": 0, "conv-layer": 10, "padding-and-strides": 5, "channels": 8,
          "pooling": 10, "lenet": 5, "alexnet": 4, "vgg": 5, "nin": 5, "googlenet": 10,
          "batch-norm": 8, "resnet": 12, "densenet": 9, "cnn-design": 7}

# The sections without training cells: quick, not slow.
QUICK = {"why-conv", "conv-layer", "padding-and-strides", "channels", "pooling"}

# Training cells: (section, cell) -> (images, why it runs short). Every one runs
# max_epochs=10 -> 1 (chaptercells.shortened) on the first `images` training and test
# images (SCRATCHNET_D2L_SUBSET), with the book's batch size (128) and resize: fewer
# images than one batch, so the epoch is one step and the probe sees the very batch the
# step trained on. Ten epochs of 60,000 images would take hours on 2 CPU cores (the
# book trains these on a GPU); one step shows that the cell's model, data and Trainer
# fit together and that the step lowers the loss.
_HEAVY = ("{} at {} pixels: the book's ten epochs of 60,000 images would take hours on 2 "
          "CPU cores; one step on 16 images (seconds) already lowers the loss")
TRAINING = {
    ("lenet", 4): (128, "LeNet on 28x28 images is cheap: one full batch of the book's 128"),
    ("alexnet", 3): (16, _HEAVY.format("AlexNet", 224)),
    ("vgg", 4): (16, _HEAVY.format("VGG-11 (the book's narrow one)", 224)),
    ("nin", 4): (16, _HEAVY.format("NiN", 224)),
    ("googlenet", 9): (16, _HEAVY.format("GoogLeNet", 96)),
    ("batch-norm", 4): (128, "BNLeNetScratch on 28x28 is cheap: one full batch of 128"),
    ("batch-norm", 7): (128, "BNLeNet on 28x28 is cheap: one full batch of 128"),
    ("resnet", 9): (16, _HEAVY.format("ResNet-18", 96)),
    ("densenet", 8): (16, _HEAVY.format("DenseNet", 96)),
    ("cnn-design", 6): (32, "RegNetX-32 at 96 pixels is lighter: one step on 32 images"),
}

# Cells that fail on scratchnet today: (section, cell) -> the reason. Strict: when the
# cause is fixed the test passes, pytest reports XPASS as a failure, and the entry goes.
XFAIL = {}


def _cells():
    for section in cc.SECTIONS_7_8:
        for i in range(len(cc.CHECKS[section])):
            marks = [] if section in QUICK else [pytest.mark.slow]
            if (section, i) in XFAIL:
                marks.append(pytest.mark.xfail(reason=XFAIL[section, i], strict=True))
            yield pytest.param(section, i, marks=marks, id=f"{section}-{i}")


def test_the_book_files_are_the_books():
    assert {s: cc.digest(s) for s in BOOK_FILES} == BOOK_FILES


def test_the_sections_have_the_cells_the_issue_counts():
    assert list(COUNTS) == cc.SECTIONS_7_8
    assert {s: len(cc.pytorch_cells(s)) for s in cc.SECTIONS_7_8} == COUNTS
    assert sum(COUNTS.values()) == 98
    # Every cell has a check, the reference has every cell, and they agree.
    assert {s: len(cc.CHECKS[s]) for s in cc.SECTIONS_7_8} == COUNTS
    assert {s: [c["check"] for c in REFERENCE["sections"][s]] for s in cc.SECTIONS_7_8} \
        == {s: cc.CHECKS[s] for s in cc.SECTIONS_7_8}
    assert {(s, i) for s in cc.SECTIONS_7_8 for i, check in enumerate(cc.CHECKS[s])
            if check == "training"} == set(TRAINING)
    for section in cc.SECTIONS_7_8:  # the cells the checks call training are d2l's fits
        for i, cell in enumerate(cc.pytorch_cells(section)):
            assert ("trainer.fit" in cell) == ((section, i) in TRAINING), (section, i)


def test_the_cells_are_the_pytorch_tab():
    """d2lbook's rules: a %%tab mark naming pytorch or all; the mark line removed; the
    %load_ext cell (no mark: the default tab, mxnet) and "# %%tab jax" left out."""
    assert cc.cell_tabs("%load_ext d2lbook.tab\n") == ["mxnet"]
    assert cc.cell_tabs("# %%tab jax\nx = 1\n") == ["jax"]
    assert cc.cell_tabs("%%tab mxnet, pytorch\nx = 1\n") == ["mxnet", "pytorch"]
    for section in cc.SECTIONS_7_8:
        for cell in cc.pytorch_cells(section):
            assert "%%tab" not in cell and "%load_ext" not in cell
    assert cc.pytorch_cells("conv-layer")[0] == \
        "from d2l import torch as d2l\nimport torch\nfrom torch import nn\n"
    tab = cc.Tab()
    assert tab.selected("pytorch") and tab.selected("mxnet", "pytorch")
    assert not tab.selected("mxnet") and not tab.selected("tensorflow", "jax")


class _Probe(FitProbe):
    """The loss of a training cell's images before and after ``Trainer.fit``.

    As chapterrun.FitProbe: before the fit it takes the
    epoch's training images (fewer than one batch: the epoch's only batch) and the
    model's loss on them; after the fit the loss again. Each loss is computed as the
    training step computes it, in training mode (batch norm on the batch's statistics),
    but with dropout off, on a copy of the network (so no running statistic or cache
    of the model changes), without the tape unless the network holds one of the book's
    own modules (which may ask torch.is_grad_enabled(), as 8.5's batch_norm does).
    A lazy network is initialized first, as d2l's apply_init does, on one image in
    eval mode (no statistic changes): the before-loss must see the weights the fit
    trains."""

    @staticmethod
    def batch(model, data):
        loader = data.train_dataloader()
        assert len(loader) == 1, "the probe needs one batch per epoch"
        X, y = next(iter(loader))
        if any(type(m).__name__.startswith("Lazy") for m in model.net.modules()):
            model.net.eval()
            with sn.no_grad():
                model.net(X[:1])
            model.net.train()
        return X, y

    @staticmethod
    def loss(model, batch):
        X, y = batch
        net = copy.deepcopy(model.net)
        net.train()
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        own = any(not type(m).__module__.startswith("scratchnet") for m in net.modules())
        with (contextlib.nullcontext() if own else sn.no_grad()):
            return float(model.loss(net(X), y))


def _run_section(section, tmp_path):
    """Run the section's cells in order in one namespace; per cell what it printed,
    the error it raised (formatted) and, for a training cell, the probe's losses."""
    results = []
    probe = _Probe()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)  # the trainer's progress figures land here
        mp.setenv("SCRATCHNET_D2L_FIGURES", str(tmp_path))
        mp.setattr(sn_d2l.Trainer, "fit", probe.wrap(sn_d2l.Trainer.fit))
        sn.manual_seed(0)
        ns = cc.namespace()
        for i, cell in enumerate(cc.pytorch_cells(section)):
            code = port(cell)
            if (section, i) in TRAINING:
                code = cc.shortened(code)
                mp.setenv("SCRATCHNET_D2L_SUBSET", str(TRAINING[section, i][0]))
            result = run_recorded(code, ns, probe)
            if result["fit"] is not None:
                fit = dict(result["fit"])
                board = fit.pop("model").board.data.get("train_loss", [])
                result["fit"] = dict(fit, train_loss=[p.y for p in board])
            mp.delenv("SCRATCHNET_D2L_SUBSET", raising=False)
            results.append(result)
    return results


runs = section_runs(_run_section)  # the fixture: each section's run, made when first asked


def _conv_layer_8(out):
    """7.2.4: the loss printed every two epochs falls to below 1 (the book: 16.481 ...
    0.271)."""
    lines = out.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"epoch {i}" for i in (2, 4, 6, 8, 10)]
    losses = [float(line.rsplit(" ", 1)[1]) for line in lines]
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 1.0, losses


def _conv_layer_9(out):
    """The learned kernel is near [1, -1] (the book: tensor([[ 1.0010, -0.9739]]))."""
    assert out.startswith("tensor([[")
    k = cc.values(out)
    assert len(k) == 2 and abs(k[0] - 1) < 0.1 and abs(k[1] + 1) < 0.1, k


def _batch_norm_5(out):
    """8.5.2's first BatchNorm layer after training: six gammas near 1, six betas near 0
    (one short epoch moves them little)."""
    values = cc.values(out)
    assert len(values) == 12, out
    gamma, beta = values[:6], values[6:]
    assert all(abs(g - 1) < 0.2 for g in gamma) and all(abs(b) < 0.2 for b in beta), out


PROPERTIES = {("conv-layer", 8): _conv_layer_8, ("conv-layer", 9): _conv_layer_9,
              ("batch-norm", 5): _batch_norm_5}


def _training_checks(section, i, result):
    out, fit = result["out"], result["fit"]
    lines = out.splitlines()
    if not sn.gpu_available():  # num_gpus=1 and no GPU: the Trainer says it uses the CPU
        assert sum("CPU" in line for line in lines) == 1, out
    assert sum(line.startswith("epoch 1/1:") for line in lines) == 1, out
    assert fit is not None, "the cell did not call trainer.fit"
    assert fit["error"] is None, f"the test's probe (not the cell) failed:\n{fit['error']}"
    assert len(fit["train_loss"]) == 1, fit  # one step, one point on the board
    images, why = TRAINING[section, i]
    assert fit["after"] < fit["before"], (
        f"{section} cell {i}: the training loss did not fall in one step on {images} "
        f"images ({why}): {fit}")


@pytest.mark.parametrize("section, i", list(_cells()))
def test_the_cell_prints_what_pytorch_prints(section, i, runs, request):
    if section not in QUICK:
        request.getfixturevalue("real_data")  # Fashion-MNIST: skip or fail without it
    results = runs(section)
    result, check = results[i], cc.CHECKS[section][i]
    want = REFERENCE["sections"][section][i]["output"]
    earlier = [j for j in range(i) if results[j]["error"]]
    assert result["error"] is None, (
        f"{section} cell {i} raised (earlier cells that raised: {earlier}):\n"
        f"{result['error']}")
    if check == "property":
        assert (section, i) in PROPERTIES  # each random output here has its property
    if not check_printed(section, i, check, result["out"], want, PROPERTIES):
        assert want is None
        _training_checks(section, i, result)
