"""Trainer: d2l's fit loop in NumPy, with history, plots and checkpoints.

    trainer = Trainer(max_epochs=10, out="runs/lenet")
    history = trainer.fit(model, train_iter, val_iter, optimizer)

Per epoch it records train loss and accuracy, validation loss and accuracy and
images/s; writes ``history.json`` and ``history.csv``, a PNG of the curves
(d2l's board) and ``checkpoint.npz`` (model, optimizer, epoch, RNG state), all
atomically. ``fit(..., resume=True)`` continues from that checkpoint and, on
the CPU, reaches bit-identical weights to an uninterrupted run. A non-finite
loss, validation loss or weight raises NonFiniteLossError before anything of
that epoch is written, so the checkpoint on disk stays the last good one.

Output: one line per epoch. A progress bar is drawn only where someone watches it: in
a terminal (tqdm's text bar) and in Jupyter (tqdm's notebook bar, and the curves
redrawn under the cell each epoch); piped to a file or in CI there is no bar.

Gradient flow: ``Trainer(grad_norms_every=N)`` records, every N steps (step 0,
N, 2N, ... counted over all epochs), the norm of each layer's weight gradient
(Conv and Linear layers, the gradient of that step's batch, before the update)
in ``trainer.grad_norms``: ``[{"step": 0, "net.0": 0.012, ...}, ...]``, keyed
by module path; written to ``grad_norms.json`` and, by
:func:`scratchnet.viz.plot_grad_norms`, ``grad_norms.png``.
"""
import contextlib
import csv
import io as _io
import json
import math
import os
import pathlib
import time

import numpy as np
import importlib.util
import sys

from tqdm import tqdm as terminal_bar

from . import backend
from .io import atomic_write_text, load, save, undo_new_folders
from .nn.loss import CrossEntropyLoss
from .nn.module import Sequential
from .viz import LiveFigure, history_figure, jupyter_shell, plot_grad_norms, plot_history


def output_kind(stream=None):
    """Where the run's output goes: "jupyter" (a notebook kernel), "terminal" (a TTY),
    or "pipe" (a file, CI, nohup): the Trainer shows a progress bar only to someone
    watching, so a piped run logs one line per epoch."""
    if jupyter_shell() is not None:
        return "jupyter"
    stream = sys.stderr if stream is None else stream  # tqdm draws on stderr
    isatty = getattr(stream, "isatty", None)
    return "terminal" if isatty is not None and isatty() else "pipe"


