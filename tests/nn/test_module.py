"""nn.module: Module and Sequential bookkeeping. state_dict keys as PyTorch's, loading
and its errors, containers, train/eval, gradient accumulation, shared parameters,
dtype conversion, lazy layers and no_grad."""
import copy
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import GPU_DEVICES, assert_equal, dev
from scratchnet import nn


def small_net(lazy=False):
    """Conv2d, BatchNorm2d, ReLU, Flatten, Linear on (N, 1, 4, 4) inputs."""
    if lazy:
        return nn.Sequential(nn.LazyConv2d(2, 3), nn.LazyBatchNorm2d(), nn.ReLU(),
                             nn.Flatten(), nn.LazyLinear(3))
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8, 3))


def torch_net():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 3))


def batch(seed=0, dtype=np.float32):
    """An input batch on the active device."""
    return dev(np.random.default_rng(seed).standard_normal((4, 1, 4, 4)).astype(dtype))


def assert_state_equal(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert_equal(a[k], b[k], err_msg=k)


def snapshot(net):
    return {k: np.array(sn.to_numpy(v)) for k, v in net.state_dict().items()}


def assert_on_active_device(net):
    xp = sn.backend.device_module()
    for k, v in net.state_dict().items():
        assert sn.get_array_module(v) is xp, k
    for k, p in net.named_parameters():
        assert p.grad is None or sn.get_array_module(p.grad) is xp, k


def test_state_dict_keys_shapes_and_order_match_torch(device):
    net, tnet = small_net(), torch_net()
    state, tstate = net.state_dict(), tnet.state_dict()
    assert list(state) == list(tstate)
    for k, v in tstate.items():
        assert tuple(state[k].shape) == tuple(v.shape), k
    assert state["1.num_batches_tracked"].dtype == np.int64
    assert_on_active_device(net)
    assert [k for k, _ in net.named_parameters()] == [k for k, _ in tnet.named_parameters()]
    assert [k for k, _ in net.named_buffers()] == [k for k, _ in tnet.named_buffers()]
    assert net.num_parameters() == sum(p.numel() for p in tnet.parameters())


def test_torch_weights_load_and_give_torch_outputs(device):
    net, tnet = small_net().double(), torch_net().double()
    with torch.no_grad():
        tnet(torch.from_numpy(sn.to_numpy(batch(1, np.float64))))  # move the running statistics
    net.load_state_dict({k: v.numpy() for k, v in tnet.state_dict().items()})
    assert_on_active_device(net)
    net.eval(), tnet.eval()
    x = batch(2, np.float64)
    np.testing.assert_allclose(sn.to_numpy(net(x)),
                               tnet(torch.from_numpy(sn.to_numpy(x))).detach().numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("through_file", [False, True])
def test_load_state_dict_round_trip(through_file, tmp_path, device):
    net = small_net()
    net(batch(1))  # running statistics and num_batches_tracked move away from the defaults
    net(batch(2))
    sn.manual_seed(99)
    other = small_net()
    state = net.state_dict()
    if through_file:
        sn.save(state, tmp_path / "net.npz")
        state = sn.load(tmp_path / "net.npz")
    assert other.load_state_dict(state) is other
    assert_state_equal(other.state_dict(), net.state_dict())
    assert_on_active_device(other)
    for mode in ("train", "eval"):
        getattr(net, mode)(), getattr(other, mode)()
        assert_equal(other(batch(3)), net(batch(3)))
    assert int(other[1].num_batches_tracked) == 3


def test_loaded_model_does_not_share_memory_with_its_source(device):
    net = small_net()
    before = snapshot(net)
    other = small_net()
    other.load_state_dict(net.state_dict())
    other[0].weight.data += 1.0
    other(batch(1))  # updates other's running statistics in place
    assert_state_equal(snapshot(net), before)


def test_load_keeps_each_tensor_dtype(device):
    net = small_net()
    state = {k: sn.to_numpy(v).astype(np.float64) if v.dtype.kind == "f" else v
             for k, v in small_net().double().state_dict().items()}
    net.load_state_dict(state)
    assert all(v.dtype == (np.int64 if k.endswith("tracked") else np.float32)
               for k, v in net.state_dict().items())
    assert_on_active_device(net)


def state_of(net, drop=(), extra=None, reshape=None):
    state = OrderedDict((k, np.array(sn.to_numpy(v))) for k, v in net.state_dict().items()
                        if k not in drop)
    state.update(extra or {})
    for k, shape in (reshape or {}).items():
        state[k] = np.zeros(shape, np.float32)
    return state


@pytest.mark.parametrize("edit, message", [
    (dict(drop=("4.bias", "1.running_var")),
     "missing keys ['1.running_var', '4.bias']"),
    (dict(extra={"5.weight": np.ones(3, np.float32), "bogus": np.ones(1)}),
     "unexpected keys ['5.weight', 'bogus']"),
    (dict(reshape={"4.weight": (3, 9)}), "mis-shaped 4.weight: expected (3, 8), got (3, 9)"),
    (dict(reshape={"1.running_mean": (3,)}),
     "mis-shaped 1.running_mean: expected (2,), got (3,)"),
], ids=["missing", "unexpected", "mis-shaped-param", "mis-shaped-buffer"])
def test_load_state_dict_errors_list_keys_and_change_nothing(edit, message, device):
    net = small_net()
    net(batch(1))
    before = snapshot(net)
    source = small_net()
    source(batch(5))
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        net.load_state_dict(state_of(source, **edit))
    assert str(info.value).startswith("Sequential.load_state_dict: ")
    assert_state_equal(snapshot(net), before)


def test_load_state_dict_reports_every_problem_at_once(device):
    net = small_net()
    bad = state_of(small_net(), drop=("0.bias",), extra={"x": np.ones(1)},
                   reshape={"0.weight": (2, 1, 2, 2)})
    with pytest.raises(ValueError) as info:
        net.load_state_dict(bad)
    for part in ("missing keys ['0.bias']", "unexpected keys ['x']",
                 "mis-shaped 0.weight: expected (2, 1, 3, 3), got (2, 1, 2, 2)"):
        assert part in str(info.value)


def test_load_state_dict_not_strict_skips_missing_and_unexpected(device):
    net = small_net()
    source = small_net()
    net.load_state_dict(state_of(source, drop=("4.bias",), extra={"x": np.ones(1)}),
                        strict=False)
    assert_equal(net[4].weight.data, source[4].weight.data)
    assert not np.array_equal(sn.to_numpy(net[4].bias.data), sn.to_numpy(source[4].bias.data))
    assert_on_active_device(net)


def test_sequential_container(device):
    layers = [nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)]
    net = nn.Sequential(*layers)
    assert len(net) == 3 and list(net) == layers
    assert net[0] is layers[0] and net[-1] is layers[2] and net["1"] is layers[1]
    head = net[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and list(head) == layers[:2]
    tail = net[1:]
    assert [k for k, _ in tail.named_children()] == ["1", "2"]
    x = dev(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    assert_equal(tail(head[:1](x)), net(x))
    net.add_module("out", nn.Tanh())
    assert len(net) == 4 and isinstance(net.out, nn.Tanh) and net["out"] is net[3]
    assert [k for k, _ in net.named_children()] == ["0", "1", "2", "out"]
    assert net.append(nn.ReLU()) is net and [k for k, _ in net.named_children()][-1] == "4"
    named = nn.Sequential(OrderedDict(fc=nn.Linear(3, 2), act=nn.ReLU()))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.raises(TypeError, match="add_module: expected a Module, got int"):
        net.add_module("bad", 3)


def test_sequential_backward_runs_children_in_reverse(device):
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    report = sn.gradcheck.check_module(net, dev(np.random.default_rng(0).standard_normal((2, 3))))
    assert report.ok, report
    assert list(report.rows) == ["input", "0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_and_eval_propagate():
    net = nn.Sequential(nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)), nn.Linear(2, 2))
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    net.train(False)
    assert not net[0][1].training


def forward_backward(net, x, seed=1):
    y = net(x)
    gy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
    return net.backward(sn.to_device(gy, sn.backend.device_of(y)))


def test_zero_grad_and_accumulation_across_backward_calls(device):
    net = small_net()
    x = batch(1)
    forward_backward(net, x)
    first = {k: sn.to_numpy(p.grad).copy() for k, p in net.named_parameters()}
    assert all(np.abs(g).sum() > 0 for g in first.values())
    forward_backward(net, x)
    for k, p in net.named_parameters():
        np.testing.assert_allclose(sn.to_numpy(p.grad), 2 * first[k], rtol=1e-6, err_msg=k)
    net.zero_grad()
    assert all(not sn.to_numpy(p.grad).any() for p in net.parameters())
    assert_on_active_device(net)


def test_shared_parameter_gets_both_contributions(device):
    rs = np.random.default_rng(0)
    x = dev(rs.standard_normal((4, 3)))
    gy = dev(rs.standard_normal((4, 3)))
    a, b = nn.Linear(3, 3).double(), nn.Linear(3, 3).double()
    untied = nn.Sequential(a, nn.Tanh(), b)
    tied = copy.deepcopy(untied)
    tied[2].weight = tied[0].weight
    b.weight.data[...] = a.weight.data
    untied(x)
    untied.backward(gy)
    tied(x)
    tied.backward(gy)
    assert tied[2].weight is tied[0].weight
    np.testing.assert_allclose(sn.to_numpy(tied[0].weight.grad),
                               sn.to_numpy(a.weight.grad + b.weight.grad), rtol=1e-14)
    # Listed once for optimizers, as torch does; both names stay in state_dict.
    ttied = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3))
    ttied[2].weight = ttied[0].weight
    assert [k for k, _ in tied.named_parameters()] == [k for k, _ in ttied.named_parameters()]
    assert list(tied.state_dict()) == list(ttied.state_dict())
    assert tied.num_parameters() == sum(p.numel() for p in ttied.parameters())
    opt = sn.optim.SGD(tied.parameters(), lr=0.1)
    w = sn.to_numpy(tied[0].weight.data).copy()
    opt.step()
    np.testing.assert_allclose(sn.to_numpy(tied[2].weight.data),
                               w - 0.1 * sn.to_numpy(tied[0].weight.grad), rtol=1e-14)


