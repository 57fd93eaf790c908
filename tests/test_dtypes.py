"""scratchnet's dtypes (scratchnet/dtypes.py) against torch's: how they print, what they
say about themselves, and that NumPy and the CuPy double take them as their own dtypes."""
import copy
import pickle

import numpy as np
import pytest
import torch

import scratchnet as sn
from scratchnet import dtypes, nn

NAMES = ["float16", "float32", "float64", "complex64", "complex128", "int8", "int16", "int32",
         "int64", "uint8", "uint16", "uint32", "uint64", "bool"]
ALIASES = {"half": "float16", "float": "float32", "double": "float64", "cfloat": "complex64",
           "cdouble": "complex128", "short": "int16", "int": "int32", "long": "int64"}


@pytest.mark.parametrize("name", NAMES + list(ALIASES))
def test_a_dtype_prints_and_describes_itself_as_torchs(name):
    ours, theirs = getattr(sn, name), getattr(torch, name)
    assert (str(ours), repr(ours), f"{ours}", f"{[ours]}", f"{ours!s:>16}|") == (
        str(theirs), repr(theirs), f"{theirs}", f"{[theirs]}", f"{theirs!s:>16}|")
    for d in (ours, theirs):
        with pytest.raises(TypeError, match="unsupported format string"):
            format(d, ">16")
    assert (ours.is_floating_point, ours.is_complex, ours.is_signed, ours.itemsize) == (
        theirs.is_floating_point, theirs.is_complex, theirs.is_signed, theirs.itemsize)
    assert isinstance(ours, sn.dtype) and ours is getattr(dtypes, ALIASES.get(name, name))


@pytest.mark.parametrize("name", NAMES)
def test_a_tensors_dtype_prints_as_torchs(name):
    a = np.zeros((2, 3), dtype=name)
    ours, theirs = sn.from_numpy(a), torch.from_numpy(a)
    assert ours.dtype is getattr(sn, name)  # the one object per dtype, not a new one
    assert (str(ours.dtype), repr(ours.dtype)) == (str(theirs.dtype), repr(theirs.dtype))
    assert str(ours.dtype) == f"torch.{name}"


def test_the_books_print_of_shapes_and_dtypes_reads_as_pytorchs(capsys):
    """d2l 4.2's ``print(X.shape, X.dtype, y.shape, y.dtype)`` for a batch."""
    for L in (sn, torch):
        X, y = L.zeros((4, 1, 3, 3)), L.tensor([1, 2, 3, 4])
        print(X.shape, X.dtype, y.shape, y.dtype)
    ours, theirs = capsys.readouterr().out.splitlines()
    assert ours == theirs == "torch.Size([4, 1, 3, 3]) torch.float32 torch.Size([4]) torch.int64"


def test_dtypes_equal_numpys_and_hash_as_numpys():
    f32 = sn.float32
    assert f32 == np.float32 and np.float32 == f32 and f32 == np.dtype("float32")
    assert np.dtype("float32") == f32 and f32 == "float32" and f32 == "f4"
    assert f32 != np.float64 and f32 != sn.float64 and f32 != "float64" and f32 != torch.float32
    assert f32 != None and f32 != 3 and not (f32 == object())  # noqa: E711
    assert sn.float == sn.float32 and sn.float is sn.float32 and sn.long is sn.int64
    assert sn.int64 == np.int64 and sn.bool == np.bool_ and sn.bool != sn.uint8
    assert hash(f32) == hash(np.dtype(np.float32))
    assert {np.dtype("float32"): "a"}[f32] == "a" and {f32: "b"}[np.dtype(np.float32)] == "b"
    assert f32 in {np.dtype("float32")} and np.dtype("int64") in {sn.int64}
    assert len({sn.float32, sn.float, np.dtype("float32")}) == 1
    assert f32 in (np.float64, np.float32) and sn.int32 not in (np.float32, np.int64)


def test_a_dtype_answers_numpys_questions_and_is_read_only():
    for name in NAMES:
        ours, d = getattr(sn, name), np.dtype(name)
        assert ours.dtype is d and ours.__numpy_dtype__ is d
        assert (ours.kind, ours.type, ours.name, ours.char, ours.itemsize, ours.str,
                ours.byteorder, ours.alignment) == (d.kind, d.type, d.name, d.char, d.itemsize,
                                                    d.str, d.byteorder, d.alignment)
    with pytest.raises(AttributeError, match="torch.float32 is read-only"):
        sn.float32.kind = "i"
    with pytest.raises(AttributeError, match="no_such"):
        sn.float32.no_such
    assert sn.float32.kind == "f"


def test_one_object_per_dtype_survives_pickle_and_copy():
    for name in NAMES:
        d = getattr(sn, name)
        assert pickle.loads(pickle.dumps(d)) is d
        assert copy.copy(d) is d and copy.deepcopy(d) is d
    assert pickle.loads(pickle.dumps({"dtype": sn.long}))["dtype"] is sn.int64


def test_of_and_as_dtype_find_the_one_object():
    assert dtypes.of(np.dtype("float64")) is sn.float64
    assert dtypes.of(np.dtype(np.longlong)) is sn.int64  # 'q' and 'l' are both int64 here
    big = np.dtype(">f4")  # a dtype PyTorch lacks stays NumPy's
    assert dtypes.of(big) is big and dtypes.of(np.dtype("U3")) == np.dtype("U3")
    for d in (np.float32, "float32", np.dtype("f4"), sn.float32, sn.float):
        assert dtypes.as_dtype(d) is sn.float32
    assert dtypes.as_dtype(float) is sn.float64  # Python's float is NumPy's float64
    with pytest.raises(TypeError):
        dtypes.as_dtype("no_such_dtype")


