"""PyTorch weight exchange and d2l's models written in PyTorch (for comparisons).

torch stays optional: it is imported only when one of these is called.
Parameter names are PyTorch's, so a scratchnet model and the same d2l model in
PyTorch have the same state_dict keys and shapes. ``torch_book`` runs the book's own
PyTorch cells (chapter 8's classes, as d2l-en writes them) against a small torch-side
stand-in for the d2l library.
"""
import ast
import functools
import types

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
    """Load a torch state_dict (tensors) into a scratchnet model of the same architecture.

    Every key is checked first: missing, unexpected and mis-shaped entries are all
    listed in one ValueError and nothing is changed.
    """
    state = {k: v.detach().cpu().numpy() for k, v in tstate.items()}
    return model.load_state_dict(state)


def load_from_torch(model, tmodel):
    """Copy a torch model's weights into the scratchnet model of the same architecture."""
    return from_torch_state_dict(model, tmodel.state_dict())


def _d2l_torch_models():
    """The notebook's PyTorch classes, defined on first use so torch stays optional."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Residual(nn.Module):
        """d2l 8.6.2, verbatim (F.relu: no modules, so the keys match scratchnet's)."""

        def __init__(self, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) \
                if use_1x1conv else None
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)

    class Net(nn.Module):
        """d2l's Classifier without the training glue: the layers live in self.net."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, X):
            return self.net(X)

    return torch, nn, Residual, Net


def _materialized(model, in_shape):
    torch = _torch()
    with torch.no_grad():
        model.eval()(torch.zeros(*in_shape))
    return model.train()


def torch_lenet(num_classes=10, modern=False):
    """d2l 7.6's LeNet in PyTorch (``net.*`` names, as scratchnet.models.LeNet)."""
    torch, nn, _, Net = _d2l_torch_models()
    if not modern:
        net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))
    else:
        net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
            nn.LazyLinear(120), nn.BatchNorm1d(120), nn.ReLU(),
            nn.LazyLinear(84), nn.BatchNorm1d(84), nn.ReLU(),
            nn.LazyLinear(num_classes))
    return _materialized(Net(net), (2, 1, 28, 28))


def torch_vgg(arch, num_classes=10, in_shape=(2, 1, 224, 224)):
    """d2l 8.2's VGG in PyTorch, materialised for inputs of ``in_shape``."""
    torch, nn, _, Net = _d2l_torch_models()

    def vgg_block(num_convs, out_channels):
        layers = []
        for _ in range(num_convs):
            layers += [nn.LazyConv2d(out_channels, kernel_size=3, padding=1), nn.ReLU()]
        return nn.Sequential(*layers, nn.MaxPool2d(kernel_size=2, stride=2))

    net = nn.Sequential(
        *[vgg_block(*b) for b in arch], nn.Flatten(),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(num_classes))
    return _materialized(Net(net), in_shape)


def torch_residual(num_channels, use_1x1conv=False, strides=1):
    """d2l 8.6.2's Residual block in PyTorch (lazy: materialised by its first call)."""
    return _d2l_torch_models()[2](num_channels, use_1x1conv, strides)


