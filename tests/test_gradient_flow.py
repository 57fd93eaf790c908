"""Gradient flow: the Trainer records per-layer weight-gradient norms, writes and plots
them, keeps them across a resume; sigmoid LeNet's first layer gets a vanishing gradient."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader
from scratchnet.models import LeNet
from scratchnet.train import Trainer, plot_grad_norms, weight_grad_norms, weight_layers

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Noise:
    """A dataset as DataLoader reads it: uint8 images (N, 28, 28), labels in [0, 10)."""

    def __init__(self, n, size=28, seed=0):
        rs = np.random.default_rng(seed)
        self.images = rs.integers(0, 256, (n, size, size)).astype(np.uint8)
        self.labels = rs.integers(0, 10, n).astype(np.int64)


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3 * 3 * 3, 8), nn.ReLU(), nn.Linear(8, 10))


def fit(out, epochs, every=2, resume=False):
    sn.manual_seed(0)
    model = small_cnn()
    opt = sn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = DataLoader(Noise(40, size=8), batch_size=8, shuffle=True, seed=0)
    trainer = Trainer(max_epochs=epochs, out=out, progress=False, log=None,
                      grad_norms_every=every)
    trainer.fit(model, data, None, opt, resume=resume)
    return trainer, model


def test_trainer_records_every_n_steps_and_writes_files(tmp_path):
    trainer, model = fit(tmp_path, epochs=2, every=3)
    # 5 steps per epoch, counted across epochs: 0, 3, 6, 9.
    assert [r["step"] for r in trainer.grad_norms] == [0, 3, 6, 9]
    assert trainer.global_step == 10
    layers = [path for path, _ in weight_layers(model)]
    assert layers == ["0", "4", "6"]
    for row in trainer.grad_norms:
        assert list(row) == ["step"] + layers
        assert all(np.isfinite(row[k]) and row[k] > 0 for k in layers)
    assert json.loads((tmp_path / "grad_norms.json").read_text()) == trainer.grad_norms
    png = (tmp_path / "grad_norms.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


def test_off_by_default(tmp_path):
    sn.manual_seed(0)
    model = small_cnn()
    trainer = Trainer(max_epochs=1, out=tmp_path, progress=False, log=None)
    trainer.fit(model, DataLoader(Noise(16, size=8), batch_size=8), None,
                sn.optim.SGD(model.parameters(), lr=0.1))
    assert trainer.grad_norms == []
    assert not (tmp_path / "grad_norms.json").exists()
    assert not (tmp_path / "grad_norms.png").exists()


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_bad_every_is_refused(every):
    with pytest.raises(ValueError, match="grad_norms_every"):
        Trainer(grad_norms_every=every)


def test_resume_continues_the_record(tmp_path):
    whole, _ = fit(tmp_path / "whole", epochs=2)
    fit(tmp_path / "split", epochs=1)
    resumed, _ = fit(tmp_path / "split", epochs=2, resume=True)
    assert resumed.global_step == whole.global_step
    assert resumed.grad_norms == whole.grad_norms


def test_plot_grad_norms(tmp_path):
    rows = [{"step": 0, "a": 1e-3, "b": 1.0}, {"step": 5, "a": 2e-3, "b": 0.5}]
    path = plot_grad_norms(rows, tmp_path / "g.png", title="t", labels={"a": "first"})
    assert pathlib.Path(path).read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="no rows"):
        plot_grad_norms([], tmp_path / "h.png")


def first_steps(modern, steps=3):
    """Weight-gradient norms of LeNet's first steps (d2l's or the modern recipe)."""
    sn.manual_seed(0)
    data = DataLoader(Noise(32 * steps), batch_size=32, shuffle=True, seed=0)
    model = LeNet(modern=modern)
    nn.init.apply_init(model, [next(iter(data))[0][:2]], None if modern else nn.init.init_cnn)
    opt = sn.optim.SGD(model.parameters(), lr=0.05 if modern else 0.1,
                       momentum=0.9 if modern else 0.0)
    trainer = Trainer(max_epochs=1, progress=False, log=None, grad_norms_every=1)
    trainer.fit(model, data, None, opt)
    first, last = weight_layers(model)[0][0], weight_layers(model)[-1][0]
    return [(r[first], r[last]) for r in trainer.grad_norms]


def test_sigmoid_lenet_gradient_vanishes_at_the_first_layer():
    """Each sigmoid scales the gradient by at most 1/4: the first convolution's weight
    gradient is a small fraction of the last layer's (about 1/400 measured on
    Fashion-MNIST). ReLU + BatchNorm keep them within an order of magnitude."""
    for first, last in first_steps(modern=False):
        assert first < last / 30
    for first, last in first_steps(modern=True):
        assert last / 10 < first < last * 10


def test_weight_grad_norms_skip_batchnorm_and_lazy_layers():
    model = LeNet(modern=True)
    assert weight_grad_norms(model) == {}  # nothing materialised yet
    nn.init.apply_init(model, [np.zeros((2, 1, 28, 28), dtype=np.float32)])
    assert [p for p, _ in weight_layers(model)] == ["net.0", "net.4", "net.9", "net.12",
                                                    "net.15"]
    assert weight_grad_norms(model) == {}  # no gradient before a backward, as in PyTorch
    model.zero_grad()  # ... nor after zero_grad (PyTorch's set_to_none)
    assert weight_grad_norms(model) == {}


def test_gradient_flow_example(tmp_path):
    env = dict(os.environ)
    env.setdefault("SCRATCHNET_DATA", str(ROOT.parent / "shared" / "data"))
    out = tmp_path / "flow.png"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "gradient_flow.py"),
                           "--steps", "3", "--every", "1", "--batch-size", "16",
                           "--no-progress", "--out", str(out), "--json", str(tmp_path / "f.json")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode and "Fashion-MNIST" in proc.stderr + proc.stdout and \
            "SCRATCHNET_DATA" in proc.stderr + proc.stdout:
        pytest.skip("Fashion-MNIST not available")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)
    record = json.loads((tmp_path / "f.json").read_text())
    assert [r["step"] for r in record["d2l"]] == [0, 1, 2]
    assert "ratio last/first" in proc.stdout
