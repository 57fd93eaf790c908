"""Property-based parity with PyTorch over random layer configurations (issue 5).

The rule: every configuration PyTorch accepts, scratchnet accepts and matches in float64
(output, dL/dx, every parameter gradient and buffer, within 1e-10 relative); every
configuration PyTorch rejects (construction or forward raises), scratchnet rejects with a
ValueError or TypeError whose message names the layer. Each test draws its cases with
hypothesis (derandomized, so every run tries the same cases) and then checks that all
EXAMPLES[layer] cases ran and that both outcomes, and each drawn option, occurred often
enough for the rule to have been tested. The layers: Conv2d and Conv1d (groups 1, a
proper divisor, the channel count (depthwise), or one not dividing a channel count, or 0,
which both refuse; batched or one image/sequence), MaxPool2d (ceil_mode, return_indices
with the indices compared exactly) and AvgPool2d (ceil_mode, count_include_pad,
divisor_override, negative and 0 included), AdaptiveAvgPool2d (None in the output size),
the pools on one image (C, H, W) too, Linear (inputs (*, in): 1-D to 5-D), BatchNorm2d,
BatchNorm1d, the lazy LazyConv2d (with groups and one-image inputs), LazyLinear (any
leading axes), LazyBatchNorm1d and LazyBatchNorm2d (their first forward, the one that materialises them, is
compared; a later input with another channel count is refused by both), ReLU, Sigmoid and
Tanh (any rank, |x| up to 1e4, exact zeros), Dropout (scratchnet's mask given to torch's
dropout kernels), the losses CrossEntropyLoss (every reduction; (N, C) and (N, C, d1,
...) logits; class labels or class probabilities; weight; ignore_index, labels ignored,
all of them now and then (a mean of NaN in both); label_smoothing) and MSELoss (the loss
and dL/dinput), and the op ops.concat with its split (2-4 arrays along the channels; one
of another batch, height, width or rank refused by both).

Outside the drawn domain, on purpose: empty tensors (a batch, channel or image size of 0)
and AdaptiveAvgPool2d's output size 0 (scratchnet refuses it with a ValueError naming the
layer, torch returns an empty tensor); a BatchNorm with neither affine parameters nor
running statistics given another channel count than its num_features (torch never reads
num_features then and normalises any channel count; scratchnet refuses it);
CrossEntropyLoss on unbatched (C,) logits with a 0-d label (torch takes them; scratchnet
asks for (N, C, ...)); an MSELoss target of another shape (torch broadcasts it with a
warning; scratchnet refuses it). Disagreements on acceptance found by this fuzz's
options, left out of the draw: a negative label_smoothing (torch takes it as 0;
scratchnet refuses it); integer labels other than int64 (torch refuses int32;
scratchnet takes them); MaxPool2d(return_indices=1) (torch takes any truthy value there;
scratchnet asks for True or False, as both do for ceil_mode and count_include_pad).
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
# Cases per test: each test asserts that all of them ran (hypothesis stops early when it
# runs out of distinct cases); the outcomes are printed with -s (pytest -s -k fuzz).
EXAMPLES = {"Conv2d": 300, "Conv1d": 160, "MaxPool2d": 200, "AvgPool2d": 120,
            "AdaptiveAvgPool2d": 80, "Linear": 80, "BatchNorm2d": 160, "BatchNorm1d": 120,
            "LazyConv2d": 150, "LazyLinear": 60, "LazyBatchNorm1d": 60,
            "LazyBatchNorm2d": 80, "ReLU": 60,
            "Sigmoid": 60, "Tanh": 60, "Dropout": 120, "CrossEntropyLoss": 200,
            "MSELoss": 80, "concat": 60}
# Plus the fixed cases of test_max_pool_with_many_window_offsets: 3 shapes, 2 strides.
MANY_OFFSETS = [((16, 16), (17, 18)), ((16, 17), (16, 20)), ((1, 257), (2, 260))]
FIXED_CASES = 2 * len(MANY_OFFSETS)
SIZE = st.one_of(st.just(1), st.integers(1, 7))  # 1x1 inputs often
# A hyper-parameter is now and then made invalid, so both libraries must refuse it.
BREAK = st.sampled_from([None] * 12 + ["stride0", "kernel0", "dilation0", "negpad"])


def _compare(what, a, b, floor):
    a = sn.to_numpy(a)
    b = b.detach().numpy()
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype}, torch {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape}, torch {b.shape}"
    if not np.issubdtype(b.dtype, np.floating):  # MaxPool2d's indices
        assert np.array_equal(a, b), f"{what} differ from torch's"
        return
    # A mean over no targets (CrossEntropyLoss, every label ignored) is NaN in both.
    nan = np.isnan(b)
    assert np.array_equal(np.isnan(a), nan), f"{what}: NaNs differ"
    a, b = np.where(nan, 0.0, a), np.where(nan, 0.0, b)
    # A max-pool window lying wholly in the padding is -inf in both; compare it exactly.
    inf = np.isinf(b)
    assert np.array_equal(np.isinf(a), inf) and np.array_equal(a[inf], b[inf]), \
        f"{what}: infinities differ"
    err = rel_err(np.where(inf, 0.0, a), np.where(inf, 0.0, b), floor)
    assert err <= TOL, f"{what} differs from torch: {err:.2e} > {TOL:.0e}"


def parity(layer, tlayer, x, steps=1, seed=0, gx_scale=None, copy=True):
    """torch_parity (helpers.py) in float64. A lazy layer (copy=False) is still lazy: its
    first forward here materialises it, and ``tlayer`` already holds the weights it will
    draw (see lazy_outcome).

    ``gx_scale(x)`` (BatchNorm) is the size of the terms dL/dx is a sum of, per unit of
    gy: with two values per channel dL/dx is zero up to their rounding, so its error is
    measured against them, not against its own rounding-sized values.
    """
    rs = np.random.default_rng((seed, 0x6A7))
    layer.to(dtype=np.float64)
    tlayer = tlayer.double()
    tlayer.train(layer.training)
    layer.zero_grad()
    if copy:
        copy_weights_to_torch(layer, tlayer)
    for step in range(steps):
        xs = x if step == 0 else rs.standard_normal(x.shape)
        y = layer(xs)
        xt = torch.tensor(xs, requires_grad=True)
        yt = tlayer(xt)
        checks = []
        if isinstance(yt, tuple):  # MaxPool2d(return_indices=True): (output, indices)
            assert isinstance(y, tuple) and len(y) == 2, "scratchnet gives no indices"
            (y, idx), (yt, idxt) = y, yt
            checks.append(("indices", idx, idxt, None))
        gy = rs.standard_normal(tuple(yt.shape))
        gx = layer.backward(gy)
        yt.backward(torch.from_numpy(gy))
        gx_floor = 1e-30 if gx_scale is None else gx_scale(xs) * np.abs(gy).max(initial=0.0)
        checks += [("output", y, yt, 1e-30), ("input grad", gx, xt.grad, gx_floor)]
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
    assert sum(counts.values()) == EXAMPLES[name], \
        f"{name}: {sum(counts.values())} cases ran, not {EXAMPLES[name]}"
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
def grouped_channels(draw):
    """(in_channels, out_channels, groups): groups 1, a proper divisor of the input channel
    count (2 or 3 of 4 or 6) that divides the output's too, the input channel count
    (depthwise, each output group 1 or 2 channels), or, now and then, one that both must
    refuse: not dividing one of the channel counts, or 0."""
    kind = draw(st.sampled_from(["1"] * 4 + ["divisor"] * 3 + ["depthwise"] * 2 + ["bad"]))
    if kind == "1":
        return draw(st.integers(1, 3)), draw(st.integers(1, 3)), 1
    if kind == "divisor":
        g = draw(st.integers(2, 3))
        return 2 * g, g * draw(st.integers(1, 2)), g
    if kind == "depthwise":
        c = draw(st.integers(1, 4))
        return c, c * draw(st.integers(1, 2)), c
    g = draw(st.integers(2, 3))
    cin, cout = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    which = draw(st.sampled_from(["in", "out", "zero"]))
    if which == "zero":
        return cin, cout, 0
    off = draw(st.integers(1, g - 1))
    return (cin + off, cout, g) if which == "in" else (cin, cout + off, g)


UNBATCHED = st.sampled_from([False] * 3 + [True])  # one image, (C, H, W) or (C, L)


def _note_groups(seen, result, kw, cin, cout, unbatched):
    """Count the options a case had (not exclusive): groups > 1 accepted (depthwise when
    groups == in_channels), a groups that divides not both channel counts refused, one
    image or sequence accepted."""
    g = kw["groups"]
    if result == "rejected":
        if g < 1 or cin % g or cout % g:
            seen["groups not dividing the channels (or 0), refused"] += 1
        return
    if g > 1:
        seen["depthwise" if g == cin else "groups, a divisor"] += 1
    if unbatched:
        seen["unbatched"] += 1


def _assert_groups_seen(name, seen, least):
    print(f"{name}, with: {dict(seen)}")
    assert len(seen) == 4 and min(seen.values()) >= least, seen


@st.composite
def conv2d_cases(draw):
    kw = dict(kernel_size=draw(pair(1, 5)), stride=draw(pair(1, 3)),
              dilation=draw(st.sampled_from([1, 1, 2, (1, 2), (3, 1)])),
              padding=draw(st.one_of(pair(0, 2), st.sampled_from(["same", "valid"]))),
              bias=draw(st.booleans()))
    kw = _break(kw, draw(BREAK))
    cin, cout, kw["groups"] = draw(grouped_channels())
    # Now and then the input has one channel too many.
    cx = cin + draw(st.sampled_from([0] * 9 + [1]))
    shape = (cx, draw(SIZE), draw(SIZE))
    if not draw(UNBATCHED):
        shape = (draw(st.integers(1, 3)),) + shape
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
        _note_groups(seen, result, kw, cin, cout, len(shape) == 3)
        pad = kw["padding"]
        if result == "accepted" and not isinstance(pad, str):
            if any(_fits_exactly(s, k, p, d) for s, k, p, d in zip(
                    shape[-2:], hw(kw["kernel_size"]), hw(pad), hw(kw["dilation"]))):
                return "accepted, kernel = padded input"
            if shape[-2:] == (1, 1):
                return "accepted, 1x1 input"
        return result

    seen = collections.Counter()
    counts = run_fuzz("Conv2d", conv2d_cases(), check)
    _assert_groups_seen("Conv2d", seen, 10)
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
    cin, cout, kw["groups"] = draw(grouped_channels())
    shape = (cin, draw(st.integers(1, 9)))
    if not draw(UNBATCHED):
        shape = (draw(st.integers(1, 3)),) + shape
    return cin, cout, kw, shape


def test_conv1d_fuzz():
    def check(case):
        cin, cout, kw, shape = case
        x = np.random.default_rng(sum(shape)).standard_normal(shape)
        result = outcome("Conv1d", lambda: nn.Conv1d(cin, cout, **kw),
                         lambda: torch.nn.Conv1d(cin, cout, **kw), x)
        _note_groups(seen, result, kw, cin, cout, len(shape) == 2)
        return result

    seen = collections.Counter()
    counts = run_fuzz("Conv1d", conv1d_cases(), check)
    _assert_groups_seen("Conv1d", seen, 5)
    assert counts["rejected"] >= 8 and counts["accepted"] >= 25


@st.composite
def pool_cases(draw, name):
    kernel = draw(pair(1, 4))
    kh, kw_ = hw(kernel)
    # Padding up to half the kernel; now and then one more, which both must refuse.
    over = draw(st.sampled_from([0] * 5 + [1]))
    padding = draw(st.one_of(st.integers(0, min(kh, kw_) // 2 + over),
                             st.tuples(st.integers(0, kh // 2 + over),
                                       st.integers(0, kw_ // 2 + over))))
    kw = dict(kernel_size=kernel, stride=draw(st.one_of(st.none(), pair(1, 3))),
              padding=padding, ceil_mode=draw(st.booleans()))
    if name == "MaxPool2d":
        kw["dilation"] = draw(st.sampled_from([1, 1, 2, 3, (1, 2)]))
        kw["return_indices"] = draw(st.booleans())
    else:
        kw["count_include_pad"] = draw(st.booleans())
        # 0: refused by both; a negative divisor is taken by both
        kw["divisor_override"] = draw(st.sampled_from([None] * 6 + [1, 3, -2, 0]))
    kw = _break(kw, draw(BREAK), tuple(kw))
    shape = (draw(st.integers(1, 3)), draw(SIZE), draw(SIZE))
    if not draw(UNBATCHED):
        shape = (draw(st.integers(1, 2)),) + shape
    return kw, shape


def _all_padding_window(shape, kw):
    """Some max-pool window of a valid configuration lies wholly in the padding."""
    stride = kw["stride"] if kw["stride"] is not None else kw["kernel_size"]
    axes = list(zip(shape[-2:], hw(kw["kernel_size"]), hw(stride), hw(kw["padding"]),
                    hw(kw.get("dilation", 1))))
    if any(min(k, s, d) < 1 or not 0 <= 2 * p <= k or size + 2 * p < d * (k - 1) + 1
           for size, k, s, p, d in axes):
        return False  # rejected by both
    for size, k, s, p, d in axes:
        n_out = _pool_out(size, k, s, p, d, kw["ceil_mode"])
        for o in range(n_out):
            if all(not p <= o * s + i * d < p + size for i in range(k)):
                return True
    return False


def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size: ceil mode drops a last window that would start
    past the input (in the trailing padding)."""
    span = size + 2 * p - d * (k - 1) - 1
    n = (span + (s - 1 if ceil_mode else 0)) // s + 1
    return n - 1 if ceil_mode and (n - 1) * s >= size + p else n


