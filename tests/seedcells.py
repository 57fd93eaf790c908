"""The seed notebook's code cells, ported to scratchnet by the import lines alone
(``scratchnet.port``), and a Jupyter-like runner for them (tests/test_seed.py).

The seed (``tests/seed/000_f6b39f2976603ebe.txt``, a copy of the project's
``shared/seeds`` file) is an exported d2l notebook: each code cell follows a line
``In [None]:`` and runs until the next cell, a markdown heading or the end
(``scratchnet.port.cells_from_export``).
"""
import ast
import contextlib
import io
import pathlib

from scratchnet.port import IMPORTS, cells_from_export, port  # noqa: F401 (used by tests)

SEED = pathlib.Path(__file__).parent / "seed" / "000_f6b39f2976603ebe.txt"


def code_cells(text=None):
    """Every code cell of the seed, in order (the two ``pip install`` cells included)."""
    return cells_from_export(SEED.read_text(encoding="utf-8") if text is None else text)


def run_cell(code, namespace):
    """Run ``code`` as Jupyter does: statements, then the value of a final expression
    shown by its repr. Returns what the cell printed.

    The one IPython magic the book's cells use, ``%matplotlib inline`` (figures shown
    below the cell, never as text), becomes ``pass``: figures here go to matplotlib's
    Agg backend and print nothing either way. Any other magic stays, and is a
    SyntaxError."""
    code = "\n".join("pass  # " + line if line.strip() == "%matplotlib inline" else line
                     for line in code.split("\n"))
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
            if value is not None:
                print(repr(value))
    return out.getvalue()


def notebooks_build():
    """notebooks/build.py as a module: the notebooks' items, their build and their export
    to the section scripts (tests/test_notebooks.py, tests/test_examples.py)."""
    import importlib.util
    import sys
    if "notebooks_build" not in sys.modules:
        path = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "build.py"
        spec = importlib.util.spec_from_file_location("notebooks_build", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["notebooks_build"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["notebooks_build"]


def shown(cell):
    """What a notebook code cell printed and showed, as ``run_cell`` returns it."""
    text = ""
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream" and out["name"] == "stdout":
            text += out["text"]
        elif out["output_type"] == "execute_result":
            text += out["data"]["text/plain"] + "\n"
    return text
