"""d2l's chapters 2-6 run on scratchnet with only their import lines changed.

Every PyTorch code cell of the 28 sections with code (tests/chaptercells.py reads them
from the book's own markdown, tests/d2l_chapters/, d2l-en at chaptercells.COMMIT) runs in
order in one namespace per section, as in one Jupyter kernel, after
``scratchnet.port.port`` (the import lines alone), with d2lbook's ``tab`` object in the
namespace, and with scratchnet.d2l's classes restored after each section (what a
section's ``@d2l.add_to_class`` cells change is undone: chaptercells.kernel_state). What
each cell prints, a final expression's repr included, is compared with what the same
cell prints on PyTorch 2.13 with d2l 1.0.3 (tests/d2l_chapters/reference_outputs.json,
made by tests/d2l_chapters/make_reference.py), as chaptercells.CHECKS says:

- silent: nothing printed; exact: the same text, character for character;
- property: random values: the same text once every number is masked, and for some
  cells what the values must satisfy (PROPERTIES);
- fit: ``trainer.fit`` as the book writes it (3.3's synthetic data, 3.7's 20 examples)
  or one short epoch on Fashion-MNIST's first 256 images (chaptercells.SHORT_FITS); what
  the cell prints besides scratchnet's Trainer lines (its epoch line, where its curves
  went) is PyTorch's with numbers masked (7's ``L2 norm of w: N``), and the training
  loss on the first training batch, computed as the model computes it but in eval mode,
  is lower after the fit than before it (``_Probe``);
- raises: 6.7's cells that need a second GPU raise on a machine without one what they
  raise on PyTorch (type and message);
- internet: 5.7's cells that download Kaggle's data are not run (INTERNET says why).

The sections that train on Fashion-MNIST or read it are marked slow.
"""
import re

import pytest
from chapterrun import FitProbe, check_printed, run_recorded, section_runs
from seedcells import port

import chaptercells as cc
import scratchnet as sn
from scratchnet import d2l as sn_d2l

REFERENCE = cc.reference()

# The book's files, as copied (byte-identical) from d2l-en at chaptercells.COMMIT.
BOOK_FILES = {
    "ndarray": "b4bd8750d81c202c85c01505cf393cc6e70f2ea1e671b82a8d9f8d35f44f5a15",
    "pandas": "230318b507a258e3877a49c2abcecd3d69a109aab9f975294d868db6c24cb6b3",
    "linear-algebra": "9da729424d50142267f032edee3d0ba0c117597be3692c366a78b58f1acf9a98",
    "calculus": "a325c626fd77f5be37d32579cd0a5cf4a75c9179c995bce08baa487e05026419",
    "autograd": "8b27c572d217e118144fe8b52b336fbc4015cddfb7ac647e986407d115f54a91",
    "probability": "02b59c319786641678fee4edaf61d8fd038523f9d6764159a03d570e380121f1",
    "linear-regression": "c854c09f327abfec72b1d34a3e3c53e507514b28113d9e5798e30f9f2195cb49",
    "oo-design": "a908f1697bbc385b911689a734f7919229c3defd297e15ffb5699557996c41fc",
    "synthetic-regression-data": "a066643434ed32763ee1268d84da38eadd2aaba1c5ceb092d9f8526b09449b83",
    "linear-regression-scratch": "2a96d341e42068e121c0e6bdc0eed0e09e2606b3aa7d568b70cb25a0d0448157",
    "linear-regression-concise": "f7e413bb31566176b315fbba4910d1b05fbb1a4f12ffe5c8e605071452539ecd",
    "weight-decay": "081edd89fc50afb5049df925e82d7a33ea485f4cf1ee6ed28c78f30829b5f388",
    "image-classification-dataset": "207461b602cb42ea6aa4e99bf2e4945f62bf92575a2ca66699e2211da345f05d",  # noqa: E501
    "classification": "6c68e6eeaeee4b9994c9751ea667ab38cdb906cabf3de40195a0b37b7c5da305",
    "softmax-regression-scratch": "921835f318de0b8e2aa34ab181483251b114ea1367c46540b2faeeee9456b7bd",  # noqa: E501
    "softmax-regression-concise": "b5b574f09883a76050df8d72aba5ddcaa2617a2ad7fd64132f3dc97370ebfd44",  # noqa: E501
    "mlp": "e15c9e2ca430b549e506c1f53247eebd3f45f91681a68bd025721aebfd46ca6e",
    "mlp-implementation": "b9ef3697ad5d78b6212fc841ac5ecb54cdae8705b7f3a4ceb5cfa002161b6601",
    "numerical-stability-and-init": "0a53effb2fa59ca8b6edb6d3c46a7b35b40e5117ad96393f7ff84602342d9448",  # noqa: E501
    "dropout": "e5fd93ac9cca9ad6a563f216df28af485ea885b07a4f8e0ce874c5045a619cd3",
    "kaggle-house-price": "cd97e55d12bfab80d4ec185c1b719e7c87733954ed93ac0067be86c806d18caa",
    "model-construction": "c8a3c2c30707ba97aa63ef49bed73be88a684b651ac0f788e990834c4174e4ed",
    "parameters": "ddca72a9f4744289da465e449e80c05cb690c53b3603210f01d20094a715e493",
    "init-param": "ec449d02827c83150da653afec85da3fb2cf625cbf27ead85d01c0a15c73ee47",
    "lazy-init": "d36b8a49fda3bc02be155ef38d0af3abbadb181e96232fb911a389529383fdd5",
    "custom-layer": "9a24c84a2a3261a2b20f189271d0ac89fa54921e647108f63c308b333dc3eab2",
    "read-write": "5f9b99a7c1cb8d5ebee6dd81e1b5b6ed3a6fb042f481b56c55dc63ad90a00212",
    "use-gpu": "0375b07999c7c872e84aba0e9e43654f2b317c49589ffd529674fce70482be28",
}

