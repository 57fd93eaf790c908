"""models: d2l's layer summaries of LeNet, VGG-11 and ResNet-18, and the Residual block
and a small ResNet against finite differences and against the notebook's PyTorch code."""
import numpy as np
import pytest
import torch

import scratchnet as sn
from helpers import (GPU_DEVICES, assert_equal, assert_host_input_refused, copy_weights_to_torch,
                     dev, fd_check, rel_err, torch_parity)
from scratchnet import nn
from scratchnet.interop import (from_torch_state_dict, load_from_torch, load_into_torch,
                                to_torch_state_dict,
                                torch_lenet, torch_residual, torch_resnet,
                                torch_resnext_block)
from scratchnet.models import (VGG, VGG11, LeNet, Residual, ResNet, ResNet18, ResNeXtBlock,
                               layer_summary, vgg_block)


RESNET18 = ((2, 64), (2, 128), (2, 256), (2, 512))


def torch_parity_bn(layer, tlayer, x, steps=1, tol=1e-10, seed=0, device="cpu",
                    dtype=np.float64):
    """helpers.torch_parity in float64 for networks in training mode with BatchNorm.

    The bias of a layer followed by BatchNorm has a gradient that is zero in truth (the
    batch mean removes it): both sides hold only rounding noise, so such a bias is
    compared to the scale of its layer's weight gradient instead of to itself.
    ``dtype=np.float32`` runs both in float32 (give a float32 ``tol``).
    """
    rs = np.random.default_rng((seed, 0x6A7))
    x = x.astype(dtype)
    layer.to(device=device, dtype=dtype)
    tlayer = tlayer.double() if dtype == np.float64 else tlayer.float()
    training = layer.training
    layer.eval()
    tlayer.eval()
    with sn.no_grad(), torch.no_grad():
        layer(sn.to_device(x, device))
        tlayer(torch.from_numpy(x))
    layer.train(training)
    tlayer.train(training)
    layer.zero_grad()
    copy_weights_to_torch(layer, tlayer)
    ours = dict(layer.named_parameters())
    tparams = dict(tlayer.named_parameters())
    worst = 0.0
    for step in range(steps):
        xs = x if step == 0 else rs.standard_normal(x.shape).astype(dtype)
        y = layer(sn.to_device(xs, device))
        xt = torch.tensor(xs, requires_grad=True)
        yt = tlayer(xt)
        gy = rs.standard_normal(yt.shape).astype(dtype)
        gx = layer.backward(sn.to_device(gy, device))
        yt.backward(torch.from_numpy(gy))
        checks = [("output", y, yt, 1e-30), ("input grad", gx, xt.grad, 1e-30)]
        for k, p in tparams.items():
            floor = 1e-30
            weight = tparams.get(k[:-len("bias")] + "weight")
            if k.endswith(".bias") and weight is not None:
                scale = float(weight.grad.abs().max())
                if float(p.grad.abs().max()) <= (1e-9 if dtype == np.float64 else 1e-4) * scale:
                    floor = scale
            checks.append((f"{k}.grad", ours[k].grad, p.grad, floor))
        buffers = dict(layer.named_buffers())
        for k, b in tlayer.named_buffers():
            checks.append((k, buffers[k], b, 1e-30))
        for what, a, b, floor in checks:
            err = rel_err(a, b, floor)
            assert err <= tol, f"step {step}: {what} differs from torch: {err:.2e} > {tol:.0e}"
            worst = max(worst, err)
    return worst


def summary_lines(capsys, model, shape):
    rows = layer_summary(model, shape)
    lines = capsys.readouterr().out.splitlines()
    return rows, lines


def test_lenet_summary_is_d2ls(capsys, device):
    rows, lines = summary_lines(capsys, LeNet(), (1, 1, 28, 28))
    expected = [
        ("Conv2d", (1, 6, 28, 28)), ("Sigmoid", (1, 6, 28, 28)), ("AvgPool2d", (1, 6, 14, 14)),
        ("Conv2d", (1, 16, 10, 10)), ("Sigmoid", (1, 16, 10, 10)),
        ("AvgPool2d", (1, 16, 5, 5)), ("Flatten", (1, 400)),
        ("Linear", (1, 120)), ("Sigmoid", (1, 120)), ("Linear", (1, 84)),
        ("Sigmoid", (1, 84)), ("Linear", (1, 10))]
    assert rows == expected
    assert lines[:-1] == [f"{name} output shape:\t {shape}" for name, shape in expected]
    assert lines[0] == "Conv2d output shape:\t (1, 6, 28, 28)"
    assert lines[-1] == "Total parameters: 61,706"


