"""Port d2l's PyTorch code to scratchnet: its imports become scratchnet's, its pip lines
are commented out, and nothing else changes.

    python -m scratchnet.port chapter.ipynb chapter_scratchnet.ipynb
    python -m scratchnet.port script.py            # prints the ported script

What changes, in a notebook's code cells or in a script (docs/porting.md says what runs
underneath):

- Imports of torch, torch.nn, torch.nn.functional, torch.optim, torch.utils.data,
  torch.distributions, torchvision (its datasets and transforms) and d2l's PyTorch
  edition, however they are spelled, become scratchnet's. Indentation and a trailing
  comment stay:

      import torch                      ->  import scratchnet as torch
      from torch import nn              ->  from scratchnet import nn
      import torch.nn as nn             ->  from scratchnet import nn
      import torch.nn.functional as F   ->  from scratchnet.nn import functional as F
      from torch.nn import functional   ->  from scratchnet.nn import functional
      from torch import optim           ->  from scratchnet import optim
      from torch.utils import data      ->  from scratchnet.utils import data
      from torch.distributions.multinomial import Multinomial
                        ->  from scratchnet.distributions.multinomial import Multinomial
      import torchvision                ->  from scratchnet import torchvision
      from torchvision import transforms  ->  from scratchnet.torchvision import transforms
      from d2l import torch as d2l      ->  from scratchnet import d2l

- An import of torch, torchvision or d2l that scratchnet has nothing for (torch.fft,
  torchvision.models, d2l's MXNet edition, a name scratchnet lacks), or that shares its
  line with other code, stays as written, with a warning that says what to do instead.
- pip and conda lines (``!pip install d2l==1.0.3``, ``%pip ...``, ``pip install ...``,
  ``!python -m pip ...``, ``!conda install ...``) are commented out, under a note saying
  what they installed: run, they would install PyTorch and downgrade NumPy under
  scratchnet, which needs neither d2l nor torch.
- Everything else stays as written, strings and comments that mention torch included.

The command prints a summary to stderr: how many import lines changed, the pip/conda lines
commented out, and each warning with its line number (in a notebook also its cell: the
Nth cell from the top, markdown cells counted). From Python, ``port(code)`` returns the
ported code and ``port_with_report(code)`` returns it with the ``Report``.
"""
import argparse
import ast
import dataclasses
import importlib
import json
import pathlib
import re
import sys
import typing

from .io import atomic_write_text

# The lines d2l's chapters write, and what they become (every other spelling of these
# imports is converted too: see convert_import).
IMPORTS = {
    "import torch": "import scratchnet as torch",
    "from torch import nn": "from scratchnet import nn",
    "from torch.nn import functional as F": "from scratchnet.nn import functional as F",
    "import torch.nn.functional as F": "from scratchnet.nn import functional as F",
    "from d2l import torch as d2l": "from scratchnet import d2l",
    "from torch.distributions.multinomial import Multinomial":
        "from scratchnet.distributions.multinomial import Multinomial",
    "import torchvision": "from scratchnet import torchvision",
    "from torchvision import transforms": "from scratchnet.torchvision import transforms",
}

# The modules of PyTorch and d2l that scratchnet has, and where they live in scratchnet.
MODULES = {
    "torch": "scratchnet",
    "torch.nn": "scratchnet.nn",
    "torch.nn.functional": "scratchnet.nn.functional",
    "torch.optim": "scratchnet.optim",
    "torch.utils": "scratchnet.utils",
    "torch.utils.data": "scratchnet.utils.data",
    "torch.distributions": "scratchnet.distributions",
    "torch.distributions.multinomial": "scratchnet.distributions.multinomial",
    "torchvision": "scratchnet.torchvision",
    "torchvision.datasets": "scratchnet.torchvision.datasets",
    "torchvision.transforms": "scratchnet.torchvision.transforms",
    "d2l.torch": "scratchnet.d2l",
}

# Imports of these packages are converted or warned about; other imports stay silently.
PACKAGES = ("torch", "torchvision", "d2l")

