"""torch.utils.data: Dataset, TensorDataset, DataLoader and default_collate.

d2l reads minibatches this way (its ``get_tensorloader``)::

    dataset = torch.utils.data.TensorDataset(X, y)
    loader = torch.utils.data.DataLoader(dataset, batch_size, shuffle=train)
    for X, y in loader: ...          # a list [X (B, ...), y (B, ...)] of Tensors

PyTorch's DataLoader takes one sample at a time (``dataset[i]``) and stacks a
minibatch of them with ``default_collate``; so does this one. Which rows go together is
decided by ``scratchnet.data``'s ``IndexBatches``, as for its own DataLoader. A data set
that can make a whole minibatch at once (``get_batch(indices)``: a TensorDataset, the
torchvision data sets) is asked for it instead: the same Tensors, without a Python loop
over the rows. ``num_workers`` is accepted and ignored: the batches are made in this
process.
"""
import collections.abc

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..data.loader import IndexBatches
from ..tensors import stack

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate"]


class Dataset:
    """A map-style data set: ``dataset[i]`` is one sample, ``len(dataset)`` their number
    (subclass it and define both, as in PyTorch)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} does not define __len__")


class TensorDataset(Dataset):
    """Samples cut from tensors along their first axis: ``dataset[i]`` is
    ``(t[i] for t in tensors)``, a tuple."""

    def __init__(self, *tensors):
        for i, t in enumerate(tensors):
            backend.refuse_torch("TensorDataset", f"tensor {i}", t)
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: expected Tensors, got a "
                                f"{type(t).__name__} as tensor {i} (make one with "
                                f"torch.tensor(...))")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; each tensor needs a "
                                 f"first axis to cut samples from")
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"TensorDataset: Size mismatch between tensors: their first "
                             f"axes have lengths {sizes}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def get_batch(self, indices):
        """``default_collate([self[i] for i in indices])`` made at once: each tensor's
        rows ``indices``, in that order."""
        if any(t.requires_grad for t in self.tensors):  # the slow way records on the tape
            return default_collate([self[int(i)] for i in indices])
        return [Tensor(t.array[backend.to_device(indices, t.device)]) for t in self.tensors]


def default_collate(batch):
    """A list of samples made into one minibatch, as PyTorch's default_collate does:
    Tensors and NumPy arrays are stacked along a new first axis, Python ints become an
    int64 Tensor and floats a float64 one, strings stay a list, and a tuple, list or dict
    of these is collated entry by entry (a tuple of samples gives a list)."""
    if not batch:
        raise ValueError("default_collate: expected a non-empty list of samples")
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(t.shape) for t in batch if isinstance(t, Tensor)}
        if len(shapes) > 1 or not all(isinstance(t, Tensor) for t in batch):
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal "
                               f"size, but got {sorted(shapes)}")
        return stack(batch)
    backend.refuse_torch("default_collate", "a sample", elem)
    if isinstance(elem, (np.ndarray, np.generic)) or backend.is_cupy_array(elem):
        if elem.dtype.kind not in "biufc":
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, "
                            f"numbers, dicts or lists; found an array of {elem.dtype}")
        return Tensor(backend.get_array_module(elem).stack(batch))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=bool))
    if isinstance(elem, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if len({len(sample) for sample in batch}) > 1:
            raise RuntimeError("default_collate: each element in list of batch should be "
                               "of equal size")
        return [default_collate(list(samples)) for samples in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(elem).__name__}")


class DataLoader(IndexBatches):
    """Minibatches of ``dataset``, as PyTorch's ``DataLoader(dataset, batch_size,
    shuffle=..., num_workers=..., collate_fn=..., drop_last=...)``: each one
    ``collate_fn([dataset[i] for i in a batch of indices])`` (``default_collate`` when
    none is given). ``shuffle`` draws a new order each epoch, from scratchnet's seed
    (``torch.manual_seed``) when the loader was made; the last batch is smaller unless
    ``drop_last``."""

    def __init__(self, dataset, batch_size=1, shuffle=False, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False):
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: expected a data set with __getitem__ and __len__ "
                            f"(a TensorDataset, say), got {type(dataset).__name__}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be a non-negative "
                             f"int, got {num_workers!r}")
        seed = int(backend.rng().integers(2 ** 63)) if shuffle else 0
        super().__init__(batch_size, bool(shuffle), bool(drop_last), seed)
        self.dataset = dataset
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory

    def num_samples(self):
        return len(self.dataset)

    def __iter__(self):
        whole = self.collate_fn is None and _makes_whole_batches(self.dataset)
        collate = self.collate_fn or default_collate
        for indices in self.index_batches():
            if whole:
                yield self.dataset.get_batch(indices)
            else:
                yield collate([self.dataset[int(i)] for i in indices])


def _makes_whole_batches(dataset):
    """Whether ``dataset.get_batch`` gives what its ``__getitem__`` and default_collate
    would: only when the class that defines ``__getitem__`` defines ``get_batch`` too (a
    subclass that changes ``__getitem__`` is read sample by sample)."""
    for cls in type(dataset).__mro__:
        if "__getitem__" in vars(cls):
            return "get_batch" in vars(cls)
    return False
