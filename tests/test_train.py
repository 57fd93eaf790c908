"""train: Trainer's history, plot and checkpoints, bit-identical resume, the stop on a
non-finite loss, and evaluate's promises, on a tiny synthetic dataset."""
import csv
import json

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader
from scratchnet.train import NonFiniteLossError, Trainer, evaluate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Toy:
    """A dataset as DataLoader reads it: uint8 images (N, 6, 6) and int64 labels.

    The label is the brightest third of the image, so a small MLP learns it.
    """

    def __init__(self, n=48, seed=0):
        rs = np.random.default_rng(seed)
        self.labels = rs.integers(0, 3, n).astype(np.int64)
        images = rs.integers(0, 120, (n, 6, 6))
        for i, c in enumerate(self.labels):
            images[i, 2 * c:2 * c + 2] += 120
        self.images = images.astype(np.uint8)


def make_model(dropout=0.25):
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(16, 3))


def make_run(seed=0, momentum=0.9):
    """A fresh model, optimizer and loaders, as a new process would build them."""
    sn.manual_seed(seed)
    model = make_model()
    opt = sn.optim.SGD(model.parameters(), lr=0.1, momentum=momentum, weight_decay=1e-4)
    train = DataLoader(Toy(), batch_size=8, shuffle=True, seed=0)
    val = DataLoader(Toy(n=20, seed=1), batch_size=8)
    return model, opt, train, val


def fit(out, epochs, resume=False, seed=0, momentum=0.9):
    model, opt, train, val = make_run(seed, momentum)
    trainer = Trainer(max_epochs=epochs, out=out, progress=False, log=None)
    trainer.fit(model, train, val, opt, resume=resume)
    return model, trainer


@pytest.fixture(scope="module")
def run3(tmp_path_factory):
    """Three uninterrupted epochs (shared by the read-only tests below)."""
    sn.manual_seed(0)
    sn.set_default_dtype(np.float32)
    out = tmp_path_factory.mktemp("run3")
    model, trainer = fit(out, 3)
    return out, model, trainer


def test_history_rows(run3):
    _, _, trainer = run3
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3]
    for row in trainer.history:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "images_per_s"):
            assert np.isfinite(row[key]), key
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["val_acc"] <= 1
        assert row["images_per_s"] > 0
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]


def test_history_files_parse(run3):
    out, _, trainer = run3
    assert json.loads((out / "history.json").read_text()) == trainer.history
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for row, ref in zip(rows, trainer.history):
        assert set(row) == set(ref)
        for k, v in ref.items():
            assert float(row[k]) == pytest.approx(v, rel=1e-12), k


def test_curves_png(run3):
    out, _, _ = run3
    data = (out / "curves.png").read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_checkpoint_round_trip(run3):
    out, model, trainer = run3
    state = sn.load(out / "checkpoint.npz")
    assert int(state["epoch"]) == 2  # 0-based: the third epoch
    assert json.loads(str(state["history"])) == trainer.history
    assert "bit_generator" in json.loads(str(state["rng"]))
    assert any(k.startswith("optim.state.") and k.endswith("momentum_buffer") for k in state)
    sn.manual_seed(1)
    fresh = make_model()
    fresh.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    x = next(iter(DataLoader(Toy(), batch_size=16)))[0]
    model.eval()
    fresh.eval()
    np.testing.assert_array_equal(fresh(x), model(x))


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_resume_is_bit_identical(tmp_path, momentum):
    whole, trainer = fit(tmp_path / "whole", 3, momentum=momentum)
    fit(tmp_path / "split", 2, momentum=momentum)
    # A new "process": another seed (so the RNG state must come from the checkpoint),
    # a fresh model, optimizer and loaders.
    resumed, trainer2 = fit(tmp_path / "split", 3, resume=True, seed=123, momentum=momentum)
    a, b = whole.state_dict(), resumed.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")}
             for r in trainer.history]
    assert [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")}
            for r in trainer2.history] == strip
    assert len(json.loads((tmp_path / "split" / "history.json").read_text())) == 3


@pytest.mark.parametrize("entry", ["rng", "momentum_buffer"])
def test_resume_depends_on_the_saved_rng_and_momentum(tmp_path, entry):
    """The test above has teeth: change the saved dropout RNG state or the momentum
    buffers and the third epoch ends elsewhere."""
    whole, _ = fit(tmp_path / "whole", 3)
    fit(tmp_path / "split", 2)
    path = tmp_path / "split" / "checkpoint.npz"
    state = sn.load(path)
    if entry == "rng":
        state["rng"] = json.dumps(np.random.default_rng(123).bit_generator.state)
    else:
        state = {k: (np.zeros_like(v) if k.endswith(entry) else v) for k, v in state.items()}
    sn.save(state, path)
    resumed, _ = fit(tmp_path / "split", 3, resume=True)
    assert not np.array_equal(resumed.state_dict()["4.weight"], whole.state_dict()["4.weight"])


