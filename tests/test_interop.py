"""interop: PyTorch state_dicts of d2l's LeNet, VGG and ResNet-18 into scratchnet and back:
the same logits (float64 to 1e-10) and the same gradients after one training step, with the
scratchnet model on each device."""
import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import dev, rel_err
from scratchnet import nn
from scratchnet.interop import (from_torch_state_dict, load_from_torch, load_into_torch,
                                to_torch_state_dict, torch_lenet, torch_resnet, torch_vgg)
from scratchnet.models import VGG, LeNet, ResNet

TINY_VGG = ((1, 4), (1, 8))
TINY_RESNET = ((1, 64), (1, 16))  # the first stage keeps the stem's 64 channels
CASES = {
    "lenet": (lambda: LeNet(), lambda: torch_lenet(), (4, 1, 28, 28)),
    "lenet-modern": (lambda: LeNet(modern=True), lambda: torch_lenet(modern=True),
                     (4, 1, 28, 28)),
    "vgg": (lambda: VGG(TINY_VGG), lambda: torch_vgg(TINY_VGG, in_shape=(2, 1, 16, 16)),
            (4, 1, 16, 16)),
    "resnet": (lambda: ResNet(TINY_RESNET),
               lambda: torch_resnet(TINY_RESNET, in_shape=(2, 1, 32, 32)), (4, 1, 32, 32)),
}


@pytest.fixture(autouse=True)
def _float64():
    sn.set_default_dtype(np.float64)


@pytest.mark.parametrize("name", CASES)
def test_torch_weights_give_the_same_logits_and_gradients(name, device):
    make, make_torch, shape = CASES[name]
    torch.manual_seed(0)
    tmodel = make_torch().double()
    model = make()
    x_host = np.random.default_rng(1).standard_normal(shape)
    x = dev(x_host)
    with sn.no_grad():
        model.eval()(x)  # materialise the lazy layers
    load_from_torch(model, tmodel)
    for k, v in model.state_dict().items():
        assert sn.get_array_module(v) is sn.backend.device_module(), k
    # Dropout draws different masks in the two frameworks: compare in eval mode for VGG.
    train = name != "vgg"
    model.train(train)
    tmodel.train(train)
    y = model(x)
    xt = torch.tensor(x_host, requires_grad=True)
    yt = tmodel(xt)
    assert rel_err(y, yt) <= 1e-10
    labels = np.arange(shape[0]) % 10
    loss = nn.CrossEntropyLoss()
    loss(y, dev(labels))
    model.zero_grad()
    gx = model.backward(loss.backward())
    torch.nn.functional.cross_entropy(yt, torch.from_numpy(labels)).backward()
    assert rel_err(gx, xt.grad) <= 1e-10
    grads = {k: p.grad for k, p in model.named_parameters()}
    for k, p in tmodel.named_parameters():
        if float(p.grad.abs().max()) < 1e-12:
            # A conv bias feeding BatchNorm in training: the true gradient is 0 and both
            # sides hold rounding noise only.
            assert np.abs(sn.to_numpy(grads[k])).max() < 1e-12, k
        else:
            assert rel_err(grads[k], p.grad) <= 1e-10, k
    # One SGD step on both, then the logits still agree.
    sn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).step()
    torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9).step()
    model.eval()
    tmodel.eval()
    with torch.no_grad():
        assert rel_err(model(x), tmodel(torch.from_numpy(x_host))) <= 1e-10


@pytest.mark.parametrize("name", ["lenet", "resnet"])
def test_round_trip_scratchnet_torch_scratchnet(name, device):
    make, make_torch, shape = CASES[name]
    model = make()
    with sn.no_grad():
        model.eval()(dev(np.zeros(shape)))
    tmodel = load_into_torch(make_torch().double(), model)
    back = make()
    with sn.no_grad():
        back.eval()(dev(np.zeros(shape)))
    from_torch_state_dict(back, tmodel.state_dict())
    for k, v in model.state_dict().items():
        assert np.array_equal(sn.to_numpy(v), sn.to_numpy(back.state_dict()[k])), k
    assert set(to_torch_state_dict(model)) == set(tmodel.state_dict())


def test_mismatched_architectures_list_every_problem_and_change_nothing(device):
    model = LeNet()
    with sn.no_grad():
        model(dev(np.zeros((1, 1, 28, 28))))
    before = {k: sn.to_numpy(v).copy() for k, v in model.state_dict().items()}
    tstate = torch_lenet(modern=True).double().state_dict()
    with pytest.raises(ValueError) as e:
        from_torch_state_dict(model, tstate)
    msg = str(e.value)
    assert "missing" in msg and "unexpected" in msg and "net.1.running_mean" in msg
    tstate = torch_lenet().double().state_dict()
    tstate["net.0.weight"] = torch.zeros(6, 1, 3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"net\.0\.weight.*\(6, 1, 5, 5\)"):
        from_torch_state_dict(model, tstate)
    for k, v in model.state_dict().items():
        assert np.array_equal(sn.to_numpy(v), before[k]), k
    with pytest.raises(ValueError, match="load_into_torch"):
        load_into_torch(torch_lenet(modern=True), model)
