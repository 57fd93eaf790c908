"""Shared fixtures: the device parameter (GPU cases skip with a reason) and data paths."""
import os
import pathlib

import numpy as np
import pytest
import torch

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
DEVICES = ["cpu", pytest.param("gpu", marks=[GPU, needs_gpu])]


@pytest.fixture(params=DEVICES)
def device(request):
    with sn.use_device(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same seed and the default dtype."""
    sn.manual_seed(0)
    sn.set_default_dtype(np.float32)
    yield
    sn.set_default_dtype(np.float32)
