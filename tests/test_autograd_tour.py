"""examples/autograd_tour.py and the pictures in docs/autograd.md, and
``trace(model, X, expand=True)``: the layers inside each Residual block and the order
backward visits them, read from the autograd tape."""
import re
import runpy
import struct

import numpy as np
import pytest

import scratchnet as sn
from conftest import ROOT
from helpers import dev
from scratchnet import nn
from scratchnet.models import Residual, ResNet18
from scratchnet.trace import trace

TOUR = ROOT / "examples" / "autograd_tour.py"
PICTURES = ("autograd_micrograd.png", "autograd_residual.png", "autograd_lenet.png")


def png_size(path):
    """(width, height) of a PNG file; fails on anything that is not a whole PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82"), f"{path} is cut short"
    return struct.unpack(">II", data[16:24])


def test_tour_prints_the_same_numbers_three_ways_and_draws_both_graphs(device, tmp_path,
                                                                       capsys):
    runpy.run_path(str(TOUR))["main"](["--out", str(tmp_path), "--device", device])
    out = capsys.readouterr().out
    diffs = re.findall(r"max relative difference, (\w+) vs (\w+): (\S+)", out)
    # manual vs tape, manual vs torch, tape vs torch; for the Residual block, then LeNet
    assert [(a, b) for a, b, _ in diffs] == [("manual", "tape"), ("manual", "torch"),
                                            ("tape", "torch")] * 2
    assert all(float(d) < 1e-10 for _, _, d in diffs), diffs
    assert "y = -20, dy/dx = 46" in out  # micrograd's example
    assert "leaf X (2, 3, 8, 8)  <- sums 2 gradients" in out  # both paths of the block
    assert "AccumulateGrad  X (2, 3, 8, 8)  (again" in out  # PyTorch's graph: the same
    assert "backward_order: 5 4 3 2.relu2 2.bn2 2.conv2 2.relu1 2.bn1 2.conv1 2.conv3" in out
    # Written atomically: the two pictures and no temp file beside them.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PICTURES)
    for name in PICTURES:
        # The pictures in the docs are the ones this code draws (regenerate them with
        # `python examples/autograd_tour.py`): the same figure, so the same size.
        assert png_size(tmp_path / name) == png_size(ROOT / "docs" / "img" / name), name


def test_docs_embed_the_pictures():
    text = (ROOT / "docs" / "autograd.md").read_text()
    for name in PICTURES:
        assert f"(img/{name})" in text and (ROOT / "docs" / "img" / name).is_file()


def small_resnet():
    """A stem, a Residual with the identity shortcut, one with the 1x1 conv3, a head."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Residual(4), Residual(8, True, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


MAIN = ["conv1", "bn1", "relu1", "conv2", "bn2"]
BACKWARD = ["relu2", "bn2", "conv2", "relu1", "bn1", "conv1"]  # Residual.backward's order


def test_expand_shows_every_layer_of_resnet18_and_the_order_backward_visits_them():
    sn.manual_seed(0)
    model = ResNet18()
    x = sn.backend.rng().standard_normal((2, 1, 32, 32)).astype(np.float32)
    report = trace(model, x, expand=True)
    names = [r["name"] for r in report.rows]
    expected = ["net.last.2", "net.last.1", "net.last.0"]
    for block in [f"net.b{i}.{j}" for i in (5, 4, 3, 2) for j in (1, 0)]:
        conv3 = ["conv3"] if block in ("net.b3.0", "net.b4.0", "net.b5.0") else []
        i = names.index(block)
        assert report.rows[i]["layer"] == "Residual" and report.rows[i]["depth"] == 0
        assert report.rows[i]["bwd_step"] is None  # a block is not one op on the tape
        inner = MAIN + conv3 + ["relu2"]  # forward order
        assert names[i + 1:i + 1 + len(inner)] == [f"{block}.{k}" for k in inner]
        assert all(r["depth"] == 1 for r in report.rows[i + 1:i + 1 + len(inner)])
        expected += [f"{block}.{k}" for k in BACKWARD + conv3]
    expected += ["net.0.3", "net.0.2", "net.0.1", "net.0.0"]
    # The tape's reverse topological order is the order Residual.backward was written in:
    # relu2, the main path, then the 1x1 conv3 whose gradient is summed with conv1's.
    assert report.backward_order == expected
    assert report.backward_source.startswith("the autograd tape")
    for r in report.rows:
        if r["layer"] != "Residual":
            assert r["bwd_step"] == expected.index(r["name"]) + 1, r["name"]
    block, conv3 = names.index("net.b3.0"), names.index("net.b3.0.conv3")
    assert report.rows[conv3]["in_shape"] == report.rows[block]["in_shape"]  # the skip path
    assert report.total("params") == model.num_parameters()
    lines = str(report).splitlines()
    assert lines[1].rstrip().endswith("bwd #")
    assert any(line.startswith("  net.b3.0.conv3 Conv2d ") for line in lines)


