"""ResNet-18 (96x96) training step: time and peak memory, scratchnet against PyTorch.

    python -m benchmarks.resnet [--device gpu] [--batches 32 128]

Each (framework, batch) runs in a fresh subprocess so that peak memory is its
own: RSS high-water mark on the CPU, the allocator's peak on the GPU.
``run(in_process=True)`` measures in the calling process instead (as
benchmarks.gpu_check does): on the GPU each configuration starts from emptied
memory pools, so its peak is still its own; on the CPU the RSS high-water mark
would be the whole process's, so the memory columns read n/a.
"""
import argparse
import gc
import json
import resource
import subprocess
import sys
import time

import numpy as np

from .common import machine, print_rows


def _empty_pool(framework):
    """Free the framework's cached GPU memory and return the bytes still in use.

    In a fresh process this is 0; in one that ran other work first (gpu_check),
    subtracting it keeps a configuration's peak its own.
    """
    gc.collect()  # arrays of an earlier configuration may sit in reference cycles
    if framework == "scratchnet":
        import cupy

        from scratchnet.ops import workspace
        workspace.release()  # scratch buffers an earlier model grew would be reused unseen
        pool = cupy.get_default_memory_pool()
        pool.free_all_blocks()
        return pool.total_bytes()
    import torch
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def run_one(framework, batch, device, steps):
    """One configuration, in this process: returns seconds per step and peak MiB."""
    rs = np.random.default_rng(0)
    X = rs.standard_normal((batch, 1, 96, 96)).astype(np.float32)
    y = rs.integers(0, 10, batch)
    if framework == "scratchnet":
        import scratchnet as sn
        from scratchnet import nn
        from scratchnet.models import ResNet18
        sn.use_device(device)
        xp = sn.backend.device_module()
        base = _empty_pool(framework) if device == "gpu" else 0
        X, y = xp.asarray(X), xp.asarray(y)
        model = ResNet18()
        nn.init.apply_init(model, [X[:2]], nn.init.init_cnn)
        opt = sn.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = nn.CrossEntropyLoss()
        sync = (lambda: xp.cuda.Device().synchronize()) if device == "gpu" else (lambda: None)

        def step():
            loss_fn(model(X), y)
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
    else:
        import torch
        dev = "cuda" if device == "gpu" else "cpu"
        from scratchnet.interop import torch_resnet18
        base = _empty_pool(framework) if device == "gpu" else 0
        model = torch_resnet18().to(dev)
        X, y = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
        model(X[:2])
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

        def step():
            loss = torch.nn.functional.cross_entropy(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = (time.perf_counter() - t) / steps
    if device == "gpu":
        if framework == "scratchnet":
            import cupy
            peak = (cupy.get_default_memory_pool().total_bytes() - base) / 2**20
        else:
            import torch
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, peak


def headers(device):
    """The table's column names (the memory columns name what is measured)."""
    peak = "peak RSS MiB" if device == "cpu" else "peak device MiB"
    return ["benchmark", "device", "scratchnet s", "PyTorch s", "time ratio",
            f"scratchnet {peak}", f"PyTorch {peak}", "memory ratio"]


def run(device="cpu", batches=(32, 128), steps=3, in_process=False):
    """Yield one row per batch size (the columns of headers(device)).

    By default each (framework, batch) runs in a fresh subprocess (see the module
    docstring); ``in_process=True`` runs them here.
    """
    for batch in batches:
        res = {}
        for fw in ("scratchnet", "pytorch"):
            if in_process:
                res[fw] = run_one(fw, batch, device, steps)
                continue
            out = subprocess.run([sys.executable, "-m", "benchmarks.resnet", "--device",
                                  device, "--steps", str(steps), "--child", fw,
                                  str(batch)], capture_output=True, text=True, check=True)
            res[fw] = json.loads(out.stdout.strip().splitlines()[-1])
        (s, m), (ts, tm) = res["scratchnet"], res["pytorch"]
        if in_process and device == "cpu":
            memory = ["n/a", "n/a", "n/a"]
        else:
            memory = [f"{m:.0f}", f"{tm:.0f}", f"{m / tm:.2f}"]
        yield [f"ResNet-18 96x96 step, batch {batch}", device, f"{s:.3f}", f"{ts:.3f}",
               f"{s / ts:.2f}"] + memory


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], int(args.child[1]), args.device, args.steps)))
        return
    print(machine())
    print_rows(run(args.device, args.batches, args.steps), headers(args.device))


if __name__ == "__main__":
    main()
