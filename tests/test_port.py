"""scratchnet.port: only the import lines change, in scripts and in notebooks."""
import json
import subprocess
import sys

from scratchnet.port import IMPORTS, port, port_notebook

BOOK = """import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l

def f():
    import torch.nn.functional as F
    return F.relu(torch.ones(2))  # import torch stays in a comment
print("import torch")"""


def test_only_the_import_lines_change():
    ported = port(BOOK).splitlines()
    original = BOOK.splitlines()
    changed = [(a, b) for a, b in zip(original, ported) if a != b]
    assert len(ported) == len(original)
    assert changed == [(a, IMPORTS[a.strip()].join(a.split(a.strip()))) for a, _ in changed]
    assert [a.strip() for a, _ in changed] == ["import torch", "from torch import nn",
                                               "from torch.nn import functional as F",
                                               "from d2l import torch as d2l",
                                               "import torch.nn.functional as F"]
    assert ported[6] == "    from scratchnet.autograd import functional as F"  # indent kept


def test_a_ported_notebook_runs_on_scratchnet(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# import torch"]},
                    {"cell_type": "code", "metadata": {}, "execution_count": 3,
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}],
                     "source": ["import torch\n", "print(torch.ones(2) * 3)"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    src, dst = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    src.write_text(json.dumps(nb))
    subprocess.run([sys.executable, "-m", "scratchnet.port", str(src), str(dst)], check=True)
    out = json.loads(dst.read_text())
    assert out["cells"][0] == nb["cells"][0]  # markdown untouched
    code = out["cells"][1]
    assert code["source"] == "import scratchnet as torch\nprint(torch.ones(2) * 3)"
    assert code["outputs"] == [] and code["execution_count"] is None
    run = subprocess.run([sys.executable, "-c", code["source"]], capture_output=True,
                         text=True, check=True)
    assert run.stdout == "tensor([3., 3.])\n"
    assert port_notebook(nb)["cells"][1]["source"] == code["source"]
