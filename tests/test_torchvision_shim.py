"""scratchnet.torchvision: datasets.FashionMNIST and transforms.Compose, Resize, ToTensor
as d2l's image-classification-dataset section uses them.

torchvision itself is not installed next to scratchnet's oracle (its build does not load
with torch 2.13), so each transform is checked against what torchvision calls: Pillow's
``Image.resize(..., BILINEAR)`` for an image, torch's ``interpolate(mode="bilinear",
antialias=...)`` for a tensor, and ToTensor's ``from_numpy(...).permute(2, 0, 1).float()
.div(255)``; the reprs are torchvision 0.x's text."""
import shutil
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratchnet as sn
from scratchnet import torchvision
from scratchnet.torchvision import datasets, transforms
from scratchnet.utils import data

Image = pytest.importorskip("PIL.Image")

SIZES = [(32, 32), (224, 224), (14, 14), (20, 37), (37, 20), (10, 20), (5, 3), (57, 13),
         (1, 1), (28, 28), 32, 7, [40]]


def pil_resize(img, size):
    """What torchvision's Resize gives for the uint8 array ``img`` (through Pillow)."""
    h, w = size
    mode = "L" if img.ndim == 2 else "RGB"
    return np.asarray(Image.fromarray(img, mode=mode).resize((w, h), Image.BILINEAR))


def images(shape, n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("shape", [(28, 28), (20, 30, 3)])
def test_resize_of_an_image_is_pillows_bit_for_bit(size, shape):
    imgs = images(shape)
    resize = transforms.Resize(size)
    out = resize.batch(imgs)
    assert out.dtype == np.uint8
    for img, got in zip(imgs, out):
        want = pil_resize(img, resize.output_size(*shape[:2]))
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(resize(img), want)  # one image: the same
    pil = Image.fromarray(imgs[0], mode="L" if len(shape) == 2 else "RGB")
    np.testing.assert_array_equal(resize(pil), out[0])  # a PIL image is taken too


def test_an_int_size_sets_the_shorter_side_as_torchvision():
    assert transforms.Resize(32).output_size(28, 28) == (32, 32)
    assert transforms.Resize(32).output_size(20, 30) == (32, 48)
    assert transforms.Resize(10).output_size(30, 21) == (14, 10)  # 10 * 30 / 21, truncated


# A few ulps of values in [0, 1): the two sum the same terms in another order.
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-15)])
@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("size", [(32, 32), (14, 9), (5, 40), (28, 20), (1, 1)], ids=str)
def test_resize_of_a_tensor_is_torchs_interpolate(dtype, tol, antialias, size):
    x = np.random.default_rng(1).random((2, 3, 28, 20)).astype(dtype)
    want = F.interpolate(torch.from_numpy(x), size=size, mode="bilinear", align_corners=False,
                         antialias=antialias).numpy()
    got = transforms.Resize(size, antialias=antialias)(sn.tensor(x))
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(sn.to_numpy(got), want, rtol=0, atol=tol)


@pytest.mark.parametrize("shape", [(28, 28), (5, 7, 3)])
def test_to_tensor_is_torchvisions_division_by_255(shape):
    img = images(shape, n=1)[0]
    t = torch.from_numpy(img if img.ndim == 3 else img[:, :, None])
    want = t.permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    got = transforms.ToTensor()(img)
    assert repr(got.shape) == repr(want.shape) and got.dtype == np.float32
    np.testing.assert_array_equal(sn.to_numpy(got), want.numpy())
    np.testing.assert_array_equal(sn.to_numpy(transforms.ToTensor()(Image.fromarray(img))),
                                  want.numpy())
    floats = np.random.default_rng(2).random((3, 4)).astype(np.float64)  # kept as it is
    np.testing.assert_array_equal(sn.to_numpy(transforms.ToTensor()(floats)), floats[None])


def test_compose_applies_in_order_and_prints_as_torchvision():
    trans = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    img = images((28, 28), n=1)[0]
    np.testing.assert_array_equal(sn.to_numpy(trans(img))[0],
                                  pil_resize(img, (32, 32)).astype(np.float32) / 255)
    assert repr(trans) == ("Compose(\n    Resize(size=(32, 32), interpolation=bilinear, "
                           "max_size=None, antialias=True)\n    ToTensor()\n)")
    assert transforms.batchable(trans) and not transforms.batchable(
        transforms.Compose([trans, lambda x: x]))