def test_numpy_takes_a_torch_dtype_as_its_own():
    f64 = sn.float64
    for a in (np.zeros(2, dtype=f64), np.ones(2, f64), np.full(2, 1, f64), np.empty(2, f64),
              np.arange(3, dtype=f64), np.linspace(0, 1, 3, dtype=f64), np.eye(2, dtype=f64),
              np.asarray([1, 2], dtype=f64), np.ones(2, np.int32).astype(f64),
              np.random.default_rng(0).random(2, dtype=f64),
              np.random.default_rng(0).standard_normal(2, dtype=f64),
              np.ones(2, np.float32).sum(dtype=f64, keepdims=True)):
        assert type(a) is np.ndarray and a.dtype == np.float64
        assert isinstance(a.dtype, np.dtype)  # the array holds NumPy's dtype
    assert np.dtype(sn.int64) is np.dtype(np.int64)
    assert np.issubdtype(sn.float32, np.floating) and not np.issubdtype(sn.int64, np.floating)
    assert np.result_type(sn.float32, sn.float64) == np.float64
    assert np.promote_types(sn.int32, sn.float32) == np.float64
    assert np.finfo(sn.float32).eps == np.finfo(np.float32).eps
    assert np.iinfo(sn.uint8).max == 255 and sn.float32.type(1.5) == np.float32(1.5)


@pytest.mark.fakegpu
def test_the_cupy_double_takes_a_torch_dtype_as_its_own(fakegpu):
    xp = fakegpu
    for a in (xp.zeros(2, dtype=sn.float64), xp.asarray([1, 2], dtype=sn.float64),
              xp.ones(2, dtype=sn.int32).astype(sn.float64), xp.empty((2,), sn.float64)):
        assert type(a) is xp.ndarray and a.dtype == np.float64
    t = sn.tensor([1., 2.], dtype=sn.float64, requires_grad=True)
    assert type(t.array) is xp.ndarray and t.dtype is sn.float64
    y = t.to(sn.float32)
    assert y.dtype is sn.float32 and type(y.array) is xp.ndarray
    y.sum().backward()
    assert t.grad.dtype is sn.float64
    assert t.type() == "torch.cuda.DoubleTensor" and y.type(sn.int64).dtype is sn.int64


def test_tensors_parameters_and_the_default_dtype_give_the_one_object():
    assert sn.zeros(2).dtype is sn.float32 and sn.tensor([1, 2]).dtype is sn.int64
    assert sn.tensor([True]).dtype is sn.bool and sn.tensor(2.5).dtype is sn.float32
    layer = nn.Linear(2, 3)
    assert layer.weight.dtype is sn.float32 and layer.weight.data.dtype is sn.float32
    assert sn.get_default_dtype() is sn.float32
    assert str(sn.get_default_dtype()) == str(torch.get_default_dtype()) == "torch.float32"
    for d in (sn.float64, np.float64, "float64"):
        sn.set_default_dtype(d)
        assert sn.get_default_dtype() is sn.float64
        assert sn.zeros(1).dtype is sn.float64 and sn.tensor([1.]).dtype is sn.float64
        assert nn.Linear(2, 3).weight.dtype is sn.float64
        sn.set_default_dtype(sn.float32)
    with pytest.raises(ValueError, match="set_default_dtype: expected float32 or float64, "
                                         "got torch.int64"):
        sn.set_default_dtype(sn.int64)
    assert sn.get_default_dtype() is sn.float32


@pytest.mark.parametrize("code", [
    "L.tensor([1, 2], dtype=L.int64)", "L.tensor([1, 2], dtype=L.float64)",
    "L.tensor([1., 2.]).to(L.float64)", "L.tensor([1., 2.], requires_grad=True).to(L.float64)",
    "L.tensor([1.5, 2.]).to(L.int32)", "L.tensor([1, 0]).to(L.bool)",
    "L.arange(4, dtype=L.float32)", "L.zeros(2, dtype=L.double)", "L.ones(2, dtype=L.half)",
    "L.tensor([1., 2.]).type(L.float64)", "L.tensor([3, 4]).to(dtype=L.long)",
    "L.full((2,), 7, dtype=L.int16)", "L.tensor([[1, 2]], dtype=L.uint8)",
    "L.tensor([1., 2.]).to('cpu', L.float64)", "L.tensor([1.]).to(L.tensor([2], dtype=L.int8))",
])
def test_making_and_casting_with_torch_dtypes_prints_as_pytorch(code):
    ours, theirs = (eval(code, {"L": L}) for L in (sn, torch))
    assert repr(ours) == repr(theirs)
    assert str(ours.dtype) == str(theirs.dtype) and ours.dtype is getattr(sn, ours.dtype.name)


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "int64", "int32", "int16",
                                  "int8", "uint8", "bool", "complex64", "complex128"])
def test_type_names_the_tensor_type_as_pytorch(name):
    ours, theirs = (L.zeros(2, dtype=getattr(L, name)) for L in (sn, torch))
    assert ours.type() == theirs.type()


def test_a_module_moves_to_a_torch_dtype():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).to(sn.float64)
    assert all(p.dtype is sn.float64 for p in net.parameters())
    y = net(sn.ones(4, 2, dtype=sn.float64))
    assert y.dtype is sn.float64
    with pytest.raises(TypeError, match="torch.int64"):
        net.to(sn.int64)
