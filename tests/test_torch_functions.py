"""torch's tensor functions as d2l's chapters 2-5 use them, on scratchnet against PyTorch
(``L`` is scratchnet or torch, each case built the same way in both): dot, mv, mm,
matmul, norm, cumsum, maximum and max(X, other), ndimension, from_numpy; PyTorch's type
promotion and torch.tensor's dtypes; grad_fn names; every gradient in float64 to 1e-12;
a Parameter's grad and shape; and the errors, with PyTorch's messages."""
import itertools

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import close, host
from scratchnet import nn

BOTH = (sn, torch)
X0 = np.array([[1., 5., -2., 5.], [3., -4., 3., .5], [-4., 2., 5., 1.]])  # ties: 5, 5 and 3, 3


def weigh(L, y):
    """A scalar from y with a different weight per element, so misplaced gradients show."""
    c = np.cos(np.arange(y.numel()) * .7 + .3)
    return (y * L.tensor(c, dtype=y.dtype).reshape(tuple(y.shape))).sum()


def run(L, code, **names):
    return eval(code, {"L": L, "np": np, "torch": torch, **names})


# What the cells print: values, dtype and grad_fn in one string, as the book shows them -----
PRINTED = [
    "L.dot(L.arange(3.), L.ones(3, dtype=L.float32))", "L.arange(3.).dot(L.ones(3))",
    "L.mv(L.arange(6.).reshape(2, 3), L.arange(3.))", "L.arange(6.).reshape(2, 3) @ L.arange(3.)",
    "L.mm(L.arange(6.).reshape(2, 3), L.ones(3, 4))", "L.arange(3.) @ L.arange(6.).reshape(3, 2)",
    "L.arange(3.) @ L.arange(3.)", "L.matmul(L.arange(6.).reshape(2, 3), L.arange(3.))",
    "L.arange(6.).reshape(2, 3).matmul(L.ones(3, 4))", "L.arange(4).reshape(2, 2) @ L.arange(2)",
    "L.norm(L.tensor([3.0, -4.0]))", "L.norm(L.ones((4, 9)))", "L.tensor([3.0, -4.0]).norm()",
    "L.ones(4, 9).norm(dim=1)", "L.tensor([[3., 4.], [6., 8.]]).norm(dim=0, keepdim=True)",
    "L.tensor([3.0, -4.0]).norm(p=1)", "L.tensor([[3., 4.], [6., 8.]]).norm(p='fro')",
    "L.tensor([3., 4.], dtype=L.float64).norm()",
    "L.arange(6.).reshape(2, 3).cumsum(axis=0)", "L.arange(6).reshape(2, 3).cumsum(dim=1)",
    "L.cumsum(L.tensor([True, False, True]), 0)", "L.tensor([[1., 0.], [0., 1.]]).cumsum(dim=0)",
    "L.arange(6, dtype=L.int32).cumsum(-1)", "L.tensor(2.).cumsum(0)",
    "L.maximum(L.tensor([-1., 2., 0.]), L.zeros(3))", "L.max(L.tensor([-1., 2., 0.]), L.zeros(3))",
    "L.tensor([-1., 2.]).max(L.tensor([0., 3.]))", "L.minimum(L.arange(4), L.tensor(2))",
    "L.maximum(L.arange(4.).reshape(2, 2), L.tensor([1., 2.]))",
    "L.max(L.tensor([[1, 5], [7, 2]]))", "L.max(L.tensor([[1., 5.], [7., 2.]]), 1)",
    "L.max(L.tensor([[1., 5.], [7., 2.]]), dim=0, keepdim=True)", "L.min(L.tensor([3, 1, 2]))",
    "L.arange(24).reshape(2, 3, 4).ndimension()", "L.tensor(1.).ndimension()",
    # 2.1.3: a float32 tensor with an int64 one stays float32 (numpy would give float64)
    "(lambda x, y: (x + y, x - y, x * y, x / y, x ** y))(L.tensor([1.0, 2, 4, 8]), "
    "L.tensor([2, 2, 2, 2]))",
    "L.arange(4) * 2.5", "L.arange(4) / L.arange(1, 5)", "2 ** L.arange(3)", "2.0 ** L.arange(3)",
    "L.arange(3) == 1.5", "L.tensor([True, False]) + 1", "L.tensor([True]) + True",
    "L.arange(4) * np.float64(2.5)", "1 - L.arange(3)", "L.ones(2) + L.tensor(1., dtype=L.float64)",
    "L.arange(2) + L.tensor(1., dtype=L.float64)", "L.ones(2) == None", "L.arange(3.) < 1",
    "(L.arange(3) > 0).all()", "(L.arange(3) > 0).any()", "(L.arange(6).reshape(2, 3) > 1).all(1)",
    "(L.arange(6).reshape(2, 3) > 4).any(dim=0, keepdim=True)",
    "type(L.ones(2))", "type(L.nn.Parameter(L.ones(2)))", "type(L.from_numpy(np.ones(2)))",
    "L.nn.Parameter(L.ones(3)).ndimension()",
]


