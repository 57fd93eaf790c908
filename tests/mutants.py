"""The mutation check: bugs planted one at a time in a copy of the tree, each of which the
tests named beside it must catch.

    python tests/mutants.py                # every mutant: the tests must fail on each
    python tests/mutants.py detach-keeps-graph sub-backward-sign   # some of them

A mutant replaces one piece of a file's text (found exactly once) with a wrong version,
then runs its tests in the copy; it is *caught* when pytest reports failed tests (exit
status 1), and *survives* when they pass. Anything else (a collection error, a timeout)
is reported as broken: a mutant must be a plausible bug that the tests themselves see,
not an import error. The check fails if any mutant survives or is broken.
``tests/test_mutants.py`` runs it (slow), and checks on every quick run that each
mutant's text is still in the tree (a refactor that moves the code must move its
mutant too).

The list holds the bugs that got through the suite once (issue 22: detach keeping its
graph, an extra operation per parameter in the optimizer step, a host sync in d2l's
manual step, init_cnn skipping convolutions, an edited stored notebook output, the
porter dropping a comment) and the ones the suite caught then, so that they stay caught.
"""
import concurrent.futures
import dataclasses
import os
import pathlib
import queue
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Mutant:
    name: str
    path: str  # relative to the repository root
    old: str  # the text replaced (it must occur exactly once)
    new: str  # the bug
    tests: list  # pytest arguments, relative to the repository root

    def apply(self, text):
        if text.count(self.old) != 1:
            raise ValueError(f"mutant {self.name}: {self.path} holds its text "
                             f"{text.count(self.old)} times, not once")
        return text.replace(self.old, self.new)


MUTANTS = [
    # The six that got through before issue 22.
    Mutant("detach-keeps-graph", "scratchnet/autograd/tensor.py",
           "        return shares(self.array)\n\n    def requires_grad_",
           "        t = shares(self.array)\n"
           "        t.requires_grad, t.grad_fn = self.requires_grad, self.grad_fn\n"
           "        return t\n\n    def requires_grad_",
           ["tests/test_grad_modes.py"]),
    Mutant("sgd-extra-operation-per-parameter", "scratchnet/optim.py",
           "                key = (backend.device_of(p.array), p.array.dtype.str)\n",
           "                p.grad_array.copy()  # wasted: one more array operation a parameter\n"
           "                key = (backend.device_of(p.array), p.array.dtype.str)\n",
           ["tests/test_gpu_path.py", "-k", "launch_budget"]),
    Mutant("d2l-host-sync-per-step", "scratchnet/d2l.py",
           "self.model.plot('loss', l, train=True)",
           "self.model.plot('loss', float(l), train=True)",
           ["tests/test_d2l.py", "-k", "reads_the_gpu_once"]),
    Mutant("d2l-init-cnn-skips-conv", "scratchnet/d2l.py",
           "if type(module) == nn.Linear or type(module) == nn.Conv2d:",
           "if type(module) == nn.Linear:",
           ["tests/test_d2l.py", "-k", "init_cnn"]),
    Mutant("port-drops-trailing-comment", "scratchnet/port.py",
           "ported = line[:len(line) - len(stripped)] + new + stripped[len(source):]",
           "ported = line[:len(line) - len(stripped)] + new",
           ["tests/test_port.py"]),
    Mutant("stored-notebook-output-edited", "notebooks/7.2_convolutions_for_images.ipynb",
           '"epoch 2, loss 8.107\\n"', '"epoch 2, loss 9.107\\n"',
           ["tests/test_notebooks.py::test_notebook_runs_on_a_fresh_kernel[7.2]"]),
    # The ones the suite caught then: they must stay caught.
    Mutant("reused-tensor-gradient-overwritten", "scratchnet/autograd/tensor.py",
           "grads[key] = gin if key not in grads else grads[key] + gin",
           "grads[key] = gin",
           ["tests/test_autograd.py"]),
    Mutant("sub-backward-sign", "scratchnet/autograd/_ops.py",
           "lambda a, b, y, g: (g, -g), \"RsubBackward1\")",
           "lambda a, b, y, g: (g, g), \"RsubBackward1\")",
           ["tests/test_autograd.py", "-k", "ops_match_torch"]),
    Mutant("div-backward-sign", "scratchnet/autograd/_ops.py",
           "(g / b, -g * y / b)", "(g / b, g * y / b)",
           ["tests/test_autograd.py", "-k", "ops_match_torch"]),
    Mutant("topological-order-reversed", "scratchnet/autograd/tensor.py",
           "return order[::-1]  # root first", "return order",
           ["tests/test_autograd.py"]),
    Mutant("printing-one-digit-fewer", "scratchnet/autograd/printing.py",
           "PRECISION, THRESHOLD, EDGEITEMS, LINEWIDTH = 4, 1000, 3, 80",
           "PRECISION, THRESHOLD, EDGEITEMS, LINEWIDTH = 3, 1000, 3, 80",
           ["tests/test_tensor_printing.py"]),
    Mutant("torch-size-printed-as-tuple", "scratchnet/autograd/tensor.py",
           'return f"torch.Size({list(self)})"', "return tuple.__repr__(self)",
           ["tests/test_tensor_printing.py", "tests/test_tensors.py"]),
    Mutant("trainer-skips-last-step", "scratchnet/train.py",
           "                optimizer.step()\n                self.global_step += 1",
           "                if step + 1 < len(train_iter):\n"
           "                    optimizer.step()\n                self.global_step += 1",
           ["tests/test_train.py"]),
    Mutant("d2l-trainer-skips-last-step", "scratchnet/d2l.py",
           "                self.optim.step()\n            self.train_batch_idx += 1",
           "                if (self.train_batch_idx + 1) % self.num_train_batches:\n"
           "                    self.optim.step()\n            self.train_batch_idx += 1",
           ["tests/test_d2l.py", "-k", "every_minibatch"]),
    Mutant("max-pool-tie-to-the-last-maximum", "scratchnet/ops/pool.py",
           "        not_yet = views[0] != ya\n"
           "        ia[...] = not_yet\n"
           "        for v in views[1:-1]:\n"
           "            not_yet &= v != ya\n"
           "            ia += not_yet\n",
           "        ia[...] = 0\n"
           "        for k, v in enumerate(views):\n"
           "            ia[v == ya] = k\n",
           ["tests/ops/test_pool.py", "-k", "ties"]),
    Mutant("batch-norm-biased-running-variance", "scratchnet/nn/norm.py",
           "dt(factor * m / (m - 1))", "dt(factor)",
           ["tests/nn/test_norm.py"]),
    Mutant("grouped-conv-mixes-groups", "scratchnet/ops/conv.py",
           "    Wg = W.reshape(groups, o // groups, cg * kh * kw)\n",
           "    Wg = W.reshape(o // groups, groups, cg * kh * kw).transpose(1, 0, 2)\n",
           ["tests/nn/test_conv.py", "-k", "grouped"]),
    Mutant("port-rewrites-a-non-import-line", "scratchnet/port.py",
           "        else:\n            out.append(line)\n    return",
           "        else:\n            out.append(line.replace('import torch', "
           "'import scratchnet as torch'))\n    return",
           ["tests/test_port.py"]),
]