@pytest.mark.parametrize("training", [True, False])
def test_summary_leaves_the_model_as_it_was(capsys, training, device):
    # A batch of one reaches BatchNorm1d: fine in eval mode, where the summary runs.
    model = LeNet(modern=True)
    model(dev(np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)))
    model.train(training)
    before = {k: np.array(sn.to_numpy(v)) for k, v in model.state_dict().items()}
    rows, lines = summary_lines(capsys, model, (1, 1, 28, 28))
    assert rows[-1] == ("Linear", (1, 10)) and len(rows) == 16
    assert lines[-1] == "Total parameters: 62,158"
    assert all(m.training is training for m in model.modules())
    for k, v in model.state_dict().items():
        assert np.array_equal(sn.to_numpy(v), before[k]), k


@pytest.mark.parametrize("modern", [False, True])
def test_lenet_parameter_count_equals_torch(modern, device):
    model = LeNet(modern=modern)
    with sn.no_grad():
        model(dev(np.zeros((2, 1, 28, 28), np.float32)))
    tcount = sum(p.numel() for p in torch_lenet(modern=modern).parameters())
    assert model.num_parameters() == tcount
    if not modern:
        assert tcount == 61706


def conv_parameters(arch, in_channels=1):
    """The 3x3 convolutions' parameters (with bias), counted by hand."""
    count, c = 0, in_channels
    for num_convs, out in arch:
        for _ in range(num_convs):
            count += c * out * 9 + out
            c = out
    return count


def vgg_parameters(arch, flat, num_classes=10):
    return (conv_parameters(arch) + flat * 4096 + 4096 + 4096 * 4096 + 4096
            + 4096 * num_classes + num_classes)


def test_vgg11_block_shapes_at_224(capsys):
    # The convolutional part at d2l's 224x224 (0.5 s); the 25088x4096 Linear is not built.
    features = nn.Sequential(*[vgg_block(*b) for b in VGG11], nn.Flatten())
    rows, lines = summary_lines(capsys, features, (1, 1, 224, 224))
    assert rows == [("Sequential", (1, 64, 112, 112)), ("Sequential", (1, 128, 56, 56)),
                    ("Sequential", (1, 256, 28, 28)), ("Sequential", (1, 512, 14, 14)),
                    ("Sequential", (1, 512, 7, 7)), ("Flatten", (1, 25088))]
    assert lines[0] == "Sequential output shape:\t (1, 64, 112, 112)"
    assert lines[-1] == f"Total parameters: {conv_parameters(VGG11):,}"


def test_vgg11_whole_summary_on_a_small_input(capsys, device):
    rows, lines = summary_lines(capsys, VGG(VGG11), (1, 1, 32, 32))
    assert [r[0] for r in rows] == ["Sequential"] * 5 + [
        "Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [r[1] for r in rows[:6]] == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4),
                                       (1, 512, 2, 2), (1, 512, 1, 1), (1, 512)]
    assert [r[1] for r in rows[6:]] == [(1, 4096)] * 6 + [(1, 10)]
    assert lines[-1] == f"Total parameters: {vgg_parameters(VGG11, 512):,}"
    # At 224x224 the same formula gives the count sec8_2_vgg.py prints.
    assert vgg_parameters(VGG11, 25088) == 128_806_154


def test_resnet18_summary_and_parameter_count_equal_torch(capsys, device):
    rows, lines = summary_lines(capsys, ResNet18(), (1, 1, 96, 96))
    assert rows == [("Sequential", (1, 64, 24, 24)), ("Sequential", (1, 64, 24, 24)),
                    ("Sequential", (1, 128, 12, 12)), ("Sequential", (1, 256, 6, 6)),
                    ("Sequential", (1, 512, 3, 3)), ("Sequential", (1, 10))]
    assert lines[0] == "Sequential output shape:\t (1, 64, 24, 24)"
    tmodel = torch_resnet(RESNET18)
    with torch.no_grad():
        tmodel.eval()(torch.zeros(1, 1, 96, 96))
    tcount = sum(p.numel() for p in tmodel.parameters())
    assert lines[-1] == f"Total parameters: {tcount:,}"
    assert tcount == 11_178_378