def torch_resnext_block(num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
    """d2l 8.6.5's ResNeXtBlock in PyTorch (lazy: materialised by its first call)."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class ResNeXtBlock(nn.Module):
        """d2l 8.6.5, verbatim."""

        def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
            super().__init__()
            bot_channels = int(round(num_channels * bot_mul))
            self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
            self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3, stride=strides,
                                       padding=1, groups=bot_channels // groups)
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()
            self.bn3 = nn.LazyBatchNorm2d()
            if use_1x1conv:
                self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
                self.bn4 = nn.LazyBatchNorm2d()
            else:
                self.conv4 = None

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = F.relu(self.bn2(self.conv2(Y)))
            Y = self.bn3(self.conv3(Y))
            if self.conv4:
                X = self.bn4(self.conv4(X))
            return F.relu(Y + X)

    return ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv, strides)


def torch_resnet(arch, num_classes=10, in_shape=(2, 1, 96, 96)):
    """d2l 8.6's ResNet in PyTorch (b1 stem, stages b2.., 'last'), materialised."""
    torch, nn, Residual, Net = _d2l_torch_models()
    net = nn.Sequential(nn.Sequential(
        nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
        nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
    for i, (num_residuals, num_channels) in enumerate(arch):
        net.add_module(f"b{i + 2}", nn.Sequential(*[
            Residual(num_channels, use_1x1conv=True, strides=2) if j == 0 and i > 0
            else Residual(num_channels) for j in range(num_residuals)]))
    net.add_module("last", nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))
    return _materialized(Net(net), in_shape)


def torch_resnet18(num_classes=10, in_shape=(2, 1, 96, 96)):
    return torch_resnet(((2, 64), (2, 128), (2, 256), (2, 512)), num_classes, in_shape)


# ---- the book's own PyTorch classes -----------------------------------------------------

# The d2l library's names that a section's cells use and an earlier section defines
# (d2l 1.0.3 holds them): cnn-design.md's AnyNet builds resnet.md's ResNeXtBlock.
BOOK_NEEDS = {"cnn-design": {"ResNeXtBlock": "resnet"}}


def book_definitions(cells):
    """The cells that only define (functions and classes, ``@d2l.add_to_class`` methods
    among them); the cells that run something (shapes, summaries, training) and IPython
    magics are left out."""
    for cell in cells:
        try:
            body = ast.parse(cell).body
        except SyntaxError:  # IPython magics
            continue
        if body and all(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in body):
            yield cell


def _book_d2l():
    """The minimum of d2l 1.0.3 (torch) the chapters' model classes use: Classifier as a
    torch.nn.Module whose layers live in ``self.net`` (no training glue), init_cnn and
    add_to_class."""
    torch = _torch()

    class Classifier(torch.nn.Module):
        """d2l.Classifier without the training glue: its layers live in ``self.net``."""

        def save_hyperparameters(self, *args, **kwargs):
            pass

        def forward(self, X):
            return self.net(X)

    def init_cnn(module):  # d2l 1.0.3's
        if type(module) == torch.nn.Linear or type(module) == torch.nn.Conv2d:  # noqa: E721
            torch.nn.init.xavier_uniform_(module.weight)

    def add_to_class(Class):  # d2l 1.0.3's
        def wrapper(obj):
            setattr(Class, obj.__name__, obj)
        return wrapper

    return types.SimpleNamespace(Classifier=Classifier, init_cnn=init_cnn,
                                 add_to_class=add_to_class)


@functools.lru_cache(maxsize=None)
def torch_book(section, cells_of, namespace=dict):
    """The names the PyTorch cells of d2l-en's ``section`` ("googlenet") define, run as
    one notebook would, with real torch: ``book_definitions(cells_of(section))`` executed
    in ``namespace()`` (a fresh dict; tests/chaptercells.py's ``namespace`` supplies the
    ``tab`` its cells ask), holding torch, nn, F and a d2l that is ``_book_d2l()`` plus
    what BOOK_NEEDS takes from earlier sections. ``cells_of``: tests/chaptercells.py's
    ``pytorch_cells``, which reads the book's markdown. One namespace per section and
    arguments (cached): ``torch_book("nin", ...)["NiN"]()`` is the book's NiN."""
    torch = _torch()
    d2l = _book_d2l()
    for name, other in BOOK_NEEDS.get(section, {}).items():
        setattr(d2l, name, torch_book(other, cells_of, namespace)[name])
    ns = namespace()
    ns.update(torch=torch, nn=torch.nn, F=torch.nn.functional, d2l=d2l)
    for cell in book_definitions(cells_of(section)):
        exec(compile(cell, f"<d2l-en {section}.md>", "exec"), ns)
    return ns
