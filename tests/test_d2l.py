"""scratchnet.d2l: d2l 1.0's classes for chapters 7-8 (the seed's cells with only the
imports changed), and the Trainer's two backward routes giving the same weights."""
import os
import stat

import numpy as np
import pytest
import torch

import fakecupy
import scratchnet as sn
from scratchnet import backend, d2l, nn
from scratchnet.autograd import Tensor


@pytest.fixture(autouse=True)
def _figures(tmp_path, monkeypatch):
    """Progress figures go to the test's folder, never into the repository."""
    monkeypatch.setenv("SCRATCHNET_D2L_FIGURES", str(tmp_path))


@pytest.fixture
def subset(monkeypatch, real_data):
    """set(n): FashionMNIST keeps only the first n training and test images."""
    return lambda n: monkeypatch.setenv("SCRATCHNET_D2L_SUBSET", str(n))


class LeNet(d2l.Classifier):
    """The seed's LeNet (7.6), with the activation as a choice."""

    def __init__(self, lr=0.1, num_classes=10, act=nn.Sigmoid):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), act(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), act(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), act(),
            nn.LazyLinear(84), act(),
            nn.LazyLinear(num_classes))


class TapeLeNet(LeNet):
    """Overrides forward: the Trainer must take the tape."""

    def forward(self, X):
        return self.net(X)


class Scale(nn.Module):
    """Defines forward only (as the seed's Residual): the tape runs its backward."""

    def forward(self, X):
        return X * 0.5


class ScaledLeNet(LeNet):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.Sequential(Scale(), *self.net)


def _lenet(cls, data, **kwargs):
    model = cls(**kwargs)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    return model


def _weights(model):
    return {k: backend.to_numpy(v).copy() for k, v in model.state_dict().items()}


def test_save_hyperparameters_reads_the_callers_arguments():
    class B(d2l.HyperParameters):
        def __init__(self, a, b=2, _c=3, d="x"):
            self.save_hyperparameters(ignore=["d"])

    b = B(1)
    assert b.hparams == {"a": 1, "b": 2} and (b.a, b.b) == (1, 2)
    assert not hasattr(b, "d") and not hasattr(b, "_c")
    model = LeNet(lr=0.3)
    assert model.hparams == {"lr": 0.3, "num_classes": 10, "act": nn.Sigmoid}
    assert model.plot_train_per_epoch == 2 and model.plot_valid_per_epoch == 1


def test_add_to_class_adds_a_method():
    class A:
        def __init__(self):
            self.b = 1

    @d2l.add_to_class(A)
    def do(self):
        return self.b + 1

    assert A().do() == 2


def test_progress_board_averages_every_n_points():
    board = d2l.ProgressBoard(display=False)
    for i in range(7):
        board.draw(i, float(i * i), "sq", every_n=3)
    board.draw(0, np.float32(5), "other")
    assert [(p.x, p.y) for p in board.data["sq"]] == [(1, 5 / 3), (4, 50 / 3)]
    assert [(p.x, p.y) for p in board.raw_points["sq"]] == [(6, 36.0)]
    assert [p.y for p in board.data["other"]] == [5.0]


