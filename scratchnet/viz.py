"""Pictures (PNG): how training went (the loss and accuracy curves, gradient norms)
and what the network learned (first-layer kernels, feature maps).

    viz.plot_history(trainer.history, "curves.png")
    viz.plot_kernels(model.net[0].weight.data, "kernels.png")
    viz.plot_feature_maps(model, image, "feature_maps.png")

matplotlib is imported only when a function is called; figures are bare matplotlib
Figures (Agg: no screen, pyplot's backend untouched, so Jupyter's stays inline).
"""
import io
import sys

import numpy as np

from . import backend
from .figures import save_figure, subplots
from .nn import Module, Parameter
from .nn.conv import Conv1d, Conv2d
from .ops.im2col import im2col
from .trace import leaf_layers


def jupyter_shell():
    """The IPython shell when running in a Jupyter kernel, else None."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if shell is not None and "IPKernelApp" in shell.config else None


class LiveFigure:
    """A figure shown in a Jupyter cell's output and redrawn in place at each ``show``
    (an IPython display handle: the cell's printed lines stay, the picture updates);
    the last picture stays in the output. A new cell gets a new picture."""

    def __init__(self):
        self.handle, self.cell = None, None

    def show(self, fig):
        from IPython import display
        shell = jupyter_shell()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        image = display.Image(data=buf.getvalue(), format="png")
        if self.handle is None or self.cell != shell.execution_count:
            self.handle = display.display(image, display_id=True)
            self.cell = shell.execution_count
        else:
            self.handle.update(image)


def plot_history(history, path):
    """The d2l board: losses and accuracies against epochs (a Trainer's history), as a PNG."""
    return save_figure(history_figure(history), path)


def history_figure(history):
    """The figure of :func:`plot_history` (a Trainer in Jupyter shows it live)."""
    fig, ax = subplots(figsize=(5, 3.5))
    draw_history(ax, history)
    return fig


def draw_history(ax, history, title=None):
    """A Trainer's history (one dict per epoch) on the matplotlib axes ``ax``: the losses
    and accuracies against epochs."""
    epochs = [r["epoch"] for r in history]
    styles = {"train_loss": "-", "val_loss": "--", "train_acc": "-.", "val_acc": ":"}
    for key, style in styles.items():
        if key in history[0]:
            ax.plot(epochs, [r[key] for r in history], style, label=key)
    ax.set_xlabel("epoch")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)


def draw_grad_norms(ax, grad_norms, title=None, labels=None):
    """One line per layer (first layer darkest) of weight-gradient norm against step,
    log scale, on the matplotlib axes ``ax``."""
    import matplotlib
    layers = []
    for row in grad_norms:
        layers += [k for k in row if k != "step" and k not in layers]
    cmap = matplotlib.colormaps["viridis"]
    for i, name in enumerate(layers):
        points = [(r["step"], r[name]) for r in grad_norms if r.get(name, 0) > 0]
        if points:
            steps, norms = zip(*points)
            ax.plot(steps, norms, color=cmap(0.9 * i / max(len(layers) - 1, 1)),
                    label=(labels or {}).get(name, name))
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weight gradient norm")
    ax.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title)
    # Below the axes: inside, any corner would hide some layer's line.
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3,
              frameon=False)
    return ax


def plot_grad_norms(grad_norms, path, title=None, labels=None):
    """Trainer.grad_norms as a PNG at ``path`` (see :func:`draw_grad_norms`)."""
    if not grad_norms:
        raise ValueError("plot_grad_norms: no rows; train with Trainer(grad_norms_every=N)")
    fig, ax = subplots(figsize=(6, 4.5))
    draw_grad_norms(ax, grad_norms, title, labels)
    return save_figure(fig, path)


def _grid(n, cols):
    cols = min(cols, n)
    return int(np.ceil(n / cols)), cols


