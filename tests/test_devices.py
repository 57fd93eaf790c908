"""Devices as PyTorch names them (d2l 6.7): ``torch.device``, ``torch.cuda``, ``device=`` on
the creation functions, ``Tensor.to`` / ``.cuda`` / ``.cpu`` and ``Module.to`` / ``.cuda`` /
``.cpu``, against torch. Without a GPU (torch here is a CPU build) the cuda calls fail as
PyTorch's do; on the CuPy double (tests/fakecupy.py, one "GPU", the CPU still the active
device as in a PyTorch session) they work as PyTorch's do on a one-GPU machine; a real GPU
reruns the main path (mark ``gpu``)."""
import pickle

import numpy as np
import pytest
import torch

import fakecupy
import scratchnet as sn
from conftest import GPU, needs_gpu
from scratchnet import nn
from scratchnet.device import NO_ACCELERATOR
from scratchnet.port import port
from test_structure import module_edges

BOTH = (sn, torch)
# The forms of torch.device(...), each written once for both libraries (L).
FORMS = ["L.device('cpu')", "L.device('cuda')", "L.device('cuda:1')", "L.device('cuda', 1)",
         "L.device(type='cuda', index=1)", "L.device('cpu:0')", "L.device('cpu', 0)",
         "L.device('cuda:0')", "L.device('cuda', None)", "L.device(L.device('cuda:1'))",
         "L.device('cuda:12')"]
NO_GPU = pytest.mark.skipif(sn.gpu_available() or torch.cuda.is_available(),
                            reason="checks the errors of a machine without a GPU")


def both(code):
    return [eval(code, {"L": L}) for L in BOTH]


def error_of(f):
    """(type, text) of what f() raises."""
    with pytest.raises(Exception) as info:
        f()
    return type(info.value), str(info.value)


@pytest.fixture
def double():
    """The CuPy double as scratchnet's one GPU, the CPU still the active device (as in a
    PyTorch session: tensors are made on the CPU unless a device is named)."""
    with fakecupy.installed():
        yield fakecupy


# torch.device ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
def test_a_device_prints_and_reads_as_torchs(form):
    ours, theirs = both(form)
    assert (repr(ours), str(ours), ours.type, ours.index) == \
        (repr(theirs), str(theirs), theirs.type, theirs.index)
    assert f"{ours}" == f"{theirs}"
    assert pickle.loads(pickle.dumps(ours)) == ours


def test_devices_compare_and_hash_as_torchs():
    ours, theirs = zip(*(both(f) for f in FORMS))
    for i in range(len(FORMS)):
        for j in range(len(FORMS)):
            assert (ours[i] == ours[j]) == (theirs[i] == theirs[j]), (FORMS[i], FORMS[j])
            assert (ours[i] != ours[j]) == (theirs[i] != theirs[j])
            if ours[i] == ours[j]:
                assert hash(ours[i]) == hash(ours[j])
    # A device is not its string, in either library; it serves as a dict key.
    assert (sn.device("cpu") == "cpu", sn.device("cpu") != "cpu") == \
        (torch.device("cpu") == "cpu", torch.device("cpu") != "cpu") == (False, True)
    assert {sn.device("cuda", 0): 1}[sn.device("cuda:0")] == 1
    with pytest.raises(AttributeError):
        sn.device("cpu").type = "cuda"


@pytest.mark.parametrize("args", [("",), ("cuda:x",), ("cuda:-1",), ("cuda:01",), ("cuda: 1",),
                                  ("cuda:",), ("cuda0",), (" cuda",), ("cuda:1", 1),
                                  ("cuda", -1)])
def test_bad_device_strings_raise_torchs_errors(args):
    assert error_of(lambda: sn.device(*args)) == error_of(lambda: torch.device(*args))


@pytest.mark.parametrize("args", [("gpu",), ("CUDA",), ("tpu:0",)])
def test_a_device_type_scratchnet_lacks_is_refused_as_torch_refuses_one(args):
    kind, text = error_of(lambda: sn.device(*args))
    theirs = error_of(lambda: torch.device(*args))
    assert kind is theirs[0] is RuntimeError
    kind_named = args[0].split(":")[0]
    assert text.startswith(f"Expected one of cpu, cuda device type at start of device "
                           f"string: {kind_named}")
    assert theirs[1].startswith("Expected one of cpu, cuda, ") and \
        theirs[1].endswith(f"device type at start of device string: {kind_named}")


