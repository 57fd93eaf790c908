"""trace: the per-layer table agrees with the model's own forward and backward, counts
FLOPs and cached bytes as documented, and leaves the model as it found it."""
import numpy as np
import pytest

import scratchnet as sn
from helpers import dev
from scratchnet import nn
from scratchnet.models import LeNet, Residual
from scratchnet.trace import layer_flops, leaf_layers, trace


def lenet(modern=False, n=8):
    """LeNet and a batch, both on the active device."""
    model = LeNet(modern=modern)
    x = dev(sn.backend.rng().standard_normal((n, 1, 28, 28)).astype(np.float32))
    nn.init.apply_init(model, [x[:2]], None if modern else nn.init.init_cnn)
    return model, x


def norm(a):
    return float(np.sqrt((np.asarray(sn.to_numpy(a), dtype=np.float64) ** 2).sum()))


def test_rows_follow_the_layers_and_their_shapes(device):
    model, x = lenet()
    report = trace(model, x)
    assert [r["name"] for r in report.rows] == [f"net.{i}" for i in range(12)]
    h = x
    with sn.no_grad():
        for row, (_, layer) in zip(report.rows, leaf_layers(model)):
            assert row["layer"] == layer.name
            assert row["in_shape"] == h.shape
            h = layer(h)
            assert row["out_shape"] == h.shape
    assert report.rows[-1]["out_shape"] == (8, 10)


def test_parameter_counts_add_up(device):
    for modern in (False, True):
        model, x = lenet(modern)
        report = trace(model, x)
        assert sum(r["params"] for r in report.rows) == model.num_parameters()
        assert report.total("params") == model.num_parameters()


def test_conv_caches_its_column_buffer(device):
    model, x = lenet()
    rows = trace(model, x).rows
    for row in (rows[0], rows[3]):  # the two convolutions: col (C, kh, kw, N, oh, ow)
        n, c = row["in_shape"][:2]
        oh, ow = row["out_shape"][2:]
        assert row["cache_bytes"] == c * 5 * 5 * n * oh * ow * np.dtype(np.float32).itemsize
    # A sigmoid keeps its output, a Linear its input, average pooling only a shape.
    assert rows[1]["cache_bytes"] == x.shape[0] * 6 * 28 * 28 * 4
    assert rows[7]["cache_bytes"] == x.shape[0] * 400 * 4
    assert rows[2]["cache_bytes"] == 0


def test_total_cache_counts_a_shared_array_once(device):
    model, x = lenet()
    report = trace(model, x)
    # Each Sigmoid -> Linear pair keeps one array twice (the Sigmoid's output is the
    # Linear's input): (120 + 84) floats per image.
    shared = x.shape[0] * (120 + 84) * 4
    assert report.cache_bytes_total == sum(r["cache_bytes"] for r in report.rows) - shared


def test_gradient_norms_match_the_models_backward(device):
    model, x = lenet()
    gy = dev(sn.backend.rng().standard_normal((8, 10)).astype(np.float32))
    report = trace(model, x, gy=gy)
    model.zero_grad()
    model(x)
    gx = model.backward(gy)
    assert report.rows[0]["grad_norm"] == pytest.approx(norm(gx), rel=1e-6)
    for row, (_, layer) in zip(report.rows, leaf_layers(model)):
        w = layer._parameters.get("weight")
        if w is None:
            assert row["weight_grad_norm"] is None
        else:
            assert row["weight_grad_norm"] == pytest.approx(norm(w.grad), rel=1e-6)
    assert report.gy_source == "given gy" and report.loss is None


def test_first_layer_without_input_grad(device):
    model, x = lenet()
    conv = model.net[0]
    conv.needs_input_grad = False
    row = trace(model, x).rows[0]
    assert row["grad_norm"] is None
    assert row["bwd_flops"] == row["fwd_flops"]  # dL/dW only
    assert conv.needs_input_grad is False


def test_conv_and_linear_flops(device):
    conv = nn.Conv2d(3, 4, (3, 5), stride=2, padding=1)
    n, c, o, oh, ow = 2, 3, 4, 5, 5
    x = dev(np.ones((n, c, 9, 11), dtype=np.float32))
    assert conv.output_shape(x.shape) == (n, o, oh, ow)
    row = trace(nn.Sequential(conv), x).rows[0]
    assert row["fwd_flops"] == 2 * n * o * oh * ow * c * 3 * 5
    assert row["bwd_flops"] == 2 * row["fwd_flops"]
    assert layer_flops(nn.Linear(7, 3), (5, 7), (5, 3)) == (2 * 5 * 7 * 3, 4 * 5 * 7 * 3)
    assert layer_flops(nn.ReLU(), (2, 3), (2, 3)) == (6, 6)
    assert layer_flops(nn.MaxPool2d(2), (1, 1, 4, 4), (1, 1, 2, 2)) == (16, 4)


