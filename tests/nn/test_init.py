"""nn.init: the PyTorch initialisers' bounds and spreads on big weights, layers' default
init, d2l's init_cnn / apply_init, and reproducibility under manual_seed."""
import math

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import assert_equal, dev
from scratchnet import nn
from scratchnet.nn import init
from scratchnet.nn.parameter import Parameter


def param(shape, dtype=np.float32):
    """A parameter on the active device, NaN until initialised."""
    return Parameter(dev(np.full(shape, np.nan, dtype=dtype)))


def host(p):
    """The parameter's values on the host, after checking they stayed on its device."""
    assert sn.get_array_module(p.data) is sn.backend.device_module()
    return sn.to_numpy(p.data)


@pytest.mark.parametrize("shape, fan_in, fan_out", [((300, 500), 500, 300),
                                                    ((64, 32, 3, 3), 288, 576)])
def test_xavier_uniform_bound_and_mean(shape, fan_in, fan_out, device):
    p = param(shape)
    assert init.xavier_uniform_(p) is p
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    w = host(p)
    assert w.dtype == np.float32 and np.isfinite(w).all()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.02


def test_xavier_uniform_gain_and_xavier_normal(device):
    p = init.xavier_uniform_(param((200, 300)), gain=init.calculate_gain("relu"))
    assert np.abs(host(p)).max() <= math.sqrt(2) * math.sqrt(6.0 / 500)
    q = init.xavier_normal_(param((400, 600), np.float64))
    assert q.data.dtype == np.float64
    assert abs(host(q).std() / math.sqrt(2.0 / 1000) - 1) < 0.02


@pytest.mark.parametrize("shape, fan_in", [((256, 1024), 1024), ((128, 64, 3, 3), 576)])
def test_kaiming_normal_std(shape, fan_in, device):
    w = host(init.kaiming_normal_(param(shape)))
    assert abs(w.std() / math.sqrt(2.0 / fan_in) - 1) < 0.02
    assert abs(w.mean()) < 0.01 * math.sqrt(2.0 / fan_in)
    out = host(init.kaiming_normal_(param(shape), mode="fan_out", nonlinearity="relu"))
    assert abs(out.std() / math.sqrt(2.0 / (fan_in * shape[0] / shape[1])) - 1) < 0.02


def test_kaiming_uniform_bound(device):
    w = host(init.kaiming_uniform_(param((300, 400)), nonlinearity="relu"))
    bound = math.sqrt(6.0 / 400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound


@pytest.mark.parametrize("fn, value", [(init.zeros_, 0.0), (init.ones_, 1.0),
                                       (lambda p: init.constant_(p, 0.25), 0.25)])
def test_constant_fills(fn, value, device):
    p = param((3, 4))
    fn(p)
    assert p.data.dtype == np.float32
    np.testing.assert_array_equal(host(p), value)


@pytest.mark.parametrize("nonlinearity, param_", [("linear", None), ("sigmoid", None),
                                                  ("tanh", None), ("relu", None),
                                                  ("leaky_relu", None), ("leaky_relu", 0.2),
                                                  ("conv2d", None)])
def test_calculate_gain_matches_torch(nonlinearity, param_):
    assert init.calculate_gain(nonlinearity, param_) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param_), rel=1e-15)


