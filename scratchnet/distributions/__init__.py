"""Probability distributions under PyTorch's names (``torch.distributions``), as d2l's
chapter 2.6 uses them:

    from scratchnet.distributions.multinomial import Multinomial
    Multinomial(100, torch.tensor([0.5, 0.5])).sample()     # counts, e.g. tensor([53., 47.])

Samples come from scratchnet's seeded host generator (``sn.manual_seed``) and are put on
the probabilities' device. This floor sits above the tape and the tensor functions.
"""
from . import multinomial
from .multinomial import Multinomial

__all__ = ["Multinomial", "multinomial"]
