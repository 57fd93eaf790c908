"""torch.save / torch.load: Tensors, and lists, tuples and dicts of them, in one .npz
file, never a pickle.

PyTorch's ``torch.save(obj, f)`` pickles ``obj`` and ``torch.load(f)`` unpickles it,
which gives back the same structure but can run any code hidden in the file.
scratchnet writes the same objects as an .npz archive (``io.save``): every Tensor,
array, number and string is one ``.npy`` member named by where it sits (``data`` for a
lone tensor, ``0`` and ``1`` for a list's, ``hidden.weight`` for a state_dict's), so
NumPy reads a flat dict as the arrays it holds; one more member, ``__structure__``,
describes the rest in JSON: the lists, tuples and dicts, None, and what each member
was (a Tensor, a Parameter, a NumPy array, a Python number). ``load`` rebuilds the
structure from it, the Tensors on the active device with the dtypes they were saved
with. An .npz without that member (``np.savez``, a Trainer checkpoint) loads as a dict
of its NumPy arrays by name.

A file written by PyTorch's torch.save is refused (io.load says what it is).
"""
import json
from collections import OrderedDict

import numpy as np

from . import backend, io
from .autograd import Size, Tensor
from .autograd.parameter import Parameter

STRUCTURE = "__structure__"
_SAVES = ("scratchnet writes .npz files, never pickles, so it saves Tensors, Parameters, "
          "NumPy arrays, numbers, strings, None, and lists, tuples and dicts of them")


def save(obj, f):
    """Write ``obj`` to the file ``f`` (a path: exactly that name, no extension added),
    as PyTorch's ``torch.save(obj, f)``. ``obj``: a Tensor, a NumPy or CuPy array, a
    number, a string, None, or a list, tuple or dict (an OrderedDict such as a
    ``state_dict()`` too) of these, nested as deep as you like; dict keys are strings,
    numbers, booleans or None. Anything else (a module, a set, a function, an object
    array) raises a TypeError naming it, and nothing is written. The file is written
    whole or not at all (io.atomic_write)."""
    if hasattr(f, "write"):
        raise TypeError(f"torch.save: expected a file name (a str or a path), got an open "
                        f"{type(f).__name__}: scratchnet writes to a file by name only, "
                        f"whole or not at all")
    arrays = {}
    tree = _describe(obj, (), arrays, set())
    arrays[STRUCTURE] = json.dumps(tree)
    io.save(arrays, f)


_CONTAINERS = {list: "list", tuple: "tuple", Size: "size", dict: "dict", OrderedDict: "dict"}


def _describe(obj, path, arrays, open_containers):
    """The JSON node for ``obj`` at ``path`` (a tuple of keys), putting its arrays into
    ``arrays`` under their member names."""
    if type(obj) not in _CONTAINERS:
        return _describe_leaf(obj, path, arrays)
    if id(obj) in open_containers:
        raise ValueError(f"torch.save: {_where(path)} contains itself")
    open_containers.add(id(obj))
    if isinstance(obj, dict):
        for key in obj:
            if not (key is None or type(key) in (str, int, float, bool)):
                raise TypeError(f"torch.save: {_where(path)} has a key of type "
                                f"{type(key).__name__} ({key!r}); dict keys must be str, "
                                f"int, float, bool or None")
        node = {"dict": [[key, _describe(v, path + (key,), arrays, open_containers)]
                         for key, v in obj.items()],
                "ordered": type(obj) is OrderedDict}
    else:
        node = {_CONTAINERS[type(obj)]: [_describe(v, path + (i,), arrays, open_containers)
                                         for i, v in enumerate(obj)]}
    open_containers.discard(id(obj))
    return node


