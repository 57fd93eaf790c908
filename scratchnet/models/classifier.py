"""Classifier: d2l's base for the chapter's models, holding ``self.net``."""

from .. import backend
from ..nn.module import Module


class Classifier(Module):
    """A model whose layers live in ``self.net`` (a Sequential), as in d2l."""

    def forward(self, x):
        return self.net(x)

    def backward(self, gy):
        return self.net.backward(gy)

    def layer_summary(self, X_shape):
        return layer_summary(self, X_shape)


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
