"""Kernel launches of the layers on the GPU code path, counted on the CuPy double, and
what a model holds after an evaluation forward.

Every operation the double counts is a kernel launch on a real card (about 10 us
each), so a training step of a small network is bound by their number. Each layer's
forward and backward is held under a budget here, with the count before the budget
in a comment. How a gradient is added into a parameter is the parameters' business:
``Parameter.accumulate`` is stubbed out of these counts (the model steps count it).

Also here, against PyTorch and against the CPU's readable twins: the GPU formulations
that differ from the CPU's (max pooling's NaN rule folded into one pass, col2im as a
gather, BatchNorm without einsum).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fakecupy
import scratchnet as sn
from scratchnet import models, nn
from scratchnet.nn.parameter import Parameter
from scratchnet.ops.im2col import col2im, col2im_gather, out_size


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def counted(fakegpu, monkeypatch, layer, shape):
    """(forward, backward) Counts of a layer on the double, after a first call that
    materialises lazy parameters and the device's index tables."""
    monkeypatch.setattr(Parameter, "accumulate", lambda self, g: None)
    x = sn.to_device(_x(shape), "gpu")
    gy = sn.to_device(_x(layer(x).shape, seed=1), "gpu")
    layer.backward(gy)
    with fakegpu.counting() as fwd:
        layer(x)
    with fakegpu.counting() as bwd:
        layer.backward(gy)
    return fwd, bwd


# (name, layer, input shape, forward budget, backward budget); before the budget,
# forward + backward was, in the order of the rows: 6 + 58, 7 + 11, 7 + 26, 28 + 16,
# 28 + 16, 34 + 9, 81 + 39, 6 + 6, 13 + 13, 2 + 3, 5 + 4 (the backward without the
# parameters' accumulation, the BatchNorm forward with its running statistics).
BUDGETS = [
    ("Conv2d 6->16 5x5 (LeNet conv2)", lambda: nn.Conv2d(6, 16, 5), (128, 6, 14, 14), 4, 9),
    ("Conv2d 64->64 3x3 pad 1 (ResNet)", lambda: nn.Conv2d(64, 64, 3, padding=1),
     (8, 64, 8, 8), 6, 9),
    ("Conv2d 64->128 3x3/2 pad 1 (ResNet)",
     lambda: nn.Conv2d(64, 128, 3, stride=2, padding=1), (8, 64, 8, 8), 6, 9),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(16), (32, 16, 10, 10), 7, 5),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(120), (32, 120), 7, 5),
    ("MaxPool2d(2, 2)", lambda: nn.MaxPool2d(2, 2), (32, 6, 28, 28), 3, 1),
    ("MaxPool2d(3, 2, 1)", lambda: nn.MaxPool2d(3, 2, 1), (8, 64, 16, 16), 5, 4),
    ("AvgPool2d(2, 2)", lambda: nn.AvgPool2d(2, 2), (32, 6, 28, 28), 1, 1),
    ("AvgPool2d(3, 2, 1)", lambda: nn.AvgPool2d(3, 2, 1), (8, 64, 16, 16), 3, 3),
    ("ReLU", lambda: nn.ReLU(), (32, 6, 28, 28), 1, 1),
    ("Sigmoid", lambda: nn.Sigmoid(), (32, 6, 28, 28), 1, 1),
]


@pytest.mark.parametrize("name, make, shape, fwd_budget, bwd_budget", BUDGETS,
                         ids=[b[0] for b in BUDGETS])
def test_layer_kernel_launches_stay_within_budget(fakegpu, monkeypatch, name, make, shape,
                                                  fwd_budget, bwd_budget):
    fwd, bwd = counted(fakegpu, monkeypatch, make(), shape)
    assert fwd.syncs == bwd.syncs == 0, (fwd, bwd)
    assert fwd.ops <= fwd_budget, f"forward: {fwd}"
    assert bwd.ops <= bwd_budget, f"backward: {bwd}"


