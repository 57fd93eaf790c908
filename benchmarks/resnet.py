"""ResNet-18 (96x96) training step: time and peak memory, scratchnet against PyTorch.

    python -m benchmarks.resnet [--device gpu] [--batches 32 128]

Each (framework, batch) runs in a fresh subprocess so that peak memory is its
own: RSS high-water mark on the CPU, the allocator's peak on the GPU.
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from .common import machine, table


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
            peak = cupy.get_default_memory_pool().total_bytes() / 2**20
        else:
            import torch
            peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, peak


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
    rows = []
    for batch in args.batches:
        res = {}
        for fw in ("scratchnet", "pytorch"):
            out = subprocess.run([sys.executable, "-m", "benchmarks.resnet", "--device",
                                  args.device, "--steps", str(args.steps), "--child", fw,
                                  str(batch)], capture_output=True, text=True, check=True)
            res[fw] = json.loads(out.stdout.strip().splitlines()[-1])
        (s, m), (ts, tm) = res["scratchnet"], res["pytorch"]
        rows.append([f"ResNet-18 96x96 step, batch {batch}", args.device, f"{s:.3f}",
                     f"{ts:.3f}", f"{s / ts:.2f}", f"{m:.0f}", f"{tm:.0f}", f"{m / tm:.2f}"])
        print(" | ".join(rows[-1]), flush=True)
    print()
    peak = "peak RSS MiB" if args.device == "cpu" else "peak device MiB"
    print(table(rows, ["benchmark", "device", "scratchnet s", "PyTorch s", "time ratio",
                       f"scratchnet {peak}", f"PyTorch {peak}", "memory ratio"]))


if __name__ == "__main__":
    main()
