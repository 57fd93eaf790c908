"""The tape's views with numbers (issue 27, item 2): every node's value and gradient, the
line that made it, what a view leaves out, and a layout where two paths read as two."""
import numpy as np
import torch

import scratchnet as sn
import scratchnet.autograd as ag
from scratchnet.autograd.graph import graph_numbers, layout, _graph
from scratchnet.models import Residual


def micrograd_sanity(lib, x):
    """micrograd's test_sanity_check, on either library; returns (y, z)."""
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    return h + q + q * x, z


def row(lines, name):
    return next(line.split() for line in lines if line.split()[:2] == name.split())


def test_the_table_shows_values_gradients_and_the_line_that_made_each_op():
    x = ag.Tensor(-4.0, requires_grad=True, name="x")
    y, z = micrograd_sanity(ag, x)
    lines = ag.backward_order(y, numbers=True)
    assert lines[0].split() == ["step", "op", "shape", "value", "gradient", "sums", "made", "by"]
    first = lines[1].split()
    assert first[:5] == ["1", "AddBackward", "()", "-20", "1"]
    assert lines[1].endswith("return h + q + q * x, z")    # the line of this file
    assert "test_graph_views.py:" in lines[1]
    assert row(lines, "leaf x")[2:6] == ["()", "-4", "46", "4"]
    assert lines[-1] == "left out (they need no gradient): the number 2 (x2)"


def test_each_node_gradient_is_pytorchs_and_nothing_changes():
    x = ag.Tensor(-4.0, requires_grad=True, name="x")
    y, z = micrograd_sanity(ag, x)
    values, grads, note = graph_numbers(y)
    tx = torch.tensor(-4.0, dtype=torch.float64, requires_grad=True)
    ty, tz = micrograd_sanity(torch, tx)
    tz.retain_grad()
    ty.backward()
    assert note == []
    assert float(values[id(z.grad_fn)]) == tz.item() == -10
    assert float(grads[id(z.grad_fn)]) == tz.grad.item() == -8
    assert float(grads[id(x)]) == tx.grad.item() == 46
    # computed on the side: no .grad filled, and the graph still runs once
    assert x.grad is None
    y.backward()
    assert float(x.grad) == 46
    after = ag.backward_order(y, numbers=True)
    assert row(after, "leaf x")[4] == "-" and any("freed" in s for s in after)


def test_a_gradient_already_there_is_put_back_in_place():
    x = ag.Tensor(np.array([1.0, 2.0]), requires_grad=True, name="x")
    (x * x).sum().backward()
    held = x.grad                      # a Tensor sharing the gradient's array
    y = (x * 3).sum()
    _, grads, _ = graph_numbers(y)
    assert np.array_equal(grads[id(x)], [3.0, 3.0])
    assert np.array_equal(held.array, [2.0, 4.0]) and np.array_equal(x.grad.array, [2.0, 4.0])


def test_a_leaf_used_once_is_listed_and_a_written_over_value_said():
    """The book's Conv2D (7.2.2): the bias, used once, has its row, and each write into Y
    its value."""
    X = ag.Tensor(np.array([[1.0, 1.0, 0.0]]))
    w = ag.Tensor(np.array([[0.5, -1.0]]), requires_grad=True, name="weight")
    b = ag.Tensor(np.ones(1), requires_grad=True, name="bias")
    Y = sn.zeros((1, 2), dtype=sn.float64)
    for j in range(2):
        Y[0, j] = (X[0:1, j:j + 2] * w).sum()
    loss = ((Y + b) ** 2).sum()
    lines = ag.backward_order(loss, numbers=True)
    # Y = [-0.5, 0.5], dL/dY = 2 (Y + b) = [1, 3]: the bias gets 4, the weight
    # 1 * [1, 1] + 3 * [1, 0] = [4, 1], from its two uses
    assert row(lines, "leaf bias")[2:5] == ["(1,)", "1", "4"]
    assert row(lines, "leaf weight")[6:] == ["[4,", "1]", "2"]
    # each write is a node of its own, with the value Y had after it
    assert [r[4:6] for r in (line.split() for line in lines) if r[1:2] == ["CopySlicesBackward"]] \
        == [["[-0.5,", "0.5]"], ["[-0.5,", "0]"]]
    assert lines[-1].endswith("the number 2, a tensor (1, 2) (x3)")  # Y = zeros, X[...]


def test_layer_nodes_carry_their_path_and_the_picture_its_numbers(tmp_path):
    sn.manual_seed(0)
    block = Residual(4, use_1x1conv=True, strides=2)
    X = ag.Tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32),
                  requires_grad=True, name="X")
    loss = (block(X) ** 2).sum()
    dot = ag.to_dot(loss, numbers=True)
    for name in ("conv1 Conv2d", "conv2 Conv2d", "conv3 Conv2d", "bn1 BatchNorm2d"):
        assert f'label="{name}\\n' in dot
    assert dot.count("\\ngrad ") == dot.count("shape=box") + dot.count("shape=ellipse")
    _, grads, _ = graph_numbers(loss)
    loss.backward()
    for k, p in block.named_parameters():
        leaf = next(t for t in _graph(loss)[1] if t.name == k)
        np.testing.assert_array_equal(grads[id(leaf)], sn.to_numpy(p.grad))
    assert ag.plot_graph(loss, tmp_path / "g.png", use_dot=False).stat().st_size > 0


def test_the_skip_path_gets_its_own_column():
    block = Residual(4, use_1x1conv=True, strides=2)
    X = ag.Tensor(np.ones((1, 3, 4, 4), np.float32), requires_grad=True, name="X")
    out = block(X)
    order, leaves, edges, _, _ = _graph(out)
    pos = layout(order, leaves, edges)
    by = {getattr(getattr(n, "module", None), "_tape_path", n.name): pos[id(n)] for n in order}
    main = {by[k][0] for k in ("conv1", "bn1", "relu1", "conv2", "bn2")}
    assert main == {0.0} and by["conv3"][0] == 2.0          # two paths, two columns
    x = pos[id(next(t for t in leaves if t.name == "X"))]
    assert x[0] == 0.0 and x[1] < by["conv1"][1]             # X below the main path
    weight = pos[id(next(t for t in leaves if t.name == "conv3.weight"))]
    assert weight[0] == 3.0                                  # beside its own layer
