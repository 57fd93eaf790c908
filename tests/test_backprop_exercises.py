"""scratchnet.backprop_exercises: the checker passes the right answers (teach's backwards,
the Residual block's own) and fails each typical wrong answer with a message that names
the gradient, its worst entries and the mistake, on the CPU and the CuPy double; the stubs
say "write me"; the command checks a file and writes the template."""
import numpy as np
import pytest

import scratchnet as sn
from scratchnet import backprop_exercises as be
from scratchnet import teach
from scratchnet.backend import get_array_module
from scratchnet.models.resnet import Residual

RIGHT = {"sigmoid": teach.sigmoid_backward, "avg_pool2d": teach.avg_pool2d_backward,
         "max_pool2d": teach.max_pool2d_backward, "conv2d": teach.conv2d_backward,
         "batch_norm": teach.batch_norm_train_backward, "residual": Residual.backward}


@pytest.mark.parametrize("name", list(RIGHT))
def test_the_right_answer_passes(device, name):
    result = be.check(name, RIGHT[name])
    assert result.ok, str(result)
    assert str(result).startswith(f"{be.EXERCISES[name].function}: ok. ")
    assert "finite differences" in str(result)


@pytest.mark.parametrize("stub", be.STUBS, ids=lambda f: f.__name__)
def test_each_stub_says_write_me(stub):
    with pytest.raises(NotImplementedError, match=f"^write me: {stub.__name__}\\("):
        be.check(stub)  # the exercise taken from the function's name
    assert "Return" in stub.__doc__


def sigmoid_written_with_x(gy, cache):
    x = cache  # the cache is y = sigmoid(x), not x
    s = 1 / (1 + get_array_module(x).exp(-x))
    return gy * s * (1 - s)


def avg_pool_not_divided(gy, cache):
    x_shape, kh, kw, stride, padding = cache
    xp = get_array_module(gy)
    gcol = xp.broadcast_to(gy[:, :, None, None], (*gy.shape[:2], kh, kw, *gy.shape[2:]))
    return teach.col2im(gcol, x_shape, stride, padding)


def max_pool_every_tied_maximum(gy, cache):
    x_shape, first, kh, kw, stride, padding, dilation = cache
    xp = get_array_module(gy)
    col = teach.im2col(cache.x, kh, kw, stride, padding, dilation, pad_value=-xp.inf)
    hit = col == col.max(axis=(2, 3), keepdims=True)
    return teach.col2im(hit * gy[:, :, None, None], x_shape, stride, padding, dilation)


def conv_gW_transposed(gy, cache):
    gx, _, gb = teach.conv2d_backward(gy, cache)
    x_shape, col2, W = cache[:3]
    gy2 = gy.transpose(0, 2, 3, 1).reshape(-1, W.shape[0])
    return gx, (col2.T @ gy2).reshape(W.shape), gb


def conv_gb_of_one_example(gy, cache):
    gx, gW, _ = teach.conv2d_backward(gy, cache)
    return gx, gW, gy[0].sum(axis=(1, 2))


def conv_gb_not_summed_over_the_batch(gy, cache):
    gx, gW, _ = teach.conv2d_backward(gy, cache)
    return gx, gW, gy.sum(axis=(2, 3))  # (N, O): a wrong shape


def bn_without_mean_terms(gy, cache):
    xhat, std, gamma = cache[:3]
    _, ggamma, gbeta = teach.batch_norm_train_backward(gy, cache)
    return gamma.reshape((1, -1) + (1,) * (gy.ndim - 2)) / std * gy, ggamma, gbeta


def bn_gamma_and_beta_swapped(gy, cache):
    gx, ggamma, gbeta = teach.batch_norm_train_backward(gy, cache)
    return gx, gbeta, ggamma


def residual_without_skip(block, gy):
    g = block.relu2.backward(gy)
    return block.conv1.backward(block.bn1.backward(block.relu1.backward(
        block.conv2.backward(block.bn2.backward(g)))))


def residual_skip_before_relu2(block, gy):
    g = block.relu2.backward(gy)
    main = block.conv1.backward(block.bn1.backward(block.relu1.backward(
        block.conv2.backward(block.bn2.backward(g)))))
    return main + (block.conv3.backward(gy) if block.conv3 is not None else gy)


def avg_pool_overlap_overwritten(gy, cache):
    x_shape, kh, kw, stride, padding = cache
    xp, (N, C, oh, ow), (ph, pw) = get_array_module(gy), gy.shape, (padding, padding)
    g_pad = xp.zeros((N, C, x_shape[2] + 2 * ph, x_shape[3] + 2 * pw))
    for i in range(kh):
        for j in range(kw):  # = where it should be +=
            g_pad[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] = gy / (kh * kw)
    return g_pad[:, :, ph:-ph, pw:-pw]


