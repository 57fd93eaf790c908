"""DataLoader: batching, shuffling, scaling and resizing (checked against PyTorch), on each
device: the batches are made on the active device, in the same order as on the CPU."""
import os
import pathlib
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from helpers import GPU_DEVICES, assert_equal, dev
from scratchnet.data import DataLoader, FashionMNIST, resize_bilinear

DATA = pathlib.Path(os.environ.get("SCRATCHNET_DATA", "/nonexistent"))


def indexed(n, size=28):
    """A data set whose label is the index of the image (and every pixel is index % 256)."""
    images = np.broadcast_to((np.arange(n) % 256).astype(np.uint8)[:, None, None],
                             (n, size, size)).copy()
    return types.SimpleNamespace(images=images, labels=np.arange(n, dtype=np.int64))


def labels_seen(loader):
    """The labels of each batch, after checking the batch is on the loader's device."""
    xp = sn.backend.device_module(loader.device)
    seen = []
    for X, y in loader:
        assert sn.get_array_module(X) is xp and sn.get_array_module(y) is xp
        seen.append(sn.to_numpy(y).tolist())
    return seen


@pytest.fixture(scope="module")
def fashion_test():
    if not (DATA / "fashion-mnist").is_dir():
        pytest.skip(f"{DATA / 'fashion-mnist'} not found: set SCRATCHNET_DATA")
    return FashionMNIST(train=False, download=False)


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]),
    (10, 3, True, [3, 3, 3]),
    (9, 3, False, [3, 3, 3]),
    (9, 3, True, [3, 3, 3]),
    (2, 5, False, [2]),
    (2, 5, True, []),
])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_count(n, batch_size, drop_last, sizes, shuffle, device):
    loader = DataLoader(indexed(n), batch_size=batch_size, drop_last=drop_last, shuffle=shuffle)
    assert len(loader) == len(sizes)
    assert [len(y) for y in labels_seen(loader)] == sizes


def test_not_shuffled_is_dataset_order(device):
    loader = DataLoader(indexed(10), batch_size=4)
    for _ in range(2):
        assert labels_seen(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffle_is_without_replacement(device):
    loader = DataLoader(indexed(1000), batch_size=64, shuffle=True)
    for _ in range(3):
        seen = np.concatenate(labels_seen(loader))
        assert sorted(seen) == list(range(1000))


def test_shuffle_seeded_and_new_every_epoch(device):
    def epochs(seed, k=3):
        loader = DataLoader(indexed(200), batch_size=16, shuffle=True, seed=seed)
        return [labels_seen(loader) for _ in range(k)]

    first = epochs(seed=1)
    assert epochs(seed=1) == first
    with sn.use_device("cpu"):  # the same batches as on the CPU
        assert epochs(seed=1) == first
    assert first[0] != first[1] and first[1] != first[2] and first[0] != first[2]
    assert epochs(seed=2)[0] != first[0]
    assert first[0] != labels_seen(DataLoader(indexed(200), batch_size=16))


def test_images_follow_their_labels(device):
    for X, y in DataLoader(indexed(300), batch_size=32, shuffle=True):
        assert sn.get_array_module(X) is sn.get_array_module(y) is sn.backend.device_module()
        assert X.dtype == np.float32 and y.dtype == np.int64
        X, y = sn.to_numpy(X), sn.to_numpy(y)
        np.testing.assert_allclose(X[:, 0, 5, 7] * 255, y % 256, atol=1e-4)


def test_batches_of_real_images(fashion_test, device):
    loader = DataLoader(fashion_test, batch_size=256, subset=1000)
    seen = 0
    for X, y in loader:
        assert sn.get_array_module(X) is sn.backend.device_module(device)
        X, y = sn.to_numpy(X), sn.to_numpy(y)
        assert X.dtype == np.float32 and X.shape == (len(y), 1, 28, 28)
        assert y.dtype == np.int64
        assert X.min() >= 0 and X.max() <= 1
        expected = fashion_test.images[seen:seen + len(y)].astype(np.float32) / 255
        np.testing.assert_allclose(X[:, 0], expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(y, fashion_test.labels[seen:seen + len(y)])
        seen += len(y)
    assert seen == 1000


def test_full_range_scales_to_zero_and_one(device):
    data = types.SimpleNamespace(images=np.array([[[0, 255]]], np.uint8),
                                 labels=np.zeros(1, np.int64))
    (X, _), = DataLoader(data, batch_size=1)
    assert sn.to_numpy(X).tolist() == [[[[0.0, 1.0]]]]


@pytest.mark.parametrize("subset", [1, 100, 999, 10000, 20000])
def test_subset(fashion_test, subset, device):
    loader = DataLoader(fashion_test, batch_size=128, subset=subset)
    n = min(subset, len(fashion_test))
    assert len(loader) == -(-n // 128)
    y = np.concatenate(labels_seen(loader))
    np.testing.assert_array_equal(y, fashion_test.labels[:n])


@pytest.mark.parametrize("size", [(56, 56), (14, 14), (224, 224), (20, 35), (28, 28), (1, 1)])
def test_resize_matches_torch(fashion_test, device, size):
    loader = DataLoader(fashion_test, batch_size=8, subset=16, resize=size)
    for b, (X, _) in enumerate(loader):
        X = sn.to_numpy(X)
        assert X.shape == (8, 1, *size) and X.dtype == np.float32
        x = torch.from_numpy(fashion_test.images[8 * b:8 * (b + 1), None] / np.float32(255))
        ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False).numpy()
        np.testing.assert_allclose(X, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape, size", [((2, 3, 5, 7), (13, 4)), ((1, 2, 9, 4), (3, 11)),
                                         ((3, 1, 6, 6), (4, 9))])
def test_resize_bilinear_matches_torch(shape, size, device):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(x), size=size, mode="bilinear", align_corners=False)
    y = resize_bilinear(dev(x), size)
    assert y.dtype == np.float32 and sn.get_array_module(y) is sn.backend.device_module()
    np.testing.assert_allclose(sn.to_numpy(y), ref.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (-1, ValueError),
                                               (2.0, TypeError), ("4", TypeError),
                                               (True, TypeError)])
