"""gradcheck: numerical gradients, and check_module's report on correct and on broken
layers (a wrong gradient, a missing dL/dx), in full and in sampled mode, without touching
the caller's module; and the helpers every layer test uses (tests/helpers.py) failing a
wrong float32 result that the old floor of 1 let through."""
import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import EPS32, TOL, assert_equal, dev, fd_check, rel_err, torch_parity
from scratchnet import gradcheck, nn
from scratchnet.nn.parameter import Parameter


class DoubleGrad(nn.Module):
    """Broken on purpose: forward is the identity, backward returns 2 * gy."""

    def forward(self, x):
        self.cache_for_backward(x.shape)
        return x

    def backward(self, gy):
        self.pop_cache(gy)
        return 2 * gy


class NoInputGrad(nn.Module):
    """Broken on purpose: y = 3 x, and backward forgets to return dL/dx."""

    def forward(self, x):
        self.cache_for_backward(x.shape)
        return 3 * x

    def backward(self, gy):
        self.pop_cache(gy)


class Scale(nn.Module):
    """y = w * x (per feature); ``wrong`` scales w's gradient, leaving dL/dx right."""

    def __init__(self, n, wrong=1.0):
        super().__init__()
        self.w = Parameter(np.linspace(0.5, 1.5, n))
        self.wrong = wrong

    def forward(self, x):
        self.cache_for_backward(x.shape, x)
        return x * self.w.array

    def backward(self, gy):
        (x,) = self.pop_cache(gy)
        self.w.accumulate(self.wrong * (gy * x).sum(axis=0))
        return gy * self.w.array


def test_numerical_gradient_of_a_cubic(device):
    x0 = np.random.default_rng(0).standard_normal((3, 4))
    x = dev(x0.copy())
    g = gradcheck.numerical_gradient(lambda: (x ** 3).sum(), x)
    assert g.shape == x.shape
    np.testing.assert_allclose(g, 3 * x0 ** 2, rtol=1e-8)
    assert_equal(x, x0)  # perturbations undone
    some = gradcheck.numerical_gradient(lambda: (x ** 3).sum(), x, indices=[0, 5, 11])
    np.testing.assert_allclose(some, 3 * x0.reshape(-1)[[0, 5, 11]] ** 2, rtol=1e-8)


def test_directional_derivative(device):
    rs = np.random.default_rng(1)
    x0, d = rs.standard_normal(5), rs.standard_normal(5)
    x = dev(x0.copy())
    got = gradcheck.directional_derivative(lambda: (x ** 2).sum(), x, dev(d))
    assert got == pytest.approx(2 * x0 @ d, rel=1e-8)
    assert_equal(x, x0)


def test_rel_error(device):
    assert gradcheck.rel_error(dev(np.ones(3)), np.ones(3)) == 0.0
    assert gradcheck.rel_error(np.zeros(3), dev(np.zeros(3))) == 0.0
    assert gradcheck.rel_error(dev(np.array([1.0, 2.0])), dev(np.array([1.0, 4.0]))) == 0.5
    assert gradcheck.rel_error([1.0, 2.0], [1.0, 4.0]) == 0.5
    # An all-zero numeric gradient is compared with the analytic one's own scale...
    assert gradcheck.rel_error([1e-16, 0.0], [0.0, 0.0]) == 1.0
    # ... and a floor makes small gradients compare in absolute terms.
    assert gradcheck.rel_error([1e-16], [3e-12], floor=1e-2) < 1e-9
    assert gradcheck.rel_error([2.0], [1.0], floor=1e-2) == 1.0


def test_correct_layer_passes_with_a_row_per_tensor(device):
    x = dev(np.random.default_rng(0).standard_normal((3, 4)))
    report = gradcheck.check_module(nn.Linear(4, 2), x)
    assert list(report.rows) == ["input", "weight", "bias"]
    assert report.ok and bool(report) and report.max_error() < 1e-7
    for name, (err, checked, method) in report.rows.items():
        assert method == "full" and checked == {"input": 12, "weight": 8, "bias": 2}[name]


def test_wrong_input_gradient_fails(device):
    x = dev(np.random.default_rng(0).standard_normal((2, 3)))
    report = gradcheck.check_module(DoubleGrad(), x)
    assert list(report.rows) == ["input"]
    assert not report.ok and not bool(report)
    assert report.rows["input"][0] == pytest.approx(1.0)  # |2g - g| / |g|
    text = str(report)
    assert "NO" in text and text.splitlines()[-1].startswith("FAILED: max error 1.00e+00")


