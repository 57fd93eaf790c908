"""The one command for the day a GPU is lent: check scratchnet on it within 8 minutes.

    PYTHONPATH=. python -m benchmarks.gpu_check --out gpu-report [--data-dir DIR]

It prints the card, driver, CUDA and CuPy versions, then runs six parts in this
order, each within its own share of the time budget (SHARES):

  pytest       python -m pytest -m gpu -q, in a child process
  train_lenet  examples/train_lenet.py --device gpu --epochs 2, in a child process
  layers       benchmarks.layers against PyTorch CUDA, fewer repeats
  lenet        benchmarks.lenet, one epoch of each recipe
  resnet       benchmarks.resnet, batch 32 and 128, a few steps
  chapter8     benchmarks.chapter8: a training step of AlexNet, NiN, GoogLeNet, BNLeNet,
               DenseNet and RegNetX-32 against the book's PyTorch classes

The four benchmarks run in this process and need PyTorch with CUDA (without it
they are skipped, and say so). A part that fails or runs over its time is
recorded with its error and the check goes on. Everything lands in one Markdown
report, DIR/gpu_check.md. Exit status: 0 when every part passed or was skipped,
1 when one did not, 2 when there is no usable GPU (then one line on stderr and
nothing written).

The GPU machines have no network: Fashion-MNIST must already be there, found
through --data-dir, $SCRATCHNET_DATA or the usual places (scratchnet.data).
"""
import argparse
import contextlib
import gc
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass

from scratchnet import backend
from scratchnet.io import temp_file

from .common import gpu_name, machine, table

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPORT = "gpu_check.md"

BUDGET_S = 480  # the whole check: 8 minutes
STARTUP_S = 15  # imports, versions and the data search before the first part
RESERVE_S = 15  # kept free at the end for the report and the exit
# Each part's seconds out of the default budget (they sum to BUDGET_S - STARTUP_S -
# RESERVE_S), in the order they run. The GPU tests get the most: on a fresh machine CuPy
# compiles every kernel the first time it runs, and the tests run most of them. The
# child processes go first, while this process holds no CUDA context yet (a GPU in
# exclusive-process mode takes one process at a time).
SHARES = {"pytest": 235, "train_lenet": 65, "layers": 35, "lenet": 40, "resnet": 45,
          "chapter8": 30}
MIN_PART_S = 10  # a part with less time left than this is not started
GRACE_S = 5  # a child over its time gets SIGINT (pytest then prints its summary), then this

# The benchmarks' settings here, lighter than their own commands' defaults.
LAYERS = dict(repeat=3, warmup_s=0.1, rounds=3)
LENET = dict(epochs=1, recipes=("d2l", "modern"))
RESNET = dict(batches=(32, 128), steps=5)
CHAPTER8 = dict(batch=32, warmup=2, steps=3, rounds=1)

TITLES = {
    "pytest": "GPU tests: python -m pytest -m gpu -q",
    "layers": f"Layers, forward + backward (best of {LAYERS['repeat']})",
    "lenet": f"LeNet training, {LENET['epochs']} epoch of each recipe",
    "resnet": f"ResNet-18 (96x96) training step, {RESNET['steps']} steps",
    "chapter8": f"Chapter 8's models, training step at batch {CHAPTER8['batch']}, median of "
                f"{CHAPTER8['steps']} steps",
    "train_lenet": "examples/train_lenet.py --device gpu --epochs 2",
}
PASSING = ("passed", "skipped")


class Skip(Exception):
    """A part that cannot run here for a reason that is no failure (no PyTorch CUDA)."""


class PartFailed(Exception):
    """A part that ran and reported a failure (a child's exit status): no traceback needed."""


class PartTimeout(BaseException):
    """A part ran past its time.

    A BaseException, as KeyboardInterrupt: an ``except Exception`` somewhere inside a
    part must not swallow it and let the part run on without a limit.
    """


@dataclass
class Part:
    """One part's result, as the report shows it."""
    name: str
    title: str
    limit_s: float = 0.0
    status: str = "not run"  # passed, failed, timed out, skipped, not run
    seconds: float = 0.0
    summary: str = ""  # one line for the summary table, e.g. pytest's last line
    error: str = ""
    body: str = ""  # Markdown: the benchmark's table, or the tail of a child's output


