"""torch.nn.functional's names and arguments for the layer ops, on the tape.

    from scratchnet.nn import functional as F       # was: from torch.nn import functional as F
    y = F.relu(F.conv2d(x, w, b, stride=1, padding=1))

Each op's forward and backward are the ones in ``scratchnet.ops`` (which the layers
in ``scratchnet.nn`` call too): the tape (``scratchnet.autograd``, the floor below)
only records them and runs them in order. ``cross_entropy`` records the layer
``nn.CrossEntropyLoss`` as one node. Arguments may be Tensors or plain arrays
(constants). As in PyTorch, these live in nn, above the tape.
"""
from .. import backend, ops
from ..autograd import Tensor, record, to_tensor
from ..ops.im2col import pair, pool_stride
from .loss import CrossEntropyLoss

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
           "linear", "relu", "sigmoid", "tanh", "dropout", "cross_entropy", "mse_loss"]


def _t(v, like=None):
    if v is None or isinstance(v, Tensor):
        return v
    return to_tensor(v, like if like is not None else Tensor(v))


def _given(*tensors):
    """The inputs that were given (an optional bias may be None)."""
    return tuple(t for t in tensors if t is not None)


def _grads(tensors, *gs):
    """One gradient per given input, None where it needs none (``tensors`` as passed to
    :func:`_given`, None included)."""
    return tuple(g if t.requires_grad else None for t, g in zip(tensors, gs) if t is not None)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,): a cross-correlation."""
    x = _t(input)
    w, b = _t(weight, x), _t(bias, x)
    kh, kw = w.shape[2:]
    stride, dilation = pair(stride, "conv2d stride"), pair(dilation, "conv2d dilation")
    pads = ops.conv_pads(padding if isinstance(padding, str) else pair(padding, "padding"),
                         kh, kw, *dilation)
    if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise ValueError(f"conv2d: expected input channels = weight.shape[1] * groups and "
                         f"out channels divisible by groups, got input {tuple(x.shape)}, weight "
                         f"{tuple(w.shape)}, groups={groups}")
    y, cols = ops.conv2d(x.array, w.array, None if b is None else b.array, stride, pads,
                         dilation, groups=groups)

    def backward(gy):
        gx, gw, gb = ops.conv2d_backward(gy, cols, w.array, x.shape, stride, pads, dilation,
                                         need_gx=x.requires_grad, need_gb=b is not None,
                                         groups=groups)
        return _grads((x, w, b), gx, gw.reshape(w.shape), gb)
    return record("ConvolutionBackward", y, _given(x, w, b), backward)


def _pool_args(kernel_size, stride, padding):
    kernel = pair(kernel_size, "kernel_size")
    stride = pool_stride(stride, kernel)
    ph, pw = pair(padding, "padding")
    return kernel, stride, (ph, ph, pw, pw)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1):
    x = _t(input)
    kernel, stride, pads = _pool_args(kernel_size, stride, padding)
    dilation = pair(dilation, "dilation")
    y, idx = ops.max_pool2d(x.array, kernel, stride, pads, dilation)
    return record("MaxPool2DBackward", y, (x,), lambda gy: (ops.max_pool2d_backward(
        gy, idx, x.shape, kernel, stride, pads, dilation),))


def avg_pool2d(input, kernel_size, stride=None, padding=0):
    x = _t(input)
    kernel, stride, pads = _pool_args(kernel_size, stride, padding)
    y = ops.avg_pool2d(x.array, kernel, stride, pads)
    return record("AvgPool2DBackward", y, (x,), lambda gy: (ops.avg_pool2d_backward(
        gy, x.shape, kernel, stride, pads),))


def adaptive_avg_pool2d(input, output_size):
    x = _t(input)
    y = ops.adaptive_avg_pool2d(x.array, pair(output_size, "output_size", single=False))
    return record("AdaptiveAvgPool2DBackward", y, (x,),
                  lambda gy: (ops.adaptive_avg_pool2d_backward(gy, x.shape),))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Per channel over every axis but 1. In training the batch statistics are used and
    the running ones (plain arrays, or None) are updated in place, as PyTorch does."""
    x = _t(input)
    g, b = _t(weight, x), _t(bias, x)
    axes = (0,) + tuple(range(2, x.ndim))
    gamma, beta = (None if g is None else g.array), (None if b is None else b.array)
    rm = running_mean.array if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.array if isinstance(running_var, Tensor) else running_var
    if training:
        y, cache, mean, var = ops.batch_norm_train(x.array, gamma, beta, eps, axes)
        if rm is not None:
            m = x.array.size // x.shape[1]
            rm *= 1 - momentum
            rm += momentum * mean
            rv *= 1 - momentum
            rv += (momentum * m / (m - 1)) * var
        backward_op = ops.batch_norm_train_backward
    else:
        y, cache = ops.batch_norm_eval(x.array, gamma, beta, rm, rv, eps, axes)
        backward_op = ops.batch_norm_eval_backward

    def backward(gy):
        gx, gg, gb = backward_op(gy, cache, gamma, axes)
        return _grads((x, g, b), gx, gg, gb)
    return record("NativeBatchNormBackward", y, _given(x, g, b), backward)


