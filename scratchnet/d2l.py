"""d2l 1.0's classes and helpers for chapters 2-8, on scratchnet: the book's cells run with

    import scratchnet as torch
    from scratchnet import nn
    from scratchnet.nn import functional as F
    from scratchnet import d2l

Same names, signatures and behaviour as ``d2l/torch.py``, in the book's order: 2.4's
plotting helpers (use_svg_display, set_figsize, set_axes, plot, and ``d2l.plt``,
matplotlib's pyplot, imported when first read); 3.2's HyperParameters, ProgressBoard,
Module, DataModule and Trainer; 3.3's SyntheticRegressionData; 3.4's
LinearRegressionScratch and SGD; 3.5's LinearRegression; 4.2's FashionMNIST and
show_images; 4.3's Classifier; 4.5's SoftmaxRegression; 5.7's download and extract; 6.7's
cpu, gpu, num_gpus, try_gpu and try_all_gpus; 7.2's corr2d, 7.6's init_cnn and LeNet,
8.6's Residual and ResNeXtBlock (scratchnet's models and blocks, with their own backward
and d2l's state_dict keys), and the tensor aliases. Each class says what differs. The
Trainer backpropagates by hand (``model.net.backward``) when the model is made of
scratchnet's layers, and through the autograd tape (``loss.backward()``) otherwise;
``trainer.backprop`` says which.
"""
import collections
import contextlib
import hashlib
import inspect
import os
import tarfile
import time
import zipfile

import numpy as np

from . import backend, cuda, models, nn, optim
from .device import device
from .models import Residual, ResNeXtBlock  # noqa: F401  (d2l 8.6's #@save blocks)
from .autograd import Tensor
from .nn import functional as F
from .data import DataLoader
from .data import FashionMNIST as _FashionMNIST
from .io import atomic_write
from .autograd import has_backward
from .tensors import (abs, arange, cat, eye, exp, float32, float64, int32, int64,  # noqa: F401,A004
                      linspace, log, matmul, normal, ones, ones_like, rand, randn, sigmoid,
                      stack, tanh, tensor, zeros, zeros_like)
from .train import output_kind, progress_bar, skipping_input_grad
from .utils import data as utils_data
from .viz import LiveFigure, jupyter_shell


def _raw(v):
    """The array inside a Tensor; anything else as it is."""
    return v.array if isinstance(v, Tensor) else v


def _floats(values):
    """Python floats of numbers, arrays and Tensors; GPU values are read in one transfer."""
    values = [_raw(v) for v in values]
    gpu = [v for v in values if backend.is_cupy_array(v)]
    read = iter(backend.to_numpy(backend.get_array_module(gpu[0]).stack(gpu)).tolist()
                if gpu else ())
    return [next(read) if backend.is_cupy_array(v) else float(v) for v in values]


DATA_HUB = dict()
DATA_URL = 'http://d2l-data.s3-accelerate.amazonaws.com/'
nn_Module = nn.Module


def use_svg_display():
    """Use the svg format to display a plot in Jupyter (outside Jupyter: nothing to do)."""
    if jupyter_shell() is not None:
        from matplotlib_inline import backend_inline
        backend_inline.set_matplotlib_formats('svg')


def set_figsize(figsize=(3.5, 2.5)):
    """Set the figure size for matplotlib."""
    use_svg_display()
    __getattr__('plt').rcParams['figure.figsize'] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend):
    """Set the axes for matplotlib."""
    axes.set_xlabel(xlabel), axes.set_ylabel(ylabel)
    axes.set_xscale(xscale), axes.set_yscale(yscale)
    axes.set_xlim(xlim), axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def _plottable(v):
    """A Tensor as matplotlib reads it: a NumPy array, cut from the tape (d2l's cells
    plot ``x.detach()``; a CuPy array comes to the host)."""
    return backend.to_numpy(v.detach().array) if isinstance(v, Tensor) else v


