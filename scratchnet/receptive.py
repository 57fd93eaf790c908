"""Receptive fields (d2l 7.2.6): which input pixels each layer's outputs can see.

    print(receptive_fields(LeNet(), (28, 28)))

For each layer, per axis (h, w), with ``k_eff = d*(k - 1) + 1`` the dilated
kernel, ``s`` the stride and ``p`` the padding before the first row/column:

    j_out     = j_in * s                            jump: input pixels between
                                                    neighbouring outputs
    r_out     = r_in + (k_eff - 1) * j_in           receptive field size
    start_out = start_in + ((k_eff - 1)/2 - p) * j_in

starting from the input's ``j = 1, r = 1, start = 0``. Coordinates are pixel
indices, so ``start`` is the centre, in input pixels, of the field of the
first output (row 0, column 0); it is negative when padding shifts the field
out of the image, and ends in .5 for even kernels. Output (i, j) sees the
input rows ``start + i*jump -/+ (r - 1)/2``; near the border it sees at most
that box clipped to the image, and :func:`field_box` gives the exact box.

Layers are the leaves of ``model.net`` / the Sequential tree in forward
order (as :func:`scratchnet.trace.leaf_layers`), and each says how it moves
the field: its ``receptive_geometry()`` lists the windows it slides
(Conv2d, Conv1d, MaxPool2d, AvgPool2d), [] for a layer that keeps each
position (activations, BatchNorm, Dropout), or ``WHOLE_INPUT``. A ResNet
``Residual`` block gives its main path's windows (two 3x3 convolutions, the
first with the block's stride), whose field contains the skip path's. The
table stops at the first ``WHOLE_INPUT`` layer (Flatten, Linear,
AdaptiveAvgPool2d): beyond it every unit sees the whole image.
"""
from . import nn
from .nn.module import WHOLE_INPUT
from .trace import leaf_layers

__all__ = ["receptive_fields", "field_box", "ReceptiveReport"]


def _step(state, k, s, p, p_hi, d):
    """One r/j/start recurrence step along one axis; state = (r, j, start, size)."""
    r, j, start, size = state
    k_eff = d * (k - 1) + 1
    size = (size + p + p_hi - k_eff) // s + 1
    return r + (k_eff - 1) * j, j * s, start + ((k_eff - 1) / 2 - p) * j, size


def _layers(model, h, w):
    """[(path, layer, [(axis steps (k, s, p, p_hi, d) for h, for w), ...]), ...] up to
    the first layer whose geometry is WHOLE_INPUT."""
    out = []
    for path, layer in leaf_layers(model):
        geometry = layer.receptive_geometry()
        if geometry == WHOLE_INPUT:
            break
        if geometry is None:
            raise ValueError(f"receptive_fields: cannot follow {path} ({layer.name}): it "
                             "does not describe its receptive_geometry()")
        if isinstance(layer, nn.Conv1d) and h != 1:
            raise ValueError(f"receptive_fields: {path} is a Conv1d; give the input size as "
                             "its length L (an int) or (1, L)")
        steps = []
        for kernel, stride, pad, pad_hi, dil in geometry:
            steps.append(tuple((kernel[a], stride[a], pad[a], pad_hi[a], dil[a])
                               for a in range(2)))
        out.append((path, layer, steps))
    return out


def _input_size(input_size):
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) < 2:
        raise ValueError(f"receptive_fields: expected an (H, W) input size, got {input_size}")
    return input_size[-2:]


def receptive_fields(model, input_size):
    """Per layer: receptive field (h, w), jump (h, w), start (h, w) and output size (h, w).

    ``input_size``: (H, W), an int for a square image or a Conv1d's length, or a
    full input shape (N, C, H, W) / (C, H, W), of which the last two are used.
    Returns a ReceptiveReport (``.rows``, and a table when printed).
    """
    h, w = _input_size(input_size)
    axes = [(1, 1, 0.0, h), (1, 1, 0.0, w)]
    rows = []
    for path, layer, steps in _layers(model, h, w):
        for step in steps:
            axes = [_step(axes[a], *step[a]) for a in range(2)]
        if min(axes[0][3], axes[1][3]) < 1:
            raise ValueError(f"receptive_fields: {path} ({layer.name}) leaves no output for "
                             f"an input of {h}x{w}")
        rows.append({"name": path, "layer": layer.name,
                     "rf": (axes[0][0], axes[1][0]), "jump": (axes[0][1], axes[1][1]),
                     "start": (axes[0][2], axes[1][2]), "out_size": (axes[0][3], axes[1][3])})
    return ReceptiveReport(rows, (h, w))


def field_box(model, input_size, unit, layer=-1):
    """The exact input box ((row lo, row hi), (col lo, col hi)) that output ``unit`` = (i, j)
    of table row ``layer`` (default the last) depends on; None if it sees only padding.

    Inside the image this is the receptive field centred at start + unit * jump. At
    the border it can be smaller than that field clipped to the image: a window of
    an inner layer that hangs over its padding reads no pixel there, and pixels a
    floor-mode output size leaves out are read by no one. It follows the index sets
    back layer by layer: window a of a layer reads a*s - p + t*d, t = 0..k-1.
    """
    h, w = _input_size(input_size)
    layers = _layers(model, h, w)
    layers = layers[:len(layers) + layer + 1 if layer < 0 else layer + 1]
    steps, sizes = [], [(h, w)]
    for _, _, layer_steps in layers:
        for step in layer_steps:
            steps.append(step)
            sizes.append(tuple(_step((1, 1, 0.0, sizes[-1][a]), *step[a])[3] for a in range(2)))
    box = []
    for a in range(2):
        need = {int(unit[a])}
        if not 0 <= unit[a] < sizes[-1][a]:
            raise ValueError(f"field_box: unit {tuple(unit)} is outside the {sizes[-1]} output")
        for step, size in zip(reversed(steps), reversed(sizes[:-1])):
            k, s, p, _, d = step[a]
            need = {i * s - p + t * d for i in need for t in range(k)}
            need = {i for i in need if 0 <= i < size[a]}
        if not need:
            return None
        box.append((min(need), max(need)))
    return tuple(box)


def _num(v):
    return f"{v:g}"


class ReceptiveReport:
    """Rows: name, layer, rf, jump, start, out_size, each (h, w) but name and layer."""

    def __init__(self, rows, input_size):
        self.rows = rows
        self.input_size = input_size

    def __str__(self):
        head = ["layer", "out size", "receptive field", "jump", "start"]
        body = [[f"{r['name']} {r['layer']}", "x".join(map(str, r["out_size"])),
                 "x".join(map(str, r["rf"])), "x".join(map(str, r["jump"])),
                 f"({_num(r['start'][0])}, {_num(r['start'][1])})"] for r in self.rows]
        widths = [max(len(c[i]) for c in body + [head]) for i in range(len(head))]

        def line(cells):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        h, w = self.input_size
        out = [f"receptive fields on a {h}x{w} input (start: centre of output (0, 0)'s "
               "field, in input pixels)", line(head), "-" * len(line(head))]
        return "\n".join(out + [line(c) for c in body])

    def print(self, file=None):
        print(self, file=file)

    def __repr__(self):
        return f"ReceptiveReport({len(self.rows)} layers)"