def test_expand_rows_add_up_to_their_block_and_leave_the_model_as_found(device):
    sn.manual_seed(0)
    model = small_resnet()
    x = dev(sn.backend.rng().standard_normal((2, 1, 8, 8)).astype(np.float32))
    model(x)  # materialise
    for p in model.parameters():
        p.grad = dev(np.full(p.shape, 0.5, np.float32))
    state = {k: sn.to_numpy(v).copy() for k, v in model.state_dict().items()}
    report = trace(model, x, expand=True, repeat=2)
    # Left as found: no wrapped method, no cache; gradients and statistics put back.
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(sn.to_numpy(v), state[k], err_msg=k)
    assert all(np.all(sn.to_numpy(p.grad) == 0.5) for p in model.parameters())
    for m in model.modules():
        assert not {"forward", "backward", "_cache"} & {k for k, v in m.__dict__.items()
                                                       if v is not None}
    rows = report.rows
    for b in (1, 2):
        i = [r["name"] for r in rows].index(str(b))
        inner = [r for r in rows[i + 1:] if r["name"].startswith(f"{b}.")]
        for key in ("params", "fwd_flops", "bwd_flops"):
            assert sum(r[key] for r in inner) == rows[i][key], (b, key)
        by_name = {r["name"].split(".")[1]: r for r in inner}
        for a, c in zip(MAIN, MAIN[1:]):  # the main path: each output feeds the next
            assert by_name[a]["out_shape"] == by_name[c]["in_shape"]
        assert by_name["conv1"]["in_shape"] == rows[i]["in_shape"]
        assert by_name["relu2"]["out_shape"] == rows[i]["out_shape"]
        assert all(r["bwd_s"] > 0 and r["grad_norm"] > 0 for r in inner)
    assert report.backward_order == ["5", "4", "3"] + [f"2.{k}" for k in BACKWARD] + \
        ["2.conv3"] + [f"1.{k}" for k in BACKWARD] + ["0"]
    # The same gradients as the model's own backward give, layer by layer.
    labels = dev(np.random.default_rng(0).integers(0, 3, 2))  # the trace's own labels
    loss = nn.CrossEntropyLoss()
    loss(model(x), labels)
    model.zero_grad()
    model.backward(loss.backward())
    for r in rows:
        layer = model
        for k in r["name"].split("."):
            layer = getattr(layer, k) if not k.isdigit() else layer[int(k)]
        w = layer._parameters.get("weight")
        if w is not None and r["depth"] == 1:
            norm = float(np.sqrt((sn.to_numpy(w.grad).astype(np.float64) ** 2).sum()))
            assert r["weight_grad_norm"] == pytest.approx(norm, rel=1e-5), r["name"]


def test_expand_false_prints_as_before():
    sn.manual_seed(0)
    model = small_resnet()
    x = sn.backend.rng().standard_normal((2, 1, 8, 8)).astype(np.float32)
    model(x)
    plain, expanded = trace(model, x), trace(model, x, expand=True)
    assert [r["layer"] for r in plain.rows] == ["Conv2d", "Residual", "Residual",
                                                "AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert all("depth" not in r and "bwd_step" not in r for r in plain.rows)
    assert plain.backward_order is None and "bwd #" not in str(plain)
    assert len(str(plain).splitlines()) == len(plain.rows) + 5
    top = [r for r in expanded.rows if r["depth"] == 0]
    for a, b in zip(plain.rows, top):
        for k in ("name", "layer", "in_shape", "out_shape", "params", "fwd_flops",
                  "bwd_flops", "cache_bytes"):
            assert a[k] == b[k], k
        for k in ("grad_norm", "weight_grad_norm"):
            if a[k] is None:  # a layer without a weight (pooling, Flatten) has no norm
                assert b[k] is None, k
            else:
                assert a[k] == pytest.approx(b[k], rel=1e-6), k
    for k in ("params", "fwd_flops", "bwd_flops"):
        assert plain.total(k) == expanded.total(k)
    assert plain.cache_bytes_total == expanded.cache_bytes_total


class ClippedConv(nn.Module):
    """A block whose forward calls an array method the tape's Tensor does not have."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        self.y = self.conv(x).clip(0, None)
        return self.y

    def backward(self, gy):
        return self.conv.backward(gy * (self.y > 0))


def test_a_block_the_tape_cannot_record_gets_the_manual_order():
    model = nn.Sequential(ClippedConv(), nn.Flatten(), nn.Linear(16, 3))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    report = trace(model, x, expand=True)
    assert report.backward_order == ["2", "1", "0.conv"]
    assert report.backward_source.startswith("this trace's manual backward")
    assert "could not record" in str(report)