def test_batch_size_must_be_positive(batch_size, error):
    with pytest.raises(error, match=rf"^DataLoader: batch_size must be a positive int, got "
                                    rf"{re.escape(repr(batch_size))}$"):
        DataLoader(indexed(4), batch_size=batch_size)


def features(n=10):
    """d2l's synthetic regression data, as arrays: X (n, 2) float64, y (n, 1) float64."""
    X = np.arange(2 * n, dtype=np.float64).reshape(n, 2)
    return X, X @ np.array([[2.0], [-3.4]]) + 4.2


ARRAY_FORMS = {
    "(X, y) arrays": lambda X, y: (X, y),
    "(X, y) lists": lambda X, y: (X.tolist(), y.tolist()),
    "pairs": lambda X, y: list(zip(X, y)),
    "a data set of pairs": lambda X, y: Pairs(X, y),
    "(X, y) on the device": lambda X, y: (dev(X), dev(y)),
    "pairs on the device": lambda X, y: list(zip(dev(X), dev(y))),
}


class Pairs:
    """A map-style data set (PyTorch's Dataset protocol): item i is (x_i, y_i)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


@pytest.mark.parametrize("form", list(ARRAY_FORMS))
def test_arrays_are_batched_as_given(device, form):
    """d2l's load_array((features, labels), batch_size): batches of the rows in order
    (shuffle=False), the last one partial, dtype and shape as given (TensorDataset);
    no [0, 1] scaling and no channel axis, which are for a data set's images."""
    X, y = features(10)
    loader = DataLoader(ARRAY_FORMS[form](X, y), 4)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    for b, (Xb, yb) in enumerate(batches):
        assert sn.get_array_module(Xb) is sn.get_array_module(yb) is sn.backend.device_module()
        assert Xb.dtype == yb.dtype == np.float64
        assert_equal(Xb, X[4 * b:4 * b + 4])
        assert_equal(yb, y[4 * b:4 * b + 4])


def test_arrays_shuffled_keep_each_row_with_its_label(device):
    X, y = features(50)
    seen = []
    for Xb, yb in DataLoader((X, y), 8, shuffle=True, seed=3):
        Xb, yb = sn.to_numpy(Xb), sn.to_numpy(yb)
        np.testing.assert_array_equal(Xb @ np.array([[2.0], [-3.4]]) + 4.2, yb)
        seen += Xb[:, 0].tolist()
    assert sorted(seen) == X[:, 0].tolist() and seen != X[:, 0].tolist()


