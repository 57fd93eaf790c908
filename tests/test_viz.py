"""viz: the kernel and feature-map pictures are written, as PNGs, for the right tensors."""
import numpy as np
import pytest

import scratchnet as sn
from scratchnet.models import LeNet

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG)


@pytest.fixture
def lenet():
    model = LeNet(modern=True)
    sn.nn.init.apply_init(model, [np.zeros((2, 1, 28, 28), np.float32)])
    return model


def test_kernels_and_feature_maps_are_pngs(tmp_path, lenet):
    assert is_png(sn.viz.plot_kernels(lenet.net[0].weight.data, tmp_path / "k.png"))
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    assert is_png(sn.viz.plot_feature_maps(lenet, image, tmp_path / "f.png"))
    assert is_png(sn.viz.plot_kernel_pair([[0.98, -1.01]], [[1.0, -1.0]], tmp_path / "p.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "k.png", "p.png"]


def test_conv_outputs_are_every_convolutions_maps(lenet):
    x = np.random.default_rng(1).random((1, 1, 28, 28), dtype=np.float32)
    lenet.eval()
    maps = sn.viz.conv_outputs(lenet, x)
    assert [(name, fm.shape) for name, fm in maps] == [
        ("net.0 Conv2d", (1, 6, 28, 28)), ("net.4 Conv2d", (1, 16, 10, 10))]
    np.testing.assert_allclose(maps[0][1], lenet.net[0](x), rtol=1e-6)


def test_plot_feature_maps_leaves_the_mode_and_statistics_alone(tmp_path, lenet):
    lenet.train()
    before = {k: v.copy() for k, v in lenet.state_dict().items()}
    sn.viz.plot_feature_maps(lenet, np.ones((28, 28), np.float32), tmp_path / "f.png")
    assert lenet.training
    for k, v in lenet.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_plot_kernels_rejects_a_linear_weight(tmp_path):
    with pytest.raises(ValueError, match=r"plot_kernels: expected a conv weight.*\(10, 84\)"):
        sn.viz.plot_kernels(np.zeros((10, 84)), tmp_path / "k.png")
    assert not any(tmp_path.iterdir())


def test_visualize_lenet_example_draws_both_pictures(tmp_path):
    import os
    import pathlib
    import subprocess
    import sys

    from scratchnet.train import Trainer
    root = pathlib.Path(__file__).resolve().parents[1]
    rs = np.random.default_rng(0)
    X = rs.random((64, 1, 28, 28), dtype=np.float32)
    y = rs.integers(0, 10, 64)
    model = LeNet(modern=True)
    sn.nn.init.apply_init(model, [X[:2]])
    Trainer(max_epochs=1, out=tmp_path / "run", progress=False, log=None).fit(
        model, [(X, y)], optimizer=sn.optim.SGD(model.parameters(), lr=0.01))
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "visualize_lenet.py"), "--checkpoint",
         str(tmp_path / "run" / "checkpoint.npz"), "--out", str(tmp_path / "img")],
        capture_output=True, text=True, cwd=root, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert is_png(tmp_path / "img" / "kernels.png")
    assert is_png(tmp_path / "img" / "feature_maps.png")
