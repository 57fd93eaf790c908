"""DataLoader: minibatches of (images, labels), or of any arrays (X, y), on the active
device.

A data set's images are scaled to [0, 1] float32 (d2l's ``ToTensor``) and, with
``resize=(h, w)``, bilinearly resized per batch, so 60000 images at 224x224
are never held at once (that would be 12 GB in float32).
"""
import math
import numbers

import numpy as np

from .. import backend
from ..backend import refuse_torch


def resize_bilinear(x, size):
    """x: (N, C, H, W) -> (N, C, h, w), bilinear with half-pixel centres
    (PyTorch's ``interpolate(mode="bilinear", align_corners=False)``, antialias off)."""
    xp = backend.get_array_module(x)
    n, c, H, W = x.shape
    h, w = size
    if (h, w) == (H, W):
        return x

    def axis(out, inp):
        scale = inp / out
        src = (xp.arange(out, dtype=np.float64) + 0.5) * scale - 0.5
        src = xp.maximum(src, 0.0)
        i0 = xp.minimum(xp.floor(src).astype(np.int64), inp - 1)
        i1 = xp.minimum(i0 + 1, inp - 1)
        frac = (src - i0).astype(x.dtype)
        return i0, i1, frac

    y0, y1, fy = axis(h, H)
    x0, x1, fx = axis(w, W)
    rows = x[:, :, y0, :] * (1 - fy)[:, None] + x[:, :, y1, :] * fy[:, None]
    return rows[:, :, :, x0] * (1 - fx) + rows[:, :, :, x1] * fx


class IndexBatches:
    """Which rows go together: the row indices of each minibatch, epoch after epoch.

    In order, or (``shuffle``) in a permutation drawn without replacement from ``seed``
    and the epoch number, so every epoch differs and a rerun repeats them all (what
    PyTorch's BatchSampler over a sequential or random sampler decides). The DataLoader
    below and torch.utils.data's (scratchnet/utils/data.py) batch on it; a subclass says
    how many rows there are (``num_samples``) and how a batch of them is made.
    """

    def __init__(self, batch_size, shuffle=False, drop_last=False, seed=0):
        name = type(self).__name__
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
            raise TypeError(f"{name}: batch_size must be a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"{name}: batch_size must be a positive int, got {batch_size}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def num_samples(self):
        raise NotImplementedError(f"{type(self).__name__} does not define num_samples")

    def __len__(self):
        n = self.num_samples()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch):
        n = self.num_samples()
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng((self.seed, epoch)).permutation(n)

    def index_batches(self):
        """The host index array of each minibatch of the next epoch (each call is one)."""
        idx = self.order(self.epoch)
        self.epoch += 1
        for b in range(len(self)):
            yield idx[b * self.batch_size:(b + 1) * self.batch_size]


