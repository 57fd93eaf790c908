"""Property-based parity with PyTorch over random layer configurations (issue 5).

The rule: every configuration PyTorch accepts, scratchnet accepts and matches in float64
(output, dL/dx, every parameter gradient and buffer, within 1e-10 relative); every
configuration PyTorch rejects (construction or forward raises), scratchnet rejects with a
ValueError or TypeError whose message names the layer. Each test draws its cases with
hypothesis (derandomized, so every run tries the same cases) and then checks that both
outcomes occurred often enough for the rule to have been tested.

Outside the drawn domain, on purpose: empty tensors (a batch, channel or image size of 0),
unbatched inputs (torch takes (C, H, W) for a 2-d layer; scratchnet asks for NCHW) and
AdaptiveAvgPool2d's output sizes 0 and None (scratchnet refuses them with a ValueError or
TypeError naming the layer, torch returns an empty tensor or keeps the input's size).
"""
import collections
import warnings

import numpy as np
import pytest
import torch
from helpers import copy_weights_to_torch, rel_err
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scratchnet as sn
from scratchnet import nn


TOL = 1e-10
FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow])
# Cases per test; the counts met are printed with -s (pytest -s -k fuzz).
EXAMPLES = {"Conv2d": 300, "Conv1d": 120, "MaxPool2d": 200, "AvgPool2d": 120,
            "AdaptiveAvgPool2d": 80, "Linear": 60, "BatchNorm2d": 160}
SIZE = st.one_of(st.just(1), st.integers(1, 7))  # 1x1 inputs often
# A hyper-parameter is now and then made invalid, so both libraries must refuse it.
BREAK = st.sampled_from([None] * 12 + ["stride0", "kernel0", "dilation0", "negpad"])


def _compare(what, a, b, floor):
    a = sn.to_numpy(a)
    b = b.detach().numpy()
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype}, torch {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape}, torch {b.shape}"
    # A max-pool window lying wholly in the padding is -inf in both; compare it exactly.
    inf = np.isinf(b)
    assert np.array_equal(np.isinf(a), inf) and np.array_equal(a[inf], b[inf]), \
        f"{what}: infinities differ"
    err = rel_err(np.where(inf, 0.0, a), np.where(inf, 0.0, b), floor)
    assert err <= TOL, f"{what} differs from torch: {err:.2e} > {TOL:.0e}"


def parity(layer, tlayer, x, steps=1, seed=0, gx_scale=None):
    """torch_parity (helpers.py) in float64, for layers that are not lazy.

    ``gx_scale(x)`` (BatchNorm) is the size of the terms dL/dx is a sum of, per unit of
    gy: with two values per channel dL/dx is zero up to their rounding, so its error is
    measured against them, not against its own rounding-sized values.
    """
    rs = np.random.default_rng((seed, 0x6A7))
    layer.to(dtype=np.float64)
    tlayer = tlayer.double()
    tlayer.train(layer.training)
    layer.zero_grad()
    copy_weights_to_torch(layer, tlayer)
    for step in range(steps):
        xs = x if step == 0 else rs.standard_normal(x.shape)
        y = layer(xs)
        xt = torch.tensor(xs, requires_grad=True)
        yt = tlayer(xt)
        gy = rs.standard_normal(tuple(yt.shape))
        gx = layer.backward(gy)
        yt.backward(torch.from_numpy(gy))
        gx_floor = 1e-30 if gx_scale is None else gx_scale(xs) * np.abs(gy).max(initial=0.0)
        checks = [("output", y, yt, 1e-30), ("input grad", gx, xt.grad, gx_floor)]
        params = dict(layer.named_parameters())
        checks += [(f"{k}.grad", params[k].grad, p.grad, 1e-30)
                   for k, p in tlayer.named_parameters()]
        buffers = dict(layer.named_buffers())
        checks += [(k, buffers[k], b, 1e-30) for k, b in tlayer.named_buffers()]
        for what, a, b, floor in checks:
            _compare(f"step {step}: {what}", a, b, floor)


