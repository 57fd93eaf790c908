"""printing: a Tensor's repr and format() against torch's own, character for character."""
import re

import numpy as np
import pytest
import torch

import scratchnet as sn
import scratchnet.autograd as ag
from conftest import DEVICES, on_device
from scratchnet.autograd.printing import tensor_format, tensor_repr

rng = np.random.default_rng(0)
f32 = np.float32
CASES = {
    "integer-valued": np.array([[19., 25.], [37., 43.]], f32),
    "negative-zero": np.array([-0., 1., 5.], f32),
    "mixed-sign-fractions": np.array([1.001, -0.9739, 0.5], f32),
    "wide-range-sci": np.array([1e-2, 3., 2e3], f32),
    "large-sci": np.array([1.5e9, -2.], f32),
    "tiny-sci": np.array([1e-5, -3e-6], f32),
    "integer-valued-sci": np.array([1., 2e9], f32),
    "nan-inf-integers": np.array([1., np.nan, np.inf, -np.inf], f32),
    "nan-inf-fractions": np.array([0.5, np.nan, -np.inf], f32),
    "all-nonfinite": np.array([np.nan, np.inf], f32),
    "zeros-wrap-by-count": np.zeros(30, f32),  # torch counts width-1 items, not characters
    "0-d": np.array(3.5, f32),
    "0-d-integer-valued": np.array(-2., f32),
    "0-d-nan": np.array(np.nan, f32),
    "1-D-wraps": rng.standard_normal(40).astype(f32),
    "2-D": rng.standard_normal((3, 4)).astype(f32),
    "3-D": rng.standard_normal((2, 3, 4)).astype(f32),
    "4-D": np.arange(16.).reshape(1, 1, 4, 4).astype(f32),
    "bool": np.array([True, False]),
    "int64": np.array([1, 2, -300]),
    "int32": np.arange(6, dtype=np.int32).reshape(2, 3),
    "int8-0-d": np.array(-7, np.int8),
    "uint8": np.array([0, 255], np.uint8),
    "float64": np.array([0.1, 2.]),
    "float16": np.array([0.1, 2.], np.float16),
    "float64-suffix-wraps": np.array([2.0024e9, 1.8852e8, -6.3319e8, -3.7756e8]),
    "1000-elements-in-full": np.arange(1000.).astype(f32),
    "summarised-1-D": np.arange(2000),
    "summarised-2-D": rng.standard_normal((100, 100)).astype(f32),
    "summarised-rows-wrap": (rng.standard_normal((40, 40)) * 1e-3).astype(f32),
    "summarised-3-D": rng.integers(0, 10**6, (10, 10, 11)),
    "summarised-4-D": rng.standard_normal((7, 7, 7, 7)),
    "empty": np.zeros(0, f32),
    "empty-int64": np.zeros(0, np.int64),
    "empty-2-D-int32": np.zeros((2, 0), np.int32),
}
FLOAT_CASES = [name for name, a in CASES.items() if a.dtype.kind == "f"]


@pytest.mark.parametrize("name", CASES)
def test_repr_matches_torch(name):
    a = CASES[name]
    assert tensor_repr(ag.Tensor(a)) == repr(torch.tensor(a))


@pytest.mark.parametrize("name", FLOAT_CASES)
def test_requires_grad_suffix_matches_torch(name):
    a = CASES[name]
    x = ag.Tensor(a, requires_grad=True)
    assert tensor_repr(x) == repr(torch.tensor(a, requires_grad=True))


@pytest.mark.parametrize("name", ["integer-valued", "0-d", "float64-suffix-wraps",
                                  "summarised-2-D", "empty"])
def test_grad_fn_suffix_matches_torch(name):
    a = CASES[name]
    y = ag.Tensor(a, requires_grad=True) * 2
    assert y.grad_fn.name == "MulBackward"
    assert tensor_repr(y) == repr(torch.tensor(a, requires_grad=True) * 2)


def test_reads_like_the_book():
    x = ag.Tensor(CASES["integer-valued"])
    assert tensor_repr(x) == "tensor([[19., 25.],\n        [37., 43.]])"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["mixed-sign-fractions", "summarised-2-D"])
