"""examples: every section script (generated from notebooks/) runs as a student runs it
and prints the book's values; the training scripts learn (LeNet and ResNet: test
accuracy well above chance and a falling training loss; VGG: a loss falling every epoch
on its 16 images), write their files, resume, and refuse a missing GPU in one line. The
training runs need the real Fashion-MNIST (conftest's ``real_data``: without it they
skip with the reason; nothing is downloaded)."""
import importlib.util
import json
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from seedcells import notebooks_build
from test_seed import BOOK

import chaptercells as cc

import scratchnet as sn
from scratchnet.data import DownloadError
from scratchnet.models import LeNet

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(script, *args, check=True, timeout=120):
    """python examples/<script> <args> from the repository root; the CompletedProcess."""
    env = dict(os.environ)
    env.setdefault("SCRATCHNET_DATA", str(ROOT.parent / "shared" / "data"))
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


# The section scripts are the notebooks exported by notebooks/build.py. Each runs as
# ``python examples/<script>`` (runpy, as __main__), after scratchnet.manual_seed(0) as
# every test is seeded, with its training cells on the notebook's ``test_images`` first
# images for one epoch, and prints the book's values of its seed cells (BOOK,
# tests/test_seed.py) and what its book cells print on PyTorch where that is exact
# (tests/d2l_chapters/reference_outputs.json).
BUILD = notebooks_build()
REFERENCE = cc.reference()["sections"]
SEEDED = ("import runpy, sys, scratchnet; scratchnet.manual_seed(0); "
          "runpy.run_path(sys.argv[1], run_name='__main__')")
SKIP_VGG = pytest.mark.skip(
    reason="sec8_2_vgg.py only repeats the 8.2 notebook's cells, which "
           "tests/test_notebooks.py runs on a fresh kernel (VGG-11's summary at 224x224 "
           "and a training epoch at 224x224: about 25 s more)")


SKIP_RESNET = pytest.mark.skip(
    reason="sec8_6_resnet.py only repeats the 8.6 notebook's cells, which "
           "tests/test_notebooks.py runs on a fresh kernel (ResNet-18's summary at 96x96 "
           "and a training epoch: about 13 s more); its ResNeXt part, sec8_6_resnext.py, "
           "runs here")


def section_scripts():
    """Every section script with what it must print and how many images it trains on, as
    a list (pytest 9 deprecates generators in parametrize)."""
    params = []
    for spec in BUILD.NOTEBOOKS:
        for script, part in spec.scripts:
            cells = BUILD.script_cells(BUILD.notebook(spec), part)
            # The book's values: of the seed cells, and of the book cells that print
            # exactly what they print on PyTorch.
            values = {f"seed cell {BUILD.seed_cell(c)}": BOOK[BUILD.seed_cell(c)]
                      for c in cells if BUILD.seed_cell(c) in BOOK}
            for c in cells:
                where = BUILD.book_cell_of(c)
                if where and REFERENCE[where[0]][where[1]]["check"] == "exact":
                    values[f"book cell {where}"] = REFERENCE[where[0]][where[1]]["output"]
            if script == "sec8_6_resnext.py":
                values["the ResNeXt check"] = "torch.Size([4, 32, 96, 96])"
            if script == "sec5_3_backprop.py":  # scratchnet's own section: its checks
                values.update({
                    "the tape against the backward by hand": "largest |dJ/dW2, tape - by hand|",
                    "PyTorch against the backward by hand":
                        "largest |dJ/dW2, PyTorch - by hand|",
                    "the freed graph": "RuntimeError: backward: trying to go backward through "
                                       "the graph a second time"})
            fits = sum("trainer.fit(" in c.source for c in cells)
            marks = {"sec8_2_vgg.py": [SKIP_VGG], "sec8_6_resnet.py": [SKIP_RESNET]}.get(
                script, [])
            params.append(pytest.param(script, values, fits, spec.test_images, id=script,
                                       marks=marks))
    return params


