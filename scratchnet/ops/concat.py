"""Concatenation along one axis and its backward, the split: ``torch.cat`` of d2l 8.4's
Inception (four branches side by side) and 8.7's DenseBlock (each block's input and
output), both along the channels (axis 1 of (N, C, H, W))."""
from ..backend import get_array_module


def check_concat(shapes, axis=1, name="concat"):
    """Raise a ValueError naming ``name`` and two of ``shapes`` that cannot be joined
    along ``axis``: every other axis (the batch, the height, the width) must agree."""
    if not shapes:
        raise ValueError(f"{name}: nothing to concatenate")
    first = tuple(shapes[0])
    for shape in map(tuple, shapes[1:]):
        if len(shape) != len(first) or any(
                s != f for a, (s, f) in enumerate(zip(shape, first)) if a != axis % len(first)):
            raise ValueError(f"{name}: cannot concatenate {first} and {shape} along axis "
                             f"{axis}: all other axes must agree")


def concat(arrays, axis=1, name="concat"):
    """y = [x_1, x_2, ...] along ``axis``, as :func:`scratchnet.teach.concat_forward`.

    Shapes that do not fit together are refused naming ``name`` (the layer).
    """
    check_concat([a.shape for a in arrays], axis, name)
    return get_array_module(arrays[0]).concatenate(arrays, axis=axis)


def concat_backward(gy, sizes, axis=1):
    """The split, as :func:`scratchnet.teach.concat_backward`: gy cut into ``sizes``.

    Each input moved only its own slice of y, so its gradient is that slice of gy
    (a view: nothing is copied, and on the GPU nothing is launched).
    """
    grads, start = [], 0
    for size in sizes:
        index = [slice(None)] * gy.ndim
        index[axis] = slice(start, start + size)
        grads.append(gy[tuple(index)])
        start += size
    return grads
