"""Generate reference_outputs.json: what each PyTorch code cell of d2l's chapters 2-8
prints on real PyTorch with the real d2l 1.0.3 package.

Run it in a venv holding torch, torchvision and d2l==1.0.3 (never scratchnet's venv; the
README beside this file gives the exact commands), from the repository root:

    /work/refvenv/bin/python tests/d2l_chapters/make_reference.py [--sections 2-6|7-8|all]

``--sections`` regenerates those sections only and keeps the others in the file
(default: all).

It reads the cells as tests/test_chapters_7_8.py does (tests/chaptercells.py: the same
extraction, the same ``tab`` object) and runs them with seedcells.run_cell (the same
Jupyter semantics: a final expression's repr is printed), unported: ``import torch`` is
PyTorch here. Each section runs in one fresh namespace, after ``torch.manual_seed(0)``
(and Python's and NumPy's seeds).

Every section runs twice, with seeds 0 and 1, to check the classification in
chaptercells.CHECKS: an "exact" cell must print the same under both seeds and a "silent"
cell nothing. The seed-0 output is stored.

Training cells (``trainer.fit``) of chapters 7-8 and chapters 2-6's Fashion-MNIST fits
run short, as the tests run them: ``max_epochs=10`` -> 1 (chaptercells.as_run), on the
first ``--subset`` training and test images (the book's batch sizes and resizes).
Chapters 7-8's ("training") are stored with no text: d2l's Trainer prints none, and they
run because later cells read the trained model (8.5's gamma and beta). Chapters 2-6's
("fit") store what the cell itself prints (7's weight-decay prints a norm). d2l's
ProgressBoard shows its figure with IPython's ``display`` and ``clear_output``, which
outside a kernel print the figure's repr and terminal escapes; in Jupyter they show a
picture and print no text, so here they print nothing.

Cells marked "raises" must raise on PyTorch (6.7's cells that need a second GPU); their
exception type and message are stored. Cells marked "internet" (5.7's Kaggle download
and what needs its data) are not run: nothing here touches the network.

Each section runs with the d2l module's classes as they were before it
(chaptercells.kernel_state): what a section's ``@d2l.add_to_class`` cells change is
undone, as in a fresh kernel.
"""
import argparse
import ast
import contextlib
import gzip
import io
import json
import os
import pathlib
import platform
import random
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))
import chaptercells  # noqa: E402  (stdlib only: no scratchnet here)

os.environ.setdefault("MPLBACKEND", "Agg")


def seedcells_run_cell():
    """seedcells.run_cell, taken from tests/seedcells.py's source: seedcells imports
    scratchnet.port, which this venv (PyTorch's) does not have, and the runner must be
    the very function the tests use."""
    source = (TESTS / "seedcells.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_cell")
    namespace = {"ast": ast, "contextlib": contextlib, "io": io}
    exec(compile(ast.Module(body=[node], type_ignores=[]), "seedcells.py", "exec"), namespace)
    return namespace["run_cell"]


def import_torchvision():
    """Import torchvision 0.28.0. The only build the local package index has is the CUDA
    one (0.28.0+cu130): its C extension (detection ops such as nms) cannot load without
    CUDA's libraries, and its fake-tensor registrations for those ops then fail at
    import. Skip those registrations while importing: d2l only uses torchvision's
    datasets.FashionMNIST and transforms (Resize, ToTensor), which need no C ops."""
    import torch
    register_fake = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: (lambda fn: fn)
    try:
        import torchvision
        import torchvision.transforms  # noqa: F401
    finally:
        torch.library.register_fake = register_fake
    return torchvision


def prepare_data(src, root):
    """Fashion-MNIST's four .gz files from ``src`` unpacked where torchvision looks
    (``root/FashionMNIST/raw``): d2l.FashionMNIST(root='../data') finds them and
    downloads nothing."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(src / f"{name}.gz", "rb") as f, open(raw / name, "wb") as out:
            shutil.copyfileobj(f, out)


def limit_fashion_mnist(d2l, subset):
    """d2l.FashionMNIST keeps the first ``subset`` training and test images, as
    SCRATCHNET_D2L_SUBSET does on scratchnet's side."""
    init = d2l.FashionMNIST.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        for ds in (self.train, self.val):
            ds.data, ds.targets = ds.data[:subset], ds.targets[:subset]
    d2l.FashionMNIST.__init__ = __init__


