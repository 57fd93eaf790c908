"""scratchnet.port: the imports become scratchnet's (or are warned about), pip and conda
lines are commented out, and nothing else changes, in scripts and in notebooks."""
import json
import subprocess
import sys

import pytest
from seedcells import code_cells

import scratchnet
import scratchnet.data
from scratchnet.port import (IMPORTS, MODULES, Note, port, port_notebook,
                             port_notebook_with_report, port_with_report)

BOOK = """import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l

def f():
    import torch.nn.functional as F
    return F.relu(torch.ones(2))  # import torch stays in a comment
print("import torch")"""

NOTE = ("# scratchnet.port: commented out: it installed {}; "
        "scratchnet needs neither d2l nor torch")


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
    assert ported[6] == "    from scratchnet.nn import functional as F"  # indent kept
    assert port_with_report(BOOK)[1].warnings == []


def test_import_torch_in_a_string_or_a_comment_is_no_import():
    code = '"""A docstring:\nimport torch\nfrom torchvision import transforms\n"""\n' \
           'x = "import torch"  # import torch\n# from torch.utils import data'
    ported, report = port_with_report(code)
    assert ported == code
    assert report.imports == report.warnings == report.commented == []


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


# pip and conda lines ---------------------------------------------------------------------

PIP_CELL = """!pip install d2l==1.0.3
%pip install -q torch==2.0.0 torchvision==0.15.1
pip install d2l==1.0.3
!python -m pip install --upgrade \\
    numpy==1.23
%conda install -c pytorch pytorch
import torch
print(torch.ones(2))"""


def uncommented_shell_lines(code):
    return [line for line in code.splitlines()
            if line.lstrip().startswith(("!", "%", "pip ", "conda "))]