# PyTorch code cells per section, as d2lbook selects the PyTorch tab (chaptercells).
COUNTS = {"ndarray": 24, "pandas": 5, "linear-algebra": 30, "calculus": 8, "autograd": 13,
          "probability": 6, "linear-regression": 6, "oo-design": 11,
          "synthetic-regression-data": 10, "linear-regression-scratch": 10,
          "linear-regression-concise": 8, "weight-decay": 9,
          "image-classification-dataset": 10, "classification": 4,
          "softmax-regression-scratch": 12, "softmax-regression-concise": 4, "mlp": 7,
          "mlp-implementation": 7, "numerical-stability-and-init": 3, "dropout": 7,
          "kaggle-house-price": 12, "model-construction": 9, "parameters": 7,
          "init-param": 7, "lazy-init": 5, "custom-layer": 9, "read-write": 9,
          "use-gpu": 14}

# Cells that need the internet on PyTorch too, with why. Nothing in the tests touches
# the network: they are not run, and not counted as passing.
_KAGGLE = ("5.7 downloads Kaggle's house-price data (d2l.download from d2l's S3 "
           "bucket): the tests never touch the network")
INTERNET = {
    ("kaggle-house-price", 3): _KAGGLE + "; this cell builds KaggleHouse, which downloads",
    ("kaggle-house-price", 4): _KAGGLE + "; this cell reads the downloaded table",
    ("kaggle-house-price", 6): _KAGGLE + "; this cell preprocesses the downloaded table",
    ("kaggle-house-price", 10): _KAGGLE + "; this cell trains on it (k-fold)",
    ("kaggle-house-price", 11): _KAGGLE + "; this cell writes the submission from it",
}

# Cells that raise on PyTorch where the machine has fewer GPUs than they ask for: 6.7's
# X.cuda(1) needs a second GPU; the next two read its Z.
SECOND_GPU = {("use-gpu", 7), ("use-gpu", 8), ("use-gpu", 9)}

# Sections that read Fashion-MNIST (they need the real data; the fits among them train).
FASHION = {"image-classification-dataset", "softmax-regression-scratch",
           "softmax-regression-concise", "mlp-implementation", "dropout"}

# scratchnet's d2l.Trainer prints a line per epoch, where its curves went, and what it
# does without a GPU; d2l's prints nothing (it draws).
TRAINER_LINE = re.compile(r"^(epoch \d+/\d+: .*|the curves: .*|d2l\.Trainer: .*)$")


