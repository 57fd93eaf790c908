"""receptive: the r/j/start recurrence checked against brute force.

The brute force perturbs one input pixel at a time (a batch of one-hot images
in float64) and sees which pixels change an output unit. Every weight is
positive (1/fan_in) and every bias zero, so no contribution can cancel: ReLU
passes the positive sums, max pooling passes the one hot pixel, a sigmoid
moves away from 0.5. The bounding box of the pixels that matter must be the
computed field, centred at start + index * jump and clipped to the image.
"""
import numpy as np
import pytest

import scratchnet as sn
from scratchnet import nn
from scratchnet.models import LeNet, Residual, vgg_block
from scratchnet.receptive import field_box, receptive_fields


def positive(model, in_shape):
    """Materialise ``model`` in float64 with weights 1/fan_in, zero biases, in eval mode."""
    model.double().eval()  # lazy layers take float64 from the first input
    with sn.no_grad():
        model(np.zeros((2,) + in_shape))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data[...] = 1.0 / np.prod(m.weight.data.shape[1:])
            if m.bias is not None:
                m.bias.data[...] = 0.0
    return model


def influence(model, in_shape):
    """(outputs for each one-hot image, outputs for the zero image), output channel 0."""
    *_, h, w = in_shape
    X = np.zeros((h * w + 1,) + in_shape)
    flat = X[:-1].reshape(h * w, -1, h * w)
    flat[np.arange(h * w), :, np.arange(h * w)] = 1.0
    with sn.no_grad():
        Y = model(X)[:, 0]
    if Y.ndim == 2:  # Conv1d: (N, L) -> (N, 1, L)
        Y = Y[:, None, :]
    return Y[:-1], Y[-1]


def box(Y, base, unit, hw):
    """Bounding box ((row lo, row hi), (col lo, col hi)) of the pixels that move ``unit``."""
    i, j = unit
    moved = np.abs(Y[:, i, j] - base[i, j]) > 1e-12 * max(1.0, abs(base[i, j]))
    rows, cols = np.nonzero(moved.reshape(hw))
    assert rows.size, f"no input pixel moves output {unit}"
    return (rows.min(), rows.max()), (cols.min(), cols.max())


def theoretical(row, unit):
    """The computed field of ``unit``: start + unit * jump -/+ (r - 1) / 2, per axis."""
    out = []
    for a in range(2):
        c = row["start"][a] + unit[a] * row["jump"][a]
        half = (row["rf"][a] - 1) / 2
        assert c - half == int(c - half) and c + half == int(c + half)
        out.append((int(c - half), int(c + half)))
    return tuple(out)


def check(model, in_shape):
    """Compare the last row of the table with brute force; return that row.

    A unit whose field lies inside the image sees exactly that field; a unit at
    the border sees a part of it clipped to the image, exactly field_box's.
    """
    model = positive(model, in_shape)
    hw = in_shape[-2:] if len(in_shape) == 3 else (1, in_shape[-1])
    row = receptive_fields(model, hw).rows[-1]
    Y, base = influence(model, in_shape)
    assert tuple(Y.shape[1:]) == row["out_size"]
    oh, ow = row["out_size"]
    mid = (oh // 2, ow // 2)
    inside = 0
    for unit in [(0, 0), mid, (min(mid[0] + 1, oh - 1), mid[1]),
                 (mid[0], min(mid[1] + 1, ow - 1)), (oh - 1, ow - 1), (0, ow - 1)]:
        got, want = box(Y, base, unit, hw), theoretical(row, unit)
        assert got == field_box(model, hw, unit), unit
        if all(0 <= want[a][0] and want[a][1] < hw[a] for a in range(2)):
            assert got == want, unit
            inside += 1
        for a in range(2):
            assert max(want[a][0], 0) <= got[a][0] <= got[a][1] <= min(want[a][1], hw[a] - 1)
    assert inside, "no unit's field lies inside the image: use a larger input"
    # Neighbouring units inside the image: boxes one jump apart, each the field's size.
    for a in range(2):
        nxt = list(mid)
        nxt[a] = min(nxt[a] + 1, row["out_size"][a] - 1)
        b0, b1 = box(Y, base, mid, hw)[a], box(Y, base, tuple(nxt), hw)[a]
        assert b1[0] - b0[0] == row["jump"][a] * (nxt[a] - mid[a])
        assert b0[1] - b0[0] + 1 == row["rf"][a]
    return row


def test_lenet_conv_part():
    row = check(LeNet().net[:6], (1, 28, 28))
    assert row["rf"] == (16, 16) and row["jump"] == (4, 4) and row["out_size"] == (5, 5)


def test_lenet_table_stops_at_flatten():
    report = receptive_fields(LeNet(), (28, 28))
    assert [r["layer"] for r in report.rows][-1] == "AvgPool2d"
    assert len(report.rows) == 6
    lines = str(report).splitlines()
    assert len(lines) == 3 + 6 and "16x16" in lines[-1]


def test_vgg_blocks():
    row = check(nn.Sequential(vgg_block(1, 2), vgg_block(2, 2)), (1, 32, 32))
    assert row["rf"] == (14, 14) and row["jump"] == (4, 4)


def test_two_stacked_3x3_see_5x5():
    """Exercise 7.4.5: two 3x3 convolutions have the field of one 5x5."""
    row = check(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3)), (1, 12, 12))
    assert row["rf"] == (5, 5) and row["jump"] == (1, 1) and row["start"] == (2, 2)