def test_progress_board_writes_a_0644_png_atomically(tmp_path, monkeypatch):
    previous = os.umask(0o022)
    try:
        board = d2l.ProgressBoard()
        board.save_path = tmp_path / "curves" / "board.png"
        for x in range(4):
            board.draw(x, Tensor(np.float32(x)), "t", every_n=2)
        d2l.ProgressBoard().draw(0, 1.0, "one")
        monkeypatch.delenv("SCRATCHNET_D2L_FIGURES")
        monkeypatch.chdir(tmp_path / "curves")
        d2l.ProgressBoard().draw(0, 1.0, "one")
    finally:
        os.umask(previous)
    png = (tmp_path / "curves" / "board.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert stat.S_IMODE(os.stat(tmp_path / "curves" / "board.png").st_mode) == 0o644
    # No temp file left; without save_path nor $SCRATCHNET_D2L_FIGURES: the working folder.
    assert sorted(os.listdir(tmp_path / "curves")) == ["board.png", "d2l_progress.png"]
    # Without save_path: $SCRATCHNET_D2L_FIGURES/d2l_progress.png (the autouse fixture).
    assert (tmp_path / "d2l_progress.png").read_bytes().startswith(b"\x89PNG")


def test_progress_board_redraws_in_place_in_jupyter(monkeypatch, tmp_path):
    display = pytest.importorskip("IPython.display")
    calls = []

    class Handle:
        def update(self, obj):
            calls.append(("update", obj))

    class Shell:
        execution_count = 1

    def fake_display(obj, display_id=False):
        calls.append(("display", obj))
        return Handle()

    monkeypatch.setattr(display, "display", fake_display)
    monkeypatch.setattr(d2l, "jupyter_shell", lambda: Shell)
    monkeypatch.setattr(sn.viz, "jupyter_shell", lambda: Shell)
    board = d2l.ProgressBoard()
    board.draw(0, 1.0, "a")
    board.draw(1, 2.0, "a")
    Shell.execution_count = 2  # a new cell: a new display
    board.draw(2, 3.0, "a")
    assert [c[0] for c in calls] == ["display", "update", "display"]
    assert calls[0][1].data.startswith(b"\x89PNG")
    assert not (tmp_path / "d2l_progress.png").exists()


def test_fashion_mnist_batches_are_tensors_with_resize_and_subset(subset):
    subset(100)
    data = d2l.FashionMNIST(batch_size=32, resize=(32, 36))
    assert (len(data.train), len(data.val)) == (100, 100)
    train, val = data.train_dataloader(), data.val_dataloader()
    assert (len(train), len(val)) == (4, 4)
    X, y = next(iter(train))
    assert isinstance(X, Tensor) and isinstance(y, Tensor)
    assert X.shape == (32, 1, 32, 36) and X.dtype == np.float32
    assert y.shape == (32,) and y.dtype == np.int64
    assert 0 <= float(X.data.min()) and float(X.data.max()) <= 1
    X, y = next(iter(d2l.FashionMNIST(batch_size=8).get_dataloader(False)))
    assert X.shape == (8, 1, 28, 28)
    np.testing.assert_array_equal(y.data, data.val.labels[:8])


def test_fashion_mnist_subset_must_be_a_positive_count(subset):
    subset("ten")
    with pytest.raises(ValueError, match="SCRATCHNET_D2L_SUBSET"):
        d2l.FashionMNIST()


def test_text_labels(subset):
    subset(8)
    data = d2l.FashionMNIST()
    assert data.text_labels([0, 9, 5]) == ["t-shirt", "ankle boot", "sandal"]
    y = next(iter(data.get_dataloader(False)))[1]
    assert data.text_labels(y) == [data.train.classes[i] for i in data.val.labels[:8]]


@pytest.mark.parametrize("clip", [0, 0.05])
def test_manual_and_tape_routes_give_the_same_weights(subset, capsys, clip):
    """Two steps from the same float64 weights: model.net.backward and loss.backward()."""
    subset(128)
    sn.set_default_dtype(np.float64)
    data = d2l.FashionMNIST(batch_size=64)
    manual = _lenet(LeNet, data)
    tape = TapeLeNet()
    tape.load_state_dict(manual.state_dict())
    before = _weights(manual)
    trainers = {}
    for name, model in (("manual", manual), ("tape", tape)):
        trainers[name] = d2l.Trainer(max_epochs=1, gradient_clip_val=clip)
        trainers[name].fit(model, data)
    assert trainers["manual"].backprop == "manual" and trainers["tape"].backprop == "tape"
    out = capsys.readouterr().out
    assert "[manual backprop:" in out
    assert "[tape backprop: TapeLeNet defines its own forward]" in out
    after, other = _weights(manual), _weights(tape)
    assert after["net.0.weight"].dtype == np.float64
    for k in after:
        np.testing.assert_allclose(other[k], after[k], rtol=1e-10, atol=1e-14, err_msg=k)
    assert any(not np.array_equal(before[k], after[k]) for k in after)
    h0, h1 = trainers["manual"].history[0], trainers["tape"].history[0]
    assert h0.keys() == {"epoch", "train_loss", "val_loss", "val_acc"}
    for k in h0:
        np.testing.assert_allclose(h1[k], h0[k], rtol=1e-10)


@pytest.mark.parametrize("cls, route", [(LeNet, "manual"), (TapeLeNet, "tape"),
                                        (ScaledLeNet, "tape")])
def test_the_loss_falls_on_either_route(subset, capsys, tmp_path, cls, route):
    subset(64)  # one batch: full-batch gradient descent, the loss falls at every step
    data = d2l.FashionMNIST(batch_size=64)
    model = _lenet(cls, data, lr=0.3, act=nn.ReLU)
    trainer = d2l.Trainer(max_epochs=5)
    trainer.fit(model, data)
    assert trainer.backprop == route
    losses = [row["train_loss"] for row in trainer.history]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.05, losses
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if line.startswith("epoch ")]) == 5
    if cls is ScaledLeNet:
        assert "Scale defines forward but no backward" in out[0]
    assert model.board.data.keys() == {"train_loss", "val_loss", "val_acc"}
    assert len(model.board.data["train_loss"]) == 5  # every_n is at least 1
    assert len(model.board.data["val_acc"]) == 5
    png = tmp_path / f"{cls.__name__}_progress.png"  # the board is named after the model
    assert png.read_bytes().startswith(b"\x89PNG") and out[-1] == f"the curves: {png}"


