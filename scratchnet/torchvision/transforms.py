"""torchvision.transforms: Compose, Resize and ToTensor, as d2l's Fashion-MNIST uses them::

    trans = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])

torchvision hands a data set's image to the transforms as a PIL image; scratchnet's data
sets hand it as what PIL's image holds, a uint8 NumPy array (H, W) or (H, W, C), and
these transforms take either. ``Resize`` of an image computes what PIL's bilinear
``Image.resize`` computes, bit for bit (its fixed-point arithmetic included): PIL is
what torchvision calls. ``ToTensor`` makes it a float Tensor (C, H, W) in [0, 1].

Each transform also has ``batch``, the same on a stack of images (B, H, W) or of tensors
(B, C, H, W) at once: the data sets use it when a DataLoader asks for a whole minibatch.
"""
import enum
import functools

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..data.loader import resize_bilinear

__all__ = ["Compose", "Resize", "ToTensor", "InterpolationMode", "batchable"]

# PIL's 8-bit resampling keeps weights as integers scaled by 2**22 (Resample.c).
_PRECISION_BITS = 22


class InterpolationMode(enum.Enum):
    """torchvision's names of the resampling filters (Resize does BILINEAR only)."""
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


class Compose:
    """Apply ``transforms`` in order: ``Compose([Resize((32, 32)), ToTensor()])(img)``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def batch(self, imgs):
        for t in self.transforms:
            img_batch = getattr(t, "batch", None)
            if img_batch is None:
                raise TypeError(f"Compose.batch: {t!r} has no batch method (apply it image "
                                f"by image)")
            imgs = img_batch(imgs)
        return imgs

    def __repr__(self):
        return "Compose(" + "".join(f"\n    {t}" for t in self.transforms) + "\n)"


def batchable(transform):
    """Whether ``transform`` (None: no transform) can be applied to a whole stack of
    images at once (every transform in it has ``batch``)."""
    if transform is None:
        return True
    if isinstance(transform, Compose):
        return all(batchable(t) for t in transform.transforms)
    return callable(getattr(transform, "batch", None))


class ToTensor:
    """A uint8 image (H, W) or (H, W, C), or a PIL image, as a Tensor (C, H, W) of the
    default float dtype, divided by 255 (torchvision's ToTensor). An array of another
    dtype keeps its values and dtype."""

    def __call__(self, pic):
        return self.batch(_image_array(pic, "ToTensor")[None])[0]

    def batch(self, pics):
        """A stack of images (B, H, W) or (B, H, W, C) as a Tensor (B, C, H, W)."""
        _check_images(pics, "ToTensor.batch")
        x = pics[..., None] if pics.ndim == 3 else pics
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        if x.dtype == np.uint8:
            dtype = backend.get_default_dtype()
            x = x.astype(dtype) / dtype.type(255)  # a division, as torchvision's div(255)
        return Tensor(x)

    def __repr__(self):
        return "ToTensor()"


class Resize:
    """Resize an image (a uint8 array (H, W) or (H, W, C), or a PIL image) or a Tensor
    (..., H, W) to ``size``: (h, w), or an int for the shorter side (the other keeping
    the aspect ratio), bilinearly (torchvision's Resize).

    An image is resized as PIL resizes it (torchvision calls PIL), in 8-bit fixed point,
    and stays a uint8 image; a Tensor as torch's ``interpolate(mode="bilinear",
    antialias=antialias)``. When shrinking, antialiasing widens the filter to the output
    pixel, so every input pixel counts; PIL always does so.
    """

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None,
                 antialias=True):
        if isinstance(size, (list, tuple)):
            if len(size) not in (1, 2):
                raise ValueError(f"Resize: if size is a sequence, it should have 1 or 2 "
                                 f"values, got {size!r}")
            if len(size) == 1:
                size = size[0]
        if not (isinstance(size, (int, np.integer)) and not isinstance(size, bool)
                or isinstance(size, (list, tuple))):
            raise TypeError(f"Resize: size should be an int or a sequence (h, w), got "
                            f"{type(size).__name__}")
        sizes = (size,) if not isinstance(size, (list, tuple)) else size
        if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                   for s in sizes):
            raise ValueError(f"Resize: sizes must be positive ints, got {size!r}")
        if interpolation not in (InterpolationMode.BILINEAR, "bilinear", 2):  # 2: PIL's
            raise ValueError(f"Resize: scratchnet resizes bilinearly only "
                             f"(InterpolationMode.BILINEAR), got {interpolation!r}")
        if max_size is not None:
            raise ValueError("Resize: max_size is not part of scratchnet's Resize")
        self.size = size
        self.interpolation = InterpolationMode.BILINEAR
        self.max_size = max_size
        self.antialias = antialias

    def output_size(self, h, w):
        """(h, w) of the result for an input of h x w (torchvision's rule for an int
        size: the shorter side becomes ``size``, the longer one is truncated)."""
        if isinstance(self.size, (list, tuple)):
            return int(self.size[0]), int(self.size[1])
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = int(self.size), int(int(self.size) * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)

    def __call__(self, img):
        if isinstance(img, Tensor):
            if img.ndim < 2:
                raise ValueError(f"Resize: expected a tensor (..., H, W), got shape "
                                 f"{tuple(img.shape)}")
            return self.batch(Tensor(img.array[None]))[0]
        return self.batch(_image_array(img, "Resize")[None])[0]

    def batch(self, imgs):
        """A stack of images (B, H, W) or (B, H, W, C), or a Tensor (B, ..., H, W),
        resized."""
        if isinstance(imgs, Tensor):
            if imgs.dtype.kind != "f":
                raise TypeError(f"Resize: expected a floating-point tensor, got {imgs.dtype} "
                                f"(resize the uint8 image before ToTensor)")
            *lead, H, W = imgs.shape
            h, w = self.output_size(H, W)
            x = imgs.array.reshape(-1, 1, H, W)
            if self.antialias:
                y = resample_float(x, h, w)
            else:  # torch's interpolate without antialiasing (also scratchnet.data's)
                y = resize_bilinear(x, (h, w))
            return Tensor(y.reshape(*lead, h, w))
        _check_images(imgs, "Resize.batch")
        if imgs.dtype != np.uint8:
            raise TypeError(f"Resize: expected a uint8 image (what a PIL image holds) or a "
                            f"Tensor, got an array of {imgs.dtype}")
        h, w = self.output_size(*imgs.shape[1:3])
        return resample_uint8(imgs, h, w)

    def __repr__(self):
        return (f"Resize(size={self.size}, interpolation={self.interpolation.value}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


@functools.lru_cache(maxsize=64)
def bilinear_weights(n_in, n_out):
    """(n_out, n_in) float64: row i holds the weights with which output pixel i mixes
    the input pixels along one axis, as PIL computes them (Resample.c,
    precompute_coeffs) and torch's ``interpolate(antialias=True)`` does after it.

    Output pixel i is centred at input coordinate (i + 0.5) * n_in / n_out. A triangle
    filter around it, one input pixel wide on each side when enlarging, one output pixel
    (n_in / n_out input pixels) when shrinking, gives each input pixel its weight; the
    weights of a row are normalized to sum to 1 (which handles the borders).
    """
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = filterscale  # the bilinear filter reaches 1 pixel; scaled when shrinking
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)  # int() truncates toward 0, as C's cast
        hi = min(int(center + support + 0.5), n_in)
        x = (np.arange(lo, hi) - center + 0.5) * (1.0 / filterscale)
        w = np.maximum(1.0 - np.abs(x), 0.0)
        total = 0.0
        for v in w:  # summed in order, as the C loop sums
            total += v
        weights[i, lo:hi] = w / total if total != 0.0 else w
    return weights


@functools.lru_cache(maxsize=64)
def _taps(n_in, n_out):
    """PIL's 8-bit form of ``bilinear_weights``: for each output pixel, the indices of
    the few input pixels it mixes (n_out, k) and their weights as integers in units of
    2**-22, rounded as Resample.c rounds them (n_out, k; 0 past a row's window)."""
    weights = bilinear_weights(n_in, n_out)
    nonzero = weights != 0
    lo = nonzero.argmax(axis=1)
    hi = n_in - nonzero[:, ::-1].argmax(axis=1)
    k = int((hi - lo).max())
    idx = lo[:, None] + np.arange(k)
    inside = idx < hi[:, None]
    idx = np.minimum(idx, n_in - 1)
    scaled = np.take_along_axis(weights, idx, axis=1) * (1 << _PRECISION_BITS)
    kk = np.trunc(np.where(scaled < 0, scaled - 0.5, scaled + 0.5)).astype(np.int64)
    return idx, np.where(inside, kk, 0)


def _resample_axis_uint8(x, n_out, axis):
    """One pass of PIL's 8-bit resampling along ``axis`` of the uint8 array x: the
    integer weighted sum of each output pixel's input pixels, plus a rounding half,
    shifted back by 22 bits and clipped to 0..255."""
    x = np.moveaxis(x, axis, -1)
    idx, kk = _taps(x.shape[-1], n_out)
    acc = np.full(x.shape[:-1] + (n_out,), 1 << (_PRECISION_BITS - 1), dtype=np.int64)
    for j in range(idx.shape[1]):
        acc += x[..., idx[:, j]] * kk[:, j]
    out = np.clip(acc >> _PRECISION_BITS, 0, 255).astype(np.uint8)
    return np.moveaxis(out, -1, axis)


def resample_uint8(imgs, h, w):
    """A stack of uint8 images (B, H, W) or (B, H, W, C) resized to (h, w), as PIL's
    ``Image.resize((w, h), Image.BILINEAR)`` resizes each: one pass along each axis,
    each rounded to uint8, an axis of unchanged size left alone. The width goes first,
    unless the height loses more than twice as many pixels as the width (Pillow 13
    does that pass first, to work on fewer rows; the order changes the rounding)."""
    H, W = imgs.shape[1:3]
    passes = [(w, W, 2), (h, H, 1)]
    if h < H and H - h > 2 * (W - w):
        passes.reverse()
    out = imgs.copy()  # a new image, as PIL gives, even when no pass runs
    for n_out, n_in, axis in passes:
        if n_out != n_in:
            out = _resample_axis_uint8(out, n_out, axis)
    return out


def resample_float(x, h, w):
    """Floating x (N, C, H, W) resized to (N, C, h, w) with ``bilinear_weights`` (torch's
    ``interpolate(mode="bilinear", antialias=True)``), on x's device and in its dtype."""
    xp = backend.get_array_module(x)
    H, W = x.shape[-2:]
    wy = xp.asarray(bilinear_weights(H, h), dtype=x.dtype)
    wx = xp.asarray(bilinear_weights(W, w), dtype=x.dtype)
    return xp.matmul(xp.matmul(wy, x), wx.T)


def _image_array(pic, who):
    """``pic`` (a NumPy image or a PIL image) as a NumPy array (H, W) or (H, W, C)."""
    if isinstance(pic, Tensor):
        raise TypeError(f"{who}: pic should be an image (a NumPy array or a PIL image), got "
                        f"a Tensor")
    backend.refuse_torch(who, "the image", pic, tape=False)
    if not isinstance(pic, np.ndarray):
        if not hasattr(pic, "__array_interface__"):  # a PIL image has one
            raise TypeError(f"{who}: pic should be an image (a NumPy array or a PIL image), "
                            f"got {type(pic).__name__}")
        pic = np.asarray(pic)
    if pic.ndim not in (2, 3):
        raise ValueError(f"{who}: pic should be 2 or 3 dimensional (H, W) or (H, W, C), got "
                         f"shape {pic.shape}")
    return pic


def _check_images(imgs, who):
    if not isinstance(imgs, np.ndarray) or imgs.ndim not in (3, 4):
        raise TypeError(f"{who}: expected a NumPy stack of images (B, H, W) or (B, H, W, C), "
                        f"got {type(imgs).__name__} of shape {getattr(imgs, 'shape', None)}")


def __getattr__(name):
    """A torchvision.transforms name scratchnet lacks says so in one line."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torchvision.transforms.{name} is not part of scratchnet (its "
                         f"transforms are Compose, Resize, ToTensor)")