class _Crop(torch.nn.Module):
    """The leading (oh, ow) of each plane: ceil mode over an input padded beforehand may
    keep a last window that the padded pooling drops."""

    def __init__(self, oh, ow):
        super().__init__()
        self.oh, self.ow = oh, ow

    def forward(self, y):
        return y[..., :self.oh, :self.ow]


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
    y = make()(x)
    if kw.get("return_indices"):
        # torch's index for a window wholly in the padding points past the input (see
        # above); every other index is compared.
        (y, idx), (yt, idxt) = y, yt
        finite = torch.isfinite(yt).numpy()
        _compare("indices", sn.to_numpy(idx)[finite], idxt[finite], None)
    _compare("output", y, yt, 1e-30)
    kw = dict(kw, return_indices=False)  # the gradient does not depend on it
    ref = lambda: torch.nn.Sequential(  # noqa: E731
        torch.nn.ConstantPad2d((pw, pw, ph, ph), float("-inf")),
        torch.nn.MaxPool2d(kw["kernel_size"], kw["stride"], 0, dilation,
                           ceil_mode=kw["ceil_mode"]),
        _Crop(*yt.shape[-2:]))
    outcome("MaxPool2d", lambda: nn.MaxPool2d(**kw), lambda: torch.nn.MaxPool2d(**kw), x,
            make_ref=ref)
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
            result = _all_padding_case(make, make_torch, kw, x)
        else:
            result = outcome(name, make, make_torch, x)
        if result != "rejected":  # the options each accepted case had (not exclusive)
            seen.update(k for k, v in [
                ("one image", len(shape) == 3), ("ceil_mode", kw["ceil_mode"]),
                ("return_indices", kw.get("return_indices")),
                ("count_include_pad=False", kw.get("count_include_pad") is False),
                ("divisor_override", kw.get("divisor_override") is not None)] if v)
        return result

    seen = collections.Counter()
    counts = run_fuzz(name, pool_cases(name), check)
    print(f"{name}, accepted with: {dict(seen)}")
    assert counts["rejected"] >= 10 and counts["accepted"] >= 25
    assert seen["one image"] >= 10 and seen["ceil_mode"] >= 10
    if name == "MaxPool2d":
        assert seen["return_indices"] >= 10
        assert counts["accepted, a window wholly in the padding"] >= 3
    else:
        assert seen["count_include_pad=False"] >= 10 and seen["divisor_override"] >= 5