@pytest.mark.parametrize("cls, route", [(LeNet, "manual"), (TapeLeNet, "tape")])
def test_every_minibatch_is_one_step_on_either_route(subset, cls, route, monkeypatch):
    """Four minibatches an epoch: four SGD steps an epoch, each one moving the weights (a
    trainer that skipped an epoch's last step, or every step, fails here; the full-batch
    test above cannot tell the two apart)."""
    subset(64)
    data = d2l.FashionMNIST(batch_size=16)
    model = _lenet(cls, data, lr=0.3, act=nn.ReLU)
    moved = []
    step = sn.optim.SGD.step

    def counted_step(opt):
        before = _weights(model)
        step(opt)
        after = _weights(model)
        moved.append(all(not np.array_equal(before[k], after[k]) for k in before))

    monkeypatch.setattr(sn.optim.SGD, "step", counted_step)
    trainer = d2l.Trainer(max_epochs=3)
    trainer.fit(model, data)
    assert trainer.backprop == route and trainer.num_train_batches == 4
    assert moved == [True] * (4 * 3)


def test_num_gpus_without_a_gpu_says_so_once(subset, capsys, monkeypatch):
    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    subset(16)
    data = d2l.FashionMNIST(batch_size=16)
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1)
    for _ in range(2):
        trainer.fit(_lenet(LeNet, data), data)
    out = capsys.readouterr().out
    assert out.count("no GPU is visible to CuPy") == 1
    assert "num_gpus=1 but no GPU is visible to CuPy; training on the CPU" in out
    assert trainer.gpus == [] and len(trainer.history) == 2


def test_trainer_runs_on_the_device(subset, device, capsys):
    """The manual route on the CPU, the CuPy double and a real GPU: weights stay there."""
    subset(32)
    data = d2l.FashionMNIST(batch_size=16)
    model = _lenet(LeNet, data, act=nn.ReLU)
    trainer = d2l.Trainer(max_epochs=1, num_gpus=1, gradient_clip_val=1.0)
    trainer.fit(model, data)
    assert trainer.backprop == "manual"
    assert trainer.gpus == ([sn.device("cuda", 0)] if device == "gpu" else [])
    assert all(backend.device_of(p.data) == device for p in model.parameters())
    assert np.isfinite(list(trainer.history[0].values())).all()


@pytest.mark.fakegpu
@pytest.mark.parametrize("cls", [LeNet, TapeLeNet], ids=["manual", "tape"])
def test_a_fit_reads_the_gpu_once_per_epoch_not_per_step(cls, subset, capsys):
    """With the CuPy double: the host syncs of a fit do not grow with the number of steps
    (on the tape route too: cross_entropy defers its label check to the epoch's end)."""
    syncs = []
    with fakecupy.installed(), sn.use_device("gpu"):
        for n in (32, 96):
            subset(n)
            data = d2l.FashionMNIST(batch_size=16)
            model = _lenet(cls, data)
            trainer = d2l.Trainer(max_epochs=1, num_gpus=1)
            with fakecupy.counting() as c:
                trainer.fit(model, data)
            syncs.append(c.syncs)
    assert syncs[0] == syncs[1] <= 3, syncs  # the labels' check, the sums, the board


