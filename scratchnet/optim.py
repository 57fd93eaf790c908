"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules, with PyTorch's update rules.

An optimizer holds param groups (dicts with 'params' and hyper-parameters, as in
PyTorch, so a schedule can set ``group['lr']``) and updates every ``p.array`` in place
from ``p.grad_array``. Per-parameter state (momentum, moments) is created at a parameter's
first step, because lazy layers materialize their parameters after the optimizer is
built. ``state_dict()`` is a flat dict of numpy arrays and Python scalars that
``scratchnet.save`` can write to an .npz file.

From the second step on, each group's parameters (per device and dtype) live in
one flat buffer: ``p.array``, ``p.grad_array`` and the state arrays become views into
it (``autograd.parameter.FlatParams``), and the update runs a handful of whole-model array
operations instead of a handful per tensor, as PyTorch's foreach and fused
optimizers do (each operation is a kernel launch on the GPU). ``_update`` (one
parameter) is the readable rule; ``_update_flat`` applies the same element-wise
arithmetic to the flat buffers, so both give the same bits.
"""
import math
import numbers
import types

import numpy as np

from . import backend
from .autograd.parameter import FlatParams, zero_grads
from .ops.workspace import scratch


class Optimizer:
    """Base class: param groups, zero_grad, step over the parameters that have a gradient.

    Subclasses implement ``_update(p, group, state)`` for one parameter; ``state`` is
    that parameter's dict, empty at its first step.
    """

    # State entries that are Python numbers rather than arrays shaped like the parameter.
    _scalar_state = ("step",)

    def __init__(self, params, defaults):
        name = type(self).__name__
        self._check_hyper(name, defaults)
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # id(param) -> dict; the groups hold the params, so ids stay valid
        self._flats = {}  # (group index, device, dtype) -> FlatParams
        if hasattr(params, "data") or isinstance(params, dict):
            raise TypeError(f"{name}: params should be an iterable of Parameters or of "
                            f"param-group dicts, got a {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a dict {'params': [...], name: value, ...}; missing values take the defaults."""
        name = type(self).__name__
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if hasattr(params, "grad") else list(params)
        for p in group["params"]:
            if not (hasattr(p, "array") and hasattr(p, "grad_array")):
                raise TypeError(f"{name}: expected Parameters (objects with .array and "
                                f".grad_array), got {type(p).__name__}")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_hyper(f"{name} param group {len(self.param_groups)}", group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError(f"{name}: a parameter appears more than once in the param groups")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=False):
        """Zero every gradient in place (Parameter's convention), or drop it with set_to_none.

        PyTorch's default is set_to_none=True; here the in-place zero is the default so
        backward keeps accumulating into the same buffers.
        """
        if not set_to_none:
            zero_grads(self._params())
            return
        for p in self._params():
            p.grad_array = None

    def step(self, closure=None):
        """Update every parameter that has data and a gradient; returns closure() if given."""
        loss = None if closure is None else closure()
        name = type(self).__name__
        for g, group in enumerate(self.param_groups):
            buckets = {}  # (device, dtype) -> parameters, in group order
            for p in group["params"]:
                if p.grad_array is None or p.array is None:
                    continue
                if p.grad_array.shape != p.array.shape:
                    raise ValueError(f"{name}.step: gradient shape {tuple(p.grad_array.shape)} "
                                     f"does not match parameter shape {tuple(p.array.shape)}")
                if backend.device_of(p.grad_array) != backend.device_of(p.array):
                    raise ValueError(f"{name}.step: a gradient is on "
                                     f"{backend.device_of(p.grad_array)} but its parameter on "
                                     f"{backend.device_of(p.array)}")
                state = self.state.setdefault(id(p), {})
                _follow_param(state, p, self._scalar_state)
                key = (backend.device_of(p.array), p.array.dtype.str)
                buckets.setdefault(key, []).append(p)
            for key, params in buckets.items():
                states = [self.state[id(p)] for p in params]
                keys = self._state_keys(group)
                if len(params) < 2 or not _ready(states, keys, self._scalar_state):
                    # A first step (state not made yet) or a lone tensor: one at a time.
                    for p, state in zip(params, states):
                        self._update(p, group, state)
                    self._flats.pop((g, *key), None)
                    continue
                flat = self._flats.get((g, *key))
                if flat is None or not flat.fits(params) or flat.keys != keys:
                    flat = self._flats[(g, *key)] = FlatParams(params, states, keys)
                else:
                    flat.adopt(params, states)
                self._update_flat(flat, group, states)
        return loss

    def _check_hyper(self, who, group):
        """Raise (naming ``who``) unless the hyper-parameters in ``group`` are numbers in
        PyTorch's ranges; before anything changes."""

    def _state_keys(self, group):
        """The state arrays every parameter has after its first step, as a sorted tuple."""
        raise NotImplementedError

    def _update(self, p, group, state):
        """The update of one parameter: the readable rule."""
        raise NotImplementedError

    def _update_flat(self, flat, group, states):
        """The same update on a FlatParams (``states`` are its parameters' state dicts)."""
        raise NotImplementedError

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """A flat dict: 'param_groups.<g>.<hyper>' and 'state.<i>.<name>'.

        <i> numbers the parameters across all groups in order; 'param_groups.<g>.params'
        lists the numbers of group <g>. Arrays are numpy copies; tuples (betas) become
        1-d arrays; everything else stays a Python scalar.
        """
        out = {}
        index = 0
        for g, group in enumerate(self.param_groups):
            n = len(group["params"])
            out[f"param_groups.{g}.params"] = np.arange(index, index + n, dtype=np.int64)
            for key, value in group.items():
                if key != "params":
                    out[f"param_groups.{g}.{key}"] = (
                        np.asarray(value) if isinstance(value, (tuple, list)) else value)
            index += n
        for i, p in enumerate(self._params()):
            for key, value in self.state.get(id(p), {}).items():
                out[f"state.{i}.{key}"] = (
                    value if key in self._scalar_state else backend.to_numpy(value).copy())
        return out

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state from ``state_dict()`` (or ``scratchnet.load``).

        Values may be 0-d arrays, as they come back from an .npz file. State arrays are
        copied onto each parameter's device and dtype.
        """
        name = type(self).__name__
        groups, states = {}, {}
        for key, value in state_dict.items():
            kind, _, rest = key.partition(".")
            index, _, field = rest.partition(".")
            if kind not in ("param_groups", "state") or not index.isdigit() or not field:
                raise ValueError(f"{name}.load_state_dict: unexpected key {key!r}")
            table = groups if kind == "param_groups" else states
            table.setdefault(int(index), {})[field] = value
        if sorted(groups) != list(range(len(self.param_groups))):
            raise ValueError(f"{name}.load_state_dict: expected {len(self.param_groups)} "
                             f"param groups, got {len(groups)}")
        for g, group in enumerate(self.param_groups):
            saved, own = set(groups[g]) - {"params"}, set(group) - {"params"}
            if saved != own:
                raise ValueError(f"{name}.load_state_dict: param group {g} was saved with "
                                 f"hyper-parameters {sorted(saved)} but {name} has "
                                 f"{sorted(own)} (the state of another optimizer?)")
        # Saved parameter numbers map to the current parameters group by group, in order.
        by_number = {}
        for g, group in enumerate(self.param_groups):
            numbers = np.asarray(groups[g].get("params", [])).reshape(-1).tolist()
            if len(numbers) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: param group {g} has "
                                 f"{len(group['params'])} parameters, the saved one has "
                                 f"{len(numbers)}")
            by_number.update(zip(numbers, group["params"]))
        unknown = set(states) - set(by_number)
        if unknown:
            raise ValueError(f"{name}.load_state_dict: state for unknown parameter numbers "
                             f"{sorted(unknown)}")
        new_state = {}
        for i, entries in states.items():
            p = by_number[i]
            entry = {}
            for key, value in entries.items():
                if key in self._scalar_state:
                    entry[key] = _to_python(value)
                else:
                    entry[key] = _like_param(value, p, f"{name}.load_state_dict: state.{i}.{key}")
            new_state[id(p)] = entry
        for g, group in enumerate(self.param_groups):
            for key, value in groups[g].items():
                if key != "params":
                    group[key] = _to_python(value)
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {g}: {len(group['params'])} params, {hyper}")
        return "\n".join(lines + [")"])


def _check_number(who, name, value, low=None, high=None, below_high=False, integer=False):
    """Refuse a hyper-parameter that is no finite number (a str, a bool, nan or inf; not
    an int where ``integer``) or lies outside [low, high] ([low, high) with
    ``below_high``): a TypeError or ValueError naming ``who`` and ``name``."""
    want = "an int" if integer else "a finite number"
    if low is not None and high is not None:
        want = f"a number in [{low}, {high}{')' if below_high else ']'}"
    elif low is not None:
        want += f" >= {low}"
    kind = numbers.Integral if integer else numbers.Real
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{who}: {name} must be {want}, got {value!r}")
    if not math.isfinite(value) or (low is not None and value < low) or (
            high is not None and (value >= high if below_high else value > high)):
        raise ValueError(f"{who}: {name} must be {want}, got {value}")


def _to_python(value):
    """A saved hyper-parameter or step back as a Python scalar (or tuple, for betas)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    return value