@pytest.mark.parametrize("make, shape", [(lambda: nn.BatchNorm2d(16), (8, 16, 5, 5)),
                                         (lambda: nn.BatchNorm1d(12), (8, 12)),
                                         (lambda: nn.BatchNorm1d(12), (8, 12, 7))],
                         ids=["2d", "1d (N, C)", "1d (N, C, L)"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_calls_no_einsum_on_the_gpu(fakegpu, monkeypatch, make, shape, training):
    """CuPy's two-operand einsum is transposed copies plus a batched matmul."""
    bn = make().train(training)
    fwd, bwd = counted(fakegpu, monkeypatch, bn, shape)
    assert "einsum" not in fwd.op_names and "einsum" not in bwd.op_names, (fwd, bwd)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)],
                         ids=str)
def test_max_pool_of_a_nan_free_input_does_no_nan_work(fakegpu, kernel, stride, padding):
    """The NaN rule is folded into the pass that finds each window's first maximum:
    the same operations with and without a NaN, and no separate isnan pass."""
    pool = nn.MaxPool2d(kernel, stride, padding)
    clean = _x((4, 3, 12, 12))
    dirty = clean.copy()
    dirty[1, 2, 5, 6] = np.nan
    pool(sn.to_device(clean, "gpu"))  # the first call makes the device's offset table
    counts = []
    for x in (clean, dirty):
        x = sn.to_device(x, "gpu")
        with fakegpu.counting() as c:
            pool(x)
        counts.append(c)
    assert "isnan" not in counts[0].op_names, counts[0]
    assert counts[0].ops == counts[1].ops and counts[0].syncs == counts[1].syncs == 0


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1),
                                                     ((2, 3), (1, 2), (1, 0)), (2, 2, 1)],
                         ids=str)
def test_gpu_max_pool_ties_and_nans_match_torch(fakegpu, kernel, stride, padding):
    """Ties send the gradient to the first maximum, a NaN wins its window and a window
    with two NaNs sends it to the last, as PyTorch does: through both GPU routes of
    the gradient (windows stored in place, overlapping windows gathered)."""
    rs = np.random.default_rng(3)
    x = rs.integers(-2, 3, (2, 3, 9, 8)).astype(np.float64)  # many ties
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[1, 2, 4, 4] = x[1, 1, 5, 6] = x[1, 1, 5, 7] = np.nan
    pool = nn.MaxPool2d(kernel, stride, padding)
    y = pool(sn.to_device(x, "gpu"))
    gy = rs.standard_normal(y.shape)
    gx = pool.backward(sn.to_device(gy, "gpu"))
    xt = torch.tensor(x, requires_grad=True)
    yt = F.max_pool2d(xt, kernel, stride, padding)
    yt.backward(torch.from_numpy(gy))
    np.testing.assert_array_equal(sn.to_numpy(y), yt.detach().numpy())
    np.testing.assert_allclose(sn.to_numpy(gx), xt.grad.numpy(), rtol=1e-14, atol=1e-15)