def one_line(text, width=1000):
    """``text`` squeezed onto one line of at most ``width`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def cuda_version(number):
    """CUDA's integer version (12040) as people write it (12.4)."""
    return f"{number // 1000}.{number % 1000 // 10}"


# ---- the time budget --------------------------------------------------------------------

def budget_shares(budget_s, names):
    """Each named part's share of ``budget_s``: SHARES scaled to what is left after the
    start-up and the reserve, so --budget and --parts keep the same proportions."""
    total = sum(SHARES[n] for n in names)
    scale = (budget_s - STARTUP_S - RESERVE_S) / total
    return {n: SHARES[n] * scale for n in names}


def part_limit(left_s, later_shares_s, reserve_s=RESERVE_S):
    """Seconds a part may take: what is left, less the reserve and the later parts' shares.

    A part that finishes early leaves its time to the next one; no part can eat into
    a later part's share.
    """
    return left_s - reserve_s - later_shares_s


@contextlib.contextmanager
def time_limit(seconds):
    """Raise PartTimeout in this thread once ``seconds`` have passed.

    SIGALRM's handler runs between two Python bytecodes, so it stops a benchmark in
    the middle of its loop (after the GPU call in flight returns). Main thread only.
    """
    def on_alarm(signum, frame):
        raise PartTimeout(f"stopped after its {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_part(part, fn):
    """Run ``fn(part)`` within ``part.limit_s``; record its status, time and error.

    ``fn`` fills ``part.body`` as it goes, so a part stopped half-way still shows
    what it measured.
    """
    t0 = time.monotonic()
    try:
        with time_limit(part.limit_s):
            fn(part)
        part.status = "passed"
    except Skip as e:
        part.status, part.error = "skipped", one_line(e)
    except PartTimeout as e:
        part.status, part.error = "timed out", one_line(e)
    except PartFailed as e:
        part.status, part.error = "failed", one_line(e)
    except Exception as e:  # any failure is recorded, and the check goes on
        part.status, part.error = "failed", one_line(f"{type(e).__name__}: {e}")
        lines = traceback.format_exc().rstrip().splitlines()[-20:]
        part.body += "\n\n" + code_block("\n".join(lines))
    finally:
        part.seconds = time.monotonic() - t0
    return part


def run_parts(specs, shares, deadline, reserve_s=RESERVE_S, min_part_s=MIN_PART_S,
              clock=time.monotonic):
    """Run each (name, fn) of ``specs`` in turn within its limit; returns the Parts."""
    parts = []
    for i, (name, fn) in enumerate(specs):
        part = Part(name, TITLES.get(name, name))
        later = sum(shares[n] for n, _ in specs[i + 1:])
        left = deadline - clock()
        part.limit_s = part_limit(left, later, reserve_s)
        if part.limit_s < min_part_s:
            part.error = (f"not started: {max(left, 0):.0f} s of the budget left, "
                          f"{later:.0f} s of it kept for the later parts")
            print(f"[{name}] {part.error}", flush=True)
            parts.append(part)
            continue
        print(f"[{name}] {part.title} (up to {part.limit_s:.0f} s)", flush=True)
        run_part(part, fn)
        note = part.summary or part.error
        print(f"[{name}] {part.status} in {part.seconds:.1f} s{': ' + note if note else ''}",
              flush=True)
        parts.append(part)
    return parts


def exit_code(parts):
    """0 when every part passed or was skipped, else 1."""
    return 0 if all(p.status in PASSING for p in parts) else 1


# ---- child processes --------------------------------------------------------------------

def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def run_command(cmd, timeout, env=None, cwd=ROOT):
    """Run ``cmd`` in a new process group: (exit status, stdout + stderr, timed out).

    Past ``timeout`` the whole group gets SIGINT, so that pytest prints its summary
    and the training script its last line, then SIGKILL after GRACE_S: no child or
    grandchild outlives its part.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, False
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, _ = proc.communicate()
        _signal_group(proc, signal.SIGKILL)  # grandchildren that ignored SIGINT
        return proc.returncode, out, True
    except BaseException:  # our own time limit or Ctrl-C: take the children down too
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        raise


def child_env(data_env=None):
    """This environment, with the source tree first on PYTHONPATH (the children import
    the scratchnet under test, not an installed one) and the data folder."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["SCRATCHNET_GPU_CHECK"] = "1"  # tests that would rerun a part of this check skip
    if data_env:
        env["SCRATCHNET_DATA"] = data_env
    return env


def tail(output, lines=40):
    """The last ``lines`` lines of a child's output (progress bars' carriage returns cut)."""
    # split("\n"), not splitlines(): that would also split at each "\r" of a progress bar.
    kept = [line.rsplit("\r", 1)[-1] for line in output.rstrip("\n").split("\n")]
    return "\n".join(kept[-lines:])


def code_block(text):
    return f"```text\n{text}\n```"


PYTEST_SUMMARY = re.compile(r"\b\d+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed)\b"
                            r"|no tests ran")


def pytest_summary(output):
    """pytest's closing line ("352 passed, 2085 deselected in 93.21s"), without the ='s."""
    for line in reversed(output.splitlines()):
        if PYTEST_SUMMARY.search(line):
            return line.strip("= ")
    return "no summary line: pytest did not finish"


# ---- the parts --------------------------------------------------------------------------

def pytest_part(env):
    def part_fn(part):
        cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
               "--durations=10"]
        rc, out, timed_out = run_command(cmd, part.limit_s - GRACE_S - 3, env)
        part.summary = pytest_summary(out)
        part.body = code_block(tail(out, 60))
        if timed_out:
            raise PartTimeout(f"stopped after {part.limit_s - GRACE_S - 3:.0f} s")
        if rc != 0:
            raise PartFailed(f"pytest exited with status {rc}")
    return part_fn


