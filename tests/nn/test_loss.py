"""nn.loss: CrossEntropyLoss and MSELoss. Values and dL/dinput against torch and against
central differences of the loss, for every reduction; extreme logits; bad labels."""
import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import TOL, torch_parity
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
    (LOGITS, [0, 3, 1, 2], ValueError, "CrossEntropyLoss: labels must be in [0, 3), got values "
                                       "in [0, 3]"),
    (LOGITS, [0, -1, 1, 2], ValueError, "CrossEntropyLoss: labels must be in [0, 3), got "
                                        "values in [-1, 2]"),
    (LOGITS, np.array([0.0, 1.0, 1.0, 2.0]), TypeError,
     "CrossEntropyLoss: expected integer class labels, got float64"),
    (LOGITS, [0, 1, 2], ValueError, "CrossEntropyLoss: expected labels of shape (4,) for "
                                    "logits (4, 3), got (3,)"),
    (LOGITS, LABELS[:, None], ValueError, "CrossEntropyLoss: expected labels of shape (4,) for "
                                          "logits (4, 3), got (4, 1)"),
    (LOGITS[0], LABELS[:1], ValueError, "CrossEntropyLoss: expected a 2-D input (N, C) logits, "
                                        "got 1-D input of shape (3,)"),
    (LOGITS.tolist(), LABELS, TypeError, "CrossEntropyLoss: expected a numpy or cupy array "
                                         "(N, C) logits, got list"),
    (LOGITS.astype(np.int64), LABELS, TypeError,
     "CrossEntropyLoss: expected a floating-point input, got int64"),
]


@pytest.mark.parametrize("logits, labels, exc, message", CE_BAD,
                         ids=["too-large", "negative", "float-labels", "short", "2-D-labels",
                              "1-D-logits", "list", "int-logits"])
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