def _cells():
    for section in cc.SECTIONS_2_6:
        for i, check in enumerate(cc.CHECKS[section]):
            if check == "internet":
                continue
            marks = [pytest.mark.slow] if section in FASHION else []
            yield pytest.param(section, i, marks=marks, id=f"{section}-{i}")


def test_the_book_files_are_the_books():
    assert {s: cc.digest(s) for s in BOOK_FILES} == BOOK_FILES
    assert list(BOOK_FILES) == cc.SECTIONS_2_6


def test_the_sections_have_the_cells_the_issue_counts():
    assert list(COUNTS) == cc.SECTIONS_2_6 and len(COUNTS) == 28
    assert {s: len(cc.pytorch_cells(s)) for s in cc.SECTIONS_2_6} == COUNTS
    assert sum(COUNTS.values()) == 266
    assert {s: len(cc.CHECKS[s]) for s in cc.SECTIONS_2_6} == COUNTS
    assert {s: [c["check"] for c in REFERENCE["sections"][s]] for s in cc.SECTIONS_2_6} \
        == {s: cc.CHECKS[s] for s in cc.SECTIONS_2_6}
    checks = {(s, i): c for s in cc.SECTIONS_2_6 for i, c in enumerate(cc.CHECKS[s])}
    assert {k for k, c in checks.items() if c == "internet"} == set(INTERNET)
    assert {k for k, c in checks.items() if c == "raises"} == SECOND_GPU
    # 258 run on PyTorch on a CPU machine without network; 8 need the internet or a GPU.
    assert len(checks) - len(INTERNET) - len(SECOND_GPU) == 258
    for section in cc.SECTIONS_2_6:  # the fit cells are the sections' trainer.fit calls
        for i, cell in enumerate(cc.pytorch_cells(section)):
            fits = re.search(r"^(trainer\.fit\(|train_scratch\(\d)", cell, re.M)
            assert bool(fits) == (checks[section, i] == "fit") or \
                (section, i) in INTERNET, (section, i)


def test_the_unmarked_cell_is_the_one_the_docstring_names():
    """chaptercells takes one cell without a %%tab mark into the PyTorch edition."""
    unmarked = [(s, c) for s in cc.SECTIONS
                for c in cc.code_cells((cc.HERE / f"{s}.md").read_text(encoding="utf-8"))
                if cc.is_pytorch(c) and not cc.TAB_MARK.search(c)]
    assert [s for s, _ in unmarked] == ["linear-regression-concise"]
    assert unmarked[0][1] == cc.pytorch_cells("linear-regression-concise")[7]
    assert unmarked[0][1].startswith("print(f'error in estimating w:")
    assert not cc.is_pytorch("%load_ext d2lbook.tab\ntab.interact_select(['mxnet'])\n")


class _Probe(FitProbe):
    """The training loss on a fit's first training batch, before and after
    ``Trainer.fit``: computed as the model computes it (``model.loss(model(X), y)``), in
    eval mode (dropout off) and off the tape. A lazy model is initialized by the first
    of them, as PyTorch's first forward would do it."""

    @staticmethod
    def batch(model, data):
        return next(iter(data.train_dataloader()))

    @staticmethod
    def loss(model, batch):
        training = model.training
        model.eval()
        try:
            with sn.no_grad():
                return float(model.loss(model(*batch[:-1]), batch[-1]))
        finally:
            model.train(training)


def _run_section(section, tmp_path):
    """Run the section's cells in order in one namespace: per cell what it printed, the
    error it raised (formatted, and as "Type: message"), and a fit's probe record."""
    results = []
    probe = _Probe()
    with pytest.MonkeyPatch.context() as mp, cc.kernel_state(sn_d2l):
        mp.chdir(tmp_path)  # files the cells write (read-write), the Trainer's figures
        mp.setenv("SCRATCHNET_D2L_FIGURES", str(tmp_path))
        mp.setenv("SCRATCHNET_D2L_SUBSET", "256")  # the reference's d2l.FashionMNIST
        mp.setattr(sn_d2l.Trainer, "fit", probe.wrap(sn_d2l.Trainer.fit))
        sn.manual_seed(0)
        ns = cc.namespace()
        for i, cell in enumerate(cc.pytorch_cells(section)):
            if cc.CHECKS[section][i] == "internet":
                results.append(None)
                continue
            results.append(run_recorded(port(cc.as_run(section, i, cell)), ns, probe))
    import matplotlib.pyplot as plt
    plt.close("all")
    return results