def test_printed_table_has_one_aligned_line_per_layer(device):
    model, x = lenet()
    report = trace(model, x)
    lines = str(report).splitlines()
    assert len(lines) == len(report.rows) + 5  # title, header, rule, rows, rule, total
    body = lines[3:-2]
    for row, line in zip(report.rows, body):
        assert line.startswith(f"{row['name']} {row['layer']} ")
        assert "x".join(map(str, row["out_shape"])) in line
    # Numbers are right-aligned, so every layer line ends in the same column.
    assert len({len(line) for line in body + [lines[1]]}) == 1
    assert lines[-1].startswith("total")
    assert "CrossEntropyLoss on random labels" in lines[0]


def test_model_is_left_as_found(device):
    model, x = lenet(modern=True)
    for p in model.parameters():
        p.grad = dev(np.full(p.shape, 0.5, np.float32))
    stats = {k: sn.to_numpy(v).copy() for k, v in model.state_dict().items()}
    rng = sn.backend.rng().bit_generator.state
    trace(model, x, repeat=2)
    for p in model.parameters():
        assert np.all(sn.to_numpy(p.grad) == 0.5)
        assert sn.get_array_module(p.grad) is sn.get_array_module(x)
    for k, v in model.state_dict().items():
        assert sn.get_array_module(v) is sn.get_array_module(x), k
        np.testing.assert_array_equal(sn.to_numpy(v), stats[k], err_msg=k)
    assert sn.backend.rng().bit_generator.state == rng
    assert all(m.__dict__.get("_cache") is None for m in model.modules())


def test_residual_block_is_one_row(device):
    sn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Residual(4), Residual(8, True, 2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    x = dev(sn.backend.rng().standard_normal((2, 1, 8, 8)).astype(np.float32))
    with sn.no_grad():
        model(x)
    report = trace(model, x)
    assert [r["layer"] for r in report.rows] == ["Conv2d", "Residual", "Residual",
                                                 "AdaptiveAvgPool2d", "Flatten", "Linear"]
    assert report.total("params") == model.num_parameters()
    block = report.rows[2]
    assert block["out_shape"] == (2, 8, 4, 4)
    # conv1 (3x3, stride 2), conv2 (3x3), conv3 (1x1, stride 2): 2*N*O*oh*ow*C*kh*kw each,
    # plus the BatchNorms and ReLUs per element.
    convs = 2 * 2 * 8 * 16 * (4 * 9 + 8 * 9 + 4 * 1)
    assert block["fwd_flops"] == convs + 2 * 6 * 2 * 8 * 16 + 2 * 2 * 8 * 16
    assert block["cache_bytes"] > 0 and block["grad_norm"] > 0


def test_output_that_is_not_logits_gets_ones(device):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    x = dev(sn.backend.rng().standard_normal((2, 1, 6, 6)).astype(np.float32))
    report = trace(model, x)
    assert report.gy_source.startswith("gy = ones") and report.loss is None
    model.zero_grad()
    model(x)
    gx = model.backward(dev(np.ones((2, 2, 4, 4), dtype=np.float32)))
    assert report.rows[0]["grad_norm"] == pytest.approx(norm(gx), rel=1e-6)


def test_refused_inside_no_grad(device):
    model, x = lenet()
    with sn.no_grad(), pytest.raises(RuntimeError, match="no_grad"):
        trace(model, x)


def test_labels_give_the_cross_entropy_loss(device):
    """Host labels are moved to the logits' device; the reported loss is the model's."""
    model, x = lenet()
    labels = np.arange(8) % 10
    report = trace(model, x, labels=labels)
    assert report.gy_source == "CrossEntropyLoss on the given labels"
    with sn.no_grad():
        expected = float(nn.CrossEntropyLoss()(model(x), dev(labels)))
    assert float(report.loss) == pytest.approx(expected, rel=1e-6)
    assert f"loss {expected:.4f}" in str(report).splitlines()[0]


def test_dropout_masks_after_a_trace_are_those_without_it(device):
    """The trace draws dropout masks: the generator that draws them (the host's on the
    CPU, the device's on the GPU) is put back, so training after a trace draws the masks
    it would have drawn without it."""
    def masks(with_trace):
        sn.manual_seed(3)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.Linear(8, 4))
        x = dev(np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32))
        model(x)  # materialised and one mask drawn before the trace
        if with_trace:
            trace(model, x, repeat=2)
        return [sn.to_numpy(model[:3](x)) != 0 for _ in range(2)]

    for a, b in zip(masks(True), masks(False)):
        np.testing.assert_array_equal(a, b)