# What to do instead of an import scratchnet has nothing for, by what it imports.
ADVICE = {
    "torchvision": "scratchnet's torchvision has only datasets.FashionMNIST, "
                   "datasets.MNIST and transforms.Compose, Resize, ToTensor: rewrite the "
                   "code that uses this with those, or load Fashion-MNIST with "
                   "d2l.FashionMNIST(batch_size, resize) (from scratchnet import d2l)",
    "torch.utils.data": "scratchnet's torch.utils.data has only Dataset, TensorDataset, "
                        "DataLoader and default_collate: rewrite the code that uses this "
                        "with those",
    "d2l": "scratchnet ports d2l's PyTorch edition only: start from the book's PyTorch "
           "code, whose `from d2l import torch as d2l` becomes `from scratchnet import d2l`",
}

# A pip or conda command: a shell escape (!) or magic (%) running pip, conda, mamba,
# python -m pip or uv pip, or IPython's automagic without either (`pip install ...`).
PIP_LINE = re.compile(r"""
    [!%] \s* (?: pip3? | conda | mamba | micromamba | uv \s+ pip
               | (?: python[\d.]* | \{sys\.executable\} ) \s+ -m \s+ pip ) \b
  | (?: pip3? | conda | mamba ) \s+ (?: install | uninstall | list | show | freeze
                                   | download | update | upgrade | remove | create ) \b
""", re.VERBOSE)

NEEDS_NEITHER = "scratchnet needs neither d2l nor torch"


class Note(typing.NamedTuple):
    """A line the porter changed or left with a warning."""
    line: int           # 1-based, in the code as given (in a notebook: in its cell)
    text: str           # the line as written, without its indentation
    what: str           # what the porter wrote instead, or (a warning) what to do
    cell: typing.Optional[int] = None  # in a notebook: the cell's place from the top, 1-based

    def where(self):
        return (f"cell {self.cell}, " if self.cell is not None else "") + f"line {self.line}"

    def __str__(self):
        return f"{self.where()}: {self.text}: {self.what}"


@dataclasses.dataclass
class Report:
    """What ``port_with_report`` did: the import lines it converted, the pip/conda lines it
    commented out, and the warnings about the imports it left as written."""
    imports: list = dataclasses.field(default_factory=list)
    commented: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)

    def add(self, other, cell=None):
        """Add ``other``'s notes, marked with their notebook ``cell``."""
        for mine, theirs in ((self.imports, other.imports), (self.commented, other.commented),
                             (self.warnings, other.warnings)):
            mine.extend(note._replace(cell=cell) for note in theirs)

    def summary(self):
        """The report in a few lines, as the command prints it."""
        lines = [f"scratchnet.port: {_count(self.imports, 'import line')} changed to "
                 "scratchnet's",
                 f"scratchnet.port: {_count(self.commented, 'pip/conda line')} commented out"
                 + (f" ({NEEDS_NEITHER}):" if self.commented else "")]
        lines += [f"  {note.where()}: {note.text}" for note in self.commented]
        lines.append(f"scratchnet.port: {_count(self.warnings, 'warning')}"
                     + (" (these lines stay as written):" if self.warnings else ""))
        lines += [f"  {note}" for note in self.warnings]
        return "\n".join(lines)


def _count(notes, noun):
    return f"{len(notes)} {noun}{'' if len(notes) == 1 else 's'}"


def port(code):
    """``code`` ported to scratchnet (see the module's docstring); the warnings are in
    ``port_with_report(code)``."""
    return port_with_report(code)[0]


def port_with_report(code):
    """(``code`` ported to scratchnet, the ``Report`` of what changed and what did not)."""
    lines = code.splitlines()
    report = Report()
    pip = pip_lines(lines)
    imports = import_statements(lines, pip)
    out = []
    for i, line in enumerate(lines):
        if i in pip:
            out += comment_out(line, pip[i], i + 1, report)
        elif i in imports:
            out.append(port_import_line(line, imports[i], i + 1, report))
        else:
            out.append(line)
    return "\n".join(out), report