class PoisonedBatches:
    """Batches whose input turns infinite at one (epoch, step); fit sets ``epoch``.

    At the start of the poisoned epoch it keeps a copy of the checkpoint file's bytes.
    """

    def __init__(self, loader, epoch, step, checkpoint):
        self.loader, self.bad, self.checkpoint = loader, (epoch, step), checkpoint
        self.epoch = 0
        self.saved_bytes = None

    def __iter__(self):
        if self.epoch == self.bad[0]:
            self.saved_bytes = self.checkpoint.read_bytes()
        self.loader.epoch = self.epoch
        for step, (X, y) in enumerate(self.loader):
            if (self.epoch, step) == self.bad:
                X = X.copy()
                X[0, 0, 0, 0] = np.inf
            yield X, y


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path):
    model, opt, train, val = make_run()
    trainer = Trainer(max_epochs=3, out=tmp_path, progress=False, log=None)
    path = trainer.checkpoint_path
    batches = PoisonedBatches(train, epoch=1, step=1, checkpoint=path)
    with pytest.raises(NonFiniteLossError) as info:
        with np.errstate(all="ignore"):
            trainer.fit(model, batches, val, opt)
    msg = str(info.value)
    assert "epoch 2, step 2" in msg
    assert f"last good checkpoint is {path}" in msg
    assert path.read_bytes() == batches.saved_bytes
    state = sn.load(path)
    assert int(state["epoch"]) == 0
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1
    fresh = make_model()
    fresh.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    assert all(np.isfinite(v).all() for v in fresh.state_dict().values())


class OverflowingBatches(PoisonedBatches):
    """Before the last batch of one epoch the learning rate jumps to 1e39: that batch's
    loss is finite, the update after it overflows the weights."""

    def __init__(self, loader, epoch, checkpoint, optimizer):
        super().__init__(loader, epoch, None, checkpoint)
        self.optimizer = optimizer

    def __iter__(self):
        if self.epoch == self.bad[0]:
            self.saved_bytes = self.checkpoint.read_bytes()
        self.loader.epoch = self.epoch
        batches = list(self.loader)
        for step, batch in enumerate(batches):
            if self.epoch == self.bad[0] and step == len(batches) - 1:
                self.optimizer.param_groups[0]["lr"] = 1e39
            yield batch


@pytest.mark.parametrize("with_val", [True, False])
def test_overflow_on_an_epochs_last_step_is_never_checkpointed(tmp_path, with_val):
    model, opt, train, val = make_run()
    val = val if with_val else None
    trainer = Trainer(max_epochs=3, out=tmp_path, progress=False, log=None)
    path = trainer.checkpoint_path
    batches = OverflowingBatches(train, epoch=1, checkpoint=path, optimizer=opt)
    with pytest.raises(NonFiniteLossError) as info:
        with np.errstate(all="ignore"):
            trainer.fit(model, batches, val, opt)
    msg = str(info.value)
    assert ("validation loss" if with_val else "parameter") in msg
    assert f"after epoch 2, step {len(train)}" in msg
    assert f"last good checkpoint is {path}" in msg
    assert path.read_bytes() == batches.saved_bytes
    state = sn.load(path)
    assert int(state["epoch"]) == 0
    assert all(np.isfinite(v).all() for k, v in state.items() if k.startswith("model."))
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1


def test_a_stale_checkpoint_is_not_called_good(tmp_path):
    """A checkpoint left in --out by an older run is not this run's last good one."""
    model, opt, train, val = make_run()
    Trainer(max_epochs=1, out=tmp_path, progress=False, log=None).fit(model, train, val, opt)
    model, opt, train, val = make_run()
    batches = PoisonedBatches(train, epoch=0, step=1, checkpoint=tmp_path / "checkpoint.npz")
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written yet"):
        with np.errstate(all="ignore"):
            Trainer(max_epochs=2, out=tmp_path, progress=False, log=None).fit(
                model, batches, val, opt)


def test_diverging_learning_rate_raises_before_any_checkpoint(tmp_path):
    sn.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 16),
                          nn.ReLU(), nn.Linear(16, 3))
    opt = sn.optim.SGD(model.parameters(), lr=1e8)
    trainer = Trainer(max_epochs=5, out=tmp_path, progress=False, log=None)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step \d+.*No checkpoint"):
        with np.errstate(all="ignore"):
            trainer.fit(model, DataLoader(Toy(), batch_size=8), None, opt)
    assert not trainer.checkpoint_path.exists()


def test_fit_without_optimizer_is_a_value_error():
    model, _, train, val = make_run()
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(max_epochs=1, progress=False, log=None).fit(model, train, val)


def test_resume_without_checkpoint_is_file_not_found(tmp_path):
    model, opt, train, val = make_run()
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        Trainer(max_epochs=1, out=tmp_path, progress=False, log=None).fit(
            model, train, val, opt, resume=True)
    with pytest.raises(FileNotFoundError):
        Trainer(max_epochs=1, progress=False, log=None).fit(model, train, val, opt,
                                                            resume=True)


def test_without_out_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, opt, train, val = make_run()
    history = Trainer(max_epochs=1, progress=False, log=None).fit(model, train, val, opt)
    assert len(history) == 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_keeps_mode_and_no_caches(training):
    model, _, _, val = make_run()
    X, _ = next(iter(val))
    model.train(training)
    y = model(X)  # caches for a backward ...
    loss, acc = evaluate(model, val)
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    with pytest.raises(ValueError, match="before forward"):
        model.backward(np.ones_like(y))  # ... that evaluate has released


def test_evaluate_weights_batches_by_size():
    model, _, _, _ = make_run()
    data = Toy(n=20, seed=1)
    loss, acc = evaluate(model, DataLoader(data, batch_size=8))  # batches 8, 8, 4
    model.eval()
    X = data.images[:, None].astype(np.float32) / np.float32(255)
    logits = model(X)
    assert loss == pytest.approx(nn.CrossEntropyLoss()(logits, data.labels), rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == data.labels).mean()))
