"""state_dict() as PyTorch gives it (an OrderedDict of detached Tensors sharing the model's
storage), load_state_dict of Tensors or arrays, and lazy layers before their first
forward (PyTorch's UninitializedParameter), each checked against PyTorch."""
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

import scratchnet as sn
from scratchnet import nn
from helpers import copy_weights_to_torch


def test_a_state_dict_prints_as_pytorchs():
    """parameters cell 2: net[2].state_dict()."""
    layer, tlayer = nn.Linear(8, 1), torch.nn.Linear(8, 1)
    copy_weights_to_torch(layer, tlayer)
    assert repr(layer.state_dict()) == repr(tlayer.state_dict())
    bn, tbn = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    assert repr(bn.state_dict()) == repr(tbn.state_dict())  # buffers: tensor(0) included


def test_state_dict_values_are_detached_tensors_sharing_the_storage(device):
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    state = net.state_dict()
    assert type(state) is OrderedDict
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked"]
    for k, v in state.items():
        assert isinstance(v, sn.Tensor) and not v.requires_grad and v.grad_fn is None, k
    state["0.weight"].array[0, 0] = 42.0  # a write into the dict writes the model
    state["1.running_mean"].fill_(7.0)
    assert float(net[0].weight.array[0, 0]) == 42.0
    np.testing.assert_array_equal(sn.to_numpy(net[1].running_mean), [7.0, 7.0])
    assert state["1.num_batches_tracked"].dtype == np.int64 and state[
        "1.num_batches_tracked"].shape == ()


@pytest.mark.parametrize("kind", ["Tensor", "numpy", "torch-converted"])
def test_load_state_dict_takes_tensors_and_arrays(kind, device):
    src, dst = nn.Linear(4, 3), nn.Linear(4, 3)
    state = src.state_dict()
    if kind == "numpy":
        state = {k: sn.to_numpy(v) for k, v in state.items()}
    elif kind == "torch-converted":
        state = {k: torch.from_numpy(np.array(sn.to_numpy(v))).numpy()
                 for k, v in state.items()}
    dst.load_state_dict(state)
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(sn.to_numpy(v), sn.to_numpy(src.state_dict()[k]))
        assert not np.shares_memory(sn.to_numpy(v.array), sn.to_numpy(src.state_dict()[k]))


def test_load_state_dict_refuses_torch_tensors_and_non_dicts_changing_nothing():
    layer = nn.Linear(2, 1)
    before = sn.to_numpy(layer.weight.array).copy()
    with pytest.raises(TypeError, match=r"^Linear.load_state_dict: got a torch.Tensor as "
                                        r"'weight'; convert it with .numpy\(\)"):
        layer.load_state_dict({"weight": torch.ones(1, 2), "bias": torch.zeros(1)})
    with pytest.raises(TypeError, match=r"^Linear.load_state_dict: expected a dict of Tensors "
                                        r"or arrays \(a state_dict\), got list"):
        layer.load_state_dict([sn.ones(1, 2)])
    np.testing.assert_array_equal(sn.to_numpy(layer.weight.array), before)


LAZY = [
    (lambda: sn.nn.LazyLinear(256), lambda: torch.nn.LazyLinear(256)),
    (lambda: sn.nn.LazyLinear(3, bias=False), lambda: torch.nn.LazyLinear(3, bias=False)),
    (lambda: sn.nn.LazyConv2d(6, 5, padding=2), lambda: torch.nn.LazyConv2d(6, 5, padding=2)),
    (lambda: sn.nn.LazyConv2d(6, (3, 2), stride=2, bias=False, groups=2),
     lambda: torch.nn.LazyConv2d(6, (3, 2), stride=2, bias=False, groups=2)),
]


