"""DataLoader: minibatches of (images, labels) on the active device.

Images are scaled to [0, 1] float32 (d2l's ``ToTensor``) and, with
``resize=(h, w)``, bilinearly resized per batch, so 60000 images at 224x224
are never held at once (that would be 12 GB in float32).
"""
import math

import numpy as np

from .. import backend


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


class DataLoader:
    """Iterate over (X, y) minibatches of a dataset with ``images`` and ``labels``.

    X: float32 (B, 1, H, W) in [0, 1] on the active device; y: int64 (B,).
    Shuffling draws a permutation (without replacement) from ``seed`` and the
    epoch number, so every epoch differs and a rerun repeats them all.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, drop_last=False, resize=None,
                 seed=0, dtype=np.float32, subset=None, device=None):
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}")
        self.images = dataset.images
        self.labels = dataset.labels
        if subset is not None:
            self.images, self.labels = self.images[:subset], self.labels[:subset]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.resize = None if resize is None else tuple(resize)
        self.seed = seed
        self.dtype = np.dtype(dtype)
        self.device = device
        self.epoch = 0

    def __len__(self):
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch):
        n = len(self.labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng((self.seed, epoch)).permutation(n)

    def __iter__(self):
        idx = self.order(self.epoch)
        self.epoch += 1
        xp = backend.device_module(self.device)
        scale = self.dtype.type(1.0 / 255)
        for b in range(len(self)):
            sel = idx[b * self.batch_size:(b + 1) * self.batch_size]
            # Sorted indices read memory in order; the batch's order does not matter.
            sel = np.sort(sel)
            X = xp.asarray(self.images[sel])[:, None].astype(self.dtype) * scale
            if self.resize is not None:
                X = resize_bilinear(X, self.resize)
            yield X, xp.asarray(self.labels[sel])