def test_dilation():
    row = check(nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.ReLU(),
                              nn.Conv2d(2, 2, 3, padding=1, dilation=(1, 3))), (1, 20, 20))
    assert row["rf"] == (7, 11)


def test_stride_padding_and_max_pool():
    row = check(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(),
                              nn.MaxPool2d(3, stride=2, padding=1),
                              nn.Conv2d(2, 2, 3, stride=(2, 1))), (1, 33, 33))
    assert row["jump"] == (8, 4) and row["rf"] == (15, 15)


def test_asymmetric_kernel_and_same_padding():
    """The book's kernel (3, 5), padding (0, 1), stride (3, 4); then an even 'same' kernel,
    whose odd padding goes after the last row, as in PyTorch."""
    row = check(nn.Sequential(nn.Conv2d(1, 2, (3, 5), padding=(0, 1), stride=(3, 4)),
                              nn.Conv2d(2, 2, (2, 4), padding="same"),
                              nn.AvgPool2d((2, 1))), (1, 30, 30))
    assert row["rf"] == (9, 17) and row["jump"] == (6, 4)


def test_residual_blocks_batchnorm_eval():
    row = check(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                              Residual(3, use_1x1conv=True, strides=2), Residual(3)),
                (1, 24, 24))
    assert row["rf"] == (17, 17) and row["jump"] == (2, 2)


def test_conv1d():
    row = check(nn.Sequential(nn.Conv1d(1, 2, 5, stride=2), nn.Tanh(),
                              nn.Conv1d(2, 2, 3, dilation=2)), (1, 40))
    assert row["rf"] == (1, 13) and row["jump"] == (1, 2)


def test_square_int_and_full_shape_agree():
    model = LeNet()
    a = receptive_fields(model, 28).rows
    assert a == receptive_fields(model, (28, 28)).rows
    assert a == receptive_fields(model, (1, 1, 28, 28)).rows


def test_unknown_layer_is_refused():
    class Odd(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="cannot follow"):
        receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 3), Odd()), 8)


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match="leaves no output"):
        receptive_fields(nn.Sequential(nn.Conv2d(1, 1, 5), nn.Conv2d(1, 1, 5)), 6)


def test_field_box_at_the_border_is_smaller_than_the_clipped_field():
    """Output (0, 0)'s dilated second window hangs over the first layer's padding: the
    pixels that window would read (columns 0 and 1) reach the output by no other path."""
    model = positive(nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2),
                                   nn.Conv2d(1, 1, 3, padding=1, dilation=(1, 3))), (1, 20, 20))
    row = receptive_fields(model, 20).rows[-1]
    assert theoretical(row, (0, 0)) == ((-1, 5), (-1, 9))
    assert field_box(model, 20, (0, 0)) == ((0, 5), (2, 9))
    Y, base = influence(model, (1, 20, 20))
    assert box(Y, base, (0, 0), (20, 20)) == ((0, 5), (2, 9))
    assert field_box(model, 20, (0, 0), layer=0) == ((0, 4), (0, 4))


def test_field_box_of_a_unit_that_sees_only_padding():
    assert field_box(nn.Sequential(nn.Conv2d(1, 1, 3, padding=3)), 4, (0, 0)) is None
    with pytest.raises(ValueError, match="outside"):
        field_box(nn.Sequential(nn.Conv2d(1, 1, 3)), 4, (2, 0))