@pytest.mark.parametrize("make, tmake", LAZY)
def test_a_lazy_layer_prints_as_pytorchs_until_its_first_forward(make, tmake):
    lazy, tlazy = make(), tmake()
    assert repr(lazy) == repr(tlazy)
    plain = make()
    x = np.ones((2, 4) if "Linear" in repr(lazy) else (1, 4, 8, 8), np.float32)
    plain(x)
    lazy.load_state_dict(plain.state_dict())
    tlazy.load_state_dict({k: torch.from_numpy(sn.to_numpy(v).copy())
                           for k, v in plain.state_dict().items()})
    assert repr(lazy) == repr(tlazy)  # loaded, still lazy in name, as PyTorch's
    assert type(lazy).__name__ == type(tlazy).__name__
    y = lazy(x)  # now it becomes the plain class, keeping the loaded values
    assert type(lazy) is type(plain) and repr(lazy) == repr(plain)
    np.testing.assert_array_equal(y, plain(x))


def test_the_read_write_mlp_reloaded_prints_lazy_then_works():
    """read-write cell 7: clone.load_state_dict(...); clone.eval() shows LazyLinear(0, ...)."""
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.LazyLinear(256)
            self.output = nn.LazyLinear(10)

        def forward(self, x):
            return self.output(sn.nn.functional.relu(self.hidden(x)))

    net = MLP()
    X = sn.randn(size=(2, 20))
    Y = net(X)
    clone = MLP()
    clone.load_state_dict(net.state_dict())
    assert repr(clone.eval()) == ("MLP(\n  (hidden): LazyLinear(in_features=0, out_features=256, "
                                  "bias=True)\n  (output): LazyLinear(in_features=0, "
                                  "out_features=10, bias=True)\n)")
    assert (clone(X) == Y).all()
    assert repr(clone).splitlines()[1] == ("  (hidden): Linear(in_features=20, "
                                           "out_features=256, bias=True)")


def test_writes_into_a_lazy_parameters_data_are_lost_as_in_pytorch():
    """linear-regression-concise: net.weight.data.normal_(0, 0.01) before the first
    forward; the first forward initializes the layer anyway."""
    torch.manual_seed(0)
    tnet = torch.nn.LazyLinear(1)
    assert repr(tnet.weight.data.normal_(0, 0.01)) == "tensor([])"
    tnet(torch.ones(2, 2))
    assert tnet.weight.abs().max() > 0.05  # U(-1/sqrt(2), 1/sqrt(2)), not N(0, 0.01)
    sn.manual_seed(4)
    untouched = nn.LazyLinear(1)
    untouched(np.ones((2, 2), np.float32))
    sn.manual_seed(4)
    net = nn.LazyLinear(1)
    assert repr(net.weight.data.normal_(0, 0.01)) == "tensor([])"
    assert repr(net.bias.data.fill_(0)) == "tensor([])"
    assert net.weight.data.dtype == np.float32
    net(np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(net.weight.array, untouched.weight.array)
    np.testing.assert_array_equal(net.bias.array, untouched.bias.array)


UNINITIALIZED = [
    ("shape", lambda w: w.shape, RuntimeError,
     "Can't access the shape of an uninitialized parameter"),
    ("numel", lambda w: w.numel(), ValueError, "Attempted to use an uninitialized parameter"),
    ("add", lambda w: w + 1, ValueError, "Attempted to use an uninitialized parameter"),
    ("mul", lambda w: 2 * w, ValueError, "Attempted to use an uninitialized parameter"),
    ("sum", lambda w: w.sum(), ValueError, "Attempted to use an uninitialized parameter"),
    ("getitem", lambda w: w[0], ValueError, "Attempted to use an uninitialized parameter"),
    ("iter", lambda w: list(w), ValueError, "Attempted to use an uninitialized parameter"),
]


@pytest.mark.parametrize("what, use, error, match", UNINITIALIZED,
                         ids=[u[0] for u in UNINITIALIZED])
def test_using_an_uninitialized_parameter_fails_as_in_pytorch(what, use, error, match):
    with pytest.raises(error, match=re.escape(match)):
        use(torch.nn.LazyLinear(3).weight)
    with pytest.raises(error, match=re.escape(match)):
        use(nn.LazyLinear(3).weight)
    assert repr(nn.LazyLinear(3).weight) == repr(torch.nn.LazyLinear(3).weight)


def test_a_lazy_models_parameter_count_waits_for_the_first_forward():
    net = nn.Sequential(nn.LazyLinear(4), nn.LazyLinear(2))
    assert net.num_parameters() == 0
    net(np.ones((1, 3), np.float32))
    assert net.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2