def linear(input, weight, bias=None):
    """y = x @ weight.T + bias, weight (out, in)."""
    x = _t(input)
    w, b = _t(weight, x), _t(bias, x)
    y = ops.linear(x.array, w.array, None if b is None else b.array)

    def backward(gy):
        gx, gw, gb = ops.linear_backward(gy, x.array, w.array, x.requires_grad, b is not None)
        return _grads((x, w, b), gx, gw, gb)
    return record("AddmmBackward", y, _given(x, w, b), backward)


def relu(input):
    return _t(input).relu()


def sigmoid(input):
    return _t(input).sigmoid()


def tanh(input):
    return _t(input).tanh()


def dropout(input, p=0.5, training=True):
    """Inverted dropout: zero with probability p, scale the rest by 1 / (1 - p)."""
    x = _t(input)
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: expected 0 <= p <= 1, got {p}")
    if not training or p == 0:
        return x
    mask = ops.dropout_mask(x.array, p)
    return record("MulBackward", ops.dropout(x.array, mask), (x,),
                  lambda gy: (ops.dropout_backward(gy, mask),))


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits (N, C, ...) against class labels (N, ...) or class
    probabilities, with PyTorch's weight, ignore_index and label_smoothing: the layer
    ``nn.CrossEntropyLoss`` recorded as one node. On the CPU labels are checked at once;
    on the GPU, as with the layer, the largest label stays on the device and
    :func:`check_labels` raises at the next read (a Trainer calls it each epoch)."""
    x = _t(input)
    w = weight.array if isinstance(weight, Tensor) else weight
    t = target.array if isinstance(target, Tensor) else target
    loss_fn = CrossEntropyLoss(reduction, weight=w, ignore_index=ignore_index,
                               label_smoothing=label_smoothing)
    out = loss_fn(x, t)
    pending = loss_fn.__dict__["_label_max"]  # (largest label, classes) on the GPU
    if pending is not None:
        top, classes = pending
        if _labels.get("pending") is not None and _labels["pending"][1] == classes:
            top = backend.get_array_module(top).maximum(_labels["pending"][0], top)
        elif _labels.get("pending") is not None:
            check_labels()  # another class count: settle the old check first
        _labels["pending"], _labels["layer"] = (top, classes), loss_fn
    return out


_labels = {}  # the deferred GPU label check of cross_entropy: (largest label, classes)


def check_labels():
    """Raise the out-of-range label error for any ``cross_entropy`` on the GPU since the
    last check (one read of the device); nothing to do on the CPU."""
    pending, layer = _labels.pop("pending", None), _labels.pop("layer", None)
    if pending is not None:
        object.__setattr__(layer, "_label_max", pending)
        layer.check_labels()


def mse_loss(input, target, reduction="mean"):
    x = _t(input)
    t = target.array if isinstance(target, Tensor) else target
    loss, d = ops.mse(x.array, t.astype(x.dtype, copy=False), reduction)
    xp = backend.get_array_module(x.array)
    return record("MseLossBackward", xp.asarray(loss), (x,),
                  lambda gy: (ops.mse_backward(d, reduction, gy),))


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torch.nn.functional.{name} is not part of scratchnet (its "
                         f"functional ops: {', '.join(__all__)})")