def test_clip_gradients_scales_to_the_global_norm():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    model = d2l.Module()
    model.net = net
    grads = [np.arange(p.array.size, dtype=np.float32).reshape(p.array.shape) for p in
             net.parameters()]
    norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads))
    trainer = d2l.Trainer(max_epochs=1)
    for clip, factor in ((norm / 4, 0.25), (norm * 2, 1.0)):
        for p, g in zip(net.parameters(), grads):
            p.grad_array = g.copy()
        trainer.clip_gradients(clip, model)
        for p, g in zip(net.parameters(), grads):
            assert p.grad_array.dtype == np.float32
            np.testing.assert_allclose(p.grad_array, g * factor, rtol=1e-6)


def test_classifier_loss_and_accuracy():
    model = d2l.Classifier()
    Y_hat = Tensor(np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 4.0]], np.float32))
    Y = Tensor(np.array([0, 2, 2]))
    assert float(model.accuracy(Y_hat, Y).array) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(model.accuracy(Y_hat, Y, averaged=False).array, [1, 0, 1])
    z = Y_hat.array.astype(np.float64)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    per = -logp[np.arange(3), Y.array]
    np.testing.assert_allclose(model.loss(Y_hat, Y, averaged=False).array, per, rtol=1e-5)
    assert float(model.loss(Y_hat, Y).array) == pytest.approx(per.mean(), rel=1e-6)


