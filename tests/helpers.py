"""The two helpers every layer test uses: PyTorch parity and finite differences.

``torch_parity`` runs a scratchnet layer and the same PyTorch layer on the same
weights and input, and compares the output, dL/dx, every parameter gradient and
every buffer (tinygrad's ``helper_test_op``), each within WORST (the worst errors
README states); float32 results with an absolute floor of eps32 * sum|terms|, the
magnitudes summed into the entry (``magnitudes``). ``fd_check`` is
``scratchnet.gradcheck.check_module`` with an assertion, dL/dx always among its rows.

For tests that take the ``device`` fixture: ``dev(x)`` moves a host array to the
active device, ``assert_equal`` compares arrays of any device on the host, and
``assert_host_input_refused`` checks that a GPU layer refuses a numpy input and
changes nothing (``GPU_DEVICES`` parametrises such a test over the GPU devices only).
"""
import contextlib
import copy
import itertools
import re

import numpy as np
import pytest
import torch

import scratchnet as sn
from conftest import DEVICES

# The device fixture's GPU params only ("fakegpu", "gpu"), for tests of what only a GPU
# layer does (refusing a host input): @pytest.mark.parametrize("device", GPU_DEVICES,
# indirect=True).
GPU_DEVICES = [d for d in DEVICES if d != "cpu"]

# Relative to the largest magnitude of the reference: max|a - b| / max|b| (float32 with
# the floor torch_parity explains).
TOL = {np.float64: 1e-10, np.float32: 1e-5}
# The worst errors against PyTorch that README states: torch_parity asserts them on every
# comparison, so the claim fails when the code does (measured: 8.3e-16 and 5.9e-6).
WORST = {np.float64: 4e-15, np.float32: 8e-6}
EPS32 = float(np.finfo(np.float32).eps)


def host(a):
    """A tensor, Parameter or array of either library as a numpy array."""
    if isinstance(a, torch.Tensor):
        return a.detach().numpy()
    return sn.to_numpy(a.data if isinstance(a, (sn.Tensor, sn.nn.Parameter)) else a)


def close(got, want, rtol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1., np.abs(want).max()))


def rel_err(a, b, floor=1e-30):
    """max|a - b| / max(max|b|, floor): relative, and absolute (tol * floor) for a
    reference smaller than ``floor``. torch_parity takes the floor from magnitudes()."""
    a = np.asarray(sn.to_numpy(a), dtype=np.float64)
    b = np.asarray(b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else sn.to_numpy(b),
                   dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), floor))


def copy_weights_to_torch(layer, tlayer):
    """Load the scratchnet layer's parameters and buffers into the torch layer."""
    state = {k: torch.from_numpy(np.array(sn.to_numpy(v))) for k, v in layer.state_dict().items()}
    tstate = tlayer.state_dict()
    for k in tstate:
        assert k in state, f"torch has {k}, scratchnet does not"
        tstate[k] = state[k].to(tstate[k].dtype).reshape(tstate[k].shape)
    tlayer.load_state_dict(tstate)


def magnitudes(tmodule, x, gy):
    """Per tensor torch_parity compares, the largest sum of |terms| behind one entry.

    The module runs in float64 on |x|, |parameters|, |buffers| and |gy|: every product
    is then >= 0, so each sum adds the magnitudes of its terms (exactly so for conv,
    linear and pooling; of the right size for the rest). x, gy: torch tensors.
    """
    twin = copy.deepcopy(tmodule).double()
    with torch.no_grad():
        for t in itertools.chain(twin.parameters(), twin.buffers()):
            if t.is_floating_point():
                t.abs_()
    for p in twin.parameters():
        p.grad = None
    xa = x.detach().double().abs().requires_grad_()
    ya = twin(xa)
    ya.backward(gy.detach().double().abs())
    found = {"output": ya, "input grad": xa.grad}
    found.update((f"{k}.grad", p.grad) for k, p in twin.named_parameters())
    found.update(twin.named_buffers())
    return {k: 0.0 if v is None else float(v.detach().abs().max()) for k, v in found.items()}