def _describe_leaf(obj, path, arrays):
    """The JSON node of a Tensor, a Parameter, an array, a number, a string or None."""
    if isinstance(obj, Parameter):
        if obj.array is None:
            raise TypeError(f"torch.save: {_where(path)} is an uninitialized parameter (a lazy "
                            f"layer's, before its first forward): it has no values to save")
        return {"parameter": _put(obj.array, path, arrays)}
    if isinstance(obj, Tensor):
        return {"tensor": _put(obj.array, path, arrays), "requires_grad": obj.requires_grad}
    backend.refuse_torch("torch.save", _where(path), obj, tape=True)
    if backend.is_cupy_array(obj) or isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.hasobject:
            raise TypeError(f"torch.save: {_where(path)} is an array of Python objects, "
                            f"which would need pickle; {_SAVES}")
        kind = ("cupy" if backend.is_cupy_array(obj) else
                "numpy_scalar" if isinstance(obj, np.generic) else "ndarray")
        return {kind: _put(obj, path, arrays)}
    if type(obj) in (bool, float, str) or (type(obj) is int and -2 ** 63 <= obj < 2 ** 63):
        # A 0-d array too, so that NumPy (and io.load) see every entry of a flat dict.
        return {"python": _put(np.asarray(obj), path, arrays)}
    if obj is None or type(obj) is int:  # None; an int too big for int64
        return {"value": obj}
    raise TypeError(f"torch.save: cannot save {_where(path)}, a {type(obj).__name__}: "
                    f"{_SAVES}" + (" (save a model's state_dict() instead)"
                                   if hasattr(obj, "state_dict") else ""))


def _where(path):
    return "the object" if not path else "the entry " + "".join(f"[{k!r}]" for k in path)


def _put(array, path, arrays):
    """Store ``array`` (as NumPy) under a member name made from ``path``, one not yet
    taken; return that name."""
    base = ".".join(str(k) for k in path) or "data"
    name, n = base, 0
    while name in arrays or name == STRUCTURE:
        n += 1
        name = f"{base}~{n}"
    arrays[name] = backend.to_numpy(array)
    return name


def load(f, weights_only=True):
    """Read a file written by ``save`` (``torch.save``) and give back what was saved:
    Tensors as Tensors (on the active device, in their saved dtypes), NumPy arrays as
    NumPy arrays, the same lists, tuples and dicts. ``weights_only`` is accepted for
    PyTorch's sake: scratchnet never unpickles, so every load is weights-only.
    An .npz that ``save`` did not write (no ``__structure__``) gives the dict of its
    arrays by name, as io.load."""
    if hasattr(f, "read"):
        raise TypeError(f"torch.load: expected a file name (a str or a path), got an open "
                        f"{type(f).__name__}")
    arrays = io.load(f)
    if STRUCTURE not in arrays:
        return arrays
    try:
        tree = json.loads(str(arrays.pop(STRUCTURE)))
        return _rebuild(tree, arrays)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise ValueError(f"torch.load: {str(f)!r} is not a valid file of torch.save: its "
                         f"{STRUCTURE} entry does not match its arrays ({e!r})") from None


def _rebuild(node, arrays):
    kind, value = next(iter(node.items()))  # the kind comes first; then any flags
    if kind == "value":
        return value
    if kind == "python":
        return arrays[value].item()
    if kind == "tensor":
        return Tensor(arrays[value], requires_grad=node.get("requires_grad", False))
    if kind == "parameter":
        return Parameter(backend.to_device(arrays[value], backend.get_device()))
    if kind == "ndarray":
        return arrays[value]
    if kind == "numpy_scalar":
        return arrays[value][()]
    if kind == "cupy":
        return backend.to_device(arrays[value], "gpu")
    if kind == "dict":
        items = [(key, _rebuild(v, arrays)) for key, v in value]
        return OrderedDict(items) if node.get("ordered") else dict(items)
    if kind in ("list", "tuple", "size"):
        items = [_rebuild(v, arrays) for v in value]
        return {"list": list, "tuple": tuple, "size": Size}[kind](items)
    raise ValueError(f"unknown kind {kind!r}")