def plot(X, Y=None, xlabel=None, ylabel=None, legend=[], xlim=None,
         ylim=None, xscale='linear', yscale='linear',
         fmts=('-', 'm--', 'g-.', 'r:'), figsize=(3.5, 2.5), axes=None):
    """Plot data points (d2l's function: one or more curves on one set of axes)."""

    def has_one_axis(X):  # True if X (tensor or list) has 1 axis
        return (hasattr(X, "ndim") and X.ndim == 1 or isinstance(X, list)
                and not hasattr(X[0], "__len__"))

    if has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)

    set_figsize(figsize)
    if axes is None:
        axes = __getattr__('plt').gca()
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts):
        x, y = _plottable(x), _plottable(y)
        axes.plot(x, y, fmt) if len(x) else axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)


def add_to_class(Class):
    """Register functions as methods in created class."""
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
    return wrapper


class HyperParameters:
    """d2l.HyperParameters: ``save_hyperparameters()`` stores the caller's arguments."""

    def save_hyperparameters(self, ignore=[]):
        """Save function arguments into class attributes."""
        frame = inspect.currentframe().f_back
        _, _, _, local_vars = inspect.getargvalues(frame)
        self.hparams = {k: v for k, v in local_vars.items()
                        if k not in set(ignore + ['self']) and not k.startswith('_')}
        for k, v in self.hparams.items():
            setattr(self, k, v)


Point = collections.namedtuple('Point', ['x', 'y'])


class ProgressBoard(HyperParameters):
    """d2l.ProgressBoard: ``draw(x, y, label, every_n)`` adds the mean of every ``every_n``
    points to the line ``label``.

    Differs from d2l: in Jupyter the figure is redrawn in place; elsewhere it is saved as
    a PNG, to ``board.save_path`` or else ``<name>_progress.png`` (the Trainer names the
    board after the model: ``LeNet_progress.png``) in ``$SCRATCHNET_D2L_FIGURES`` or else
    the working directory. ``y`` may be a GPU value: it is read when the figure is
    drawn, at each new point, or once per epoch while a Trainer runs (``live = False``).
    """

    def __init__(self, xlabel=None, ylabel=None, xlim=None,
                 ylim=None, xscale='linear', yscale='linear',
                 ls=['-', '--', '-.', ':'], colors=['C0', 'C1', 'C2', 'C3'],
                 fig=None, axes=None, figsize=(3.5, 2.5), display=True):
        self.save_hyperparameters()
        self.save_path = None
        self.live = True
        self.raw_points = collections.OrderedDict()
        self.data = collections.OrderedDict()
        self._live = LiveFigure()

    def draw(self, x, y, label, every_n=1):
        points = self.raw_points.setdefault(label, [])
        line = self.data.setdefault(label, [])
        points.append(Point(x, _raw(y)))
        if len(points) != every_n:
            return
        mean = lambda v: sum(v) / len(v)  # noqa: E731 (d2l's line)
        line.append(Point(mean([p.x for p in points]), mean([p.y for p in points])))
        points.clear()
        if self.display and self.live:
            self.render()

    def render(self):
        """Draw every line now: in place in Jupyter, else into the PNG."""
        if not self.display or not self.data:
            return
        # A bare Figure draws with Agg: no window, pyplot's backend left alone.
        from matplotlib.figure import Figure
        ys = iter(_floats([p.y for line in self.data.values() for p in line]))
        for line in self.data.values():
            line[:] = [p._replace(y=next(ys)) for p in line]
        if self.fig is None:
            self.fig = Figure(figsize=self.figsize)
        axes = self.axes
        if axes is None:  # our own axes: redraw from scratch
            axes = self.fig.axes[0] if self.fig.axes else self.fig.add_subplot()
            axes.cla()
        plt_lines = [axes.plot([p.x for p in v], [p.y for p in v], linestyle=ls, color=color)[0]
                     for v, ls, color in zip(self.data.values(), self.ls, self.colors)]
        if self.xlim:
            axes.set_xlim(self.xlim)
        if self.ylim:
            axes.set_ylim(self.ylim)
        axes.set_xlabel(self.xlabel)
        axes.set_ylabel(self.ylabel)
        axes.set_xscale(self.xscale)
        axes.set_yscale(self.yscale)
        axes.legend(plt_lines, list(self.data))
        if jupyter_shell() is None:
            _save_png(self.fig, self.figure_path())
        else:  # redrawn in place: the Trainer's epoch lines above it stay
            self._live.show(self.fig)

    name = 'd2l'  # the Trainer names the board after the model: LeNet_progress.png

    def figure_path(self):
        if self.save_path:
            return os.fspath(self.save_path)
        return os.path.join(os.environ.get('SCRATCHNET_D2L_FIGURES') or '.',
                            f'{self.name}_progress.png')