@pytest.mark.parametrize("script, values, fits, images", section_scripts())
def test_section_script_prints_the_books_values(script, values, fits, images, tmp_path,
                                                request):
    if fits:
        request.getfixturevalue("real_data")
    env = dict(os.environ, SCRATCHNET_D2L_SUBSET=str(images), SCRATCHNET_D2L_MAX_EPOCHS="1",
               SCRATCHNET_D2L_FIGURES=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SEEDED, str(EXAMPLES / script)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    assert values or fits, "the script checks nothing"
    missing = [what for what, value in values.items() if value not in proc.stdout]
    assert not missing, f"{script} did not print the book's values of {missing}:\n" \
        f"{proc.stdout}"
    # Each training cell: its epoch line, and d2l's plot saved as a PNG.
    assert len(re.findall(r"^epoch 1/1: train loss .*backprop", proc.stdout, re.M)) == fits, \
        proc.stdout
    curves = re.findall(r"^the curves: (.+)$", proc.stdout, re.M)
    assert len(curves) == fits, proc.stdout
    for path in map(pathlib.Path, curves):
        assert path.parent == tmp_path and path.read_bytes().startswith(PNG_MAGIC)


def check_run_dir(out, epochs):
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in history)
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert int(sn.load(out / "checkpoint.npz")["epoch"]) == epochs - 1
    assert (out / "history.csv").read_text().count("\n") == epochs + 1
    return history


def printed_accuracy(stdout):
    m = re.search(r"^test accuracy (\d\.\d{4}) \(loss (\S+)\) on (\d+) images", stdout, re.M)
    assert m, stdout
    return float(m[1]), int(m[3])


LENET = ["--subset", 512, "--batch-size", 64, "--no-progress"]
# What each recipe needs to learn, fast. Sigmoid LeNet (d2l) sits on its plateau (loss
# 2.30) for hundreds of SGD steps at every rate tried (lr 0.1 alone: ~1000 at batch 128;
# lr 0.9: 450-650); with momentum 0.9 it leaves it after 100-620 steps, depending on the
# seed (seeds 0-5). 4 epochs of 200 steps: measured with seeds 0 and 3 (the latest to
# leave it), val acc 0.10, 0.52, 0.68, 0.73 and 0.09, 0.10, 0.48, 0.66 on 4266 test
# images; train loss 2.32 -> 0.75 and 2.32 -> 1.03. The modern LeNet learns at once (val
# acc 0.66, 0.68, 0.76 after 1-3 epochs on 170 images, train loss 1.33, 0.62, 0.46).
LEARN = {"d2l": ["--subset", 25600, "--batch-size", 128, "--momentum", 0.9, "--no-progress"],
         "modern": ["--subset", 1024, "--batch-size", 64, "--no-progress"]}
LEARNED = {"d2l": dict(min_acc=0.5, drop=0.8), "modern": dict(min_acc=0.5, drop=0.5)}


def assert_learned(history, acc, min_acc, drop):
    """Accuracy well above chance (0.1), and the training loss on the subset falling."""
    assert acc >= min_acc, f"test accuracy {acc}: it did not learn"
    losses = [r["train_loss"] for r in history]
    assert losses[-1] <= losses[0] - drop, f"training loss by epoch {losses}: not falling"


@pytest.mark.parametrize("recipe", ["d2l", "modern"])
def test_train_lenet_end_to_end_learns_and_resumes(tmp_path, recipe, real_data):
    """Two epochs, then two more resumed from the checkpoint: the files, the resume, and
    that it learned (after the 4 epochs; the modern recipe after 2 already)."""
    out = tmp_path / recipe
    args = LEARN[recipe]
    n_train, n_test = args[1], args[1] // 6
    proc = run("train_lenet.py", "--recipe", recipe, "--epochs", 2, "--out", out, *args)
    assert f"{n_train} training images" in proc.stdout
    acc, n = printed_accuracy(proc.stdout)
    assert n == n_test and 0 <= acc <= 1
    history = check_run_dir(out, 2)
    assert history[-1]["val_acc"] == pytest.approx(acc, abs=1e-4)
    if recipe == "modern":
        assert_learned(history, acc, **LEARNED[recipe])
    proc = run("train_lenet.py", "--recipe", recipe, "--epochs", 4, "--out", out, "--resume",
               *args)
    assert "resumed from" in proc.stdout and "after epoch 2" in proc.stdout
    assert len(re.findall(r"^epoch +\d+ ", proc.stdout, re.M)) == 2
    resumed = check_run_dir(out, 4)
    assert resumed[:2] == history
    acc, n = printed_accuracy(proc.stdout)
    assert n == n_test and resumed[-1]["val_acc"] == pytest.approx(acc, abs=1e-4)
    assert_learned(resumed, acc, **LEARNED[recipe])


@pytest.mark.skipif(sn.gpu_available(), reason="a GPU is available here")
def test_train_lenet_without_gpu_says_so_in_one_line(tmp_path):
    proc = run("train_lenet.py", "--device", "gpu", "--epochs", 1, "--out", tmp_path,
               *LENET, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"GPU|CuPy", lines[0]) and "--device gpu" in lines[0]
    assert not (tmp_path / "history.json").exists()


