"""benchmarks.gpu_check: the one-line refusal without a GPU, the time budget, the child
processes it stops, and the report it writes. The parts themselves need a GPU; here
they are stood in for by small functions."""
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import scratchnet as sn
from conftest import GPU, needs_gpu

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not installed: plain `pytest` finds it here
    sys.path.insert(0, str(ROOT))
from benchmarks import gpu_check as gc  # noqa: E402
from benchmarks.gpu_check import Part  # noqa: E402


def check_cmd(*args):
    """python -m benchmarks.gpu_check <args> from the repository root, as the docs say."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


# ---- without a GPU ----------------------------------------------------------------------

@pytest.mark.skipif(sn.gpu_available(), reason="this machine has a usable GPU")
def test_without_a_gpu_it_says_so_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "report"
    proc = check_cmd("--out", out)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "no usable GPU" in lines[0] and ("CuPy" in lines[0] or "CUDA" in lines[0])
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_command_line_names_every_part():
    proc = check_cmd("--help")
    assert proc.returncode == 0
    for name in gc.SHARES:
        assert name in proc.stdout
    assert "--data-dir" in proc.stdout and "--budget" in proc.stdout


# ---- the time budget --------------------------------------------------------------------

def test_the_default_shares_fill_eight_minutes_less_start_up_and_reserve():
    assert gc.BUDGET_S == 480
    assert sum(gc.SHARES.values()) + gc.STARTUP_S + gc.RESERVE_S == gc.BUDGET_S
    assert gc.budget_shares(gc.BUDGET_S, list(gc.SHARES)) == pytest.approx(gc.SHARES)
    half = gc.budget_shares(240, list(gc.SHARES))
    assert sum(half.values()) == pytest.approx(240 - gc.STARTUP_S - gc.RESERVE_S)
    assert half["pytest"] / half["layers"] == pytest.approx(gc.SHARES["pytest"] /
                                                            gc.SHARES["layers"])
    # One part alone gets all the time there is.
    assert gc.budget_shares(480, ["resnet"]) == {"resnet": 450}


def test_the_parts_run_in_their_fixed_order_whatever_the_command_line_says():
    specs = gc.make_specs(["resnet", "layers", "pytest"], {}, None)
    assert [name for name, _ in specs] == ["pytest", "layers", "resnet"]
    assert list(gc.SHARES)[:2] == ["pytest", "train_lenet"]  # the children before any CUDA


def fake_clock():
    now = [0.0]
    return now, lambda: now[0]


def test_a_part_that_finishes_early_leaves_its_time_to_the_next():
    now, clock = fake_clock()
    seen = {}

    def uses(seconds):
        def fn(part):
            seen[part.name] = part.limit_s
            now[0] += seconds
        return fn

    specs = [("a", uses(30)), ("b", uses(100)), ("c", uses(10))]
    parts = gc.run_parts(specs, {"a": 100, "b": 100, "c": 100}, deadline=320, reserve_s=20,
                         min_part_s=10, clock=clock)
    # a: 320 - 20 reserve - 200 for b and c; b: its 100 and the 70 that a left; c: the
    # same 70, which b did not use either.
    assert seen == {"a": 100, "b": 170, "c": 170}
    assert [p.status for p in parts] == ["passed"] * 3
    assert gc.exit_code(parts) == 0


def test_a_part_with_no_time_left_is_not_run_and_fails_the_check():
    now, clock = fake_clock()
    ran = []

    def hog(part):
        ran.append(part.name)
        now[0] += part.limit_s + 100  # far over its limit (a child that ignored SIGINT)

    specs = [("a", hog), ("b", lambda part: ran.append("b"))]
    parts = gc.run_parts(specs, {"a": 100, "b": 100}, deadline=220, reserve_s=20,
                         min_part_s=10, clock=clock)
    assert ran == ["a"]
    assert parts[1].status == "not run" and "not started" in parts[1].error
    assert gc.exit_code(parts) == 1


def test_a_part_over_its_time_is_stopped_and_keeps_what_it_measured():
    def slow(part):
        part.body = "| first row |"
        time.sleep(30)
        part.body = "| never |"

    t = time.monotonic()
    part = gc.run_part(Part("slow", "Slow", limit_s=0.5), slow)
    assert time.monotonic() - t < 5
    assert part.status == "timed out" and part.body == "| first row |"
    assert 0.4 < part.seconds < 5


def test_a_failing_part_is_recorded_with_its_error_and_the_next_still_runs():
    def broken(part):
        raise ValueError("cuDNN said no")

    def skipped(part):
        raise gc.Skip("PyTorch sees no CUDA device")

    specs = [("a", broken), ("b", skipped), ("c", lambda part: None)]
    parts = gc.run_parts(specs, {"a": 10, "b": 10, "c": 10}, deadline=time.monotonic() + 100,
                         reserve_s=0, min_part_s=1)
    assert [p.status for p in parts] == ["failed", "skipped", "passed"]
    assert parts[0].error == "ValueError: cuDNN said no"
    assert "Traceback" in parts[0].body and "cuDNN said no" in parts[0].body
    assert parts[1].error == "PyTorch sees no CUDA device"
    assert gc.exit_code(parts) == 1
    assert gc.exit_code(parts[1:]) == 0  # a skipped part is no failure


def test_a_part_that_catches_every_exception_is_still_stopped():
    def stubborn(part):
        for _ in range(300):
            try:
                time.sleep(0.1)
            except Exception:  # PartTimeout is no Exception: this does not swallow it
                pass

    t = time.monotonic()
    part = gc.run_part(Part("stubborn", "Stubborn", limit_s=0.5), stubborn)
    assert part.status == "timed out" and time.monotonic() - t < 5


def test_a_child_that_failed_is_recorded_without_a_traceback():
    def child(part):
        part.body = "```text\nFAILED tests/x.py::test_y\n```"
        raise gc.PartFailed("pytest exited with status 1")

    part = gc.run_part(Part("pytest", "GPU tests", limit_s=10), child)
    assert part.status == "failed" and part.error == "pytest exited with status 1"
    assert "Traceback" not in part.body and "FAILED tests/x.py::test_y" in part.body


def test_a_benchmark_stopped_half_way_keeps_its_rows():
    def rows():
        yield ["conv1", "1.00"]
        yield ["conv2", "2.00"]
        time.sleep(30)
        yield ["never", "0"]

    part = gc.run_part(Part("layers", "Layers", limit_s=0.5),
                       lambda part: gc.collect_rows(part, rows(), ["layer", "ms"]))
    assert part.status == "timed out"
    assert "conv2" in part.body and "never" not in part.body and part.summary == "2 rows"


@pytest.mark.skipif(sn.gpu_available(), reason="this machine has a usable GPU")
@pytest.mark.parametrize("name", ["layers", "lenet", "resnet", "chapter8"])
def test_a_benchmark_part_without_pytorch_cuda_is_skipped_saying_why(name):
    import torch
    if torch.cuda.is_available():
        pytest.skip("PyTorch sees a CUDA device")
    part = gc.run_part(Part(name, gc.TITLES[name], limit_s=30), gc.benchmark_part(name, None))
    assert part.status == "skipped" and "sees no CUDA device" in part.error


# ---- the chapter-8 benchmark (gpu_check's last part), on the CPU ------------------------

def test_chapter8_feeds_each_model_the_books_image_size():
    from benchmarks import chapter8
    assert list(chapter8.MODELS) == ["AlexNet", "NiN", "GoogleNet", "BNLeNet", "DenseNet",
                                     "RegNetX32"]
    for name, (_, cls, size) in chapter8.MODELS.items():
        assert getattr(sn.models, name).book_input == (size, size), name
        assert type(chapter8.book_model(name)).__name__ == cls  # the book's own class


@pytest.mark.parametrize("name", ["BNLeNet", "RegNetX32"])  # RegNetX32: resnet.md's block
def test_chapter8_times_one_step_of_the_same_model_on_both_sides(name):
    """Both start from the same weights and take the same step on the same batch: after
    it they hold the same weights and running statistics, up to float32 rounding (5% of
    what the step moved each tensor; a weight loaded wrong or a step not taken is off by
    all of it). Then the benchmark's row."""
    from benchmarks import chapter8
    pair = chapter8.make_steps(name, batch=4)
    before = {k: v.clone() for k, v in pair.tmodel.state_dict().items()}
    pair.ours()
    pair.theirs()
    after = pair.tmodel.state_dict()
    for k, v in pair.model.state_dict().items():
        moved = float((after[k] - before[k]).abs().max())
        assert moved > 0 or k.endswith("bias"), f"{k}: the step did not move it"
        assert np.abs(sn.to_numpy(v) - after[k].numpy()).max() <= 0.05 * moved + 1e-7, k
    rows = list(chapter8.run("cpu", models=[name], batch=2, warmup=0, steps=1, rounds=1))
    assert len(rows) == 1 and len(rows[0]) == len(chapter8.HEADERS)
    size = chapter8.MODELS[name][2]
    assert rows[0][:3] == [name, f"(2, 1, {size}, {size})", "cpu"]
    assert all(float(v) > 0 for v in rows[0][3:])  # ms, ms, ratio