def test_adaptive_avg_pool_fuzz():
    # None for oh or ow keeps the input's size; a bare None is refused by both (torch at
    # its forward).
    size = st.one_of(st.none(), st.integers(1, 9))
    out = st.one_of(st.integers(1, 9), st.tuples(size, size),
                    st.sampled_from([None] + [3] * 9))
    shape = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7))
    cases = st.tuples(out, shape, UNBATCHED, st.integers(1, 2))

    def check(case):
        out, shape, one, n = case
        shape = shape if one else (n,) + shape
        x = np.random.default_rng(sum(shape)).standard_normal(shape)
        result = outcome("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(out),
                         lambda: torch.nn.AdaptiveAvgPool2d(out), x)
        if result == "rejected":
            assert out is None, f"AdaptiveAvgPool2d({out}) refused by both"
            return result
        if one:
            seen["one image"] += 1
        if None in hw(out):
            seen["None in the output size"] += 1
        larger = any(o is not None and o > s for o, s in zip(hw(out), shape[-2:]))
        return result + (", larger than the input" if larger else "")

    seen = collections.Counter()
    counts = run_fuzz("AdaptiveAvgPool2d", cases, check)
    print(f"AdaptiveAvgPool2d, accepted with: {dict(seen)}")
    assert counts["accepted, larger than the input"] >= 10
    assert counts["rejected"] >= 1  # output_size None
    assert seen["one image"] >= 10 and seen["None in the output size"] >= 10


