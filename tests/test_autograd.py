"""scratchnet.autograd: the tape against PyTorch's autograd (ops, functional, models),
against manual backprop (Module.backward) on the same models, the graph views, and
the refusals."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import scratchnet as sn
import scratchnet.autograd as ag
from helpers import rel_err
from scratchnet import interop, nn
from scratchnet.nn import functional as F
from scratchnet.models import VGG, VGG_SMALL, LeNet, Residual, ResNet18

TOL = 1e-12  # tape against manual backprop: the same ops, so (nearly) the same bits
TORCH_TOL = 1e-10  # against PyTorch, float64
# A bias followed by BatchNorm has a true gradient of 0: both sides give rounding noise
# (1e-16..1e-14), so model gradients are compared relative to at least this.
FLOOR = 1e-2


def test_micrograd_example_as_written():
    x = ag.Tensor(-4.0, requires_grad=True)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    assert float(y.data) == -20.0 and float(x.grad) == 46.0
    xt = torch.tensor(-4.0, requires_grad=True)
    zt = 2 * xt + 2 + xt
    qt = zt.relu() + zt * xt
    yt = (zt * zt).relu() + qt + qt * xt
    yt.backward()
    assert (yt.item(), xt.grad.item()) == (-20.0, 46.0)
    assert y.grad_fn.name == "AddBackward" and z.grad is None  # intermediates drop theirs


def pairs(shapes, device, seed=0):
    """(tape leaves, torch leaves) of float64 values in [0.5, 1.5) (log- and pow-safe)."""
    rs = np.random.default_rng(seed)
    vals = [rs.random(s) + 0.5 for s in shapes]
    ours = [ag.Tensor(sn.to_device(v, device), requires_grad=True) for v in vals]
    theirs = [torch.tensor(v, requires_grad=True) for v in vals]
    return ours, theirs


OPS = {
    "add-broadcast": ([(3, 4), (4,)], lambda a, b: a + b),
    "radd-number": ([(3, 4)], lambda a: 2.5 + a),
    "sub-broadcast": ([(3, 1), (1, 4)], lambda a, b: a - b),
    "rsub-number": ([(3,)], lambda a: 1 - a),
    "mul-twice": ([(2, 3)], lambda a: a * a * 3),
    "div": ([(2, 3), (3,)], lambda a, b: a / b),
    "rdiv": ([(2, 3)], lambda a: 2 / a),
    "pow-number": ([(4,)], lambda a: a ** 3),
    "rpow": ([(4,)], lambda a: 2 ** a),
    "pow-tensor": ([(4,), (4,)], lambda a, b: a ** b),
    "matmul": ([(3, 4), (4, 2)], lambda a, b: a @ b),
    "neg-exp-log": ([(5,)], lambda a: (-a).exp() + a.log()),
    "activations": ([(2, 5)], lambda a: (a - 1).relu() + (a - 1).sigmoid() * (a - 1).tanh()),
    "sum-axis-keepdims": ([(2, 3, 4)], lambda a: a.sum(axis=1, keepdims=True) * a),
    "mean-axes": ([(2, 3, 4)], lambda a: a.mean(axis=(0, 2))),
    "reshape-transpose": ([(2, 6)], lambda a: a.reshape(3, 4).T @ a.reshape(4, 3).T),
    "permute": ([(2, 3, 4)], lambda a: a.permute(2, 0, 1) * 2),
    "transpose-two-axes": ([(2, 3, 4)], lambda a: a.transpose(0, 2) * 2),
    "slice": ([(4, 5)], lambda a: a[1:3, ::2] * a[0:2, 0:3]),
}


@pytest.mark.parametrize("name", list(OPS))
def test_ops_match_torch_autograd(name, device):
    shapes, f = OPS[name]
    ours, theirs = pairs(shapes, device)
    y, yt = f(*ours), f(*theirs)
    gy = np.random.default_rng(1).standard_normal(yt.shape)
    y.backward(sn.to_device(gy, device))
    yt.backward(torch.from_numpy(gy))
    assert rel_err(y.data, yt.detach()) <= TOL
    for a, at in zip(ours, theirs):
        assert a.grad.shape == a.shape
        assert rel_err(a.grad, at.grad) <= TORCH_TOL, name


def test_integer_index_with_repeats_adds_every_share(device):
    a = ag.Tensor(np.arange(5.0), requires_grad=True)
    (a[sn.to_device(np.array([0, 2, 2, 4]), device)] * 1.0).sum().backward()
    np.testing.assert_array_equal(sn.to_numpy(a.grad), [1, 0, 2, 0, 1])


def test_leaves_accumulate_and_retain_grad():
    x = ag.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for _ in range(2):
        h = x * 3
        h.retain_grad()
        (h * h).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * 18 * np.array([1.0, 2.0]))  # summed twice
    np.testing.assert_array_equal(h.grad, 2 * 3 * np.array([1.0, 2.0]))


def test_no_grad_records_nothing():
    x = ag.Tensor(np.ones(3), requires_grad=True)
    with ag.no_grad():
        y = (x * 2).sum()
    assert y.grad_fn is None and not y.requires_grad


# The functional ops: scratchnet's forward and backward, torch.nn.functional's names.
FUNCTIONAL = {
    "conv2d": ([(2, 3, 7, 6), (4, 3, 3, 2), (4,)],
               lambda m, x, w, b: m.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=1)),
    "conv2d-grouped": ([(2, 4, 6, 6), (6, 2, 3, 3), (6,)],
                       lambda m, x, w, b: m.conv2d(x, w, b, padding=1, groups=2)),
    "conv2d-depthwise": ([(2, 3, 6, 5), (3, 1, 3, 3)],
                         lambda m, x, w: m.conv2d(x, w, stride=2, groups=3)),
    "conv2d-dilated": ([(1, 2, 8, 8), (3, 2, 3, 3)],
                       lambda m, x, w: m.conv2d(x, w, stride=1, padding=2, dilation=2)),
    "max_pool2d": ([(2, 3, 7, 7)], lambda m, x: m.max_pool2d(x, 3, stride=2, padding=1)),
    "avg_pool2d": ([(2, 3, 6, 6)], lambda m, x: m.avg_pool2d(x, 2)),
    "adaptive_avg_pool2d": ([(2, 3, 7, 5)], lambda m, x: m.adaptive_avg_pool2d(x, (3, 2))),
    "linear": ([(4, 5), (3, 5), (3,)], lambda m, x, w, b: m.linear(x, w, b)),
    "activations": ([(3, 4)], lambda m, x: m.relu(x - 1) + m.sigmoid(x) * m.tanh(x)),
    "batch_norm-train": ([(4, 3, 2, 2), (3,), (3,)],
                         lambda m, x, g, b: m.batch_norm(x, None, None, g, b, training=True)),
}


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_matches_torch(name, device):
    shapes, f = FUNCTIONAL[name]
    ours, theirs = pairs(shapes, device, seed=3)
    if name == "max_pool2d":  # distinct values: no ties
        v = np.random.default_rng(5).permutation(np.prod(shapes[0])).reshape(shapes[0]) * 0.1
        ours = [ag.Tensor(sn.to_device(v, device), requires_grad=True)]
        theirs = [torch.tensor(v, requires_grad=True)]
    y, yt = f(F, *ours), f(TF, *theirs)
    gy = np.random.default_rng(2).standard_normal(yt.shape)
    y.backward(sn.to_device(gy, device))
    yt.backward(torch.from_numpy(gy))
    assert rel_err(y.data, yt.detach()) <= TORCH_TOL
    for a, at in zip(ours, theirs):
        assert rel_err(a.grad, at.grad) <= TORCH_TOL, name


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_and_dropout_match_torch(reduction, device):
    rs = np.random.default_rng(4)
    x = rs.standard_normal((5, 4))
    labels, target = rs.integers(0, 4, 5), rs.standard_normal((5, 4))
    for ours_f, torch_f, t in ((F.cross_entropy, TF.cross_entropy, labels),
                               (F.mse_loss, TF.mse_loss, target)):
        a = ag.Tensor(sn.to_device(x, device), requires_grad=True)
        at = torch.tensor(x, requires_grad=True)
        y = ours_f(a, sn.to_device(t, device), reduction=reduction)
        yt = torch_f(at, torch.from_numpy(t), reduction=reduction)
        (y * y).sum().backward()
        (yt * yt).sum().backward()
        assert rel_err(y.data, yt.detach()) <= TORCH_TOL
        assert rel_err(a.grad, at.grad) <= TORCH_TOL
    a = ag.Tensor(sn.to_device(x, device), requires_grad=True)
    sn.manual_seed(0)
    y = F.dropout(a, 0.5)
    y.sum().backward()
    kept = sn.to_numpy(y.data) != 0
    np.testing.assert_allclose(sn.to_numpy(y.data)[kept], 2 * x[kept])
    np.testing.assert_array_equal(sn.to_numpy(a.grad), 2.0 * kept)
    assert F.dropout(a, 0.5, training=False) is a


def test_functional_batch_norm_updates_running_statistics_as_torch(device):
    rs = np.random.default_rng(6)
    x = rs.standard_normal((6, 3, 2, 2)) * 2 + 1
    rm, rv = sn.to_device(np.zeros(3), device), sn.to_device(np.ones(3), device)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(2):
        F.batch_norm(ag.Tensor(sn.to_device(x, device)), rm, rv, training=True, momentum=0.3)
        TF.batch_norm(torch.from_numpy(x), trm, trv, training=True, momentum=0.3)
    assert rel_err(rm, trm) <= TORCH_TOL and rel_err(rv, trv) <= TORCH_TOL
    y = F.batch_norm(ag.Tensor(sn.to_device(x, device)), rm, rv, training=False)
    assert rel_err(y.data, TF.batch_norm(torch.from_numpy(x), trm, trv)) <= TORCH_TOL


# Models on the tape: the same Parameter.grad as Module.backward, and as PyTorch.

def residual_pair():
    m = Residual(6, use_1x1conv=True, strides=2)
    return m, interop.torch_residual(6, use_1x1conv=True, strides=2)


MODELS = {
    "lenet": (LeNet, (3, 1, 28, 28), lambda: interop.torch_lenet()),
    "lenet-modern": (lambda: LeNet(modern=True), (3, 1, 28, 28),
                     lambda: interop.torch_lenet(modern=True)),
    "vgg-small": (lambda: VGG(VGG_SMALL), (2, 1, 32, 32),
                  lambda: interop.torch_vgg(VGG_SMALL, in_shape=(2, 1, 32, 32))),
    # 64x64: the last stage's BatchNorm then normalises 4 values per channel and image,
    # not 1, whose statistics would amplify rounding past 1e-10
    "resnet18": (ResNet18, (3, 1, 64, 64),
                 lambda: interop.torch_resnet18(in_shape=(2, 1, 64, 64))),
    "residual-1x1": (None, (2, 3, 8, 8), None),
}


def _loss_tape(out, y):
    return F.cross_entropy(out, y) if out.ndim == 2 else (out * out).sum()


@pytest.mark.parametrize("name", list(MODELS))
def test_tape_equals_manual_backprop_and_torch(name, device):
    sn.set_default_dtype(np.float64)
    make, shape, make_torch = MODELS[name]
    if name == "residual-1x1":
        model, tmodel = residual_pair()
    else:
        model, tmodel = make(), make_torch()
    rs = np.random.default_rng(7)
    X = rs.standard_normal(shape)
    y = np.arange(shape[0]) % 10
    model(sn.to_device(X, device))  # materialise lazy layers
    model.to(device=device)
    tape_model = copy.deepcopy(model)
    if name == "residual-1x1":
        tmodel(torch.from_numpy(X).float())  # materialise, then float64 below
    interop.load_into_torch(tmodel.double(), model)
    # Dropout (VGG) draws the same masks in both scratchnet runs; PyTorch's differ.
    model.train(), tape_model.train(), tmodel.train()
    dropout = any(isinstance(m, nn.Dropout) for m in model.modules())
    Xd, yd = sn.to_device(X, device), sn.to_device(y, device)

    sn.manual_seed(1)
    out = model(Xd)
    model.zero_grad()
    if out.ndim == 2:
        loss_fn = nn.CrossEntropyLoss()
        loss_fn(out, yd)
        model.backward(loss_fn.backward())
    else:
        model.backward(2 * out)
    sn.manual_seed(1)
    Xt = ag.Tensor(Xd, requires_grad=True)
    tout = tape_model(Xt)
    tape_model.zero_grad()
    loss = _loss_tape(tout, yd)
    loss.backward()
    manual = dict(model.named_parameters())
    for k, p in tape_model.named_parameters():
        assert rel_err(p.grad, sn.to_numpy(manual[k].grad)) <= TOL, k
    for (k, a), b in zip(model.state_dict().items(), tape_model.state_dict().values()):
        np.testing.assert_array_equal(sn.to_numpy(a), sn.to_numpy(b), err_msg=k)
    if dropout:
        for m in list(model.modules()) + list(tmodel.modules()):
            if isinstance(m, (nn.Dropout, torch.nn.Dropout)):
                m.p = 0.0
        tape_model = copy.deepcopy(model)
        tape_model.zero_grad()
        _loss_tape(tape_model(ag.Tensor(Xd)), yd).backward()
    Xtt = torch.from_numpy(X).requires_grad_(True)
    tout_t = tmodel(Xtt)
    tloss = TF.cross_entropy(tout_t, torch.from_numpy(y)) if tout_t.ndim == 2 else \
        (tout_t * tout_t).sum()
    tloss.backward()
    tgrads = dict(tmodel.named_parameters())
    for k, p in tape_model.named_parameters():
        assert rel_err(p.grad, tgrads[k].grad, floor=FLOOR) <= TORCH_TOL, k
    if not dropout:
        assert rel_err(Xt.grad, Xtt.grad) <= TORCH_TOL


def test_a_layer_used_twice_in_one_graph_gets_both_gradients():
    sn.set_default_dtype(np.float64)
    conv = nn.Conv2d(2, 2, 3, padding=1)
    tconv = torch.nn.Conv2d(2, 2, 3, padding=1).double()
    interop.load_into_torch(tconv, conv)
    X = np.random.default_rng(8).standard_normal((1, 2, 5, 5))
    conv.zero_grad()
    (conv(conv(ag.Tensor(X))) ** 2).sum().backward()
    (tconv(tconv(torch.from_numpy(X))) ** 2).sum().backward()
    assert rel_err(conv.weight.grad, tconv.weight.grad) <= TORCH_TOL
    assert rel_err(conv.bias.grad, tconv.bias.grad) <= TORCH_TOL


# The graph.

def test_graph_of_a_residual_block_shows_both_paths_and_the_sum(tmp_path):
    block = Residual(3)
    X = ag.Tensor(np.random.default_rng(0).random((2, 3, 4, 4), dtype=np.float32),
                  requires_grad=True, name="X")
    y = block(X)
    dot = ag.to_dot(y)
    assert dot.startswith("digraph") and "conv1.weight" in dot and "bn2.bias" in dot
    assert "AddBackward" in dot and "sums 2" in dot  # X feeds both paths
    order = ag.backward_order(y)
    assert order[0].split()[1] == "ReLU" and order[1].split()[1] == "AddBackward"
    assert any("leaf X" in line and "sums 2 gradients" in line for line in order)
    path = ag.plot_graph(y, tmp_path / "residual.png", use_dot=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    y.sum().backward()  # the views did not free the graph
    assert X.grad is not None


def test_leaves_are_named_as_the_model_names_them():
    model = LeNet()
    out = model(ag.Tensor(np.zeros((1, 1, 28, 28), np.float32)))
    dot = ag.to_dot(out)
    for name, _ in model.named_parameters():
        assert f'label="{name}\\n' in dot, name


# Bad input: a clear error, and nothing half-added into any .grad.

def test_refusals_change_no_gradient(device):
    w = ag.Tensor(sn.to_device(np.ones((2, 3)), device), requires_grad=True)
    y = w * 2
    with pytest.raises(RuntimeError, match=r"only for a scalar output; got shape \(2, 3\)"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"expected a gradient of shape \(2, 3\).*got "
                                           r"\(3, 2\)"):
        y.backward(sn.to_device(np.ones((3, 2)), device))
    assert w.grad is None
    s = y.sum()
    s.backward()
    before = sn.to_numpy(w.grad).copy()
    with pytest.raises(RuntimeError, match="second time"):
        s.backward()
    np.testing.assert_array_equal(sn.to_numpy(w.grad), before)
    c = ag.Tensor(sn.to_device(np.ones(3), device))
    with pytest.raises(RuntimeError, match="does not require grad"):
        (c * 2).sum().backward()


def test_mixing_devices_is_refused(fakegpu):
    a = ag.Tensor(np.ones(3), requires_grad=True)  # on the (fake) GPU: the active device
    with sn.use_device("cpu"):
        b = ag.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="found at least two devices, cuda:0 and cpu!"):
        a + b
    model = nn.Linear(3, 2)
    with sn.use_device("cpu"):
        host = ag.Tensor(np.ones((1, 3)))
    with pytest.raises(ValueError, match="Linear: input is a numpy array"):
        model(host)
    assert a.grad is None and b.grad is None


def test_max_pool_with_indices_on_the_tape_returns_a_tensor_and_the_indices(device):
    x = np.random.default_rng(0).permutation(32).reshape(1, 2, 4, 4).astype(np.float64)
    X = ag.Tensor(sn.to_device(x, device), requires_grad=True)
    y, idx = nn.MaxPool2d(2, return_indices=True)(X)
    (y * y).sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    yt, it = TF.max_pool2d(xt, 2, return_indices=True)
    (yt * yt).sum().backward()
    assert isinstance(y, ag.Tensor) and not isinstance(idx, ag.Tensor)
    np.testing.assert_array_equal(sn.to_numpy(idx), it.numpy())
    assert rel_err(X.grad, xt.grad) <= TORCH_TOL


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_functional_cross_entropy_takes_torchs_options(reduction, device):
    rs = np.random.default_rng(9)
    x = rs.standard_normal((6, 4, 3))
    labels = rs.integers(0, 4, (6, 3))
    labels[0, 1] = -100
    w = rs.random(4) + 0.5
    a = ag.Tensor(sn.to_device(x, device), requires_grad=True)
    at = torch.tensor(x, requires_grad=True)
    y = F.cross_entropy(a, sn.to_device(labels, device), weight=sn.to_device(w, device),
                        reduction=reduction, label_smoothing=0.1)
    yt = TF.cross_entropy(at, torch.from_numpy(labels), weight=torch.from_numpy(w),
                          reduction=reduction, label_smoothing=0.1)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    assert rel_err(y.data, yt.detach()) <= TORCH_TOL
    assert rel_err(a.grad, at.grad) <= TORCH_TOL
    with pytest.raises(ValueError, match="labels must be in"):
        F.cross_entropy(a, sn.to_device(np.full((6, 3), 7), device))
        F.check_labels()  # the GPU defers the check to this read (the CPU raised above)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_a_layer_whose_input_needs_no_gradient_skips_dl_dx(requires_grad):
    """The images need no gradient: the first layer's backward skips dL/dx on the tape,
    as the Trainer has it do in manual backprop, and is left as it was."""
    conv = nn.Conv2d(1, 2, 3)
    seen = []
    backward = conv.backward
    conv.backward = lambda gy: (seen.append(conv.needs_input_grad), backward(gy))[1]
    x = ag.Tensor(np.random.default_rng(0).random((2, 1, 5, 5), dtype=np.float32),
                  requires_grad=requires_grad)
    (conv(x) ** 2).sum().backward()
    assert seen == [requires_grad] and conv.needs_input_grad
    assert (x.grad is not None) == requires_grad and np.abs(conv.weight.grad).sum() > 0


def test_the_tapes_docstring_example_runs_as_shown():
    """scratchnet.autograd's docstring example (micrograd's test_sanity_check) prints
    what it shows: y = -20 and dy/dx = 46, PyTorch's values."""
    import doctest
    import scratchnet.autograd as ag_module
    [test] = doctest.DocTestFinder(recurse=False).find(ag_module, "scratchnet.autograd")
    out = []
    result = doctest.DocTestRunner().run(test, out=out.append)
    assert result.attempted == 8 and result.failed == 0, "".join(out)
