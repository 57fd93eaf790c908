"""Numerical edge cases at network level (issue 5): extreme inputs never warn, overflow or
give NaN, a constant channel stays finite through BatchNorm, and a float32 LeNet stays
float32 through a whole training step (no silent upcast anywhere).

Every check runs with warnings as errors and ``np.errstate(all="raise")``: an overflow,
an invalid operation, a division by zero and an underflow all raise (on the host and on
the CuPy double, which computes with numpy; a real GPU raises no floating-point errors,
so there only the results are checked).
"""
import contextlib
import warnings

import numpy as np
import pytest
import torch
from helpers import GPU_DEVICES, dev, rel_err

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader
from scratchnet.models import LeNet
from scratchnet.train import Trainer


DTYPES = [np.float64, np.float32]
TDTYPE = {np.float64: torch.float64, np.float32: torch.float32}
TOL = {np.float64: 1e-13, np.float32: 1e-6}


@contextlib.contextmanager
def strict():
    """Any floating-point exception raises, and any warning is an error."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


def sigmoid_grid(dtype):
    """-1e4 .. 1e4, dense near 0, with the points where exp(-x) overflows; without the
    band where sigmoid or its gradient is subnormal (test_sigmoid_subnormal_results)."""
    lo, hi = SUBNORMAL_BAND[dtype]
    x = np.concatenate([[-1e4, -1e3, 1e3, 1e4], np.linspace(-1e4, 1e4, 2001),
                        np.linspace(-120, 120, 24001), np.linspace(-760, 760, 1521)])
    x = x.astype(dtype)
    return x[(x < lo) | (x > hi)]


# x for which sigmoid(x), or dL/dx for a |gy| in [1e-3, 3], is a subnormal number
# (between 0 and the smallest normal one): below the band both are exactly 0.
SUBNORMAL_BAND = {np.float32: (-104.0, -80.0), np.float64: (-746.0, -701.0)}


def sigmoid_step(x, dtype):
    """Forward and backward on the active device; y and dL/dx back on the host."""
    layer = nn.Sigmoid()
    rs = np.random.default_rng(0)
    gy = (rs.uniform(1e-3, 3, x.shape) * rs.choice([-1, 1], x.shape)).astype(dtype)
    with strict():
        y = layer(dev(x))
        gx = layer.backward(dev(gy))
    assert sn.get_array_module(y) is sn.get_array_module(gx) is sn.backend.device_module()
    return sn.to_numpy(y), sn.to_numpy(gx), gy


def check_sigmoid_against_torch(x, y, gx, gy, dtype):
    assert y.dtype == dtype and gx.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(gx).all()
    assert (y >= 0).all() and (y <= 1).all()
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.sigmoid(xt)
    yt.backward(torch.from_numpy(gy))
    # Absolute: y and dy/dx are at most 1 (and 1/4).
    assert rel_err(y, yt, floor=1.0) <= TOL[dtype]
    assert rel_err(gx, xt.grad, floor=1.0) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_at_extreme_inputs(dtype, device):
    x = sigmoid_grid(dtype)
    y, gx, gy = sigmoid_step(x, dtype)
    check_sigmoid_against_torch(x, y, gx, gy, dtype)
    np.testing.assert_array_equal(y[:4], [0, 0, 1, 1])
    np.testing.assert_array_equal(gx[:4], 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_subnormal_results(dtype, device):
    """1 / (1 + exp(88)) in float32 is a subnormal: correct, and not worth a warning."""
    lo, hi = SUBNORMAL_BAND[dtype]
    x = np.linspace(lo, hi, 4001).astype(dtype)
    y, gx, gy = sigmoid_step(x, dtype)
    check_sigmoid_against_torch(x, y, gx, gy, dtype)
    assert ((y > 0) & (y < np.finfo(dtype).tiny)).any()


def huge_logits(dtype, scale):
    """Rows with one logit far above or below the rest, ties at the top, and gaps across
    the ranges where exp underflows to a subnormal or to 0."""
    rs = np.random.default_rng(int(scale))
    x = rs.standard_normal((64, 5)) * scale
    x[0] = [1e4, 0, -1e4, 0, 0]
    x[1] = [-1e4, -1e4, -1e4, -1e4, -1e4]
    x[2] = [1e4, 1e4, -1e4, 0, 1]
    x[3:8, 0] = [88, 100, 700, 720, 745]
    return x.astype(dtype), rs.integers(0, 5, 64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("scale", [1.0, 100.0, 1e3, 1e4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_at_huge_logits_matches_torch(dtype, scale, reduction, device):
    x, labels = huge_logits(dtype, scale)
    loss = nn.CrossEntropyLoss(reduction=reduction)
    gy = np.random.default_rng(1).uniform(0.5, 2, 64).astype(dtype)
    with strict():
        value = loss(dev(x), dev(labels))
        gx = loss.backward(dev(gy) if reduction == "none" else None)
    assert value.dtype == dtype and gx.dtype == dtype
    value, gx = sn.to_numpy(value), sn.to_numpy(gx)
    assert np.isfinite(value).all() and np.isfinite(gx).all()
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(labels), reduction=reduction)
    lt.backward(torch.from_numpy(gy) if reduction == "none" else None)
    # The loss grows like the logits: relative to its own size.
    assert rel_err(np.asarray(value, dtype=np.float64), lt.double()) <= TOL[dtype]
    assert rel_err(gx, xt.grad, floor=1.0) <= TOL[dtype]


def test_cross_entropy_of_a_logit_1e4_is_torchs_exactly(device):
    x = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1.0], [-1e4, -1e4, -1e4]])
    labels = np.array([1, 2, 0])
    loss = nn.CrossEntropyLoss(reduction="none")
    with strict():
        value = sn.to_numpy(loss(dev(x), dev(labels)))
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(labels),
                                                 reduction="none").numpy()
    np.testing.assert_array_equal(value, expected)  # 1e4, 1e4 - 1 and log(3)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_all_equal_channel_has_finite_output_and_grads(dtype, training, device):
    """A channel whose values are all equal (variance 0): eps keeps everything finite."""
    layer = nn.BatchNorm2d(3).to(dtype=dtype).train(training)
    layer.weight.data[...] = dev(np.array([2.0, -0.5, 1.0], dtype))
    layer.bias.data[...] = dev(np.array([0.5, -1.0, 2.0], dtype))
    rs = np.random.default_rng(3)
    x = rs.standard_normal((4, 3, 5, 5)).astype(dtype)
    x[:, 1] = dtype(1e4)
    gy = rs.standard_normal(x.shape).astype(dtype)
    with strict():
        y = layer(dev(x))
        gx = layer.backward(dev(gy))
    for a in (y, gx, layer.weight.grad, layer.bias.grad, layer.running_mean,
              layer.running_var):
        assert a.dtype == dtype and sn.get_array_module(a) is sn.backend.device_module()
        assert np.isfinite(sn.to_numpy(a)).all()
    y, gx = sn.to_numpy(y), sn.to_numpy(gx)
    if training:
        np.testing.assert_array_equal(y[:, 1], dtype(-1.0))  # beta: xhat is exactly 0
        assert sn.to_numpy(layer.weight.grad)[1] == 0
    # torch in float64 agrees (its float32 statistics of a constant channel are off by
    # rounding: its xhat is not exactly 0).
    tlayer = torch.nn.BatchNorm2d(3).double().train(training)
    with torch.no_grad():
        tlayer.weight[:] = torch.tensor([2.0, -0.5, 1.0])
        tlayer.bias[:] = torch.tensor([0.5, -1.0, 2.0])
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = tlayer(xt)
    yt.backward(torch.from_numpy(gy.astype(np.float64)))
    tol = 1e-10 if dtype is np.float64 else 1e-5
    assert rel_err(y, yt) <= tol and rel_err(gx, xt.grad) <= tol
    assert rel_err(layer.weight.grad, tlayer.weight.grad, floor=1.0) <= tol


@pytest.mark.parametrize("images", ["blank", "saturated"])
@pytest.mark.parametrize("modern", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lenet_step_on_constant_images_is_finite(dtype, modern, images, device):
    """All-black or all-1e4 images: every BatchNorm channel of the modern LeNet is constant
    over the batch, and the sigmoids of d2l's saturate. Nothing may warn or turn NaN."""
    sn.set_default_dtype(dtype)
    model = LeNet(modern=modern)
    x = dev(np.full((8, 1, 28, 28), 0.0 if images == "blank" else 1e4, dtype))
    model(x[:2])
    opt = sn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss = nn.CrossEntropyLoss()
    labels = dev(np.arange(8) % 10)
    with strict():
        for _ in range(2):
            value = loss(model(x), labels)
            opt.zero_grad()
            model.backward(loss.backward())
            opt.step()
    assert np.isfinite(float(value))
    for k, v in model.state_dict().items():
        assert np.isfinite(sn.to_numpy(v)).all(), k
    for k, p in model.named_parameters():
        assert np.isfinite(sn.to_numpy(p.grad)).all(), k


