"""What a run writes: one line per epoch when piped (no progress redraws), a live plot in
Jupyter, and output files with the permissions of the user's umask."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import io as sn_io
from scratchnet import nn, train, viz

ROOT = Path(__file__).resolve().parent.parent


def test_a_piped_ten_epoch_run_logs_one_line_per_epoch(tmp_path, real_data):
    log = tmp_path / "log.txt"
    env = dict(os.environ, SCRATCHNET_DATA=str(Path(real_data).parent))
    with open(log, "w") as f:  # stdout and stderr into a file, as `> log 2>&1` does
        subprocess.run([sys.executable, str(ROOT / "examples" / "train_lenet.py"),
                        "--epochs", "10", "--subset", "512", "--out", str(tmp_path / "run")],
                       stdout=f, stderr=subprocess.STDOUT, env=env, check=True, timeout=300)
    text = log.read_text()
    lines = text.splitlines()
    assert "\r" not in text and len(text) < 2000, text  # 49 kB for one full epoch before
    assert sum(line.startswith("epoch ") for line in lines) == 10
    assert len(lines) == 12  # the header, ten epochs, the result


def test_output_kind_tells_a_pipe_from_a_terminal_and_jupyter(monkeypatch, tmp_path):
    with open(tmp_path / "f", "w") as f:
        assert train.output_kind(f) == "pipe"
    main, other = os.openpty()
    try:
        with os.fdopen(other, "w", closefd=False) as tty:
            assert train.output_kind(tty) == "terminal"
    finally:
        os.close(main)
        os.close(other)
    monkeypatch.setattr(train, "jupyter_shell", lambda: object())
    assert train.output_kind(sys.stderr) == "jupyter"


@pytest.mark.parametrize("kind, drawn", [("pipe", False), ("terminal", True),
                                         ("jupyter", True)])
def test_the_progress_bar_is_drawn_only_where_someone_watches(kind, drawn, monkeypatch):
    monkeypatch.setattr(train.importlib.util, "find_spec", lambda name: None)  # no widgets
    bar = train.progress_bar(kind, total=3)
    assert bar.disable is not drawn
    bar.close()
    assert train.progress_bar("terminal", total=3, disable=True).disable  # progress=False
    monkeypatch.setenv("SCRATCHNET_PROGRESS", "0")  # as notebooks/build.py runs them
    assert train.progress_bar(kind, total=3).disable


def test_in_jupyter_the_trainer_redraws_its_curves_in_place(monkeypatch):
    display = pytest.importorskip("IPython.display")
    shown = []

    class Shell:
        execution_count = 7

    class Handle:
        def update(self, image):
            shown.append(("update", image))

    def fake_display(obj, *args, display_id=False, **kwargs):
        shown.append(("display", obj))
        return Handle()

    monkeypatch.setattr(display, "display", fake_display)
    monkeypatch.setattr(viz, "jupyter_shell", lambda: Shell)
    monkeypatch.setattr(train, "jupyter_shell", lambda: Shell)
    rng = np.random.default_rng(0)
    data = [(rng.random((8, 4), dtype=np.float32), rng.integers(0, 3, 8)) for _ in range(2)]
    model = nn.Sequential(nn.Linear(4, 3))
    train.Trainer(max_epochs=3, log=None, checkpoint=False).fit(
        model, data, data, sn.optim.SGD(model.parameters(), lr=0.1))
    # One picture for the cell, updated after epochs 2 and 3: the last one stays. With
    # ipywidgets installed, tqdm's notebook bar is displayed too (a widget, not a picture).
    pictures = [(kind, obj) for kind, obj in shown if isinstance(obj, display.Image)]
    assert [kind for kind, _ in pictures] == ["display", "update", "update"]
    assert all(image.data.startswith(b"\x89PNG") for _, image in pictures)
    others = [obj for _, obj in shown if not isinstance(obj, display.Image)]
    assert all(not getattr(obj, "data", b"").startswith(b"\x89PNG") for obj in others)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_files_get_the_umasks_permissions(umask, mode, tmp_path):
    rng = np.random.default_rng(0)
    data = [(rng.random((8, 4), dtype=np.float32), rng.integers(0, 3, 8))]
    model = nn.Sequential(nn.Linear(4, 3))
    previous = os.umask(umask)
    try:
        train.Trainer(max_epochs=1, out=tmp_path, log=None).fit(
            model, data, data, sn.optim.SGD(model.parameters(), lr=0.1))
        sn.save(model.state_dict(), tmp_path / "weights.npz")
        sn_io.atomic_write_text(tmp_path / "note.txt", "text")
    finally:
        os.umask(previous)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["checkpoint.npz", "curves.png", "history.csv", "history.json",
                     "note.txt", "weights.npz"]  # no temp file left behind
    assert {name: _mode(tmp_path / name) for name in files} == dict.fromkeys(files, mode)
