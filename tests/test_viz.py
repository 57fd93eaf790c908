"""viz: the kernel and feature-map pictures are written, as PNGs, for the right tensors."""
import numpy as np
import pytest

import scratchnet as sn
from scratchnet.models import LeNet

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG)


@pytest.fixture
def lenet():
    model = LeNet(modern=True)
    sn.nn.init.apply_init(model, [np.zeros((2, 1, 28, 28), np.float32)])
    return model


def test_kernels_and_feature_maps_are_pngs(tmp_path, lenet):
    assert is_png(sn.viz.plot_kernels(lenet.net[0].weight.data, tmp_path / "k.png"))
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    assert is_png(sn.viz.plot_feature_maps(lenet, image, tmp_path / "f.png"))
    assert is_png(sn.viz.plot_kernel_pair([[0.98, -1.01]], [[1.0, -1.0]], tmp_path / "p.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "k.png", "p.png"]


def test_conv_outputs_are_every_convolutions_maps(lenet):
    x = np.random.default_rng(1).random((1, 1, 28, 28), dtype=np.float32)
    lenet.eval()
    maps = sn.viz.conv_outputs(lenet, x)
    assert [(name, fm.shape) for name, fm in maps] == [
        ("net.0 Conv2d", (1, 6, 28, 28)), ("net.4 Conv2d", (1, 16, 10, 10))]
    np.testing.assert_allclose(maps[0][1], lenet.net[0](x), rtol=1e-6)


def test_plot_feature_maps_leaves_the_mode_and_statistics_alone(tmp_path, lenet):
    lenet.train()
    before = {k: v.clone() for k, v in lenet.state_dict().items()}
    sn.viz.plot_feature_maps(lenet, np.ones((28, 28), np.float32), tmp_path / "f.png")
    assert lenet.training
    for k, v in lenet.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_plot_kernels_rejects_a_linear_weight(tmp_path):
    with pytest.raises(ValueError, match=r"plot_kernels: expected a Conv2d weight.*\(10, 84\)"):
        sn.viz.plot_kernels(np.zeros((10, 84)), tmp_path / "k.png")
    assert not any(tmp_path.iterdir())


def test_plot_kernels_takes_a_conv2d_or_a_model(tmp_path, lenet):
    """A Conv2d, its Parameter or a model holding one draw the same picture as the
    weight array (the model's first Conv2d)."""
    weight = lenet.net[0].weight
    paths = [sn.viz.plot_kernels(w, tmp_path / f"{i}.png")
             for i, w in enumerate([weight.data, weight, lenet.net[0], lenet])]
    assert all(is_png(p) for p in paths)
    assert len({p.read_bytes() for p in paths}) == 1


WANT = (r"plot_kernels: expected a Conv2d weight of shape \(out, in, kh, kw\), a Conv2d "
        r"layer, or a model containing one; got ")


@pytest.mark.parametrize("what, error, got", [
    (lambda: sn.nn.Sequential(sn.nn.Flatten(), sn.nn.Linear(4, 2)), ValueError,
     "a Sequential with no Conv2d in it"),
    (lambda: sn.nn.Conv1d(1, 2, 3), ValueError, "a Conv1d with no Conv2d in it"),
    (lambda: np.zeros(3), ValueError, r"an array of shape \(3,\)"),
    (lambda: "kernels.png", TypeError, "str"),
    (lambda: None, TypeError, "NoneType"),
], ids=["model", "Conv1d", "1-D", "str", "None"])
def test_plot_kernels_says_what_it_takes(tmp_path, what, error, got):
    with pytest.raises(error, match=rf"^{WANT}{got}$"):
        sn.viz.plot_kernels(what(), tmp_path / "k.png")
    assert not any(tmp_path.iterdir())


def test_plot_kernels_of_a_lazy_layer_asks_for_a_forward(tmp_path):
    with pytest.raises(ValueError, match=r"plot_kernels: the Conv2d's weight is not "
                                         r"initialised yet \(a lazy layer\); run one forward"):
        sn.viz.plot_kernels(sn.nn.LazyConv2d(2, 3), tmp_path / "k.png")
    assert not any(tmp_path.iterdir())


def test_visualize_lenet_example_draws_both_pictures(tmp_path):
    import os
    import pathlib
    import subprocess
    import sys

    from scratchnet.train import Trainer
    root = pathlib.Path(__file__).resolve().parents[1]
    rs = np.random.default_rng(0)
    X = rs.random((64, 1, 28, 28), dtype=np.float32)
    y = rs.integers(0, 10, 64)
    model = LeNet(modern=True)
    sn.nn.init.apply_init(model, [X[:2]])
    Trainer(max_epochs=1, out=tmp_path / "run", progress=False, log=None).fit(
        model, [(X, y)], optimizer=sn.optim.SGD(model.parameters(), lr=0.01))
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "visualize_lenet.py"), "--checkpoint",
         str(tmp_path / "run" / "checkpoint.npz"), "--out", str(tmp_path / "img")],
        capture_output=True, text=True, cwd=root, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert is_png(tmp_path / "img" / "kernels.png")
    assert is_png(tmp_path / "img" / "feature_maps.png")


