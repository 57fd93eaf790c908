"""scratchnet.teach_tape, the readable tape: micrograd's two engine tests against
PyTorch (float64), the gradients of d2l 2.5's examples equal to the real tape's
(scratchnet.autograd), and the engine's rules: sums at a reused value, leaves that
accumulate, a second backward refused, and topological order (a queue order gives the
wrong gradient of docs/tape.md section 4)."""
import numpy as np
import pytest
import torch

import scratchnet.autograd as ag
from scratchnet import teach_tape
from scratchnet.teach_tape import Tensor


def torch_tensor(data, requires_grad=False):
    return torch.tensor(data, requires_grad=requires_grad)


TAPES = {"teach_tape": Tensor, "autograd": ag.Tensor, "torch": torch_tensor}


def values(t):
    """A tensor's values (or a gradient) of any of the three tapes, as a float64 array."""
    t = t.detach() if isinstance(t, torch.Tensor) else t
    return np.asarray(t.data if isinstance(t, Tensor) else t, dtype=np.float64)


def sanity_check(T):
    """micrograd's test_sanity_check, for the tape whose Tensor is T."""
    x = T(np.array(-4.0), requires_grad=True)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    return values(y), values(x.grad)


def more_ops(T):
    """micrograd's test_more_ops."""
    a = T(np.array(-4.0), requires_grad=True)
    b = T(np.array(2.0), requires_grad=True)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    return values(g), values(a.grad), values(b.grad)


def test_sanity_check():
    y, gx = sanity_check(Tensor)
    ty, tgx = sanity_check(torch_tensor)
    assert (y, gx) == (-20.0, 46.0) == (ty, tgx)


def test_more_ops():
    """micrograd asks 1e-6; in float64 the three tapes agree to 1 ulp (the real tape adds a
    leaf's gradients in another order: it runs the nodes in another topological order)."""
    got = more_ops(Tensor)
    for T in (torch_tensor, ag.Tensor):
        for name, a, b in zip(("g", "dg/da", "dg/db"), got, more_ops(T)):
            assert abs(a - b) <= 1e-15 * abs(b), f"{name}: {a} vs {b}"
    assert [f"{v:.4f}" for v in got] == ["24.7041", "138.8338", "645.5773"]  # micrograd README


def d2l_2_5(T, a0=0.1257302210933933):
    """The gradients of d2l 2.5's examples, in the book's order, on the tape of T."""
    x = T(np.arange(4.0), requires_grad=True)
    out = []
    y = 2 * x.dot(x)
    y.backward()
    out += [values(y), values(x.grad)]
    x.grad = None
    x.sum().backward()
    out.append(values(x.grad))
    x.grad = None
    y = x * x
    y.backward(gradient=T(np.ones(len(y))))
    out.append(values(x.grad))
    x.grad = None
    y = x * x
    u = y.detach()
    (u * x).sum().backward()
    out += [values(x.grad), values(u)]
    x.grad = None
    y.sum().backward()
    out.append(values(x.grad))

    def f(a):
        b = a * 2
        while b.norm() < 1000:
            b = b * 2
        if b.sum() > 0:
            c = b
        else:
            c = 100 * b
        return c
    for v in (a0, -a0):
        a = T(np.array(v), requires_grad=True)
        d = f(a)
        d.backward()
        out += [values(d), values(a.grad)]
    return out


def test_d2l_2_5_equals_the_real_tape_and_torch():
    got = d2l_2_5(Tensor)
    x = np.arange(4.0)
    assert np.array_equal(got[1], 4 * x) and np.array_equal(got[2], np.ones(4))
    assert np.array_equal(got[3], 2 * x) and np.array_equal(got[4], got[5])
    assert np.array_equal(got[6], 2 * x)
    assert got[8] == 8192.0 and got[10] == 819200.0  # d = 8192 a; for -a, 100 * 8192 a
    for T in (ag.Tensor, torch_tensor):
        for k, (a, b) in enumerate(zip(got, d2l_2_5(T))):
            assert a.shape == b.shape and np.array_equal(a, b), (k, a, b)