def test_wrong_parameter_gradient_fails_only_its_row(device):
    """Scale's parameter is made on the host: check_module moves its copy to x's device."""
    x = dev(np.random.default_rng(0).standard_normal((4, 3)))
    report = gradcheck.check_module(Scale(3, wrong=1.01), x)
    assert report.rows["input"][0] < 1e-8
    assert report.rows["w"][0] == pytest.approx(0.01, rel=1e-3)
    assert not report.ok
    assert gradcheck.check_module(Scale(3), x).ok
    # A tolerance above the error lets it through.
    assert gradcheck.check_module(Scale(3, wrong=1.01), x, rtol=0.02).ok


def test_report_prints_a_table(capsys, device):
    report = gradcheck.check_module(nn.Linear(3, 2), dev(np.ones((2, 3))))
    print(report)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["tensor", "rel.", "error", "checked", "method", "ok"]
    assert [line.split()[0] for line in lines[1:4]] == ["input", "weight", "bias"]
    assert all(line.split()[-1] == "yes" for line in lines[1:4])
    assert lines[4].startswith("all: max error ") and lines[4].endswith("(tolerance 1e-06)")


def test_sampled_mode_for_large_tensors(device):
    x = dev(np.random.default_rng(0).standard_normal((2, 40)))
    report = gradcheck.check_module(nn.Linear(40, 30), x, max_full=1024, samples=16)
    err, checked, method = report.rows["weight"]
    assert method == "sample" and checked == 17 and err < 1e-6
    assert report.rows["input"][2] == "full" and report.rows["bias"][2] == "full"
    bad = gradcheck.check_module(Scale(40, wrong=1.01), x, max_full=10, samples=8)
    assert bad.rows["w"][2] == "sample" and not bad.ok
    # More samples asked than entries: all of them, sampled.
    small = gradcheck.check_module(nn.Linear(3, 2), dev(np.ones((2, 3))), max_full=4,
                                   samples=64)
    assert small.rows["weight"][1:] == (7, "sample") and small.ok


def test_users_module_is_left_as_it_was(device):
    sn.manual_seed(5)  # not check_module's seed
    layer = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    x = dev(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    layer(x)
    layer(x)
    layer.backward(dev(np.ones((5, 3), np.float32)))
    before = {k: sn.to_numpy(v).copy() for k, v in layer.state_dict().items()}
    grads = {k: sn.to_numpy(p.grad).copy() for k, p in layer.named_parameters()}
    rng_state = sn.backend.rng().bit_generator.state
    np_state = np.random.get_state()[1].copy()
    device_rng = sn.backend.device_rng_state()
    report = gradcheck.check_module(layer, x)
    assert report.ok and list(report.rows)[0] == "input", report
    for k, v in layer.state_dict().items():
        assert v.dtype == before[k].dtype
        assert sn.get_array_module(v) is sn.get_array_module(x)
        assert_equal(v, before[k], err_msg=k)
    for k, p in layer.named_parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert_equal(p.grad, grads[k], err_msg=k)
    assert all(m.training for m in layer.modules())
    assert sn.backend.rng().bit_generator.state == rng_state
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    if device != "cpu":  # the generator of the GPU's dropout masks
        assert sn.backend.device_rng_state() == device_rng
    lazy = nn.LazyLinear(2)
    assert list(fd_check(lazy, x).rows) == ["input", "weight", "bias"]
    assert lazy.weight.array is None


def test_explicit_gy_and_no_input_row(device):
    """gy may be a host array for a device x: check_module moves it."""
    x = dev(np.random.default_rng(0).standard_normal((2, 3)))
    report = gradcheck.check_module(nn.Linear(3, 2), x, gy=np.ones((2, 2)), check_input=False)
    assert list(report.rows) == ["weight", "bias"] and report.ok


def test_dropout_is_checked_with_one_mask(device):
    x = dev(np.random.default_rng(0).standard_normal((4, 6)))
    report = gradcheck.check_module(nn.Dropout(0.5), x, seed=3)
    assert report.ok and list(report.rows) == ["input"], report


@pytest.mark.parametrize("net", [
    lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)),
    lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Sigmoid()),
], ids=["linear-bn", "conv-bn"])
def test_bias_before_batchnorm_has_zero_gradient_and_passes(net, device):
    """BatchNorm subtracts the mean, so the bias before it has a zero gradient: only
    rounding noise is compared, in absolute terms (atol), not relative to zero."""
    shape = (4, 4) if isinstance(net()[0], nn.Linear) else (3, 2, 4, 4)
    x = dev(np.random.default_rng(0).standard_normal(shape))
    report = gradcheck.check_module(net(), x)
    assert report.ok and list(report.rows)[0] == "input", report