GATHER_GRID = [  # (h, w), kernel, stride, dilation, pads
    ((7, 8), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((9, 9), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    ((10, 9), (5, 5), (1, 1), (1, 1), (0, 0, 0, 0)),
    ((8, 11), (2, 3), (3, 2), (2, 1), (0, 1, 2, 1)),
    ((12, 12), (7, 7), (2, 2), (1, 1), (3, 3, 3, 3)),
    ((6, 6), (1, 1), (2, 2), (1, 1), (0, 0, 0, 0)),
]


@pytest.mark.parametrize("size, kernel, stride, dilation, pads", GATHER_GRID, ids=str)
@pytest.mark.parametrize("on_gpu", [False, True])
def test_col2im_gather_equals_the_loop_col2im(fakegpu, on_gpu, size, kernel, stride,
                                              dilation, pads):
    """The GPU's fold (a gather) against the CPU's (one addition per kernel offset)."""
    (h, w), (kh, kw) = size, kernel
    oh = out_size(h, kh, stride[0], pads[0], pads[1], dilation[0])
    ow = out_size(w, kw, stride[1], pads[2], pads[3], dilation[1])
    n, c = 3, 2
    col = _x((c, kh, kw, n, oh, ow), dtype=np.float64)  # col2im's layout
    expected = col2im(col, h, w, *stride, pads, *dilation)  # (N, C, H, W)
    move = (lambda a: sn.to_device(a, "gpu")) if on_gpu else (lambda a: a)
    got = col2im_gather(move(np.ascontiguousarray(col.transpose(0, 1, 2, 4, 5, 3))), h, w,
                        *stride, *dilation, pads)  # (C, H, W, N)
    np.testing.assert_allclose(sn.to_numpy(got).transpose(3, 0, 1, 2), expected,
                               rtol=1e-13, atol=1e-14)
    # one value per window for every kernel offset (average pooling), scaled
    g = _x((c * n, oh, ow), seed=2, dtype=np.float64)
    wide = np.broadcast_to(g.reshape(c, n, 1, 1, oh, ow).transpose(0, 2, 3, 1, 4, 5),
                           (c, kh, kw, n, oh, ow))
    expected = col2im(np.ascontiguousarray(wide) * 0.25, h, w, *stride, pads, *dilation)
    got = col2im_gather(move(g), h, w, *stride, *dilation, pads, kernel=kernel, scale=0.25)
    np.testing.assert_allclose(sn.to_numpy(got).reshape(c, n, h, w).transpose(1, 0, 2, 3),
                               expected, rtol=1e-13, atol=1e-14)


def held_arrays(model):
    """The arrays a model's modules reach outside their parameters, buffers and child
    modules (caches for backward, kept columns, anything else), by id."""
    arrays = {}

    def visit(v):
        if isinstance(v, (np.ndarray, fakecupy.ndarray)):
            arrays[id(v)] = v
        elif isinstance(v, (list, tuple, set)):
            for e in v:
                visit(e)
        elif isinstance(v, dict):
            for e in v.values():
                visit(e)

    for m in model.modules():
        for k, v in vars(m).items():
            if k not in ("_parameters", "_buffers", "_modules"):
                visit(v)
    return arrays


def held_bytes(model):
    return sum(int(a.nbytes) for a in held_arrays(model).values())


MODELS = [("LeNet d2l", lambda: models.LeNet(), (8, 1, 28, 28)),
          ("LeNet modern", lambda: models.LeNet(modern=True), (8, 1, 28, 28)),
          ("ResNet (2 stages)", lambda: models.ResNet(((1, 64), (1, 16))), (4, 1, 32, 32))]


@pytest.mark.parametrize("name, make, shape", MODELS, ids=[m[0] for m in MODELS])
def test_an_evaluation_forward_leaves_nothing_held(device, name, make, shape):
    """Under no_grad, in eval() (the Trainer's evaluate) or train(), a forward keeps no
    columns nor any cache, and lets go of what the last training step kept."""
    model = make()
    x = sn.to_device(_x(shape), device)
    loss = nn.CrossEntropyLoss()
    loss(model(x), sn.to_device(np.arange(shape[0]) % 10, device))
    model.backward(loss.backward())
    model(x)  # a training forward: columns and caches held for a backward
    assert held_bytes(model) > x.nbytes
    for training in (False, True):
        model.train(training)
        with sn.no_grad():
            model(x)
        assert held_bytes(model) == 0


def test_conv_in_eval_keeps_no_columns_and_its_gradient_is_torchs(device):
    """eval() with gradients on: the layer keeps its input (a reference), not kh*kw
    times it, and a backward builds the columns again."""
    layer = nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    x = sn.to_device(_x((2, 3, 9, 8), dtype=np.float64), device)
    layer.eval()
    y = layer(x)
    assert list(held_arrays(layer)) == [id(x)]
    gy = _x(y.shape, seed=1, dtype=np.float64)
    gx = layer.backward(sn.to_device(gy, device))
    xt = torch.tensor(sn.to_numpy(x), requires_grad=True)
    Wt = torch.tensor(sn.to_numpy(layer.weight.data), requires_grad=True)
    bt = torch.tensor(sn.to_numpy(layer.bias.data), requires_grad=True)
    F.conv2d(xt, Wt, bt, 2, 1).backward(torch.from_numpy(gy))
    for ours, theirs in ((gx, xt.grad), (layer.weight.grad, Wt.grad),
                         (layer.bias.grad, bt.grad)):
        np.testing.assert_allclose(sn.to_numpy(ours), theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_in_eval_keeps_only_its_input(device):
    bn = nn.BatchNorm2d(5).eval()
    x = sn.to_device(_x((4, 5, 3, 3)), device)
    bn(x)
    # x itself, not an xhat of its size; else (5,) vectors: the mean and 1 / sqrt(var + eps)
    held = held_arrays(bn)
    assert id(x) in held and all(a.size <= 5 for k, a in held.items() if k != id(x))