def max_pool_offset_unravelled_wrong(gy, cache):
    x_shape, first, kh, kw, stride, padding, dilation = cache
    i, j = first % kh, first // kh  # should be first // kw, first % kw
    parts = [(i == a) & (j == b) for a in range(kh) for b in range(kw)]
    xp = get_array_module(gy)
    gcol = xp.stack([gy * p for p in parts], axis=2).reshape(*gy.shape[:2], kh, kw,
                                                            *gy.shape[2:])
    return teach.col2im(gcol, x_shape, stride, padding, dilation)


def bn_m_is_the_batch_size(gy, cache):
    xhat, std, gamma = cache[:3]
    axes, shape = (0,) + tuple(range(2, gy.ndim)), (1, -1) + (1,) * (gy.ndim - 2)
    m = gy.shape[0]  # should be N*H*W
    gbeta, ggamma = gy.sum(axis=axes), (gy * xhat).sum(axis=axes)
    gx = gamma.reshape(shape) / (m * std) * (m * gy - gbeta.reshape(shape)
                                             - xhat * ggamma.reshape(shape))
    return gx, ggamma, gbeta


# exercise, wrong answer, the gradient named, the words of its hint
WRONG = [
    ("sigmoid", sigmoid_written_with_x, "gx", "sigmoid written with x instead of y"),
    ("avg_pool2d", avg_pool_not_divided, "gx", "avg-pool not dividing by the window size"),
    ("avg_pool2d", avg_pool_overlap_overwritten, "gx", "where windows overlap, a pixel got "
     "only the last window's share"),
    ("max_pool2d", max_pool_every_tied_maximum, "gx",
     "the max-pool tie: every maximum of a window got gy"),
    ("max_pool2d", max_pool_offset_unravelled_wrong, "gx",
     "the window offset is unravelled the wrong way"),
    ("conv2d", conv_gW_transposed, "gW", "a transposed product"),
    ("conv2d", conv_gb_of_one_example, "gb", "a missing sum over the batch"),
    ("batch_norm", bn_without_mean_terms, "gx", "BN's missing mean terms"),
    ("batch_norm", bn_m_is_the_batch_size, "gx",
     "m is the number of values per channel, N*H*W = 24, not N = 4"),
    ("batch_norm", bn_gamma_and_beta_swapped, "ggamma",
     "it and gbeta are swapped: return them in the order (gx, ggamma, gbeta)"),
    ("residual", residual_without_skip, "gx", "a missing skip-path gradient"),
    ("residual", residual_skip_before_relu2, "gx", "the skip path got gy"),
]


@pytest.mark.parametrize("name, wrong, grad, hint", WRONG, ids=[w[1].__name__ for w in WRONG])
def test_a_typical_wrong_answer_fails_with_its_message(device, name, wrong, grad, hint):
    result = be.check(name, wrong)
    text = str(result)
    assert not result.ok and result.status == "wrong", text
    assert text.startswith(f"{be.EXERCISES[name].function}: WRONG on "), text
    assert f"\n  {grad}: wrong values, off by up to " in text, text
    assert "worst entries, index: expected, got\n      [" in text, text
    assert f"    hint: {hint}" in text, text
    if grad == "gx":  # an image: the picture of the error over (H, W)
        assert f"|error| of {grad}[" in text and "#" in text, text


def test_the_max_pool_tie_is_caught_on_the_input_with_ties():
    text = str(be.check("max_pool2d", max_pool_every_tied_maximum))
    # Right on distinct values, where there is no tie; wrong where maxima tie.
    assert "WRONG on x (1, 2, 4, 4) with tied maxima" in text, text
    assert "against teach.max_pool2d_backward)" in text, text  # no finite differences there


def conv_gW_transposed_not_reshaped(gy, cache):
    gx, _, gb = teach.conv2d_backward(gy, cache)
    col2, W = cache[1:3]
    return gx, col2.T @ gy.transpose(0, 2, 3, 1).reshape(-1, W.shape[0]), gb


def test_a_wrong_shape_names_both_shapes_and_the_mistake(device):
    text = str(be.check("conv2d", conv_gb_not_summed_over_the_batch))
    assert "  gb: wrong shape (2, 3); expected (3,)\n" in text, text
    assert "hint: a missing sum over the batch" in text, text
    assert text.endswith("  right: gx, gW"), text
    text = str(be.check("conv2d", conv_gW_transposed_not_reshaped))
    assert "  gW: wrong shape (12, 3); expected (3, 2, 3, 2)\n    hint: a transposed " \
        "product: col2.T @ gy2 is gW2's transpose, (C*kh*kw, O) = (12, 3)" in text, text


