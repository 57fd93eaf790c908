"""Parameter initialisation, with PyTorch's names and formulas.

Values are drawn on the host from the generator seeded by ``sn.manual_seed``
and then moved to the parameter's device, so a seed gives the same network
on the CPU and on the GPU.
"""
import math

import numpy as np

from .. import backend


def _fans(p, name):
    if p.array is None:
        raise ValueError(f"{name}: the parameter is not initialised yet (a lazy layer); run one "
                         "forward pass first, as d2l's apply_init does")
    shape = p.array.shape
    if len(shape) < 2:
        raise ValueError(f"{name}: expected a weight with at least 2 dimensions, got shape "
                         f"{tuple(shape)}")
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def _fill(p, values):
    backend.put(p.array, values)
    return p


def uniform_(p, a=0.0, b=1.0):
    # Drawn in the parameter's dtype: VGG's 25088x4096 weight would need 800 MB in float64.
    return _fill(p, backend.draw_uniform(p.array.shape, p.array.dtype, a, b))


def normal_(p, mean=0.0, std=1.0):
    return _fill(p, backend.draw_normal(p.array.shape, p.array.dtype, mean, std))


def constant_(p, value):
    p.array[...] = value
    return p


def zeros_(p):
    return constant_(p, 0.0)


def ones_(p):
    return constant_(p, 1.0)


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv1d", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def xavier_uniform_(p, gain=1.0):
    fan_in, fan_out = _fans(p, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(p, -bound, bound)


def xavier_normal_(p, gain=1.0):
    fan_in, fan_out = _fans(p, "xavier_normal_")
    return normal_(p, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(p, a, mode, nonlinearity, name):
    fan_in, fan_out = _fans(p, name)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_normal_(p, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    return normal_(p, 0.0, _kaiming_std(p, a, mode, nonlinearity, "kaiming_normal_"))


def kaiming_uniform_(p, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = math.sqrt(3.0) * _kaiming_std(p, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(p, -bound, bound)


def init_cnn(module):
    """d2l's init_cnn: Xavier-uniform weights for every Linear and Conv layer, told by
    their weight: a matrix or a kernel, not BatchNorm's vector. A lazy layer's weight
    has the rank of the shape it will take, and xavier_uniform_ refuses it."""
    w = module._parameters.get("weight")
    if w is None:
        return
    shape = w.shape if w.array is not None else module._lazy_shapes({}).get("weight")
    if shape is not None and len(shape) >= 2:
        xavier_uniform_(w)


def apply_init(model, inputs, init=None):
    """d2l's ``apply_init``: one forward pass to materialise lazy layers, then
    ``model.apply(init)``. ``inputs`` is a list of input arrays."""
    with backend.no_grad():
        model(*inputs)
    if init is not None:
        model.apply(init)
    return model