@contextlib.contextmanager
def leaf_io(tmodule):
    """Name -> [input, output gradient] of each submodule that owns parameters, over one
    forward and backward: what that module's parameter gradients were summed from."""
    io, handles = {}, []
    for name, m in tmodule.named_modules():
        if next(m.parameters(recurse=False), None) is None:
            continue

        def hook(mod, args, out, name=name):
            io[name] = [args[0].detach(), None]
            out.register_hook(lambda g: io[name].__setitem__(1, g.detach()))

        handles.append(m.register_forward_hook(hook))
    try:
        yield io
    finally:
        for h in handles:
            h.remove()


def torch_parity(layer, tlayer, x, dtype=np.float64, steps=1, device="cpu", seed=0):
    """Forward and backward ``steps`` times on both; return the worst relative error,
    which every comparison holds to WORST (tighter than the tolerance TOL).

    Parameters are copied once from scratchnet to torch; with steps > 1 the
    gradients accumulate and buffers (BatchNorm running stats) evolve in both.
    """
    dtype = np.dtype(dtype).type
    # A stream of its own: gy must not repeat an x the test drew with the same seed.
    rs = np.random.default_rng((seed, 0x6A7))
    tdtype = torch.float64 if dtype is np.float64 else torch.float32
    layer.to(device=device, dtype=dtype)
    x = np.asarray(x, dtype=dtype)
    training = layer.training
    # Materialise lazy parameters on both sides without touching running statistics.
    layer.eval()
    tlayer = tlayer.to(tdtype).eval()
    with sn.no_grad(), torch.no_grad():
        layer(sn.to_device(x, device))
        tlayer(torch.from_numpy(x))
    layer.train(training)
    tlayer.train(training)
    layer.zero_grad()
    copy_weights_to_torch(layer, tlayer)
    tol = TOL[dtype]
    worst = 0.0
    grad_sums = {}  # parameter gradients accumulate over the steps, and so do their sums
    for step in range(steps):
        xs = x if step == 0 else np.asarray(rs.standard_normal(x.shape), dtype=dtype)
        before = copy.deepcopy(tlayer) if dtype is np.float32 else None
        y = layer(sn.to_device(xs, device))
        xt = torch.tensor(xs, requires_grad=True)
        with leaf_io(tlayer) as io:
            yt = tlayer(xt)
            gy = np.asarray(rs.standard_normal(yt.shape), dtype=dtype)
            yt.backward(torch.from_numpy(gy))
        gx = layer.backward(sn.to_device(gy, device))
        if dtype is np.float32:
            sums = magnitudes(before, torch.from_numpy(xs), torch.from_numpy(gy))
            # A parameter's gradient is summed in the module that owns it, from that
            # module's input and output gradient (a bias before BatchNorm: terms that cancel).
            modules = dict(tlayer.named_modules())
            for name, (xin, gout) in io.items():
                for k, v in magnitudes(modules[name], xin, gout).items():
                    if k.endswith(".grad"):
                        k = f"{name}.{k}" if name else k
                        grad_sums[k] = grad_sums.get(k, 0.0) + v
            sums.update(grad_sums)
        checks = [("output", y, yt), ("input grad", gx, xt.grad)]
        named = dict(layer.named_parameters())
        for k, p in tlayer.named_parameters():
            checks.append((f"{k}.grad", named[k].grad, p.grad))
        sn_buffers = dict(layer.named_buffers())
        for k, b in tlayer.named_buffers():
            checks.append((k, sn_buffers[k], b))
        for what, a, b in checks:
            # float32: max|a - b| <= max(tol * max|b|, eps32 * sum|terms|), never looser than
            # tol * max(max|b|, 1): a float32 sum is good to the last bit of the magnitudes
            # it added, not of a result that cancels (a bias gradient before BatchNorm).
            floor = min(EPS32 * sums[what] / tol, 1.0) if dtype is np.float32 else 0.0
            err = rel_err(a, b, max(floor, 1e-30))
            assert sn.to_numpy(a).dtype == b.detach().numpy().dtype, \
                f"{what}: dtype {sn.to_numpy(a).dtype} vs torch {b.dtype}"
            assert err <= WORST[dtype], (f"step {step}: {what} differs from torch: {err:.2e} > "
                                         f"{WORST[dtype]:.0e}, the worst README states")
            worst = max(worst, err)
    return worst


