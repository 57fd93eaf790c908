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
        props = cupy.cuda.runtime.getDeviceProperties(0)
        parts.append(f"GPU: {props['name'].decode()}, CuPy {cupy.__version__}")
    parts.append(f"date {time.strftime('%Y-%m-%d')}")
    return "; ".join(parts)


def timeit(fn, repeat=5, warmup=1, sync=None):
    """Median seconds of ``fn()`` over ``repeat`` runs (after ``warmup``)."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def table(rows, headers):
    """A Markdown table (rows of already formatted strings)."""
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [line(r) for r in rows])