def train_lenet_part(env, data):
    def part_fn(part):
        folder = need(data)
        with tempfile.TemporaryDirectory() as out_dir:  # the report is the only output kept
            cmd = [sys.executable, str(ROOT / "examples" / "train_lenet.py"), "--device", "gpu",
                   "--epochs", "2", "--no-progress", "--data-dir", str(folder), "--out", out_dir]
            rc, out, timed_out = run_command(cmd, part.limit_s - GRACE_S - 3, env)
        lines = [line for line in out.splitlines() if line.strip()]
        accuracy = [line for line in lines if line.startswith("test accuracy")]
        part.summary = one_line(accuracy[-1] if accuracy else (lines[-1] if lines else ""))
        part.body = code_block(tail(out))
        if timed_out:
            raise PartTimeout(f"stopped after {part.limit_s - GRACE_S - 3:.0f} s")
        if rc != 0:
            raise PartFailed(f"train_lenet.py exited with status {rc}")
    return part_fn


def torch_cuda():
    """PyTorch, when it imports and sees a CUDA device; otherwise Skip saying why."""
    try:
        import torch
    except ImportError as e:
        raise Skip(f"PyTorch is not importable ({e}): no comparison to run") from None
    if not torch.cuda.is_available():
        raise Skip(f"PyTorch {torch.__version__} sees no CUDA device (built for CUDA "
                   f"{torch.version.cuda}): no comparison to run")
    return torch


def free_gpu_memory():
    """Hand cached GPU memory back, so that the next part (a child process) has it all."""
    try:
        from scratchnet.ops import workspace
        gc.collect()
        workspace.release()
        backend.device_module("gpu").get_default_memory_pool().free_all_blocks()
        if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
            sys.modules["torch"].cuda.empty_cache()
    except Exception:
        pass  # best effort: a broken CUDA context must not hide the part's own error


def collect_rows(part, rows, headers):
    """Fill ``part.body`` with the table of ``rows`` as each row arrives."""
    got = []
    try:
        for row in rows:
            got.append(row)
            part.body = table(got, headers)
    finally:
        part.summary = f"{len(got)} row{'' if len(got) == 1 else 's'}"
        free_gpu_memory()


def benchmark_part(name, data):
    def part_fn(part):
        torch_cuda()
        if name == "layers":
            from . import layers
            collect_rows(part, layers.run("gpu", **LAYERS), layers.HEADERS)
        elif name == "lenet":
            from . import lenet
            collect_rows(part, lenet.run("gpu", root=need(data), download=False, **LENET),
                         lenet.HEADERS)
        elif name == "chapter8":
            from . import chapter8
            collect_rows(part, chapter8.run("gpu", **CHAPTER8), chapter8.HEADERS)
        else:
            from . import resnet
            collect_rows(part, resnet.run("gpu", in_process=True, **RESNET),
                         resnet.headers("gpu"))
    return part_fn


