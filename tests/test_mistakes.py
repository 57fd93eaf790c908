"""What a student porting PyTorch or d2l code gets wrong, refused by name and leaving
everything as it was: a torch.Tensor given to a layer, a loss or a backward; a second
backward after one forward. And what PyTorch takes that scratchnet must take too: the
1-tuple spelling of an int argument of the functional ops (the layers': tests/nn)."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import scratchnet as sn
import scratchnet.autograd as ag
from helpers import assert_equal, assert_refusal_changes_nothing, dev, distinct, rel_err
from scratchnet import nn
from scratchnet.models import LeNet

TORCH = (r"got a torch\.Tensor as {what}; convert it with \.numpy\(\) "
         r"\(\.detach\(\)\.cpu\(\)\.numpy\(\) if it requires grad or is on a GPU\) or "
         r"sn\.tensor\(\.\.\.\)$")


def images(n=2, c=1, size=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, size, size)).astype(np.float32)


def lenet():
    model = LeNet(modern=True)
    model(dev(np.zeros((2, 1, 28, 28), np.float32)))  # materialise the lazy layers
    return model


# name, the layer, a good input, its forward's argument name
LAYERS = {
    "Conv2d": (lambda: nn.Conv2d(1, 2, 3, padding=1), images(), "x"),
    "Linear": (lambda: nn.Linear(4, 3), images()[:, 0, 0, :4], "x"),
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(),
                                         nn.Linear(72, 3)), images(), "x"),
    "LeNet": (lenet, images(size=28), "x"),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("make_bad", [torch.from_numpy, lambda x: torch.nn.Parameter(
    torch.from_numpy(x))], ids=["Tensor", "Parameter"])
def test_a_torch_tensor_is_refused_by_name_and_changes_nothing(device, name, make_bad):
    """Not an IndexError from deep inside the tape (a torch.Tensor has a grad_fn, None):
    a TypeError naming the layer and how to convert; the layer works on untouched."""
    make, x, arg = LAYERS[name]
    layer = make()
    assert_refusal_changes_nothing(layer, copy.deepcopy(layer), dev(x), make_bad(x), TypeError,
                                   f"^{name}: " + TORCH.format(what=arg))


def test_a_torch_tensor_by_keyword_and_to_a_forward_only_model():
    class Net(nn.Module):  # PyTorch's style: forward only, run on the tape
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, features):
            return self.fc(features).relu()

    model = Net()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for call in (lambda t: model(t), lambda t: model(features=t)):
        with pytest.raises(TypeError, match="^Net: " + TORCH.format(what="features")):
            call(torch.ones(3, 4))
    assert all(np.array_equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.fc.weight.grad_array is None or not model.fc.weight.grad_array.any()
    assert model(np.ones((3, 4), np.float32)).shape == (3, 2)


def test_a_direct_forward_refuses_it_too():
    with pytest.raises(TypeError, match="^Linear: " + TORCH.format(what="the input")):
        nn.Linear(4, 3).forward(torch.ones(2, 4))


LOGITS = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
LABELS = np.array([0, 2, 1, 2])
# loss, good (input, target), which argument goes in as a torch tensor, its name
LOSSES = [
    ("CrossEntropyLoss", (LOGITS, LABELS), 0, "logits"),
    ("CrossEntropyLoss", (LOGITS, LABELS), 1, "target"),
    ("MSELoss", (LOGITS, LOGITS[::-1].copy()), 0, "y"),
    ("MSELoss", (LOGITS, LOGITS[::-1].copy()), 1, "target"),
]


@pytest.mark.parametrize("name, good, i, what", LOSSES, ids=str)
def test_a_loss_refuses_a_torch_tensor_and_keeps_its_cache(device, name, good, i, what):
    loss, fresh = getattr(nn, name)(), getattr(nn, name)()
    good = [dev(a) for a in good]
    bad = list(good)
    bad[i] = torch.from_numpy(np.asarray(sn.to_numpy(good[i])))
    value = loss(*good)
    with pytest.raises(TypeError, match=f"^{name}: " + TORCH.format(what=what)):
        loss(*bad)
    assert_equal(fresh(*good), value)
    assert_equal(loss.backward(), fresh.backward())  # the good call's cache is intact


@pytest.mark.parametrize("name", ["Linear", "Conv2d", "CrossEntropyLoss"])
def test_backward_refuses_a_torch_gy_and_keeps_its_cache(device, name):
    if name == "CrossEntropyLoss":
        layer, args = nn.CrossEntropyLoss(), (dev(LOGITS), dev(LABELS))
    else:
        layer, args = LAYERS[name][0](), (dev(LAYERS[name][1]),)
    fresh = copy.deepcopy(layer)
    y = layer(*args)
    fresh(*args)
    with pytest.raises(TypeError, match=f"^{name}.backward: " + TORCH.format(what="gy")):
        layer.backward(torch.ones(tuple(y.shape)))
    gy = None if name == "CrossEntropyLoss" else sn.get_array_module(y).ones_like(y)
    assert_equal(layer.backward(gy), fresh.backward(gy))
    for p, q in zip(layer.parameters(), fresh.parameters()):
        assert_equal(p.grad, q.grad)


def _x(shape, seed=0):
    return distinct(shape, np.random.default_rng(seed)).astype(np.float32)


# name: (the layer, its input; for a loss, (input, target))
BACKWARD_ONCE = {
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3), _x((2, 2, 5, 5))),
    "Linear": (lambda: nn.Linear(4, 3), _x((2, 4))),
    "ReLU": (nn.ReLU, _x((2, 4))),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), _x((2, 2, 4, 4))),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2), _x((3, 2, 3, 3))),
    "Sequential": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU()), _x((2, 2, 5, 5))),
    "CrossEntropyLoss": (nn.CrossEntropyLoss, (LOGITS, LABELS)),
    "MSELoss": (nn.MSELoss, (LOGITS, LOGITS[::-1].copy())),
}


@pytest.mark.parametrize("name", list(BACKWARD_ONCE))
def test_a_second_backward_says_the_cache_was_used(device, name):
    """Never called forward (or only under no_grad), and already used by a backward: two
    messages; neither changes a gradient, and a new forward serves a backward again."""
    make, x = BACKWARD_ONCE[name]
    args = [dev(a) for a in x] if isinstance(x, tuple) else [dev(x)]
    is_loss = isinstance(x, tuple)
    layer = make()
    # The last layer's name for a Sequential: its backward runs the children's.
    who = "ReLU" if name == "Sequential" else name

    def backward(m, y):
        return m.backward() if is_loss else m.backward(sn.get_array_module(y).ones_like(y))

    with pytest.raises(ValueError, match=rf"^{who}\.backward: called before forward \(nothing "
                                         r"cached\); call the layer on an input first"):
        backward(layer, dev(np.ones(1, np.float32)))
    y = layer(*args)
    backward(layer, y)
    grads = [sn.to_numpy(p.grad).copy() for p in layer.parameters()]
    with pytest.raises(ValueError, match=rf"^{who}\.backward: the cache of the last forward was "
                                         r"already used by a previous backward \(one forward "
                                         r"serves one backward\); call the layer on its input "
                                         r"again first$"):
        backward(layer, y)
    for g, p in zip(grads, layer.parameters()):
        assert_equal(p.grad, g)  # the refused backward added nothing
    with sn.no_grad():
        layer(*args)
    with pytest.raises(ValueError, match=rf"^{who}\.backward: called before forward"):
        backward(layer, y)
    # A new forward serves one backward again, as on a copy made before it.
    twin = copy.deepcopy(layer)
    layer.zero_grad()
    twin.zero_grad()
    assert_equal(backward(layer, layer(*args)), backward(twin, twin(*args)))
    for p, q in zip(layer.parameters(), twin.parameters()):
        assert_equal(p.grad, q.grad)


# The functional ops take PyTorch's 1-tuple (or list) for an int, and an empty pooling
# stride for the kernel's: (op, arguments as 1-tuples, the same as ints)
FUNCTIONAL = [
    ("conv2d", dict(stride=(2,), padding=(1,), dilation=[2]),
     dict(stride=2, padding=1, dilation=2)),
    ("max_pool2d", dict(kernel_size=(3,), stride=(2,), padding=[1], dilation=(2,)),
     dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    ("max_pool2d", dict(kernel_size=[2], stride=()), dict(kernel_size=2)),
    ("avg_pool2d", dict(kernel_size=(3,), stride=[2], padding=(1,)),
     dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", dict(kernel_size=(2,), stride=[]), dict(kernel_size=2)),
]


@pytest.mark.parametrize("op, tuples, ints", FUNCTIONAL, ids=str)
def test_functional_one_tuples_match_the_ints_and_torch(device, op, tuples, ints):
    x = _x((2, 3, 9, 8)).astype(np.float64)
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3))
    results = []
    for kw in (tuples, ints):
        leaves = [ag.Tensor(dev(a), requires_grad=True) for a in
                  ((x, w) if op == "conv2d" else (x,))]
        y = getattr(nn.functional, op)(*leaves, **kw)
        gy = np.random.default_rng(2).standard_normal(y.shape)
        y.backward(dev(gy))
        results.append([y.data] + [a.grad for a in leaves])
    for a, b in zip(*results):
        assert_equal(a, b)
    leaves = [torch.tensor(a, requires_grad=True) for a in ((x, w) if op == "conv2d" else (x,))]
    yt = getattr(TF, op)(*leaves, **tuples)
    yt.backward(torch.from_numpy(gy))
    for ours, theirs in zip(results[0], [yt] + [t.grad for t in leaves]):
        assert rel_err(ours, theirs.detach()) <= 1e-12


@pytest.mark.parametrize("op, args, kwargs, match", [
    ("max_pool2d", ((),), {}, r"kernel_size: expected an int or an \(h, w\) pair, got \(\)"),
    ("avg_pool2d", (2,), dict(padding=(1, 1, 1)), r"padding: expected an int or an \(h, w\) "
                                                  r"pair, got \(1, 1, 1\)"),
    ("adaptive_avg_pool2d", ((3,),), {}, r"output_size: expected an int or an \(h, w\) pair, "
                                         r"got \(3,\)"),
], ids=["empty kernel", "3 paddings", "1-tuple output_size"])
def test_functional_refuses_what_torch_refuses(op, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(nn.functional, op)(ag.Tensor(np.zeros((1, 1, 6, 6))), *args, **kwargs)
    with pytest.raises(RuntimeError):
        getattr(TF, op)(torch.zeros(1, 1, 6, 6), *args, **kwargs)