# pip and conda lines ---------------------------------------------------------------------

def pip_lines(lines):
    """{index: the command} of each pip or conda line, and None for the lines that continue
    one (after a trailing backslash)."""
    found, i = {}, 0
    while i < len(lines):
        if PIP_LINE.match(lines[i].lstrip()):
            start = i
            while lines[i].rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                found[i] = None
            found[start] = " ".join(line.strip().rstrip("\\").strip()
                                    for line in lines[start:i + 1])
        i += 1
    return found


def comment_out(line, command, number, report):
    """The commented-out ``line``, under a note saying what it ran (a continuation line,
    whose ``command`` is None, gets no note of its own). A note on an indented line starts
    with ``pass``, so that a block holding only the command still has a statement."""
    indent = line[:len(line) - len(line.lstrip())]
    commented = [f"{indent}# {line.lstrip()}"]
    if command is None:
        return commented
    note = f"scratchnet.port: commented out: {what_it_ran(command)}; {NEEDS_NEITHER}"
    report.commented.append(Note(number, line.strip(), note))
    return [f"{indent}{'pass  ' if indent else ''}# {note}"] + commented


def what_it_ran(command):
    """'it installed d2l==1.0.3' for ``!pip install d2l==1.0.3``; 'it ran `...`' for a
    command that installs nothing."""
    words = command.lstrip("!%").split()
    if "install" not in words:
        return f"it ran `{command}`"
    packages, skip = [], False
    for word in words[words.index("install") + 1:]:
        if not skip and not word.startswith("-"):
            packages.append(word.strip("'\""))
        skip = word in ("-c", "--channel", "-i", "--index-url", "--extra-index-url", "-r",
                        "--requirement", "-f", "--find-links")
    return f"it installed {' '.join(packages) or 'packages'}"


# imports ---------------------------------------------------------------------------------