def record_dtypes(model):
    """Wrap every leaf module's forward and backward to record what each returns."""
    seen = []
    for name, m in model.named_modules():
        if next(m.children(), None) is not None:
            continue

        def wrap(fn, what):
            def wrapped(x, *args):
                out = fn(x, *args)
                seen.append((what, getattr(out, "dtype", type(out))))
                return out
            return wrapped

        object.__setattr__(m, "forward", wrap(m.forward, f"{name} ({m.name}) output"))
        object.__setattr__(m, "backward", wrap(m.backward, f"{name} ({m.name}) dL/dx"))
    return seen


def all_float32(model, opt):
    """Every parameter, gradient, buffer and optimizer state array: (name, dtype) of those
    that are not float32 (int64 step counters aside)."""
    arrays = [(f"{k}.grad", p.grad) for k, p in model.named_parameters()]
    arrays += [(k, v) for k, v in model.state_dict().items() if not k.endswith("tracked")]
    arrays += [(f"optimizer {k}", v) for k, v in opt.state_dict().items()
               if isinstance(v, np.ndarray) and k.startswith("state.")]
    assert len(arrays) > 10
    return [(k, v.dtype) for k, v in arrays if v.dtype != np.float32]


@pytest.mark.parametrize("modern", [False, True])
def test_float32_lenet_training_step_stays_float32(modern, device):
    model = LeNet(modern=modern)
    x = dev(np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32))
    labels = dev(np.arange(16) % 10)
    model(x[:2])
    if not modern:
        nn.init.apply_init(model, [x[:2]], nn.init.init_cnn)
    opt = sn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss = nn.CrossEntropyLoss()
    seen = record_dtypes(model)
    for _ in range(2):  # the second step uses the momentum buffers of the first
        logits = model(x)
        value = loss(logits, labels)
        opt.zero_grad()
        gx = model.backward(loss.backward())
        opt.step()
    # The loss: a 0-d float32 array on the device (PyTorch's 0-d tensor).
    assert value.shape == () and value.dtype == np.float32 and np.isfinite(float(value))
    assert sn.get_array_module(value) is sn.backend.device_module()
    assert gx.dtype == np.float32
    wrong = [(what, dt) for what, dt in seen if dt != np.float32]
    assert len(seen) >= 4 * len(model.net) and not wrong, wrong
    assert not all_float32(model, opt), all_float32(model, opt)
    assert sum(k.endswith("momentum_buffer") for k in opt.state_dict()) == \
        len(list(model.parameters()))


