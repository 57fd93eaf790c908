"""torch.utils: only ``torch.utils.data`` (Dataset, TensorDataset, DataLoader)."""
from . import data

__all__ = ["data"]


def __getattr__(name):
    """A torch.utils name scratchnet lacks says so in one line."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torch.utils.{name} is not part of scratchnet (its torch.utils "
                         f"has data only: Dataset, TensorDataset, DataLoader)")
