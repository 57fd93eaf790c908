"""LazyModuleMixin: what PyTorch's lazy layers (LazyLinear, LazyConv2d, LazyBatchNorm2d)
share.

A lazy layer leaves the size of its input (in_features, in_channels, num_features) open
and reads it from its first input; until then its parameters have no shape (PyTorch's
UninitializedParameter: ``weight.data`` is an empty tensor, writes into it are lost, and
``weight.shape`` is an error). Once the shapes are known the layer becomes its plain
class (``cls_to_become``): at its first forward, or, when ``load_state_dict`` gave it
its shapes, at the forward after that. Until then it prints as PyTorch prints it, with
the open size as 0: ``LazyLinear(in_features=0, out_features=256, bias=True)``.
"""


class LazyModuleMixin:
    """Put before the plain class: ``class LazyLinear(LazyModuleMixin, Linear)``. The plain
    class gives ``_materialize(size, xp, dtype)`` (shape the parameters, then initialize
    them) and ``_extra_repr(size)`` (its repr with ``size`` as the inferred size)."""

    cls_to_become = None

    def has_uninitialized_params(self):
        """Whether the shapes are still open (PyTorch's name): a parameter has none, or
        the layer has no parameter and no buffer yet (a BatchNorm without affine
        weights, before its running statistics are made or loaded)."""
        params = [p for p in self._parameters.values() if p is not None]
        if any(p.array is None for p in params):
            return True
        return not params and all(b is None for b in self._buffers.values())

    def _materialize(self, *args):
        super()._materialize(*args)
        # PyTorch's rule: once its shapes are known a LazyLinear is a Linear
        # (type(m) == nn.Linear holds, as d2l's init_cnn tests).
        self.__class__ = self.cls_to_become

    def forward(self, *args, **kwargs):
        if not self.has_uninitialized_params():
            # load_state_dict gave the shapes: become the plain class, keep the values.
            self.__class__ = self.cls_to_become
            return self.forward(*args, **kwargs)
        return super().forward(*args, **kwargs)

    def extra_repr(self):
        return self._extra_repr(0)  # PyTorch prints the open size as 0
