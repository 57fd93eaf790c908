"""Run the Python examples of a page in docs/ as a reader would, block by block.

The convention the pages follow (tests/test_docs.py runs every page with it):

- a ```python fence is run, in page order, in ONE namespace per page, from a temporary
  directory, after the seeds below; what it prints is captured;
- a bare ``` fence directly after a ```python block (only blank lines between) is that
  block's output, compared line by line (trailing spaces ignored);
- a ```python quote=PATH fence quotes the project's source: it is not run, and its text
  must occur in PATH (relative to the repository root), indented as there or dedented;
- ```python mask=ms: the block prints times (a trace's fwd ms and bwd ms columns): its
  numbers with exactly two decimals are not compared, nor the width of the spaces;
- other fences (```bash, ```text ...) are not run.

Each block is compiled under the page's name with the page's line numbers, and the page
is put in ``linecache``, so a traceback, or the tape's "made by" column, points at the
page's own line (``autograd.md:57  y = h + q + q * x``).
"""
import contextlib
import io
import linecache
import os
import pathlib
import random
import re
import tempfile
import textwrap
from dataclasses import dataclass

from scratchnet.io import atomic_write_text

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^\s*```(.*)$")


@dataclass
class Block:
    info: str          # what follows the opening ``` ("python", "python quote=...", "")
    code: str
    line: int          # 1-based line of the opening fence
    end: int = 0       # 1-based line of the closing fence
    indent: int = 0    # the fence's indentation (a block inside a list item)
    output: "Block" = None   # the bare block right after a python block

    @property
    def lang(self):
        return self.info.split()[0] if self.info.split() else ""

    def option(self, key):
        for word in self.info.split()[1:]:
            if word.startswith(key + "="):
                return word[len(key) + 1:]
        return None

    @property
    def quote(self):
        return self.option("quote")


def blocks(text):
    """The fenced blocks of a markdown text, each python block with its output block."""
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        start, body = i, []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        found.append((Block(m.group(1).strip(), "\n".join(body) + "\n", start + 1, i + 1,
                            indent), start, i))
        i += 1
    out = []
    for k, (block, start, end) in enumerate(found):
        if k and block.info == "" and found[k - 1][0].lang == "python" \
                and found[k - 1][0].quote is None \
                and all(not s.strip() for s in lines[found[k - 1][2] + 1:start]):
            found[k - 1][0].output = block
            continue
        out.append(block)
    return out


def seed_everything():
    import numpy as np
    import scratchnet as sn
    random.seed(0)
    np.random.seed(0)
    sn.manual_seed(0)
    try:
        import torch
        torch.manual_seed(0)
    except ImportError:
        pass


TIME = re.compile(r"(?<![\w.])\d+\.\d\d(?![\w.])")


def _normalise(s, mask=None):
    s = "\n".join(line.rstrip() for line in s.strip("\n").splitlines())
    if mask == "ms":
        s = re.sub(r" +", " ", TIME.sub("#", s))
    return s


def check_quote(block):
    """None when the quoted text occurs in its file, else what is wrong."""
    path = ROOT / block.quote
    if not path.is_file():
        return f"line {block.line}: quotes {block.quote}, which does not exist"
    source = path.read_text()
    # the quote may be indented less than the file's text (a method shown on its own)
    lines = textwrap.dedent(block.code.rstrip("\n")).splitlines()
    if any("\n".join(" " * pad + s if s else s for s in lines) in source for pad in range(13)):
        return None
    return f"line {block.line}: the quote no longer matches {block.quote}"


def run_page(path, printed=None):
    """Run the page's python blocks; returns a list of problems (empty when all agree).
    ``printed``, a dict, receives each run block's output under the block's line."""
    import matplotlib
    matplotlib.use("Agg")
    path = pathlib.Path(path)
    problems, namespace = [], {"__name__": "__docs__"}
    text = path.read_text()
    linecache.cache[path.name] = (len(text), None, text.splitlines(True), path.name)
    old = os.getcwd()
    from scratchnet import backend
    dtype = backend.get_default_dtype()  # a page may change it (float64 for its numbers)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            seed_everything()
            for block in blocks(text):
                if block.lang != "python":
                    continue
                if block.quote is not None:
                    problem = check_quote(block)
                    if problem:
                        problems.append(problem)
                    continue
                out = io.StringIO()
                try:
                    with contextlib.redirect_stdout(out):
                        exec(compile("\n" * block.line + block.code, path.name, "exec"),
                             namespace)
                except Exception as e:  # report which block broke, then stop the page
                    problems.append(f"line {block.line}: {type(e).__name__}: {e}")
                    break
                if printed is not None:
                    printed[block.line] = out.getvalue()
                mask = block.option("mask")
                if block.output is not None and _normalise(out.getvalue(), mask) != \
                        _normalise(block.output.code, mask):
                    problems.append(
                        f"line {block.line}: printed\n{out.getvalue()}\nbut the page "
                        f"shows (line {block.output.line})\n{block.output.code}")
                elif block.output is None and out.getvalue().strip():
                    problems.append(f"line {block.line}: printed\n{out.getvalue()}\nbut the "
                                    "page shows no output block after it")
        finally:
            os.chdir(old)
            backend.set_default_dtype(dtype)
            linecache.cache.pop(path.name, None)
            import matplotlib.pyplot as plt
            plt.close("all")
    return problems


def write_outputs(path):
    """Put what each block prints into the page, as its output block (for the page's
    author: ``python tests/docpages.py docs/PAGE.md``; then read the diff)."""
    path = pathlib.Path(path)
    printed = {}
    problems = [p for p in run_page(path, printed) if "printed" not in p]
    lines = path.read_text().splitlines()
    for block in sorted(blocks(path.read_text()), key=lambda b: -b.line):
        if block.line not in printed:
            continue
        pad = " " * block.indent
        text = [pad + s if s else s for s in printed[block.line].rstrip("\n").splitlines()]
        if block.output is not None:
            lines[block.output.line:block.output.end - 1] = text
        elif text:
            lines[block.end:block.end] = ["", pad + "```"] + text + [pad + "```"]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return problems


if __name__ == "__main__":
    import sys
    for page in sys.argv[1:]:
        for problem in write_outputs(page):
            print(f"{page}: {problem}")