def _save_png(fig, path):
    """Write the figure atomically, with a normal new file's permissions (io.atomic_write)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format='png'))


class Module(nn.Module, HyperParameters):
    """d2l.Module: a model (``self.net``) with its loss, steps, plots and optimizer.

    Differs from d2l: ``configure_optimizers`` gives ``scratchnet.optim.SGD``;
    ``apply_init``'s forward pass runs under ``no_grad`` (it keeps no caches); ``plot``
    keeps GPU values on the GPU and adds each to the Trainer's epoch sums.
    """

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        assert hasattr(self, 'net'), 'Neural network is defined'
        return self.net(X)

    def plot(self, key, value, train):
        """Plot a point in animation."""
        assert hasattr(self, 'trainer'), 'Trainer is not inited'
        self.board.xlabel = 'epoch'
        if train:
            x = self.trainer.train_batch_idx / self.trainer.num_train_batches
            n = self.trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = self.trainer.epoch + 1
            n = self.trainer.num_val_batches / self.plot_valid_per_epoch
        label = ('train_' if train else 'val_') + key
        if hasattr(self.trainer, 'record'):
            self.trainer.record(label, value)
        self.board.draw(x, _raw(value), label, every_n=max(1, int(n)))

    def training_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])  # noqa: E741
        self.plot('loss', l, train=True)
        return l

    def validation_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])  # noqa: E741
        self.plot('loss', l, train=False)

    def configure_optimizers(self):
        return optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None):
        with backend.no_grad():
            self.forward(*inputs)
        if init is not None:
            self.net.apply(init)


class Classifier(Module):
    """d2l.Classifier: cross-entropy loss, accuracy, and validation plots of both.

    Differs from d2l: ``accuracy`` computes on the arrays (a Tensor out, never on the tape).
    """

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot('loss', self.loss(Y_hat, batch[-1]), train=False)
        self.plot('acc', self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat, Y, averaged=True):
        """Compute the number of correct predictions."""
        Y_hat, Y = _raw(Y_hat), _raw(Y)
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        preds = Y_hat.argmax(axis=1).astype(Y.dtype)
        compare = (preds == Y.reshape(-1)).astype(np.float32)
        xp = backend.get_array_module(compare)
        return Tensor(xp.asarray(compare.mean()) if averaged else compare)

    def loss(self, Y_hat, Y, averaged=True):
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        Y = Y.reshape((-1,))
        return F.cross_entropy(Y_hat, Y, reduction='mean' if averaged else 'none')

    def layer_summary(self, X_shape):
        X = randn(*X_shape)
        for layer in self.net:
            X = layer(X)
            print(layer.__class__.__name__, 'output shape:\t', X.shape)


class DataModule(HyperParameters):
    """d2l.DataModule. Differs from d2l: ``root`` and ``num_workers`` are kept but unused
    (data sets are found as ``scratchnet.data`` finds them; loading runs in-process)."""

    def __init__(self, root='../data', num_workers=4):
        self.save_hyperparameters()

    def get_dataloader(self, train):
        raise NotImplementedError

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors, train, indices=slice(0, None)):
        """Batches of the rows ``indices`` of ``tensors`` (shuffled for training), as
        ``torch.utils.data.DataLoader`` over a ``TensorDataset`` gives them."""
        tensors = tuple(a[indices] for a in tensors)
        dataset = utils_data.TensorDataset(*tensors)
        return utils_data.DataLoader(dataset, self.batch_size, shuffle=train)


class SyntheticRegressionData(DataModule):
    """Synthetic data for linear regression: y = Xw + b + noise, X ~ N(0, 1)."""

    def __init__(self, w, b, noise=0.01, num_train=1000, num_val=1000,
                 batch_size=32):
        super().__init__()
        self.save_hyperparameters()
        n = num_train + num_val
        self.X = randn(n, len(w))
        noise = randn(n, 1) * noise
        self.y = matmul(self.X, reshape(w, (-1, 1))) + b + noise

    def get_dataloader(self, train):
        i = slice(0, self.num_train) if train else slice(self.num_train, None)
        return self.get_tensorloader((self.X, self.y), train, i)


class LinearRegressionScratch(Module):
    """The linear regression model implemented from scratch: ``w`` and ``b`` are leaf
    Tensors on the tape, their gradients filled by ``loss.backward()``."""

    def __init__(self, num_inputs, lr, sigma=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.w = normal(0, sigma, (num_inputs, 1), requires_grad=True)
        self.b = zeros(1, requires_grad=True)

    def forward(self, X):
        return matmul(X, self.w) + self.b

    def loss(self, y_hat, y):
        l = (y_hat - y) ** 2 / 2  # noqa: E741
        return reduce_mean(l)

    def configure_optimizers(self):
        return SGD([self.w, self.b], self.lr)


class SGD(HyperParameters):
    """Minibatch stochastic gradient descent, as 3.4 writes it: ``param -= lr * grad``
    in place (the Trainer's step runs under ``no_grad``)."""

    def __init__(self, params, lr):
        self.save_hyperparameters()

    def step(self):
        for param in self.params:
            param -= self.lr * param.grad

    def zero_grad(self):
        for param in self.params:
            if param.grad is not None:
                param.grad.zero_()


class LinearRegression(Module):
    """The linear regression model implemented with high-level APIs: a LazyLinear(1),
    mean squared error and ``optim.SGD``."""

    def __init__(self, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.LazyLinear(1)
        self.net.weight.data.normal_(0, 0.01)
        self.net.bias.data.fill_(0)

    def forward(self, X):
        return self.net(X)

    def loss(self, y_hat, y):
        fn = nn.MSELoss()
        return fn(y_hat, y)

    def configure_optimizers(self):
        return optim.SGD(self.parameters(), self.lr)

    def get_w_b(self):
        return (self.net.weight.data, self.net.bias.data)


class _TensorLoader:
    """A DataLoader whose batches come as (X, y) Tensors, as torch's do (no copy)."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:
            yield Tensor(X), Tensor(y)


class FashionMNIST(DataModule):
    """d2l.FashionMNIST: batches of (X (B, 1, h, w) in [0, 1], y (B,) int64) as Tensors on
    the active device, shuffled for training, bilinearly resized to ``resize``.

    Differs from d2l: images come in the default dtype (float32 unless
    ``scratchnet.set_default_dtype``); the environment variable
    ``SCRATCHNET_D2L_SUBSET=N`` keeps only the first N training and the first N test
    images (for quick runs and tests).
    """

    def __init__(self, batch_size=64, resize=(28, 28)):
        super().__init__()
        self.save_hyperparameters()
        self.train = _FashionMNIST(train=True)
        self.val = _FashionMNIST(train=False)
        subset = _env_count('SCRATCHNET_D2L_SUBSET', 'images')
        if subset:
            for ds in (self.train, self.val):
                ds.images, ds.labels = ds.images[:subset], ds.labels[:subset]

    def text_labels(self, indices):
        """Return text labels."""
        if isinstance(indices, Tensor) or hasattr(indices, 'dtype'):
            indices = backend.to_numpy(_raw(indices)).reshape(-1)
        return self.train.text_labels(indices)

    def get_dataloader(self, train):
        data = self.train if train else self.val
        return _TensorLoader(DataLoader(data, self.batch_size, shuffle=train,
                                        resize=self.resize,
                                        dtype=backend.get_default_dtype()))

    def visualize(self, batch, nrows=1, ncols=8, labels=[]):
        X, y = batch
        if not labels:
            labels = self.text_labels(y)
        show_images(X.squeeze(1), nrows, ncols, titles=labels)


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a list of images (the axes returned, as d2l's)."""
    figsize = (num_cols * scale, num_rows * scale)
    _, axes = __getattr__('plt').subplots(num_rows, num_cols, figsize=figsize)
    axes = np.asarray(axes).flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        ax.imshow(_plottable(img))
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    return axes


class SoftmaxRegression(Classifier):
    """The softmax regression model: Flatten, then LazyLinear(num_outputs)."""

    def __init__(self, num_outputs, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))

    def forward(self, X):
        return self.net(X)


def _route(model):
    """('manual', why) when the model is d2l's Classifier steps over layers that all have
    their own backward; ('tape', why) otherwise."""
    cls = type(model)
    for name, own in (('forward', Module.forward), ('loss', Classifier.loss),
                      ('training_step', Module.training_step)):
        if getattr(cls, name) is not own:
            return 'tape', f'{cls.__name__} defines its own {name}'
    if not isinstance(getattr(model, 'net', None), nn.Module):
        return 'tape', f'{cls.__name__}.net is not a scratchnet module'
    for m in model.net.modules():
        if type(m).forward is not nn.Module.forward and not has_backward(m):
            return 'tape', f'{type(m).__name__} defines forward but no backward'
    return 'manual', "every layer's own backward"


def _env_count(name, what):
    """The positive int in environment variable ``name``, or None when it is unset."""
    value = os.environ.get(name)
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive number of {what}, got {value!r}")
    return int(value)


class Trainer(HyperParameters):
    """d2l.Trainer: ``fit(model, data)`` trains for ``max_epochs`` with the model's optimizer.

    Differs from d2l: it prints one line per epoch (train loss, validation loss and
    accuracy, read from the device once per epoch) and keeps them in ``history``. With
    ``num_gpus > 0`` it trains on the GPU when CuPy sees one, else says so and uses the
    CPU. Backprop runs by hand (``model.net.backward``, no tape) when the model uses
    d2l's forward, loss and training_step and every layer has a backward; through the
    tape (``loss.backward()``) otherwise: ``trainer.backprop`` says which. The
    environment variable ``SCRATCHNET_D2L_MAX_EPOCHS=N`` caps ``max_epochs`` at N and
    says so (the notebook tests use it with ``SCRATCHNET_D2L_SUBSET``).
    """

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
        _cap = _env_count('SCRATCHNET_D2L_MAX_EPOCHS', 'epochs')
        if _cap is not None and _cap < max_epochs:
            print(f"d2l.Trainer: max_epochs={max_epochs} capped at {_cap} by "
                  "SCRATCHNET_D2L_MAX_EPOCHS")
            max_epochs = _cap
        self.save_hyperparameters()
        # d2l 6.7's: the GPUs asked for that exist (scratchnet has at most one).
        self.gpus = [gpu(i) for i in range(min(num_gpus, cuda.device_count()))]
        if num_gpus > 0 and not self.gpus:
            print(f"d2l.Trainer: num_gpus={num_gpus} but no GPU is visible to CuPy; "
                  "training on the CPU")
        self.backprop = None
        self.history = []

    def prepare_data(self, data):
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = (len(self.val_dataloader)
                                if self.val_dataloader is not None else 0)

    def prepare_model(self, model):
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        model.board.name = type(model).__name__
        if self.gpus:
            model.to(self.gpus[0])
        self.model = model
        self.backprop, self._why = _route(model)

    def fit(self, model, data):
        with backend.use_device(self.gpus[0] if self.gpus else backend.get_device()):
            self.prepare_data(data)
            self.prepare_model(model)
            self.optim = model.configure_optimizers()
            self.epoch = 0
            self.train_batch_idx = 0
            self.val_batch_idx = 0
            self._loss = nn.CrossEntropyLoss()
            # Nothing needs dL/d(images): manual backprop skips it as the Trainer does
            # (the tape skips it by itself: the images need no gradient).
            skip = skipping_input_grad(model) if self.backprop == 'manual' else \
                contextlib.nullcontext()
            model.board.live = False
            try:
                with skip:
                    for self.epoch in range(self.max_epochs):
                        self.fit_epoch()
            finally:
                model.board.live = True
            if model.board.display and jupyter_shell() is None and model.board.data:
                print(f'the curves: {model.board.figure_path()}')

    def fit_epoch(self):
        t0, self._sums = time.perf_counter(), {}
        self.model.train()
        # A bar within the epoch where someone watches it (Jupyter, a terminal), as
        # scratchnet's own Trainer shows; none when the output is piped.
        bar = progress_bar(output_kind(), iterable=self.train_dataloader,
                           total=self.num_train_batches, leave=False,
                           desc=f'epoch {self.epoch + 1}/{self.max_epochs}')
        for batch in bar:
            batch = self.prepare_batch(batch)
            if self.backprop == 'manual':
                self._manual_step(batch)
            else:
                loss = self.model.training_step(batch)
                self.optim.zero_grad()
                loss.backward()
            with backend.no_grad():  # d2l's: an optimizer of the book's writes in place
                if self.gradient_clip_val > 0:
                    self.clip_gradients(self.gradient_clip_val, self.model)
                self.optim.step()
            self.train_batch_idx += 1
        bar.close()
        if self.val_dataloader is not None:
            self.model.eval()
            with backend.no_grad():
                for batch in self.val_dataloader:
                    self._validation_step(self.prepare_batch(batch))
                    self.val_batch_idx += 1
        self._end_epoch(time.perf_counter() - t0)

    def _manual_step(self, batch):
        """d2l's training_step and loss.backward() without the tape: the layers' own
        forward and backward on the arrays."""
        (X, y), net = [_raw(a) for a in batch], self.model.net
        l = self._loss(net(X), y)  # noqa: E741
        self.model.plot('loss', l, train=True)
        self.optim.zero_grad()
        net.backward(self._loss.backward())

    def _validation_step(self, batch):
        cls = type(self.model)
        if not (self.backprop == 'manual' and cls.validation_step is Classifier.validation_step
                and cls.accuracy is Classifier.accuracy):
            return self.model.validation_step(batch)
        X, y = [_raw(a) for a in batch]
        Y_hat = self.model.net(X)
        self.model.plot('loss', self._loss(Y_hat, y), train=False)
        self.model.plot('acc', self.model.accuracy(Y_hat, y), train=False)

    def record(self, label, value):
        """Add a plotted value to this epoch's sums (on the device: no read). A
        ``fit_epoch`` of the book's own (3.4 writes one) keeps no sums: nothing to add."""
        if not hasattr(self, '_sums'):
            return
        total, n = self._sums.get(label, (0, 0))
        self._sums[label] = (total + _raw(value), n + 1)

    def _end_epoch(self, seconds):
        self._loss.check_labels()  # labels the GPU noted as out of range (manual route)
        F.check_labels()  # ... and on the tape route
        labels = list(self._sums)
        totals = _floats([self._sums[k][0] for k in labels])
        row = {'epoch': self.epoch + 1}
        row.update({k: t / self._sums[k][1] for k, t in zip(labels, totals)})
        self.history.append(row)
        line = ', '.join(f'{k.replace("_", " ")} {row[k]:.4f}' for k in labels)
        note = f' [{self.backprop} backprop: {self._why}]' if self.epoch == 0 else ''
        print(f'epoch {self.epoch + 1}/{self.max_epochs}: {line} ({seconds:.1f} s){note}')
        self.model.board.render()

    def prepare_batch(self, batch):
        # Tensor() puts arrays from the host on the active device (the GPU inside fit
        # with gpus); a Tensor is moved there as d2l's ``d2l.to(a, self.gpus[0])`` does.
        if self.gpus:
            return [a.to(self.gpus[0]) if isinstance(a, Tensor) else Tensor(a) for a in batch]
        return [a if isinstance(a, Tensor) else Tensor(a) for a in batch]

    def clip_gradients(self, grad_clip_val, model):
        """Scale all gradients by min(1, grad_clip_val / their global norm), on the device
        (d2l's ``if norm > grad_clip_val`` would read the norm at every step)."""
        params = [p for p in model.parameters() if p.grad_array is not None]
        if not params:
            return
        xp = backend.get_array_module(params[0].grad_array)
        norm = xp.sqrt(sum((p.grad_array ** 2).sum() for p in params))
        f = norm.dtype.type  # the scale in the gradients' dtype
        scale = xp.minimum(f(1), f(grad_clip_val) / xp.maximum(norm, np.finfo(f).tiny))
        for p in params:
            p.grad_array *= scale


def init_cnn(module):
    """Initialize weights for CNNs."""
    if type(module) == nn.Linear or type(module) == nn.Conv2d:
        nn.init.xavier_uniform_(module.weight)


def corr2d(X, K):
    """Compute 2D cross-correlation."""
    h, w = K.shape
    Y = zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = reduce_sum((X[i: i + h, j: j + w] * K))
    return Y


def cpu():
    """Get the CPU device."""
    return device('cpu')


def gpu(i=0):
    """Get a GPU device."""
    return device(f'cuda:{i}')


def num_gpus():
    """Get the number of available GPUs (scratchnet uses at most one: 0 or 1)."""
    return cuda.device_count()


def try_gpu(i=0):
    """Return gpu(i) if exists, otherwise return cpu()."""
    if num_gpus() >= i + 1:
        return gpu(i)
    return cpu()


def try_all_gpus():
    """Return all available GPUs, or [cpu(),] if no GPU exists."""
    return [gpu(i) for i in range(num_gpus())]


concat = cat  # d2l's names for the tensor functions (scratchnet/tensors.py)
numpy = lambda x, *args, **kwargs: x.detach().numpy(*args, **kwargs)  # noqa: E731
size = lambda x, *args, **kwargs: x.numel(*args, **kwargs)  # noqa: E731
reshape = lambda x, *args, **kwargs: x.reshape(*args, **kwargs)  # noqa: E731
to = lambda x, *args, **kwargs: x.to(*args, **kwargs)  # noqa: E731
reduce_sum = lambda x, *args, **kwargs: x.sum(*args, **kwargs)  # noqa: E731
argmax = lambda x, *args, **kwargs: x.argmax(*args, **kwargs)  # noqa: E731
astype = lambda x, *args, **kwargs: x.type(*args, **kwargs)  # noqa: E731


class LeNet(Classifier):
    """d2l 7.6's ``#@save`` LeNet: ``scratchnet.models.LeNet``'s layers (the same keys),
    as a d2l.Classifier whose optimizer takes ``lr``."""

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = models.LeNet(num_classes).net


transpose = lambda x, *args, **kwargs: x.t(*args, **kwargs)  # noqa: E731
reduce_mean = lambda x, *args, **kwargs: x.mean(*args, **kwargs)  # noqa: E731


def download(url, folder='../data', sha1_hash=None):
    """Download a file to folder and return the local filepath (a copy already there
    whose SHA-1 is ``sha1_hash`` is used as it is). Differs from d2l: the file is written
    whole or not at all, and a download whose SHA-1 differs from ``sha1_hash`` is an
    error (d2l keeps it)."""
    if not url.startswith('http'):
        url, sha1_hash = DATA_HUB[url]
    os.makedirs(folder, exist_ok=True)
    fname = os.path.join(folder, url.split('/')[-1])
    if os.path.exists(fname) and sha1_hash and _sha1(fname) == sha1_hash:
        return fname
    print(f'Downloading {fname} from {url}...')
    import requests
    r = requests.get(url, stream=True, verify=True, timeout=60)
    r.raise_for_status()
    content = r.content
    got = hashlib.sha1(content).hexdigest()
    if sha1_hash and got != sha1_hash:
        raise OSError(f"d2l.download: {url} has SHA-1 {got}, expected {sha1_hash}; "
                      f"nothing written to {fname}")
    atomic_write(fname, lambda f: f.write(content))
    return fname


def _sha1(fname):
    sha1 = hashlib.sha1()
    with open(fname, 'rb') as f:
        for block in iter(lambda: f.read(1048576), b''):
            sha1.update(block)
    return sha1.hexdigest()


def extract(filename, folder=None):
    """Extract a zip/tar file into folder (default: the file's own folder)."""
    base_dir = os.path.dirname(filename)
    _, ext = os.path.splitext(filename)
    assert ext in ('.zip', '.tar', '.gz'), 'Only support zip/tar files.'
    if ext == '.zip':
        fp = zipfile.ZipFile(filename, 'r')
    else:
        fp = tarfile.open(filename, 'r')
    if folder is None:
        folder = base_dir
    with fp:
        if isinstance(fp, tarfile.TarFile):
            fp.extractall(folder, filter='data')  # no paths outside folder, no devices
        else:
            fp.extractall(folder)


def __getattr__(name):
    """``d2l.plt`` is matplotlib's pyplot, imported when first read (scratchnet imports
    matplotlib only when it draws). A d2l name scratchnet lacks is named in the error."""
    if name == 'plt':
        from matplotlib import pyplot
        return pyplot
    if name.startswith('__'):
        raise AttributeError(name)
    raise AttributeError(f"d2l.{name} is not part of scratchnet.d2l (it covers chapters 2-8 "
                         f"of d2l 1.0)")
