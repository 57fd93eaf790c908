"""PyTorch weight exchange and d2l's models written in PyTorch (for comparisons).

torch stays optional: it is imported only when one of these is called.
Parameter names are PyTorch's, so a scratchnet model and the same d2l model in
PyTorch have the same state_dict keys and shapes.
"""
import numpy as np

from . import backend


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("scratchnet.interop needs PyTorch: pip install -e \".[test]\"") from None
    return torch


def to_torch_state_dict(model):
    """The scratchnet model's parameters and buffers as a dict of torch tensors."""
    torch = _torch()
    return {k: torch.from_numpy(np.array(backend.to_numpy(v))) for k, v in
            model.state_dict().items()}


def load_into_torch(tmodel, model):
    """Copy a scratchnet model's weights into a torch model of the same architecture.

    The torch model's lazy layers must be materialised first (one forward pass).
    """
    ours = to_torch_state_dict(model)
    theirs = tmodel.state_dict()
    missing = sorted(set(theirs) - set(ours))
    unexpected = sorted(set(ours) - set(theirs))
    bad = [f"{k}: torch {tuple(theirs[k].shape)}, scratchnet {tuple(ours[k].shape)}"
           for k in set(ours) & set(theirs) if theirs[k].shape != ours[k].shape]
    if missing or unexpected or bad:
        raise ValueError(f"load_into_torch: architectures differ: missing {missing}, "
                         f"unexpected {unexpected}, mis-shaped {bad}")
    tmodel.load_state_dict({k: ours[k].to(theirs[k].dtype) for k in theirs})
    return tmodel


def from_torch_state_dict(model, tstate):
    """Load a torch state_dict (tensors) into a scratchnet model; keys must match."""
    state = {k: v.detach().cpu().numpy() for k, v in tstate.items()}
    return model.load_state_dict(state)


def torch_lenet(num_classes=10, modern=False):
    """d2l 7.6's LeNet in PyTorch (``net.*`` names, as scratchnet.models.LeNet)."""
    torch = _torch()
    nn = torch.nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            if not modern:
                self.net = nn.Sequential(
                    nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                    nn.AvgPool2d(kernel_size=2, stride=2),
                    nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
                    nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
                    nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(),
                    nn.LazyLinear(num_classes))
            else:
                self.net = nn.Sequential(
                    nn.LazyConv2d(6, kernel_size=5, padding=2), nn.LazyBatchNorm2d(), nn.ReLU(),
                    nn.MaxPool2d(kernel_size=2, stride=2),
                    nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(), nn.ReLU(),
                    nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
                    nn.LazyLinear(120), nn.BatchNorm1d(120), nn.ReLU(),
                    nn.LazyLinear(84), nn.BatchNorm1d(84), nn.ReLU(),
                    nn.LazyLinear(num_classes))

        def forward(self, x):
            return self.net(x)

    model = LeNet()
    with torch.no_grad():
        model.eval()(torch.zeros(2, 1, 28, 28))
    return model.train()
