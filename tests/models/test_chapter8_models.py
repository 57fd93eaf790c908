"""d2l chapter 8's new CNNs (AlexNet 8.1, NiN 8.3, GoogLeNet 8.4, BNLeNet 8.5, DenseNet
8.7, AnyNet and RegNetX-32 8.8) against the book's own PyTorch classes and on the autograd
tape; their blocks (Inception, DenseBlock, transition_block, nin_block, an AnyNet stage)
and the op they add, concat and its split, against finite differences; the images a
model refuses (too small for its windows) and its layer summaries.

The PyTorch classes are the book's code cells, read from tests/d2l_chapters/ (byte-identical
copies of d2l-en at commit D2L_COMMIT) by tests/chaptercells.py and run here with real
torch by scratchnet.interop.torch_book: the cells that only define (functions, classes,
methods added with ``d2l.add_to_class``), in a namespace whose ``d2l`` is the minimum they
use (Classifier as a torch.nn.Module holding ``self.net``, init_cnn, add_to_class, and
resnet.md's ResNeXtBlock for cnn-design.md's AnyNet) and whose ``tab.selected('pytorch')``
is True.

Every comparison is in float64: output, dL/dx, every parameter gradient and every buffer
(BatchNorm's running statistics) within TOL relative; a bias followed by BatchNorm, whose
gradient is zero in truth in training, is compared to its weight gradient's scale (as
torch_parity_bn in test_models.py). Dropout (AlexNet, NiN) runs in training with the masks
scratchnet draws given to torch.
"""
import contextlib
import copy

import numpy as np
import pytest
import torch

import chaptercells
import scratchnet as sn
import scratchnet.autograd as ag
from helpers import assert_refusal_changes_nothing, dev, distinct, fd_check, rel_err
from scratchnet import interop, nn, ops
from scratchnet.models import (AlexNet, AnyNet, BNLeNet, DenseBlock, DenseNet, GoogLeNet,
                               GoogleNet, Inception, NiN, RegNetX32, conv_block, layer_summary,
                               nin_block, transition_block)
from scratchnet.nn import functional as F
from scratchnet.trace import trace

# The d2l-en commit whose chapter files tests/d2l_chapters/ copies (its README names it).
D2L_COMMIT = "23d7a5aecceee57d1292c56e90cce307f183bb0a"
TOL = 1e-10


def test_the_book_cells_are_from_the_named_commit():
    assert chaptercells.COMMIT == D2L_COMMIT


def book(section):
    """The names the section's PyTorch cells define, run as one notebook would
    (scratchnet.interop.torch_book: the defining cells only, a torch-side d2l)."""
    return interop.torch_book(section, chaptercells.pytorch_cells, chaptercells.namespace)


