"""Interrupted work (issue 5): processes killed with SIGKILL half-way through a training
epoch, a checkpoint write or a download. Nothing is lost that was finished: a training
run resumes from its last checkpoint and ends with the very weights (bit for bit) of a
run that was never interrupted; a checkpoint is never replaced by a half-written one; a
download starts again cleanly. Files a killed process could not remove are removed by
the next write of the same file.

The kills are real: each victim is a subprocess running a small script written to
tmp_path, killed at a point it reports by creating a marker file (bounded waits, no
timing assertions). Each test asserts how many of its kills landed where it says: two
in the middle of training epochs, one of examples/train_lenet.py, three in the middle of
checkpoint writes and one in the middle of a download, 7 in all.
"""
import http.server
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import scratchnet as sn
from scratchnet.data import content_sha256, read_idx, write_idx
from scratchnet.data import datasets

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL needs a POSIX system")

ROOT = pathlib.Path(__file__).resolve().parents[1]
WAIT = 180  # seconds: the bound on every wait for a victim to reach its kill point
KILLS = []  # (what, where) of every kill survived (printed with -s)


def teardown_module():
    print(f"\nkills survived: {len(KILLS)}: " + "; ".join(f"{a} ({b})" for a, b in KILLS))


def env():
    """The child's environment: this checkout first on the path, one BLAS thread (the
    runs are compared bit for bit, and two children share two cores), no proxy."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        e[var] = "1"
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        e.pop(var, None)
    e["NO_PROXY"] = "127.0.0.1"
    return e


def start(script, *args, log):
    """Run python ``script`` ``args`` in the background, output to the file ``log``."""
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], cwd=ROOT,
                            env=env(), stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return proc


def wait_for(proc, ready, log, what):
    """Poll until ``ready()``; fail (with the child's output) if it exits or WAIT passes."""
    deadline = time.monotonic() + WAIT
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process ended (code {proc.returncode}) first:\n"
                        f"{pathlib.Path(log).read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what}: not reached within {WAIT} s")
        time.sleep(0.005)


def kill(proc, what, where):
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=WAIT) == -signal.SIGKILL, f"{what} ended before the kill"
    KILLS.append((what, where))


@pytest.fixture
def kills():
    """The kills this test made: (what, where), as kill() records them."""
    first = len(KILLS)
    return lambda: KILLS[first:]


def finish(proc, log, what):
    code = proc.wait(timeout=WAIT)
    assert code == 0, f"{what} failed ({code}):\n{pathlib.Path(log).read_text()}"
    return pathlib.Path(log).read_text()


@pytest.fixture
def reaper():
    """Kills whatever a failed test left running."""
    procs = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def temp_files(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name.startswith("."))


TRAIN = textwrap.dedent('''
    """A LeNet with BatchNorm and two Dropout(0.5) layers (momentum, cosine schedule) on
    Fashion-MNIST's first 1024 test images (a synthetic set without them) for 3 epochs with
    Trainer checkpoints. A new run is seeded 0; a resumed one is seeded 1 on purpose, so
    its dropout masks equal the uninterrupted run's only if the Trainer restores the
    random state of the checkpoint. With "pause E S" it creates out/paused and waits
    forever at step S of epoch E."""
    import pathlib, sys, time
    import numpy as np
    import scratchnet as sn
    from scratchnet import nn
    from scratchnet.data import DataLoader, FashionMNIST
    from scratchnet.train import Trainer

    out, resume = pathlib.Path(sys.argv[1]), sys.argv[2] == "resume"
    pause = tuple(map(int, sys.argv[4:6])) if sys.argv[3] == "pause" else None
    sn.manual_seed(1 if resume else 0)
    try:
        data = FashionMNIST(train=False, download=False)
    except FileNotFoundError:
        class data:
            rs = np.random.default_rng(0)
            images = rs.integers(0, 256, (1024, 28, 28)).astype(np.uint8)
            labels = rs.integers(0, 10, 1024).astype(np.int64)
    train = DataLoader(data, 64, shuffle=True, seed=0, subset=1024)
    val = DataLoader(data, 256, subset=256)
    model = nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.LazyLinear(120), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(84), nn.ReLU(), nn.Dropout(0.5), nn.LazyLinear(10))
    nn.init.apply_init(model, [next(iter(train))[0][:2]])
    opt = sn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = sn.optim.CosineAnnealingLR(opt, T_max=3)


    class Batches:
        """The loader, with a pause at one (epoch, step); fit sets .epoch."""
        epoch = 0

        def __len__(self):
            return len(train)

        def __iter__(self):
            train.epoch = self.epoch
            for step, batch in enumerate(train):
                if (self.epoch, step) == pause:
                    (out / "paused").touch()
                    time.sleep(3600)
                yield batch


    Trainer(max_epochs=3, out=out, progress=False).fit(model, Batches(), val, opt,
                                                       resume=resume, scheduler=sched)
    sn.save(model.state_dict(), out / "final.npz")
''')