@pytest.mark.parametrize("args", [(1.5,), (None,), (sn.device("cuda"), 1), ("cuda", True),
                                  ("cuda", "1"), ("cuda", 1.0)])
def test_a_device_of_the_wrong_kind_is_a_type_error_naming_device(args):
    theirs = tuple(torch.device(str(a)) if isinstance(a, sn.device) else a for a in args)
    kind, text = error_of(lambda: sn.device(*args))
    assert kind is error_of(lambda: torch.device(*theirs))[0] is TypeError
    assert text.startswith("device(): ")
    if len(args) == 2 and isinstance(args[0], str):  # torch's own words for the index
        assert text == error_of(lambda: torch.device(*theirs))[1]


def test_the_device_file_is_a_low_floor():
    """device.py imports only the backend (so the tape, one floor up, can use it) and
    cuda.py only those two."""
    assert module_edges("scratchnet.device") == {"scratchnet.backend"}
    assert module_edges("scratchnet.cuda") <= {"scratchnet.backend", "scratchnet.device"}


def test_port_makes_torch_cuda_scratchnets():
    assert port("from torch import cuda") == "from scratchnet import cuda"
    assert port("import torch.cuda") == "import scratchnet as torch"


# Without a GPU: the counts, and PyTorch's errors ----------------------------------------

@NO_GPU
def test_without_a_gpu_torch_cuda_counts_none():
    assert sn.cuda.device_count() == torch.cuda.device_count() == 0
    assert sn.cuda.is_available() is torch.cuda.is_available() is False


@NO_GPU
def test_without_a_gpu_cuda_1_fails_as_torchs():
    """d2l 6.7's ``Z = X.cuda(1)`` on a machine without a GPU: the very error."""
    X = sn.ones(2, 3)
    assert error_of(lambda: X.cuda(1)) == error_of(lambda: torch.ones(2, 3).cuda(1)) == \
        (RuntimeError, NO_ACCELERATOR)
    assert error_of(lambda: sn.device(0)) == error_of(lambda: torch.device(0))


@NO_GPU
@pytest.mark.parametrize("call", [
    "X.cuda()", "X.cuda('cuda:0')", "X.to('cuda')", "X.to(L.device('cuda', 0))", "X.to('gpu')",
    "L.ones(2, device='cuda')", "L.rand(2, device=L.device('cuda'))",
    "L.tensor([1.], device='cuda')", "L.zeros_like(X, device='cuda')", "net.cuda()",
    "net.to('cuda')", "net.to(device=L.device('cuda'))"])
def test_without_a_gpu_every_way_to_the_gpu_fails_and_changes_nothing(call):
    """PyTorch's CPU build says "Torch not compiled with CUDA enabled" (an AssertionError)
    for most of these; scratchnet is a framework with a GPU path and no GPU here, so each
    says what ``X.cuda(1)`` says, with scratchnet's reason (no CuPy, no CUDA device) as
    its cause."""
    X, net = sn.tensor([1., 2.], requires_grad=True), nn.Linear(2, 1)
    weight, draws = sn.to_numpy(net.weight.data).copy(), sn.backend.rng().bit_generator.state
    with pytest.raises(RuntimeError) as info:
        eval(call, {"L": sn, "X": X, "net": net})
    assert str(info.value) == NO_ACCELERATOR
    assert isinstance(info.value.__cause__, sn.DeviceError)
    with pytest.raises((RuntimeError, AssertionError)):  # torch refuses it too
        eval(call.replace("'gpu'", "'cuda'"),
             {"L": torch, "X": torch.ones(2), "net": torch.nn.Linear(2, 1)})
    assert X.device == sn.device("cpu") and net.weight.device == sn.device("cpu")
    np.testing.assert_array_equal(sn.to_numpy(net.weight.data), weight)
    assert sn.backend.rng().bit_generator.state == draws


# On the CPU: .to, .cpu and the creation functions' keywords -----------------------------

def test_a_tensor_names_its_device_as_torch():
    assert repr(sn.tensor([1, 2, 3]).device) == repr(torch.tensor([1, 2, 3]).device) == \
        "device(type='cpu')"
    assert nn.Linear(2, 1).weight.data.device == nn.Linear(2, 1).weight.device == \
        sn.device("cpu")