def test_plot_runs_puts_each_runs_history_in_a_panel(tmp_path):
    """examples/plot_runs.py: one panel per --out folder, titled with its last val acc;
    a folder without history.json is refused by the parser, naming it, and writes
    nothing."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "examples" / "plot_runs.py"
    for name, acc in (("a", 0.5), ("b", 0.7)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.json").write_text(json.dumps(
            [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.1 / e, "train_acc": acc / 2,
              "val_acc": acc} for e in (1, 2)]))
    out = tmp_path / "runs.png"
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "a"), str(tmp_path / "b"),
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "empty").mkdir()
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "empty"), "--out",
                          str(tmp_path / "x.png")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].endswith(
        f"argument runs: no history.json in {tmp_path / 'empty'}")
    assert not (tmp_path / "x.png").exists()


def test_plot_im2col_draws_teachs_columns(tmp_path):
    """The matrix drawn is teach.im2col's, a column per window (p, q) and a row per kernel
    offset (i, j), labelled so; a non-square image and kernel catch a transpose. A kernel
    larger than the image is refused, naming the function, and nothing is written."""
    from scratchnet import teach
    x = np.arange(12.0).reshape(3, 4) - 5
    path, col, rows, cols = sn.viz.plot_im2col(x, (2, 3), tmp_path / "im2col.png")
    assert is_png(path)
    np.testing.assert_array_equal(col, teach.im2col(x[None, None], 2, 3).reshape(6, 4))
    assert col[:, 3].tolist() == x[1:3, 1:4].ravel().tolist()  # window (1, 1), row by row
    assert rows == ["K[0,0]", "K[0,1]", "K[0,2]", "K[1,0]", "K[1,1]", "K[1,2]"]
    assert cols == ["Y[0,0]", "Y[0,1]", "Y[1,0]", "Y[1,1]"]
    with pytest.raises(ValueError, match=r"^plot_im2col: expected a kernel from 1x1 up to "
                                         r"the image's size \(3, 4\), got kernel \(4, 1\)$"):
        sn.viz.plot_im2col(x, (4, 1), tmp_path / "big.png")
    assert [p.name for p in tmp_path.iterdir()] == ["im2col.png"]


def test_draw_im2col_example_draws_the_pages_picture(tmp_path, monkeypatch, capsys):
    """examples/draw_im2col.py --out DIR writes im2col.png there and prints the columns
    of docs/conv_backward.md's 3x3 input (run in-process: no second interpreter). The
    page embeds the committed copy, of the same size (the same figure: regenerate it
    with `python examples/draw_im2col.py`)."""
    import pathlib
    import runpy
    root = pathlib.Path(__file__).resolve().parents[1]
    script = root / "examples" / "draw_im2col.py"
    monkeypatch.setattr("sys.argv", [str(script), "--out", str(tmp_path / "img")])
    runpy.run_path(str(script), run_name="__main__")
    drawn, committed = tmp_path / "img" / "im2col.png", root / "docs" / "img" / "im2col.png"
    assert is_png(drawn) and is_png(committed)
    assert drawn.read_bytes()[16:24] == committed.read_bytes()[16:24]  # IHDR width, height
    assert "(img/im2col.png)" in (root / "docs" / "conv_backward.md").read_text()
    assert capsys.readouterr().out.endswith(
        "[[1. 2. 0. 1.]\n [2. 0. 1. 3.]\n [0. 1. 2. 1.]\n [1. 3. 1. 1.]]\n")