def test_resnet18_keys_match_torch(device):
    model = ResNet18()
    with sn.no_grad():
        model.eval()(dev(np.zeros((1, 1, 32, 32), np.float32)))
    tmodel = torch_resnet(RESNET18)
    with torch.no_grad():
        tmodel.eval()(torch.zeros(1, 1, 32, 32))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tmodel.state_dict().items()}
    assert ours == theirs


def x_residual(shape=(4, 3, 6, 6), dtype=np.float32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def test_residual_shapes_as_in_the_notebook(device):
    X = dev(x_residual())
    assert Residual(3)(X).shape == (4, 3, 6, 6)
    assert Residual(6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)


def test_residual_with_mismatched_skip_says_so(device):
    with pytest.raises(ValueError, match=r"Residual.*use_1x1conv=True"):
        Residual(6)(dev(x_residual()))
    with pytest.raises(ValueError, match="Residual"):
        Residual(3, strides=2)(dev(x_residual()))


RESIDUALS = {"identity": dict(num_channels=3),
             "1x1conv": dict(num_channels=6, use_1x1conv=True, strides=2)}


@pytest.mark.parametrize("kind", RESIDUALS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_residual_matches_torch(kind, dtype, mode, device):
    layer = Residual(**RESIDUALS[kind])
    tlayer = torch_residual(**RESIDUALS[kind])
    layer.train(mode == "train")
    x = x_residual((2, 3, 5, 5), np.float64)
    if mode == "train" and dtype == np.float64:
        # conv1/conv2 biases feed BatchNorm: zero gradients in truth (see torch_parity_bn).
        torch_parity_bn(layer, tlayer, x, steps=2, device=device)
    else:
        torch_parity(layer, tlayer, x, dtype=dtype, steps=2, device=device)


def test_residual_state_dict_keys_are_torchs():
    layer = Residual(6, use_1x1conv=True, strides=2)
    tlayer = torch_residual(6, use_1x1conv=True, strides=2)
    layer(x_residual())
    tlayer(torch.from_numpy(x_residual()))
    assert list(layer.state_dict()) == list(tlayer.state_dict())


@pytest.mark.parametrize("kind", RESIDUALS)
def test_residual_gradients_match_finite_differences(kind, device):
    fd_check(Residual(**RESIDUALS[kind]), x_residual((2, 3, 5, 5), np.float64))


def test_residual_backward_sums_skip_and_main_paths(device):
    # With the main path's last BatchNorm scaled to 0, Y = relu(X): dL/dX is gy where X > 0
    # and only the skip path carries it.
    X = x_residual((2, 3, 5, 5), np.float64)
    sn.set_default_dtype(np.float64)
    blk = Residual(3)
    blk(dev(X))
    blk.bn2.weight.data[...] = 0
    blk.bn2.bias.data[...] = 0
    gy = np.random.default_rng(1).standard_normal(X.shape)
    blk(dev(X))
    gx = blk.backward(dev(gy))
    np.testing.assert_allclose(sn.to_numpy(gx), gy * (X > 0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_small_resnet_matches_torch_float64(mode, device):
    # The first stage keeps b1's 64 channels (identity skip), the second halves the size.
    arch = ((1, 64), (1, 16))
    model, tmodel = ResNet(arch), torch_resnet(arch, in_shape=(2, 1, 32, 32))
    model.train(mode == "train")
    x = x_residual((2, 1, 16, 16), np.float64)
    if mode == "train":
        torch_parity_bn(model, tmodel, x, steps=2, device=device)
    else:
        torch_parity(model, tmodel, x, dtype=np.float64, steps=2, device=device)


def lenet_pair(modern, dtype=np.float64):
    sn.set_default_dtype(dtype)
    model = LeNet(modern=modern)
    x = dev(np.random.default_rng(0).random((4, 1, 28, 28)).astype(dtype))
    nn.init.apply_init(model, [x[:2]], None if modern else nn.init.init_cnn)
    tmodel = torch_lenet(modern=modern)
    if dtype == np.float64:
        tmodel.double()
    load_into_torch(tmodel, model)
    return model, tmodel, x


@pytest.mark.parametrize("modern", [False, True])
def test_lenet_matches_torch_via_interop(modern, device):
    """A model on the device: its weights go to torch, the numbers come back the same."""
    model, tmodel, x = lenet_pair(modern)
    y = model(x)
    xt = torch.tensor(sn.to_numpy(x), requires_grad=True)
    yt = tmodel(xt)
    assert rel_err(y, yt) <= 1e-10
    labels = np.array([0, 3, 7, 9])
    loss = nn.CrossEntropyLoss()
    lt = torch.nn.functional.cross_entropy(yt, torch.from_numpy(labels))
    assert abs(float(loss(y, dev(labels))) - lt.item()) <= 1e-12
    model.zero_grad()
    gx = model.backward(loss.backward())
    lt.backward()
    assert rel_err(gx, xt.grad) <= 1e-10
    ours = dict(model.named_parameters())
    tparams = dict(tmodel.named_parameters())
    for k, p in tparams.items():
        # A bias followed by BatchNorm has a zero gradient in truth: compare it absolutely.
        floor = float(tparams[k[:-4] + "weight"].grad.abs().max()) \
            if modern and k.endswith("bias") and p.grad.abs().max() < 1e-12 else 1e-30
        assert rel_err(ours[k].grad, p.grad, floor) <= 1e-10, k
    if modern:
        for k, b in tmodel.named_buffers():
            assert rel_err(model.state_dict()[k], b) <= 1e-10, k


@pytest.mark.parametrize("modern", [False, True])
def test_lenet_weights_round_trip_through_torch(modern, device):
    model, tmodel, x = lenet_pair(modern)
    model.eval()
    tmodel.eval()
    other = LeNet(modern=modern)
    from_torch_state_dict(other, tmodel.state_dict())
    for k, v in other.state_dict().items():
        assert sn.get_array_module(v) is sn.backend.device_module(), k
    other.eval()
    assert_equal(other(x), model(x))
    state = to_torch_state_dict(model)
    assert list(state) == list(tmodel.state_dict())
    for k, v in tmodel.state_dict().items():
        assert torch.equal(state[k], v), k


RESNEXTS = {"identity": dict(num_channels=8, groups=2, bot_mul=1),
            "1x1conv": dict(num_channels=12, groups=3, bot_mul=0.5, use_1x1conv=True,
                            strides=2),
            "depthwise": dict(num_channels=8, groups=1, bot_mul=2)}


def x_resnext(shape=(4, 8, 6, 6), dtype=np.float64):
    return np.random.default_rng(21).standard_normal(shape).astype(dtype)


def test_resnext_block_keeps_the_shape_as_in_the_book(device):
    # d2l 8.6.5: ResNeXtBlock(32, 16, 1) on (4, 32, 96, 96) keeps the shape; the same
    # block on a smaller image here, the book's size in examples/sec8_6_resnext.py.
    blk = ResNeXtBlock(32, 16, 1)
    X = dev(np.random.default_rng(0).random((4, 32, 12, 12), dtype=np.float32))
    assert blk(X).shape == (4, 32, 12, 12)
    assert blk.conv2.groups == 2 and blk.conv2.weight.data.shape == (32, 16, 3, 3)
    assert blk.backward(sn.get_array_module(X).ones(X.shape, X.dtype)).shape == X.shape
    blk = ResNeXtBlock(16, 4, 0.5, use_1x1conv=True, strides=2)
    assert blk(X).shape == (4, 16, 6, 6) and blk.conv2.groups == 2


def test_resnext_block_with_mismatched_skip_says_so(device):
    with pytest.raises(ValueError, match=r"ResNeXtBlock.*use_1x1conv=True"):
        ResNeXtBlock(16, 4, 1)(dev(x_resnext(dtype=np.float32)))


@pytest.mark.parametrize("kind", RESNEXTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_resnext_block_matches_torch(kind, dtype, mode, device):
    layer = ResNeXtBlock(**RESNEXTS[kind])
    tlayer = torch_resnext_block(**RESNEXTS[kind])
    layer.train(mode == "train")
    x = x_resnext((2, RESNEXTS[kind]["num_channels"] if kind != "1x1conv" else 6, 5, 5))
    if mode == "train" and dtype == np.float32 and kind == "depthwise":
        pytest.skip("bn1.weight's gradient cancels here: PyTorch's own float32 result is "
                    "6.8e-4 from its float64 one; float64 and eval mode check this block")
    if mode == "train":
        # conv biases feed BatchNorm: zero gradients in truth, rounding noise on both
        # sides, compared to their weight gradient's scale (see torch_parity_bn)
        torch_parity_bn(layer, tlayer, x, steps=2, device=device, dtype=dtype,
                        tol=1e-10 if dtype == np.float64 else 1e-5)
    else:
        torch_parity(layer, tlayer, x, dtype=dtype, steps=2, device=device)


def test_resnext_block_state_dict_keys_are_d2ls():
    layer = ResNeXtBlock(12, 3, 0.5, use_1x1conv=True, strides=2)
    tlayer = torch_resnext_block(12, 3, 0.5, use_1x1conv=True, strides=2)
    x = x_resnext((2, 6, 5, 5), np.float32)
    layer(x)
    tlayer(torch.from_numpy(x))
    assert list(layer.state_dict()) == list(tlayer.state_dict())
    assert list(layer.state_dict())[0] == "conv1.weight"
    assert list(layer.state_dict())[-1] == "bn4.running_var" or \
        list(layer.state_dict())[-1] == "bn4.num_batches_tracked"


@pytest.mark.parametrize("kind", RESNEXTS)
def test_resnext_block_gradients_match_finite_differences(kind, device):
    c = RESNEXTS[kind]["num_channels"] if kind != "1x1conv" else 6
    fd_check(ResNeXtBlock(**RESNEXTS[kind]), x_resnext((2, c, 4, 4)))


def test_resnext_block_backward_sums_skip_and_main_paths(device):
    X = x_resnext((2, 8, 5, 5))
    sn.set_default_dtype(np.float64)
    blk = ResNeXtBlock(8, 2, 1)
    blk(dev(X))
    blk.bn3.weight.data[...] = 0
    blk.bn3.bias.data[...] = 0
    gy = np.random.default_rng(1).standard_normal(X.shape)
    blk(dev(X))
    gx = blk.backward(dev(gy))
    np.testing.assert_allclose(sn.to_numpy(gx), gy * (X > 0), rtol=0, atol=1e-12)


def test_resnext_block_on_the_tape_equals_manual_backprop(device):
    import copy

    import scratchnet.autograd as ag
    sn.set_default_dtype(np.float64)
    model = ResNeXtBlock(12, 3, 0.5, use_1x1conv=True, strides=2)
    X = dev(x_resnext((2, 6, 6, 6)))
    model(X)
    tape = copy.deepcopy(model)
    out = model(X)
    model.zero_grad()
    gx = model.backward(2 * out)
    Xt = ag.Tensor(X, requires_grad=True)
    tape.zero_grad()
    tout = tape(Xt)
    (tout * tout).sum().backward()
    manual = dict(model.named_parameters())
    for k, p in tape.named_parameters():
        assert rel_err(p.grad, sn.to_numpy(manual[k].grad)) <= 1e-12, k
    assert rel_err(Xt.grad, sn.to_numpy(gx)) <= 1e-12
    for (k, a), b in zip(model.state_dict().items(), tape.state_dict().values()):
        assert_equal(a, b, err_msg=k)


def test_resnext_block_weights_round_trip_through_torch(device):
    sn.set_default_dtype(np.float64)
    model = ResNeXtBlock(12, 3, 0.5, use_1x1conv=True, strides=2)
    x = dev(x_resnext((2, 6, 5, 5)))
    model(x)
    model(x)  # the running statistics move away from their start
    tmodel = torch_resnext_block(12, 3, 0.5, use_1x1conv=True, strides=2)
    tmodel(torch.zeros(2, 6, 5, 5))
    load_into_torch(tmodel.double(), model)
    model.eval()
    tmodel.eval()
    assert rel_err(model(x), tmodel(torch.from_numpy(sn.to_numpy(x)))) <= 1e-12
    other = ResNeXtBlock(12, 3, 0.5, use_1x1conv=True, strides=2)
    load_from_torch(other, tmodel)
    other.eval()
    assert_equal(other(x), model(x))
    for k, v in tmodel.state_dict().items():
        assert torch.equal(to_torch_state_dict(other)[k], v), k


@pytest.mark.parametrize("device", GPU_DEVICES, indirect=True)
@pytest.mark.parametrize("make, shape", [
    (lambda: Residual(3), (2, 3, 5, 5)),
    (lambda: Residual(6, use_1x1conv=True, strides=2), (2, 3, 5, 5)),
    (lambda: LeNet(modern=True), (4, 1, 28, 28)),
    (lambda: LeNet(), (4, 1, 28, 28)),
], ids=["Residual", "Residual-1x1", "LeNet-modern", "LeNet"])
def test_device_model_refuses_a_host_input_and_changes_nothing(device, make, shape):
    """The first convolution names itself; nothing ran (BatchNorm's statistics included)."""
    x = dev(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    assert_host_input_refused(make(), x, name="Conv2d")