class DataLoader(IndexBatches):
    """Iterate over (X, y) minibatches, on the active device (or ``device``), of:

    - an image data set with ``images`` (N, H, W) uint8 and ``labels`` (N,) (FashionMNIST):
      X float32 (B, 1, H, W) scaled to [0, 1] (``dtype`` changes the float type), y (B,);
    - a tuple ``(X, y)`` of arrays (or array-likes) of equal length, as d2l's
      ``load_array((features, labels), batch_size)`` takes them, or a sequence of
      ``(x, y)`` pairs (a list, a data set indexed by position): the batches hold them as
      given (PyTorch's TensorDataset), cast to ``dtype`` only when one is given.

    Shuffling draws a permutation (without replacement) from ``seed`` and the
    epoch number, so every epoch differs and a rerun repeats them all (IndexBatches).
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, drop_last=False, resize=None,
                 seed=0, dtype=None, subset=None, device=None):
        super().__init__(batch_size, shuffle, drop_last, seed)
        # Images of a data set are scaled to [0, 1]; arrays are batched as they are.
        self.scaled = hasattr(dataset, "images") and hasattr(dataset, "labels")
        if self.scaled:
            self.images, self.labels = dataset.images, dataset.labels
        else:
            self.images, self.labels = _as_arrays(dataset)
        if resize is not None and not self.scaled and (
                self.images.ndim != 4 or self.images.dtype.kind != "f"):
            raise ValueError(f"DataLoader: resize needs floating-point images (N, C, H, W), "
                             f"got X of shape {tuple(self.images.shape)} and dtype "
                             f"{self.images.dtype}")
        if subset is not None:
            self.images, self.labels = self.images[:subset], self.labels[:subset]
        self.resize = None if resize is None else tuple(resize)
        if dtype is None:
            self.dtype = np.dtype(np.float32) if self.scaled else None
        else:
            self.dtype = np.dtype(dtype)
        self.device = device

    def num_samples(self):
        return len(self.labels)

    def __iter__(self):
        for sel in self.index_batches():
            # Sorted indices read memory in order; the batch's order does not matter.
            sel = np.sort(sel)
            X, y = _rows(self.images, sel, self.device), _rows(self.labels, sel, self.device)
            if self.scaled:
                X = X[:, None].astype(self.dtype) * self.dtype.type(1.0 / 255)
            elif self.dtype is not None:
                X = X.astype(self.dtype, copy=False)
            if self.resize is not None:
                X = resize_bilinear(X, self.resize)
            yield X, y


def _rows(a, sel, device):
    """The rows ``sel`` (host indices) of ``a`` (a host or device array) on ``device``
    (None: the active one)."""
    return backend.to_device(a[backend.to_device(sel, backend.device_of(a))], device)


def _as_arrays(data):
    """(X, y) of a tuple (X, y) of arrays or of a sequence of (x, y) pairs; X and y keep
    the values' dtypes (NumPy's for Python numbers). Anything else is refused."""
    accepted = ("DataLoader: expected a data set with .images and .labels, a tuple (X, y) "
                "of arrays of equal length, or a sequence of (x, y) pairs")
    refuse_torch("DataLoader", "the data", data, tape=False)
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(f"{accepted}; got {type(data).__name__}")
    if isinstance(data, tuple) and len(data) == 2 and not all(
            isinstance(d, tuple) and len(d) == 2 for d in data):  # not two (x, y) pairs
        X, y = data
    else:
        X, y = _stack_pairs(data, accepted)
    refuse_torch("DataLoader", "X", X, tape=False)
    refuse_torch("DataLoader", "y", y, tape=False)
    X, y = (a if hasattr(a, "shape") and hasattr(a, "dtype") else np.asarray(a)
            for a in (X, y))
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{accepted}; got X of shape {tuple(X.shape)} and y of shape "
                         f"{tuple(y.shape)}")
    if len(X) != len(y):
        raise ValueError(f"DataLoader: X and y must have the same length along axis 0, got "
                         f"{len(X)} and {len(y)}")
    return X, y


def _stack_pairs(data, accepted):
    """The x and the y of every pair of ``data``, each stacked into one array (PyTorch's
    default_collate does so per batch), on the first x's device."""
    pairs = [data[i] for i in range(len(data))]
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"{accepted}; got a {type(data).__name__} whose item {i} is not "
                            f"an (x, y) pair but {type(pair).__name__}")
        refuse_torch("DataLoader", f"the x of pair {i}", pair[0], tape=False)
        refuse_torch("DataLoader", f"the y of pair {i}", pair[1], tape=False)
    if not pairs:
        return np.empty((0,)), np.empty((0,))
    xp = backend.get_array_module(pairs[0][0])
    try:
        return (xp.stack([xp.asarray(x) for x, _ in pairs]),
                xp.stack([xp.asarray(y) for _, y in pairs]))
    except ValueError as e:
        raise ValueError(f"DataLoader: the x (and the y) of every pair must have one shape: "
                         f"{e}") from None