def linear_leading():
    """Leading axes of a Linear input (*, in): none (a 1-D input), (N,) (most often), or
    (N, *) with up to 3 axes more."""
    return st.sampled_from([0, 1, 1, 1, 2, 3, 4]).flatmap(
        lambda k: st.tuples(*[st.integers(1, 4)] * k))


def test_linear_fuzz():
    cases = st.tuples(st.integers(1, 6), st.integers(1, 6), st.booleans(),
                      linear_leading(), st.sampled_from([0] * 5 + [1, -1]))

    def check(case):
        fin, fout, bias, lead, off = case
        shape = lead + (max(fin + off, 1),)
        x = np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape)
        result = outcome("Linear", lambda: nn.Linear(fin, fout, bias=bias),
                         lambda: torch.nn.Linear(fin, fout, bias=bias), x)
        if result == "accepted" and len(shape) != 2:
            return "accepted, 1-D" if len(shape) == 1 else "accepted, (N, *, in)"
        return result

    counts = run_fuzz("Linear", cases, check)
    assert counts["rejected"] >= 3 and counts["accepted"] >= 5
    assert counts["accepted, 1-D"] >= 5 and counts["accepted, (N, *, in)"] >= 10


BN_RANKS = {"BatchNorm2d": (4,), "BatchNorm1d": (2, 3)}


