"""detach, no_grad, requires_grad_ and retain_graph, side by side with PyTorch: what each
returns (requires_grad, is_leaf, grad_fn, shared memory) and what backward then does
(the gradients it gives, or the error it raises), on every device."""
import numpy as np
import pytest
import torch

import scratchnet as sn
from conftest import DEVICES, on_device
from scratchnet import nn


@pytest.fixture(params=DEVICES)
def dev(request):
    with on_device(request.param) as name:
        yield name


def both(values, requires_grad=False, dtype=np.float64):
    """The same tensor in scratchnet and in PyTorch."""
    a = np.asarray(values, dtype=dtype)
    return (sn.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def flags(t):
    return t.requires_grad, t.is_leaf, t.grad_fn is None


def close(ours, theirs):
    np.testing.assert_allclose(sn.to_numpy(ours.data if isinstance(ours, sn.Tensor) else ours),
                               theirs.detach().numpy(), rtol=1e-12, atol=0)


def test_detach_stops_the_gradient_and_shares_the_array(dev):
    x, tx = both([1.0, -2.0, 3.0], requires_grad=True)
    y, ty = x * 2, tx * 2
    d, td = y.detach(), ty.detach()
    assert flags(d) == flags(td) == (False, True, True)
    assert flags(y) == flags(ty) == (True, False, False)
    # The same memory: PyTorch's detach shares storage; scratchnet's the array itself.
    assert d.array is y.array and td.data_ptr() == ty.data_ptr()
    (d * x).sum().backward()
    (td * tx).sum().backward()
    close(x.grad, tx.grad)  # d counts as a constant: dz/dx = d = 2x, not 4x
    close(x.grad, torch.tensor([2.0, -4.0, 6.0], dtype=torch.float64))
    leaf = x.detach()  # a leaf that required grad: detached, it does not
    assert flags(leaf) == flags(tx.detach()) == (False, True, True)


def test_detach_of_a_detached_graph_cannot_backward(dev):
    x, tx = both([1.0, 2.0], requires_grad=True)
    z, tz = (x * x).detach().sum(), (tx * tx).detach().sum()
    assert flags(z) == flags(tz) == (False, True, True)
    with pytest.raises(RuntimeError):
        tz.backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        z.backward()


def test_no_grad_records_nothing_and_restores_the_mode(dev):
    x, tx = both([1.0, 2.0, 3.0], requires_grad=True)
    with sn.no_grad(), torch.no_grad():
        y, ty = x * x + 1, tx * tx + 1
    assert flags(y) == flags(ty) == (False, True, True)
    close(y, ty)
    with pytest.raises(RuntimeError):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    # Outside the block (and after an exception inside it) the graph is recorded again.
    with pytest.raises(ZeroDivisionError), sn.no_grad():
        1 / 0
    assert sn.backend.is_grad_enabled()
    y, ty = x * x, tx * tx
    assert flags(y) == flags(ty) == (True, False, False)
    y.sum().backward()
    ty.sum().backward()
    close(x.grad, tx.grad)


def test_no_grad_as_a_decorator(dev):
    x, tx = both([1.0, 2.0], requires_grad=True)

    @sn.no_grad()
    def ours(t):
        return t * 3

    @torch.no_grad()
    def theirs(t):
        return t * 3

    assert flags(ours(x)) == flags(theirs(tx)) == (False, True, True)
    assert sn.backend.is_grad_enabled()


def test_a_layer_under_no_grad_keeps_no_cache(dev):
    layer = nn.Linear(3, 2)
    x = sn.backend.device_module().asarray(np.ones((4, 3), np.float32))
    with sn.no_grad():
        layer(x)
    with pytest.raises(ValueError, match="called before forward"):
        layer.backward(sn.backend.device_module().ones((4, 2), dtype=np.float32))


def test_requires_grad_returns_the_tensor_and_turns_recording_on(dev):
    a, ta = both([1.0, -2.0])
    assert flags(a) == flags(ta) == (False, True, True)
    assert a.requires_grad_() is a and ta.requires_grad_() is ta
    assert flags(a) == flags(ta) == (True, True, True)
    (a * a).sum().backward()
    (ta * ta).sum().backward()
    close(a.grad, ta.grad)
    assert a.requires_grad_(False) is a and ta.requires_grad_(False) is ta
    assert flags(a * a) == flags(ta * ta) == (False, True, True)


def test_requires_grad_refuses_what_pytorch_refuses(dev):
    x, tx = both([1.0, 2.0], requires_grad=True)
    y, ty = x * 2, tx * 2
    with pytest.raises(RuntimeError, match="leaf"):
        ty.requires_grad_(False)
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        y.requires_grad_(False)
    assert y.requires_grad and ty.requires_grad  # unchanged
    assert y.requires_grad_() is y and ty.requires_grad_() is ty  # True on a non-leaf: fine
    n, tn = both([1, 2], dtype=np.int64)
    with pytest.raises(RuntimeError, match="floating point"):
        tn.requires_grad_()
    with pytest.raises(RuntimeError, match="only floating-point tensors can require grad"):
        n.requires_grad_()
    assert not n.requires_grad and not tn.requires_grad


def test_retain_graph_allows_a_second_backward_that_adds_up(dev):
    x, tx = both([0.5, -1.5, 2.0], requires_grad=True)
    y, ty = (x * x * x).sum(), (tx * tx * tx).sum()
    y.backward(retain_graph=True)
    ty.backward(retain_graph=True)
    close(x.grad, tx.grad)
    y.backward()
    ty.backward()
    close(x.grad, tx.grad)  # 2 * 3x^2
    close(x.grad, 6 * torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64) ** 2)
    with pytest.raises(RuntimeError):
        ty.backward()  # the second backward freed the graph
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_through_a_layer_matches_pytorch(dev):
    """A layer on the tape (its own backward) runs twice from one forward, the parameter
    gradients adding up as PyTorch's do."""
    rs = np.random.default_rng(0)
    w, b = rs.standard_normal((2, 3)), rs.standard_normal(2)
    X = rs.standard_normal((4, 3))
    sn.set_default_dtype(np.float64)  # conftest restores float32 after the test
    layer = nn.Linear(3, 2)
    xp = sn.backend.device_module()
    layer.load_state_dict({"weight": xp.asarray(w), "bias": xp.asarray(b)})
    tl = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(w))
        tl.bias.copy_(torch.tensor(b))
    x, tx = both(X, requires_grad=True)
    loss, tloss = (layer(x) * layer(x)).sum(), (tl(tx) * tl(tx)).sum()
    layer.zero_grad()
    for retain in (True, False):
        loss.backward(retain_graph=retain)
        tloss.backward(retain_graph=retain)
        close(x.grad, tx.grad)
        close(layer.weight.grad, tl.weight.grad)
        close(layer.bias.grad, tl.bias.grad)
