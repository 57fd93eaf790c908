"""nn.loss: CrossEntropyLoss and MSELoss. Values and dL/dinput against torch and against
central differences of the loss, for every reduction and every CrossEntropyLoss option
(weight, ignore_index, label_smoothing, class probabilities, (N, C, d1, ...) logits);
extreme logits; bad labels and options; no host sync on the GPU."""
import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import GPU_DEVICES, TOL, assert_equal, torch_parity
from scratchnet import backend, nn
from scratchnet.gradcheck import numerical_gradient, rel_error

DTYPES = [np.float64, np.float32]
REDUCTIONS = ["mean", "sum", "none"]


class WithTarget(nn.Module):
    """A loss as a one-input layer, so torch_parity can drive it: the scalar loss comes
    back as a 0-d array and backward passes the upstream gradient on."""

    def __init__(self, loss, target):
        super().__init__()
        self.loss = loss
        self.target = target

    def forward(self, x):
        target = sn.to_device(self.target, backend.device_of(x))
        out = self.loss(x, target)
        return out if self.loss.reduction == "none" else backend.get_array_module(x).asarray(
            out, dtype=x.dtype)

    def backward(self, gy):
        return self.loss.backward(gy)


class TorchWithTarget(torch.nn.Module):
    def __init__(self, fn, target, reduction):
        super().__init__()
        self.fn, self.target, self.reduction = fn, torch.from_numpy(target), reduction

    def forward(self, x):
        target = self.target if self.fn is F.cross_entropy else self.target.to(x.dtype)
        return self.fn(x, target, reduction=self.reduction)


def pair(kind, reduction, n=5, c=4, seed=3):
    rs = np.random.default_rng(seed)
    if kind == "ce":
        target = rs.integers(0, c, n)
        return (WithTarget(nn.CrossEntropyLoss(reduction), target),
                TorchWithTarget(F.cross_entropy, target, reduction))
    target = rs.standard_normal((n, c))
    return (WithTarget(nn.MSELoss(reduction), target),
            TorchWithTarget(F.mse_loss, target, reduction))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["ce", "mse"])
