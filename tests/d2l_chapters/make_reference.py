"""Generate reference_outputs.json: what each PyTorch code cell of d2l's chapters 7 and 8
prints on real PyTorch with the real d2l 1.0.3 package.

Run it in a venv holding torch, torchvision and d2l==1.0.3 (never scratchnet's venv; the
README beside this file gives the exact commands), from the repository root:

    /work/refvenv/bin/python tests/d2l_chapters/make_reference.py

It reads the cells as tests/test_chapters_7_8.py does (tests/chaptercells.py: the same
extraction, the same ``tab`` object) and runs them with seedcells.run_cell (the same
Jupyter semantics: a final expression's repr is printed), unported: ``import torch`` is
PyTorch here. Each section runs in one fresh namespace, after ``torch.manual_seed(0)``
(and Python's and NumPy's seeds).

Every section runs twice, with seeds 0 and 1, to check the classification in
chaptercells.CHECKS: an "exact" cell must print the same under both seeds and a "silent"
cell nothing. The seed-0 output is stored.

Training cells (``trainer.fit``) run short, as the tests run them: ``max_epochs=10`` ->
1 (chaptercells.shortened), on the first ``--subset`` training and test images (the
book's batch sizes and resizes). What they print is not compared (d2l's Trainer prints
no text: it draws its ProgressBoard), so they are stored with the marker "training" and
no text; they run because later cells read the trained model (8.5's gamma and beta).
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


def run_section(section, seed, run_cell):
    import numpy as np
    import torch
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    ns = chaptercells.namespace()
    outputs = []
    for i, cell in enumerate(chaptercells.pytorch_cells(section)):
        if chaptercells.CHECKS[section][i] == "training":
            cell = chaptercells.shortened(cell)
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
    args = parser.parse_args()

    import numpy as np
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    torchvision = import_torchvision()
    import d2l
    from d2l import torch as d2l_torch
    limit_fashion_mnist(d2l_torch, args.subset)
    run_cell = seedcells_run_cell()

    sections = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        prepare_data(args.data, tmp / "data")
        (tmp / "work").mkdir()
        cwd = os.getcwd()
        os.chdir(tmp / "work")  # d2l's root='../data'
        try:
            for section in chaptercells.SECTIONS:
                print(f"{section} ...", file=sys.stderr, flush=True)
                first = run_section(section, 0, run_cell)
                second = run_section(section, 1, run_cell)
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
                    cells.append({"check": check,
                                  "output": None if check == "training" else a})
                sections[section] = cells
        finally:
            os.chdir(cwd)

    reference = {
        "about": "What each PyTorch code cell of d2l's chapters 7 and 8 prints (a final "
                 "expression's repr included), per section, per cell index (0 = the "
                 "section's first PyTorch cell), on PyTorch with d2l 1.0.3; 'check' says "
                 "how tests/test_chapters_7_8.py compares scratchnet's output with it "
                 "(tests/chaptercells.py's CHECKS). Training cells store no text.",
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