def plot_kernels(weight, path, title="first-layer kernels", cols=8, names=None):
    """One grey image per (output channel, input channel 0) kernel of a conv weight
    (out, in, kh, kw), on a common colour scale centred at 0 (blue < 0 < red).
    ``weight`` may also be a Conv2d layer, or a model: its first Conv2d's."""
    k = _conv_kernels(weight)[:, 0]
    rows, cols = _grid(len(k), cols)
    lim = float(np.abs(k).max()) or 1.0
    fig, axes = subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(k):
            ax.imshow(k[i], cmap="bwr", vmin=-lim, vmax=lim)
            ax.set_title(names[i] if names else f"{i}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _conv_kernels(what):
    """The weight (out, in, kh, kw) of ``what`` as a host array: a Conv2d weight (an array
    or a Parameter), a Conv2d layer, or a model holding one (its first); else an error
    saying what plot_kernels takes and what it got."""
    want = ("plot_kernels: expected a Conv2d weight of shape (out, in, kh, kw), a Conv2d layer, "
            "or a model containing one; got")
    w = what
    if isinstance(what, Module):
        convs = [m for m in what.modules()
                 if isinstance(m, Conv2d) and not isinstance(m, Conv1d)]
        if not convs:
            raise ValueError(f"{want} a {what.name} with no Conv2d in it")
        w = convs[0].weight
    if isinstance(w, Parameter):
        if w.array is None:
            raise ValueError("plot_kernels: the Conv2d's weight is not initialised yet (a "
                             "lazy layer); run one forward first")
        w = w.array
    a = backend.to_numpy(w)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{want} {type(what).__name__}")
    if a.ndim != 4:
        raise ValueError(f"{want} an array of shape {a.shape}")
    return a


def conv_outputs(model, x):
    """(name, feature maps) after every Conv2d of a Sequential model, for one forward."""
    maps = []
    with backend.no_grad():
        h = x
        for name, layer in leaf_layers(model):
            h = layer(h)
            if isinstance(layer, Conv2d):
                maps.append((f"{name} {layer.name}", backend.to_numpy(h)))
    return maps


def plot_feature_maps(model, image, path, max_maps=16):
    """The input image and the feature maps of every convolution for it (model in eval)."""
    img = np.asarray(backend.to_numpy(image))
    x = img.reshape((1, 1) + img.shape[-2:]).astype(backend.get_default_dtype())
    was_training = model.training
    model.eval()
    try:
        maps = conv_outputs(model, backend.to_device(x))
    finally:
        model.train(was_training)
    cols = max_maps
    fig, axes = subplots(len(maps) + 1, cols, figsize=(1.1 * cols, 1.25 * (len(maps) + 1)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(x[0, 0], cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    for r, (name, fm) in enumerate(maps, start=1):
        for c in range(min(cols, fm.shape[1])):
            axes[r, c].imshow(fm[0, c], cmap="viridis")
        axes[r, 0].set_title(name, fontsize=8, loc="left")
    return save_figure(fig, path)


def plot_kernel_pair(learned, handmade, path, labels=("learned", "hand-made")):
    """Two small kernels side by side on one colour scale (d2l 7.2.4: [1, -1])."""
    a, b = (np.atleast_2d(backend.to_numpy(k)) for k in (learned, handmade))
    lim = float(max(np.abs(a).max(), np.abs(b).max())) or 1.0
    fig, axes = subplots(1, 2, figsize=(4.5, 1.8))
    for ax, k, label in zip(axes, (a, b), labels):
        ax.imshow(k, cmap="bwr", vmin=-lim, vmax=lim)
        for (i, j), v in np.ndenumerate(k):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=9)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)


def plot_im2col(x, kernel_size, path):
    """im2col of one small image, drawn: the image x (H, W) with each window (p, q)
    outlined in a colour of its own, beside the column matrix

        col[(i, j), (p, q)] = x[p + i, q + j]      (stride 1, no padding)

    whose column (p, q) is window (p, q) read row by row, headed by the output pixel
    Y[p,q] it makes, and whose row (i, j) holds what kernel entry K[i,j] multiplies:
    Y = K.reshape(1, kh*kw) @ col. It is ``ops.im2col``'s (C*kh*kw, N*oh*ow) matrix for
    one image of one channel; ``teach.im2col``'s col2 is its transpose.

    Returns (path, col, row_labels, column_labels): col (kh*kw, oh*ow) as drawn,
    the labels "K[i,j]" and "Y[p,q]" as printed on its rows and columns.
    """
    try:
        kh, kw = (kernel_size,) * 2 if np.ndim(kernel_size) == 0 else kernel_size
    except (TypeError, ValueError):  # not a pair
        kh = kw = None
    if not all(isinstance(k, (int, np.integer)) for k in (kh, kw)):
        raise ValueError(f"plot_im2col: expected kernel_size as an int or a (kh, kw) pair, "
                         f"got {kernel_size!r}")
    kh, kw = int(kh), int(kw)
    a = np.asarray(backend.to_numpy(x))
    if a.dtype.kind not in "biuf" or a.ndim != 2:
        raise ValueError(f"plot_im2col: expected x as one image (H, W) of numbers, got "
                         f"{a.dtype} values of shape {a.shape}")
    if not (1 <= kh <= a.shape[0] and 1 <= kw <= a.shape[1]):
        raise ValueError(f"plot_im2col: expected a kernel from 1x1 up to the image's size "
                         f"{a.shape}, got kernel {(kh, kw)}")
    H, W = a.shape
    oh, ow = H - kh + 1, W - kw + 1
    # ops.im2col's (C, kh, kw, N, oh, ow) for one image of one channel: column (p, q) is
    # window x[p:p + kh, q:q + kw] read row by row
    col = im2col(a.astype(np.float64)[None, None], kh, kw, 1, 1, (0, 0, 0, 0)).reshape(
        kh * kw, oh * ow)
    rows = [f"K[{i},{j}]" for i in range(kh) for j in range(kw)]
    cols = [f"Y[{p},{q}]" for p in range(oh) for q in range(ow)]

    import matplotlib
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle
    colours = [matplotlib.colormaps["tab10"](k % 10) for k in range(oh * ow)]

    def text(v):
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.2g}"

    def cell(ax, r, c, v, face="white"):
        ax.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="0.3", lw=0.8))
        ax.text(c + 0.5, r + 0.5, text(v), ha="center", va="center", fontsize=11)

    # One axes for both, so a cell of x and a cell of col are the same size; the
    # matrix starts right of x, past room for its row labels.
    x0, top = W + 2.0, -0.8
    fig, ax = subplots(figsize=(0.8 * (x0 + oh * ow) + 0.4, 0.8 * (max(H, kh * kw) - top)))
    for r in range(H):
        for c in range(W):
            cell(ax, r, c, a[r, c])
    for k, (p, q) in enumerate((p, q) for p in range(oh) for q in range(ow)):
        inset = 0.06 + 0.1 * k / max(1, oh * ow - 1)  # overlapping windows stay apart
        ax.add_patch(Rectangle((q + inset, p + inset), kw - 2 * inset, kh - 2 * inset,
                               fill=False, edgecolor=colours[k], lw=2.5))
    for r in range(kh * kw):
        ax.text(x0 - 0.15, r + 0.5, rows[r], ha="right", va="center", fontsize=10)
        for c in range(oh * ow):
            cell(ax, r, x0 + c, col[r, c], to_rgba(colours[c], 0.25))
    for c in range(oh * ow):
        ax.text(x0 + c + 0.5, -0.1, cols[c], ha="center", va="bottom", fontsize=10,
                color=colours[c], fontweight="bold")
    ax.text(W / 2, top, f"x ({H}x{W}), the {oh * ow} windows of a {kh}x{kw} kernel",
            ha="center", va="bottom", fontsize=10)
    ax.text(x0 + oh * ow / 2, top, f"col ({kh * kw}x{oh * ow}), a column per window",
            ha="center", va="bottom", fontsize=10)
    ax.set_xlim(-0.1, x0 + oh * ow + 0.1)
    ax.set_ylim(max(H, kh * kw) + 0.1, top - 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    return save_figure(fig, path), col, rows, cols