@pytest.mark.parametrize("code", PRINTED)
def test_prints_as_torch(code, device):
    assert repr(run(sn, code)) == repr(run(torch, code))


# The names of the nodes (grad_fn=<...Backward0>) the chapters print -------------------------
NAMED = [
    "x.sum()", "x.sum(dim=0)", "x.sum(axis=[0, 1])", "x.mean()", "x.mean(0)", "x.mean(1, True)",
    "x ** 2", "x ** x", "2 ** x", "1 - x", "2 / x", "x - 1", "x / 2", "x * x", "2 * x", "x + 1",
    "-x", "L.dot(x[0], x[1])", "L.mv(x, x[0])", "L.mm(x, x.t())", "x @ x[0]", "x[0] @ x[0]",
    "x[0] @ x.t()", "L.norm(x)", "x.norm(dim=1)", "x.norm(p=1)", "x.cumsum(dim=0)",
    "L.maximum(x, x * 0)", "L.max(x, L.ones(4, dtype=L.float64))", "x.max()", "x.min()",
    "x.max(dim=0).values", "x.min(1)[0]", "x[:2]", "x[1]", "x[[0, 1]]", "x[x > 1]", "x[0, 1]",
    "x[0, :2]", "x[None]", "x[..., 1]", "x[1, :]", "x[:, 1]", "x[:, 0:4]", "x[...]",
    "x[None, 0]", "x[0, None]", "x[1:2, None]", "x[::2]", "x[-1]", "x[:]", "x[:, [0, 1]]",
    "x[L.tensor(1)]", "x[L.tensor([1])]", "x[1:, 1]", "x[1, 1:]", "x[:, :, None]",
    "x[1, ..., None]", "x.T", "x.t()", "x.transpose(0, 1)", "x.permute(1, 0)",
    "x.reshape(4, 3)", "x.view(12)", "x.flatten()", "x.unsqueeze(0)", "x[None].squeeze(0)",
    "x[None].squeeze()", "x.exp()", "x.abs()", "x.sqrt()", "x.clone()", "L.relu(x)",
    "L.sigmoid(x)", "L.tanh(x)", "x.float()", "L.stack([x, x])", "L.cat([x, x])",
]


@pytest.mark.parametrize("code", NAMED)
def test_grad_fn_names_as_torch(code):
    x0 = np.abs(X0) + 1  # positive: sqrt and x ** x print numbers, not nan
    got, want = (repr(run(L, code, x=L.tensor(x0, dtype=L.float64, requires_grad=True)))
                 for L in BOTH)
    assert got == want
    assert "grad_fn=<" in want  # the case is on the tape


# Every gradient, float64 to 1e-12 ------------------------------------------------------------
GRAD = [
    "L.dot(x[0], x[1])", "L.dot(x[0], x[0]) * 2", "L.mv(x, x[1])", "L.mv(x.t(), x[:, 0])",
    "L.mm(x, x.t())", "L.mm(x.t(), x[:, :2])", "x @ x[2]", "x[0] @ x.t()", "x[1] @ x[1]",
    "L.matmul(x, x.t())", "x.matmul(x[0])", "x.mv(x[2]) + x.mm(x.t()).sum(1)",
    "L.norm(x)", "x.norm()", "x.norm(dim=1)", "x.norm(dim=0, keepdim=True) * x",
    "x.norm(p=1)", "x.norm(p=1, dim=-1)", "x.norm(p='fro', dim=(0, 1))", "L.norm(x * 0)",
    "x.cumsum(dim=0)", "x.cumsum(axis=1) * x", "L.cumsum(x, -1)",
    "L.maximum(x, L.full((4,), 3., dtype=L.float64))", "L.max(x, x[:, [1, 0, 3, 2]])",
    "L.minimum(x, x.t()[[1, 0, 3, 2]].t())", "x.max(L.zeros(3, 1, dtype=L.float64))",
    "x.min(x.flip(0) if L is torch else x[::-1])", "L.max(x) * x", "L.max(x, 1).values",
    "x.mean()", "x.mean(0) * x", "x.mean((0, 1), keepdim=True) * x", "x.sum(axis=[0, 1])",
    "x ** 2", "x ** x.abs()", "2 ** x", "1 - x", "2 / x", "x / 2", "x[[0, 0, 2]] * x[:, :]",
    "x[x > 1]", "x[1, None] * x", "x.t()[None, 1:]", "x * L.tensor(2., dtype=L.float32)",
    "x.float() * x", "x * L.arange(4)", "x / L.arange(1, 5)", "L.arange(4) - x",
]