def assert_same_run(a, b):
    """Two run folders hold bit-identical final weights, checkpoints and histories."""
    fa, fb = sn.load(a / "final.npz"), sn.load(b / "final.npz")
    assert list(fa) == list(fb)
    for k in fa:
        assert np.array_equal(fa[k], fb[k]), f"{k} differs"
    ca, cb = sn.load(a / "checkpoint.npz"), sn.load(b / "checkpoint.npz")
    assert list(ca) == list(cb)
    for k in ca:
        if k != "history":  # its timings differ
            assert np.array_equal(ca[k], cb[k]), f"checkpoint {k} differs"
    assert int(ca["epoch"]) == 2


def test_training_killed_twice_resumes_to_the_same_weights(tmp_path, reaper, kills):
    """Killed inside epoch 2, resumed, killed inside epoch 3, resumed: the final weights,
    optimizer, scheduler and RNG state equal those of an uninterrupted run, bit for bit.
    The model has dropout, and each resume starts from another seed: only the random
    state restored from the checkpoint gives the uninterrupted run's masks, and a resume
    from the same checkpoint holding another random state ends elsewhere (the control)."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    whole, split, control = tmp_path / "whole", tmp_path / "split", tmp_path / "control"
    reaper.append(start(script, whole, "new", "-", log=tmp_path / "whole.log"))
    for attempt, (mode, epoch, step) in enumerate([("new", 1, 5), ("resume", 2, 0)]):
        log = tmp_path / f"split{attempt}.log"
        proc = start(script, split, mode, "pause", epoch, step, log=log)
        reaper.append(proc)
        wait_for(proc, (split / "paused").exists, log, f"epoch {epoch + 1}, step {step + 1}")
        kill(proc, "Trainer.fit", f"epoch {epoch + 1} of 3, step {step + 1} of 16")
        (split / "paused").unlink()
        # What epoch `epoch` (0-based) did not finish is not on disk; what came before is.
        assert int(sn.load(split / "checkpoint.npz")["epoch"]) == epoch - 1
        assert not (split / "final.npz").exists()
        assert temp_files(split) == []
    assert [where for _, where in kills()] == ["epoch 2 of 3, step 6 of 16",
                                               "epoch 3 of 3, step 1 of 16"]
    # The control: the same checkpoint with another random state.
    control.mkdir()
    state = sn.load(split / "checkpoint.npz")
    other = type(sn.backend.rng().bit_generator)(12345).state
    assert json.loads(str(state["rng"])) != other
    state["rng"] = json.dumps(other)
    sn.save(state, control / "checkpoint.npz")
    reaper.append(start(script, control, "resume", "-", log=tmp_path / "control.log"))
    proc = start(script, split, "resume", "-", log=tmp_path / "split2.log")
    assert "resumed from" in finish(proc, tmp_path / "split2.log", "the last resume")
    finish(reaper[0], tmp_path / "whole.log", "the uninterrupted run")
    assert_same_run(whole, split)
    assert "resumed from" in finish(reaper[-1], tmp_path / "control.log", "the control")
    fw, fc = sn.load(whole / "final.npz"), sn.load(control / "final.npz")
    assert any(not np.array_equal(fw[k], fc[k]) for k in fw), \
        "the random state does not matter: the test above proves nothing about it"
    assert len(kills()) == 2


def test_train_lenet_example_killed_in_epoch_2_resumes(tmp_path, reaper, kills, real_data):
    """examples/train_lenet.py, killed as soon as its first checkpoint is on disk (so in
    epoch 2), then run again with --resume, ends where an uninterrupted run ends."""
    script = ROOT / "examples" / "train_lenet.py"
    args = ["--recipe", "modern", "--subset", 2048, "--batch-size", 64, "--epochs", 3,
            "--no-progress", "--out"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    reaper.append(start(script, *args, whole, log=tmp_path / "whole.log"))
    proc = start(script, *args, split, log=tmp_path / "split.log")
    reaper.append(proc)
    wait_for(proc, (split / "checkpoint.npz").exists, tmp_path / "split.log", "epoch 1's end")
    kill(proc, "examples/train_lenet.py", "as its first checkpoint appeared")
    assert int(sn.load(split / "checkpoint.npz")["epoch"]) == 0
    proc = start(script, *args, split, "--resume", log=tmp_path / "resume.log")
    out = finish(proc, tmp_path / "resume.log", "train_lenet.py --resume")
    assert "resumed from" in out and "after epoch 1" in out and "test accuracy" in out
    finish(reaper[0], tmp_path / "whole.log", "the uninterrupted run")
    a, b = sn.load(whole / "checkpoint.npz"), sn.load(split / "checkpoint.npz")
    assert int(a["epoch"]) == int(b["epoch"]) == 2
    for k in a:
        if k.startswith(("model.", "optim.", "sched.")) or k == "rng":
            assert np.array_equal(a[k], b[k]), f"{k} differs"
    assert temp_files(split) == []
    assert len(kills()) == 1


WRITER = textwrap.dedent('''
    """Write checkpoints of 16 MB to argv[1] in a loop, version 1, 2, ..., until killed."""
    import sys
    import numpy as np
    import scratchnet as sn

    version = 0
    while True:
        version += 1
        sn.save({"version": version, "w": np.full(4 << 20, version, np.float32)}, sys.argv[1])
''')


WRITE_KILLS = 3  # kills that must land while a checkpoint is being written
WRITE_TRIES = 12  # writers started at most to get them


def test_checkpoint_write_killed_half_way_never_replaces_the_good_one(tmp_path, reaper, kills):
    """SIGKILL while a checkpoint is being written (its temp file exists): the file at
    the path is still a complete checkpoint, and the next save of that path removes the
    temp file the killed writer left. A kill lands in a write when the temp file is
    still there after it (a killed writer cannot remove it); one that lands between two
    writes (the write finished between the poll and the kill) is checked the same way
    but not counted, and writers are started until WRITE_KILLS kills landed in a write."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "ck" / "checkpoint.npz"
    path.parent.mkdir()
    sn.save({"version": 0, "w": np.zeros(4 << 20, np.float32)}, path)
    landed = 0
    for attempt in range(WRITE_TRIES):
        log = tmp_path / f"writer{attempt}.log"
        proc = start(script, path, log=log)
        reaper.append(proc)
        wait_for(proc, lambda: temp_files(path.parent), log, "a write in progress")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=WAIT) == -signal.SIGKILL, "the writer ended before the kill"
        in_write = len(temp_files(path.parent)) == 1
        KILLS.append(("scratchnet.save", "while its temp file existed" if in_write
                      else "between two writes"))
        landed += in_write
        state = sn.load(path)  # complete: it loads, and its array is its version's
        assert sorted(state) == ["version", "w"]
        np.testing.assert_array_equal(state["w"], np.float32(state["version"]))
        sn.save(state, path)  # as a resumed run's next checkpoint
        assert os.listdir(path.parent) == ["checkpoint.npz"]
        if landed == WRITE_KILLS:
            break
    assert landed == WRITE_KILLS, \
        f"{landed} of {attempt + 1} kills landed while a temp file existed"
    assert [w for _, w in kills()].count("while its temp file existed") == WRITE_KILLS


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """Serves the file; until ``server.release`` is set, only its first half, then waits."""

    def do_GET(self):
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        try:
            self.wfile.write(body[:half])
            self.wfile.flush()
            self.server.release.wait(WAIT)
            self.wfile.write(body[half:])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed

    def log_message(self, *args):
        pass