def import_statements(lines, pip):
    """{index: [(ast node, its source)]} of the imports of torch, torchvision and d2l, by
    the line they start on. The code is parsed whole (IPython's ! and % lines and the
    ``pip`` lines read as ``pass``), so that a string or a comment saying ``import torch``
    is no import; code that does not parse is read line by line."""
    source = "\n".join(_masked(line, pip.get(i, "")) for i, line in enumerate(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return _import_statements_line_by_line(lines, pip)
    found = {}
    for node in ast.walk(tree):
        if _imports_ours(node):
            found.setdefault(node.lineno - 1, []).append(
                (node, ast.get_source_segment(source, node)))
    return found


def _masked(line, command):
    """``line`` as Python reads it: ``pass`` for an IPython ! or % line or a pip line, and
    nothing for the line continuing a pip command (whose ``command`` is None)."""
    if command is None:
        return ""
    if command or line.lstrip().startswith(("!", "%")):
        return line[:len(line) - len(line.lstrip())] + "pass"
    return line


def _import_statements_line_by_line(lines, pip):
    """``import_statements`` of code that does not parse (an IPython ``x = !ls``, a
    ``%%bash`` cell, a typo): each line starting with ``import`` or ``from``, on its own."""
    found = {}
    for i, line in enumerate(lines):
        if i in pip or not re.match(r"(import|from)\s", line.lstrip()):
            continue
        code = _code_part(line)
        try:
            nodes = ast.parse(code).body
        except SyntaxError:  # `from torch.nn import (Conv2d,` and the like: warn
            if any(re.search(rf"\b{p}\b", code) for p in PACKAGES):
                found[i] = [(None, code)]
            continue
        ours = [(node, ast.get_source_segment(code, node)) for node in nodes
                if _imports_ours(node)]
        if ours:
            found[i] = ours
    return found


def _imports_ours(node):
    """Whether ``node`` is an import of torch, torchvision or d2l."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
        names = [node.module]
    else:
        return False
    return any(name.split(".")[0] in PACKAGES for name in names)


def _code_part(line):
    """The line without its indentation and trailing comment (an import holds no '#')."""
    return line.split("#", 1)[0].strip()


def port_import_line(line, statements, number, report):
    """``line`` with its import converted, if it is one import alone on its line that
    scratchnet has; otherwise ``line`` as it is, and a warning for each import on it."""
    if len(statements) == 1:
        node, source = statements[0]
        new = convert_import(node)[0]
        alone = node is not None and node.end_lineno == node.lineno
        if new is not None and alone and _code_part(line) == source:
            stripped = line.lstrip()  # the import, then any comment after it
            ported = line[:len(line) - len(stripped)] + new + stripped[len(source):]
            report.imports.append(Note(number, line.strip(), ported.strip()))
            return ported
    for node, source in statements:
        new, advice = convert_import(node)
        if new is not None:
            advice = (f"it shares its line with other code or spans several lines: write "
                      f"it on a line of its own as `{new}`")
        report.warnings.append(Note(number, line.strip(), advice))
    return line


def convert_import(node):
    """(scratchnet's spelling of the import ``node``, None), or (None, what to do) when
    scratchnet has nothing for it. A node of None is an import that did not parse."""
    if node is None:
        return None, ("the porter could not read this import: write it on one line and "
                      "port again, or change it by hand")
    if isinstance(node, ast.Import):
        return _convert_plain_import(node)
    return _convert_from_import(node)


def _convert_plain_import(node):
    """``import torch``, ``import torch.nn as nn``, ``import torch.nn.functional``, ..."""
    parts = []
    for alias in node.names:
        top = alias.name.split(".")[0]
        if top not in PACKAGES:  # `import numpy` next to torch's
            parts.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname
                                                   else ""))
        elif alias.asname is not None and alias.name in MODULES:
            parts.append(_import_as(MODULES[alias.name], alias.asname))
        elif alias.asname is None and _reachable(alias.name):
            parts.append(_import_as(MODULES[top], top))  # binds `torch`, as it did
        else:
            return None, advice_for(alias.name)
    return "; ".join(parts), None


def _import_as(module, name):
    """``from scratchnet import nn`` for ("scratchnet.nn", "nn"): the statement that binds
    ``name`` to scratchnet's ``module``."""
    parent, _, leaf = module.rpartition(".")
    if not parent:
        return f"import {module} as {name}"
    return f"from {parent} import {leaf}" + (f" as {name}" if name != leaf else "")


def _reachable(name):
    """Whether ``import scratchnet as torch`` gives ``name`` (a dotted torch name, such as
    torch.nn.functional) as an attribute (or ``from scratchnet import torchvision`` a
    torchvision name)."""
    first, *rest = name.split(".")
    if first not in ("torch", "torchvision"):
        return False
    obj = importlib.import_module(MODULES[first])
    for attr in rest:
        if attr.startswith("_") or not hasattr(obj, attr):
            return False
        obj = getattr(obj, attr)
    return True


def _convert_from_import(node):
    """``from torch import nn``, ``from torch.nn import functional as F``, ..."""
    pieces = []  # (scratchnet's module, "name" or "name as alias")
    for alias in node.names:
        full = f"{node.module}.{alias.name}"
        if full in MODULES:  # a module: from torch.nn import functional
            module, _, name = MODULES[full].rpartition(".")
        elif node.module in MODULES and _has(MODULES[node.module], alias.name):
            module, name = MODULES[node.module], alias.name
        else:
            return None, advice_for(full)
        asname = alias.asname or alias.name
        pieces.append((module, name if asname == name else f"{name} as {asname}"))
    statements = []
    for module, name in pieces:
        if statements and statements[-1][0] == module:
            statements[-1][1].append(name)
        else:
            statements.append((module, [name]))
    return "; ".join(f"from {module} import {', '.join(names)}"
                     for module, names in statements), None


def _has(module, name):
    """Whether scratchnet's ``module`` has ``name`` (``*``: everything in its __all__)."""
    if name == "*":
        return True
    try:
        found = importlib.import_module(module)
    except ImportError:  # a module listed in MODULES that this install lacks
        return False
    return not name.startswith("_") and hasattr(found, name)


def advice_for(name):
    """What to do instead of importing ``name`` (torch.cuda, torchvision.transforms, ...),
    which scratchnet does not have."""
    for prefix, advice in ADVICE.items():
        if (name == prefix or name.startswith(prefix + ".")) and not name.startswith(
                "d2l.torch"):
            return advice
    return (f"scratchnet has no {name}: delete this line and rewrite the code that uses it "
            f"(docs/porting.md says what scratchnet covers)")


# notebooks -------------------------------------------------------------------------------

def cells_from_export(text):
    """The code cells of a notebook exported as text (each after a line ``In [...]:``,
    up to the next cell, a markdown heading or the end), as the project's seed is."""
    cells, cur = [], None
    for line in text.splitlines():
        if line.startswith("In [") and line.rstrip().endswith("]:"):
            if cur is not None:
                cells.append(cur)
            cur = []
        elif cur is not None and line.startswith(("## ", "### ", "# **")):
            cells.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    if cur is not None:
        cells.append(cur)
    return ["\n".join(c).strip("\n") for c in cells]


def port_notebook(nb):
    """A notebook (the parsed .ipynb JSON) with every code cell ported, outputs dropped."""
    return port_notebook_with_report(nb)[0]


def port_notebook_with_report(nb):
    """(the ported notebook, the ``Report`` of all its cells, each note with its cell
    number: the cell's place from the top, 1-based, markdown cells counted)."""
    out, report = dict(nb, cells=[]), Report()
    for number, cell in enumerate(nb["cells"], 1):
        cell = dict(cell)
        if cell["cell_type"] == "code":
            source = cell["source"]
            source = "".join(source) if isinstance(source, list) else source
            ported, cell_report = port_with_report(source)
            report.add(cell_report, cell=number)
            cell.update(source=ported, outputs=[], execution_count=None)
        out["cells"].append(cell)
    return out, report


# the command -----------------------------------------------------------------------------

class PortError(Exception):
    """A source the command cannot port: the message names the file and the problem."""


def port_file(path):
    """(the ported text of the notebook or script at ``path``, the ``Report``)."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise PortError(f"{path}: is a directory, not a .ipynb notebook or a .py script")
    if path.suffix not in (".ipynb", ".py"):
        raise PortError(f"{path}: not a .ipynb notebook or a .py script")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PortError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise PortError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise PortError(f"{path}: cannot read it ({e.strerror or e})") from None
    if path.suffix == ".py":
        return port_with_report(text)
    nb, report = port_notebook_with_report(read_notebook(text, path))
    return json.dumps(nb, indent=1, ensure_ascii=False), report


def read_notebook(text, path):
    """The notebook JSON in ``text``, checked to have what porting reads."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        raise PortError(f"{path}: not a valid notebook (invalid JSON: {e.msg} at line "
                        f"{e.lineno})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise PortError(f"{path}: not a valid notebook (no list of cells)")
    for number, cell in enumerate(cells, 1):
        if not (isinstance(cell, dict) and isinstance(cell.get("cell_type"), str)
                and (cell["cell_type"] != "code"
                     or isinstance(cell.get("source"), (str, list)))):
            raise PortError(f"{path}: not a valid notebook (cell {number} has no cell_type "
                            "or no source)")
    return nb


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m scratchnet.port", description=__doc__.split(
        "\n")[0])
    p.add_argument("source", help="a .ipynb notebook or a .py script")
    p.add_argument("target", nargs="?", help="where to write the ported copy "
                   "(default: print it)")
    args = p.parse_args(argv)
    try:
        text, report = port_file(args.source)
    except PortError as e:  # one line, as argparse's errors, without the usage
        p.exit(2, f"{p.prog}: error: {e}\n")
    if args.target is None:
        sys.stdout.write(text + "\n")
    else:
        try:
            atomic_write_text(args.target, text + "\n")
        except OSError as e:
            p.exit(2, f"{p.prog}: error: {args.target}: cannot write it ({e.strerror or e})\n")
    print(report.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