@pytest.mark.parametrize("op", ["tanh", "exp", "mean", "div", "rsub", "pow", "neg"])
def test_other_ops_equal_torch(op):
    x0 = np.array([[-1.5, 0.25, 2.0], [0.5, -0.75, 1.25]])
    f = {"tanh": lambda x: x.tanh(), "exp": lambda x: x.exp(), "mean": lambda x: x.mean(),
         "div": lambda x: 1.0 / (x * x + 1) / x, "rsub": lambda x: 1 - x * 3,
         "pow": lambda x: x ** 3 + (x * x + 1) ** -0.5, "neg": lambda x: -x}[op]
    results = []
    for T in (Tensor, torch_tensor):
        x = T(x0, requires_grad=True)
        y = f(x)
        (y * T(x0 + 2)).sum().backward()
        results.append((values(y), values(x.grad)))
    (y, gx), (ty, tgx) = results
    np.testing.assert_allclose(y, ty, rtol=1e-14, atol=0)
    np.testing.assert_allclose(gx, tgx, rtol=1e-14, atol=0)


def test_broadcast_gradients_are_summed_back():
    results = []
    for T in (Tensor, torch_tensor):
        X = T(np.arange(6.0).reshape(2, 3), requires_grad=True)
        s = T(np.array(2.0), requires_grad=True)
        b = T(np.array([[1.0, -1.0, 0.5]]), requires_grad=True)
        v = T(np.array([0.5, 2.0, -1.0]), requires_grad=True)
        ((s * X + b) * v).tanh().sum().backward()
        results.append([values(t.grad) for t in (X, s, b, v)])
    for got, want in zip(*results):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)
    assert teach_tape.unbroadcast(np.ones((4, 2, 3)), (2, 1)).tolist() == [[12.0], [12.0]]


def test_leaves_accumulate_and_intermediates_keep_no_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for _ in range(2):
        h = x * 3
        (h * h).sum().backward()
    assert x.grad.tolist() == [36.0, 72.0]  # 2 * (18 x), as docs/autograd.md's example
    assert h.grad is None and h.grad_fn is not None and x.grad_fn is None


def test_a_second_backward_is_refused_and_adds_nothing():
    x = Tensor(np.array(3.0), requires_grad=True)
    y = x * x + x
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    assert x.grad == 7.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(1.0).backward()


def test_detach_and_constants_stop_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * x
    u = y.detach()
    assert not u.requires_grad and u.grad_fn is None and np.shares_memory(u.data, y.data)
    z = (u * x + 5).sum()
    z.backward()
    assert x.grad.tolist() == [1.0, 4.0]


def queue_order_backward(root):
    """docs/tape.md section 4's wrong engine on the module's graph: each tensor runs once,
    in the order it is first reached, with whatever gradient it has by then."""
    grads, queue, done = {id(root): np.ones_like(root.data)}, [root], set()
    while queue:
        t = queue.pop(0)
        if id(t) in done or t.grad_fn is None:
            t.grad = grads[id(t)] if t.grad_fn is None else t.grad
            continue
        done.add(id(t))
        for inp, g in zip(t.grad_fn.inputs, t.grad_fn.backward(grads[id(t)])):
            if inp.requires_grad:
                grads[id(inp)] = grads.get(id(inp), 0) + g
                queue.append(inp)


def test_topological_order_gives_the_gradient_a_queue_order_does_not():
    def make():
        x, w, b = (Tensor(np.array(v), requires_grad=True) for v in (3.0, -2.0, 1.0))
        z = w * x + b
        return (z * 4 + 1) * z, x
    L, x = make()
    queue_order_backward(L)
    assert x.grad == 38.0  # z ran with the gradient of one of its two uses
    L, x = make()
    order = teach_tape.topological_order(L)
    z = L.grad_fn.inputs[1]
    assert order.index(z) > order.index(L.grad_fn.inputs[0].grad_fn.inputs[0])  # after p
    L.backward()
    assert x.grad == 78.0  # (8 z + 1) w
