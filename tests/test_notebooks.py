"""notebooks/: one notebook per section of the seed and per section of chapter 8 the seed
lacks, and the section scripts of examples/, built from one list per section by
notebooks/build.py.

Checked: each stored notebook is what build.py makes of its items and each script what
build.py exports from it (so nothing drifts); every seed code cell but the two
``pip install`` ones is in exactly one notebook, ported, in the seed's order, and so is
every PyTorch cell of 2.5, 8.1, 8.3, 8.4, 8.5, 8.7 and 8.8 (tests/chaptercells.py); the stored
outputs show what the book prints (``BOOK`` of tests/test_seed.py, and PyTorch's run of
the chapters' cells, tests/d2l_chapters/reference_outputs.json); and every notebook runs
top to bottom on a fresh kernel and shows it again, its training cells on the first
``test_images`` images (build.py's, per notebook) for one epoch.
"""
import json
import os
import re

import nbformat
import pytest
from seedcells import code_cells, notebooks_build, port, shown
from test_seed import BOOK, PIP, SILENT

import chaptercells as cc

build = notebooks_build()
RESNEXT_CHECK = "blk = ResNeXtBlock(32, 16, 1)"
RESNEXT_SHAPE = "torch.Size([4, 32, 96, 96])"
MAX_BYTES = 300_000  # each notebook reads on a code host without running
# The notebooks of the sections the seed lacks, each with all its section's PyTorch cells.
BOOK_SECTIONS = {"2.5": "autograd", "8.1": "alexnet", "8.3": "nin", "8.4": "googlenet",
                 "8.5": "batch-norm", "8.7": "densenet", "8.8": "cnn-design"}
REFERENCE = cc.reference()["sections"]  # what each of those cells prints on PyTorch
# Book cells whose last line is an expression that is None (2.5's ``x.grad  # The
# gradient is None by default``): Jupyter shows nothing, the script prints None.
NONE_VALUE = {("autograd", 2)}
# How each training cell backpropagates, in order (the first epoch line says it): the
# tape where the book's class defines a block by its forward alone, by hand otherwise.
ROUTES = {"8.4": ["tape"], "8.5": ["tape", "manual"], "8.6": ["tape"], "8.7": ["tape"]}


def stored(spec):
    return nbformat.read(build.path(spec), as_version=4)


def training_cells(nb):
    """The indices in ``nb.cells`` of the cells that train (d2l's ``trainer.fit``)."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and "trainer.fit(" in c.source]


def trains(spec):
    return bool(training_cells(build.notebook(spec)))


def notebooks(slow=()):
    """The notebooks as parameters; those in ``slow`` marked slow."""
    return [pytest.param(spec, id=spec.key,
                         marks=[pytest.mark.slow] if spec.key in slow else [])
            for spec in build.NOTEBOOKS]


def code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def book_difference(where, out):
    """How a book cell's output ``out`` differs from what the cell prints on PyTorch, as
    tests/chaptercells.py's CHECKS compares them ("" when it does not)."""
    ref = REFERENCE[where[0]][where[1]]
    want = ref["output"]
    if ref["check"] == "silent" and out:
        return f"book cell {where} showed\n{out}\nPyTorch shows nothing"
    if ref["check"] == "exact" and out != want:
        return f"book cell {where} showed\n{out}\nPyTorch prints\n{want}"
    if ref["check"] == "property" and cc.masked(out) != cc.masked(want):
        return f"book cell {where} showed\n{out}\nPyTorch prints (numbers aside)\n{want}"
    return ""


