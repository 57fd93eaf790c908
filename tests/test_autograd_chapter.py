"""d2l section 2.5 (automatic differentiation) and the gradients of 5.1's activation
plots on scratchnet's tape against PyTorch's autograd: each case is a small function of
the library ``L`` (scratchnet or torch), run once on each, its gradients compared in
float64 to 1e-12; then the book's cells in float32 print what PyTorch prints."""
import numpy as np
import pytest
import torch

import scratchnet as sn

BOTH = (sn, torch)
X = [0., 1., 2., 3.]


def host(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else sn.to_numpy(t.array)


def leaf(L, values=X):
    x = L.tensor(values, dtype=L.float64)
    x.requires_grad_(True)
    return x


def dot_twice(L):  # 2.5.1: y = 2 x.x, so dy/dx = 4x
    x = leaf(L)
    assert x.grad is None  # no gradient before the first backward
    y = 2 * L.dot(x, x)
    y.backward()
    assert bool((x.grad == 4 * x).all())
    return [y, x.grad]


def sum_after_zero(L):  # 2.5.1: x.grad.zero_() resets, then d(sum x)/dx = 1
    x = leaf(L)
    (2 * L.dot(x, x)).backward()
    x.grad.zero_()
    y = x.sum()
    y.backward()
    return [y, x.grad]


def gradients_accumulate(L):  # without zero_(), a second backward adds to .grad
    x = leaf(L)
    (2 * L.dot(x, x)).backward()
    x.sum().backward()
    return [x.grad]


def non_scalar_with_gradient(L):  # 2.5.2: y.backward(gradient=torch.ones(len(y)))
    x = leaf(L)
    y = x * x
    y.backward(gradient=L.ones(len(y), dtype=L.float64))
    return [y, x.grad]


def non_scalar_as_sum(L):  # 2.5.2: "Faster: y.sum().backward()", the same gradient
    x = leaf(L)
    y = x * x
    y.sum().backward()
    return [x.grad]


def weighted_non_scalar(L):  # a gradient that is not all ones weighs each output
    x = leaf(L)
    y = x * x * x
    y.backward(gradient=L.tensor([1., -2., .5, 3.], dtype=L.float64))
    return [x.grad]


def detached(L):  # 2.5.3: u = y.detach() is a constant, so d(u * x)/dx = u
    x = leaf(L)
    y = x * x
    u = y.detach()
    z = u * x
    z.sum().backward()
    assert bool((x.grad == u).all()) and not u.requires_grad
    g1 = x.grad.clone()
    x.grad.zero_()
    y.sum().backward()  # y itself still has its graph
    assert bool((x.grad == 2 * x).all())
    return [g1, x.grad]


def f(a):  # 2.5.4, as the book writes it
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


def control_flow(L, a0):  # f is linear in a along its path: a.grad == d / a
    a = L.tensor(a0, dtype=L.float64, requires_grad=True)
    d = f(a)
    d.backward()
    assert bool(a.grad == d / a)
    return [d, a.grad]


def retained_graph(L):  # 5.1: y.backward(torch.ones_like(x), retain_graph=True), twice
    x = leaf(L, np.linspace(-3, 3, 7))
    grads = []
    for act in (L.relu, L.sigmoid, L.tanh):
        y = act(x)
        if x.grad is not None:
            x.grad.data.zero_()
        y.backward(L.ones_like(x), retain_graph=True)
        grads.append(x.grad.clone())
        y.backward(L.ones_like(x))  # the kept graph runs again and adds the same
        grads.append(x.grad.clone())
    return grads


CASES = [dot_twice, sum_after_zero, gradients_accumulate, non_scalar_with_gradient,
         non_scalar_as_sum, weighted_non_scalar, detached, retained_graph]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_the_tape_computes_the_chapters_gradients(case, device):
    ours, theirs = (case(L) for L in BOTH)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float64 and tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("a0", [0.3, -0.3, 1e-3, -2.5, 1500.])
def test_control_flow_gradient(a0, device):
    ours, theirs = (control_flow(L, a0) for L in BOTH)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-12, atol=0)


def test_a_refused_backward_adds_nothing():
    x = leaf(sn)
    y = x * x
    with pytest.raises(RuntimeError, match="gradient of shape"):
        y.backward(gradient=sn.ones(3, dtype=sn.float64))
    with pytest.raises(RuntimeError, match="implicitly only for a scalar"):
        y.backward()
    assert x.grad is None
    y.backward(gradient=sn.ones(4, dtype=sn.float32))  # cast to y's dtype, as PyTorch
    assert x.grad.dtype == np.float64
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(gradient=sn.ones(4, dtype=sn.float64))


def book_cells(L):
    """The cells of 2.5 in the book's float32, with what each shows."""
    shown = []
    x = L.arange(4.0)
    shown.append(x)
    x.requires_grad_(True)
    shown.append(x.grad)
    y = 2 * L.dot(x, x)
    shown.append(y)
    y.backward()
    shown += [x.grad, x.grad == 4 * x]
    x.grad.zero_()
    y = x.sum()
    y.backward()
    shown.append(x.grad)
    x.grad.zero_()
    y = x * x
    y.backward(gradient=L.ones(len(y)))
    shown.append(x.grad)
    x.grad.zero_()
    y = x * x
    u = y.detach()
    z = u * x
    z.sum().backward()
    shown.append(x.grad == u)
    x.grad.zero_()
    y.sum().backward()
    shown.append(x.grad == 2 * x)
    a = L.tensor(-0.75, requires_grad=True)
    d = f(a)
    d.backward()
    shown += [d, a.grad, a.grad == d / a]
    return [repr(v) for v in shown]


def test_the_book_cells_print_as_torch(device):
    ours, theirs = (book_cells(L) for L in BOTH)
    assert ours == theirs
    assert ours[4] == "tensor([True, True, True, True])"