# ---- child processes --------------------------------------------------------------------

def test_pytest_summary_reads_the_closing_line():
    out = "....s..\n==== slowest 10 durations ====\n3.20s call tests/x.py::test_y\n" \
          "== 351 passed, 1 skipped, 2085 deselected in 93.21s (0:01:33) ==\n"
    assert gc.pytest_summary(out) == "351 passed, 1 skipped, 2085 deselected in 93.21s (0:01:33)"
    assert gc.pytest_summary("F.\n1 failed, 1 passed in 0.5s\n") == "1 failed, 1 passed in 0.5s"
    assert "did not finish" in gc.pytest_summary("....\n")


def test_a_real_pytest_run_gives_its_summary(tmp_path):
    (tmp_path / "test_tiny.py").write_text("def test_a():\n    pass\n\n"
                                           "def test_b():\n    assert 1 == 2\n")
    rc, out, timed_out = gc.run_command([sys.executable, "-m", "pytest", "-q", "-p",
                                         "no:cacheprovider"], 60, cwd=tmp_path)
    assert rc == 1 and not timed_out
    assert gc.pytest_summary(out).startswith("1 failed, 1 passed in ")


def test_pytest_stopped_at_its_time_still_says_what_passed(tmp_path):
    (tmp_path / "test_slow.py").write_text("import time\n\ndef test_a():\n    pass\n\n"
                                           "def test_b():\n    time.sleep(60)\n")
    # pytest's start and test_a must fit in the time, on a machine as loaded as it is now
    # (a fixed 3 s did not, once, with the rest of the suite beside it): time them alone
    # first, and give the run twice that and a second.
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    t = time.monotonic()
    rc, out, timed_out = gc.run_command(pytest + ["-k", "test_a"], 60, cwd=tmp_path)
    alone = time.monotonic() - t
    assert rc == 0 and not timed_out, out
    rc, out, timed_out = gc.run_command(pytest, max(3.0, 2 * alone + 1), cwd=tmp_path)
    assert timed_out and "KeyboardInterrupt" in out
    assert gc.pytest_summary(out).startswith("1 passed in ")