def tree_files(root=ROOT):
    """The repository's files, as the working tree has them (untracked ones too, but
    not what .gitignore ignores): git's list when there is one, else every file but
    caches."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=root, capture_output=True,
                             check=True).stdout.decode()
        return [f for f in out.split("\0") if f and (root / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {"__pycache__", ".git", ".pytest_cache", ".hypothesis", "runs", "datasets"}
        return [str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and not skip & set(p.relative_to(root).parts)]


def copy_tree(dest, root=ROOT):
    for f in tree_files(root):
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, dest / f)


def run_mutant(mutant, copy, timeout=600):
    """('caught' | 'survived' | 'broken', seconds, the tail of pytest's output)."""
    target = copy / mutant.path
    original = target.read_text(encoding="utf-8")
    target.write_text(mutant.apply(original), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    shared = ROOT.parent / "shared" / "data"  # where the tests find the data (conftest)
    if "SCRATCHNET_DATA" not in env and shared.is_dir():
        env["SCRATCHNET_DATA"] = str(shared)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p",
                               "no:cacheprovider", *mutant.tests], cwd=copy, env=env,
                              capture_output=True, text=True, timeout=timeout)
        verdict = {0: "survived", 1: "caught"}.get(proc.returncode, "broken")
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        verdict, tail = "broken", [f"timed out after {timeout} s"]
    finally:
        target.write_text(original, encoding="utf-8")
    return verdict, time.perf_counter() - t0, tail


def check(names=None, log=print):
    """Run the mutants (all, or those named); returns {name: verdict}."""
    chosen = [m for m in MUTANTS if not names or m.name in names]
    unknown = set(names or ()) - {m.name for m in MUTANTS}
    if unknown:
        raise SystemExit(f"no such mutant: {', '.join(sorted(unknown))}")
    verdicts = {}
    # One copy of the tree per worker (a mutant edits its copy while its tests run), as
    # many workers as cores: the mutants' test runs are independent.
    workers = max(1, min(os.cpu_count() or 1, len(chosen)))
    with tempfile.TemporaryDirectory(prefix="scratchnet-mutants-") as tmp:
        copies = queue.SimpleQueue()
        for i in range(workers):
            copy = pathlib.Path(tmp) / str(i)
            copy_tree(copy)
            copies.put(copy)

        def run(m):
            copy = copies.get()
            try:
                return run_mutant(m, copy)
            finally:
                copies.put(copy)

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for m, (verdict, seconds, tail) in zip(chosen, pool.map(run, chosen)):
                verdicts[m.name] = verdict
                log(f"{verdict:8s} {m.name} ({seconds:.0f} s: {' '.join(m.tests)})")
                if verdict != "caught":
                    log("         " + "\n         ".join(tail))
    return verdicts


def main(argv=None):
    verdicts = check(sys.argv[1:] if argv is None else argv)
    bad = {k: v for k, v in verdicts.items() if v != "caught"}
    print(f"{len(verdicts) - len(bad)} of {len(verdicts)} mutants caught"
          + (f"; not caught: {', '.join(sorted(bad))}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