@st.composite
def batch_norm_cases(draw, name="BatchNorm2d"):
    kw = dict(eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])),
              momentum=draw(st.sampled_from([0.1, 0.5, 1.0, None])),
              affine=draw(st.booleans()), track_running_stats=draw(st.booleans()))
    c = draw(st.integers(1, 3))
    cx = c + draw(st.sampled_from([0] * 9 + [1]))  # now and then one channel too many
    if not (kw["affine"] or kw["track_running_stats"]):
        cx = c  # outside the domain (see the module docstring)
    if name == "BatchNorm1d":
        # (N, C) or (N, C, L); now and then a 4-d input, which both refuse
        rank = draw(st.sampled_from([2, 2, 3, 3, 3, 3, 3, 3, 3, 4]))
        shape = (draw(st.integers(1, 4)), cx) + tuple(draw(st.integers(1, 3))
                                                      for _ in range(rank - 2))
    else:
        shape = (draw(st.integers(1, 3)), cx, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return c, kw, shape, draw(st.booleans()), draw(st.integers(1, 2))


def _two_values_per_channel(shape):
    return int(np.prod(shape)) // shape[1] == 2


def _bn_gx_scale(gamma, kw, shape, batch_stats):
    """The floor of dL/dx's error, for the one case that needs one: with two values per
    channel and batch statistics, dL/dx is zero up to the rounding of the terms it sums
    (gamma / sqrt(var + eps) times gy), so its error is measured against them, not against
    its own rounding-sized values. Every other case is compared as every layer is."""
    if not (batch_stats and _two_values_per_channel(shape)):
        return None

    def scale(xs):
        gmax = np.abs(gamma).max() if kw["affine"] else 1.0
        axes = (0,) + tuple(range(2, xs.ndim))
        return gmax / np.sqrt(xs.var(axis=axes).min() + kw["eps"])

    return scale


@pytest.mark.parametrize("name", ["BatchNorm2d", "BatchNorm1d"])
def test_batch_norm_fuzz(name):
    def check(case):
        c, kw, shape, training, steps = case
        rs = np.random.default_rng(sum(shape))
        x = rs.standard_normal(shape) * 3 + 1
        gamma = rs.uniform(0.5, 2, c) * rs.choice([-1, 1], c)

        def make():
            layer = getattr(nn, name)(c, **kw).double().train(training)
            if kw["affine"]:
                layer.weight.data[...] = gamma
                layer.bias.data[...] = rs.standard_normal(c)
            if kw["track_running_stats"]:
                layer.running_mean[...] = rs.standard_normal(c)
                layer.running_var[...] = rs.uniform(0.5, 2, c)
            return layer

        def make_torch():
            return getattr(torch.nn, name)(c, **kw).train(training)

        batch_stats = training or not kw["track_running_stats"]
        result = outcome(name, make, make_torch, x, steps=steps,
                         gx_scale=_bn_gx_scale(gamma, kw, shape, batch_stats))
        if result == "accepted" and batch_stats and _two_values_per_channel(shape):
            return "accepted, two values per channel"
        if result == "accepted" and len(shape) not in BN_RANKS[name]:
            return "accepted, wrong rank"  # fails below: both must refuse it
        return result

    counts = run_fuzz(name, batch_norm_cases(name), check)
    assert counts["rejected"] >= 8 and counts["accepted"] >= 40
    assert counts["accepted, two values per channel"] >= 5
    assert counts["accepted, wrong rank"] == 0


def _state(layer):
    return {k: np.array(sn.to_numpy(v)) for k, v in layer.state_dict().items()}


def lazy_outcome(name, make, make_torch, x, other_channels=None, steps=1, seed=0,
                 gx_scale=None):
    """outcome() for a lazy layer (``name``: its class, e.g. "LazyConv2d"), whose first
    forward in the comparison is the one that materialises it.

    Rejected by torch: scratchnet refuses too, naming the lazy layer, and stays lazy.
    Accepted: scratchnet draws its weights at that first forward from its own generator;
    a probe drawn from the same seed tells them to torch's layer beforehand (BatchNorm's
    are ones and zeros on both sides), and the comparison runs as parity() does. Then,
    with ``other_channels``, a second input with that many channels (features): both
    refuse it, scratchnet naming the now ordinary layer and changing nothing.
    """
    xt = torch.from_numpy(x)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                make_torch().double()(xt)
        torch_error = None
    except (RuntimeError, ValueError, TypeError) as e:
        torch_error = e
    if torch_error is not None:
        layer = None
        with pytest.raises((ValueError, TypeError)) as info:
            layer = make()
            layer(x)
        assert name in str(info.value), \
            f"torch rejects ({torch_error}); scratchnet's message does not name {name}: " \
            f"{info.value}"
        if layer is not None:
            assert all(v is None for v in layer.state_dict().values()), \
                f"{name} materialised on an input it refused"
        return "rejected"
    tlayer = make_torch().double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tlayer.initialize_parameters(xt)  # materialised, nothing computed
    if not name.startswith("LazyBatchNorm"):
        sn.manual_seed(seed)
        probe = make()
        with sn.no_grad():
            probe.eval()(x)
        copy_weights_to_torch(probe, tlayer)
    sn.manual_seed(seed)
    layer = make()
    assert all(v is None for v in layer.state_dict().values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parity(layer, tlayer, x, steps=steps, copy=False, gx_scale=gx_scale)
    if other_channels is None:
        return "accepted"
    shape = list(x.shape)
    shape[_channel_axis(name, x.ndim)] = other_channels
    x2 = np.random.default_rng(seed).standard_normal(shape)
    with pytest.raises(RuntimeError):
        tlayer(torch.from_numpy(x2))
    before = _state(layer)
    eager = name[len("Lazy"):]
    with pytest.raises((ValueError, TypeError), match=eager):
        layer(x2)
    after = _state(layer)
    assert list(after) == list(before) and all(
        np.array_equal(after[k], before[k]) for k in before), f"{eager} changed on refusal"
    return "accepted, another channel count refused"


def _channel_axis(name, ndim):
    """Where a lazy layer reads its in_channels (in_features): the last axis for
    LazyLinear, axis 0 of one image (C, H, W) for LazyConv2d, else axis 1."""
    if name == "LazyLinear":
        return ndim - 1
    return 0 if name == "LazyConv2d" and ndim == 3 else 1


@st.composite
def lazy_cases(draw, name):
    """(kwargs, input shape, training, steps, a second input's channel count or None)."""
    other = draw(st.sampled_from([False, False, True]))
    training, steps = draw(st.booleans()), draw(st.integers(1, 2))
    if name == "LazyConv2d":
        _, cout, kw, shape = draw(conv2d_cases())
        kw = dict(kw, out_channels=cout)
    elif name == "LazyLinear":
        kw = dict(out_features=draw(st.integers(1, 6)), bias=draw(st.booleans()))
        shape = draw(linear_leading()) + (draw(st.integers(1, 6)),)
    else:
        _, kw, shape, training, steps = draw(batch_norm_cases(name[len("Lazy"):]))
        # Without weights or running statistics torch takes any channel count.
        other = other and (kw["affine"] or kw["track_running_stats"])
    return kw, shape, training, steps, (shape[_channel_axis(name, len(shape))] + 1
                                        if other else None)


@pytest.mark.parametrize("name", ["LazyConv2d", "LazyLinear", "LazyBatchNorm1d",
                                  "LazyBatchNorm2d"])
def test_lazy_fuzz(name):
    def check(case):
        kw, shape, training, steps, other = case
        x = np.random.default_rng(sum(shape)).standard_normal(shape) * 3 + 1
        make = lambda: getattr(nn, name)(**kw).train(training)  # noqa: E731
        make_torch = lambda: getattr(torch.nn, name)(**kw).train(training)  # noqa: E731
        gx_scale = None
        if name.startswith("LazyBatchNorm"):  # gamma: ones
            batch_stats = training or not kw["track_running_stats"]
            gx_scale = _bn_gx_scale(np.ones(1), kw, shape, batch_stats)
        result = lazy_outcome(name, make, make_torch, x, other, steps=steps,
                              seed=sum(shape), gx_scale=gx_scale)
        if result != "rejected":  # the options each accepted case had (not exclusive)
            seen.update(k for k, v in [
                ("groups > 1", kw.get("groups", 1) > 1),
                ("one image", name == "LazyConv2d" and len(shape) == 3),
                ("input not 2-D", name == "LazyLinear" and len(shape) != 2)] if v)
        return result

    seen = collections.Counter()
    counts = run_fuzz(name, lazy_cases(name), check)
    if seen:
        print(f"{name}, accepted with: {dict(seen)}")
    if name == "LazyConv2d":
        assert seen["groups > 1"] >= 8 and seen["one image"] >= 5
    if name == "LazyLinear":
        assert seen["input not 2-D"] >= 20
    assert counts["accepted"] >= 25
    assert counts["accepted, another channel count refused"] >= 8
    if name != "LazyLinear":  # every LazyLinear configuration in the domain is valid
        assert counts["rejected"] >= 8


@st.composite
def activation_inputs(draw):
    """Any rank 0-4, magnitudes from 1 to 1e4 (saturated sigmoids and tanhs, exp
    overflow if done naively), and now and then exact zeros (ReLU's kink)."""
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(0, 4))))
    scale = draw(st.sampled_from([1.0, 1.0, 10.0, 1e3, 1e4]))
    zeros = draw(st.booleans())
    return shape, scale, zeros


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh"])
def test_activation_fuzz(name):
    def check(case):
        shape, scale, zeros = case
        rs = np.random.default_rng(len(shape) + int(np.prod(shape)))
        x = np.asarray(rs.standard_normal(shape) * scale)
        if zeros:
            x[rs.random(shape) < 0.5] = 0.0
        result = outcome(name, lambda: getattr(nn, name)(), lambda: getattr(torch.nn, name)(), x)
        if zeros and (x == 0).any():
            return result + ", with zeros"
        if scale >= 1e3:
            return result + ", |x| up to 1e4"
        return result

    counts = run_fuzz(name, activation_inputs(), check)
    assert set(counts) <= {"accepted", "accepted, with zeros", "accepted, |x| up to 1e4"}
    assert min(counts["accepted, with zeros"], counts["accepted, |x| up to 1e4"]) >= 8


