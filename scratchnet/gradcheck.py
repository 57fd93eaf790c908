"""Finite-difference gradient checks, for tests and for students at the REPL.

    >>> report = sn.gradcheck.check_module(nn.Conv2d(2, 3, 3), x)
    >>> print(report); report.ok

Each check compares backward's gradients with central differences of
L = sum(module(x) * gy) in float64, for a random upstream gradient gy
(cs231n's ``eval_numerical_gradient_array``). The error of a tensor is
max|analytic - numeric| / max(max|numeric|, atol / rtol): relative, except for
a gradient that is zero in truth (a bias followed by BatchNorm), where only
rounding noise is left and the test becomes max|analytic - numeric| <= atol.
Small tensors are checked entry by entry; large ones on a random sample of
entries plus one random direction (Chainer's ``check_backward``). A backward that
returns no dL/dx fails the "input" row: a missing gradient is never a pass.
"""
import contextlib
import copy

import numpy as np

from . import backend


def numerical_gradient(f, x, eps=1e-6, indices=None):
    """Central differences of the scalar f() w.r.t. the array x, perturbed in place.

    Returns the full gradient, or only the entries at ``indices`` (flat positions).
    """
    flat = x.reshape(-1)
    if indices is None:
        indices = range(flat.size)
    out = np.zeros(len(indices))
    for k, i in enumerate(indices):
        old = flat[i].item()
        flat[i] = old + eps
        fp = float(f())
        flat[i] = old - eps
        fm = float(f())
        flat[i] = old
        out[k] = (fp - fm) / (2 * eps)
    return out if not isinstance(indices, range) else out.reshape(x.shape)


def directional_derivative(f, x, d, eps=1e-6):
    """(f(x + eps d) - f(x - eps d)) / 2 eps, restoring x afterwards."""
    old = x.copy()
    x += eps * d
    fp = float(f())
    x[...] = old - eps * d
    fm = float(f())
    x[...] = old
    return (fp - fm) / (2 * eps)


def rel_error(analytic, numeric, floor=0.0):
    """max|a - n| / max(max|n|, floor) (max|a| when the numeric gradient is all zero).

    ``floor`` turns the comparison absolute for gradients smaller than it.
    """
    a = np.asarray(backend.to_numpy(analytic), dtype=np.float64).reshape(-1)
    n = np.asarray(backend.to_numpy(numeric), dtype=np.float64).reshape(-1)
    scale = max(np.abs(n).max(initial=0.0), np.abs(a).max(initial=0.0) * (not n.any()),
                floor, 1e-300)
    return float(np.abs(a - n).max(initial=0.0) / scale)


class GradcheckReport:
    """Per-tensor result: name -> (relative error, entries checked, method)."""

    def __init__(self, rtol):
        self.rtol = rtol
        self.rows = {}

    def add(self, name, error, checked, method):
        self.rows[name] = (error, checked, method)

    def add_missing(self, name):
        """A gradient backward did not return: a row that fails, whatever the tolerance."""
        self.rows[name] = (float("inf"), 0, "none")

    @property
    def ok(self):
        return all(err <= self.rtol for err, _, _ in self.rows.values())

    def __bool__(self):
        return self.ok

    def max_error(self):
        return max((err for err, _, _ in self.rows.values()), default=0.0)

    def __repr__(self):
        width = max([len(k) for k in self.rows] + [6])
        lines = [f"{'tensor':<{width}}  {'rel. error':>10}  {'checked':>8}  method  ok"]
        for k, (err, n, method) in self.rows.items():
            lines.append(f"{k:<{width}}  {err:10.2e}  {n:8d}  {method:<6}  "
                         f"{'yes' if err <= self.rtol else 'NO'}")
        lines.append(f"{'all' if self.ok else 'FAILED'}: max error {self.max_error():.2e} "
                     f"(tolerance {self.rtol:.0e})")
        return "\n".join(lines)


@contextlib.contextmanager
def _fixed_randomness(seed):
    """Every forward inside draws the same dropout mask: reseed before each call."""
    # manual_seed also reseeds numpy's global generator: give the caller theirs back.
    saved, saved_np = backend.rng(), np.random.get_state()
    saved_device = backend.device_rng_state()
    try:
        yield lambda: backend.manual_seed(seed)
    finally:
        backend.set_rng(saved)
        np.random.set_state(saved_np)
        backend.set_device_rng_state(saved_device)


def check_module(module, x, gy=None, eps=1e-6, rtol=1e-6, max_full=1024, samples=64,
                 seed=0, check_input=True, atol=1e-8):
    """Check ``module.backward`` against finite differences; returns a GradcheckReport.

    The module is deep-copied and converted to float64 on x's device, so the
    caller's module is left as it was. ``x`` may be float32; it is checked in
    float64. A tensor passes when max|analytic - numeric| <= max(rtol * max|numeric|, atol).
    With ``check_input`` (the default) dL/dx is checked: the copy's layers that may skip it
    (``needs_input_grad``, which the Trainer turns off for the first layer) are told not
    to, and a backward that still returns None fails the "input" row.
    """
    # A stream of its own, so gy never equals an x drawn by the caller with the same seed.
    rs = np.random.default_rng((seed, 0x5CA7C4))
    module = copy.deepcopy(module)
    module.to(device=backend.device_of(x), dtype=np.float64)
    if check_input:
        for m in module.modules():
            if hasattr(m, "needs_input_grad"):
                m.needs_input_grad = True
    xp = backend.get_array_module(x)
    x = xp.array(x, dtype=np.float64)

    with _fixed_randomness(seed) as reseed:
        reseed()
        y = module(x)
        if gy is None:
            gy = xp.asarray(rs.standard_normal(y.shape))
        gy = xp.asarray(gy, dtype=np.float64)
        module.zero_grad()
        gx = module.backward(gy)

        def loss():
            reseed()
            return float((module(x) * gy).sum())

        report = GradcheckReport(rtol)
        tensors = []
        if check_input:
            if gx is None:
                report.add_missing("input")
            else:
                tensors.append(("input", x, gx))
        for name, p in module.named_parameters():
            if p.array is not None:
                tensors.append((name, p.array, p.grad_array.copy()))

        floor = atol / rtol
        for name, arr, grad in tensors:
            host_grad = backend.to_numpy(grad).reshape(-1)
            if arr.size <= max_full:
                num = numerical_gradient(loss, arr, eps, list(range(arr.size)))
                report.add(name, rel_error(host_grad, num, floor), arr.size, "full")
                continue
            k = min(samples, arr.size)
            idx = rs.choice(arr.size, size=k, replace=False)
            err = rel_error(host_grad[idx], numerical_gradient(loss, arr, eps, list(idx)), floor)
            d = xp.asarray(rs.standard_normal(arr.shape))
            num_dir = directional_derivative(loss, arr, d, eps)
            ana_dir = float((backend.to_numpy(grad) * backend.to_numpy(d)).sum())
            err = max(err, abs(num_dir - ana_dir) / max(abs(num_dir), floor, 1e-300))
            report.add(name, err, k + 1, "sample")
    return report