@pytest.mark.parametrize("call", ["x.to('cpu')", "x.to(L.device('cpu'))", "x.cpu()",
                                  "x.to(L.float32)", "x.to('cpu', L.float32)", "x.to(x)",
                                  "x.to()", "x.to(None)", "x.to(device='cpu')",
                                  "x.to(dtype=L.float32, non_blocking=True)"])
def test_to_where_it_is_gives_the_tensor_itself(call):
    for L in BOTH:
        x = L.ones(2, requires_grad=True)
        assert eval(call, {"L": L, "x": x}) is x, (call, L.__name__)


@pytest.mark.parametrize("call", ["x.to(L.float64)", "x.to('cpu', L.float64)",
                                  "x.to('cpu', dtype=L.float64)",
                                  "x.to(device=L.device('cpu'), dtype=L.float64)",
                                  "x.to(L.ones(1, dtype=L.float64))", "x.to(copy=True)",
                                  "x.to('cpu', copy=True)", "x.to(L.int64)", "x.to(L.int32) * 1."])
def test_to_a_new_dtype_copies_on_the_tape_as_torch(call):
    """Values, dtype, printed form (grad_fn=<ToCopyBackward0>), and the gradient back
    through the copy in the tensor's own dtype, float64 to 1e-12."""
    outs, grads = [], []
    for L in BOTH:
        x = L.tensor([0.5, -1.25, 2.0], requires_grad=True)
        y = eval(call, {"L": L, "x": x})
        assert y is not x
        outs.append(y)
        if y.requires_grad:
            (y * L.tensor([1., 2., 3.], dtype=y.dtype)).sum().backward()
            grads.append(x.grad)
    assert repr(outs[0]) == repr(outs[1])
    np.testing.assert_allclose(sn.to_numpy(outs[0].detach()), outs[1].detach().numpy(),
                               rtol=1e-12)
    if grads:
        assert repr(grads[0]) == repr(grads[1]) and grads[0].dtype == np.float32


def test_to_moves_and_casts_together_and_a_write_into_the_copy_stays_there():
    x = sn.arange(3.)
    y = x.to("cpu", copy=True)
    y[0] = 7.
    assert x.tolist() == [0., 1., 2.]


@pytest.mark.parametrize("call, kind, text", [
    ("x.to('cpu', 'cpu')", TypeError, "Tensor.to: expected a device ('cpu', 'cuda', ...), a "
                                      "dtype (torch.float32, ...) or a tensor, got 'cpu'"),
    ("x.to(L.float32, 'cpu')", TypeError, "Tensor.to: expected (device, dtype), (dtype) "
                                          "or (tensor), got the extra arguments ['cpu']"),
    ("x.to('cpu', L.float32, L.float64)", TypeError, "Tensor.to: expected (device, dtype), "
                                                     "(dtype) or (tensor), got the extra"),
    ("x.to('tpu')", RuntimeError, "Expected one of cpu, cuda device type at start of device "
                                  "string: tpu"),
    ("x.cuda('cpu')", RuntimeError, "Invalid device, must be cuda device"),
    ("x.to(foo=1)", TypeError, "got an unexpected keyword argument 'foo'"),
])
def test_bad_to_arguments_are_refused_as_torch_refuses_them(call, kind, text):
    x = sn.ones(2)
    with pytest.raises(kind) as info:
        eval(call, {"L": sn, "x": x})
    assert text in str(info.value)
    assert error_of(lambda: eval(call, {"L": torch, "x": torch.ones(2)}))[0] is kind
    assert x.dtype == np.float32


def test_to_a_number_is_refused():
    """(torch takes ``x.to(1.5)`` as a float64 cast, an accident of its argument parser.)"""
    with pytest.raises(TypeError, match="Tensor.to: expected a device .* got 1.5"):
        sn.ones(2).to(1.5)