DROPOUT_P = [0.0, 0.1, 0.5, 0.5, 0.9, 0.9, 1.0, -0.1, 1.5]


def test_dropout_fuzz():
    """Dropout against torch with the mask fixed: the mask scratchnet draws (read back by
    drawing again from the same seed) is given to torch's own dropout kernels (forward
    input * mask * scale, backward native_dropout_backward). p 0 and 1 and eval mode
    draw no mask and are compared with torch's Dropout itself; p outside [0, 1] is
    refused by both. Over all cases the kept fraction is 1 - p within 5 sigma."""
    kept = expected = variance = 0.0

    def check(case):
        nonlocal kept, expected, variance
        p, shape, training = case
        seed = int(np.prod(shape)) + len(shape)
        x = np.random.default_rng(seed).standard_normal(shape)
        make = lambda: nn.Dropout(p).train(training)  # noqa: E731
        make_torch = lambda: torch.nn.Dropout(p).train(training)  # noqa: E731
        if not training or p in (0.0, 1.0) or not 0 <= p <= 1:
            result = outcome("Dropout", make, make_torch, x)
            return result if result == "rejected" else result + ", no mask"
        sn.manual_seed(seed)
        mask = sn.to_numpy(sn.ops.dropout_mask(x, p))
        scale = 1.0 / (1.0 - p)
        assert set(np.unique(mask)) <= {0.0, scale}, "mask values other than 0 and 1/(1-p)"
        keep = torch.from_numpy(mask != 0)
        kept += float((mask != 0).sum())
        expected += x.size * (1 - p)
        variance += x.size * p * (1 - p)
        sn.manual_seed(seed)
        layer = make()
        y = layer(x)
        gy = np.random.default_rng((seed, 1)).standard_normal(shape)
        gx = layer.backward(gy)
        xt = torch.from_numpy(x)
        _compare("output", y, xt.mul(keep).mul_(scale), 1e-30)
        _compare("input grad", gx, torch.ops.aten.native_dropout_backward(
            torch.from_numpy(gy), keep, scale), 1e-30)
        return "accepted, fixed mask"

    cases = st.tuples(st.sampled_from(DROPOUT_P),
                      st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple),
                      st.sampled_from([True, True, True, False]))
    counts = run_fuzz("Dropout", cases, check)
    assert counts["accepted, fixed mask"] >= 40
    assert counts["accepted, no mask"] >= 15 and counts["rejected"] >= 8
    assert abs(kept - expected) <= 5 * np.sqrt(variance), (kept, expected)