runs = section_runs(_run_section)  # the fixture: each section's run, made when first asked


def _estimation_errors(bound):
    """3.4.4 and 3.5.3: the three errors of the learned w and b, each below ``bound``
    (PyTorch's run: 0.05, -0.19 and 0.21 from scratch; 0.008, -0.007 and 0.011 with
    nn.LazyLinear and optim.SGD)."""
    def check(out):
        values = cc.values(out)
        assert len(values) == 3 and all(abs(v) < bound for v in values), out
    return check


PROPERTIES = {("linear-regression-scratch", 9): _estimation_errors(0.5),
              ("linear-regression-concise", 7): _estimation_errors(0.05)}


def _fit_checks(section, i, result, want):
    out, fit = result["out"], result["fit"]
    own = "\n".join(line for line in out.splitlines() if not TRAINER_LINE.match(line))
    assert cc.masked(own) == cc.masked(want), \
        f"scratchnet printed\n{out}\nPyTorch prints (numbers aside)\n{want}"
    assert fit is not None, "the cell did not call trainer.fit"
    assert fit["error"] is None, f"the test's probe (not the cell) failed:\n{fit['error']}"
    assert fit["after"] < fit["before"], \
        f"{section} cell {i}: the training loss did not fall: {fit}"


@pytest.mark.parametrize("section, i", list(_cells()))
def test_the_cell_prints_what_pytorch_prints(section, i, runs, request):
    if section in FASHION:
        request.getfixturevalue("real_data")  # Fashion-MNIST: skip or fail without it
    results = runs(section)
    result, check = results[i], cc.CHECKS[section][i]
    want = REFERENCE["sections"][section][i]["output"]
    if check == "raises":
        assert result["raised"] == want, (
            f"{section} cell {i} was to raise {want!r} as on PyTorch without a second "
            f"GPU; it {'raised ' + repr(result['raised']) if result['raised'] else 'ran'}")
        return
    earlier = [j for j in range(i) if results[j] and results[j]["error"] and
               cc.CHECKS[section][j] != "raises"]
    assert result["error"] is None, (
        f"{section} cell {i} raised (earlier cells that raised: {earlier}):\n"
        f"{result['error']}")
    if not check_printed(section, i, check, result["out"], want, PROPERTIES):
        assert check == "fit", check
        _fit_checks(section, i, result, want)


def test_every_save_definition_of_chapters_2_6_is_in_scratchnet_d2l():
    """Each ``#@save`` definition in the PyTorch cells of chapters 2-6 (d2l 1.0.3 holds
    them in d2l/torch.py) is in scratchnet.d2l: a function or class by its name, an
    ``@d2l.add_to_class(X)`` method on d2l.X (3.4's ``add_to_class(d2l.Trainer)``
    ``fit_epoch`` and 6.7's Trainer methods are d2l.Trainer's own)."""
    found = []
    for section in cc.SECTIONS_2_6:
        for cell in cc.pytorch_cells(section):
            lines = cell.splitlines()
            for j, line in enumerate(lines):
                if "#@save" not in line:
                    continue
                target = re.match(r"@d2l\.add_to_class\((?:d2l\.)?(\w+)\)", line)
                if target:
                    name = re.match(r"def (\w+)", lines[j + 1]).group(1)
                    found.append((target.group(1), name))
                    continue
                m = re.match(r"(?:def|class) (\w+)", line if line.strip() != "#@save"
                             else lines[j + 1])
                found.append(("d2l", m.group(1)))
    assert len(found) == 44, found
    for owner, name in found:
        where = sn_d2l if owner == "d2l" else getattr(sn_d2l, owner)
        assert hasattr(where, name), (owner, name)