def test_train_resnet_learns(tmp_path, real_data):
    """ResNet-18 (BatchNorm) at 32x32 learns within 32 steps of the d2l recipe (measured:
    val acc 0.17 then 0.52 on 42 images, train loss 2.80 then 2.01, val loss 2.27 then
    1.73; with seeds 0-3 val acc 0.43-0.62, the train loss falls by 0.79-1.61 and the
    val loss by 0.46-1.05)."""
    proc = run("train_resnet.py", "--subset", 256, "--epochs", 2, "--batch-size", 16,
               "--resize", 32, "--no-progress", "--out", tmp_path)
    assert "resized to (32, 32)" in proc.stdout
    acc, n = printed_accuracy(proc.stdout)
    assert n == 42
    history = check_run_dir(tmp_path, 2)
    assert history[-1]["val_acc"] == pytest.approx(acc, abs=1e-4)
    assert_learned(history, acc, 0.3, 0.4)
    assert history[1]["val_loss"] < history[0]["val_loss"] - 0.2


def test_train_vgg_fits_its_subset(tmp_path, real_data):
    """VGG-small (no BatchNorm) on the d2l recipe stays on its plateau far longer than a
    test can run on a CPU (measured: loss 2.30-2.31 for 150 steps at 32x32, lr 0.01 with
    momentum 0.9 or lr 0.03 without, batch 32), so its test accuracy here is chance.
    What is checked is that it fits the 16 images it trains on: the training loss falls
    every epoch (measured 2.31, 2.20, 2.08, 1.94; with seeds 0-3 it falls by 0.37-0.39)."""
    proc = run("train_vgg.py", "--subset", 16, "--epochs", 4, "--batch-size", 8,
               "--lr", 0.03, "--momentum", 0.9, "--resize", 32, "--no-progress",
               "--out", tmp_path)
    assert "resized to (32, 32)" in proc.stdout
    acc, n = printed_accuracy(proc.stdout)
    assert n == 2 and 0 <= acc <= 1
    history = check_run_dir(tmp_path, 4)
    assert history[-1]["val_acc"] == pytest.approx(acc, abs=1e-4)
    losses = [r["train_loss"] for r in history]
    assert losses == sorted(losses, reverse=True) and losses[-1] <= losses[0] - 0.2, losses