DOWNLOADER = textwrap.dedent('''
    """download_file of a.gz from argv[1] into argv[2], checked against sha256 argv[3]."""
    import sys
    from scratchnet.data import datasets

    Fake = type("Fake", (datasets._IDXDataset,), {"name": "fake", "classes": ("a",),
                                                  "sha256": {"a": sys.argv[3]}})
    datasets.download_file(Fake, "a", sys.argv[2], mirrors=[sys.argv[1]], retries=1,
                           progress=False)
''')


def test_download_killed_half_way_starts_again_cleanly(tmp_path, reaper, kills):
    """tests/data/test_datasets.py drops the connection; here the downloading process
    itself dies, with half the file in its .part file. The next download succeeds, checks
    the content and removes the dead one's .part."""
    payload = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", payload)
    sha = content_sha256(tmp_path / "a.gz")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    httpd.daemon_threads = True
    httpd.body = (tmp_path / "a.gz").read_bytes()
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    cache = tmp_path / "cache"
    try:
        script = tmp_path / "download.py"
        script.write_text(DOWNLOADER)
        proc = start(script, url, cache, sha, log=tmp_path / "download.log")
        reaper.append(proc)

        def half_written():
            parts = list(cache.glob(".a.gz.*.part")) if cache.is_dir() else []
            # A quarter: the client reads 64 kB chunks, the server stops after half.
            return parts and parts[0].stat().st_size >= len(httpd.body) // 4

        wait_for(proc, half_written, tmp_path / "download.log", "half the download")
        kill(proc, "download_file", "with part of the file received")
        assert not (cache / "a.gz").exists() and len(temp_files(cache)) == 1
        httpd.release.set()
        Fake = type("Fake", (datasets._IDXDataset,), {"name": "fake", "classes": ("a",),
                                                      "sha256": {"a": sha}})
        path = datasets.download_file(Fake, "a", cache, mirrors=[url], retries=1,
                                      progress=False)
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert os.listdir(cache) == ["a.gz"]
    np.testing.assert_array_equal(read_idx(path), payload)
    assert kills() == [("download_file", "with part of the file received")]