def test_init_errors(device):
    with pytest.raises(ValueError, match="xavier_uniform_: the parameter is not initialised yet"):
        init.xavier_uniform_(Parameter())
    with pytest.raises(ValueError, match=r"kaiming_normal_: expected a weight with at least 2 "
                                         r"dimensions, got shape \(5,\)"):
        init.kaiming_normal_(param((5,)))
    with pytest.raises(ValueError, match="kaiming_normal_: mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(param((5, 5)), mode="fan")
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")


@pytest.mark.parametrize("layer, fan_in", [(lambda: nn.Linear(400, 300), 400),
                                           (lambda: nn.Conv2d(16, 64, 3), 144),
                                           (lambda: nn.Conv2d(8, 300, (2, 5)), 80)])
def test_default_layer_init_is_uniform_one_over_sqrt_fan_in(layer, fan_in, device):
    m = layer()
    bound = 1.0 / math.sqrt(fan_in)
    w, b = host(m.weight), host(m.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.05
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound


def test_init_cnn_through_apply_reinitialises_linear_and_conv_weights(device):
    sn.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                        nn.Linear(32, 10))
    before = {k: sn.to_numpy(v).copy() for k, v in net.state_dict().items()}
    assert net.apply(init.init_cnn) is net
    after = {k: sn.to_numpy(v) for k, v in net.state_dict().items()}
    for k, fans in (("0.weight", (27, 72)), ("4.weight", (32, 10))):
        assert not np.array_equal(after[k], before[k])
        assert np.abs(after[k]).max() <= math.sqrt(6.0 / sum(fans))
    # Biases and BatchNorm are left as they were.
    for k in ("0.bias", "4.bias", "1.weight", "1.bias", "1.running_var"):
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    assert all(sn.get_array_module(v) is sn.backend.device_module()
               for v in net.state_dict().values())


def test_apply_init_materialises_lazy_layers_then_reinitialises(device):
    def lazy_net():
        return nn.Sequential(nn.LazyConv2d(6, 5, padding=2), nn.Sigmoid(), nn.Flatten(),
                             nn.LazyLinear(10))

    x = dev(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    sn.manual_seed(3)
    default = lazy_net()
    default(x)
    sn.manual_seed(3)
    manual = lazy_net()
    manual(x)
    init.xavier_uniform_(manual[0].weight)
    init.xavier_uniform_(manual[3].weight)
    sn.manual_seed(3)
    net = lazy_net()
    assert init.apply_init(net, [x], init.init_cnn) is net
    conv, fc = host(net[0].weight), host(net[3].weight)
    assert conv.shape == (6, 1, 5, 5) and fc.shape == (10, 384)
    assert conv.dtype == np.float32 and fc.dtype == np.float32
    # Xavier after the default init drawn at materialisation, layer by layer.
    assert_equal(conv, manual[0].weight.data)
    assert_equal(fc, manual[3].weight.data)
    assert not np.array_equal(conv, sn.to_numpy(default[0].weight.data))
    assert_equal(net[0].bias.data, default[0].bias.data)
    assert np.abs(conv).max() <= math.sqrt(6.0 / 175) and np.abs(fc).max() <= math.sqrt(6.0 / 394)
    # The materialising pass ran under no_grad: nothing cached.
    assert all(m.__dict__.get("_cache") is None for m in net.modules())


def test_apply_init_without_init_only_materialises(device):
    net = nn.Sequential(nn.LazyLinear(3))
    init.apply_init(net, [dev(np.ones((2, 7), np.float32))])
    assert net[0].weight.shape == (3, 7)
    assert sn.get_array_module(net[0].weight.data) is sn.backend.device_module()


def test_manual_seed_makes_init_reproducible(device):
    def draw():
        net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Linear(5, 6))
        p = init.xavier_uniform_(param((7, 9)))
        return [sn.to_numpy(v).copy() for v in net.state_dict().values()] + [host(p).copy()]

    sn.manual_seed(11)
    a = draw()
    sn.manual_seed(11)
    b = draw()
    sn.manual_seed(12)
    c = draw()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert all(not np.array_equal(u, v) for u, v in zip(a, c))


def test_a_seed_gives_the_same_network_on_every_device(device):
    """Values are drawn on the host and moved: the GPU network is the CPU network."""
    def draw():
        sn.manual_seed(7)
        net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                            nn.Linear(5, 6))
        net.apply(init.init_cnn)
        p = init.kaiming_normal_(param((7, 9)))
        return {**{k: sn.to_numpy(v) for k, v in net.state_dict().items()}, "p": host(p)}

    here = draw()
    with sn.use_device("cpu"):
        on_cpu = draw()
    assert list(here) == list(on_cpu)
    for k in here:
        assert here[k].dtype == on_cpu[k].dtype, k
        np.testing.assert_array_equal(here[k], on_cpu[k], err_msg=k)
