"""Classifier: d2l's base for the chapter's models, holding ``self.net``; the check of
an image size against the windows of a model's layers; layer_summary."""

from .. import backend, nn
from ..nn.module import WHOLE_INPUT, Module, Sequential
from ..ops.im2col import out_size


class Classifier(Module):
    """A model whose layers live in ``self.net`` (a Sequential), as in d2l.

    A model that sets ``book_input`` (the (H, W) of the images the book feeds it)
    refuses, before any layer runs, an image its layers cannot take (see
    :func:`check_image_size`).
    """

    book_input = None

    def forward(self, x):
        check_image_size(self, getattr(x, "shape", ()))
        return self.net(x)

    def backward(self, gy):
        return self.net.backward(gy)

    def layer_summary(self, X_shape):
        return layer_summary(self, X_shape)


def _leaves(module, path):
    """(path, layer) of the layers of a Sequential tree in forward order; a block that
    is not a Sequential (Inception, DenseBlock, ResNeXtBlock) is one layer."""
    if isinstance(module, Sequential):
        for k, m in module.named_children():
            yield from _leaves(m, f"{path}.{k}")
    else:
        yield path, module


def check_image_size(model, x_shape):
    """Raise a ValueError, before anything runs (so no lazy layer is materialised and no
    running statistic moves), when a batch of images of ``x_shape`` cannot go through
    ``model.net``: some layer's window is larger than what reaches it (AlexNet on
    Fashion-MNIST's 28x28 without resize), or the first Linear after Flatten was made
    for another size. The message names that layer, the sizes and the book's size.

    Follows each layer's ``receptive_geometry()`` windows up to the first layer that
    sees the whole input (Flatten, adaptive pooling); a model without ``book_input``,
    or an input not (N, C, H, W), is left to its layers' own checks.
    """
    if model.book_input is None or len(x_shape) != 4:
        return
    size, channels = tuple(x_shape[2:]), x_shape[1]
    layers = list(_leaves(model.net, "net"))
    for i, (path, layer) in enumerate(layers):
        geometry = layer.receptive_geometry()
        if geometry == WHOLE_INPUT and isinstance(layer, nn.Flatten) and channels is not None:
            _check_flattened(model, x_shape, path, (channels, *size), layers[i + 1:i + 2])
        if geometry is None or geometry == WHOLE_INPUT:
            return
        for kernel, stride, pad, pad_hi, dilation in geometry:
            out = tuple(out_size(size[a], kernel[a], stride[a], pad[a], pad_hi[a],
                                 dilation[a]) for a in (0, 1))
            if min(out) < 1:
                raise ValueError(
                    f"{model.name}: {path} ({layer.name}) cannot take a {x_shape[2]}x"
                    f"{x_shape[3]} image: its kernel {tuple(kernel)} is larger than the "
                    f"padded input {size[0] + pad[0] + pad_hi[0]}x"
                    f"{size[1] + pad[1] + pad_hi[1]} that reaches it; {_book_size(model)}")
            size = out
        if next(layer.children(), None) is not None:
            channels = None  # a block: its output channels are its own business
        channels = getattr(layer, "out_channels", channels)


def _check_flattened(model, x_shape, path, shape, after):
    """A Linear right after Flatten (``after``: it, or nothing) that already has its
    in_features takes only that many: refuse the image that leaves ``shape`` there."""
    features = shape[0] * shape[1] * shape[2]
    for linear_path, linear in after:
        if isinstance(linear, nn.Linear) and linear.in_features not in (None, features):
            raise ValueError(
                f"{model.name}: {linear_path} ({linear.name}) takes {linear.in_features} "
                f"features, but a {x_shape[2]}x{x_shape[3]} image leaves "
                f"{'x'.join(map(str, shape))} = {features} at {path} (Flatten); "
                f"{_book_size(model)}")


def _book_size(model):
    h, w = model.book_input
    how = "Fashion-MNIST's own size" if (h, w) == (28, 28) else \
        f"d2l.FashionMNIST(resize=({h}, {w}))"
    return f"the book feeds {model.name} {h}x{w} images ({how})"


def layer_summary(model, X_shape, file=None):
    """Print each top-level layer's output shape as d2l does, then the parameter count.

    ``Conv2d output shape:\\t (1, 6, 28, 28)``. Returns the list of (name, shape).
    The layers run in eval mode, so a summary leaves BatchNorm's running statistics
    as they were and works on a batch of one.
    """
    xp = backend.device_module()
    X = xp.asarray(backend.rng().standard_normal(X_shape), dtype=backend.get_default_dtype())
    net = model.net if hasattr(model, "net") else model
    rows = []
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with backend.no_grad():
            for layer in net:
                X = layer(X)
                rows.append((layer.name, tuple(int(s) for s in X.shape)))
                print(f"{layer.name} output shape:\t {rows[-1][1]}", file=file)
    finally:
        for m, training in modes:
            m.training = training
    print(f"Total parameters: {model.num_parameters():,}", file=file)
    return rows
