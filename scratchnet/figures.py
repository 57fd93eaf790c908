"""Bare matplotlib figures, saved atomically: the two helpers every picture of scratchnet
uses (viz's curves and kernels, the tape's graph). They sit low, beside io, so that the
tape can draw its graph without importing the layers that viz knows about.

matplotlib is imported only when a figure is made.
"""
import pathlib

from .io import atomic_write


def subplots(nrows=1, ncols=1, figsize=None, **kwargs):
    """(fig, axes) as ``plt.subplots`` gives them, on a bare matplotlib Figure: it draws
    with Agg into files or a notebook's output, opens no window and leaves pyplot's
    backend (Jupyter's inline one included) alone."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig, path, dpi=100):
    """Write ``fig`` to ``path`` as a PNG, atomically (io.atomic_write)."""
    fig.tight_layout()
    path = pathlib.Path(path)
    atomic_write(path, lambda f: fig.savefig(f, dpi=dpi, format="png"))
    return path