def test_a_child_over_its_time_gets_sigint_first_then_goes(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent("""\
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("started", grandchild.pid, flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("interrupted: summary printed", flush=True)
            sys.exit(3)
        """))
    t = time.monotonic()
    # 6 s: the script must reach its try block (a Python start and a Popen) first.
    rc, out, timed_out = gc.run_command([sys.executable, str(script)], 6, cwd=tmp_path)
    assert time.monotonic() - t < 6 + gc.GRACE_S + 3
    assert timed_out and rc == 3
    assert "started" in out and "interrupted: summary printed" in out
    # The grandchild went with it (its group was signalled), whoever reaps it.
    pid = int(out.split("started", 1)[1].split()[0])
    for _ in range(50):
        try:
            state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} still running")


def test_children_import_this_source_tree():
    env = gc.child_env("/data/here")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
    assert env["SCRATCHNET_DATA"] == "/data/here" and env["SCRATCHNET_GPU_CHECK"] == "1"


def test_tail_keeps_the_last_lines_without_progress_bars():
    out = "\n".join(f"line {i}" for i in range(100)) + "\n 10%\r 50%\r100% done"
    assert gc.tail(out, 3).splitlines() == ["line 98", "line 99", "100% done"]


# ---- data, versions, report -------------------------------------------------------------

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")


