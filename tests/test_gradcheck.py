"""gradcheck: numerical gradients, and check_module's report on correct and on broken
layers, in full and in sampled mode, without touching the caller's module."""
import numpy as np
import pytest

import scratchnet as sn
from helpers import assert_equal, dev
from scratchnet import gradcheck, nn
from scratchnet.nn.parameter import Parameter


class DoubleGrad(nn.Module):
    """Broken on purpose: forward is the identity, backward returns 2 * gy."""

    def forward(self, x):
        self.save_for_backward(x.shape)
        return x

    def backward(self, gy):
        self.saved_for_backward(gy)
        return 2 * gy


class Scale(nn.Module):
    """y = w * x (per feature); ``wrong`` scales w's gradient, leaving dL/dx right."""

    def __init__(self, n, wrong=1.0):
        super().__init__()
        self.w = Parameter(np.linspace(0.5, 1.5, n))
        self.wrong = wrong

    def forward(self, x):
        self.save_for_backward(x.shape, x)
        return x * self.w.data

    def backward(self, gy):
        (x,) = self.saved_for_backward(gy)
        self.w.accumulate(self.wrong * (gy * x).sum(axis=0))
        return gy * self.w.data


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
    assert gradcheck.check_module(layer, x).ok
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
    assert gradcheck.check_module(lazy, x).ok
    assert lazy.weight.data is None


def test_explicit_gy_and_no_input_row(device):
    """gy may be a host array for a device x: check_module moves it."""
    x = dev(np.random.default_rng(0).standard_normal((2, 3)))
    report = gradcheck.check_module(nn.Linear(3, 2), x, gy=np.ones((2, 2)), check_input=False)
    assert list(report.rows) == ["weight", "bias"] and report.ok


def test_dropout_is_checked_with_one_mask(device):
    x = dev(np.random.default_rng(0).standard_normal((4, 6)))
    assert gradcheck.check_module(nn.Dropout(0.5), x, seed=3).ok


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
    assert report.ok, report