class _Images:
    def __init__(self, n=64):
        rs = np.random.default_rng(0)
        self.images = rs.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        self.labels = rs.integers(0, 10, n).astype(np.int64)


@pytest.mark.parametrize("modern", [False, True])
def test_float32_lenet_stays_float32_through_trainer_fit(tmp_path, modern, device):
    """The same through Trainer.fit (with evaluate on a validation set), a cosine schedule
    and a checkpoint round trip."""
    model = LeNet(modern=modern)
    train = DataLoader(_Images(), batch_size=16, shuffle=True)
    val = DataLoader(_Images(32), batch_size=16)
    model(next(iter(train))[0][:2])
    opt = sn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = sn.optim.CosineAnnealingLR(opt, T_max=2)
    history = Trainer(max_epochs=1, out=tmp_path, progress=False, log=None).fit(
        model, train, val, opt, scheduler=sched)
    assert not all_float32(model, opt), all_float32(model, opt)
    assert all(np.isfinite(history[-1][k]) for k in ("train_loss", "val_loss", "val_acc"))
    resumed = LeNet(modern=modern)
    resumed(next(iter(train))[0][:2])
    opt2 = sn.optim.SGD(resumed.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    history = Trainer(max_epochs=2, out=tmp_path, progress=False, log=None).fit(
        resumed, train, val, opt2, resume=True,
        scheduler=sn.optim.CosineAnnealingLR(opt2, T_max=2))
    assert [row["epoch"] for row in history] == [1, 2]
    assert not all_float32(resumed, opt2), all_float32(resumed, opt2)
    xp = sn.backend.device_module()
    assert all(sn.get_array_module(v) is xp for v in resumed.state_dict().values())
    assert all(sn.get_array_module(s["momentum_buffer"]) is xp for s in opt2.state.values())


# What only a GPU layer does: refuse host arrays (and say where each is). These run on the
# CuPy double ("fakegpu") in every run, and on a real card ("gpu") when there is one.
@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)),
    (lambda: nn.Conv1d(2, 3, 3), (2, 2, 7)),
    (lambda: nn.Linear(4, 3), (2, 4)),
    (lambda: nn.BatchNorm2d(2), (2, 2, 3, 3)),
    (lambda: nn.BatchNorm1d(4), (3, 4)),
], ids=["Conv2d", "Conv1d", "Linear", "BatchNorm2d", "BatchNorm1d"])
def test_numpy_and_cupy_arrays_are_never_mixed(make, shape, device):
    """A numpy input to a layer on the GPU (and the reverse), or a gy from the other
    device, is a ValueError that names the layer and says which is where."""
    cupy = sn.backend.device_module("gpu")

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    layer = make().to(device="gpu")
    name = layer.name
    with pytest.raises(ValueError, match=rf"{name}: input is a \w+ array \(cpu\) but weight "
                                         rf"is a \w+ array \(gpu\)"):
        layer(x)
    y = layer(cupy.asarray(x))
    assert isinstance(y, cupy.ndarray)
    with pytest.raises(ValueError, match=rf"{name}.backward: the output is on gpu but gy on "
                                         rf"cpu"):
        layer.backward(np.ones(y.shape, np.float32))
    layer.to(device="cpu")
    with pytest.raises(ValueError, match=rf"{name}: input is a \w+ array \(gpu\) but weight "
                                         rf"is a \w+ array \(cpu\)"):
        layer(cupy.asarray(x))


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_batch_norm_without_affine_says_where_its_statistics_are(device):
    cupy = sn.backend.device_module("gpu")

    layer = nn.BatchNorm2d(2, affine=False).to(device="gpu")
    with pytest.raises(ValueError, match="BatchNorm2d: input is on cpu but the running "
                                         "statistics on gpu"):
        layer(np.ones((2, 2, 3, 3), np.float32))
    layer(cupy.ones((2, 2, 3, 3), cupy.float32))


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_losses_refuse_targets_on_the_other_device(device):
    cupy = sn.backend.device_module("gpu")

    logits = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="CrossEntropyLoss: logits are on cpu but labels "
                                         "on gpu"):
        nn.CrossEntropyLoss()(logits, cupy.arange(4) % 3)
    with pytest.raises(ValueError, match="MSELoss: input is on gpu but the target on cpu"):
        nn.MSELoss()(cupy.asarray(logits), logits)
    # numpy labels with cupy logits are moved along (PyTorch needs them on one device).
    value = nn.CrossEntropyLoss()(cupy.asarray(logits), np.arange(4) % 3)
    assert isinstance(value, cupy.ndarray)
    assert float(value) == pytest.approx(float(nn.CrossEntropyLoss()(logits, np.arange(4) % 3)),
                                         rel=1e-6)


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_gpu_model_fed_by_a_cpu_loader_is_one_clear_error(tmp_path, device):
    """The loader runs outside sn.use_device('gpu'): the first layer says so, and no
    checkpoint is written."""
    model = LeNet(modern=True)
    train = DataLoader(_Images(), batch_size=16)
    model(next(iter(train))[0][:2])
    opt = sn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    cpu_train = DataLoader(_Images(), batch_size=16)
    with sn.use_device("cpu"), pytest.raises(
            ValueError, match=r"Conv2d: input is a \w+ array \(cpu\) but weight is a \w+ "
                              r"array \(gpu\)"):
        Trainer(max_epochs=1, out=tmp_path, progress=False, log=None).fit(
            model, cpu_train, None, opt)
    assert not (tmp_path / "checkpoint.npz").exists()


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_cpu_checkpoint_resumes_on_the_gpu(tmp_path, device):
    """A checkpoint written on the CPU loads into a GPU model: parameters, buffers and
    momentum buffers land on the GPU in float32, and training goes on there."""
    cupy = sn.backend.device_module("gpu")

    with sn.use_device("cpu"):
        model = LeNet(modern=True)
        train = DataLoader(_Images(), batch_size=16)
        model(next(iter(train))[0][:2])
        opt = sn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        Trainer(max_epochs=1, out=tmp_path, progress=False, log=None).fit(
            model, train, None, opt)
    gmodel = LeNet(modern=True)
    gtrain = DataLoader(_Images(), batch_size=16)
    gmodel(next(iter(gtrain))[0][:2])
    gopt = sn.optim.SGD(gmodel.parameters(), lr=0.05, momentum=0.9)
    Trainer(max_epochs=2, out=tmp_path, progress=False, log=None).fit(
        gmodel, gtrain, None, gopt, resume=True)
    for k, v in gmodel.state_dict().items():
        assert isinstance(v.array, cupy.ndarray), k
    assert all(isinstance(s["momentum_buffer"], cupy.ndarray) for s in gopt.state.values())
    assert not all_float32(gmodel, gopt)