def test_init_cnn_and_apply_init():
    """d2l.init_cnn gives every Conv2d and Linear of LeNet Xavier's uniform weights:
    bounded by sqrt(6 / (fan_in + fan_out)), spread over the whole range (PyTorch's
    default, 1/sqrt(fan_in), is a narrower range for the convolutions and a wider one
    for the Linear layers, so either way a layer left at the default fails)."""
    model = LeNet()
    X = Tensor(np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    model.apply_init([X], d2l.init_cnn)
    layers = [m for m in model.net if type(m) in (nn.Conv2d, nn.Linear)]
    assert [type(m).__name__ for m in layers] == ["Conv2d", "Conv2d", "Linear", "Linear",
                                                  "Linear"]
    assert model.net[0].weight.data.shape == (6, 1, 5, 5)
    for m in layers:
        w = sn.to_numpy(m.weight.data)
        field = int(np.prod(w.shape[2:]))
        fan_in, fan_out = w.shape[1] * field, w.shape[0] * field
        bound = np.sqrt(6 / (fan_in + fan_out))
        default = 1 / np.sqrt(fan_in)
        assert abs(bound - default) > 0.05 * bound, "the two inits must be told apart"
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound, m
        assert abs(w.std() - bound / np.sqrt(3)) < 0.1 * bound, m  # uniform: std a/sqrt(3)


def test_corr2d_as_the_book_and_on_the_tape():
    X = sn.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = sn.tensor([[0.0, 1.0], [2.0, 3.0]], requires_grad=True)
    Y = d2l.corr2d(X, K)
    np.testing.assert_array_equal(Y.data, [[19, 25], [37, 43]])
    Y.sum().backward()  # dL/dK[a, b] = sum of the X window entries it met
    np.testing.assert_array_equal(K.grad, [[8, 12], [20, 24]])


def test_aliases_and_missing_names():
    assert d2l.concat([d2l.ones((1, 2)), d2l.zeros((1, 2))], 0).shape == (2, 2)
    assert d2l.float32 == np.float32 and d2l.int64 == np.int64
    assert float(d2l.reduce_sum(d2l.arange(4, dtype=d2l.float32))) == 6
    assert d2l.size(d2l.rand(2, 3)) == 6
    with pytest.raises(AttributeError, match=r"d2l\.RNNScratch is not part of "
                                             r"scratchnet\.d2l \(it covers chapters 2-8"):
        d2l.RNNScratch


def test_max_epochs_env_caps_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("SCRATCHNET_D2L_MAX_EPOCHS", "2")
    trainer = d2l.Trainer(max_epochs=10)
    assert trainer.max_epochs == 2 and trainer.hparams == {
        "max_epochs": 2, "num_gpus": 0, "gradient_clip_val": 0}
    assert "capped at 2" in capsys.readouterr().out
    assert d2l.Trainer(max_epochs=1).max_epochs == 1  # a smaller count stays
    monkeypatch.setenv("SCRATCHNET_D2L_MAX_EPOCHS", "0")
    with pytest.raises(ValueError, match="SCRATCHNET_D2L_MAX_EPOCHS must be a positive"):
        d2l.Trainer(max_epochs=3)


@pytest.mark.parametrize("kind", ["terminal", "pipe"])
def test_the_epoch_bar_shows_only_where_someone_watches(kind, subset, capsys, monkeypatch):
    subset(64)
    monkeypatch.setattr(d2l, "output_kind", lambda: kind)
    data = d2l.FashionMNIST(batch_size=16)
    model = _lenet(LeNet, data)
    d2l.Trainer(max_epochs=1).fit(model, data)
    err = capsys.readouterr().err
    assert ("epoch 1/1" in err and "\r" in err) if kind == "terminal" else err == ""


def test_is_grad_enabled_follows_no_grad_as_torch_does():
    """8.5's batch_norm from scratch asks ``torch.is_grad_enabled()``."""
    assert sn.is_grad_enabled() is torch.is_grad_enabled() is True
    with sn.no_grad(), torch.no_grad():
        assert sn.is_grad_enabled() is torch.is_grad_enabled() is False
    assert sn.is_grad_enabled() is True


@pytest.mark.parametrize("name, args, in_shape, out_shape", [
    ("Residual", (3,), (4, 3, 6, 6), (4, 3, 6, 6)),
    ("Residual", (6, True, 2), (4, 3, 6, 6), (4, 6, 3, 3)),
    ("ResNeXtBlock", (32, 16, 1), (4, 32, 96, 96), (4, 32, 96, 96))])
def test_the_books_saved_blocks_are_in_d2l(name, args, in_shape, out_shape):
    """d2l 8.6's #@save blocks, which 8.8's AnyNet builds its stages from: the book's
    shape checks, on a tape Tensor as the book's cells call them, and a backward that
    reaches every weight."""
    blk = getattr(d2l, name)(*args)
    Y = blk(sn.randn(*in_shape))
    assert isinstance(Y, Tensor) and Y.shape == out_shape
    Y.sum().backward()
    weights = [p for k, p in blk.named_parameters() if k.endswith("weight")]
    assert weights and all(np.abs(sn.to_numpy(p.grad)).sum() > 0 for p in weights)


def test_every_save_definition_of_chapters_7_8_is_in_scratchnet_d2l():
    """Each ``#@save`` definition in the PyTorch cells of chapters 7-8 (the d2l package
    1.0.3 holds them in d2l/torch.py) is in scratchnet.d2l: a class or function by its
    name, an ``@d2l.add_to_class(d2l.Classifier)`` method on d2l.Classifier."""
    import re

    from chaptercells import SECTIONS_7_8 as SECTIONS, pytorch_cells
    found = []
    for section in SECTIONS:
        for cell in pytorch_cells(section):
            lines = cell.splitlines()
            for i, line in enumerate(lines):
                if "#@save" not in line:
                    continue
                target = re.match(r"@d2l\.add_to_class\(d2l\.(\w+)\)", line)
                name = re.match(r"(?:def|class) (\w+)", lines[i + 1] if target else line)
                found.append((target.group(1) if target else "d2l", name.group(1)))
    assert sorted(found) == sorted([
        ("d2l", "corr2d"), ("d2l", "init_cnn"), ("d2l", "LeNet"), ("Classifier", "layer_summary"),
        ("d2l", "Residual"), ("d2l", "ResNeXtBlock")]), found
    for owner, name in found:
        assert hasattr(d2l.Classifier if owner == "Classifier" else d2l, name), (owner, name)


def test_d2l_lenet_is_the_books_save_class_on_scratchnets_layers():
    model = d2l.LeNet(lr=0.05)
    assert isinstance(model, d2l.Classifier) and model.lr == 0.05
    model.apply_init([np.zeros((2, 1, 28, 28), np.float32)], d2l.init_cnn)
    ours = sn.models.LeNet()
    ours(np.zeros((2, 1, 28, 28), np.float32))
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in ours.state_dict().items()}
    assert model.configure_optimizers().param_groups[0]["lr"] == 0.05


