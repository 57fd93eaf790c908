"""Bad files (issue 5): every corrupt data set file and every checkpoint that does not fit
gives one clear error (its type, and a message naming the file or the keys), and changes
nothing. What tests/data/test_idx.py, tests/data/test_datasets.py and tests/test_io.py
already cover one case at a time (a wrong magic, a header claiming more data than the file
holds, a pickle file) is not repeated here; this file tries whole families of bad files:
every truncation, random corruption, wrong content in a data set folder, and checkpoints
from another architecture, another optimizer or another tool.
"""
import collections
import gzip
import pathlib
import pickle
import re
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader, FashionMNIST, IDXError, read_idx, write_idx
from scratchnet.data import datasets
from scratchnet.models import LeNet
from scratchnet.train import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEMS = datasets._FILES
TRIED = collections.Counter()  # bad files tried, by family (printed with -s)


def teardown_module():
    print(f"\nbad files tried: {sum(TRIED.values())} {dict(TRIED)}")


def idx_blob(suffix):
    """A small valid IDX file: raw, or gzip-compressed."""
    a = np.random.default_rng(0).integers(0, 256, (5, 6, 7)).astype(np.uint8)
    payload = bytes([0, 0, 8, 3]) + struct.pack(">3I", *a.shape) + a.tobytes()
    return a, gzip.compress(payload, mtime=0) if suffix == ".gz" else payload


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_every_truncation_of_an_idx_file_is_an_idx_error(tmp_path, suffix):
    a, blob = idx_blob(suffix)
    path = tmp_path / f"images{suffix}"
    path.write_bytes(blob)
    np.testing.assert_array_equal(read_idx(path), a)
    for n in range(len(blob)):
        path.write_bytes(blob[:n])
        with pytest.raises(IDXError, match=re.escape(str(path))):
            read_idx(path)
    TRIED[f"idx truncated{suffix}"] += len(blob)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_random_corruption_gives_an_array_or_an_idx_error(tmp_path, suffix):
    """Flip 1-3 bytes anywhere: the reader returns an array its header describes (IDX has
    no checksum, so changed pixels are a valid file) or raises IDXError, never anything
    else (struct.error, zlib.error, MemoryError, a reshape error...)."""
    a, blob = idx_blob(suffix)
    rs = np.random.default_rng(1)
    path = tmp_path / f"images{suffix}"
    outcomes = collections.Counter()
    for _ in range(400):
        b = bytearray(blob)
        for pos in rs.integers(0, len(b), rs.integers(1, 4)):
            b[pos] = (b[pos] + rs.integers(1, 256)) % 256
        path.write_bytes(bytes(b))
        try:
            out = read_idx(path)
        except IDXError as e:
            assert str(path) in str(e)
            outcomes["error"] += 1
        else:
            assert isinstance(out, np.ndarray) and out.size * out.itemsize <= len(blob) * 1100
            outcomes["array"] += 1
    assert outcomes["error"] >= 40
    TRIED[f"idx corrupted{suffix}"] += 400


