"""Optimizers and LR schedules against torch.optim, step by step, with the parameters on
each device (schedules only set numbers and need none)."""
import itertools
import re

import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import GPU_DEVICES, assert_equal, dev
from scratchnet import io, nn, optim
from scratchnet.nn.parameter import Parameter

SHAPES = [(3, 4), (5,)]


def rel_error(a, b):
    a, b = sn.to_numpy(a), sn.to_numpy(b)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def on_device(values):
    """Parameters holding ``values`` on the active device."""
    return [Parameter(dev(np.array(v))) for v in values]


def assert_state_on(opt, xp):
    """Every array of the optimizer's state lives where its parameter does."""
    arrays = [v for st in opt.state.values() for v in st.values() if hasattr(v, "shape")]
    assert arrays
    for v in arrays:
        assert sn.get_array_module(v) is xp


def make_pair(sn_cls, torch_cls, kwargs, dtype=np.float64, seed=0):
    """The same parameters in scratchnet (on the active device) and torch, each with its
    optimizer."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    sn_params = on_device(init)
    t_params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    return (sn_params, sn_cls(sn_params, **kwargs),
            t_params, torch_cls(t_params, foreach=False, **kwargs))


def feed(rng, sn_params, t_params):
    for p, t in zip(sn_params, t_params):
        g = rng.standard_normal(p.data.shape).astype(p.data.dtype)
        p.grad = dev(g.copy())
        t.grad = torch.from_numpy(g.copy())


def assert_parity(sn_params, sn_opt, t_params, t_opt, steps=5, seed=1):
    rng = np.random.default_rng(seed)
    for step in range(steps):
        feed(rng, sn_params, t_params)
        sn_opt.step()
        t_opt.step()
        for p, t in zip(sn_params, t_params):
            assert sn.get_array_module(p.data) is sn.backend.device_module()
            err = rel_error(p.data, t.detach().numpy())
            assert err <= 1e-12, f"step {step}: relative error {err:.2e}"
    if any(sn_opt.state.values()):
        assert_state_on(sn_opt, sn.backend.device_module())


def sgd_grid():
    for momentum, dampening, wd, nesterov, maximize in itertools.product(
            (0, 0.9), (0, 0.1), (0, 5e-4), (False, True), (False, True)):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        yield dict(lr=0.1, momentum=momentum, dampening=dampening, weight_decay=wd,
                   nesterov=nesterov, maximize=maximize)


@pytest.mark.parametrize("kwargs", list(sgd_grid()), ids=str)
def test_sgd_matches_torch(kwargs, device):
    assert_parity(*make_pair(optim.SGD, torch.optim.SGD, kwargs))


ADAM_GRID = [dict(lr=1e-2, weight_decay=wd, amsgrad=amsgrad, maximize=maximize)
             for wd, amsgrad, maximize in itertools.product((0, 0.1), (False, True),
                                                            (False, True))]
ADAM_GRID.append(dict(lr=3e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05, amsgrad=True))


@pytest.mark.parametrize("kwargs", ADAM_GRID, ids=str)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_matches_torch(name, kwargs, device):
    pair = make_pair(getattr(optim, name), getattr(torch.optim, name), kwargs)
    assert_parity(*pair, steps=6)


@pytest.mark.parametrize("cls, kwargs", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, maximize=True)),
    (optim.Adam, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (optim.AdamW, dict(lr=1e-2, amsgrad=True, maximize=True)),
])
def test_float32_stays_float32(cls, kwargs, device):
    rng = np.random.default_rng(0)
    params = on_device(rng.standard_normal(s).astype(np.float32) for s in SHAPES)
    opt = cls(params, **kwargs)
    for _ in range(3):
        for p in params:
            p.grad = dev(rng.standard_normal(p.data.shape).astype(np.float32))
        opt.step()
    for p in params:
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert sn.get_array_module(p.data) is sn.backend.device_module()
    live = [v for st in opt.state.values() for v in st.values() if hasattr(v, "dtype")]
    assert live and all(a.dtype == np.float32 for a in live)
    assert_state_on(opt, sn.backend.device_module())
    arrays = [v for k, v in opt.state_dict().items() if k.startswith("state.")
              and isinstance(v, np.ndarray)]
    assert arrays and all(a.dtype == np.float32 for a in arrays)


@pytest.mark.parametrize("kwargs", [
    dict(lr=-0.1),
    dict(lr=0.1, momentum=-0.5),
    dict(lr=0.1, weight_decay=-1e-4),
    dict(lr=0.1, nesterov=True),
    dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
])
def test_sgd_rejects_invalid_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="SGD"):
        optim.SGD([Parameter(np.zeros(3))], **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(lr=-1.0), dict(betas=(1.0, 0.999)), dict(betas=(0.9, -0.1)), dict(eps=-1.0),
    dict(weight_decay=-0.1),
])
def test_adam_rejects_invalid_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="Adam"):
        optim.Adam([Parameter(np.zeros(3))], **kwargs)


OPTIMIZERS = {"SGD": (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=1e-4)),
              "Adam": (optim.Adam, dict(lr=1e-3, eps=1e-8, weight_decay=0.0)),
              "AdamW": (optim.AdamW, dict(lr=1e-3, eps=1e-8, weight_decay=1e-2))}
# Not a finite number: (value, error, how the message shows it)
NOT_NUMBERS = [(float("nan"), ValueError, "nan"), (float("inf"), ValueError, "inf"),
               (np.float32("-inf"), ValueError, "-inf"), ("0.1", TypeError, "'0.1'"),
               (True, TypeError, "True"), (None, TypeError, "None"),
               (np.ones(1), TypeError, "array([1.])")]
HYPER = [(name, key) for name, (_, kw) in OPTIMIZERS.items() for key in kw]


def hyper(opt):
    """An optimizer's param groups as comparable values: the parameters' ids and the rest."""
    return [({k: v for k, v in g.items() if k != "params"}, [id(p) for p in g["params"]])
            for g in opt.param_groups]


@pytest.mark.parametrize("value, error, shown", NOT_NUMBERS, ids=lambda v: repr(v)[:12])
@pytest.mark.parametrize("name, key", HYPER, ids=str)
def test_hyper_parameters_must_be_finite_numbers(name, key, value, error, shown):
    """nan, inf, a str, a bool, None: refused by name, when made and in a param group
    added later (which leaves the optimizer as it was)."""
    cls, kw = OPTIMIZERS[name]
    with pytest.raises(error, match=rf"^{name}: {key} must be a finite number( >= 0)?, "
                                    rf"got {re.escape(shown)}$"):
        cls([Parameter(np.ones(3))], **{**kw, key: value})
    opt = cls([Parameter(np.ones(3))], **kw)
    before = hyper(opt)
    with pytest.raises(error, match=rf"^{name} param group 1: {key} must be"):
        opt.add_param_group({"params": [Parameter(np.ones(2))], key: value})
    assert hyper(opt) == before


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("betas, error, match", [
    ((float("nan"), 0.999), ValueError, r"betas\[0\] must be a number in \[0, 1\), got nan"),
    ((0.9, "0.999"), TypeError, r"betas\[1\] must be a number in \[0, 1\), got '0.999'"),
    ((0.9, True), TypeError, r"betas\[1\] must be .*, got True"),
    ((0.9, 1.0), ValueError, r"betas\[1\] must be a number in \[0, 1\), got 1.0"),
    (0.9, TypeError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
    ((0.9,), TypeError, r"betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
], ids=str)
def test_betas_must_be_a_pair_of_numbers_in_0_1(name, betas, error, match):
    with pytest.raises(error, match=rf"^{name}: {match}$"):
        getattr(optim, name)([Parameter(np.ones(3))], betas=betas)


def test_pytorchs_ranges_are_kept():
    """What PyTorch refuses (a negative lr, momentum, weight_decay or eps) is refused with
    the range; what it takes (momentum or dampening above 1, eps 0, lr 0) is taken."""
    p = [Parameter(np.ones(3))]
    for cls, kw, match in [(optim.SGD, dict(lr=-1), "lr must be a finite number >= 0, got -1"),
                           (optim.SGD, dict(lr=0.1, momentum=-1), "momentum must be"),
                           (optim.Adam, dict(eps=-1e-8), "eps must be a finite number >= 0")]:
        with pytest.raises(ValueError, match=match):
            cls(p, **kw)
        with pytest.raises(ValueError):
            getattr(torch.optim, cls.__name__)([torch.nn.Parameter(torch.ones(3))], **kw)
    optim.SGD(p, lr=0, momentum=2.0, dampening=2.0)
    optim.SGD(p, lr=0.1, momentum=0.9, dampening=-1)
    optim.Adam(p, lr=0, eps=0)


SCHEDULERS = {"StepLR": (optim.StepLR, dict(step_size=2, gamma=0.5)),
              "CosineAnnealingLR": (optim.CosineAnnealingLR, dict(T_max=5, eta_min=0.01))}
BAD_SCHEDULES = [
    ("StepLR", "step_size", 1.5, TypeError, "an int >= 1, got 1.5"),
    ("StepLR", "step_size", 0, ValueError, "an int >= 1, got 0"),
    ("StepLR", "step_size", "2", TypeError, "an int >= 1, got '2'"),
    ("StepLR", "step_size", True, TypeError, "an int >= 1, got True"),
    ("StepLR", "gamma", float("nan"), ValueError, "a finite number, got nan"),
    ("StepLR", "gamma", "0.1", TypeError, "a finite number, got '0.1'"),
    ("StepLR", "last_epoch", 0.5, TypeError, "an int >= -1, got 0.5"),
    ("CosineAnnealingLR", "T_max", 0, ValueError, "an int >= 1, got 0"),
    ("CosineAnnealingLR", "T_max", 2.5, TypeError, "an int >= 1, got 2.5"),
    ("CosineAnnealingLR", "T_max", None, TypeError, "an int >= 1, got None"),
    ("CosineAnnealingLR", "eta_min", float("inf"), ValueError, "a finite number, got inf"),
    ("CosineAnnealingLR", "eta_min", False, TypeError, "a finite number, got False"),
    ("CosineAnnealingLR", "last_epoch", -2, ValueError, "an int >= -1, got -2"),
]


@pytest.mark.parametrize("name, key, value, error, match", BAD_SCHEDULES, ids=str)
def test_scheduler_hyper_parameters_are_checked_before_anything_changes(name, key, value,
                                                                         error, match):
    """Refused by name, and the optimizer keeps its learning rates (no initial_lr set)."""
    opt = optim.SGD([Parameter(np.ones(3))], lr=0.1)
    before = hyper(opt)
    cls, kw = SCHEDULERS[name]
    with pytest.raises(error, match=rf"^{name}: {key} must be {re.escape(match)}$"):
        cls(opt, **{**kw, key: value})
    assert hyper(opt) == before and "initial_lr" not in opt.param_groups[0]


def test_rejects_bad_params():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD(Parameter(np.zeros(3)), lr=0.1)
    with pytest.raises(TypeError, match="ndarray"):
        optim.SGD([np.zeros(3)], lr=0.1)
    p = Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_skips_parameters_without_grad_or_data(device):
    used, unused = on_device([np.ones(3), np.ones(2)])
    unused.grad = None
    lazy = Parameter()
    opt = optim.SGD([used, unused, lazy], lr=0.5, momentum=0.9, weight_decay=0.1)
    used.grad = dev(np.full(3, 2.0))
    opt.step()
    assert_equal(unused.data, np.ones(2))
    np.testing.assert_allclose(sn.to_numpy(used.data), 1 - 0.5 * (2 + 0.1))
    assert not any(key.startswith("state.1.") for key in opt.state_dict())
    # A lazy parameter materialized after the optimizer was built joins the next step.
    lazy.materialize(dev(np.zeros(4)))
    lazy.grad = dev(np.ones(4))
    opt.step()
    np.testing.assert_allclose(sn.to_numpy(lazy.data), -0.5)
    assert "state.2.momentum_buffer" in opt.state_dict()


def test_param_groups_and_zero_grad(device):
    a, b = on_device([np.ones(2), np.ones(2)])
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 1.0}], lr=0.1, momentum=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    assert opt.param_groups[1]["momentum"] == 0.5
    a.grad, b.grad = dev(np.ones(2)), dev(np.ones(2))  # (None until a backward, as PyTorch)
    opt.step()
    np.testing.assert_allclose(sn.to_numpy(a.data), 0.9)
    np.testing.assert_allclose(sn.to_numpy(b.data), 0.0)
    grad = a.grad_array
    opt.zero_grad()
    assert a.grad_array is grad and not sn.to_numpy(a.grad).any()
    opt.zero_grad(set_to_none=True)
    assert a.grad is None and b.grad is None


@pytest.mark.parametrize("cls, kwargs", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (optim.Adam, dict(lr=1e-2, amsgrad=True, weight_decay=1e-2)),
    (optim.AdamW, dict(lr=1e-2, betas=(0.8, 0.9))),
])
@pytest.mark.parametrize("through_file", [False, True])
def test_state_dict_round_trip_continues_identically(cls, kwargs, through_file, tmp_path,
                                                    device):
    rng = np.random.default_rng(0)
    params = on_device(rng.standard_normal(s) for s in SHAPES)
    opt = cls(params, **kwargs)
    for _ in range(3):
        for p in params:
            p.grad = dev(rng.standard_normal(p.data.shape))
        opt.step()
    opt.param_groups[0]["lr"] *= 0.5  # as a schedule would
    sd = opt.state_dict()
    assert all(isinstance(v, (np.ndarray, int, float, bool)) for v in sd.values())
    assert "param_groups.0.lr" in sd
    np.testing.assert_array_equal(sd["param_groups.0.params"], [0, 1])
    if through_file:
        io.save(sd, tmp_path / "opt.npz")
        sd = io.load(tmp_path / "opt.npz")

    clones = [Parameter(p.array.copy()) for p in params]
    fresh = cls(clones, lr=123.0)
    fresh.load_state_dict(sd)
    assert_state_on(fresh, sn.backend.device_module())
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert type(fresh.param_groups[0].get("betas", ())) is tuple
    for _ in range(3):
        for p, c in zip(params, clones):
            p.grad = dev(rng.standard_normal(p.data.shape))
            c.grad = p.grad_array.copy()
        opt.step()
        fresh.step()
        for p, c in zip(params, clones):
            assert_equal(c.data, p.data)


def test_state_dict_keys(device):
    p, q = on_device([np.ones(2), np.ones(3)])
    opt = optim.Adam([{"params": [p]}, {"params": [q], "lr": 0.1}], amsgrad=True)
    p.grad = dev(np.ones(2))
    q.grad = None
    opt.step()
    sd = opt.state_dict()
    assert sorted(k for k in sd if k.startswith("state.")) == [
        "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq", "state.0.step"]
    assert sd["state.0.step"] == 1
    np.testing.assert_array_equal(sd["param_groups.1.params"], [1])
    np.testing.assert_array_equal(sd["param_groups.0.betas"], [0.9, 0.999])
    assert sd["param_groups.1.lr"] == 0.1


def test_load_state_dict_rejects_mismatch(device):
    sd = optim.SGD(on_device([np.ones(2)]), lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match="parameters"):
        optim.SGD(on_device([np.ones(2), np.ones(2)]), lr=0.1).load_state_dict(sd)
    (p,) = on_device([np.ones(2)])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = dev(np.ones(2))
    opt.step()
    with pytest.raises(ValueError, match="shape"):
        optim.SGD(on_device([np.ones(5)]), lr=0.1).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="unexpected key"):
        optim.SGD(on_device([np.ones(2)]), lr=0.1).load_state_dict({"bogus": 1})


SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=1e-3)),
    ("CosineAnnealingLR", dict(T_max=20)),
]


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=str)
def test_scheduler_matches_torch(name, kwargs):
    sn_opt = optim.SGD([{"params": [Parameter(np.ones(2))]},
                        {"params": [Parameter(np.ones(2))], "lr": 0.05}], lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(2))]},
                             {"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.05}],
                            lr=0.1, momentum=0.9)
    sn_sched = getattr(optim.lr_scheduler, name)(sn_opt, **kwargs)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs)
    assert sn_sched.get_last_lr() == t_sched.get_last_lr()
    for epoch in range(20):
        sn_opt.step()
        t_opt.step()
        sn_sched.step()
        t_sched.step()
        # Same float operations in the same order: equal bit for bit.
        assert sn_sched.get_last_lr() == t_sched.get_last_lr(), f"epoch {epoch + 1}"
        assert [g["lr"] for g in sn_opt.param_groups] == sn_sched.get_last_lr()


def test_scheduler_state_dict_round_trip(tmp_path):
    def build():
        opt = optim.SGD([Parameter(np.ones(2))], lr=0.1)
        return opt, optim.CosineAnnealingLR(opt, T_max=10, eta_min=0.01)

    opt, sched = build()
    for _ in range(4):
        sched.step()
    io.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
            tmp_path / "ck.npz")
    ck = io.load(tmp_path / "ck.npz")

    def part(prefix):
        return {k[len(prefix) + 1:]: v for k, v in ck.items() if k.startswith(prefix + ".")}

    opt2, sched2 = build()
    opt2.load_state_dict(part("optimizer"))
    sched2.load_state_dict(part("scheduler"))
    for _ in range(8):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()


STEPPERS = [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (optim.Adam, dict(lr=1e-2, amsgrad=True, weight_decay=1e-2)),
    (optim.AdamW, dict(lr=1e-2, betas=(0.8, 0.9))),
]


def grads_for(params, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.data.shape) for p in params]


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("cls, kwargs", STEPPERS, ids=["SGD", "Adam", "AdamW"])
def test_device_state_dict_continues_on_the_cpu(cls, kwargs, device):
    """An optimizer's state_dict from the GPU loads into one on the CPU (and back), and the
    runs go on as one that never moved."""
    values = [np.random.default_rng(0).standard_normal(s) for s in SHAPES]
    params = on_device(values)
    opt = cls(params, **kwargs)
    with sn.use_device("cpu"):
        ref = on_device(values)
        ref_opt = cls(ref, **kwargs)
    for step in range(6):
        if step == 3:
            with sn.use_device("cpu"):
                cpu = on_device([sn.to_numpy(p.data) for p in params])
                cpu_opt = cls(cpu, lr=1.0)
            cpu_opt.load_state_dict(opt.state_dict())
            assert_state_on(cpu_opt, np)
            back = on_device([p.data for p in cpu])
            back_opt = cls(back, lr=1.0)
            back_opt.load_state_dict(cpu_opt.state_dict())
            assert_state_on(back_opt, sn.backend.device_module())
        runs = [(ref, ref_opt), (params, opt)]
        if step >= 3:
            runs += [(cpu, cpu_opt), (back, back_opt)]
        for ps, o in runs:
            for p, g in zip(ps, grads_for(ps, step)):
                p.grad = sn.to_device(g, sn.backend.device_of(p.data))
            o.step()
    for r, a, b, c in zip(ref, params, cpu, back):
        assert rel_error(a.data, r.data) <= 1e-12
        assert rel_error(b.data, r.data) <= 1e-12
        assert rel_error(c.data, r.data) <= 1e-12


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("cls, kwargs", STEPPERS, ids=["SGD", "Adam", "AdamW"])
def test_state_follows_a_model_moved_between_devices(cls, kwargs, device):
    """Module.to between steps: the optimizer's state follows its parameters at the next
    step, and the numbers are those of a run that never moved."""
    def run(moves):
        sn.manual_seed(0)
        sn.set_default_dtype(np.float64)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        opt = cls(model.parameters(), **kwargs)
        x = np.random.default_rng(1).standard_normal((5, 3))
        for step in range(6):
            if step in moves:
                model.to(device=moves[step])
            where = sn.backend.device_of(next(model.parameters()).data)
            y = model(sn.to_device(x, where))
            opt.zero_grad()
            model.backward(sn.to_device(np.ones(y.shape), where))
            opt.step()
            assert_state_on(opt, sn.backend.device_module(where))
        return [sn.to_numpy(p.data) for p in model.parameters()]

    with sn.use_device("cpu"):
        still = run({})
    moved = run({2: "cpu", 4: "gpu"})
    for a, b in zip(moved, still):
        assert rel_error(a, b) <= 1e-12