def fd_check(layer, x, rtol=1e-6, check_input=True, **kw):
    """Finite differences on the active device (x and a copy of the layer are moved there).

    dL/dx is always among the rows checked, unless the caller says check_input=False.
    """
    x = sn.to_device(np.asarray(sn.to_numpy(x), dtype=np.float64), sn.get_device())
    report = sn.gradcheck.check_module(layer, x, rtol=rtol, check_input=check_input, **kw)
    assert report.ok, f"\n{report}"
    if check_input:
        assert "input" in report.rows and report.rows["input"][1] > 0, f"dL/dx unchecked\n{report}"
    return report


def dev(x):
    """``x`` on the active device when it is a numpy array (what a test feeds a layer made
    under the ``device`` fixture); lists, scalars and device arrays pass unchanged."""
    return sn.to_device(x) if isinstance(x, np.ndarray) else x


def assert_equal(a, b, **kw):
    """np.testing.assert_array_equal on host copies (either side may be a device array)."""
    np.testing.assert_array_equal(sn.to_numpy(a), sn.to_numpy(b), **kw)


def assert_host_input_refused(layer, good, name=None):
    """A host numpy input to ``layer`` (on the GPU; ``good`` is a device input) is a
    ValueError naming the layer and saying which array is where, and changes nothing:
    the cache of the good forward before it still serves backward, and a twin copied
    before the refusal gives the same outputs and gradients afterwards."""
    layer(good)  # materialise a lazy layer (and its name) before copying it
    name = name or layer.name
    fresh = copy.deepcopy(layer)
    assert_refusal_changes_nothing(
        layer, fresh, good, sn.to_numpy(good), ValueError,
        rf"{re.escape(name)}: input is a numpy array \(cpu\) but \w+ is a \w+ array \(gpu\)")


def distinct(shape, rs=None, scale=1.0):
    """Shuffled, well-separated values: no max-pool ties, nothing near a ReLU kink."""
    rs = rs or np.random.default_rng(0)
    n = int(np.prod(shape))
    # Half-integers times the step: never exactly 0, even for an odd count.
    v = (np.arange(n) - n // 2 + 0.5) * (scale * 4.0 / n)
    return rs.permutation(v).reshape(shape)


def assert_works_like(layer, fresh, x, seed=0):
    """After a refused call the layer is as it was: a correct forward and backward give
    exactly what an untouched twin gives (output, dL/dx and every parameter gradient)."""
    gy = None
    outputs = []
    for m in (layer, fresh):
        y = m(x)
        if gy is None:
            gy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
            gy = sn.to_device(gy, sn.backend.device_of(y))
        m.zero_grad()
        outputs.append([y, m.backward(gy)] + [p.grad for p in m.parameters()])
    assert len(outputs[0]) == len(outputs[1])
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(sn.to_numpy(a), sn.to_numpy(b))


def assert_refusal_changes_nothing(layer, fresh, good, bad, error, match):
    """``layer(bad)`` raises ``error`` and leaves ``layer`` as an untouched twin:
    the cache of the forward before it still serves backward (same dL/dx and parameter
    gradients as ``fresh``), and the layer works on as if nothing had happened."""
    y = layer(good)
    with pytest.raises(error, match=match):
        layer(bad)
    gy = sn.get_array_module(y).ones(y.shape, y.dtype)
    fresh(good)
    assert_equal(layer.backward(gy), fresh.backward(gy))
    for p, q in zip(layer.parameters(), fresh.parameters()):
        assert_equal(p.grad, q.grad)
    assert_works_like(layer, fresh, good)
    # Parameters and buffers (BatchNorm's running statistics, its step count) too.
    state, fresh_state = layer.state_dict(), fresh.state_dict()
    assert list(state) == list(fresh_state)
    for k in state:
        assert_equal(state[k], fresh_state[k], err_msg=k)


def assert_dtype_kept(layer, x, dtype):
    """Forward and backward keep ``dtype``: output, dL/dx, every parameter and gradient."""
    y = layer(x)
    gx = layer.backward(sn.get_array_module(y).ones(y.shape, dtype))
    assert y.dtype == dtype and gx.dtype == dtype
    for name, p in layer.named_parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype, name