def dataset_folder(folder, n=6, images=None, labels=None):
    """The four .gz files of a tiny valid data set, with ``images`` / ``labels`` (IDX
    arrays) in place of the training ones when given."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        x = rs.integers(0, 256, (n, 4, 4)).astype(np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        if prefix == "train":
            x = x if images is None else images
            y = y if labels is None else labels
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    return folder


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("damage", ["truncated", "not gzip data", "wrong magic", "empty"])
def test_a_damaged_file_in_a_data_set_folder_is_named(tmp_path, stem, damage):
    folder = dataset_folder(tmp_path / "set")
    path = folder / f"{stem}.gz"
    blob = path.read_bytes()
    path.write_bytes({"truncated": blob[:len(blob) // 2],
                      "not gzip data": b"<html>404 Not Found</html>",
                      "wrong magic": gzip.compress(b"\x00\x00\x08\x07" + bytes(64)),
                      "empty": b""}[damage])
    train = stem.startswith("train")
    with pytest.raises(IDXError, match=re.escape(str(path))):
        FashionMNIST(root=folder, train=train, download=False)
    FashionMNIST(root=folder, train=not train, download=False)  # the other split still loads
    TRIED["data set file damaged"] += 1


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((6,), np.uint8), np.zeros((6, 4, 4), np.uint8),
     r"expected images \(N, H, W\) and labels \(N,\)"),  # the two files swapped
    (np.zeros((6, 4, 4), np.float32), None, "expected uint8 images and integer labels, got "
     "float32 and uint8"),  # DataLoader would scale float images by 1/255
    (None, np.array([0, 1, 2.7, 3, 4, 5], np.float32),
     "expected uint8 images and integer labels, got uint8 and float32"),  # 2.7 -> 2
], ids=["swapped", "float-images", "float-labels"])
def test_wrong_content_in_a_data_set_folder(tmp_path, images, labels, message):
    folder = dataset_folder(tmp_path / "set", images=images, labels=labels)
    with pytest.raises(ValueError, match=message) as info:
        FashionMNIST(root=folder, download=False)
    assert str(folder) in str(info.value)
    TRIED["data set content wrong"] += 1


@pytest.mark.parametrize("dims", [(10**9, 28, 28), (60000, 28, 28), (2**31, 2**31)])
def test_a_header_claiming_too_much_is_refused_without_allocating(tmp_path, dims):
    """The images file of a data set folder claims far more than it holds: refused with
    less than 4 MB allocated on the way (a read of the claim would take gigabytes)."""
    folder = dataset_folder(tmp_path / "set")
    path = folder / "train-images-idx3-ubyte.gz"
    head = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip.compress(head + bytes(4096)))
    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match=re.escape(str(path)) + ".*claims shape"):
            FashionMNIST(root=folder, download=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak / 2**20:.0f} MB allocated"
    TRIED["idx header claims too much"] += 1


class Images:
    """A data set as DataLoader reads it: 32 uint8 28x28 images and labels."""

    def __init__(self, n=32):
        rs = np.random.default_rng(0)
        self.images = rs.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        self.labels = rs.integers(0, 10, n).astype(np.int64)


def lenet_run(modern=False, optimizer="sgd", seed=0):
    """A materialised LeNet, its optimizer and loader, as a training script builds them."""
    sn.manual_seed(seed)
    model = LeNet(modern=modern)
    train = DataLoader(Images(), batch_size=16, shuffle=True)
    model(next(iter(train))[0][:2])
    if optimizer == "sgd":
        opt = sn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    else:
        opt = sn.optim.Adam(model.parameters(), lr=1e-3)
    return model, opt, train


def trained_checkpoint(out, **kw):
    """checkpoint.npz of one epoch in ``out``."""
    model, opt, train = lenet_run(**kw)
    Trainer(max_epochs=1, out=out, progress=False, log=None).fit(model, train, None, opt)
    return out / "checkpoint.npz"


def snapshot(model, opt):
    state = {f"model.{k}": np.array(v) for k, v in model.state_dict().items()}
    state.update((f"optim.{k}", np.array(v)) for k, v in opt.state_dict().items())
    return state


def assert_unchanged(model, opt, before):
    after = snapshot(model, opt)
    assert list(after) == list(before)
    for k, v in before.items():
        assert np.array_equal(after[k], v), k


def resume_fails(out, match, modern=False, optimizer="sgd"):
    """Resuming into a fresh run fails with a ValueError matching ``match`` that names the
    checkpoint, and leaves model and optimizer as they were."""
    model, opt, train = lenet_run(modern=modern, optimizer=optimizer, seed=1)
    before = snapshot(model, opt)
    with pytest.raises(ValueError, match=match) as info:
        Trainer(max_epochs=2, out=out, progress=False, log=None).fit(
            model, train, None, opt, resume=True)
    assert str(out / "checkpoint.npz") in str(info.value)
    assert_unchanged(model, opt, before)
    TRIED["checkpoint refused"] += 1
    return str(info.value)


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.3, 0.6, 0.95, 0.999])
def test_truncated_trainer_checkpoint(tmp_path, keep):
    path = trained_checkpoint(tmp_path)
    blob = path.read_bytes()
    path.write_bytes(blob[:int(len(blob) * keep)])
    resume_fails(tmp_path, "not a valid .npz checkpoint")


def test_checkpoint_of_another_architecture_names_both_models(tmp_path):
    """d2l's LeNet checkpoint resumed by the modern recipe (--recipe changed between runs):
    one short line naming the model that wrote it and the one loading it."""
    trained_checkpoint(tmp_path, modern=False)
    msg = resume_fails(tmp_path, r"cannot resume from .*: it was written by LeNet \(61,706 "
                       r"parameters\), and the model loading it is LeNet \(62,158 "
                       r"parameters\)$", modern=True)
    assert "\n" not in msg and len(msg) < 200


def test_an_older_checkpoint_of_another_architecture_is_summed_up_in_one_line(tmp_path):
    """A checkpoint from before models were named: the keys that differ, counted, with
    one example each (it listed every key: 1.5-4 kB)."""
    path = trained_checkpoint(tmp_path, modern=False)
    state = dict(sn.load(path))
    del state["model"]
    sn.save(state, path)
    msg = resume_fails(tmp_path, r"it holds another model's weights \(6 of its 10 tensors "
                       r"have no place in LeNet \(62,158 parameters\), e\.g\. net\.11\.bias; "
                       r"26 of this model's are missing, e\.g\. net\.1\.bias\)$", modern=True)
    assert "\n" not in msg and len(msg) < 300


def test_checkpoint_of_another_optimizer(tmp_path):
    """The model loads, the optimizer does not: the model is rolled back."""
    trained_checkpoint(tmp_path, optimizer="adam")
    resume_fails(tmp_path, r"SGD.load_state_dict: param group 0 was saved with .*'betas'.* "
                 r"\(the state of another optimizer\?\)")


def test_a_model_file_is_not_a_trainer_checkpoint(tmp_path):
    model, _, _ = lenet_run()
    sn.save(model.state_dict(), tmp_path / "checkpoint.npz")
    resume_fails(tmp_path, "is not a Trainer checkpoint: it has no epoch, history, rng")


@pytest.mark.parametrize("kind", ["torch.save", "pickle", "object array", "strings"])
def test_checkpoints_holding_objects_are_refused(tmp_path, kind):
    path = trained_checkpoint(tmp_path)
    state = sn.load(path)
    if kind == "torch.save":  # a zip archive too, whose data.pkl is a pickle
        torch.save({k: torch.from_numpy(v) for k, v in state.items()
                    if v.dtype.kind in "biuf"}, path)
        match = r"'checkpoint/data.pkl' .* is a pickle \(is this a torch.save file\?\)"
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(state))
        match = "is a pickle; pickled objects are refused"
    elif kind == "object array":
        state["history"] = np.array([{"epoch": 1}], dtype=object)
        np.savez(path, **state)
        match = "entry 'history' .* holds pickled objects; pickled objects are refused"
    else:
        key = next(k for k in state if k.startswith("model."))
        state[key] = np.full(state[key].shape, "x")
        sn.save(state, path)
        match = rf"not arrays of numbers: \['{key[6:]}'\]"
    resume_fails(tmp_path, match)


def test_a_zip_that_is_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "checkpoint.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("epoch.npy", b"\x93NUMPY garbage")
        z.writestr("README.txt", b"not an array")
    with pytest.raises(ValueError, match="not a valid .npz checkpoint"):
        sn.load(path)
    TRIED["checkpoint refused"] += 1


MODERN_ONLY = ("missing keys ['net.1.bias', 'net.1.num_batches_tracked', 'net.1.running_mean'"
               ", 'net.1.running_var', 'net.1.weight', 'net.10.bias'")


@pytest.mark.parametrize("source, target, lazy_message, message", [
    (lambda: LeNet(num_classes=5), LeNet,
     "mis-shaped net.11.weight: expected (10, any), got (5, 84); net.11.bias: expected (10,), "
     "got (5,)",
     "mis-shaped net.11.weight: expected (10, 84), got (5, 84); net.11.bias: expected (10,), "
     "got (5,)"),
    (lambda: LeNet(modern=True), LeNet,
     "missing keys ['net.11.bias', 'net.11.weight', 'net.3.bias', 'net.3.weight', "
     "'net.7.bias', 'net.7.weight'], unexpected keys ['net.1.bias', ", None),
    (LeNet, lambda: LeNet(modern=True), MODERN_ONLY, None),
    (lambda: nn.Sequential(nn.LazyConv2d(6, 3), nn.Flatten(), nn.LazyLinear(10)),
     lambda: nn.Sequential(nn.LazyConv2d(6, 5), nn.Flatten(), nn.LazyLinear(10)),
     "mis-shaped 0.weight: expected (6, any, 5, 5), got (6, 1, 3, 3)",
     "mis-shaped 0.weight: expected (6, 1, 5, 5), got (6, 1, 3, 3); 2.weight: expected "
     "(10, 3456), got (10, 4056)"),
    (lambda: nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d()),
     lambda: nn.Sequential(nn.LazyConv2d(6, 3), nn.LazyBatchNorm2d()),
     "mis-shaped 0.weight: expected (6, any, 3, 3), got (4, 1, 3, 3); 0.bias: expected (6,), "
     "got (4,)",
     "mis-shaped 0.weight: expected (6, 1, 3, 3), got (4, 1, 3, 3); 0.bias: expected (6,), "
     "got (4,); 1.weight: expected (6,), got (4,); 1.bias: expected (6,), got (4,); "
     "1.running_mean: expected (6,), got (4,)"),
], ids=["num_classes", "modern-into-d2l", "d2l-into-modern", "kernel", "channels"])
def test_load_state_dict_from_another_architecture(tmp_path, source, target, lazy_message,
                                                   message):
    """Through a file, into a lazy model (as a new process builds it) and into a
    materialised one: every problem in one ValueError, nothing changed, nothing
    materialised. A lazy model used to take whatever shapes it was given."""
    src = source()
    src.eval()(np.zeros((2, 1, 28, 28), np.float32))
    sn.save(src.state_dict(), tmp_path / "model.npz")
    state = sn.load(tmp_path / "model.npz")
    for lazy in (True, False):
        model = target()
        if not lazy:
            model.eval()(np.zeros((2, 1, 28, 28), np.float32))
        before = {k: np.array(v) for k, v in model.state_dict().items()}
        with pytest.raises(ValueError) as info:
            model.load_state_dict(state)
        assert (lazy_message if lazy else message or lazy_message) in str(info.value)
        after = model.state_dict()
        assert list(after) == list(before)
        assert all(np.array_equal(after[k], v) for k, v in before.items())
        TRIED["state_dict of another architecture"] += 1


def test_lazy_batch_norm_refuses_inconsistent_channel_counts():
    bn = nn.LazyBatchNorm2d()
    state = nn.BatchNorm2d(3).state_dict()
    state["running_var"] = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=re.escape("running_var: expected (3,), got (4,)")):
        bn.load_state_dict(state)
    assert bn.weight.array is None and bn.running_mean is None


def test_train_lenet_resume_from_a_bad_checkpoint_says_so_in_one_line(tmp_path, real_data):
    (tmp_path / "checkpoint.npz").write_bytes(b"<html>")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train_lenet.py"),
                           "--subset", "64", "--epochs", "1", "--no-progress", "--out",
                           str(tmp_path), "--resume"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    TRIED["checkpoint refused"] += 1
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "is not a valid .npz checkpoint: it does not start with a zip header")