def make_specs(names, env, data):
    """(name, fn) for each chosen part, in the order of SHARES."""
    makers = {"pytest": lambda: pytest_part(env),
              "layers": lambda: benchmark_part("layers", data),
              "lenet": lambda: benchmark_part("lenet", data),
              "resnet": lambda: benchmark_part("resnet", data),
              "chapter8": lambda: benchmark_part("chapter8", data),
              "train_lenet": lambda: train_lenet_part(env, data)}
    return [(n, makers[n]()) for n in SHARES if n in names]


# ---- data and versions ------------------------------------------------------------------

def find_data(data_dir=None):
    """The folder holding the four Fashion-MNIST files, found without the network.

    ``data_dir`` may be that folder or one holding fashion-mnist/ (as
    $SCRATCHNET_DATA); without it, scratchnet.data's usual places are searched.
    """
    from scratchnet.data.datasets import FashionMNIST, find_or_download
    if data_dir is None:
        return find_or_download(FashionMNIST, None, download=False)
    for folder in (pathlib.Path(data_dir), pathlib.Path(data_dir) / FashionMNIST.name):
        try:
            return find_or_download(FashionMNIST, folder, download=False)
        except FileNotFoundError:
            pass
    raise FileNotFoundError(f"--data-dir {data_dir}: neither it nor its "
                            f"{FashionMNIST.name}/ holds the four Fashion-MNIST IDX files")


def need(data):
    """The data folder, or PartFailed with the error that said why there is none."""
    if isinstance(data, Exception):
        raise PartFailed(f"Fashion-MNIST not found (pass --data-dir): {data}")
    return data


def _try(fn):
    """fn()'s text, or what went wrong: one odd library must not stop the check."""
    try:
        return fn()
    except Exception as e:
        return f"? ({one_line(f'{type(e).__name__}: {e}', 120)})"


def _read(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=15,
                          check=True).stdout.strip()


def versions():
    """(component, version) rows: the card, driver, CUDA, CuPy, PyTorch, Python, source."""
    cupy = backend.device_module("gpu")
    rt = cupy.cuda.runtime

    def card():
        p = rt.getDeviceProperties(0)
        return (f"{gpu_name()}, {p['totalGlobalMem'] / 2**30:.1f} GiB, compute capability "
                f"{p['major']}.{p['minor']} ({rt.getDeviceCount()} device(s) visible)")

    def driver():
        smi = _try(lambda: _read(["nvidia-smi", "--query-gpu=driver_version",
                                  "--format=csv,noheader"]).splitlines()[0])
        return f"{smi} (supports CUDA {cuda_version(rt.driverGetVersion())})"

    def cupy_wheel():
        # Which wheel (cupy-cuda12x, cupy-cuda13x, ...) is installed tells which CUDA it wants.
        from importlib import metadata
        wheels = _try(lambda: ", ".join(metadata.packages_distributions().get("cupy", [])))
        return f"{cupy.__version__} ({wheels or 'wheel unknown'})"

    def torch_line():
        try:
            import torch
        except ImportError:
            return "not importable: the benchmarks are skipped"
        return (f"{torch.__version__}, built for CUDA {torch.version.cuda}, cuDNN "
                f"{torch.backends.cudnn.version()}, CUDA available: "
                f"{torch.cuda.is_available()}")

    def source():
        import scratchnet
        commit = _try(lambda: _read(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]))
        folder = pathlib.Path(scratchnet.__file__).parent
        return f"{scratchnet.__version__} from {folder}, commit {commit}"

    return [["GPU", _try(card)], ["NVIDIA driver", _try(driver)],
            ["CUDA runtime (CuPy's)", _try(lambda: cuda_version(rt.runtimeGetVersion()))],
            ["CuPy", _try(cupy_wheel)], ["PyTorch", _try(torch_line)],
            ["Python", sys.version.split()[0]], ["scratchnet", _try(source)]]


# ---- the report -------------------------------------------------------------------------

def cell(text):
    """Text that fits in one cell of a Markdown table."""
    return one_line(text, 200).replace("|", "\\|")