def test_missing_input_gradient_fails(device):
    """A backward that returns None for dL/dx is a failed "input" row, never a pass."""
    x = dev(np.random.default_rng(0).standard_normal((2, 3)))
    report = gradcheck.check_module(NoInputGrad(), x)
    assert list(report.rows) == ["input"] and report.rows["input"] == (float("inf"), 0, "none")
    assert not report.ok
    assert str(report).splitlines()[1].split() == ["input", "inf", "0", "none", "NO"]
    with pytest.raises(AssertionError, match="FAILED"):
        fd_check(NoInputGrad(), x)
    # Only when the caller says so is dL/dx left out.
    assert list(gradcheck.check_module(NoInputGrad(), x, check_input=False).rows) == []


@pytest.mark.parametrize("net", [
    lambda: nn.Linear(3, 2),
    lambda: nn.Sequential(nn.Conv2d(1, 2, 2), nn.Flatten(), nn.Linear(2, 2)),
], ids=["linear", "conv-first"])
def test_layer_that_may_skip_input_gradient_is_checked_anyway(net, device):
    """The Trainer turns needs_input_grad off for the first layer; check_module turns it
    back on in its copy, so dL/dx is checked, and leaves the caller's layer as it was."""
    net = net()
    first = net if isinstance(net, nn.Linear) else net[0]
    first.needs_input_grad = False
    shape = (2, 3) if isinstance(net, nn.Linear) else (2, 1, 2, 2)
    x = dev(np.random.default_rng(0).standard_normal(shape))
    err, checked, _ = fd_check(net, x).rows["input"]
    assert checked == x.size and err < 1e-7
    assert first.needs_input_grad is False


def test_fd_check_asserts_the_input_row(device):
    x = dev(np.random.default_rng(0).standard_normal((2, 3)))
    assert "input" in fd_check(nn.Linear(3, 2), x).rows
    assert list(fd_check(nn.Linear(3, 2), x, check_input=False).rows) == ["weight", "bias"]


class ZeroOutput(nn.Linear):
    """Broken on purpose: the output is 0 (backward is right)."""

    def forward(self, x):
        return 0 * super().forward(x)


class ZeroWeightGrad(nn.Linear):
    """Broken on purpose: dL/dW is 0 (the output and the other gradients are right)."""

    def backward(self, gy):
        gx = super().backward(gy)
        self.weight.grad[...] = 0
        return gx


@pytest.mark.parametrize("broken, scale, what", [
    (ZeroOutput, dict(w=1e-6, x=1.0), "output"),
    (ZeroWeightGrad, dict(w=1.0, x=1e-6), "weight.grad"),
], ids=["zero-output", "zero-weight-grad"])
def test_float32_parity_fails_a_wrong_result_below_one(broken, scale, what, device):
    """A float32 result of values ~1e-5 that is all zero: max(|ref|, 1) as the scale
    (the old rule) let it pass as 1e-5 absolute; the floor of eps32 * sum|terms| fails it.
    The right layer with the same tiny values passes."""
    x = np.random.default_rng(0).standard_normal((5, 4)) * scale["x"]
    for cls, ok in ((nn.Linear, True), (broken, False)):
        sn.manual_seed(0)
        layer, tlayer = cls(4, 3), torch.nn.Linear(4, 3)
        layer.weight.data *= scale["w"]
        layer.bias.data *= scale["w"]
        if ok:
            torch_parity(layer, tlayer, x, np.float32, device=device)
            continue
        with pytest.raises(AssertionError, match=f"{what} differs from torch"):
            torch_parity(layer, tlayer, x, np.float32, device=device)
        # What the old rule saw: the whole reference is below 1e-5, so 0 was within it.
        ref = tlayer(torch.tensor(x, dtype=torch.float32))
        if what == "weight.grad":
            tlayer.zero_grad()
            ref.backward(torch.ones_like(ref))
            ref = tlayer.weight.grad
        ref = ref.detach()
        assert 0 < float(ref.abs().max()) < TOL[np.float32]
        assert rel_err(np.zeros(tuple(ref.shape), np.float32), ref, floor=1.0) < TOL[np.float32]


def test_float32_floor_is_eps_times_the_sum_of_magnitudes():
    """A bias gradient that cancels (a sum of 100 O(1) terms that comes to ~1e-3) is held
    to eps32 * sum|terms|, not to 1e-5 of the small sum: one ulp of the terms passes, a
    wrong result a few times larger does not."""
    gy = np.random.default_rng(0).standard_normal(100)
    gy -= gy.mean() - 1e-3 / 100
    ref, terms = gy.sum(), np.abs(gy).sum()
    floor = EPS32 * terms / TOL[np.float32]
    assert rel_err([ref + EPS32 * terms], [ref], floor) <= TOL[np.float32]
    assert rel_err([ref + 3 * EPS32 * terms], [ref], floor) > TOL[np.float32]
