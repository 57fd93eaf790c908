"""backend: the device switch (as a call and as a context manager), the errors when the
GPU cannot be used, array helpers, the default dtype, seeding and no_grad."""
import re
import sys
import types

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import backend, nn

HINT = 'pip install -e ".[gpu]"'


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend the GPU works (numpy standing in for cupy) to test the device bookkeeping."""
    monkeypatch.setattr(backend, "_import_cupy", lambda: np)


@pytest.fixture
def no_cupy(monkeypatch):
    """A machine without CuPy: importing it fails, and nothing is cached."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend, "_cupy", None)


def test_use_device_cpu_as_call_and_context_manager():
    assert sn.get_device() == "cpu"
    sn.use_device("cpu")
    assert sn.get_device() == "cpu"
    with sn.use_device("CPU") as ctx:
        assert isinstance(ctx, sn.use_device) and sn.get_device() == "cpu"
    assert sn.get_device() == "cpu"


def test_context_manager_restores_the_previous_device(fake_gpu):
    with sn.use_device("gpu"):
        assert sn.get_device() == "gpu"
        with sn.use_device("cpu"):
            assert sn.get_device() == "cpu"
        assert sn.get_device() == "gpu"
    assert sn.get_device() == "cpu"
    with pytest.raises(KeyError):
        with sn.use_device("cuda:0"):
            assert sn.get_device() == "gpu"
            raise KeyError("an error inside the block")
    assert sn.get_device() == "cpu"
    try:
        sn.use_device("gpu")  # a plain call stays in force
        assert sn.get_device() == "gpu"
    finally:
        sn.use_device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda", "cupy", "cuda:0"])
def test_gpu_without_cupy_is_a_device_error_with_the_install_hint(no_cupy, name):
    assert not sn.gpu_available()
    with pytest.raises(sn.DeviceError) as info:
        sn.use_device(name)
    message = str(info.value)
    assert "CuPy is not installed" in message and HINT in message
    assert sn.get_device() == "cpu"
    assert isinstance(info.value, RuntimeError)


@pytest.mark.skipif(sn.gpu_available(), reason="this machine has a usable GPU")
def test_gpu_on_this_machine_says_what_is_missing():
    with pytest.raises(sn.DeviceError, match="GPU requested but") as info:
        sn.use_device("gpu")
    message = str(info.value)
    assert HINT in message
    assert "CuPy is not installed" in message or "CUDA device" in message
    with pytest.raises(sn.DeviceError):
        sn.to_device(np.ones(2), "gpu")
    assert sn.get_device() == "cpu"


def fake_cupy(get_count):
    return types.SimpleNamespace(cuda=types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_count)))


def test_cupy_without_a_cuda_device(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)

    def broken():
        raise RuntimeError("cudaErrorInsufficientDriver")

    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(broken))
    with pytest.raises(sn.DeviceError, match="no CUDA device is usable: "
                                             "cudaErrorInsufficientDriver") as info:
        sn.use_device("gpu")
    assert HINT in str(info.value)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(lambda: 0))
    with pytest.raises(sn.DeviceError, match="CuPy sees no CUDA device") as info:
        sn.use_device("gpu")
    assert HINT in str(info.value)
    assert not sn.gpu_available() and sn.get_device() == "cpu"


@pytest.mark.parametrize("name", ["tpu", "", "gpu0", "mps", None])
def test_bad_device_name_is_a_value_error(name):
    with pytest.raises(ValueError, match=re.escape(f"use_device: expected 'cpu' or 'gpu', got "
                                                   f"{name!r}")):
        sn.use_device(name)
    assert sn.get_device() == "cpu"


def test_array_helpers_on_numpy():
    a = np.arange(6.0).reshape(2, 3)
    assert sn.get_array_module(a) is np
    assert sn.get_array_module(a, [1, 2], 3.0) is np
    assert sn.get_array_module() is np
    assert sn.to_numpy(a) is a
    np.testing.assert_array_equal(sn.to_numpy([[1, 2]]), [[1, 2]])
    assert isinstance(sn.to_numpy([1.0]), np.ndarray)
    assert sn.to_device(a, "cpu") is a and sn.to_device(a) is a
    np.testing.assert_array_equal(sn.to_device([1, 2], "numpy"), [1, 2])
    assert backend.device_of(a) == "cpu" and not backend.is_cupy_array(a)
    assert backend.device_module("cpu") is np and backend.device_module() is np


@pytest.mark.parametrize("dtype", [np.float64, "float64", np.dtype("float64")])
def test_set_default_dtype_float64_makes_new_layers_float64(dtype):
    sn.set_default_dtype(dtype)
    assert sn.get_default_dtype() == np.float64
    lin, bn, conv = nn.Linear(3, 2), nn.BatchNorm2d(2), nn.Conv2d(1, 2, 3)
    for m in (lin, bn, conv):
        for k, v in m.state_dict().items():
            assert v.dtype == (np.int64 if k == "num_batches_tracked" else np.float64), k
    y = lin(np.ones((1, 3)))
    assert y.dtype == np.float64
    sn.set_default_dtype(np.float32)
    assert nn.Linear(3, 2).weight.dtype == np.float32


@pytest.mark.parametrize("dtype", [int, np.int32, "int64", np.float16, bool, np.complex128])
def test_set_default_dtype_rejects_other_types(dtype):
    with pytest.raises(ValueError, match="set_default_dtype: expected float32 or float64"):
        sn.set_default_dtype(dtype)
    assert sn.get_default_dtype() == np.float32


def test_manual_seed_reproducibility():
    def draws():
        return (nn.Linear(4, 3).weight.array.copy(), backend.rng().standard_normal(3),
                backend.random_uniform(np, (5,), np.float32), np.random.rand(2))

    sn.manual_seed(7)
    a = draws()
    sn.manual_seed(7)
    b = draws()
    sn.manual_seed(8)
    c = draws()
    for u, v, w in zip(a, b, c):
        np.testing.assert_array_equal(u, v)
        assert not np.array_equal(u, w)
    assert a[2].dtype == np.float32 and ((0 <= a[2]) & (a[2] < 1)).all()


def test_no_grad_is_restored_after_errors_and_nests():
    assert backend.is_grad_enabled()
    with sn.no_grad():
        with sn.no_grad():
            assert not backend.is_grad_enabled()
        assert not backend.is_grad_enabled()
    assert backend.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with sn.no_grad():
            1 / 0
    assert backend.is_grad_enabled()
