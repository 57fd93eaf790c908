"""torch.utils.data (scratchnet/utils/data.py): TensorDataset, DataLoader and
default_collate give the batches PyTorch's give, as d2l's get_tensorloader reads them."""
import collections

import numpy as np
import pytest
import torch
import torch.utils.data as tdata

import scratchnet as sn
from scratchnet.utils import data


def assert_same_batch(ours, theirs):
    """Same structure (list, dict, ...), and each Tensor with the same values, dtype and
    shape (printed the same)."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, sn.Tensor), type(ours)
        assert repr(ours) == repr(theirs)
        return
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs)
        for k in theirs:
            assert_same_batch(ours[k], theirs[k])
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same_batch(a, b)
    else:
        assert ours == theirs


def xy(n=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2)).astype(np.float32)
    y = (X @ np.array([2.0, -3.4], np.float32) + 4.2)[:, None]
    return X, y


@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 32])
@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_batches_are_pytorchs(batch_size, drop_last):
    X, y = xy()
    labels = np.arange(10) % 3
    ours = data.DataLoader(data.TensorDataset(sn.tensor(X), sn.tensor(y), sn.tensor(labels)),
                           batch_size, shuffle=False, drop_last=drop_last)
    theirs = tdata.DataLoader(tdata.TensorDataset(torch.tensor(X), torch.tensor(y),
                                                  torch.tensor(labels)),
                              batch_size, shuffle=False, drop_last=drop_last)
    assert len(ours) == len(theirs)
    batches, tbatches = list(ours), list(theirs)
    assert len(batches) == len(tbatches)
    for b, tb in zip(batches, tbatches):
        assert_same_batch(b, tb)
    assert len(list(ours)) == len(batches)  # a second epoch, as many


def test_d2l_get_tensorloaders_first_batch():
    """synthetic-regression-data: X (32, 2) and y (32, 1), and len is the batch count."""
    X, y = xy(1000)
    loader = data.DataLoader(data.TensorDataset(sn.tensor(X), sn.tensor(y)), 32, shuffle=True)
    Xb, yb = next(iter(loader))
    assert (Xb.shape, yb.shape, len(loader)) == ((32, 2), (32, 1), 32)
    rows = {tuple(r) for r in X.tolist()}
    assert all(tuple(r) in rows for r in sn.to_numpy(Xb).tolist())
    np.testing.assert_allclose(sn.to_numpy(yb)[:, 0],
                               sn.to_numpy(Xb) @ np.array([2.0, -3.4]) + 4.2, rtol=1e-5)


def test_shuffling_visits_every_sample_once_per_epoch_differently_and_seeded():
    X = sn.arange(50)
    orders = []
    for _ in range(2):
        sn.manual_seed(3)
        loader = data.DataLoader(data.TensorDataset(X), 8, shuffle=True)
        epochs = [np.concatenate([sn.to_numpy(b) for (b,) in loader]) for _ in range(3)]
        for e in epochs:
            assert sorted(e.tolist()) == list(range(50))
        assert len({tuple(e) for e in epochs}) == 3
        orders.append(epochs)
    np.testing.assert_array_equal(orders[0], orders[1])  # torch.manual_seed repeats them


def test_a_tensor_dataset_indexes_like_pytorchs():
    X, y = xy(4)
    ours = data.TensorDataset(sn.tensor(X), sn.tensor(y))
    theirs = tdata.TensorDataset(torch.tensor(X), torch.tensor(y))
    assert len(ours) == len(theirs) == 4
    assert type(ours[1]) is tuple
    assert_same_batch(ours[1], theirs[1])
    assert_same_batch(ours[1:3], theirs[1:3])


class Samples(data.Dataset):
    """A map-style data set with samples of many kinds, as users write them."""

    Pair = collections.namedtuple("Pair", "a b")

    def __init__(self, tensor_module, n=5):
        self.t, self.n = tensor_module, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        t = self.t
        return {"x": t.tensor([[i, i + 0.5]]), "label": i, "w": i / 4, "flag": i % 2 == 0,
                "name": f"s{i}", "arr": np.full(2, i, np.int16),
                "pair": self.Pair(t.tensor(i), [i, i * 2])}


@pytest.mark.parametrize("batch_size", [2, 5])
def test_default_collate_of_every_kind_of_sample_is_pytorchs(batch_size):
    ours = list(data.DataLoader(Samples(sn), batch_size))
    theirs = list(tdata.DataLoader(Samples(torch), batch_size))
    for b, tb in zip(ours, theirs):
        assert b["pair"].__class__ is tb["pair"].__class__
        b["pair"], tb["pair"] = tuple(b["pair"]), tuple(tb["pair"])
        assert_same_batch(b, tb)
    assert_same_batch(data.default_collate([(1, 2.0), (3, 4.0)]),
                      tdata.default_collate([(1, 2.0), (3, 4.0)]))


def test_a_subclass_that_changes_getitem_is_read_sample_by_sample():
    class Doubled(data.TensorDataset):
        def __getitem__(self, i):
            return tuple(2 * t[i] for t in self.tensors)

    [(b,)] = data.DataLoader(Doubled(sn.arange(3)), 3)
    np.testing.assert_array_equal(sn.to_numpy(b), [0, 2, 4])


def test_collate_fn_and_num_workers_are_taken():
    loader = data.DataLoader(data.TensorDataset(sn.arange(5)), 2, num_workers=4,
                             collate_fn=lambda samples: len(samples))
    assert list(loader) == [2, 2, 1]


def test_requires_grad_tensors_are_batched_on_the_tape():
    w = sn.ones(4, 2, requires_grad=True)
    [(b,)] = data.DataLoader(data.TensorDataset(w), 4)
    [(tb,)] = tdata.DataLoader(tdata.TensorDataset(torch.ones(4, 2, requires_grad=True)), 4)
    assert b.requires_grad and tb.requires_grad
    b.sum().backward()
    np.testing.assert_array_equal(sn.to_numpy(w.grad), np.ones((4, 2)))


def test_batches_are_on_the_active_device(device):
    X = sn.arange(12.0).reshape(6, 2)
    Xb, yb = next(iter(data.DataLoader(data.TensorDataset(X, sn.arange(6)), 4)))
    assert Xb.device == yb.device == X.device
    np.testing.assert_array_equal(sn.to_numpy(Xb), np.arange(8.0).reshape(4, 2))


@pytest.mark.parametrize("make, error, match", [
    (lambda: data.TensorDataset(sn.ones(3), sn.ones(4)), ValueError,
     r"TensorDataset: Size mismatch between tensors: their first axes have lengths \[3, 4\]"),
    (lambda: data.TensorDataset(np.ones(3)), TypeError,
     "TensorDataset: expected Tensors, got a ndarray as tensor 0"),
    (lambda: data.TensorDataset(torch.ones(3)), TypeError,
     "TensorDataset: got a torch.Tensor as tensor 0"),
    (lambda: data.TensorDataset(sn.tensor(1.0)), ValueError, "TensorDataset: tensor 0 is 0-d"),
    (lambda: data.TensorDataset(), ValueError, "at least one tensor"),
    (lambda: data.DataLoader(data.TensorDataset(sn.ones(2)), 0), ValueError,
     "DataLoader: batch_size must be a positive int, got 0"),
    (lambda: data.DataLoader(data.TensorDataset(sn.ones(2)), True), TypeError,
     "DataLoader: batch_size must be a positive int, got True"),
    (lambda: data.DataLoader(data.TensorDataset(sn.ones(2)), 2, num_workers=-1), ValueError,
     "num_workers option should be a non-negative int"),
    (lambda: data.DataLoader(object(), 2), TypeError,
     "DataLoader: expected a data set with __getitem__ and __len__"),
    (lambda: data.default_collate([sn.ones(2), sn.ones(3)]), RuntimeError,
     r"stack expects each tensor to be equal size, but got \[\(2,\), \(3,\)\]"),
    (lambda: data.default_collate([object()]), TypeError,
     "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
     "found object"),
    (lambda: data.default_collate([[1, 2], [3]]), RuntimeError,
     "each element in list of batch should be of equal size"),
])
def test_bad_inputs_are_refused_by_name(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_missing_names_fail_at_their_name():
    with pytest.raises(AttributeError, match=r"^torch.utils.tensorboard is not part of "
                                             r"scratchnet"):
        sn.utils.tensorboard
    assert sn.utils.data.DataLoader is data.DataLoader