@pytest.mark.parametrize("make, error, match", [
    (lambda: transforms.Resize(0), ValueError, "Resize: sizes must be positive ints"),
    (lambda: transforms.Resize((1, 2, 3)), ValueError, "should have 1 or 2 values"),
    (lambda: transforms.Resize("big"), TypeError, "size should be an int or a sequence"),
    (lambda: transforms.Resize(8, interpolation=transforms.InterpolationMode.NEAREST),
     ValueError, "scratchnet resizes bilinearly only"),
    (lambda: transforms.Resize(8, max_size=10), ValueError, "max_size is not part"),
    (lambda: transforms.Resize(8)(np.zeros((4, 4), np.float32)), TypeError,
     "expected a uint8 image"),
    (lambda: transforms.Resize(8)(sn.arange(16).reshape(4, 4)), TypeError,
     "expected a floating-point tensor"),
    (lambda: transforms.ToTensor()(sn.ones(2, 2)), TypeError, "pic should be an image"),
    (lambda: transforms.ToTensor()(np.zeros(4)), ValueError, "pic should be 2 or 3 dim"),
    (lambda: transforms.Normalize, AttributeError,
     "^torchvision.transforms.Normalize is not part of scratchnet"),
    (lambda: torchvision.models, AttributeError, "^torchvision.models is not part of"),
    (lambda: datasets.CIFAR10, AttributeError, "^torchvision.datasets.CIFAR10 is not part"),
])
def test_what_it_lacks_or_refuses_says_so(make, error, match):
    with pytest.raises(error, match=match):
        make()


def d2l_transform():
    return transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])


def test_fashion_mnist_as_the_book_reads_it(real_data):
    train = datasets.FashionMNIST(root="../data", train=True, transform=d2l_transform(),
                                  download=True)
    val = datasets.FashionMNIST(root="../data", train=False, transform=d2l_transform(),
                                download=True)
    assert (len(train), len(val)) == (60000, 10000)
    X, y = train[0]
    assert repr(X.shape) == "torch.Size([1, 32, 32])" and X.dtype == np.float32
    assert type(y) is int and train.classes[y] == "Ankle boot"
    raw = datasets.FashionMNIST(train=True).data
    np.testing.assert_array_equal(
        sn.to_numpy(X)[0], pil_resize(sn.to_numpy(raw[0]), (32, 32)).astype(np.float32) / 255)
    assert repr(train).splitlines() == [
        "Dataset FashionMNIST", "    Number of datapoints: 60000", "    Root location: ../data",
        "    Split: Train", "    StandardTransform", "Transform: Compose(",
        "               Resize(size=(32, 32), interpolation=bilinear, max_size=None, "
        "antialias=True)", "               ToTensor()", "           )"]


def test_a_dataloader_batch_is_the_stack_of_its_samples(real_data, monkeypatch):
    train = datasets.FashionMNIST(root="../data", train=False, transform=d2l_transform())
    loader = data.DataLoader(train, 64, shuffle=False, num_workers=4)
    X, y = next(iter(loader))
    assert (repr(X.shape), X.dtype, repr(y.shape), y.dtype) == (
        "torch.Size([64, 1, 32, 32])", np.float32, "torch.Size([64])", np.int64)
    one_by_one = data.default_collate([train[i] for i in range(64)])
    np.testing.assert_array_equal(sn.to_numpy(X), sn.to_numpy(one_by_one[0]))
    np.testing.assert_array_equal(sn.to_numpy(y), sn.to_numpy(one_by_one[1]))
    slow = datasets.FashionMNIST(train=False, transform=transforms.Compose(
        [d2l_transform(), lambda t: t * 1]))  # not batchable: sample by sample
    Xs, ys = next(iter(data.DataLoader(slow, 64)))
    np.testing.assert_array_equal(sn.to_numpy(Xs), sn.to_numpy(X))

    def one_at_a_time(self, i):
        raise AssertionError("the loader read a sample at a time")
    monkeypatch.setattr(type(train).__mro__[1], "__getitem__", one_at_a_time)
    assert len(list(data.DataLoader(train, 500, shuffle=True))) == 20


def test_the_files_are_found_in_torchvisions_layout_first(real_data, tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in real_data.iterdir():
        if "ubyte" in f.name:
            shutil.copy(f, raw / f.name)
    assert datasets.FashionMNIST(root=tmp_path, train=False).files == raw
    elsewhere = datasets.FashionMNIST(root=tmp_path / "empty", train=False, download=False)
    assert elsewhere.files == real_data and len(elsewhere) == 10000


@pytest.mark.slow
def test_one_epoch_of_60000_images_takes_seconds(real_data):
    loader = data.DataLoader(datasets.FashionMNIST(train=True, transform=d2l_transform()), 64,
                             shuffle=True)
    tic = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    assert n == 60000 and time.perf_counter() - tic < 60