def loss_outcome(name, make, make_torch, x, target, gy_shape):
    """outcome() for a loss: the loss and dL/dinput for a random upstream gradient, or
    refused by both (torch raises IndexError for a label out of range)."""
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.from_numpy(target)
    try:
        tl = make_torch()(xt, tt)
        torch_error = None
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        torch_error = e
    if torch_error is not None:
        with pytest.raises((ValueError, TypeError)) as info:
            make()(x, target)
        assert name in str(info.value), \
            f"torch rejects ({torch_error}); scratchnet's message does not name {name}: " \
            f"{info.value}"
        return "rejected"
    loss = make()
    value = loss(x, target)
    gy = np.random.default_rng(x.size).standard_normal(gy_shape)
    gx = loss.backward(gy)
    tl.backward(torch.from_numpy(gy))
    _compare("loss", value, tl, 1e-30)
    _compare("input grad", gx, xt.grad, 1e-30)
    return "accepted"


REDUCTIONS = st.sampled_from(["mean", "sum", "none", "avg"])  # "avg": refused by both


def test_cross_entropy_fuzz():
    @st.composite
    def cases(draw):
        n, c = draw(st.integers(1, 5)), draw(st.integers(1, 6))
        dims = draw(st.sampled_from([()] * 3 + [(1,), (2,), (3,), (2, 2), (1, 3)]))
        probs = draw(st.sampled_from([False] * 3 + [True]))
        bad = draw(st.sampled_from(
            [None] * 10 + ["label C", "label -1", "labels N+1", "weight C+1", "smoothing 1.5"]))
        return dict(n=n, c=c, dims=dims, probs=probs, bad=bad,
                    scale=draw(st.sampled_from([1.0, 10.0, 1e3, 1e4])),
                    reduction=draw(REDUCTIONS), weight=draw(st.booleans()),
                    # Excluded, a disagreement: with class probabilities torch refuses an
                    # ignore_index >= 0 ("ignore_index is not supported for floating point
                    # target"); scratchnet takes it and ignores it (there are no labels).
                    ignore=draw(st.sampled_from([None] * 3 + [-1] if probs else
                                                [None] * 3 + [-1, 0, "C-1", "C"])),
                    smoothing=draw(st.sampled_from([0.0] * 3 + [0.1, 0.5, 1.0])))

    def check(case):
        n, c, dims, bad = case["n"], case["c"], case["dims"], case["bad"]
        rs = np.random.default_rng(n * 7 + c + 100 * len(dims))
        x = rs.standard_normal((n, c) + dims) * case["scale"]
        ignore = {None: -100, "C-1": c - 1, "C": c}.get(case["ignore"], case["ignore"])
        if case["probs"]:  # class probabilities (rows summing to 1, or not: both take them)
            target = rs.uniform(0, 1, x.shape)
            if rs.random() < 0.7:
                target /= target.sum(axis=1, keepdims=True)
        else:
            target = rs.integers(0, c, (n + (bad == "labels N+1"),) + dims)
            if bad in ("label C", "label -1"):
                target.reshape(-1)[rs.integers(0, target.size)] = c if bad == "label C" else -1
            if ignore != -100 and rs.random() < 0.7:  # some labels ignored (maybe all)
                target[rs.random(target.shape) < 0.4] = ignore
        kw = dict(ignore_index=ignore,
                  label_smoothing=1.5 if bad == "smoothing 1.5" else case["smoothing"])
        w = rs.uniform(0.2, 2, c + (bad == "weight C+1")) if case["weight"] else None
        reduction = case["reduction"]
        result = loss_outcome(
            "CrossEntropyLoss", lambda: nn.CrossEntropyLoss(reduction, weight=w, **kw),
            lambda: torch.nn.CrossEntropyLoss(
                weight=None if w is None else torch.from_numpy(w), reduction=reduction, **kw),
            x, target, (n,) + dims if reduction == "none" else ())
        if result == "accepted":  # the options each accepted case had (not exclusive)
            seen.update(k for k, v in [
                ("|logits| up to 1e4", case["scale"] >= 1e3), ("(N, C, d1, ...)", dims),
                ("class probabilities", case["probs"]), ("weight", w is not None),
                ("ignored labels", not case["probs"] and (target == ignore).any()),
                ("label_smoothing", kw["label_smoothing"] > 0)] if v)
            if not case["probs"] and (target == ignore).all() and reduction == "mean":
                nan["every label ignored, a mean of NaN"] += 1
        return result

    seen, nan = collections.Counter(), collections.Counter()
    counts = run_fuzz("CrossEntropyLoss", cases(), check)
    print(f"CrossEntropyLoss, accepted with: {dict(seen)}, {dict(nan)}")
    assert counts["accepted"] >= 60 and counts["rejected"] >= 20
    assert min(seen.values()) >= 15 and len(seen) == 6, seen
    assert nan["every label ignored, a mean of NaN"] >= 1