@pytest.mark.parametrize("code", GRAD)
def test_gradient_matches_torch(code, device):
    grads, shown = [], []
    for L in BOTH:
        x = L.tensor(X0, dtype=L.float64, requires_grad=True)
        y = run(L, code, x=x)
        weigh(L, y).backward()
        grads.append(host(x.grad))
        shown.append((str(y.dtype).replace("torch.", ""), str(x.grad.dtype).replace("torch.", "")))
    assert shown[0] == shown[1]
    close(*grads)


def test_float32_gradients_of_the_book_match_torch(device):
    """2.5 and 5.1 in float32, as the book runs them: the same bits as PyTorch."""
    got = []
    for L in BOTH:
        x = L.arange(-2.0, 2.0, 0.5, requires_grad=True) if L is torch else \
            L.tensor(np.arange(-2.0, 2.0, 0.5, dtype=np.float32)).requires_grad_()
        (2 * L.dot(x, x)).backward()
        g1 = host(x.grad).copy()
        x.grad.data.zero_()
        L.max(x, L.zeros_like(x)).backward(L.ones_like(x), retain_graph=True)
        g2 = host(x.grad).copy()
        got.append((g1, g2))
    for a, b in zip(*got):
        assert a.dtype == np.float32 and (a == b).all()


# Errors: PyTorch's message, and the function named -------------------------------------------
ERRORS = [  # (the call, the function our message starts with)
    ("L.dot(L.ones(2, 2), L.ones(2, 2))", "dot"), ("L.dot(L.ones(3), L.ones(4))", "dot"),
    ("L.dot(L.ones(3), L.ones(3, dtype=L.float64))", "dot"),
    ("L.mv(L.ones(2, 3), L.ones(4))", "mv"), ("L.mv(L.ones(3), L.ones(3))", "mv"),
    ("L.mv(L.ones(2, 3), L.ones(3, 1))", "mv"), ("L.mm(L.ones(2, 3), L.ones(4, 2))", "mm"),
    ("L.mm(L.ones(3), L.ones(3, 2))", "mm"),
    ("L.mm(L.ones(2, 3), L.ones(3, 2, dtype=L.float64))", "mm"),
    ("L.ones(2, 3) @ L.ones(4)", "mv"), ("L.ones(3) @ L.ones(4)", "dot"),
    ("L.norm(L.arange(3))", "norm"), ("L.ones(3).cumsum()", "cumsum"),
    ("L.ones(3).cumsum(1)", "cumsum"), ("L.maximum(L.ones(3), L.ones(2))", "maximum"),
    ("L.max(L.ones(3), L.ones(2))", "maximum"), ("L.from_numpy([1, 2])", "from_numpy"),
    ("L.from_numpy(np.array(['a']))", "from_numpy"),
    ("L.from_numpy(np.array([1, 2], dtype=object))", "from_numpy"),
]


@pytest.mark.parametrize("code, name", ERRORS)
def test_bad_input_raises_torchs_error_naming_the_function(code, name):
    errors = []
    for L in BOTH:
        with pytest.raises(Exception) as info:
            run(L, code)
        errors.append(info.value)
    ours, theirs = errors
    assert type(ours) is type(theirs)
    assert str(theirs).splitlines()[0] in str(ours)
    assert str(ours).startswith(name) or (name == "cumsum" and "cumsum()" in str(ours))


def test_mv_and_norm_refusals_name_what_they_got():
    with pytest.raises(RuntimeError, match="^mv: .*same dtype, but got Float and Double"):
        sn.mv(sn.ones(2, 3), sn.ones(3, dtype=sn.float64))
    with pytest.raises(ValueError, match="^norm: .*p='fro', 2 and 1, got p=3"):
        sn.ones(3).norm(p=3)
    with pytest.raises(RuntimeError, match="^matmul: .*got shapes \\[2, 2, 2\\] and \\[2\\]"):
        sn.ones(2, 2, 2) @ sn.ones(2)
    x = sn.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="^dot"):
        sn.dot(x, sn.ones(4))
    assert x.grad is None


# Type promotion: the dtype of an op, against torch's, for every pair of kinds and tiers ------
DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]


def test_type_promotion_matches_torch():
    def make(L, name, zero_d):
        a = np.ones(() if zero_d else (2,), dtype=name)
        return L.from_numpy(a) if L is torch else L.tensor(a)

    seen = 0
    for (da, za), (db, zb) in itertools.product(itertools.product(DTYPES, (False, True)),
                                                repeat=2):
        dtypes = []
        for L in BOTH:
            a, b = make(L, da, za), make(L, db, zb)
            dtypes.append([str(y.dtype).replace("torch.", "") for y in (a + b, a * b, a / b)]
                          + [str((a == b).dtype).replace("torch.", "")])
        assert dtypes[0] == dtypes[1], (da, za, db, zb)
        seen += 1
    for name, number in itertools.product(DTYPES, (True, 3, 2.5, np.float64(.5))):
        dtypes = [str((make(L, name, False) * number).dtype).replace("torch.", "") for L in BOTH]
        assert dtypes[0] == dtypes[1], (name, number)
    assert seen == 256