def test_repr_on_each_device(device, name):
    with on_device(device):
        x = ag.Tensor(CASES[name])
        assert tensor_repr(x) == repr(torch.tensor(CASES[name]))


def test_gpu_tensor_seen_from_the_cpu_names_its_device(fakegpu):
    x = ag.Tensor(np.array([1., 2.], f32))
    with sn.use_device("cpu"):
        assert tensor_repr(x) == "tensor([1., 2.], device='cuda:0')"


@pytest.mark.parametrize("a, spec", [
    (np.array(3.14159, f32), ".3f"),
    (np.array(1e-5, f32), ".2e"),
    (np.array(2.5), ""),
    (np.array(7), "04d"),
    (np.array(True), ""),
    (np.array([1.5, 2.], f32), ""),
    (np.ones((2, 2), np.int32), ""),
])
def test_format_matches_torch(a, spec):
    assert tensor_format(ag.Tensor(a), spec) == format(torch.tensor(a), spec)


@pytest.mark.parametrize("shape", [(1,), (2, 3)])
def test_format_spec_needs_a_0d_tensor(shape):
    a = np.ones(shape, f32)
    with pytest.raises(TypeError):
        format(torch.tensor(a), ".3f")
    with pytest.raises(TypeError, match="unsupported format string"):
        tensor_format(ag.Tensor(a), ".3f")


LAYERS = [  # (what builds the layer on either library, the input's shape)
    (lambda nn: nn.Linear(4, 5), (2, 4)), (lambda nn: nn.Linear(4, 5, bias=False), (2, 4)),
    (lambda nn: nn.Linear(4, 5), (4,)), (lambda nn: nn.Linear(4, 5, bias=False), (4,)),
    (lambda nn: nn.Linear(4, 5), (2, 3, 4)),
    (lambda nn: nn.Linear(4, 5, bias=False), (2, 3, 4)),
    (lambda nn: nn.ReLU(), (2, 3)), (lambda nn: nn.Sigmoid(), (2, 3)),
    (lambda nn: nn.Tanh(), (2, 3)), (lambda nn: nn.Conv2d(3, 4, 3), (2, 3, 6, 6)),
    (lambda nn: nn.Conv1d(3, 4, 3), (2, 3, 6)),
    (lambda nn: nn.MaxPool2d(2), (2, 3, 6, 6)), (lambda nn: nn.AvgPool2d(2), (2, 3, 6, 6)),
    (lambda nn: nn.AdaptiveAvgPool2d((1, 1)), (2, 3, 6, 6)),
    (lambda nn: nn.AdaptiveAvgPool2d((2, 2)), (2, 3, 6, 6)),
    (lambda nn: nn.Flatten(), (2, 3, 4)), (lambda nn: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    (lambda nn: nn.BatchNorm1d(4), (3, 4)), (lambda nn: nn.Dropout(0.5), (2, 3)),
    (lambda nn: nn.MSELoss(), (2, 3)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_a_layers_node_prints_pytorchs_grad_fn(make, shape):
    """A layer with its own backward records one node on the tape; ``grad_fn=<...>``
    prints the name PyTorch's autograd gives the last node of the same layer."""
    ours_layer, theirs_layer = make(sn.nn), make(torch.nn)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    args = (x,) * 2 if isinstance(ours_layer, sn.nn.MSELoss) else (x,)
    ours = ours_layer(*(sn.tensor(a, requires_grad=True) for a in args))
    theirs = theirs_layer(*(torch.tensor(a, requires_grad=True) for a in args))
    assert re.search(r"grad_fn=<(\w+)>", repr(ours)).group(1) == type(theirs.grad_fn).__name__


def test_cross_entropy_prints_pytorchs_grad_fn():
    logits = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    ours = sn.nn.functional.cross_entropy(sn.tensor(logits, requires_grad=True),
                                          sn.tensor([0, 2]))
    theirs = torch.nn.functional.cross_entropy(torch.tensor(logits, requires_grad=True),
                                               torch.tensor([0, 2]))
    assert repr(ours).endswith("grad_fn=<NllLossBackward0>)")
    assert type(theirs.grad_fn).__name__ == "NllLossBackward0"