def build_report(machine_line, version_rows, parts, total_s, budget_s, date=None):
    """The Markdown report: machine, versions, a summary table, then each part."""
    date = date or time.strftime("%Y-%m-%d %H:%M")
    bad = [p.name for p in parts if p.status not in PASSING]
    verdict = (f"**{len(bad)} of {len(parts)} parts did not pass: {', '.join(bad)}.**" if bad
               else f"All {len(parts)} parts passed or were skipped.")
    out = [f"# scratchnet GPU check, {date}", "", machine_line, "",
           table([[cell(a), cell(b)] for a, b in version_rows], ["component", "version"]), "",
           "## Summary", "", f"{verdict} {total_s:.0f} s in all, of a {budget_s:.0f} s budget.",
           ""]
    rows = []
    for p in parts:
        status = p.status if p.status in PASSING else p.status.upper()
        note = "; ".join(x for x in (p.summary, p.error) if x)
        rows.append([p.name, status, f"{p.seconds:.1f}", f"{p.limit_s:.0f}", cell(note)])
    out += [table(rows, ["part", "status", "seconds", "limit s", "result"]), ""]
    for p in parts:
        out += [f"## {p.title}", "", f"{p.status}, {p.seconds:.1f} s of {p.limit_s:.0f} s."]
        if p.summary:
            out += ["", f"Result: `{p.summary}`"]
        if p.error:
            out += ["", f"Error: {p.error}"]
        if p.body:
            out += ["", p.body.strip("\n")]
        out.append("")
    return "\n".join(out)


def write_report(out_dir, text):
    """Write DIR/gpu_check.md atomically (a temp file in DIR, then a rename): an
    interrupted check leaves the previous report whole, never half of a new one."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT
    fd, tmp = temp_file(path)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; a report is for everyone to read
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


# ---- the command ------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the report, gpu_check.md")
    p.add_argument("--data-dir", help="the folder holding the four Fashion-MNIST IDX files, "
                   "or one holding fashion-mnist/ (default: $SCRATCHNET_DATA and the usual "
                   "places; the GPU machine has no network to download them)")
    p.add_argument("--budget", type=float, default=BUDGET_S,
                   help=f"seconds for the whole check (default {BUDGET_S})")
    p.add_argument("--parts", nargs="+", choices=list(SHARES), default=list(SHARES),
                   help="run only these parts (default: all)")
    args = p.parse_args(argv)
    if args.budget < 60:
        p.error(f"--budget {args.budget:g}: at least 60 s (start-up and reserve take "
                f"{STARTUP_S + RESERVE_S} s)")
    return args


def main(argv=None):
    start = time.monotonic()
    args = parse_args(argv)
    try:
        with warnings.catch_warnings():  # a CuPy import warning would be a second line
            warnings.simplefilter("ignore")
            backend.device_module("gpu")  # imports CuPy and counts the devices
    except backend.DeviceError as e:
        print(f"gpu_check: no usable GPU, nothing run and nothing written: {one_line(e)}",
              file=sys.stderr)
        return 2
    if pathlib.Path(args.out).exists() and not pathlib.Path(args.out).is_dir():
        print(f"gpu_check: --out {args.out} is a file, not a folder", file=sys.stderr)
        return 2

    machine_line = _try(machine)
    version_rows = versions()
    print(machine_line)
    for what, version in version_rows:
        print(f"{what}: {version}")
    try:
        data = find_data(args.data_dir).resolve()  # the children run in the repository root
        print(f"Fashion-MNIST: {data}")
    except FileNotFoundError as e:
        data = e  # the parts that need it fail with this message; the others run
        print(f"Fashion-MNIST: not found: {one_line(e)}")
    # A folder named fashion-mnist passed by --data-dir: its parent is what
    # $SCRATCHNET_DATA names, for the tests and anything else that looks there.
    data_env = None
    if args.data_dir and not isinstance(data, Exception) and data.name == "fashion-mnist":
        data_env = str(data.parent)
        os.environ["SCRATCHNET_DATA"] = data_env
    version_rows.append(["Fashion-MNIST", str(data) if not isinstance(data, Exception)
                         else f"not found: {data}"])

    names = [n for n in SHARES if n in args.parts]
    specs = make_specs(names, child_env(data_env), data)
    parts = run_parts(specs, budget_shares(args.budget, names), start + args.budget)
    text = build_report(machine_line, version_rows, parts, time.monotonic() - start,
                        args.budget)
    path = write_report(args.out, text)
    code = exit_code(parts)
    print(f"report: {path} ({'all parts passed' if code == 0 else 'some parts did not pass'})")
    return code


if __name__ == "__main__":
    sys.exit(main())