def check_book(nb):
    """The book's values in the outputs of ``nb``'s seed cells and book cells (and the
    ResNeXt check). A notebook of scratchnet's own (5.3: the section has no code) has
    none, and its own checks print in test_examples.py's run of its script."""
    wrong, checked = [], 0
    for cell in code(nb):
        n, where, out = build.seed_cell(cell), build.book_cell_of(cell), shown(cell)
        checked += n in BOOK
        if n in BOOK and out.rstrip("\n") != BOOK[n]:
            wrong.append(f"seed cell {n} showed\n{out}\nthe book prints\n{BOOK[n]}")
        if n in SILENT and out:
            wrong.append(f"seed cell {n} showed\n{out}\nthe book shows nothing")
        if where is not None:
            checked += REFERENCE[where[0]][where[1]]["check"] != "training"
            wrong.append(book_difference(where, out))
        if RESNEXT_CHECK in cell.source and out != RESNEXT_SHAPE + "\n":
            wrong.append(f"the ResNeXt check showed {out!r}, the book {RESNEXT_SHAPE}")
    wrong = [w for w in wrong if w]
    own = not any(build.seed_cell(c) is not None or build.book_cell_of(c) is not None
                  for c in code(nb))
    assert (checked or own) and not wrong, "\n\n".join(wrong)
    assert own == (nb.cells[0].source.startswith("# 5.3 "))  # the one of our own


def training_lines(cell):
    """A training cell's printed lines, and whether it displayed d2l's plot (a PNG)."""
    png = any("image/png" in o.get("data", {}) for o in cell.outputs)
    return shown(cell).splitlines(), png


@pytest.mark.parametrize("spec", notebooks())
def test_notebook_and_scripts_are_up_to_date(spec):
    """The stored cells are build.py's items, and the scripts the stored notebook exported
    (after an edit: ``python notebooks/build.py --only KEY``)."""
    nb, fresh = stored(spec), build.notebook(spec)
    assert [(c.cell_type, c.source, c.metadata) for c in nb.cells] == \
        [(c.cell_type, c.source, c.metadata) for c in fresh.cells]
    for script, text in build.scripts(spec, nb).items():
        assert (build.EXAMPLES_DIR / script).read_text(encoding="utf-8") == text, script


def test_every_seed_cell_is_in_exactly_one_notebook_in_the_seeds_order():
    seed, where = code_cells(), {}
    for spec in build.NOTEBOOKS:
        cells = [c for c in stored(spec).cells if build.seed_cell(c) is not None]
        numbers = [build.seed_cell(c) for c in cells]
        assert numbers == sorted(numbers), spec.key
        for n, cell in zip(numbers, cells):
            assert cell.cell_type == "code" and cell.source == port(seed[n]), (spec.key, n)
            where.setdefault(n, []).append(spec.key)
    assert sorted(where) == [n for n in range(len(seed)) if n not in PIP]
    assert {n: keys for n, keys in where.items() if len(keys) > 1} == {}


def test_every_book_cell_of_a_section_the_seed_lacks_is_in_its_notebook_in_order():
    """Each of those notebooks holds all its section's PyTorch cells, in the book's order,
    ported (the import lines alone), and no other notebook holds any."""
    for spec in build.NOTEBOOKS:
        cells = [c for c in stored(spec).cells if build.book_cell_of(c) is not None]
        section = BOOK_SECTIONS.get(spec.key)
        book = cc.pytorch_cells(section) if section else []
        assert [build.book_cell_of(c) for c in cells] == \
            [(section, i) for i in range(len(book))], spec.key
        for cell, source in zip(cells, book):
            assert cell.cell_type == "code" and cell.source == port(source), spec.key
    assert sorted(BOOK_SECTIONS) == [s.key for s in build.NOTEBOOKS if s.key in BOOK_SECTIONS]