def test_train_lenet_divergence_exits_with_one_clear_line(tmp_path, real_data):
    proc = run("train_lenet.py", "--recipe", "modern", "--lr", 1e10, "--epochs", 2,
               "--subset", 256, "--batch-size", 64, "--no-progress", "--out", tmp_path,
               check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # numpy's overflow warnings come first
    assert re.fullmatch(r"NonFiniteLossError: loss became nan at epoch 1, step \d+; "
                        r"training stopped \(try a "
                        r"smaller learning rate\)\. No checkpoint was written yet\.", last)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_missing_data_exits_with_one_line_naming_data_dir(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("examples_common", EXAMPLES / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)

    def missing(root=None, train=True):
        raise DownloadError("fashion-mnist not found and not downloaded (offline)")

    monkeypatch.setattr(common, "FashionMNIST", missing)
    recipes = {"d2l": dict(lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=8, epochs=1,
                           schedule="constant")}
    args = common.parse(common.parser("test", recipes, str(tmp_path / "run")), recipes, [])
    with pytest.raises(SystemExit) as info:
        common.run(args, LeNet, "LeNet")
    assert info.value.code == (
        "Fashion-MNIST not found here and the download failed: pass --data-dir FOLDER (the "
        "four IDX files, or the folder holding fashion-mnist/), set SCRATCHNET_DATA, or "
        "'apt install dataset-fashion-mnist'")
    assert list(tmp_path.iterdir()) == []



# Every command-line value is checked by the parser before any data is read or any
# folder is made: argparse's usage and one "error: argument --flag: ..." line, exit 2.
BAD_FLAGS = [
    *[(script, ["--batch-size", n], r"--batch-size: must be a positive integer, got " + n)
      for script in ("train_lenet.py", "train_vgg.py", "train_resnet.py") for n in ("0", "-5")],
    ("train_lenet.py", ["--lr", "-1"], r"--lr: must be a finite positive number, got -1"),
    ("train_lenet.py", ["--lr", "nan"], r"--lr: must be a finite positive number, got nan"),
    ("train_lenet.py", ["--lr", "0.1x"], r"--lr: must be a finite positive number, got '0.1x'"),
    ("train_lenet.py", ["--momentum", "-0.5"],
     r"--momentum: must be a finite non-negative number, got -0.5"),
    ("train_lenet.py", ["--weight-decay", "-1"],
     r"--weight-decay: must be a finite non-negative number, got -1"),
    ("train_lenet.py", ["--subset", "0"], r"--subset: must be a positive integer, got 0"),
    ("train_lenet.py", ["--subset", "-3"], r"--subset: must be a positive integer, got -3"),
    ("train_lenet.py", ["--epochs", "0"], r"--epochs: must be a positive integer, got 0"),
    ("train_lenet.py", ["--epochs", "-1"], r"--epochs: must be a positive integer, got -1"),
    ("train_lenet.py", ["--seed", "-1"], r"--seed: must be a non-negative integer, got -1"),
    ("train_vgg.py", ["--resize", "0"], r"--resize: must be a positive integer, got 0"),
    ("train_vgg.py", ["--resize", "8"],
     r"--resize: must be at least 32 \(VGG halves the side five times\), got 8"),
    ("train_resnet.py", ["--resize", "-1"], r"--resize: must be a positive integer, got -1"),
    ("train_vgg.py", ["--recipe", "modern"], r"--recipe: invalid choice: 'modern'.*"),
    ("train_lenet.py", ["--out", "a_file"], r"--out: a_file is a file, not a folder"),
    ("train_lenet.py", ["--out", "a_file/sub"],
     r"--out: a_file is a file, so a_file/sub cannot be a folder"),
    ("train_lenet.py", ["--resume", "--out", "fresh"],
     r"--resume: no checkpoint at fresh/checkpoint\.npz \(train without --resume first, or "
     r"pass the --out of that run\)"),
    ("train_lenet.py", ["--data-dir", "missing"], r"--data-dir: no such folder: missing"),
    ("train_cnn.py", ["--model", "alexnet", "--resize", "28"],
     r"--resize: AlexNet takes images of at least 65x65 \(its windows and strides\), got 28; "
     r"the book uses 224"),
    ("train_cnn.py", ["--model", "densenet", "--resize", "16"],
     r"--resize: DenseNet takes images of at least 29x29 \(its windows and strides\), got 16; "
     r"the book uses 96"),
    ("train_cnn.py", ["--model", "nin", "--resize", "0"],
     r"--resize: must be a positive integer, got 0"),
    ("train_cnn.py", ["--model", "googlenet", "--lr", "0"],
     r"--lr: must be a finite positive number, got 0"),
    ("train_cnn.py", ["--model", "inception"], r"--model: invalid choice: 'inception'.*"),
    ("train_cnn.py", ["--model", "regnetx32", "--resume", "--out", "fresh"],
     r"--resume: no checkpoint at fresh/checkpoint\.npz \(train without --resume first, or "
     r"pass the --out of that run\)"),
]


def run_in(cwd, script, *args, timeout=120):
    """python <repo>/examples/<script> <args>, run from ``cwd``; the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("SCRATCHNET_DATA", str(ROOT.parent / "shared" / "data"))
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("script, args, error", BAD_FLAGS,
                         ids=[f"{s} {' '.join(a)}" for s, a, _ in BAD_FLAGS])
def test_a_bad_flag_is_refused_by_the_parser_in_one_line(script, args, error, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    proc = run_in(tmp_path, script, *args, "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"{script}: error: argument {error}", last), last
    assert proc.stderr.strip().splitlines()[0].startswith(f"usage: {script}")
    # Nothing was made: no --out folder, no data cache.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_help_shows_each_recipes_defaults():
    proc = run_in(ROOT, "train_lenet.py", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for flag, default in [("--lr", "0.1 (d2l), 0.05 (modern)"),
                          ("--batch-size", "128 (d2l), 128 (modern)"),
                          ("--epochs", "10 (d2l), 10 (modern)"),
                          ("--momentum", "0.0 (d2l), 0.9 (modern)"),
                          ("--weight-decay", "0.0 (d2l), 0.0005 (modern)"),
                          ("--schedule", "constant (d2l), cosine (modern)"),
                          ("--out", "(default: runs/lenet)"), ("--seed", "(default: 0)")]:
        assert flag in text and default in text, (flag, default)


def test_train_cnn_help_gives_each_models_book_settings():
    proc = run_in(ROOT, "train_cnn.py", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for setting in ("alexnet: d2l 8.1, lr 0.01, 224x224", "nin: d2l 8.3, lr 0.05, 224x224",
                    "googlenet: d2l 8.4, lr 0.01, 96x96", "bnlenet: d2l 8.5, lr 0.1, 28x28",
                    "densenet: d2l 8.7, lr 0.01, 96x96", "regnetx32: d2l 8.8, lr 0.05, 96x96",
                    "(default: runs/{model})"):
        assert setting in text, setting


@pytest.mark.slow
@pytest.mark.parametrize("model, side", [("bnlenet", 28), ("googlenet", 32), ("nin", 67)])
def test_train_cnn_trains_a_chapter_8_model(model, side, tmp_path, real_data):
    """One short epoch; the model's own default --out; the book's lr is the one used."""
    proc = run_in(tmp_path, "train_cnn.py", "--model", model, "--resize", side, "--subset",
                  "192", "--epochs", "1", "--batch-size", "64", "--no-progress",
                  timeout=300)
    assert proc.returncode == 0, proc.stderr
    lr = {"bnlenet": "0.1", "googlenet": "0.01", "nin": "0.05"}[model]
    assert f"lr {lr} (constant)" in proc.stdout, proc.stdout
    assert re.search(r"test accuracy 0\.\d{4}", proc.stdout), proc.stdout
    assert (tmp_path / "runs" / model / "checkpoint.npz").is_file()


def test_a_data_dir_without_the_files_names_the_flag_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_in(tmp_path, "train_lenet.py", "--data-dir", empty, "--no-progress")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("argument --data-dir: fashion-mnist: "), lines
    assert str(empty) in lines[0] and "fashion-mnist/" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    assert not any(empty.iterdir())


def test_the_data_dir_may_be_the_files_folder_or_its_parent(tmp_path, real_data):
    for data_dir in (real_data, real_data.parent):
        proc = run_in(tmp_path, "train_lenet.py", "--data-dir", data_dir, "--subset", 64,
                      "--epochs", 1, "--batch-size", 64, "--no-progress", "--out",
                      tmp_path / data_dir.name)
        assert proc.returncode == 0, proc.stderr
        assert "64 training images" in proc.stdout


def test_a_subset_larger_than_the_data_is_refused(tmp_path, real_data):
    proc = run_in(tmp_path, "train_lenet.py", "--subset", 60001, "--no-progress")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "train_lenet.py: error: argument --subset: the training set has 60000 images, "
        "got 60001")
    assert list(tmp_path.iterdir()) == []


def test_resuming_another_models_checkpoint_names_both_models(tmp_path, real_data):
    tiny = ["--subset", 64, "--epochs", 1, "--batch-size", 64, "--no-progress", "--out", "run"]
    assert run_in(tmp_path, "train_lenet.py", *tiny).returncode == 0
    before = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    for script, extra, here in [
            ("train_resnet.py", ["--resize", 32], "ResNet18 (11,178,378 parameters)"),
            ("train_lenet.py", ["--recipe", "modern"], "LeNet (62,158 parameters)")]:
        proc = run_in(tmp_path, script, *tiny, *extra, "--resume")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines == [f"ValueError: cannot resume from run/checkpoint.npz: it was written "
                         f"by LeNet (61,706 parameters), and the model loading it is {here}"]
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == before


def test_ctrl_c_names_the_checkpoint_and_the_command_that_resumes(tmp_path, real_data):
    """SIGINT (Ctrl-C) once the first checkpoint is on disk: one line with that checkpoint
    and the exact command that resumes, exit status 130, the checkpoint intact; the
    command it prints then finishes the run."""
    args = ["--subset", 12800, "--epochs", 3, "--batch-size", 32, "--no-progress",
            "--out", "run"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("SCRATCHNET_DATA", str(ROOT.parent / "shared" / "data"))
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "train_lenet.py"),
                             *map(str, args)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    saved = checkpoint.read_bytes()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "epoch   3" not in out, "the run ended before the signal: make it longer"
    resume = f"python {EXAMPLES / 'train_lenet.py'} " + " ".join(map(str, args)) + " --resume"
    assert err.strip().splitlines() == [
        f"interrupted; the last good checkpoint is run/checkpoint.npz (after epoch 1); "
        f"resume with: {resume}"]
    assert checkpoint.read_bytes() == saved
    done = subprocess.run([sys.executable, *shlex.split(resume)[1:]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "after epoch 1" in done.stdout and "epoch   3" in done.stdout


def test_ctrl_c_before_the_first_checkpoint_says_none_was_written(tmp_path, real_data):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("SCRATCHNET_DATA", str(ROOT.parent / "shared" / "data"))
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "train_lenet.py"), "--subset",
                             "60000", "--batch-size", "16", "--no-progress", "--out", "run"],
                            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run").exists() and proc.poll() is None:  # fit has begun
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # in the first epoch's steps (an epoch of 60000 images takes seconds)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines() == [
        "interrupted before the first epoch ended: no checkpoint was written"]
    assert not (tmp_path / "run").exists()  # the empty --out folder is removed again