CREATE = ["L.tensor([1., 2.], device=D)", "L.tensor([1., 2.], device=D, requires_grad=True)",
          "L.tensor([[1, 2]], dtype=L.float64, device=D, requires_grad=True)",
          "L.as_tensor([1., 2.], device=D)", "L.zeros(2, 3, device=D, requires_grad=True)",
          "L.ones((2,), device=D, requires_grad=True)", "L.full((2, 2), 1.5, device=D)",
          "L.full((2,), 3., requires_grad=True, device=D)",
          "L.zeros_like(L.ones(2, 3), device=D, requires_grad=True)",
          "L.ones_like(L.zeros(2), requires_grad=True)", "L.rand(2, 3, device=D)",
          "L.rand(2, requires_grad=True, device=D)", "L.randn(3, device=D, requires_grad=True)",
          "L.normal(0, 1, (2,), device=D, requires_grad=True)",
          "L.randint(0, 5, (3,), device=D)", "L.arange(4, device=D)",
          "L.arange(-1.0, 1.0, 0.25, requires_grad=True)",
          "L.arange(0., 1., .25, device=D, requires_grad=True)",
          "L.linspace(0, 1, 5, device=D, requires_grad=True)",
          "L.eye(2, 3, device=D, requires_grad=True)", "L.eye(2, dtype=L.float64, device=D)"]


@pytest.mark.parametrize("call", CREATE)
@pytest.mark.parametrize("where", ["'cpu'", "L.device('cpu')"])
def test_creation_takes_device_and_requires_grad_as_torch(call, where):
    ours, theirs = (eval(call.replace("D", where), {"L": L}) for L in BOTH)
    assert (ours.shape, str(ours.dtype), ours.requires_grad, ours.is_leaf, repr(ours.device)) \
        == (theirs.shape, str(theirs.dtype), theirs.requires_grad,
            theirs.is_leaf, repr(theirs.device))
    if not call.startswith(("L.rand", "L.normal")):
        np.testing.assert_allclose(sn.to_numpy(ours.detach()), theirs.detach().numpy(),
                                   rtol=1e-6)
        assert repr(ours) == repr(theirs)