def run_section(section, seed, run_cell, d2l_module):
    """Each cell's output (or, for a "raises" cell, its exception as "Type: message")."""
    import numpy as np
    import torch
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    ns = chaptercells.namespace()
    outputs = []
    with chaptercells.kernel_state(d2l_module):
        for i, cell in enumerate(chaptercells.pytorch_cells(section)):
            check = chaptercells.CHECKS[section][i]
            cell = chaptercells.as_run(section, i, cell)
            if check == "internet":
                outputs.append(None)
            elif check == "raises":
                try:
                    run_cell(cell, ns)
                except Exception as e:
                    outputs.append(f"{type(e).__name__}: {e}")
                else:
                    raise AssertionError(f"{section} cell {i} was to raise")
            else:
                outputs.append(run_cell(cell, ns))
    return outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("SCRATCHNET_DATA",
                                                            "/work/shared/data"))
                        / "fashion-mnist",
                        help="the folder of Fashion-MNIST's four .gz files")
    parser.add_argument("--subset", type=int, default=256,
                        help="training and test images a training cell uses")
    parser.add_argument("--out", type=pathlib.Path, default=chaptercells.REFERENCE)
    parser.add_argument("--sections", choices=["all", "2-6", "7-8"], default="all",
                        help="the chapters to regenerate (the others stay as they are)")
    args = parser.parse_args()
    todo = {"all": chaptercells.SECTIONS, "2-6": chaptercells.SECTIONS_2_6,
            "7-8": chaptercells.SECTIONS_7_8}[args.sections]

    import numpy as np
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    torchvision = import_torchvision()
    import d2l
    from d2l import torch as d2l_torch
    limit_fashion_mnist(d2l_torch, args.subset)
    # Jupyter shows the ProgressBoard's figure as a picture: no text (see the docstring).
    d2l_torch.display.display = lambda *objs, **kwargs: None
    d2l_torch.display.clear_output = lambda *args, **kwargs: None
    run_cell = seedcells_run_cell()

    sections = {}
    if args.out.exists():
        sections = {s: c for s, c in json.loads(args.out.read_text(encoding="utf-8"))
                    ["sections"].items() if s in chaptercells.SECTIONS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        prepare_data(args.data, tmp / "data")
        (tmp / "work").mkdir()
        cwd = os.getcwd()
        os.chdir(tmp / "work")  # d2l's root='../data'
        try:
            for section in todo:
                print(f"{section} ...", file=sys.stderr, flush=True)
                first = run_section(section, 0, run_cell, d2l_torch)
                second = run_section(section, 1, run_cell, d2l_torch)
                checks = chaptercells.CHECKS[section]
                assert len(checks) == len(first), (section, len(checks), len(first))
                cells = []
                for i, (check, a, b) in enumerate(zip(checks, first, second)):
                    if check == "silent":
                        assert a == b == "", (section, i, a, b)
                    elif check == "exact":
                        assert a == b and a, (section, i, a, b)
                    elif check == "property":
                        assert a != b, (section, i, "prints the same under two seeds", a)
                    elif check == "raises":
                        assert a == b, (section, i, a, b)
                    cells.append({"check": check,
                                  "output": None if check == "training" else a})
                sections[section] = cells
            sections = {s: sections[s] for s in chaptercells.SECTIONS if s in sections}
        finally:
            os.chdir(cwd)

    reference = {
        "about": "What each PyTorch code cell of d2l's chapters 2-8 prints (a final "
                 "expression's repr included), per section, per cell index (0 = the "
                 "section's first PyTorch cell), on PyTorch with d2l 1.0.3; 'check' says "
                 "how tests/test_chapters_2_6.py and tests/test_chapters_7_8.py compare "
                 "scratchnet's output with it (tests/chaptercells.py's CHECKS). Chapters "
                 "7-8's training cells store no text; a 'raises' cell stores its "
                 "exception, an 'internet' cell (not run) nothing.",
        "generated_by": "tests/d2l_chapters/make_reference.py (see README.md)",
        "book": "d2l-en commit " + chaptercells.COMMIT,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__,
                     "d2l": getattr(d2l, "__version__", "1.0.3"), "numpy": np.__version__},
        "seed": "torch.manual_seed(0), random.seed(0), np.random.seed(0) per section",
        "training_subset": args.subset,
        "sections": sections,
    }
    args.out.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"wrote {args.out}: {sum(map(len, sections.values()))} cells", file=sys.stderr)


if __name__ == "__main__":
    main()