def test_arrays_take_dtype_drop_last_and_subset(device):
    X, y = features(10)
    loader = DataLoader((X, np.arange(10)), 3, drop_last=True, dtype=np.float32, subset=8)
    batches = list(loader)
    assert [len(yb) for _, yb in batches] == [3, 3]
    assert all(Xb.dtype == np.float32 and yb.dtype == np.int64 for Xb, yb in batches)
    assert_equal(batches[1][0], X[3:6].astype(np.float32))


def test_image_arrays_can_be_resized(device):
    X = np.random.default_rng(0).random((4, 1, 6, 6)).astype(np.float32)
    (Xb, yb), = DataLoader((X, np.arange(4)), 4, resize=(3, 3))
    assert Xb.shape == (4, 1, 3, 3)
    assert_equal(Xb, resize_bilinear(dev(X), (3, 3)))
    with pytest.raises(ValueError, match=r"DataLoader: resize needs floating-point images "
                                         r"\(N, C, H, W\), got X of shape \(10, 2\)"):
        DataLoader(features(10), 4, resize=(3, 3))


ACCEPTED = ("DataLoader: expected a data set with .images and .labels, a tuple (X, y) of "
            "arrays of equal length, or a sequence of (x, y) pairs; got ")


@pytest.mark.parametrize("data, error, message", [
    ((np.zeros((10, 2)), np.zeros(9)), ValueError,
     "DataLoader: X and y must have the same length along axis 0, got 10 and 9"),
    (([[1.0]] * 3, [0, 1]), ValueError,
     "DataLoader: X and y must have the same length along axis 0, got 3 and 2"),
    ((np.float64(1.0), np.zeros(1)), ValueError,
     ACCEPTED + "X of shape () and y of shape (1,)"),
    (5, TypeError, ACCEPTED + "int"),
    ([1.0, 2.0, 3.0], TypeError, ACCEPTED + "a list whose item 0 is not an (x, y) pair but "
                                            "float"),
    ([(np.zeros(2), 0), (np.zeros(3), 1)], ValueError,
     "DataLoader: the x (and the y) of every pair must have one shape"),
    ((torch.zeros(4, 2), np.zeros(4)), TypeError,
     "DataLoader: got a torch.Tensor as X; convert it with .numpy() (.detach().cpu().numpy() "
     "if it requires grad or is on a GPU)"),
    ((np.zeros((4, 2)), torch.zeros(4)), TypeError, "DataLoader: got a torch.Tensor as y"),
    (torch.zeros(4, 2), TypeError, "DataLoader: got a torch.Tensor as the data"),
    ([(np.zeros(2), 0), (torch.zeros(2), 1)], TypeError,
     "DataLoader: got a torch.Tensor as the x of pair 1"),
], ids=["lengths", "list lengths", "0-D", "int", "not pairs", "ragged pairs", "torch X",
        "torch y", "torch", "torch pair"])
def test_what_is_not_data_is_refused(data, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        DataLoader(data, 4)


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_device_argument_overrides_the_active_device(device):
    """device="cpu" gives host batches while the GPU is active, device="gpu" device batches
    while the CPU is; the same batches either way."""
    on_cpu = DataLoader(indexed(50), batch_size=16, shuffle=True, device="cpu")
    on_gpu = DataLoader(indexed(50), batch_size=16, shuffle=True, device="gpu")
    host = [(X, y) for X, y in on_cpu]
    with sn.use_device("cpu"):
        moved = [(X, y) for X, y in on_gpu]
    assert len(host) == len(moved) == 4
    for (X, y), (Xg, yg) in zip(host, moved):
        assert isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
        assert sn.backend.device_of(Xg) == sn.backend.device_of(yg) == "gpu"
        np.testing.assert_array_equal(sn.to_numpy(Xg), X)
        np.testing.assert_array_equal(sn.to_numpy(yg), y)


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
def test_device_arrays_come_to_the_host_with_device_cpu(device):
    X, y = features(10)
    for Xb, yb in DataLoader((dev(X), dev(y)), 4, device="cpu"):
        assert isinstance(Xb, np.ndarray) and isinstance(yb, np.ndarray)
    assert_equal(Xb, X[8:])
    assert_equal(yb, y[8:])