@pytest.mark.parametrize("convert", ["to", "double"])
def test_to_float64_converts_parameters_buffers_and_grads(convert, device):
    net = small_net()
    forward_backward(net, batch(1))  # gradients to convert too
    before = snapshot(net)
    out = net.to(dtype=np.float64) if convert == "to" else net.double()
    assert out is net
    for k, v in net.state_dict().items():
        assert v.dtype == (np.int64 if k.endswith("num_batches_tracked") else np.float64), k
        assert_equal(v, before[k])
    assert all(p.grad.dtype == np.float64 for p in net.parameters())
    assert_on_active_device(net)
    assert forward_backward(net, batch(2, np.float64)).dtype == np.float64
    net.float()
    assert all(v.dtype in (np.float32, np.int64) for v in net.state_dict().values())
    with pytest.raises(TypeError, match="Conv2d: input dtype float64 does not match weight dtype "
                                        "float32"):
        net(batch(2, np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lazy_layers_materialise_at_first_forward_with_the_input_dtype(dtype, device):
    net = small_net(lazy=True)
    assert all(p.array is None for p in net.parameters())
    assert net.state_dict() == OrderedDict()
    y = net(batch(1, dtype))
    assert y.shape == (4, 3) and y.dtype == dtype
    state, tstate = net.state_dict(), torch_net().state_dict()
    assert list(state) == list(tstate)
    for k, v in state.items():
        assert v.shape == tuple(tstate[k].shape), k
        assert v.dtype == (np.int64 if k.endswith("tracked") else dtype), k
    assert [m.name for m in net] == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten", "Linear"]
    assert_on_active_device(net)


def test_lazy_layers_take_their_shape_from_load_state_dict(device):
    """A lazy model loaded before any forward keeps the loaded values at its first forward."""
    src = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    x = dev(np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    src(x)
    lazy = nn.Sequential(nn.LazyLinear(4), nn.BatchNorm1d(4), nn.LazyLinear(2))
    lazy.load_state_dict(src.state_dict())
    assert_on_active_device(lazy)
    src.eval(), lazy.eval()
    assert_equal(lazy(x), src(x))
    bn = nn.LazyBatchNorm2d()
    bsrc = nn.BatchNorm2d(3)
    bsrc(dev(np.random.default_rng(2).standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 1))
    bn.load_state_dict(bsrc.state_dict())
    assert_on_active_device(bn)
    bn.eval(), bsrc.eval()
    x4 = dev(np.random.default_rng(1).standard_normal((2, 3, 2, 2)).astype(np.float32))
    assert_equal(bn(x4), bsrc(x4))
    assert bn.num_features == 3


def test_no_grad_forward_keeps_no_cache(device):
    net = small_net()
    x = batch(1)
    with sn.no_grad():
        assert not sn.backend.is_grad_enabled()
        y = net(x)
    assert sn.backend.is_grad_enabled()
    assert all(m.__dict__.get("_cache") is None for m in net.modules())
    with pytest.raises(ValueError, match=re.escape("Linear.backward: called before forward "
                                                   "(nothing cached)")):
        net.backward(sn.get_array_module(y).ones_like(y))
    with pytest.raises(ValueError, match="Conv2d.backward: called before forward"):
        net[0].backward(dev(np.ones((4, 2, 2, 2), np.float32)))
    # The same network still trains afterwards.
    assert forward_backward(net, x).shape == x.shape


def test_apply_visits_children_first_then_self():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Tanh()))
    seen = []
    assert net.apply(lambda m: seen.append(m.name)) is net
    assert seen == ["Linear", "ReLU", "Tanh", "Sequential", "Sequential"]


def test_module_needs_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(AttributeError, match=r"Broken: call super\(\).__init__\(\)"):
        Broken()


def test_repr_lists_children():
    text = repr(small_net())
    assert text.startswith("Sequential(\n  (0): Conv2d(1, 2, kernel_size=(3, 3)")
    assert "(1): BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=True)" in text
    assert "(4): Linear(in_features=8, out_features=3, bias=True)" in text


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_to_moves_parameters_buffers_and_grads_between_devices(device):
    """.to("cpu") and back: every parameter, gradient and buffer moves, with its values
    and dtype; the model computes the same on both sides."""
    net = small_net()
    x = batch(1)
    net(batch(2))  # running statistics away from their defaults
    forward_backward(net, x)
    state = snapshot(net)
    grads = {k: sn.to_numpy(p.grad).copy() for k, p in net.named_parameters()}
    net.eval()
    y = sn.to_numpy(net(x))
    assert net.to(device="cpu") is net
    with sn.use_device("cpu"):
        assert_on_active_device(net)
    assert_state_equal(net.state_dict(), state)
    for k, p in net.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[k], err_msg=f"{k}.grad after .to('cpu')")
    np.testing.assert_array_equal(net(sn.to_numpy(x)), y)
    with pytest.raises(ValueError, match=r"Conv2d: input is a cupy array \(gpu\)"):
        net(x)
    net.to(device="gpu")
    assert_on_active_device(net)
    assert_state_equal(net.state_dict(), state)
    for k, p in net.named_parameters():
        assert_equal(p.grad, grads[k], err_msg=f"{k}.grad after .to('gpu')")
    assert_equal(net(x), y)
