"""Shared fixtures: the device parameter (GPU cases skip with a reason) and the real data
(tests that need it skip with the reason when it is absent; .ci/run makes that a failure)."""
import contextlib
import os
import pathlib

import numpy as np
import pytest
import torch

import fakecupy
import scratchnet as sn
from scratchnet.nn import functional
from scratchnet.data import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
if "SCRATCHNET_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["SCRATCHNET_DATA"] = str(SHARED_DATA)
# Set to 1 by .ci/run: a test that needs the real data fails without it instead of skipping.
REQUIRE_DATA = os.environ.get("SCRATCHNET_REQUIRE_DATA") == "1"


def require_data(name="fashion-mnist"):
    """The folder holding the real data set ``name`` ("fashion-mnist" or "mnist"), found as
    scratchnet finds it (``$SCRATCHNET_DATA/<name>/``, the repository's ``datasets/``,
    Debian's folder), never downloaded: a test run needs no network. When it is absent
    the calling test skips with the reason, or fails under SCRATCHNET_REQUIRE_DATA=1."""
    cls = {c.name: c for c in (datasets.FashionMNIST, datasets.MNIST)}[name]
    try:
        return datasets.find_or_download(cls, download=False)
    except FileNotFoundError as e:
        why = f"real data needed: {e}"
        if REQUIRE_DATA:
            pytest.fail(f"{why} (SCRATCHNET_REQUIRE_DATA=1: it must not be skipped)",
                        pytrace=False)
        pytest.skip(why)


@pytest.fixture
def real_data():
    """require_data("fashion-mnist"): the test skips (with the reason) without it."""
    return require_data("fashion-mnist")

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
    """Every test starts from the same seed and the default dtype, and leaves no deferred
    GPU label check of F.cross_entropy behind (a later test would read it: the one
    module-level state a test can leave)."""
    sn.manual_seed(0)
    sn.set_default_dtype(np.float32)
    yield
    sn.set_default_dtype(np.float32)
    functional._labels.clear()


def pytest_collection_modifyitems(items):
    """A test that asks for the fakegpu fixture is a fakegpu test (``-m fakegpu``)."""
    for item in items:
        if "fakegpu" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fakegpu)


def unmarked_use_of_the_double(item, uses_before, uses_after):
    """The error for a test that used the CuPy double without the fakegpu mark (so that
    ``-m fakegpu`` would miss it), or None."""
    if uses_after != uses_before and item.get_closest_marker("fakegpu") is None:
        return (f"{item.nodeid} used the CuPy double (tests/fakecupy.py; last: "
                f"{fakecupy.uses[1]}) but has no "
                f"fakegpu mark: add @pytest.mark.fakegpu (or take the fakegpu fixture) so "
                f"that `pytest -m fakegpu` selects it")
    return None


@pytest.fixture(autouse=True)
def _fakegpu_tests_are_marked(request):
    """Every test that touches the double carries the fakegpu mark: checked on each run."""
    before = fakecupy.uses[0]
    yield
    error = unmarked_use_of_the_double(request.node, before, fakecupy.uses[0])
    if error:
        pytest.fail(error, pytrace=False)
