"""``torch.distributions.multinomial.Multinomial``: counts of ``total_count`` draws
among ``k`` categories (the last axis of ``probs``), as d2l's coin tosses and die rolls."""
import numbers

import numpy as np

from .. import backend
from ..autograd import Tensor, shares


class Multinomial:
    """``Multinomial(total_count, probs)`` (or ``logits=``): ``sample()`` counts how many
    of ``total_count`` independent draws fell in each category.

    As PyTorch's, ``probs`` need not sum to one (it is divided by its sum over the last
    axis; its leading axes are a batch of distributions), a sample has the dtype of
    ``probs`` (float32 counts: ``tensor([53., 47.])``) and ``sample((n,))`` stacks n
    samples in front. Underneath, NumPy's ``Generator.multinomial`` draws from
    scratchnet's generator, so ``sn.manual_seed`` repeats a sample on any device.
    """

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Multinomial: Either `probs` or `logits` must be specified, "
                             "but not both.")
        given = probs if probs is not None else logits
        if not isinstance(given, Tensor):
            raise TypeError(f"Multinomial: expected probs (or logits) as a tensor, got "
                            f"{type(given).__name__} (make it with torch.tensor(...))")
        if given.ndim < 1:
            raise ValueError(f"Multinomial: `{'probs' if probs is not None else 'logits'}` "
                             "parameter must be at least one-dimensional.")
        if not isinstance(total_count, numbers.Integral) or isinstance(total_count, bool):
            raise NotImplementedError(f"Multinomial: inhomogeneous total_count is not "
                                      f"supported (total_count is one int, got "
                                      f"{total_count!r})")
        if total_count < 0:
            raise ValueError(f"Multinomial: total_count must be >= 0, got {total_count}")
        a = given.array
        xp = backend.get_array_module(a)
        if a.dtype.kind not in "fc":
            a = a.astype(backend.get_default_dtype())
        if probs is not None:
            with np.errstate(invalid="ignore", divide="ignore"):  # all zeros: nan, refused below
                p = a / a.sum(axis=-1, keepdims=True)
        else:  # softmax over the last axis
            e = xp.exp(a - a.max(axis=-1, keepdims=True))
            p = e / e.sum(axis=-1, keepdims=True)
        if validate_args is not False:
            ok = (p >= 0).all() and bool((xp.abs(p.sum(axis=-1) - 1) < 1e-6).all()) \
                if p.size else False
            if not ok:
                raise ValueError(f"Multinomial: Expected parameter probs (Tensor of shape "
                                 f"{tuple(p.shape)}) to satisfy the constraint Simplex(), "
                                 f"but found invalid values:\n{shares(p)!r}")
        self.total_count = int(total_count)
        self.probs = shares(p)
        self.batch_shape = self.probs.shape[:-1]
        self.event_shape = self.probs.shape[-1:]

    @property
    def mean(self):
        """n p: the expected count of each category."""
        return self.probs * self.total_count

    @property
    def variance(self):
        """n p (1 - p)."""
        return self.probs * (1 - self.probs) * self.total_count

    def sample(self, sample_shape=()):
        """Counts of shape ``sample_shape + batch_shape + (k,)`` in the dtype of probs;
        each row sums to total_count."""
        if not isinstance(sample_shape, (tuple, list)) or not all(
                isinstance(s, numbers.Integral) and s >= 0 for s in sample_shape):
            raise TypeError(f"Multinomial.sample: sample_shape is a tuple of sizes, e.g. "
                            f"(10000,), got {sample_shape!r}")
        if self.total_count <= 0:
            raise RuntimeError("Multinomial.sample: cannot sample n_sample <= 0 samples "
                               f"(total_count is {self.total_count})")
        p = backend.to_numpy(self.probs.array).astype(np.float64)
        p /= p.sum(axis=-1, keepdims=True)  # numpy asks for sums of one in float64
        shape = tuple(int(s) for s in sample_shape) + tuple(self.batch_shape)
        counts = backend.rng().multinomial(self.total_count, p, size=shape)
        counts = counts.astype(self.probs.dtype)
        return shares(backend.to_device(counts, backend.device_of(self.probs.array)))

    def __repr__(self):
        return f"Multinomial(total_count: {self.total_count}, probs: {self.probs.shape})"