@pytest.mark.parametrize("spec", notebooks())
def test_stored_outputs_show_the_books_values(spec):
    nb = stored(spec)
    assert build.path(spec).stat().st_size < MAX_BYTES
    cells = code(nb)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    for cell in cells:
        kinds = [(o.output_type, o.get("name")) for o in cell.outputs]
        assert ("error", None) not in kinds and ("stream", "stderr") not in kinds, cell.source
        # The script prints a cell's value exactly when Jupyter showed one; a value that
        # is None Jupyter does not show, and the script prints (NONE_VALUE).
        shows = ("execute_result", None) in kinds
        assert shows == build.prints_value(cell.source) or \
            (build.book_cell_of(cell) in NONE_VALUE and not shows), cell.source
    check_book(nb)
    # The book's recipe for LeNet and 8.5's two, a CPU subset for the others (spec.env).
    epochs = int(spec.env.get("SCRATCHNET_D2L_MAX_EPOCHS", 10))
    for i in training_cells(nb):
        lines, png = training_lines(nb.cells[i])
        assert png and lines[-1].startswith(f"epoch {epochs}/{epochs}:"), lines
        assert any(f"capped at {epochs}" in line for line in lines) == bool(spec.env), lines
        # The markdown cell right before the training cell says what the run used.
        assert nb.cells[i - 1].cell_type == "markdown"
        assert all(f"{k}={v}" in nb.cells[i - 1].source for k, v in spec.env.items())


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def output_differences(stored_nb, fresh_nb):
    """Each code cell whose fresh output differs from the stored one beyond what its
    metadata allows (build.compared_output): a list of readable differences."""
    wrong = []
    for i, (old, new) in enumerate(zip(code(stored_nb), code(fresh_nb))):
        policy = build.compared_output(old)
        a, b = shown(old), shown(new)
        if policy["compare"] == "exact" and a != b:
            wrong.append(f"code cell {i}: stored\n{a}\nnow\n{b}")
        elif policy["compare"] == "numbers":
            xs, ys = NUMBER.findall(a), NUMBER.findall(b)
            same_text = NUMBER.sub("#", a) == NUMBER.sub("#", b) and len(xs) == len(ys)
            if not same_text or any(abs(float(x) - float(y)) > policy["atol"]
                                    for x, y in zip(xs, ys)):
                wrong.append(f"code cell {i} (numbers within {policy['atol']}): stored\n{a}"
                             f"\nnow\n{b}")
    return wrong


def test_every_output_that_is_not_compared_says_why():
    policies = [build.compared_output(c) for spec in build.NOTEBOOKS for c in code(stored(spec))]
    assert {p["compare"] for p in policies} <= {"exact", "numbers", "no"}
    assert all(p.get("why") for p in policies if p["compare"] != "exact")
    assert all(p["atol"] > 0 for p in policies if p["compare"] == "numbers")
    # Only the training runs (7.6, 8.1-8.8: 10), what reads their models (7.6's step by
    # hand, 8.5's gamma and beta), five float32 differences (7.4, 8.3, 8.4, 8.5, 8.7) and
    # three float64 ones (2.5's and 5.3's comparisons of gradients).
    assert sum(p["compare"] != "exact" for p in policies) == 20  # 10 + 2 + 5 + 3


def test_output_differences_catch_a_changed_digit():
    nb = stored(next(s for s in build.NOTEBOOKS if s.key == "7.2"))  # the learned kernel
    changed = nbformat.from_dict(json.loads(json.dumps(nb)))
    cell = next(c for c in code(changed) if "loss 8.107" in shown(c))
    out = next(o for o in cell.outputs if o.output_type == "stream")
    out.text = out.text.replace("loss 8.107", "loss 9.107")
    assert output_differences(nb, nb) == []
    assert len(output_differences(nb, changed)) == 1


@pytest.mark.parametrize("spec", notebooks(slow=("8.2", "8.6")))
def test_notebook_runs_on_a_fresh_kernel(spec, tmp_path, request):
    """Top to bottom with nbclient, as a student's Run All, from the stored seed (every
    kernel starts with scratchnet.manual_seed(0)); any error fails, and every cell's
    output is the stored one (exactly, unless the cell's metadata says otherwise and
    why). The training cells use the first ``spec.test_images`` images (256; 16 or 32 for
    the heavy networks of chapter 8: one step) for one epoch and need the real
    Fashion-MNIST."""
    if trains(spec):
        request.getfixturevalue("real_data")
    env = dict(os.environ, SCRATCHNET_D2L_SUBSET=str(spec.test_images),
               SCRATCHNET_D2L_MAX_EPOCHS="1", SCRATCHNET_D2L_FIGURES=str(tmp_path))
    nb = build.execute(build.notebook(spec), env, tmp_path, timeout=600)
    wrong = output_differences(stored(spec), nb)
    assert not wrong, "\n\n".join(wrong)
    check_book(nb)
    routes = ROUTES.get(spec.key, ["manual"]) if trains(spec) else []
    assert len(training_cells(nb)) == len(routes)
    for i, route in zip(training_cells(nb), routes):
        lines, png = training_lines(nb.cells[i])
        assert png and lines[-1].startswith("epoch 1/1:") and f"[{route} backprop" in lines[-1]