def test_matches_torch(kind, reduction, dtype, device):
    layer, tlayer = pair(kind, reduction)
    x = np.random.default_rng(10).standard_normal((5, 4)) * 3
    torch_parity(layer, tlayer, x, dtype, steps=3, device=device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_value_and_default_backward_match_torch(reduction, dtype, device):
    """The call returns a 0-d array on the input's device, as PyTorch returns a 0-d
    tensor (an array for 'none'); backward() starts from 1."""
    rs = np.random.default_rng(4)
    x = (rs.standard_normal((6, 5)) * 2).astype(dtype)
    labels, target = rs.integers(0, 5, 6), rs.standard_normal((6, 5)).astype(dtype)
    xd = sn.to_device(x, device)
    for loss, fn, t in ((nn.CrossEntropyLoss(reduction), F.cross_entropy, labels),
                        (nn.MSELoss(reduction), F.mse_loss, target)):
        value = loss(xd, sn.to_device(t, device))
        xt = torch.tensor(x, requires_grad=True)
        tv = fn(xt, torch.from_numpy(t), reduction=reduction)
        assert isinstance(value, backend.device_module().ndarray)
        assert value.dtype == dtype and value.shape == tuple(tv.shape)
        if reduction == "none":
            assert rel_error(value, tv.detach().numpy()) <= TOL[dtype]
            gy = rs.standard_normal(value.shape).astype(dtype)
            gx = loss.backward(sn.to_device(gy, device))
            tv.backward(torch.from_numpy(gy))
        else:
            assert abs(float(value) - tv.item()) <= TOL[dtype] * abs(tv.item())
            assert value.item() == float(value) and f"{value:.3f}" == f"{float(value):.3f}"
            gx = loss.backward()
            tv.backward()
        assert gx.dtype == dtype and backend.device_of(gx) == device
        assert rel_error(gx, xt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("kind", ["ce", "mse"])
def test_device_scalar_upstream_gradient_stays_on_the_device(kind, fakegpu):
    """loss.backward(gy) with a 0-d device gy scales on the device: no host sync."""
    xp = sn.backend.device_module()
    rs = np.random.default_rng(7)
    x = xp.asarray(rs.standard_normal((4, 3)))
    t = xp.asarray(rs.integers(0, 3, 4) if kind == "ce" else rs.standard_normal((4, 3)))
    loss = nn.CrossEntropyLoss() if kind == "ce" else nn.MSELoss()
    loss(x, t)
    g1 = sn.to_numpy(loss.backward())
    loss(x, t)
    with fakegpu.counting() as c:
        g = loss.backward(xp.asarray(2.5))
    assert c.syncs == 0, c
    np.testing.assert_allclose(sn.to_numpy(g), 2.5 * g1, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("kind", ["ce", "mse"])
def test_finite_differences(kind, n, reduction, device):
    """Central differences of the loss as a function of its input, in float64."""
    rs = np.random.default_rng(5)
    x = sn.to_device(rs.standard_normal((n, 3)) * 2, device)
    if kind == "ce":
        loss, t = nn.CrossEntropyLoss(reduction), rs.integers(0, 3, n)
    else:
        loss, t = nn.MSELoss(reduction), rs.standard_normal((n, 3))
    t = sn.to_device(t, device)
    out = loss(x, t)
    w = sn.to_device(rs.standard_normal(out.shape), device) if reduction == "none" else 1.0
    ana = loss.backward(w if reduction == "none" else None)
    num = numerical_gradient(lambda: (loss(x, t) * w).sum(), x)
    assert rel_error(ana, num) < 1e-7


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_of_huge_logits_is_finite_and_matches_torch(dtype):
    x = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    labels = np.array([0, 2, 1])
    loss = nn.CrossEntropyLoss(reduction="none")
    # Overflow, NaN and 0 * inf would raise; underflow of exp(-2e4) to 0 is the intent.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(x, labels)
        gx = loss.backward(np.ones(3, dtype))
    assert np.isfinite(value).all() and np.isfinite(gx).all()
    xt = torch.tensor(x, requires_grad=True)
    tv = F.cross_entropy(xt, torch.from_numpy(labels), reduction="none")
    tv.sum().backward()
    np.testing.assert_allclose(value, tv.detach().numpy(), rtol=TOL[dtype])
    assert value[0] == 0.0 and value[1] == dtype(1e4 - 1.0)
    assert rel_error(gx, xt.grad.numpy()) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_float_dtype_is_kept_even_with_float64_upstream_or_target(dtype):
    """No silent upcast: a float32 network's backward stays float32."""
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    ce = nn.CrossEntropyLoss(reduction="none")
    ce(x, [0, 1, 3])
    assert ce.backward(np.ones(3)).dtype == dtype
    mse = nn.MSELoss()
    mse(x, np.zeros((3, 4)))
    assert mse.backward().dtype == dtype
    mse = nn.MSELoss(reduction="none")
    mse(x, np.zeros((3, 4)))
    assert mse.backward(np.ones((3, 4))).dtype == dtype


def test_labels_may_be_a_list():
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert nn.CrossEntropyLoss()(x, [0, 1, 3]) == nn.CrossEntropyLoss()(x, np.array([0, 1, 3]))


LOGITS = np.random.default_rng(6).standard_normal((4, 3)).astype(np.float32)
LABELS = np.array([0, 2, 1, 2])
CE_BAD = [
    (LOGITS, [0, 3, 1, 2], ValueError, "CrossEntropyLoss: labels must be in [0, 3) (or "
                                       "ignore_index -100), got values in [0, 3]"),
    (LOGITS, [0, -1, 1, 2], ValueError, "CrossEntropyLoss: labels must be in [0, 3) (or "
                                        "ignore_index -100), got values in [-1, 2]"),
    (LOGITS, np.array([0.0, 1.0, 1.0, 2.0]), ValueError,
     "CrossEntropyLoss: a floating-point target holds class probabilities, of the logits' "
     "shape (4, 3); got (4,) (class indices are integers)"),
    (LOGITS, [0, 1, 2], ValueError, "CrossEntropyLoss: expected labels of shape (4,) for "
                                    "logits (4, 3), got (3,)"),
    (LOGITS, LABELS[:, None], ValueError, "CrossEntropyLoss: expected labels of shape (4,) for "
                                          "logits (4, 3), got (4, 1)"),
    (LOGITS[0], LABELS[:1], ValueError, "CrossEntropyLoss: expected a 2-D or higher input "
                                        "(N, C, ...) logits, got 1-D input of shape (3,)"),
    (LOGITS.tolist(), LABELS, TypeError, "CrossEntropyLoss: expected a numpy or cupy array "
                                         "(N, C, ...) logits, got list"),
    (LOGITS.astype(np.int64), LABELS, TypeError,
     "CrossEntropyLoss: expected a floating-point input, got int64"),
    (LOGITS, LABELS.astype(bool), TypeError, "CrossEntropyLoss: expected integer class labels "
                                             "or floating-point class probabilities, got bool"),
    (LOGITS, LOGITS[:, :2].copy(), ValueError, "CrossEntropyLoss: a floating-point target "
                                               "holds class probabilities, of the logits' "
                                               "shape (4, 3); got (4, 2)"),
    (LOGITS[:, :, None], LABELS, ValueError, "CrossEntropyLoss: expected labels of shape "
                                             "(4, 1) for logits (4, 3, 1), got (4,)"),
]


@pytest.mark.parametrize("logits, labels, exc, message", CE_BAD,
                         ids=["too-large", "negative", "float-labels", "short", "2-D-labels",
                              "1-D-logits", "list", "int-logits", "bool-labels",
                              "probabilities-shape", "K-dim-labels"])
def test_cross_entropy_bad_input(logits, labels, exc, message, device):
    if device != "cpu" and "must be in" in message:
        pytest.skip("on the GPU a label range is checked when the loss is read: "
                    "test_out_of_range_labels_on_the_gpu_are_reported_at_the_next_read")
    move = (lambda a: sn.to_device(a, device) if isinstance(a, np.ndarray) else a)
    good_logits, good_labels = move(LOGITS), move(LABELS)
    loss = nn.CrossEntropyLoss()
    loss(good_logits, good_labels)
    fresh = copy.deepcopy(loss)
    with pytest.raises(exc, match=re.escape(message)):
        loss(move(logits), move(labels))
    # The last good forward is still what backward sees, as in an untouched copy.
    np.testing.assert_array_equal(sn.to_numpy(loss.backward()), sn.to_numpy(fresh.backward()))
    assert float(loss(good_logits, good_labels)) == float(
        nn.CrossEntropyLoss()(good_logits, good_labels))


@pytest.mark.parametrize("bad, shown", [(3, 3), (-1, -1), (2**40, 2**40)])
def test_out_of_range_labels_on_the_gpu_are_reported_at_the_next_read(bad, shown, fakegpu):
    """Checking labels at once would wait for the GPU every step: the loss keeps the
    largest label on the device, and check_labels (the Trainer calls it when it reads
    the loss) raises the CPU's error then."""
    xp = sn.backend.device_module()
    loss = nn.CrossEntropyLoss()
    logits = xp.asarray(LOGITS)
    with fakegpu.counting() as c:
        loss(logits, xp.asarray(LABELS))
        loss(logits, xp.asarray(np.array([0, bad, 1, 2])))
        loss(logits, xp.asarray(LABELS))
    assert c.syncs == 0, c
    with pytest.raises(ValueError, match=re.escape(
            f"CrossEntropyLoss: labels must be in [0, 3), got a label {shown} in a batch")):
        loss.check_labels()
    loss.check_labels()  # reported once; good batches since then pass
    loss(logits, xp.asarray(LABELS))
    loss.check_labels()


@pytest.mark.parametrize("target, exc, message", [
    (np.zeros((4, 2), np.float32), ValueError,
     "MSELoss: expected a target of shape (4, 3), got (4, 2)"),
    (np.zeros((3, 4), np.float32), ValueError,
     "MSELoss: expected a target of shape (4, 3), got (3, 4)"),
    (np.zeros(12, np.float32), ValueError,
     "MSELoss: expected a target of shape (4, 3), got (12,)"),
], ids=["columns", "transposed", "flat"])
def test_mse_target_shape_mismatch(target, exc, message):
    loss = nn.MSELoss()
    good = np.ones((4, 3), np.float32)
    loss(LOGITS, good)
    fresh = copy.deepcopy(loss)
    with pytest.raises(exc, match=re.escape(message)):
        loss(LOGITS, target)
    np.testing.assert_array_equal(loss.backward(), fresh.backward())
    assert loss(LOGITS, good) == nn.MSELoss()(LOGITS, good)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cls", [nn.CrossEntropyLoss, nn.MSELoss])
def test_backward_before_forward_and_wrong_gy(cls, reduction):
    loss = cls(reduction)
    name = cls.__name__
    gy = np.ones(4, np.float32) if reduction == "none" else None
    if cls is nn.MSELoss and reduction == "none":
        gy = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=f"{name}.backward: called before forward"):
        loss.backward(gy)
    target = LABELS if cls is nn.CrossEntropyLoss else np.ones((4, 3), np.float32)
    loss(LOGITS, target)
    fresh = copy.deepcopy(loss)
    if reduction == "none":
        with pytest.raises(ValueError, match=f"{name}.backward: reduction='none' needs gy"):
            loss.backward()
        with pytest.raises(ValueError, match=re.escape(f"{name}.backward: expected gy of shape "
                                                       f"{gy.shape} (the forward output), "
                                                       "got (5,)")):
            loss.backward(np.ones(5, np.float32))
    else:
        with pytest.raises(ValueError, match=re.escape(
                f"{name}.backward: reduction={reduction!r} gives a scalar loss, so gy must be "
                "a scalar, got shape (4,)")):
            loss.backward(np.ones(4, np.float32))
    np.testing.assert_array_equal(loss.backward(gy), fresh.backward(gy))


def test_bad_reduction_is_refused():
    with pytest.raises(ValueError, match=re.escape("CrossEntropyLoss: reduction must be one of "
                                                   "('mean', 'sum', 'none'), got 'avg'")):
        nn.CrossEntropyLoss("avg")


def test_upstream_scalar_scales_the_gradient():
    loss = nn.CrossEntropyLoss()
    loss(LOGITS, LABELS)
    g1 = loss.backward()
    loss(LOGITS, LABELS)
    np.testing.assert_allclose(loss.backward(2.5), 2.5 * g1, rtol=1e-6)


def test_no_grad_keeps_no_cache():
    loss = nn.CrossEntropyLoss()
    with sn.no_grad():
        value = loss(LOGITS, LABELS)
    assert float(value) == float(nn.CrossEntropyLoss()(LOGITS, LABELS))
    with pytest.raises(ValueError, match="CrossEntropyLoss.backward: called before forward"):
        loss.backward()


class TorchLoss(torch.nn.Module):
    """A torch loss module (its weight buffer named as WithTarget's: loss.weight) with a
    fixed target; a floating target takes the input's dtype."""

    def __init__(self, loss, target):
        super().__init__()
        self.loss, self.target = loss, torch.from_numpy(target)

    def forward(self, x):
        t = self.target.to(x.dtype) if self.target.is_floating_point() else self.target
        return self.loss(x, t)


C = 4
# (name, logits shape, target kind, CrossEntropyLoss keywords): each new argument alone,
# together, with probabilities and with K-dimensional inputs.
CE_CONFIGS = [
    ("weight", (6, C), "labels", dict(weight=[0.3, 2.0, 1.0, 0.7])),
    ("ignore", (6, C), "labels", dict()),  # labels hold the default ignore_index, -100
    ("ignore-a-class", (6, C), "labels", dict(ignore_index=2)),
    ("ignore-5", (6, C), "labels", dict(ignore_index=5)),
    ("smoothing", (6, C), "labels", dict(label_smoothing=0.2)),
    ("all", (6, C), "labels", dict(weight=[0.3, 2.0, 1.0, 0.7], label_smoothing=0.15)),
    ("all-ignored-class", (6, C), "labels", dict(weight=[0.3, 2.0, 1.0, 0.7], ignore_index=0,
                                                 label_smoothing=0.3)),
    ("probabilities", (6, C), "probs", dict()),
    ("probabilities-all", (6, C), "probs", dict(weight=[0.3, 2.0, 1.0, 0.7],
                                                label_smoothing=0.25)),
    ("K-dim", (3, C, 2, 5), "labels", dict()),
    ("K-dim-all", (3, C, 5), "labels", dict(weight=[0.3, 2.0, 1.0, 0.7], label_smoothing=0.1)),
    ("K-dim-probabilities", (2, C, 3, 2), "probs", dict(weight=[0.3, 2.0, 1.0, 0.7],
                                                        label_smoothing=0.1)),
    ("smoothing-1", (5, C), "labels", dict(label_smoothing=1.0)),
]


def ce_case(shape, kind, kw, seed=3):
    """Logits, target and the keywords for torch: labels with ignored entries (-100, and
    the ignore_index when it is a class) unless every one would be; probabilities that
    sum to 1 over the class axis."""
    rs = np.random.default_rng(seed)
    x = rs.standard_normal(shape) * 3
    if kind == "probs":
        t = rs.random(shape)
        t /= t.sum(axis=1, keepdims=True)
    else:
        t = rs.integers(0, C, shape[:1] + shape[2:])
        flat = t.reshape(-1)
        flat[1] = kw.get("ignore_index", -100)
        flat[-1] = -100 if "ignore_index" not in kw else flat[-1]
    tkw = dict(kw)
    if "weight" in kw:
        tkw["weight"] = torch.tensor(kw["weight"], dtype=torch.float64)
    return x, t, tkw


def ce_pair(kw, tkw, reduction, target):
    return (WithTarget(nn.CrossEntropyLoss(reduction, **kw), target),
            TorchLoss(torch.nn.CrossEntropyLoss(reduction=reduction, **tkw), target))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, shape, kind, kw", CE_CONFIGS, ids=[c[0] for c in CE_CONFIGS])
def test_cross_entropy_options_match_torch(name, shape, kind, kw, reduction, dtype, device):
    """weight, ignore_index, label_smoothing, probabilities and (N, C, d1, ...) inputs:
    the loss and dL/dlogits as torch.nn.CrossEntropyLoss (float64 within 4e-15)."""
    x, t, tkw = ce_case(shape, kind, kw)
    layer, tlayer = ce_pair(kw, tkw, reduction, t)
    worst = torch_parity(layer, tlayer, x, dtype, steps=2, device=device)
    record = test_cross_entropy_options_match_torch.__dict__.setdefault("worst", {})
    record[dtype] = max(record.get(dtype, 0.0), worst)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, shape, kind, kw", CE_CONFIGS, ids=[c[0] for c in CE_CONFIGS])
def test_cross_entropy_options_finite_differences(name, shape, kind, kw, reduction, device):
    """Central differences of the loss as a function of the logits, in float64."""
    x, t, _ = ce_case(shape, kind, kw, seed=8)
    loss = nn.CrossEntropyLoss(reduction, **kw).double()
    x, t = sn.to_device(x, device), sn.to_device(t, device)
    out = loss(x, t)
    rs = np.random.default_rng(9)
    w = sn.to_device(rs.standard_normal(out.shape), device) if reduction == "none" else 1.0
    ana = loss.backward(w if reduction == "none" else None)
    num = numerical_gradient(lambda: (loss(x, t) * w).sum(), x)
    assert ana.shape == x.shape and rel_error(ana, num) < 1e-7


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_labels_ignored_gives_torchs_nan_mean_and_zero_gradient(dtype, device):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    labels = np.full(3, -100)
    for kw in (dict(), dict(label_smoothing=0.2, weight=[1.0, 2.0, 3.0, 4.0])):
        tkw = dict(kw, weight=torch.from_numpy(np.array(kw["weight"], dtype))) if kw else kw
        for reduction in ("mean", "sum"):
            loss = nn.CrossEntropyLoss(reduction, **kw).to(dtype=dtype)
            value = loss(sn.to_device(x, device), sn.to_device(labels, device))
            gx = loss.backward()
            xt = torch.tensor(x, requires_grad=True)
            tv = F.cross_entropy(xt, torch.from_numpy(labels), reduction=reduction, **tkw)
            tv.backward()
            np.testing.assert_array_equal(sn.to_numpy(value), tv.detach().numpy())
            np.testing.assert_array_equal(sn.to_numpy(gx), xt.grad.numpy())


def old_cross_entropy(x, labels, reduction, gy):
    """The loss and gradient as scratchnet computed them before weight, ignore_index and
    label smoothing, operation for operation."""
    xp = sn.get_array_module(x)
    z = x - x.max(axis=1, keepdims=True)
    logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
    picked = -logp[xp.arange(x.shape[0]), labels]
    loss = picked.mean() if reduction == "mean" else picked.sum() if reduction == "sum" \
        else picked
    g = xp.exp(logp)
    g[xp.arange(x.shape[0]), labels] -= 1
    if reduction == "none":
        return loss, g * gy.reshape(-1, 1)
    return loss, g * x.dtype.type(gy / (x.shape[0] if reduction == "mean" else 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_plain_cross_entropy_is_bit_for_bit_what_it_was(reduction, dtype, device):
    rs = np.random.default_rng(12)
    x = sn.to_device((rs.standard_normal((7, 5)) * 3).astype(dtype), device)
    labels = sn.to_device(rs.integers(0, 5, 7), device)
    gy = sn.to_device(rs.standard_normal(7).astype(dtype), device) if reduction == "none" \
        else 1.0
    loss = nn.CrossEntropyLoss(reduction)
    value = loss(x, labels)
    gx = loss.backward(gy if reduction == "none" else None)
    want, gwant = old_cross_entropy(x, labels, reduction, gy)
    assert_equal(value, want)
    assert_equal(gx, gwant)


@pytest.mark.parametrize("kw", [dict(), dict(ignore_index=7), dict(weight=[1.0, 2.0, 0.5]),
                                dict(label_smoothing=0.1)], ids=str)
def test_a_cross_entropy_step_on_the_gpu_makes_no_host_sync(kw, fakegpu):
    """Ignored labels, weights and smoothing stay on the device; the plain step takes 18
    operations (19 before these options), the lazy label check included."""
    xp = sn.backend.device_module()
    x = xp.asarray(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))
    y = xp.asarray(np.array([0, 1, 2, kw.get("ignore_index", -100), 1, 0, 2, 0]))
    loss = nn.CrossEntropyLoss(**kw)
    for _ in range(2):
        with fakegpu.counting() as c:
            loss(x, y)
            loss.backward()
    assert c.syncs == 0, c
    if not kw:
        assert c.ops <= 18, c
    loss.check_labels()  # the ignored entries are not out of range


@pytest.mark.parametrize("ignore_index, bad, shown", [(-100, -1, -1), (-100, 3, 3),
                                                      (5, -100, -100), (1, 4, 4)])
def test_the_gpu_label_check_skips_ignored_entries_only(ignore_index, bad, shown, fakegpu):
    xp = sn.backend.device_module()
    loss = nn.CrossEntropyLoss(ignore_index=ignore_index)
    logits = xp.asarray(LOGITS)
    with fakegpu.counting() as c:
        loss(logits, xp.asarray(np.array([0, ignore_index, 1, 2])))
    assert c.syncs == 0, c
    loss.check_labels()
    loss(logits, xp.asarray(np.array([0, bad, ignore_index, 2])))
    with pytest.raises(ValueError, match=re.escape(
            f"CrossEntropyLoss: labels must be in [0, 3), got a label {shown} in a batch")):
        loss.check_labels()


def test_ignored_labels_pass_the_cpu_check_and_others_do_not():
    loss = nn.CrossEntropyLoss(ignore_index=7)
    loss(LOGITS, np.array([0, 7, 1, 2]))
    with pytest.raises(ValueError, match=re.escape(
            "CrossEntropyLoss: labels must be in [0, 3) (or ignore_index 7), got values in "
            "[-100, 2]")):
        loss(LOGITS, np.array([0, -100, 7, 2]))
    with pytest.raises(ValueError, match=re.escape(
            "CrossEntropyLoss: labels must be in [0, 3), got values in [0, 3]")):
        nn.CrossEntropyLoss(ignore_index=1)(LOGITS, np.array([0, 3, 1, 2]))


@pytest.mark.parametrize("kw, exc, message", [
    (dict(label_smoothing=-0.1), ValueError,
     "CrossEntropyLoss: label_smoothing must be in [0, 1], got -0.1"),
    (dict(label_smoothing=1.5), ValueError,
     "CrossEntropyLoss: label_smoothing must be in [0, 1], got 1.5"),
    (dict(label_smoothing=float("nan")), ValueError,
     "CrossEntropyLoss: label_smoothing must be in [0, 1], got nan"),
    (dict(label_smoothing="0.1"), TypeError,
     "CrossEntropyLoss: label_smoothing must be a number in [0, 1], got str"),
    (dict(ignore_index=1.0), TypeError, "CrossEntropyLoss: ignore_index must be an int, got "
                                        "float"),
    (dict(weight=[[1.0, 2.0, 3.0]]), ValueError,
     "CrossEntropyLoss: weight must be a 1-D array of one weight per class, got shape (1, 3)"),
    (dict(weight=[]), ValueError,
     "CrossEntropyLoss: weight must be a 1-D array of one weight per class, got shape (0,)"),
    (dict(weight=["a", "b", "c"]), TypeError, "CrossEntropyLoss: weight must hold numbers, "
                                              "got <U1"),
    (dict(reduction=np.ones(3)), ValueError,
     "CrossEntropyLoss: reduction must be one of ('mean', 'sum', 'none'), got ndarray"),
], ids=["smoothing<0", "smoothing>1", "smoothing-nan", "smoothing-str", "ignore-float",
        "weight-2-D", "weight-empty", "weight-str", "reduction-array"])
def test_bad_options_are_refused_by_name(kw, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        nn.CrossEntropyLoss(**kw)


def test_weight_of_the_wrong_length_is_refused_and_changes_nothing(device):
    loss = nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])
    good, labels = sn.to_device(LOGITS, device), sn.to_device(LABELS, device)
    loss(good, labels)
    fresh = copy.deepcopy(loss)
    wide = sn.to_device(np.ones((4, 4), np.float32), device)
    with pytest.raises(ValueError, match=re.escape(
            "CrossEntropyLoss: weight has 3 entries but the logits have 4 classes")):
        loss(wide, labels)
    assert_equal(loss.backward(), fresh.backward())
    assert_equal(loss(good, labels), fresh(good, labels))


def test_probability_targets_of_the_wrong_shape_change_nothing(device):
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    good = sn.to_device(LOGITS, device)
    probs = sn.to_device(np.full((4, 3), 1 / 3, np.float32), device)
    loss(good, probs)
    fresh = copy.deepcopy(loss)
    with pytest.raises(ValueError, match=re.escape("CrossEntropyLoss: a floating-point target "
                                                   "holds class probabilities, of the logits' "
                                                   "shape (4, 3); got (3, 4)")):
        loss(good, sn.to_device(np.full((3, 4), 0.25, np.float32), device))
    assert_equal(loss.backward(), fresh.backward())


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_weight_on_another_device_is_refused(device):
    loss = nn.CrossEntropyLoss(weight=np.ones(3, np.float32))  # made on the GPU: there
    assert sn.backend.device_of(loss.weight) == "gpu"
    loss.to("cpu")
    with pytest.raises(ValueError, match=re.escape(
            "CrossEntropyLoss: logits are on gpu but weight on cpu; move the loss with "
            ".to(...)")):
        loss(sn.to_device(LOGITS), sn.to_device(LABELS))
    loss.to("gpu")
    assert np.isfinite(float(loss(sn.to_device(LOGITS), sn.to_device(LABELS))))


def test_weight_is_a_buffer_that_follows_the_loss():
    """As torch's: in state_dict, cast by .double(), its dtype taken from the default."""
    loss = nn.CrossEntropyLoss(weight=[1, 2, 3])
    assert loss.weight.dtype == np.float32 and list(loss.state_dict()) == ["weight"]
    assert loss.double().weight.dtype == np.float64
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    # An absent (None) weight is no key to load either, as in torch.
    plain = nn.CrossEntropyLoss()
    plain.load_state_dict(nn.CrossEntropyLoss().state_dict())
    torch.nn.CrossEntropyLoss().load_state_dict(torch.nn.CrossEntropyLoss().state_dict())
    assert plain.weight is None
    with pytest.raises(ValueError, match=r"unexpected keys \['weight'\]"):
        plain.load_state_dict(loss.state_dict())
    loss.load_state_dict({"weight": np.array([3, 2, 1], np.float32)})
    np.testing.assert_array_equal(loss.weight, [3, 2, 1])


def test_probability_targets_refuse_a_nonnegative_ignore_index_as_torch_does(device):
    x = sn.to_device(np.zeros((2, 3)), device)
    p = sn.to_device(np.full((2, 3), 1 / 3), device)
    with pytest.raises(RuntimeError):
        F.cross_entropy(torch.zeros(2, 3), torch.full((2, 3), 1 / 3), ignore_index=1)
    with pytest.raises(ValueError, match="ignore_index=1 needs class labels"):
        nn.CrossEntropyLoss(ignore_index=1)(x, p)
    assert float(nn.CrossEntropyLoss(ignore_index=-1)(x, p)) == pytest.approx(np.log(3))
