"""Shared fixtures: the device parameter (GPU cases skip with a reason) and data paths."""
import contextlib
import os
import pathlib

import numpy as np
import pytest
import torch

import fakecupy
import scratchnet as sn

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
if "SCRATCHNET_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["SCRATCHNET_DATA"] = str(SHARED_DATA)

# The test shapes are tiny: one torch thread is faster than two fighting over 2 cores.
torch.set_num_threads(1)

GPU = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not sn.gpu_available(),
                               reason="no GPU: CuPy is not installed or sees no CUDA device")
# "fakegpu" runs the GPU code path on tests/fakecupy.py, a strict CuPy double, in every
# run; "gpu" runs it on a real card when there is one.
DEVICES = ["cpu", pytest.param("fakegpu", marks=pytest.mark.fakegpu),
           pytest.param("gpu", marks=[GPU, needs_gpu])]


@contextlib.contextmanager
def on_device(name):
    """Make ``name`` ("cpu", "fakegpu" or "gpu") the active device; yields the name
    scratchnet knows it by ("gpu" for the double)."""
    if name == "fakegpu":
        with fakecupy.installed(), sn.use_device("gpu"):
            yield "gpu"
    else:
        with sn.use_device(name):
            yield name


@pytest.fixture(params=DEVICES)
def device(request):
    with on_device(request.param) as name:
        yield name


@pytest.fixture
def fakegpu():
    """The CuPy double installed and the GPU active, for tests that count syncs and
    operations; yields the fakecupy module."""
    with on_device("fakegpu"):
        yield fakecupy


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same seed and the default dtype."""
    sn.manual_seed(0)
    sn.set_default_dtype(np.float32)
    yield
    sn.set_default_dtype(np.float32)


def pytest_collection_modifyitems(items):
    """A test that asks for the fakegpu fixture is a fakegpu test (``-m fakegpu``)."""
    for item in items:
        if "fakegpu" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fakegpu)
