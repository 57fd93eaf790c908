"""``.data`` and ``.grad`` as PyTorch has them: Tensors sharing the array underneath
(``.array``, ``.grad_array``), cut from the graph; the in-place methods the book uses on
them (docs/porting.md). Each behaviour is checked against PyTorch doing the same."""
import numpy as np
import pytest
import torch

import scratchnet as sn
from scratchnet import nn

BOTH = (sn, torch)


def host(t):
    return sn.to_numpy(t) if not isinstance(t, torch.Tensor) else t.detach().numpy()


def test_data_shares_storage_and_is_cut_from_the_graph(device):
    for L in BOTH:
        x = L.tensor([1.0, -2.0, 3.0], requires_grad=True)
        d = x.data
        assert not d.requires_grad and d.grad_fn is None and d.is_leaf
        d[0] = 10.0  # a write through .data is a write into x, recorded nowhere
        assert host(x)[0] == 10.0
        y = (x * x).sum()
        y.backward()
        np.testing.assert_array_equal(host(x.grad), [20.0, -4.0, 6.0])
    x = sn.tensor([1.0, 2.0])
    assert x.data.array is x.array  # the very array: nothing is copied


def test_grad_is_none_before_backward_then_a_tensor_sharing_the_gradient(device):
    for L in BOTH:
        x = L.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
        assert x.grad is None
        (2 * (x * x).sum()).backward()
        g = x.grad
        assert repr(g) == "tensor([ 0.,  4.,  8., 12.])"
        assert repr(x.grad == 4 * x) == "tensor([True, True, True, True])"
        x.grad.zero_()  # the book's 2.5: reset, then a new backward
        x.sum().backward()
        np.testing.assert_array_equal(host(g), [1.0, 1.0, 1.0, 1.0])  # g saw both
        x.grad.data.zero_()
        np.testing.assert_array_equal(host(x.grad), 0.0)


def test_the_books_parameter_cells_write_the_parameter(device):
    """6.3 and 5.4: ``.data.normal_``, ``.data.fill_``, ``w.data *= w.data.abs() >= 5``
    change the weights the layer computes with."""
    net = nn.Sequential(nn.LazyLinear(8))
    net(sn.to_device(np.ones((2, 4), np.float32)))
    w = net[0].weight
    sn.manual_seed(0)
    w.data.normal_(0, 0.01)
    assert abs(float(sn.to_numpy(w.array).std()) - 0.01) < 0.005
    net[0].bias.data.fill_(1)
    np.testing.assert_array_equal(sn.to_numpy(net[0].bias.array), 1.0)
    w.data.uniform_(-10, 10)
    before = sn.to_numpy(w.array).copy()
    w.data *= w.data.abs() >= 5
    np.testing.assert_array_equal(sn.to_numpy(w.array), before * (np.abs(before) >= 5))
    y = net(sn.to_device(np.ones((1, 4), np.float32)))
    np.testing.assert_allclose(sn.to_numpy(y)[0], (before * (np.abs(before) >= 5)).sum(1) + 1,
                               rtol=1e-5)
    w.data = sn.zeros(3, 4)  # replacing the array, as PyTorch allows
    assert tuple(w.array.shape) == (3, 4)


def test_a_seed_draws_the_same_numbers_through_init_and_normal_():
    p = nn.Linear(5, 3).weight
    sn.manual_seed(3)
    nn.init.normal_(p, 0.0, 0.5)
    first = sn.to_numpy(p.array).copy()
    sn.manual_seed(3)
    p.data.normal_(0.0, 0.5)
    np.testing.assert_array_equal(sn.to_numpy(p.array), first)


def test_sgd_step_written_as_the_book_writes_it(device):
    """3.4's ``param -= lr * param.grad`` under no_grad updates in place (a name bound to
    the tensor, such as a loop variable, would otherwise see nothing)."""
    out = []
    for L in BOTH:
        w = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        params = [w]
        (w * w).sum().backward()
        with L.no_grad():
            for param in params:
                param -= 0.1 * param.grad
        w.grad.zero_()
        out.append(host(w))
    np.testing.assert_allclose(out[0], out[1])
    np.testing.assert_allclose(out[0], [0.8, 1.6, 2.4])


@pytest.mark.parametrize("write", [lambda t: t.zero_(), lambda t: t.fill_(1.0),
                                   lambda t: t.normal_(), lambda t: t.uniform_(),
                                   lambda t: t.copy_(t.detach() * 2)],
                         ids=["zero_", "fill_", "normal_", "uniform_", "copy_"])
def test_in_place_on_a_leaf_that_requires_grad_is_refused_as_pytorch_refuses(write):
    for L in BOTH:
        x = L.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being "
                                               "used in an in-place operation"):
            write(x)
    x = sn.ones(3, requires_grad=True)
    with sn.no_grad():
        write(x)  # allowed there, as in PyTorch
    write(x.data)  # and through .data


def test_iadd_on_the_tape_records_and_off_it_writes_in_place():
    x = sn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y += x  # on the tape: a new recorded tensor, y rebound
    y.sum().backward()
    np.testing.assert_array_equal(sn.to_numpy(x.grad), [3.0, 3.0])
    a = sn.tensor([1.0, 2.0])
    view = a.reshape(2)
    held = a
    a += 1
    assert a is held  # the same tensor, written in place
    np.testing.assert_array_equal(sn.to_numpy(view), [2.0, 3.0])
    for L in BOTH:
        b = L.tensor([2.0, 3.0])
        with pytest.raises(RuntimeError, match=r"output with shape \[2\] doesn't match the "
                                               r"broadcast shape \[2, 2\]"):
            b += L.ones(2, 2)  # the result would not fit in b: nothing written
        np.testing.assert_array_equal(host(b), [2.0, 3.0])
    np.testing.assert_array_equal(sn.to_numpy(a), [2.0, 3.0])


def test_grad_and_data_setters_take_tensors_or_arrays_and_refuse_other_things():
    x = sn.tensor([1.0, 2.0], requires_grad=True)
    x.grad = sn.tensor([5.0, 6.0])
    np.testing.assert_array_equal(sn.to_numpy(x.grad), [5.0, 6.0])
    x.grad = None
    assert x.grad is None
    with pytest.raises(TypeError, match="Tensor.grad: expected a Tensor or an array, got list"):
        x.grad = [1.0, 2.0]
    p = nn.Linear(2, 1).weight
    with pytest.raises(TypeError, match="Tensor.data: expected a Tensor or an array, got str"):
        p.data = "zeros"


def test_moved_values_stay_where_they_are(fakegpu):
    """A Parameter on the CPU read while the GPU is active: .data and .grad share its
    arrays as they are (``Tensor(a)`` would copy to the active device)."""
    with sn.use_device("cpu"):
        layer = nn.Linear(3, 2)
        layer.weight.grad = np.zeros((2, 3), np.float32)  # None until a backward, as PyTorch
    assert layer.weight.data.device == layer.weight.grad.device == sn.device("cpu")
    assert layer.weight.data.array is layer.weight.array