def test_mse_fuzz():
    cases = st.tuples(st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple),
                      st.sampled_from([1.0, 1e3]), REDUCTIONS)

    def check(case):
        shape, scale, reduction = case
        rs = np.random.default_rng(int(np.prod(shape)) + len(shape))
        x = np.asarray(rs.standard_normal(shape) * scale)
        target = np.asarray(rs.standard_normal(shape) * scale)
        return loss_outcome("MSELoss", lambda: nn.MSELoss(reduction),
                            lambda: torch.nn.MSELoss(reduction=reduction), x, target,
                            shape if reduction == "none" else ())

    counts = run_fuzz("MSELoss", cases, check)
    assert counts["accepted"] >= 40 and counts["rejected"] >= 8


CONCAT_BREAK = {"batch": 0, "height": 2, "width": 3}


@st.composite
def concat_cases(draw):
    """2-4 arrays (N, C_k, H, W) joined along the channels, each with its own C_k; now
    and then one with another batch size, height, width or rank, which both refuse."""
    n, h, w = draw(SIZE), draw(SIZE), draw(SIZE)
    shapes = [[n, draw(st.integers(1, 5)), h, w] for _ in range(draw(st.integers(2, 4)))]
    bad = draw(st.sampled_from([None] * 6 + [*CONCAT_BREAK, "rank"]))
    if bad is not None:
        j = draw(st.integers(1, len(shapes) - 1))
        if bad == "rank":
            del shapes[j][3]
        else:
            shapes[j][CONCAT_BREAK[bad]] += draw(st.integers(1, 2))
    return [tuple(s) for s in shapes]


def test_concat_fuzz():
    """ops.concat and its split (concat_backward) against torch.cat and its backward,
    along the channels; the refused cases name the layer and the shapes that clash."""
    def check(shapes):
        rs = np.random.default_rng(len(shapes) + sum(map(sum, shapes)))
        xs = [rs.standard_normal(s) for s in shapes]
        xts = [torch.tensor(x, requires_grad=True) for x in xs]
        try:
            yt = torch.cat(xts, dim=1)
        except RuntimeError:
            with pytest.raises(ValueError) as info:
                sn.ops.concat(xs, axis=1, name="Inception")
            clash = next(s for s in shapes if len(s) != 4 or s[:1] + s[2:] != shapes[0][:1] +
                         shapes[0][2:])
            assert str(info.value).startswith(f"Inception: cannot concatenate {shapes[0]} "
                                              f"and {clash}"), info.value
            return "rejected"
        _compare("output", sn.ops.concat(xs, axis=1), yt, 1e-30)
        gy = rs.standard_normal(tuple(yt.shape))
        yt.backward(torch.from_numpy(gy))
        for k, (g, xt) in enumerate(zip(sn.ops.concat_backward(gy, [s[1] for s in shapes]),
                                        xts)):
            _compare(f"input grad {k}", g, xt.grad, 1e-30)
        return "accepted"

    counts = run_fuzz("concat", concat_cases(), check)
    assert counts["accepted"] >= 25 and counts["rejected"] >= 10


@pytest.mark.parametrize("kernel, size", MANY_OFFSETS)
def test_max_pool_with_many_window_offsets(kernel, size):
    """More than 256 offsets in a window: the recorded argmax offset must not wrap."""
    shape = (2, 2) + size
    x = np.random.default_rng(0).permutation(np.linspace(-2, 2, int(np.prod(shape))))
    for stride in (1, 3):
        assert outcome("MaxPool2d", lambda: nn.MaxPool2d(kernel, stride),
                       lambda: torch.nn.MaxPool2d(kernel, stride),
                       x.reshape(shape)) == "accepted"