def progress_bar(kind, **kwargs):
    """tqdm's bar for ``kind`` (see :func:`output_kind`): the notebook widget in Jupyter
    (when ipywidgets is installed: ``pip install -e ".[notebook]"``), the text bar in a
    terminal, none in a pipe, nor anywhere under SCRATCHNET_PROGRESS=0 (notebooks/build.py
    sets it: a stored notebook keeps no bars)."""
    if os.environ.get("SCRATCHNET_PROGRESS") == "0":
        kind = "pipe"
    if kind == "jupyter" and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as notebook_bar
        return notebook_bar(**kwargs)
    hidden = kwargs.pop("disable", False) or kind == "pipe"
    return terminal_bar(**kwargs, disable=hidden)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped."""


def first_layer(model):
    """The layer that sees the input, when it can skip dL/dx (Conv2d, Linear), else None.

    Nothing consumes the gradient with respect to the images, so the Trainer
    lets that layer skip it (PyTorch skips it too: the input needs no grad).
    Follows ``model.net`` and the first child of each Sequential.
    """
    m = model
    while True:
        if hasattr(m, "needs_input_grad"):
            return m
        if hasattr(m, "net"):
            m = m.net
        elif isinstance(m, Sequential) and len(m):
            m = m[0]
        else:
            return None


@contextlib.contextmanager
def skipping_input_grad(model):
    """Inside the block, the model's :func:`first_layer` skips dL/dx; after it, the layer
    is as it was (errors included)."""
    first = first_layer(model)
    previous = first is not None and first.needs_input_grad
    if first is not None:
        first.needs_input_grad = False
    try:
        yield first
    finally:
        if first is not None:
            first.needs_input_grad = previous


class EpochSums:
    """The loss sum, correct count and image count of an epoch.

    The sums stay where the logits are: on the GPU they are device arrays, and
    reading them (:meth:`read`) waits for the GPU (a host sync), so a loop reads
    them only when it shows them, not at every step.
    """

    def __init__(self):
        self.loss = 0.0
        self.correct = 0
        self.n = 0

    def add(self, loss, logits, y):
        xp = backend.get_array_module(logits)
        # float64 sums, as when each loss was read as a Python float
        self.loss = self.loss + xp.asarray(loss, dtype=np.float64) * len(y)
        self.correct = self.correct + (logits.argmax(axis=1) == y).sum()
        self.n += len(y)

    def read(self):
        """(mean loss, accuracy) as Python floats."""
        n = max(self.n, 1)
        return float(self.loss) / n, int(self.correct) / n


def _check_labels(loss_fn):
    """Report labels the loss found out of range on the GPU since the last read."""
    check = getattr(loss_fn, "check_labels", None)
    if check is not None:
        check()


def evaluate(model, data_iter, loss_fn=None):
    """Mean loss and accuracy of ``model`` over ``data_iter``, in eval mode, without caches.
    Reads the device once, at the end."""
    loss_fn = loss_fn or CrossEntropyLoss()
    was_training = model.training
    model.eval()
    sums = EpochSums()
    try:
        with backend.no_grad():
            for X, y in data_iter:
                logits = model(X)
                sums.add(loss_fn(logits, y), logits, y)
        _check_labels(loss_fn)
    finally:
        model.train(was_training)
    return sums.read()


class Trainer:
    # On the GPU the running loss is read (a host sync) at most this often, in seconds.
    read_every = 0.5

    def __init__(self, max_epochs=10, out=None, progress=True, checkpoint=True,
                 loss_fn=None, log=print, grad_norms_every=None, live_plot=True):
        self.max_epochs = int(max_epochs)
        if grad_norms_every is not None and (isinstance(grad_norms_every, bool) or
                                             int(grad_norms_every) != grad_norms_every or
                                             grad_norms_every < 1):
            raise ValueError(f"Trainer: grad_norms_every must be a positive int or None, got "
                             f"{grad_norms_every!r}")
        self.grad_norms_every = None if grad_norms_every is None else int(grad_norms_every)
        self.grad_norms = []
        self.global_step = 0
        self.out = None if out is None else pathlib.Path(out)
        self.progress = progress
        # In Jupyter the loss and accuracy curves are redrawn under the cell each epoch.
        self.live_plot = live_plot
        self._live = LiveFigure()
        self.checkpoint = checkpoint
        self.loss_fn = loss_fn or CrossEntropyLoss()
        self.log = log or (lambda *a, **k: None)
        self.history = []

    @property
    def checkpoint_path(self):
        return None if self.out is None else self.out / "checkpoint.npz"

    def fit(self, model, train_iter, val_iter=None, optimizer=None, resume=False,
            scheduler=None):
        """Train for max_epochs; ``scheduler`` (e.g. optim.CosineAnnealingLR) steps per epoch."""
        if optimizer is None:
            raise ValueError("Trainer.fit: expected an optimizer, e.g. "
                             "sn.optim.SGD(model.parameters(), lr=0.1)")
        # Only a checkpoint this fit loaded or wrote is "good": not one left by an older run.
        self._good_checkpoint = None
        start = 0
        with undo_new_folders(self.out):  # a diverged run, Ctrl-C: no empty --out left
            if self.out is not None:
                self.out.mkdir(parents=True, exist_ok=True)
            if resume:
                start = self._resume(model, optimizer, scheduler)
            with skipping_input_grad(model):
                self._fit_epochs(model, train_iter, val_iter, optimizer, scheduler, start)
        if self.out is not None and self.history:
            self.plot(self.out / "curves.png")
        if self.out is not None and self.grad_norms:
            plot_grad_norms(self.grad_norms, self.out / "grad_norms.png",
                            labels=weight_layer_labels(model))
        return self.history

    def _fit_epochs(self, model, train_iter, val_iter, optimizer, scheduler, start):
        for epoch in range(start, self.max_epochs):
            if hasattr(train_iter, "epoch"):
                train_iter.epoch = epoch  # the shuffle order depends on the epoch alone
            row = self._train_epoch(model, train_iter, optimizer, epoch)
            row["lr"] = optimizer.param_groups[0]["lr"]
            if scheduler is not None:
                scheduler.step()
            if val_iter is not None:
                row["val_loss"], row["val_acc"] = evaluate(model, val_iter, self.loss_fn)
            # The last step's update may have overflowed: never checkpoint such weights.
            bad = _non_finite(model, row)
            if bad:
                raise NonFiniteLossError(f"{bad} after epoch {epoch + 1}, step {self._steps} "
                                         f"(the epoch's last); {self._stopped()}")
            self.history.append(row)
            self.log(self._format(row))
            if self.live_plot and output_kind() == "jupyter":
                self._live.show(history_figure(self.history))  # redrawn in place
            if self.out is not None:
                self._write_history()
                if self.grad_norms_every is not None:
                    atomic_write_text(self.out / "grad_norms.json",
                                       json.dumps(self.grad_norms, indent=1))
                if self.checkpoint:
                    self.save_checkpoint(model, optimizer, epoch, scheduler=scheduler)
                    self._good_checkpoint = self.checkpoint_path

    def _train_epoch(self, model, train_iter, optimizer, epoch):
        model.train()
        t0 = time.perf_counter()
        bar = progress_bar(output_kind(), total=len(train_iter) if hasattr(train_iter,
                                                                         "__len__") else None,
                           desc=f"epoch {epoch + 1}/{self.max_epochs}", leave=False,
                           dynamic_ncols=True, disable=not self.progress)
        self._steps = 0
        sums = EpochSums()
        last_read, read_step = t0, 0
        try:
            for step, (X, y) in enumerate(train_iter):
                logits = model(X)
                loss = self.loss_fn(logits, y)
                # On the CPU reading the loss costs nothing: a NaN stops this very step.
                if not backend.is_cupy_array(loss) and not math.isfinite(loss):
                    raise NonFiniteLossError(f"loss became {float(loss)} at epoch {epoch + 1}, "
                                             f"step {step + 1}; {self._stopped()}")
                optimizer.zero_grad()
                model.backward(self.loss_fn.backward())
                if (self.grad_norms_every is not None
                        and self.global_step % self.grad_norms_every == 0):
                    self.grad_norms.append({"step": self.global_step,
                                            **weight_grad_norms(model)})
                optimizer.step()
                self.global_step += 1
                self._steps = step + 1
                sums.add(loss, logits, y)
                bar.update(1)
                now = time.perf_counter()
                if now - last_read >= self.read_every or not backend.is_cupy_array(loss):
                    shown = self._read(sums, bar, epoch, read_step, step + 1)
                    last_read, read_step = now, step + 1
            if read_step < self._steps or self._steps == 0:
                shown = self._read(sums, bar, epoch, read_step, self._steps)
        finally:
            bar.close()
        seconds = time.perf_counter() - t0
        train_loss, train_acc = shown
        return {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                "seconds": seconds, "images_per_s": sums.n / seconds if seconds > 0
                else float("nan")}

    def _read(self, sums, bar, epoch, first, last):
        """Read the running sums (on the GPU a host sync): report bad labels and a loss
        that stopped being finite in steps first+1..last, and show the progress."""
        _check_labels(self.loss_fn)
        loss, acc = sums.read()
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"loss became {loss} at epoch {epoch + 1}, in steps "
                                     f"{first + 1}-{last}; {self._stopped()}")
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")
        return loss, acc

    def _stopped(self):
        last = getattr(self, "_good_checkpoint", None)
        return ("training stopped (try a smaller learning rate). "
                + (f"The last good checkpoint is {last}." if last else
                   "No checkpoint was written yet."))

    @staticmethod
    def _format(row):
        s = (f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.4f}  "
             f"train acc {row['train_acc']:.4f}")
        if "val_loss" in row:
            s += f"  val loss {row['val_loss']:.4f}  val acc {row['val_acc']:.4f}"
        return s + f"  {row['images_per_s']:.0f} img/s  {row['seconds']:.1f} s"

    def _write_history(self):
        atomic_write_text(self.out / "history.json", json.dumps(self.history, indent=1))
        buf = _io.StringIO()
        keys = list(self.history[0])
        for row in self.history:
            keys += [k for k in row if k not in keys]
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(self.history)
        atomic_write_text(self.out / "history.csv", buf.getvalue())

    def save_checkpoint(self, model, optimizer, epoch, path=None, scheduler=None):
        """model.* / optim.* / sched.* arrays, the epoch, the history and the RNG states
        (host and device), in one npz."""
        state = {f"model.{k}": v for k, v in model.state_dict().items()}
        state.update({f"optim.{k}": v for k, v in optimizer.state_dict().items()})
        if scheduler is not None:
            state.update({f"sched.{k}": v for k, v in scheduler.state_dict().items()})
        state["epoch"] = np.int64(epoch)
        state["model"] = describe_model(model)  # so a resume can say which model wrote it
        state["history"] = json.dumps(self.history)
        state["global_step"] = np.int64(self.global_step)
        state["grad_norms"] = json.dumps(self.grad_norms)
        state["rng"] = json.dumps(backend.rng().bit_generator.state)
        state["device_rng"] = np.array(backend.device_rng_state(), dtype=np.int64)
        save(state, path or self.checkpoint_path)

    def _resume(self, model, optimizer, scheduler=None):
        path = self.checkpoint_path
        if path is None or not path.exists():
            raise FileNotFoundError(f"Trainer.fit(resume=True): no checkpoint at {path}")
        state = load(path)
        missing = [k for k in ("epoch", "history", "rng") if k not in state]
        if missing:
            raise ValueError(f"Trainer.fit(resume=True): {path} is not a Trainer checkpoint: "
                             f"it has no {', '.join(missing)} (a file from sn.save?)")
        _check_same_model(path, state, model)
        # All or nothing: a checkpoint that does not fit leaves everything as it was.
        model_before = {k: v.clone() for k, v in model.state_dict().items()}
        optim_before = optimizer.state_dict()
        sched_before = None if scheduler is None else scheduler.state_dict()
        try:
            history = json.loads(str(state["history"]))
            epoch = int(state["epoch"]) + 1
            rng_state = json.loads(str(state["rng"]))
            type(backend.rng().bit_generator)().state = rng_state  # valid before it is used
            model.load_state_dict({k[6:]: v for k, v in state.items()
                                   if k.startswith("model.")})
            optimizer.load_state_dict({k[6:]: v for k, v in state.items()
                                       if k.startswith("optim.")})
            if scheduler is not None:
                sched = {k[6:]: v for k, v in state.items() if k.startswith("sched.")}
                if not sched:
                    raise ValueError("it holds no scheduler state but a scheduler was given")
                scheduler.load_state_dict(sched)
        except (ValueError, TypeError, KeyError) as e:
            model.load_state_dict(model_before, strict=False)
            optimizer.load_state_dict(optim_before)
            if scheduler is not None:
                scheduler.load_state_dict(sched_before)
            why = f"the saved scheduler state has no {e}" if isinstance(e, KeyError) else e
            raise ValueError(f"Trainer.fit(resume=True): cannot resume from {path}: "
                             f"{why}") from e
        backend.rng().bit_generator.state = rng_state
        if "device_rng" in state:  # checkpoints from before it was saved have none
            backend.set_device_rng_state(np.asarray(state["device_rng"]).tolist())
        self.history = history
        # Checkpoints written before gradient-flow recording hold neither.
        self.global_step = int(state["global_step"]) if "global_step" in state else 0
        self.grad_norms = json.loads(str(state["grad_norms"])) if "grad_norms" in state else []
        self._good_checkpoint = path
        self.log(f"resumed from {path} after epoch {epoch}")
        return epoch

    def plot(self, path):
        """The d2l board: losses and accuracies against epochs, as a PNG."""
        return plot_history(self.history, path)


def describe_model(model):
    """A model in a few words, its class and parameter count: "LeNet (61,706 parameters)"
    (a lazy parameter not yet given its shape counts as 0)."""
    return f"{type(model).__name__} ({model.num_parameters():,} parameters)"


def _check_same_model(path, state, model):
    """Refuse, in one line, a checkpoint that another model wrote."""
    here = describe_model(model)
    saved = str(state["model"]) if "model" in state else None
    if saved is not None and saved != here:
        raise ValueError(f"cannot resume from {path}: it was written by {saved}, and the "
                         f"model loading it is {here}")
    # Checkpoints from before the model was named: compare the parameter names.
    theirs = {k[6:] for k in state if k.startswith("model.")}
    ours = set(model.state_dict())
    if saved is None and theirs != ours:
        extra, missing = sorted(theirs - ours), sorted(ours - theirs)
        raise ValueError(f"cannot resume from {path}: it holds another model's weights "
                         f"({len(extra)} of its {len(theirs)} tensors have no place in "
                         f"{here}, e.g. {(extra or ['-'])[0]}; {len(missing)} of this "
                         f"model's are missing, e.g. {(missing or ['-'])[0]})")


def weight_layers(model):
    """(module path, layer) of every layer with a weight matrix or kernel (Conv, Linear),
    in registration order (forward order for a Sequential tree); BatchNorm's per-channel
    scale is left out."""
    return [(path, m) for path, m in model.named_modules()
            if getattr(m._parameters.get("weight"), "array", None) is not None
            and m._parameters["weight"].array.ndim >= 2]


def weight_layer_labels(model):
    """{module path: "path (Class)"}, the legend of :func:`scratchnet.viz.plot_grad_norms`."""
    return {path: f"{path} ({m.name})" for path, m in weight_layers(model)}


def weight_grad_norms(model):
    """{module path: norm of that layer's weight gradient} for :func:`weight_layers`."""
    out = {}
    for path, m in weight_layers(model):
        g = m.weight.grad_array
        if g is not None:
            out[path] = float(backend.get_array_module(g).linalg.norm(g.ravel()))
    return out


def _non_finite(model, row):
    """What is not finite after an epoch (the validation loss, a parameter), or None."""
    if not math.isfinite(row.get("val_loss", 0.0)):
        return f"the validation loss became {row['val_loss']}"
    params = [(name, p.array) for name, p in model.named_parameters() if p.array is not None]
    if not params:
        return None
    xp = backend.get_array_module(params[0][1])
    # One read of the device for the whole model; the names only when one is bad.
    if bool(xp.stack([xp.isfinite(a).all() for _, a in params]).all()):
        return None
    for name, a in params:
        if not bool(xp.isfinite(a).all()):
            return f"parameter {name} became non-finite"
    return None