TENSOR_DATA = ["[1.0, 2, 4, 8]", "[True, 1]", "[True, 1.5]", "[]", "[[1, 2], [3.0, 4]]",
               "True", "3", "2.5", "[[True], [False]]", "np.array([1, 2], dtype=np.int32)",
               "np.array([1.0])", "np.float64(2)", "np.arange(4.).reshape(2, 2)"]


@pytest.mark.parametrize("data", TENSOR_DATA)
def test_tensor_infers_torchs_dtype(data):
    got, want = (run(L, f"L.tensor({data})") for L in BOTH)
    assert str(got.dtype) == str(want.dtype)
    assert repr(got) == repr(want)


# from_numpy: PyTorch's shared memory ---------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_from_numpy_shares_memory_and_keeps_the_dtype(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    t, r = sn.from_numpy(a), torch.from_numpy(a.copy())
    assert repr(t) == repr(r) and t.dtype == a.dtype and not t.requires_grad
    a[0, 0] = 1
    assert host(t)[0, 0] == 1  # a write into the array shows in the tensor
    t[1, 2] = 0
    assert a[1, 2] == 0  # and the other way
    assert t.numpy() is a or np.shares_memory(t.numpy(), a)


def test_from_numpy_under_the_gpu_stays_a_cpu_tensor(fakegpu):
    """PyTorch's from_numpy always makes a CPU tensor: under use_device("gpu") it still
    shares the host array, prints its device, and is refused beside a GPU tensor."""
    a = np.ones(3, dtype=np.float32)
    t = sn.from_numpy(a)
    assert t.array is a and sn.backend.device_of(t.array) == "cpu"
    assert "device='cpu'" in repr(t)
    with pytest.raises((ValueError, RuntimeError), match="cpu"):
        t + sn.ones(3)
    assert sn.backend.device_of(sn.tensor(a).array) == "gpu"  # the copy that moves


# Parameters: grad None until a backward writes one; shape a torch.Size ------------------------
def test_parameter_grad_is_none_until_a_backward_writes_one():
    sn.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    X = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    net(X), tnet(torch.from_numpy(X))
    assert (net[2].weight.grad == None) is (tnet[2].weight.grad == None) is True  # noqa: E711
    assert [(n, p.shape) for n, p in net.named_parameters()] == [
        (n, p.shape) for n, p in tnet.named_parameters()]
    assert repr(net[0].weight.shape) == "torch.Size([8, 4])"
    net.zero_grad()  # nothing to zero yet: stays None
    assert net[0].weight.grad is None
    opt = sn.optim.SGD(net.parameters(), lr=0.1)
    before = host(net[0].weight).copy()
    opt.step()  # parameters without a gradient are skipped, as in PyTorch
    assert (host(net[0].weight) == before).all() and net[0].weight.grad is None
    net(X)
    net.backward(np.ones((2, 1), np.float32))  # manual backprop writes the first gradient
    g = host(net[2].weight.grad).copy()
    assert g.shape == (1, 8) and g.dtype == np.float32 and np.abs(g).sum() > 0
    net(X)
    net.backward(np.ones((2, 1), np.float32))  # and accumulates, as the tape does
    np.testing.assert_allclose(host(net[2].weight.grad), 2 * g, rtol=1e-6)
    net.zero_grad()
    assert (host(net[2].weight.grad) == 0).all()


def test_torch_functions_on_a_parameter_record_on_its_leaf():
    """torch.dot(w, x) with a Parameter w backpropagates into w.grad (a copy of w would
    leave it None), as the operators on a Parameter do."""
    grads = []
    for L in BOTH:
        w = L.nn.Parameter(L.tensor([1., -2., 3.], dtype=L.float64))
        x = L.tensor([.5, 4., -1.], dtype=L.float64)
        (L.dot(w, x) + L.norm(w) + L.sum(L.maximum(w, x)) + L.cumsum(w, 0).sum()).backward()
        grads.append(host(w.grad))
    close(*grads)


def test_parameter_grad_from_the_tape_starts_from_none():
    w = nn.Parameter(sn.tensor([1., 2.], dtype=sn.float64))
    assert w.grad is None and w.grad_array is None
    (w * w).sum().backward()
    np.testing.assert_array_equal(host(w.grad), [2., 4.])
    w.grad.zero_()
    assert (host(w.grad) == 0).all()
