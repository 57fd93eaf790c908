"""Timing helpers and the machine description every benchmark prints."""
import os
import platform
import time

import numpy as np


def machine():
    """CPU model, cores, NumPy and its BLAS, torch, and the GPU when there is one."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        blas = f"{b.get('name')} {b.get('version', '')}".strip()
    except Exception:
        pass
    parts = [f"CPU: {cpu}, {os.cpu_count()} cores", f"NumPy {np.__version__} ({blas})"]
    try:
        import torch
        parts.append(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        pass
    import scratchnet as sn
    if sn.gpu_available():
        import cupy
        parts.append(f"GPU: {gpu_name()}, CuPy {cupy.__version__}")
    parts.append(f"date {time.strftime('%Y-%m-%d')}")
    return "; ".join(parts)


def gpu_name(device=0):
    """The CUDA device's name, as CUDA reports it (CuPy gives bytes or str by version)."""
    import cupy
    name = cupy.cuda.runtime.getDeviceProperties(device)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def paired(ours, theirs, repeat=9, sync=None, tsync=None, rounds=3, warmup_s=0.3):
    """Best-of-``repeat`` seconds of each: ``rounds`` blocks of runs, alternating.

    Alternating blocks put both under the same drift of a shared machine; the
    best run drops those another process disturbed. Each block first runs its
    function for ``warmup_s`` seconds untimed: a framework that trains runs
    without pauses, and after one both the cores and the thread pools take a
    while to come back to speed (measured: LeNet's second convolution 6.2 ms in
    the first runs after a 0.2 s pause, 4.1 ms from the 20th on), while the
    other framework's threads (OpenMP spins after its work) quiet down.
    """
    best = [float("inf"), float("inf")]
    per_block = max(1, -(-repeat // rounds))
    for _ in range(rounds):
        for i, (fn, s) in enumerate(((ours, sync), (theirs, tsync))):
            t0 = time.perf_counter()
            while True:
                fn()
                if s:
                    s()
                if time.perf_counter() - t0 >= warmup_s:
                    break
            for _ in range(per_block):
                t = time.perf_counter()
                fn()
                if s:
                    s()
                best[i] = min(best[i], time.perf_counter() - t)
    return best[0], best[1]


def table(rows, headers):
    """A Markdown table (rows of already formatted strings)."""
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [line(r) for r in rows])


def print_rows(rows, headers):
    """Print each row as it comes (a long run shows its progress), then the Markdown table."""
    got = []
    for row in rows:
        got.append(row)
        print(" | ".join(row), flush=True)
    print()
    print(table(got, headers))