def test_a_result_is_reported_in_full():
    text = str(be.check("conv2d", conv_gb_of_one_example))
    assert text == CONV_GB_MESSAGE, text


CONV_GB_MESSAGE = """\
conv2d_backward: WRONG on x (2, 2, 4, 5), W (3, 2, 3, 2), b (3,), stride 1, padding 1
  gb: wrong values, off by up to 3.771 (relative error 0.832 against teach.conv2d_backward, \
0.832 against finite differences)
    worst entries, index: expected, got
      [1]: -1.042, 2.73
      [0]: 4.533, 1.631
      [2]: -2.862, -5.677
    hint: a missing sum over the batch: b is added at every pixel of every example, so gb[o] \
sums gy[n, o, p, q] over n, p and q (this is example 0's alone)
  right: gx, gW"""


def test_bad_returns_are_named():
    text = str(be.check("conv2d", lambda gy, cache: teach.conv2d_backward(gy, cache)[:2]))
    assert "conv2d_backward returned 2 values; expected 3, (gx, gW, gb)" in text, text
    text = str(be.check("sigmoid", lambda gy, cache: (teach.sigmoid_backward(gy, cache),)))
    assert "returned a tuple of 1; expected one array, gx" in text, text
    text = str(be.check("sigmoid", lambda gy, cache: gy.astype(np.float32)))
    assert "gx: dtype float32; expected float64" in text, text
    text = str(be.check("residual", lambda block, gy: None))
    assert "gx: None; expected an array of shape (2, 2, 4, 4)" in text, text
    with pytest.raises(ValueError, match="no exercise 'softmax'; the exercises are 'sigmoid'"):
        be.check("softmax", teach.sigmoid_backward)


def test_check_all_takes_a_namespace():
    report = be.check_all({"sigmoid_backward": teach.sigmoid_backward,
                           "conv2d_backward": conv_gb_of_one_example,
                           "avg_pool2d_backward": be.avg_pool2d_backward})
    assert [r.status for r in report] == ["ok", "not written", "wrong"]
    assert not report.ok
    assert str(report).endswith("1 of 3 right, 1 wrong, 0 raised an error, "
                                "1 not written yet")


RIGHT_FILE = """\
from scratchnet.models.resnet import Residual
from scratchnet.teach import (avg_pool2d_backward, batch_norm_train_backward,
                              conv2d_backward, max_pool2d_backward, sigmoid_backward)


def residual_backward(block, gy):
    return Residual.backward(block, gy)
"""


def test_the_command_checks_a_file(tmp_path, capsys):
    right = tmp_path / "right.py"
    right.write_text(RIGHT_FILE)
    assert be.main([str(right)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok. ") == 6 and out.endswith("6 of 6 right, 0 wrong, 0 raised an error, "
                                                     "0 not written yet\n"), out
    wrong = tmp_path / "wrong.py"
    wrong.write_text("from scratchnet.teach import sigmoid_backward\n\n\n"
                     "def conv2d_backward(gy, cache):\n    return 1 / 0\n")
    assert be.main([str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "conv2d_backward: raised an error\nTraceback" in out and "ZeroDivisionError" in out
    assert out.endswith("1 of 2 right, 0 wrong, 1 raised an error, 0 not written yet\n"), out


def test_the_command_writes_the_template_once(tmp_path, capsys):
    path = tmp_path / "mine.py"
    assert be.main(["--template", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    text = path.read_text()
    assert all(f"\ndef {f.__name__}(" in text for f in be.STUBS)
    assert be.main([str(path)]) == 1  # every stub still to write
    assert capsys.readouterr().out.endswith("0 of 6 right, 0 wrong, 0 raised an error, "
                                            "6 not written yet\n")
    path.write_text("# mine, half done\n")
    with pytest.raises(SystemExit) as e:
        be.main(["--template", str(path)])
    assert e.value.code == 2
    assert "exists already" in capsys.readouterr().err
    assert path.read_text() == "# mine, half done\n"  # left as it was
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_a_check_leaves_the_callers_random_state_alone():
    # The Residual blocks are made from a generator of their own.
    sn.manual_seed(3)
    want = sn.backend.rng().random(), np.random.random()
    sn.manual_seed(3)
    be.check("residual", Residual.backward)
    assert (sn.backend.rng().random(), np.random.random()) == want


def test_the_readme_counts_the_typical_wrong_answers():
    readme = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()
    assert f"fails {len(WRONG)} typical\n  wrong ones" in readme
    assert len({hint for *_, hint in WRONG}) == len(WRONG)  # each mistake its own hint