def _follow_param(state, p, scalar):
    """State arrays on p's device and in p's dtype: the model may have moved
    (``Module.to``) since the last step, and the state goes with it."""
    for k, v in state.items():
        if k in scalar or v is None:
            continue
        if backend.device_of(v) != backend.device_of(p.array) or v.dtype != p.array.dtype:
            v = backend.to_device(v, backend.device_of(p.array))
            state[k] = v.astype(p.array.dtype, copy=False)


def _ready(states, keys, scalar):
    """True when every state holds each of ``keys`` and the same scalars (Adam's step):
    not so before a parameter's first step."""
    first = states[0]
    return all(all(k in st for k in keys) and all(st.get(k) == first.get(k) for k in scalar)
               for st in states)


def _like_param(value, p, where):
    """``value`` as a fresh array on p's device and in p's dtype (when p is materialized)."""
    if p.array is None:
        return np.array(backend.to_numpy(value))
    if tuple(value.shape) != tuple(p.array.shape):
        raise ValueError(f"{where}: expected shape {tuple(p.array.shape)}, "
                         f"got {tuple(value.shape)}")
    xp = backend.get_array_module(p.array)
    return xp.array(backend.to_numpy(value), dtype=p.array.dtype)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, weight decay, Nesterov.

    PyTorch's rule: g = grad + wd * p; buf = g at the first step, else
    buf = momentum * buf + (1 - dampening) * g; g = g + momentum * buf (Nesterov) or buf;
    p -= lr * g. Note the momentum buffer is not scaled by lr (unlike Sutskever et al.).
    """

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_hyper(self, who, group):
        _check_number(who, "lr", group["lr"], low=0)
        _check_number(who, "momentum", group["momentum"], low=0)
        _check_number(who, "dampening", group["dampening"])
        _check_number(who, "weight_decay", group["weight_decay"], low=0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{who}: nesterov=True expects momentum > 0 and dampening == 0, "
                             f"got momentum={group['momentum']}, "
                             f"dampening={group['dampening']}")

    def _update(self, p, group, state):
        g = -p.grad_array if group["maximize"] else p.grad_array
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # astype copies, and keeps the buffer in the parameter's dtype.
                buf = state["momentum_buffer"] = g.astype(p.array.dtype)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.array -= group["lr"] * g

    def _state_keys(self, group):
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _update_flat(self, flat, group, states):
        # _update's arithmetic, operation for operation, on the whole buffer, with one
        # temporary the size of the model (two for Nesterov).
        xp = backend.get_array_module(flat.array)
        tmp = scratch("sgd.g", flat.array.shape, flat.dtype, xp)
        g = flat.grad_array
        if group["weight_decay"] != 0:
            xp.multiply(flat.array, group["weight_decay"], out=tmp)  # wd * p
            # -grad + wd * p and wd * p - grad are the same bits
            g = (xp.subtract(tmp, g, out=tmp) if group["maximize"] else
                 xp.add(g, tmp, out=tmp))
        elif group["maximize"]:
            g = xp.negative(g, out=tmp)
        momentum = group["momentum"]
        if momentum != 0:
            buf = flat.state["momentum_buffer"]
            buf *= momentum
            if group["dampening"] != 0:
                buf += (1 - group["dampening"]) * g
            else:
                buf += g
            if group["nesterov"]:
                t2 = scratch("sgd.nesterov", flat.array.shape, flat.dtype, xp)
                xp.multiply(buf, momentum, out=t2)
                g = xp.add(g, t2, out=t2)
            else:
                g = buf
        xp.multiply(g, group["lr"], out=tmp)  # g may be tmp itself: element by element
        flat.array -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's bias corrections and placement of eps.

    m = beta1 * m + (1 - beta1) * g; v = beta2 * v + (1 - beta2) * g^2;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    weight_decay adds wd * p to the gradient (L2); AdamW decays p directly instead.
    amsgrad uses the running maximum of v.
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, maximize=False):
        betas = tuple(betas) if isinstance(betas, list) else betas
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_hyper(self, who, group):
        _check_number(who, "lr", group["lr"], low=0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{who}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            _check_number(who, f"betas[{i}]", beta, 0, 1, below_high=True)
        _check_number(who, "eps", group["eps"], low=0)
        _check_number(who, "weight_decay", group["weight_decay"], low=0)

    def _update(self, p, group, state):
        xp = backend.get_array_module(p.array)
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.array)
            state["exp_avg_sq"] = xp.zeros_like(p.array)
        g = -p.grad_array if group["maximize"] else p.grad_array
        state["step"] += 1
        if wd != 0:
            if self._decoupled:
                p.array *= 1 - lr * wd
            else:
                g = g + wd * p.array
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)  # PyTorch's lerp form of beta1 * m + (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = xp.zeros_like(p.array)
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step = state["step"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        denom = xp.sqrt(v) / bias_correction2 ** 0.5
        denom += group["eps"]
        p.array -= (lr / bias_correction1) * (m / denom)

    def _state_keys(self, group):
        keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        return tuple(sorted(keys))

    def _update_flat(self, flat, group, states):
        # _update's arithmetic on the whole buffer; every state shares one step count.
        xp = backend.get_array_module(flat.array)
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for st in states:
            st["step"] += 1
        g = -flat.grad_array if group["maximize"] else flat.grad_array
        if wd != 0:
            if self._decoupled:
                flat.array *= 1 - lr * wd
            else:
                g = g + wd * flat.array
        m, v = flat.state["exp_avg"], flat.state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * (g * g)
        if group["amsgrad"]:
            v = xp.maximum(flat.state["max_exp_avg_sq"], v, out=flat.state["max_exp_avg_sq"])
        step = states[0]["step"]
        denom = xp.sqrt(v) / (1 - beta2 ** step) ** 0.5
        denom += group["eps"]
        flat.array -= (lr / (1 - beta1 ** step)) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * wd, then Adam."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class LRScheduler:
    """Base class: sets each group's 'lr' from ``get_lr()`` at every ``step()``.

    As in PyTorch, construction performs step 0 (recording group['initial_lr'] as the
    base lr), and ``step()`` is called once per epoch after ``optimizer.step()``.
    """

    _hyper = ()  # subclass hyper-parameters that state_dict saves

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, "
                            f"got {type(optimizer).__name__}")
        _check_number(type(self).__name__, "last_epoch", last_epoch, low=-1, integer=True)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: resuming with last_epoch={last_epoch} "
                               f"needs param_groups[{i}]['initial_lr']; load the optimizer's "
                               f"state_dict first")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates set by the latest step, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """A flat dict of Python scalars and float64 arrays (savable with scratchnet.save)."""
        out = {"last_epoch": self.last_epoch, "step_count": self._step_count,
               "base_lrs": np.array(self.base_lrs, dtype=np.float64),
               "last_lr": np.array(self._last_lr, dtype=np.float64)}
        out.update((key, getattr(self, key)) for key in self._hyper)
        return out

    def load_state_dict(self, state_dict):
        self.last_epoch = int(_to_python(state_dict["last_epoch"]))
        self._step_count = int(_to_python(state_dict["step_count"]))
        self.base_lrs = np.asarray(state_dict["base_lrs"]).tolist()
        self._last_lr = np.asarray(state_dict["last_lr"]).tolist()
        for key in self._hyper:
            setattr(self, key, _to_python(state_dict[key]))


class StepLR(LRScheduler):
    """Multiply each group's lr by gamma every step_size epochs."""

    _hyper = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_number("StepLR", "step_size", step_size, low=1, integer=True)
        _check_number("StepLR", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the base lr down to eta_min over T_max epochs (SGDR without restarts).

    Uses PyTorch's recursive form, so the values agree with it bit for bit and follow
    changes made to group['lr'] from outside; past T_max the cosine climbs back up.
    """

    _hyper = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _check_number("CosineAnnealingLR", "T_max", T_max, low=1, integer=True)
        _check_number("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups = self.optimizer.param_groups
        if self._is_initial:
            return [group["lr"] for group in groups]
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (group["lr"] - eta_min) + eta_min
                for group in groups]


# PyTorch's spelling: sn.optim.lr_scheduler.StepLR(...)
lr_scheduler = types.SimpleNamespace(
    LRScheduler=LRScheduler, StepLR=StepLR, CosineAnnealingLR=CosineAnnealingLR)