def test_download_uses_a_copy_whose_sha1_matches_without_the_network(tmp_path, capsys):
    """d2l.download (5.7) returns the file already in the folder when its SHA-1 is the
    one asked for, and says nothing; nothing here reaches the network."""
    import hashlib
    data = b"Id,SalePrice\n1,208500\n"
    (tmp_path / "kaggle_house_pred_train.csv").write_bytes(data)
    url = d2l.DATA_URL + "kaggle_house_pred_train.csv"
    got = d2l.download(url, str(tmp_path), sha1_hash=hashlib.sha1(data).hexdigest())
    assert got == os.path.join(str(tmp_path), "kaggle_house_pred_train.csv")
    assert capsys.readouterr().out == ""


def test_extract_unpacks_zip_and_tar_beside_the_file(tmp_path):
    import tarfile
    import zipfile
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("a/x.txt", "zip")
    src = tmp_path / "y.txt"
    src.write_text("tar")
    with tarfile.open(tmp_path / "b.tar", "w") as t:
        t.add(src, arcname="b/y.txt")
    d2l.extract(str(tmp_path / "a.zip"))
    d2l.extract(str(tmp_path / "b.tar"), str(tmp_path / "out"))
    assert (tmp_path / "a" / "x.txt").read_text() == "zip"
    assert (tmp_path / "out" / "b" / "y.txt").read_text() == "tar"


def test_plot_draws_tensors_on_the_tape_and_lists():
    """2.4's d2l.plot: one line per curve, Tensors (on the tape too) read as arrays."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    axes = Figure().add_subplot()
    x = d2l.arange(-2.0, 2.0, 0.5, requires_grad=True)
    d2l.plot(x.detach(), [d2l.tanh(x), 2 * x], 'x', 'f(x)', legend=['tanh', '2x'], axes=axes)
    lines = axes.get_lines()
    assert len(lines) == 2 and axes.get_xlabel() == 'x' and axes.get_ylabel() == 'f(x)'
    np.testing.assert_allclose(lines[0].get_ydata(), np.tanh(np.arange(-2.0, 2.0, 0.5)),
                               rtol=1e-6)
    d2l.plot([1.0, 2.0, 4.0], axes=axes)  # Y alone: against its index
    assert len(axes.get_lines()) == 1


def test_synthetic_regression_data_is_the_books():
    """3.3: y = Xw + b + noise, 1000 training and 1000 validation rows, minibatches of
    32 as lists [X, y] of Tensors, the training ones shuffled."""
    sn.manual_seed(0)
    data = d2l.SyntheticRegressionData(w=d2l.tensor([2, -3.4]), b=4.2)
    assert data.X.shape == (2000, 2) and data.y.shape == (2000, 1)
    resid = data.y.array - (data.X.array @ np.array([[2.0], [-3.4]], np.float32) + 4.2)
    assert np.abs(resid).max() < 0.06 and 0.005 < resid.std() < 0.015  # noise 0.01
    X, y = next(iter(data.train_dataloader()))
    assert isinstance(X, sn.Tensor) and X.shape == (32, 2) and y.shape == (32, 1)
    assert len(data.train_dataloader()) == len(data.val_dataloader()) == 32


def test_devices_are_torch_devices():
    """6.7's helpers return torch.device objects, as d2l's do."""
    assert repr(d2l.cpu()) == "device(type='cpu')"
    assert repr(d2l.gpu()) == "device(type='cuda', index=0)"
    assert repr(d2l.gpu(1)) == "device(type='cuda', index=1)"
    n = d2l.num_gpus()
    assert n == (1 if sn.gpu_available() else 0)
    assert d2l.try_gpu() == (d2l.gpu() if n else d2l.cpu()) and d2l.try_gpu(10) == d2l.cpu()
    assert d2l.try_all_gpus() == [d2l.gpu(i) for i in range(n)]


def test_show_images_gives_one_axes_per_image():
    import matplotlib
    matplotlib.use("Agg")
    axes = d2l.show_images(d2l.rand(3, 4, 4), 1, 3, titles=["a", "b", "c"])
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["a", "b", "c"]
    d2l.plt.close("all")
