"""torchvision, the part d2l's chapters use: ``datasets.FashionMNIST`` (and MNIST) and
``transforms.Compose``, ``Resize``, ``ToTensor``.

A package, as torchvision is, so that the book's imports keep their shape:
``import torchvision`` becomes ``from scratchnet import torchvision`` and
``from torchvision import transforms`` becomes ``from scratchnet.torchvision import
transforms`` (``python -m scratchnet.port`` makes both changes).
"""
from . import datasets, transforms

__all__ = ["datasets", "transforms"]


def __getattr__(name):
    """A torchvision name scratchnet lacks says so in one line."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torchvision.{name} is not part of scratchnet (its torchvision "
                         f"has datasets.FashionMNIST, datasets.MNIST and transforms.Compose, "
                         f"Resize, ToTensor)")