def materialized(tmodel, shape, seed=0):
    """A torch model with its lazy layers shaped (and their weights drawn, from ``seed``)
    by one eval pass on zeros, in train mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        tmodel.eval()(torch.zeros(shape))
    return tmodel.train()


# name: (section, ours, the book's, the book's input size, the parity input shape)
SMALL_ANYNET = ((1, 8, 4, 1), (2, 16, 4, 0.5))
MODELS = {
    "AlexNet": ("alexnet", AlexNet, lambda ns: ns["AlexNet"](), 224, (1, 1, 224, 224)),
    "NiN": ("nin", NiN, lambda ns: ns["NiN"](), 224, (2, 1, 224, 224)),
    "GoogleNet": ("googlenet", GoogleNet, lambda ns: ns["GoogleNet"](), 96, (2, 1, 32, 32)),
    "BNLeNet": ("batch-norm", BNLeNet, lambda ns: ns["BNLeNet"](), 28, (8, 1, 28, 28)),
    "DenseNet": ("densenet", DenseNet, lambda ns: ns["DenseNet"](), 96, (4, 1, 32, 32)),
    "RegNetX32": ("cnn-design", RegNetX32, lambda ns: ns["RegNetX32"](), 96, (4, 1, 32, 32)),
    # The book's classes with smaller plans (their constructor arguments).
    "DenseNet-small": ("densenet", lambda: DenseNet(8, 4, (2, 2)),
                       lambda ns: ns["DenseNet"](8, 4, (2, 2)), 96, (4, 1, 24, 24)),
    "AnyNet-small": ("cnn-design", lambda: AnyNet(SMALL_ANYNET, 8),
                     lambda ns: ns["AnyNet"](SMALL_ANYNET, 8), 96, (4, 1, 16, 16)),
}
SLOW = {"AlexNet"}  # 224x224 images into 4096-wide linear layers: 4-5 s a test


def model_ids(small=True):
    return [pytest.param(k, marks=[pytest.mark.slow] if k in SLOW else [], id=k)
            for k in MODELS if small or "small" not in k]


def random_norms(tmodel, seed=0):
    """BatchNorm's gamma, beta and running statistics drawn at random. Their first values
    (1, 0, 0, 1) would hide mistakes, and with beta = 0 a channel scaled by gamma stays
    scaled through ReLU and pooling: where every later use normalises it again (DenseNet's
    stem) gamma's gradient is zero in truth, and its rounding noise compares badly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in tmodel.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.5, generator=g)
                m.running_mean.normal_(0.0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return tmodel


def pair(name, shape=None):
    """(ours, the book's) with the same float64 weights: the torch model materialised on
    ``shape`` (the parity input by default), its weights loaded into ours by interop."""
    section, ours, theirs, _, x_shape = MODELS[name]
    sn.set_default_dtype(np.float64)
    tmodel = random_norms(materialized(theirs(book(section)), shape or x_shape).double())
    model = interop.load_from_torch(ours(), tmodel)
    return model, tmodel


def host_grad(p):
    return sn.to_numpy(p.grad)


@contextlib.contextmanager
def shared_dropout_masks(tmodel, monkeypatch):
    """torch's Dropout layers multiply by the masks scratchnet's drew, in the same order."""
    masks, draw = [], ops.dropout_mask

    def recording(x, p):
        masks.append(draw(x, p))
        return masks[-1]

    def hook(module, args, out):
        if module.training:  # in eval both are the identity
            return args[0] * torch.from_numpy(np.array(sn.to_numpy(masks.pop(0))))

    monkeypatch.setattr(sn.ops, "dropout_mask", recording)
    handles = [m.register_forward_hook(hook) for m in tmodel.modules()
               if isinstance(m, torch.nn.Dropout)]
    try:
        yield masks
    finally:
        for h in handles:
            h.remove()


def parity(model, tmodel, x, training, seed=0):
    """One forward and backward of both on x (float64, equal weights): the worst relative
    error over the output, dL/dx, every parameter gradient and buffer, each <= TOL."""
    model.train(training)
    tmodel.train(training)
    model.zero_grad()
    y = model(dev(x))
    xt = torch.tensor(x, requires_grad=True)
    yt = tmodel(xt)
    gy = np.random.default_rng((seed, 8)).standard_normal(tuple(yt.shape))
    gx = model.backward(dev(gy))
    yt.backward(torch.from_numpy(gy))
    errors = {"output": rel_err(y, yt), "input grad": rel_err(gx, xt.grad)}
    ours, theirs = dict(model.named_parameters()), dict(tmodel.named_parameters())
    assert list(ours) == list(theirs)
    for k, p in theirs.items():
        floor = 1e-30
        weight = theirs.get(k[:-len("bias")] + "weight") if k.endswith(".bias") else None
        if training and weight is not None:
            scale = float(weight.grad.abs().max())
            if float(p.grad.abs().max()) <= 1e-9 * scale:  # before BatchNorm: zero in truth
                floor = scale
        if k.endswith("weight"):  # no dead layer (a branch whose ReLU is never on)
            assert float(p.grad.abs().max()) > 0, f"{k}: no gradient reaches it"
        errors[f"{k}.grad"] = rel_err(host_grad(ours[k]), p.grad, floor)
    buffers = dict(model.named_buffers())
    for k, b in tmodel.named_buffers():
        errors[k] = rel_err(buffers[k], b)
    bad = {k: f"{e:.1e}" for k, e in errors.items() if not e <= TOL}  # NaN too
    assert not bad, f"differ from the book's PyTorch model by more than {TOL:.0e}: {bad}"
    return max(errors.values())


def x_of(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("name", model_ids())
def test_state_dict_keys_and_shapes_are_the_books(name):
    """At the book's input size: the same keys, in the same order, and shapes."""
    section, ours, theirs, size, _ = MODELS[name]
    tmodel = materialized(theirs(book(section)), (1, 1, size, size))
    model = ours()
    with sn.no_grad():
        model.eval()(np.zeros((1, 1, size, size), np.float32))
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tmodel.state_dict().items()]
    assert model.num_parameters() == sum(p.numel() for p in tmodel.parameters())


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", model_ids())
def test_model_matches_the_books_pytorch_class(name, training, monkeypatch):
    model, tmodel = pair(name)
    x = x_of(MODELS[name][4])
    with shared_dropout_masks(tmodel, monkeypatch) as masks:
        parity(model, tmodel, x, training)
    assert not masks


def test_weights_go_back_to_torch_unchanged():
    model, tmodel = pair("DenseNet-small")
    back = interop.to_torch_state_dict(model)
    for k, v in tmodel.state_dict().items():
        assert torch.equal(back[k], v), k


@pytest.mark.parametrize("name", ["DenseNet-small", "AnyNet-small", "GoogleNet"])
def test_model_matches_the_book_on_the_device(name, device):
    model, tmodel = pair(name)
    model.to(device=device)
    parity(model, tmodel, x_of(MODELS[name][4]), training=True)


def assert_tape_equals_manual(model, x):
    """The model trains on the tape (a Tensor input, loss.backward()): the same loss,
    dL/dX and parameter gradients as its own backward, and the same running statistics."""
    model.train()
    tape = copy.deepcopy(model)
    labels = dev(np.arange(len(x)) % 10)
    loss = nn.CrossEntropyLoss()
    sn.manual_seed(5)  # the same dropout masks on both
    l = loss(model(x), labels)  # noqa: E741
    model.zero_grad()
    gx = model.backward(loss.backward())
    sn.manual_seed(5)
    X = ag.Tensor(x, requires_grad=True)
    tape.zero_grad()
    lt = F.cross_entropy(tape(X), labels)
    lt.backward()
    assert abs(float(lt) - float(l)) <= 1e-12 * abs(float(l))
    assert rel_err(sn.to_numpy(X.grad), gx) <= 1e-12
    manual = dict(model.named_parameters())
    for k, p in tape.named_parameters():
        assert rel_err(host_grad(p), host_grad(manual[k])) <= 1e-12, k
    for (k, a), b in zip(model.state_dict().items(), tape.state_dict().values()):
        np.testing.assert_array_equal(sn.to_numpy(a), sn.to_numpy(b), err_msg=k)


@pytest.mark.parametrize("name", model_ids())
def test_tape_gradients_equal_manual_backprop(name):
    model, _ = pair(name)
    assert_tape_equals_manual(model, x_of(MODELS[name][4]))


@pytest.mark.parametrize("name", ["DenseNet-small", "AnyNet-small"])
def test_tape_gradients_equal_manual_backprop_on_the_device(name, device):
    model, _ = pair(name)
    assert_tape_equals_manual(model, dev(x_of(MODELS[name][4])))


def torch_summary(tmodel, shape):
    rows, X = [], torch.zeros(shape)
    with torch.no_grad():
        for layer in tmodel.eval().net:
            X = layer(X)
            rows.append((type(layer).__name__, tuple(X.shape)))
    return rows


@pytest.mark.parametrize("name", model_ids(small=False))
def test_layer_summary_prints_the_books_shapes(name, capsys):
    section, ours, theirs, size, _ = MODELS[name]
    shape = (1, 1, size, size)
    rows = layer_summary(ours(), shape)
    lines = capsys.readouterr().out.splitlines()
    tmodel = theirs(book(section))
    assert rows == torch_summary(tmodel, shape)
    assert lines[:-1] == [f"{k} output shape:\t {s}" for k, s in rows]
    assert lines[-1] == f"Total parameters: {sum(p.numel() for p in tmodel.parameters()):,}"


def test_googlenet_summary_is_the_books(capsys):
    rows = layer_summary(GoogLeNet(), (1, 1, 96, 96))
    assert rows == [("Sequential", (1, 64, 24, 24)), ("Sequential", (1, 192, 12, 12)),
                    ("Sequential", (1, 480, 6, 6)), ("Sequential", (1, 832, 3, 3)),
                    ("Sequential", (1, 1024)), ("Linear", (1, 10))]


def test_trace_keeps_a_dense_block_whole():
    """A DenseBlock's layers live in a ``net`` of its own, like a model's: trace runs the
    block as one row (its conv_blocks in a row would miss the concatenations)."""
    model = DenseNet(8, 4, (2, 2))
    x = x_of((2, 1, 16, 16)).astype(np.float32)
    rows = trace(model, x).rows
    assert [(r["name"], r["layer"], r["out_shape"]) for r in rows[4:6]] == [
        ("net.dense_blk1", "DenseBlock", (2, 72, 4, 4)),
        ("net.tran_blk1.0", "BatchNorm2d", (2, 72, 4, 4))]
    assert rows[-1]["out_shape"] == (2, 10)


def test_densenet_block_shapes_are_the_books(device):
    # d2l 8.7.2-3: DenseBlock(2, 10) on (4, 3, 8, 8) gives 23 channels; a transition
    # block of 10 channels halves the image.
    Y = DenseBlock(2, 10)(dev(x_of((4, 3, 8, 8)).astype(np.float32)))
    assert Y.shape == (4, 23, 8, 8)
    assert transition_block(10)(Y).shape == (4, 10, 4, 4)


# The blocks alone: the book's classes, finite differences, devices.

INCEPTION = (3, (2, 4), (2, 3), 2)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_inception_matches_the_books(training, device):
    sn.set_default_dtype(np.float64)
    tblock = materialized(book("googlenet")["Inception"](*INCEPTION), (2, 3, 6, 6)).double()
    block = interop.load_from_torch(Inception(*INCEPTION), tblock)
    block.to(device=device)
    parity(block, tblock, distinct((2, 3, 6, 6)), training)
    assert list(block.state_dict()) == list(tblock.state_dict())


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_dense_block_matches_the_books(training, device):
    sn.set_default_dtype(np.float64)
    tblock = random_norms(materialized(book("densenet")["DenseBlock"](3, 4),
                                       (2, 3, 5, 5)).double())
    block = interop.load_from_torch(DenseBlock(3, 4), tblock)
    block.to(device=device)
    parity(block, tblock, x_of((2, 3, 5, 5)), training)


def test_inception_gradients_match_finite_differences(device):
    fd_check(Inception(*INCEPTION), distinct((2, 3, 5, 5)))


def test_dense_block_gradients_match_finite_differences(device):
    fd_check(DenseBlock(2, 3), x_of((2, 2, 4, 4)))


def test_transition_block_gradients_match_finite_differences():
    fd_check(transition_block(3), x_of((2, 4, 4, 4)))


def test_nin_block_gradients_match_finite_differences():
    fd_check(nin_block(3, kernel_size=3, strides=2, padding=1), x_of((2, 2, 7, 7)))


def test_anynet_stage_gradients_match_finite_differences():
    fd_check(AnyNet.stage(2, 4, 2, 1), x_of((2, 2, 4, 4)))


def test_conv_block_gradients_match_finite_differences():
    fd_check(conv_block(3), x_of((2, 2, 4, 4)))


def test_dense_block_output_starts_with_its_input(device):
    x = dev(x_of((2, 3, 4, 4)))
    y = DenseBlock(2, 5)(x)
    np.testing.assert_array_equal(sn.to_numpy(y[:, :3]), sn.to_numpy(x))


# Images the book does not feed a model: refused before anything changes.

def all_lazy(model):
    return all(p.array is None for p in model.parameters())


@pytest.mark.parametrize("make, size, where, book_size", [
    (AlexNet, 28, r"net\.5 \(MaxPool2d\)", "224x224"),
    (NiN, 28, r"net\.3 \(MaxPool2d\)", "224x224"),
    (DenseNet, 28, r"net\.tran_blk3\.3 \(AvgPool2d\)", "96x96"),
    (BNLeNet, 12, r"net\.4 \(LazyConv2d\)", "28x28"),
], ids=["AlexNet", "NiN", "DenseNet", "BNLeNet"])
def test_a_too_small_image_is_refused_naming_the_layer_and_the_books_size(
        make, size, where, book_size, device):
    model = make()
    with pytest.raises(ValueError, match=rf"^{make.__name__}: {where} cannot take a {size}x"
                       rf"{size} image: its kernel \(\d, \d\) is larger than the padded input "
                       rf"\dx\d that reaches it; the book feeds {make.__name__} {book_size}"):
        model(dev(np.zeros((2, 1, size, size), np.float32)))
    assert all_lazy(model)  # nothing ran: no lazy layer took a shape


def test_alexnet_on_fashion_mnist_without_resize_says_what_to_do():
    with pytest.raises(ValueError) as info:
        AlexNet()(np.zeros((2, 1, 28, 28), np.float32))
    assert str(info.value) == (
        "AlexNet: net.5 (MaxPool2d) cannot take a 28x28 image: its kernel (3, 3) is larger "
        "than the padded input 2x2 that reaches it; the book feeds AlexNet 224x224 images "
        "(d2l.FashionMNIST(resize=(224, 224)))")


def test_the_tape_refuses_the_same_image():
    with pytest.raises(ValueError, match=r"^AlexNet: net\.5 \(MaxPool2d\) cannot take a 28x28"):
        AlexNet()(ag.Tensor(np.zeros((2, 1, 28, 28), np.float32), requires_grad=True))


@pytest.mark.parametrize("make, good, bad, match", [
    (lambda: BNLeNet(), 28, 12, r"BNLeNet: net\.4 \(Conv2d\) cannot take a 12x12 image"),
    (lambda: BNLeNet(), 28, 32, r"BNLeNet: net\.9 \(Linear\) takes 256 features, but a 32x32 "
                                r"image leaves 16x5x5 = 400 at net\.8 \(Flatten\); the book "
                                r"feeds BNLeNet 28x28 images"),
    (lambda: DenseNet(8, 4, (2, 2, 2, 2)), 32, 28,
     r"DenseNet: net\.tran_blk3\.3 \(AvgPool2d\) cannot take a 28x28 image.*96x96"),
], ids=["BNLeNet-small", "BNLeNet-linear", "DenseNet"])
def test_a_refused_image_changes_nothing(make, good, bad, match, device):
    """A trained model (running statistics moved) refuses the image before any layer runs:
    the last good forward's cache still serves backward, and parameters, running
    statistics and their step counts are as they were."""
    model = make()
    good = dev(x_of((4, 1, good, good)).astype(np.float32))
    bad = dev(np.zeros((4, 1, bad, bad), np.float32))
    model(good)
    fresh = copy.deepcopy(model)
    assert_refusal_changes_nothing(model, fresh, good, bad, ValueError, match)


@pytest.mark.parametrize("make", [GoogleNet, lambda: AnyNet(SMALL_ANYNET, 8)],
                         ids=["GoogleNet", "AnyNet"])
def test_padded_windows_and_global_pooling_take_any_size(make):
    """GoogLeNet and AnyNet pad every window and pool globally: no image is too small
    (the book's 96x96 is a choice of detail, not a limit)."""
    model = make().eval()
    with sn.no_grad():
        for size in (1, 7, 40):
            assert model(np.zeros((1, 1, size, size), np.float32)).shape == (1, 10)


def test_concatenating_mismatched_parts_names_the_block_and_both_shapes(device):
    x = dev(x_of((2, 3, 5, 5)).astype(np.float32))
    block = DenseBlock(1, 2)
    block.net = nn.Sequential(nn.LazyConv2d(2, kernel_size=3))  # no padding: 5x5 -> 3x3
    with pytest.raises(ValueError, match=r"DenseBlock: cannot concatenate \(2, 3, 5, 5\) and "
                                         r"\(2, 2, 3, 3\) along axis 1"):
        block(x)
    block = Inception(*INCEPTION)
    block.b4_1 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # 5x5 -> 3x3
    with pytest.raises(ValueError, match=r"Inception: cannot concatenate \(2, 3, 5, 5\) and "
                                         r"\(2, 2, 3, 3\) along axis 1"):
        block(x)


# The op: concat and its split.

def test_concat_and_split_on_the_device(device):
    xs = [dev(x_of((2, c, 3, 4), seed=c)) for c in (1, 3, 2)]
    y = ops.concat(xs)
    assert sn.get_array_module(y) is sn.backend.device_module() and y.shape == (2, 6, 3, 4)
    np.testing.assert_array_equal(sn.to_numpy(y), np.concatenate([sn.to_numpy(x) for x in xs],
                                                                 axis=1))
    gy = dev(x_of((2, 6, 3, 4), seed=9))
    for g, x, a in zip(ops.concat_backward(gy, (1, 3, 2)), xs, (0, 1, 4)):
        assert g.shape == x.shape
        np.testing.assert_array_equal(sn.to_numpy(g), sn.to_numpy(gy)[:, a:a + x.shape[1]])


@pytest.mark.parametrize("shapes", [[(2, 3, 4, 4), (2, 1, 4, 5)], [(2, 3, 4, 4), (3, 3, 4, 4)],
                                    [(2, 3, 4, 4), (2, 3, 4)]], ids=["width", "batch", "rank"])
def test_concat_refuses_mismatched_shapes(shapes, device):
    with pytest.raises(ValueError, match=rf"Inception: cannot concatenate "
                                         rf"{tuple(shapes[0])} and".replace("(", r"\(")
                       .replace(")", r"\)")):
        ops.concat([dev(np.zeros(s)) for s in shapes], name="Inception")


def test_concat_gradient_matches_finite_differences(device):
    xs = [dev(x_of((2, c, 3, 2), seed=c)) for c in (2, 1, 3)]
    gy = dev(x_of((2, 6, 3, 2), seed=7))
    grads = ops.concat_backward(gy, [x.shape[1] for x in xs])
    for x, g in zip(xs, grads):
        def loss():
            return float((ops.concat(xs) * gy).sum())
        num = sn.gradcheck.numerical_gradient(loss, x)
        assert sn.gradcheck.rel_error(g, num) <= 1e-8


def test_concat_on_the_tape_equals_the_split(device):
    xs = [ag.Tensor(dev(x_of((2, c, 3, 2), seed=c)), requires_grad=True) for c in (2, 1)]
    gy = dev(x_of((2, 3, 3, 2), seed=3))
    y = sn.models.concat_channels("Inception", xs)
    (y * ag.Tensor(gy)).sum().backward()
    for x, g in zip(xs, ops.concat_backward(gy, (2, 1))):
        np.testing.assert_array_equal(sn.to_numpy(x.grad), sn.to_numpy(g))