def test_the_book_s_arange_with_requires_grad_backpropagates_as_torch():
    """d2l 5.1's ``x = torch.arange(-8.0, 8.0, 0.1, requires_grad=True)``, then
    ``y = torch.sigmoid(x); y.backward(torch.ones_like(x), retain_graph=True)``. (PyTorch
    makes float ranges with its SIMD kernel: a value may differ in its last float32 bit,
    so the -2.8e-14 that stands for 0 here is 4.4e-16 there.)"""
    xs, grads = [], []
    for L in BOTH:
        x = L.arange(-8.0, 8.0, 0.1, requires_grad=True)
        assert x.shape == (160,) and x.requires_grad and x.is_leaf
        y = L.sigmoid(x)
        y.backward(L.ones_like(x), retain_graph=True)
        xs.append(x.detach())
        grads.append(x.grad)
    np.testing.assert_allclose(sn.to_numpy(xs[0]), xs[1].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(sn.to_numpy(grads[0]), grads[1].numpy(), rtol=1e-6, atol=1e-7)
    assert grads[0].dtype == np.float32


@pytest.mark.parametrize("call", ["L.tensor([1, 2], requires_grad=True)",
                                  "L.arange(3, requires_grad=True)",
                                  "L.randint(0, 3, (2,), requires_grad=True)",
                                  "L.zeros(2, dtype=L.int64, requires_grad=True)",
                                  "L.full((2,), 7, requires_grad=True)",
                                  "L.ones_like(L.arange(2), requires_grad=True)"])
def test_an_integer_tensor_that_requires_grad_is_refused_as_torch(call):
    draws = sn.backend.rng().bit_generator.state
    kind, text = error_of(lambda: eval(call, {"L": sn}))
    theirs = error_of(lambda: eval(call, {"L": torch}))
    assert kind is theirs[0] is RuntimeError
    assert text.endswith(theirs[1] + " (got dtype int64)") and text.split(":")[0] in call
    assert sn.backend.rng().bit_generator.state == draws  # nothing drawn


@pytest.mark.parametrize("call", ["L.zeros(2, device='gpu:0')", "L.rand(2, device=1.5)",
                                  "L.randint(0, 3, (2,), device='tpu')"])
def test_a_bad_device_keyword_is_refused_before_anything_is_drawn(call):
    draws = sn.backend.rng().bit_generator.state
    with pytest.raises((RuntimeError, TypeError)):
        eval(call, {"L": sn})
    with pytest.raises((RuntimeError, TypeError)):
        eval(call, {"L": torch})
    assert sn.backend.rng().bit_generator.state == draws


def test_a_module_moves_to_the_cpu_and_casts_as_torch():
    for L in BOTH:
        net = L.nn.Sequential(L.nn.Linear(2, 3), L.nn.ReLU(), L.nn.Linear(3, 1))
        assert net.to(device=L.device("cpu")) is net and net.cpu() is net
        assert net.to("cpu", L.float64) is net and net.to(L.ones(1)) is net
        assert net.to(device="cpu", dtype=L.float64)[0].weight.dtype == L.float64
        assert repr(net[2].bias.device) == "device(type='cpu')"
        with pytest.raises(TypeError, match="nn.Module.to only accepts floating point or "
                                            "complex dtypes, but got desired dtype=torch.int64"):
            net.to(L.int64)
        assert str(net[0].weight.dtype).endswith("float64")  # the refusal changed nothing


# On one GPU (the CuPy double), the CPU still the active device ---------------------------

def on_gpu(t):
    return isinstance(t.array, fakecupy.ndarray)


def gpu_repr(t, grad_fn=None):
    """What PyTorch prints for the values of tensor ``t`` (either library's) on cuda:0, by
    torch's own formatter: the numbers, then device=, dtype=, and grad_fn= or
    requires_grad=, wrapped at its line width."""
    values = (torch.tensor(sn.to_numpy(t.detach())) if isinstance(t, sn.Tensor)
              else t.detach().clone())
    suffixes = ["device='cuda:0'"]
    if values.dtype not in (torch.float32, torch.int64, torch.bool):
        suffixes.append(f"dtype={values.dtype}")
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{grad_fn}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    text = torch._tensor_str._tensor_str(values, len("tensor("))
    return torch._tensor_str._add_suffixes("tensor(" + text, suffixes, len("tensor("), False)


@pytest.mark.fakegpu
def test_one_gpu_is_counted(double):
    assert sn.cuda.device_count() == 1 and sn.cuda.is_available() is True
    assert sn.get_device() == "cpu"


@pytest.mark.fakegpu
@pytest.mark.parametrize("call", CREATE)
def test_creation_on_the_gpu_gives_gpu_arrays_with_the_cpus_values(call, double):
    for where in ("'cuda'", "L.device('cuda', 0)", "'cuda:0'"):
        sn.manual_seed(3)
        ours = eval(call.replace("D", where), {"L": sn})
        sn.manual_seed(3)
        cpu = eval(call.replace("D", "'cpu'"), {"L": sn})
        if "device=D" in call:
            assert on_gpu(ours) and repr(ours.device) == "device(type='cuda', index=0)"
            assert repr(ours) == gpu_repr(cpu)
        np.testing.assert_array_equal(sn.to_numpy(ours.detach()), sn.to_numpy(cpu.detach()))
        assert (ours.dtype, ours.requires_grad, ours.is_leaf) == \
            (cpu.dtype, cpu.requires_grad, True)


@pytest.mark.fakegpu
def test_like_functions_follow_their_tensors_device(double):
    x = sn.ones(2, 3, device="cuda")
    assert on_gpu(sn.zeros_like(x)) and on_gpu(sn.ones_like(x, dtype=sn.float64))
    assert not on_gpu(sn.zeros_like(x, device="cpu"))
    assert on_gpu(sn.tensor(x)) and on_gpu(sn.as_tensor(x)) and sn.as_tensor(x) is x
    assert not on_gpu(sn.tensor(x, device="cpu"))


@pytest.mark.fakegpu
def test_moves_both_ways_keep_the_values_and_carry_the_gradient_back(double):
    """x on the CPU -> cuda -> ops -> back to the CPU: each move is a ToCopyBackward0 node
    whose backward sends the gradient to the tensor's own device and dtype; the gradients
    are torch's for the same ops on the CPU, in float64 to 1e-12."""
    x0 = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -3.0]])
    x = sn.tensor(x0, requires_grad=True)
    y = x.cuda()
    assert on_gpu(y) and repr(y) == gpu_repr(x, "ToCopyBackward0")
    z = (y.to(sn.float32) * y.to("cuda", sn.float32)).exp().cpu()
    w = sn.tensor(x0.T, requires_grad=True, device=sn.device("cuda"))
    out = (z.double() @ w.cpu()).sum() + (w.cpu().cuda(0) ** 2).sum().cpu()
    assert not on_gpu(z) and not on_gpu(out)
    out.backward()
    xt, wt = (torch.tensor(a, requires_grad=True) for a in (x0, x0.T))
    zt = (xt.float() * xt.float()).exp()
    ((zt.double() @ wt).sum() + (wt ** 2).sum()).backward()
    assert not on_gpu(x.grad) and on_gpu(w.grad)
    np.testing.assert_allclose(sn.to_numpy(x.grad), xt.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(sn.to_numpy(w.grad), wt.grad.numpy(), rtol=1e-6)
    assert x.grad.dtype == w.grad.dtype == np.float64


@pytest.mark.fakegpu
def test_a_move_in_float64_is_exact_and_its_gradient_too(double):
    x = sn.tensor([[1.5, -2.0], [0.1, 3.0]], dtype=sn.float64, requires_grad=True)
    y = x.to("cuda").cpu().to(sn.device("cuda")).to("cpu")
    np.testing.assert_array_equal(sn.to_numpy(y.detach()), sn.to_numpy(x.detach()))
    g = np.array([[1., 2.], [3., 4.]])
    y.backward(sn.tensor(g, dtype=sn.float64))
    np.testing.assert_array_equal(sn.to_numpy(x.grad), g)


@pytest.mark.fakegpu
def test_a_tensor_already_there_is_given_back(double):
    """``Z.cuda(1) is Z`` in the book (two GPUs); with scratchnet's one GPU, ``Z.cuda(0)``."""
    Z = sn.ones(2, device="cuda")
    assert Z.cuda() is Z and Z.cuda(0) is Z and Z.cuda("cuda:0") is Z
    assert Z.to("cuda") is Z and Z.to(sn.device("cuda", 0)) is Z and Z.to(Z) is Z
    assert Z.cpu() is not Z and Z.cpu().cuda() is not Z


@pytest.mark.fakegpu
@pytest.mark.parametrize("call, who", [
    ("X.cuda(1)", "Tensor.cuda"), ("X.to('cuda:1')", "Tensor.to"),
    ("X.cuda(L.device('cuda', 1))", "Tensor.cuda"), ("L.ones(2, device='cuda:1')", "ones"),
    ("L.rand(2, device=L.device(1))", "rand"), ("net.to('cuda:1')", "Linear.to"),
    ("net.cuda(1)", "Linear.cuda")])
def test_a_second_gpu_is_an_invalid_device_ordinal_and_changes_nothing(call, who, double):
    """What PyTorch raises on a one-GPU machine for d2l 6.7's ``X.cuda(1)``: its
    AcceleratorError, whose first two lines are these."""
    X, net = sn.ones(2, 3), nn.Linear(3, 1)
    draws = sn.backend.rng().bit_generator.state
    with pytest.raises(sn.AcceleratorError) as info:
        eval(call, {"L": sn, "X": X, "net": net})
    assert str(info.value).splitlines() == [
        "CUDA error: invalid device ordinal",
        f"GPU device may be out of range, do you have enough GPUs? ({who}: scratchnet has "
        f"one GPU, cuda:0; asked for cuda:1)"]
    assert isinstance(info.value, RuntimeError)  # as torch.AcceleratorError is
    assert not on_gpu(X) and not on_gpu(net.weight)
    assert sn.backend.rng().bit_generator.state == draws


@pytest.mark.fakegpu
def test_ops_mixing_the_cpu_and_the_gpu_raise_torchs_error(double):
    x = sn.ones(2, 3, requires_grad=True)
    y = sn.ones(2, 3, device="cuda", requires_grad=True)
    text = "Expected all tensors to be on the same device, but found at least two devices, " \
           "cuda:0 and cpu!"
    for f in (lambda: x + y, lambda: y + x, lambda: y * x, lambda: y @ x.t(),
              lambda: sn.cat([y, x]), lambda: y - x.detach().numpy()):
        with pytest.raises(RuntimeError) as info:
            f()
        assert str(info.value).startswith(text)
    assert x.grad is None and y.grad is None


@pytest.mark.fakegpu
def test_results_stay_on_their_inputs_device_whichever_device_is_active(double):
    """An op's output lives where its inputs do; the active device only places new
    tensors made from host values (numbers, lists, NumPy arrays)."""
    x = sn.tensor([[1., 5.], [3., 2.]])
    with sn.use_device("gpu"):
        for y in (x + 1, x * x, x > 2, x.max(1).indices, x.argmax(), x[0, 1], x.sum(),
                  x.to(sn.int64), sn.tensor(x), x.detach(), x.data):
            assert not on_gpu(y), y
        assert on_gpu(sn.Tensor(np.ones(2))) and on_gpu(sn.ones(2))
        assert repr(x) == "tensor([[1., 5.],\n        [3., 2.]], device='cpu')"
    g = sn.ones(2, device="cuda")
    for y in (g + 1, g * g, g > 0, g.argmax(), g[0], sn.Tensor(g), sn.Tensor(g.array)):
        assert on_gpu(y)


@pytest.mark.fakegpu
def test_a_module_moves_to_the_gpu_and_back_with_its_values(double):
    sn.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    before = [sn.to_numpy(p.data).copy() for p in net.parameters()]
    assert net.to(device=sn.device("cuda")) is net
    assert all(on_gpu(p) for p in net.parameters())
    assert repr(net[0].weight.data.device) == "device(type='cuda', index=0)"
    X = sn.ones(2, 3, device="cuda")
    out = net(X)
    assert on_gpu(out)
    out.sum().backward()
    assert all(on_gpu(p.grad) for p in net.parameters())
    assert net.cpu() is net and not any(on_gpu(p) for p in net.parameters())
    assert net.cuda() is net and net.cuda(0) is net and all(on_gpu(p) for p in net.parameters())
    net.to("cpu")
    for p, b in zip(net.parameters(), before):
        np.testing.assert_array_equal(sn.to_numpy(p.data), b)
    with pytest.raises(RuntimeError, match="Invalid device, must be cuda device"):
        net.cuda("cpu")


@pytest.mark.fakegpu
def test_a_lazy_layer_materialises_on_the_device_it_was_moved_to(double):
    net = nn.Sequential(nn.LazyLinear(1))
    assert net.to(device=sn.device("cuda")) is net
    assert repr(net[0].weight.device) == "device(type='cuda', index=0)"
    with pytest.raises(ValueError, match="input is on cpu but the layer was moved to gpu"):
        net(sn.ones(2, 3))
    assert net[0].weight.array is None  # still lazy: the refused input fixed nothing
    out = net(sn.ones(2, 3, device="cuda"))
    assert on_gpu(out) and on_gpu(net[0].weight) and net[0].weight.shape == (1, 3)


@pytest.mark.fakegpu
def test_section_6_7_prints_what_pytorch_prints_on_one_gpu(double):
    """d2l 6.7's cells, their PyTorch outputs on a one-GPU machine built from torch's own
    objects: the devices, ``X`` on cuda:0, ``Y`` on the CPU (try_gpu(1) falls back), the
    net on the GPU and its weight's device."""
    for L in BOTH:
        def cpu(L=L):
            return L.device("cpu")

        def gpu(i=0, L=L):
            return L.device(f"cuda:{i}")

        def try_gpu(i=0, count=sn.cuda.device_count()):
            return gpu(i) if count >= i + 1 else cpu()

        found = (cpu(), gpu(), gpu(1)), (try_gpu(), try_gpu(10), [gpu(0)])
        if L is sn:
            ours = found
            X = sn.ones(2, 3, device=try_gpu())
            Y = sn.rand(2, 3, device=try_gpu(1))
            net = nn.Sequential(nn.LazyLinear(1))
            net = net.to(device=try_gpu())
            out = net(X)
        else:
            assert repr(ours) == repr(found)
    assert repr(X) == gpu_repr(torch.ones(2, 3)) and repr(Y.device) == "device(type='cpu')"
    assert ", device='cuda:0', grad_fn=<" in repr(out)
    assert repr(net[0].weight.data.device) == repr(torch.device("cuda", 0))


# On a real GPU ----------------------------------------------------------------------------

@GPU
@needs_gpu
def test_the_real_gpu_takes_tensors_and_gives_their_gradients_back():
    import cupy
    assert sn.cuda.device_count() == 1 and sn.cuda.is_available()
    x = sn.tensor([1., 2., 3.], requires_grad=True)
    y = x.cuda()
    assert isinstance(y.array, cupy.ndarray) and y.device == sn.device("cuda", 0)
    assert y.cuda(0) is y and sn.ones(2, device="cuda").device == sn.device("cuda:0")
    (y * y).sum().cpu().backward()
    np.testing.assert_array_equal(sn.to_numpy(x.grad), [2., 4., 6.])
    with pytest.raises(sn.AcceleratorError, match="invalid device ordinal"):
        x.cuda(1)
    net = nn.Sequential(nn.LazyLinear(1)).to(device=sn.device("cuda"))
    assert isinstance(net(sn.ones(2, 3, device="cuda")).array, cupy.ndarray)