def test_data_dir_is_the_files_folder_or_the_one_above(tmp_path):
    files = tmp_path / "fashion-mnist"
    files.mkdir()
    for stem in STEMS:
        (files / f"{stem}.gz").write_bytes(b"")
    assert gc.find_data(files) == files
    assert gc.find_data(tmp_path) == files
    (files / f"{STEMS[0]}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        gc.find_data(tmp_path)


def test_cuda_versions_read_as_people_write_them():
    assert gc.cuda_version(12040) == "12.4"
    assert gc.cuda_version(13000) == "13.0"
    assert gc.cuda_version(11080) == "11.8"


def sample_parts():
    return [Part("pytest", gc.TITLES["pytest"], 215, "passed", 93.2,
                 summary="352 passed, 2085 deselected in 90.1s", body="```text\n...\n```"),
            Part("layers", gc.TITLES["layers"], 50, "timed out", 50.3, summary="12 rows",
                 error="stopped after its 50 s", body="| layer | ms |"),
            Part("lenet", gc.TITLES["lenet"], 50, "skipped", 0.1,
                 error="PyTorch 2.13.0+cpu sees no CUDA device"),
            Part("train_lenet", gc.TITLES["train_lenet"], 90, "failed", 3.0,
                 error="RuntimeError: a | b")]


def test_the_report_holds_machine_versions_every_part_and_the_verdict():
    text = gc.build_report("CPU: Xeon, 16 cores; date 2026-12-01",
                           [["GPU", "NVIDIA H200, 139.8 GiB"], ["CuPy", "13.6.0"]],
                           sample_parts(), 201.4, 480, date="2026-12-01 10:00")
    assert text.startswith("# scratchnet GPU check, 2026-12-01 10:00\n")
    assert "CPU: Xeon, 16 cores" in text and "| GPU " in text and "NVIDIA H200" in text
    assert "**2 of 4 parts did not pass: layers, train_lenet.**" in text
    assert "201 s in all, of a 480 s budget" in text
    for title in (gc.TITLES[n] for n in ("pytest", "layers", "lenet", "train_lenet")):
        assert f"## {title}" in text
    assert "`352 passed, 2085 deselected in 90.1s`" in text
    assert "| TIMED OUT " in text and "| FAILED " in text and "| skipped " in text
    assert "a \\| b" in text  # a | in an error does not break the table
    assert "| layer | ms |" in text


def test_an_all_passing_report_says_so():
    parts = [p for p in sample_parts() if p.status in gc.PASSING]
    text = gc.build_report("m", [], parts, 100, 480, date="d")
    assert "All 2 parts passed or were skipped." in text and "did not pass" not in text


def test_the_report_is_written_whole_and_alone(tmp_path):
    out = tmp_path / "new" / "dir"
    path = gc.write_report(out, "first\n")
    assert path == out / "gpu_check.md" and path.read_text() == "first\n"
    gc.write_report(out, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in out.iterdir()] == ["gpu_check.md"]  # no temp file left
    assert path.stat().st_mode & 0o044 == 0o044  # readable by all, as any report


# ---- on a GPU ---------------------------------------------------------------------------

@GPU
@needs_gpu
def test_versions_name_the_card_the_cuda_and_cupy():
    import cupy
    rows = dict(gc.versions())
    assert rows["GPU"] and not rows["GPU"].startswith("?")
    assert rows["CuPy"].startswith(cupy.__version__)
    assert rows["CUDA runtime (CuPy's)"].count(".") == 1


@GPU
@needs_gpu
@pytest.mark.skipif(os.environ.get("SCRATCHNET_GPU_CHECK") == "1",
                    reason="inside gpu_check, which runs this part itself")
def test_the_check_writes_a_report_on_the_gpu(tmp_path):
    proc = check_cmd("--out", tmp_path, "--parts", "resnet", "--budget", 150)
    report = (tmp_path / "gpu_check.md").read_text()
    assert proc.returncode == 0, report
    assert "## Summary" in report and gc.TITLES["resnet"] in report
    # Rows of figures, or skipped (and saying so) for a PyTorch without CUDA.
    assert ("ResNet-18 96x96 step, batch 128" in report or
            re.search(r"\| resnet +\| skipped ", report)), report