def outcome(name, make, make_torch, x, make_ref=None, **kw):
    """'accepted' (and matched) or 'rejected' (by both); fails on any disagreement.

    ``make_ref`` builds the torch module whose gradients are the reference, when it
    cannot be ``make_torch``'s (see test_pool_fuzz).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tlayer = make_torch().double()
            with torch.no_grad():
                tlayer(torch.from_numpy(x))
        torch_error = None
    except (RuntimeError, ValueError, TypeError) as e:
        torch_error = e
    if torch_error is not None:
        with pytest.raises((ValueError, TypeError)) as info:
            make()(x)
        assert name in str(info.value), \
            f"torch rejects ({torch_error}); scratchnet's message does not name {name}: " \
            f"{info.value}"
        return "rejected"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "padding='same' with even kernel lengths"
        parity(make(), (make_ref or make_torch)(), x, **kw)
    return "accepted"


def run_fuzz(name, strategy, check):
    """Run ``check(cfg)`` over EXAMPLES[name] drawn configurations; count the outcomes."""
    counts = collections.Counter()

    @settings(FUZZ, max_examples=EXAMPLES[name])
    @given(strategy)
    def fuzz(cfg):
        counts[check(cfg)] += 1

    fuzz()
    print(f"\n{name}: {dict(counts)}")
    return counts


def _break(kw, bad, keys=("stride", "kernel_size", "dilation", "padding")):
    """Make one hyper-parameter invalid (for both libraries)."""
    if bad == "stride0" and "stride" in keys:
        kw["stride"] = 0
    elif bad == "kernel0":
        kw["kernel_size"] = 0
    elif bad == "dilation0" and "dilation" in keys:
        kw["dilation"] = 0
    elif bad == "negpad" and not isinstance(kw.get("padding", 0), str):
        kw["padding"] = -1
    return kw


def pair(lo, hi):
    """An int, or an (h, w) pair of ints."""
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


def hw(v):
    return v if isinstance(v, tuple) else (v, v)


@st.composite
def conv2d_cases(draw):
    kw = dict(kernel_size=draw(pair(1, 5)), stride=draw(pair(1, 3)),
              dilation=draw(st.sampled_from([1, 1, 2, (1, 2), (3, 1)])),
              padding=draw(st.one_of(pair(0, 2), st.sampled_from(["same", "valid"]))),
              bias=draw(st.booleans()))
    kw = _break(kw, draw(BREAK))
    cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # Now and then the input has one channel too many.
    cx = cin + draw(st.sampled_from([0] * 9 + [1]))
    shape = (draw(st.integers(1, 3)), cx, draw(SIZE), draw(SIZE))
    return cin, cout, kw, shape


def _fits_exactly(size, k, p, d):
    """The (dilated) kernel covers the padded input exactly: one output position."""
    return size + 2 * p == d * (k - 1) + 1


def test_conv2d_fuzz():
    def check(case):
        cin, cout, kw, shape = case
        x = np.random.default_rng(sum(shape)).standard_normal(shape)
        result = outcome("Conv2d", lambda: nn.Conv2d(cin, cout, **kw),
                         lambda: torch.nn.Conv2d(cin, cout, **kw), x)
        pad = kw["padding"]
        if result == "accepted" and not isinstance(pad, str):
            if any(_fits_exactly(s, k, p, d) for s, k, p, d in zip(
                    shape[2:], hw(kw["kernel_size"]), hw(pad), hw(kw["dilation"]))):
                return "accepted, kernel = padded input"
            if shape[2:] == (1, 1):
                return "accepted, 1x1 input"
        return result

    counts = run_fuzz("Conv2d", conv2d_cases(), check)
    assert counts["rejected"] >= 15
    assert counts["accepted"] >= 40
    assert counts["accepted, kernel = padded input"] >= 5


@st.composite
def conv1d_cases(draw):
    kw = dict(kernel_size=draw(st.integers(1, 5)), stride=draw(st.integers(1, 3)),
              dilation=draw(st.integers(1, 3)),
              padding=draw(st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"]))),
              bias=draw(st.booleans()))
    kw = _break(kw, draw(BREAK))
    cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), cin, draw(st.integers(1, 9)))
    return cin, cout, kw, shape


def test_conv1d_fuzz():
    def check(case):
        cin, cout, kw, shape = case
        x = np.random.default_rng(sum(shape)).standard_normal(shape)
        return outcome("Conv1d", lambda: nn.Conv1d(cin, cout, **kw),
                       lambda: torch.nn.Conv1d(cin, cout, **kw), x)

    counts = run_fuzz("Conv1d", conv1d_cases(), check)
    assert counts["rejected"] >= 8 and counts["accepted"] >= 25


@st.composite
def pool_cases(draw, dilation):
    kernel = draw(pair(1, 4))
    kh, kw_ = hw(kernel)
    # Padding up to half the kernel; now and then one more, which both must refuse.
    over = draw(st.sampled_from([0] * 5 + [1]))
    padding = draw(st.one_of(st.integers(0, min(kh, kw_) // 2 + over),
                             st.tuples(st.integers(0, kh // 2 + over),
                                       st.integers(0, kw_ // 2 + over))))
    kw = dict(kernel_size=kernel, stride=draw(st.one_of(st.none(), pair(1, 3))),
              padding=padding)
    if dilation:
        kw["dilation"] = draw(st.sampled_from([1, 1, 2, 3, (1, 2)]))
    kw = _break(kw, draw(BREAK), tuple(kw))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 7)),
             draw(st.integers(1, 7)))
    return kw, shape


def _all_padding_window(shape, kw):
    """Some max-pool window of a valid configuration lies wholly in the padding."""
    stride = kw["stride"] if kw["stride"] is not None else kw["kernel_size"]
    axes = list(zip(shape[2:], hw(kw["kernel_size"]), hw(stride), hw(kw["padding"]),
                    hw(kw.get("dilation", 1))))
    if any(min(k, s, d) < 1 or not 0 <= 2 * p <= k or size + 2 * p < d * (k - 1) + 1
           for size, k, s, p, d in axes):
        return False  # rejected by both
    for size, k, s, p, d in axes:
        n_out = (size + 2 * p - d * (k - 1) - 1) // s + 1
        for o in range(n_out):
            if all(not p <= o * s + i * d < p + size for i in range(k)):
                return True
    return False


def _all_padding_case(make, make_torch, kw, x):
    """A max-pool window wholly in the padding: the output is -inf there, in both.

    torch 2.13's backward is no reference here: it records an index past the input
    for such a window and writes the gradient out of bounds (heap corruption). Its
    forward is compared as it is; the gradients against the same pooling over an
    input padded with -inf beforehand, whose windows all lie inside their tensor.
    """
    (ph, pw), dilation = hw(kw["padding"]), kw.get("dilation", 1)
    with torch.no_grad():
        yt = make_torch().double()(torch.from_numpy(x))
    _compare("output", make()(x), yt, 1e-30)
    ref = lambda: torch.nn.Sequential(  # noqa: E731
        torch.nn.ConstantPad2d((pw, pw, ph, ph), float("-inf")),
        torch.nn.MaxPool2d(kw["kernel_size"], kw["stride"], 0, dilation))
    outcome("MaxPool2d", make, make_torch, x, make_ref=ref)
    return "accepted, a window wholly in the padding"


@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d"])
def test_pool_fuzz(name):
    def check(case):
        kw, shape = case
        # Shuffled distinct values: no ties between a window's candidates.
        rs = np.random.default_rng(sum(shape))
        x = rs.permutation(np.linspace(-2, 2, int(np.prod(shape)))).reshape(shape)
        make = lambda: getattr(nn, name)(**kw)  # noqa: E731
        make_torch = lambda: getattr(torch.nn, name)(**kw)  # noqa: E731
        if name == "MaxPool2d" and _all_padding_window(shape, kw):
            return _all_padding_case(make, make_torch, kw, x)
        return outcome(name, make, make_torch, x)

    counts = run_fuzz(name, pool_cases(name == "MaxPool2d"), check)
    assert counts["rejected"] >= 10 and counts["accepted"] >= 25


def test_adaptive_avg_pool_fuzz():
    cases = st.tuples(pair(1, 9), st.tuples(st.integers(1, 2), st.integers(1, 3),
                                            st.integers(1, 7), st.integers(1, 7)))

    def check(case):
        out, shape = case
        x = np.random.default_rng(sum(shape)).standard_normal(shape)
        result = outcome("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(out),
                         lambda: torch.nn.AdaptiveAvgPool2d(out), x)
        larger = any(o > s for o, s in zip(hw(out), shape[2:]))
        return result + (", larger than the input" if larger else "")

    counts = run_fuzz("AdaptiveAvgPool2d", cases, check)
    assert counts["accepted"] + counts["accepted, larger than the input"] == \
        EXAMPLES["AdaptiveAvgPool2d"]
    assert counts["accepted, larger than the input"] >= 10


def test_linear_fuzz():
    cases = st.tuples(st.integers(1, 6), st.integers(1, 6), st.booleans(),
                      st.integers(1, 4), st.sampled_from([0] * 5 + [1, -1]))

    def check(case):
        fin, fout, bias, n, off = case
        x = np.random.default_rng(n + fin).standard_normal((n, max(fin + off, 1)))
        return outcome("Linear", lambda: nn.Linear(fin, fout, bias=bias),
                       lambda: torch.nn.Linear(fin, fout, bias=bias), x)

    counts = run_fuzz("Linear", cases, check)
    assert counts["rejected"] >= 3 and counts["accepted"] >= 25


@st.composite
def batch_norm_cases(draw):
    kw = dict(eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])),
              momentum=draw(st.sampled_from([0.1, 0.5, 1.0, None])),
              affine=draw(st.booleans()), track_running_stats=draw(st.booleans()))
    c = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), c + draw(st.sampled_from([0] * 9 + [1])),
             draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return c, kw, shape, draw(st.booleans()), draw(st.integers(1, 2))


def test_batch_norm_fuzz():
    def check(case):
        c, kw, shape, training, steps = case
        rs = np.random.default_rng(sum(shape))
        x = rs.standard_normal(shape) * 3 + 1
        gamma = rs.uniform(0.5, 2, c) * rs.choice([-1, 1], c)

        def make():
            layer = nn.BatchNorm2d(c, **kw).double().train(training)
            if kw["affine"]:
                layer.weight.data[...] = gamma
                layer.bias.data[...] = rs.standard_normal(c)
            if kw["track_running_stats"]:
                layer.running_mean[...] = rs.standard_normal(c)
                layer.running_var[...] = rs.uniform(0.5, 2, c)
            return layer

        def make_torch():
            return torch.nn.BatchNorm2d(c, **kw).train(training)

        def scale(xs):
            gmax = np.abs(gamma).max() if kw["affine"] else 1.0
            return gmax / np.sqrt(xs.var(axis=(0, 2, 3)).min() + kw["eps"])

        batch_stats = training or not kw["track_running_stats"]
        result = outcome("BatchNorm2d", make, make_torch, x, steps=steps,
                         gx_scale=scale if batch_stats else None)
        if result == "accepted" and batch_stats and shape[0] * shape[2] * shape[3] == 2:
            return "accepted, two values per channel"
        return result

    counts = run_fuzz("BatchNorm2d", batch_norm_cases(), check)
    assert counts["rejected"] >= 8 and counts["accepted"] >= 40


@pytest.mark.parametrize("kernel, size", [((16, 16), (17, 18)), ((16, 17), (16, 20)),
                                          ((1, 257), (2, 260))])
def test_max_pool_with_many_window_offsets(kernel, size):
    """More than 256 offsets in a window: the recorded argmax offset must not wrap."""
    shape = (2, 2) + size
    x = np.random.default_rng(0).permutation(np.linspace(-2, 2, int(np.prod(shape))))
    for stride in (1, 3):
        assert outcome("MaxPool2d", lambda: nn.MaxPool2d(kernel, stride),
                       lambda: torch.nn.MaxPool2d(kernel, stride),
                       x.reshape(shape)) == "accepted"
