"""im2col drawn: the picture of docs/conv_backward.md, a 3x3 input and a 2x2 kernel.

    python examples/draw_im2col.py                # writes docs/img/im2col.png
    python examples/draw_im2col.py --out /tmp     # into another folder

Each 2x2 window of the input becomes one column of the matrix col (4x4), headed by the
output pixel it makes; row (i, j) holds what kernel entry K[i,j] multiplies
(``sn.viz.plot_im2col``). Prints the matrix it drew.
"""
import argparse
import pathlib

import numpy as np

import scratchnet as sn

ROOT = pathlib.Path(__file__).resolve().parents[1]
X = np.array([[1., 2., 0.],
              [0., 1., 3.],
              [2., 1., 1.]])  # the page's input


def folder(text):
    """--out: a folder, or a path where one can be made."""
    path = pathlib.Path(text)
    existing = next(q for q in (path, *path.parents) if q.exists() or q == q.parent)
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder")
    return path


p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--out", type=folder, default=ROOT / "docs" / "img",
               help="folder for im2col.png (default: docs/img)")
args = p.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
path, col, rows, columns = sn.viz.plot_im2col(X, (2, 2), args.out / "im2col.png")
print(f"wrote {path}")
print("rows", rows, "columns", columns)
print(col)