def test_pip_cells_of_a_notebook_are_commented_out_and_the_cell_runs(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Setup"},
                    {"cell_type": "code", "metadata": {}, "outputs": [],
                     "execution_count": 1, "source": PIP_CELL}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    src, dst = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    src.write_text(json.dumps(nb))
    run = subprocess.run([sys.executable, "-m", "scratchnet.port", str(src), str(dst)],
                         capture_output=True, text=True, check=True)
    cell = json.loads(dst.read_text())["cells"][1]["source"]
    assert uncommented_shell_lines(PIP_CELL) and uncommented_shell_lines(cell) == []
    lines = cell.splitlines()
    assert lines[:4] == [NOTE.format("d2l==1.0.3"), "# !pip install d2l==1.0.3",
                         NOTE.format("torch==2.0.0 torchvision==0.15.1"),
                         "# %pip install -q torch==2.0.0 torchvision==0.15.1"]
    assert lines[7:10] == ["# !python -m pip install --upgrade \\", "    # numpy==1.23",
                           NOTE.format("pytorch")]  # the continuation line too
    compile(cell, "cell", "exec")
    ran = subprocess.run([sys.executable, "-c", cell], capture_output=True, text=True)
    assert (ran.returncode, ran.stdout) == (0, "tensor([1., 1.])\n"), ran.stderr
    # The summary lists each command with its cell (the 2nd from the top) and line.
    assert "scratchnet.port: 5 pip/conda lines commented out" in run.stderr
    for where in ("cell 2, line 1: !pip install d2l==1.0.3",
                  "cell 2, line 3: pip install d2l==1.0.3",
                  "cell 2, line 6: %conda install -c pytorch pytorch"):
        assert f"\n  {where}\n" in run.stderr, run.stderr
    assert "scratchnet.port: 1 import line changed" in run.stderr


def test_a_pip_line_in_a_block_leaves_the_block_a_statement():
    ported = port("if True:\n    !pip install d2l==1.0.3\nx = 1")
    assert ported.splitlines()[1:3] == ["    pass  " + NOTE.format("d2l==1.0.3"),
                                        "    # !pip install d2l==1.0.3"]
    compile(ported, "cell", "exec")


def test_pip_lines_of_a_script_are_commented_out_and_comments_stay(tmp_path):
    script = tmp_path / "chapter.py"
    script.write_text("# !pip install d2l==1.0.3\n"  # jupytext's export: already a comment
                      "pip install torch==2.0.0\n"
                      "import torch\n"
                      "print(torch.ones(1))\n")
    run = subprocess.run([sys.executable, "-m", "scratchnet.port", str(script)],
                         capture_output=True, text=True, check=True)
    assert run.stdout.splitlines() == ["# !pip install d2l==1.0.3",
                                       NOTE.format("torch==2.0.0"),
                                       "# pip install torch==2.0.0",
                                       "import scratchnet as torch",
                                       "print(torch.ones(1))"]
    compile(run.stdout, "script", "exec")
    assert "\n  line 2: pip install torch==2.0.0\n" in run.stderr
    assert "line 1:" not in run.stderr


def test_the_seeds_pip_cells_are_commented_out():
    first, second = (port(cell).splitlines() for cell in code_cells()[:2])
    assert first[:2] == [NOTE.format("torch==2.0.0 torchvision==0.15.1"),
                         "# pip install torch==2.0.0 torchvision==0.15.1"]
    assert second == [NOTE.format("d2l==1.0.3"), "# pip install d2l==1.0.3"]


# imports ---------------------------------------------------------------------------------

CONVERTED = [
    ("import torch", "import scratchnet as torch"),
    ("import torch as t", "import scratchnet as t"),
    ("from torch import nn", "from scratchnet import nn"),
    ("import torch.nn as nn", "from scratchnet import nn"),
    ("import torch.nn.functional as F", "from scratchnet.nn import functional as F"),
    ("from torch.nn import functional as F",
     "from scratchnet.nn import functional as F"),
    ("from torch.nn import functional", "from scratchnet.nn import functional"),
    ("import torch.nn.functional", "import scratchnet as torch"),
    ("import torch.nn", "import scratchnet as torch"),
    ("from torch import optim", "from scratchnet import optim"),
    ("import torch.optim as optim", "from scratchnet import optim"),
    ("from torch import nn, optim as opt", "from scratchnet import nn, optim as opt"),
    ("from torch.nn import Conv2d, ReLU", "from scratchnet.nn import Conv2d, ReLU"),
    ("from torch.nn import functional as F, Linear",
     "from scratchnet.nn import functional as F, Linear"),
    ("import numpy as np, torch", "import numpy as np; import scratchnet as torch"),
    ("from d2l import torch as d2l", "from scratchnet import d2l"),
    ("import d2l.torch as d2l", "from scratchnet import d2l"),
    ("from torch.utils import data", "from scratchnet.utils import data"),
    ("import torch.utils.data as data", "from scratchnet.utils import data"),
    ("import torch.utils.data", "import scratchnet as torch"),
    ("from torch.utils.data import TensorDataset, DataLoader",
     "from scratchnet.utils.data import TensorDataset, DataLoader"),
    ("from torch.distributions.multinomial import Multinomial",
     "from scratchnet.distributions.multinomial import Multinomial"),
    ("from torch.distributions import multinomial",
     "from scratchnet.distributions import multinomial"),
    ("import torchvision", "from scratchnet import torchvision"),
    ("import torchvision.transforms", "from scratchnet import torchvision"),
    ("import torchvision as tv", "from scratchnet import torchvision as tv"),
    ("from torchvision import transforms", "from scratchnet.torchvision import transforms"),
    ("import torchvision.transforms as T", "from scratchnet.torchvision import transforms as T"),
    ("from torchvision import datasets, transforms",
     "from scratchnet.torchvision import datasets, transforms"),
    ("from torchvision.transforms import Resize, ToTensor",
     "from scratchnet.torchvision.transforms import Resize, ToTensor"),
]


@pytest.mark.parametrize("line, want", CONVERTED)
def test_each_import_spelling_is_converted(line, want):
    ported, report = port_with_report(f"x = 1\n{line}")
    assert ported == f"x = 1\n{want}"
    assert report.imports == [Note(2, line, want)] and report.warnings == []


@pytest.mark.parametrize("line, want", [c for c in CONVERTED if "d2l" not in c[0]])
def test_a_converted_import_binds_what_pytorchs_binds(line, want):
    """The same names, bound to scratchnet's counterparts of PyTorch's modules
    (torchvision's where torchvision is installed)."""
    pytest.importorskip("torch")
    if "torchvision" in line:
        pytest.importorskip("torchvision")
    theirs, ours = {}, {}
    exec(line, theirs)
    exec(want, ours)
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        if name != "__builtins__":  # a module is its counterpart, a class has its name
            want_name = MODULES.get(value.__name__, value.__name__)
            assert ours[name].__name__ == want_name, name
    if line == "import torch.nn.functional":  # used as torch.nn.functional.relu(...)
        assert ours["torch"].nn.functional.relu is scratchnet.nn.functional.relu


TORCHVISION = ("scratchnet's torchvision has only datasets.FashionMNIST, datasets.MNIST and "
               "transforms.Compose, Resize, ToTensor: rewrite the code that uses this with "
               "those, or load Fashion-MNIST with d2l.FashionMNIST(batch_size, resize) (from "
               "scratchnet import d2l)")
NO_DATA = ("scratchnet's torch.utils.data has only Dataset, TensorDataset, DataLoader and "
           "default_collate")
MXNET = "scratchnet ports d2l's PyTorch edition only"

WARNED = [
    ("import torchvision.models", TORCHVISION),
    ("import torchvision.models as models", TORCHVISION),
    ("from torchvision.models import resnet18", TORCHVISION),
    ("from torchvision import transforms, models", TORCHVISION),
    ("from torchvision.transforms import Normalize", TORCHVISION),
    ("from torch.utils.data import Sampler", NO_DATA),
    ("from torch.utils.data.sampler import BatchSampler", NO_DATA),
    ("from d2l import mxnet as d2l", MXNET),
    ("import d2l", MXNET),
    ("from torch import fft", "scratchnet has no torch.fft: delete this line"),
    ("import torch.fft", "scratchnet has no torch.fft: delete this line"),
    ("from torch.nn import Conv3d", "scratchnet has no torch.nn.Conv3d: delete this line"),
    ("import torch; import numpy as np", "it shares its line with other code or spans "
     "several lines: write it on a line of its own as `import scratchnet as torch`"),
    ("if True: import torch", "write it on a line of its own as `import scratchnet as torch`"),
]


@pytest.mark.parametrize("line, advice", WARNED)
def test_each_import_scratchnet_lacks_is_warned_and_left(line, advice):
    code = f"x = 1\n{line}\ny = 2"
    ported, report = port_with_report(code)
    assert ported == code and report.imports == []
    [warning] = report.warnings
    assert (warning.line, warning.text) == (2, line) and advice in warning.what
    assert str(warning).startswith(f"line 2: {line}: ")


def test_the_chapters_import_lines_are_all_converted():
    """Every import line of the PyTorch code of d2l's chapters 2-8 (IMPORTS) becomes
    scratchnet's, and each ported line imports."""
    for line, want in IMPORTS.items():
        ported, report = port_with_report(line)
        assert ported == want and report.warnings == [], line
        exec(ported, {})


def test_torch_utils_data_batches_with_scratchnet_datas_index_batches():
    """One DataLoader design: torch.utils.data's decides its batches as scratchnet.data's."""
    assert issubclass(scratchnet.utils.data.DataLoader, scratchnet.data.loader.IndexBatches)
    assert issubclass(scratchnet.data.DataLoader, scratchnet.data.loader.IndexBatches)


def test_the_exact_warning_names_line_and_cell():
    nb = {"cells": [{"cell_type": "markdown", "source": "# 7.1"},
                    {"cell_type": "code",
                     "source": "import torch\nimport torchvision.models\n"}]}
    ported, report = port_notebook_with_report(nb)
    assert [str(w) for w in report.warnings] == [
        "cell 2, line 2: import torchvision.models: " + TORCHVISION]
    assert report.imports == [Note(1, "import torch", "import scratchnet as torch", cell=2)]
    assert ported["cells"][1]["source"] == ("import scratchnet as torch\n"
                                            "import torchvision.models")


def test_a_multi_line_import_is_warned_with_its_scratchnet_spelling():
    code = "from torch.nn import (Conv2d,\n                      ReLU)"
    ported, report = port_with_report(code)
    assert ported == code
    assert [str(w) for w in report.warnings] == [
        "line 1: from torch.nn import (Conv2d,: it shares its line with other code or spans "
        "several lines: write it on a line of its own as "
        "`from scratchnet.nn import Conv2d, ReLU`"]


def test_a_trailing_comment_and_the_indentation_stay():
    code = ("import torch  # the tensor library\n"
            "def f():\n"
            "    import torch.nn as nn   # layers\n"
            "    return nn")
    assert port(code).splitlines() == ["import scratchnet as torch  # the tensor library",
                                       "def f():",
                                       "    from scratchnet import nn   # layers",
                                       "    return nn"]


def test_a_cell_that_is_not_python_is_ported_line_by_line():
    code = "%%time\nimport torch\nx = !ls\nfrom torchvision import models\nimport torchvision"
    ported, report = port_with_report(code)
    assert ported == "%%time\nimport scratchnet as torch\nx = !ls\nfrom torchvision import " \
                     "models\nfrom scratchnet import torchvision"
    assert [(w.line, w.what) for w in report.warnings] == [(4, TORCHVISION)]


# the command -----------------------------------------------------------------------------

def test_the_command_prints_a_summary_to_stderr(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import torch\nfrom torch import nn\nfrom torch import fft\n")
    run = subprocess.run([sys.executable, "-m", "scratchnet.port", str(script)],
                         capture_output=True, text=True, check=True)
    assert run.stdout == "import scratchnet as torch\nfrom scratchnet import nn\n" \
                         "from torch import fft\n"
    assert run.stderr.splitlines() == [
        "scratchnet.port: 2 import lines changed to scratchnet's",
        "scratchnet.port: 0 pip/conda lines commented out",
        "scratchnet.port: 1 warning (these lines stay as written):",
        "  line 3: from torch import fft: scratchnet has no torch.fft: delete this line "
        "and rewrite the code that uses it (docs/porting.md says what scratchnet covers)"]


def bad_sources(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / "nocells.ipynb").write_text('{"metadata": {}}')
    (tmp_path / "notes.txt").write_text("import torch\n")
    (tmp_path / "folder.ipynb").mkdir()
    return [("missing.ipynb", "missing.ipynb: no such file"),
            ("missing.py", "missing.py: no such file"),
            ("folder.ipynb", "folder.ipynb: is a directory"),
            ("broken.ipynb", "broken.ipynb: not a valid notebook (invalid JSON"),
            ("nocells.ipynb", "nocells.ipynb: not a valid notebook (no list of cells)"),
            ("notes.txt", "notes.txt: not a .ipynb notebook or a .py script")]


def test_a_source_it_cannot_port_is_one_line_and_exit_status_2(tmp_path):
    for name, problem in bad_sources(tmp_path):
        run = subprocess.run([sys.executable, "-m", "scratchnet.port", name,
                              str(tmp_path / "out.ipynb")],
                             capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 2, (name, run.stderr)
        assert run.stderr.startswith(f"python -m scratchnet.port: error: {problem}"), \
            run.stderr
        assert len(run.stderr.splitlines()) == 1 and run.stdout == "", run.stderr
    assert not (tmp_path / "out.ipynb").exists()
