"""save / load: checkpoints as .npz files, written atomically and never read with pickle.

A checkpoint is a flat dict str -> array (state_dict keys like "0.weight"); Python
scalars are stored as 0-d arrays. Loading hands back numpy arrays; moving them to the
GPU is the job of ``load_state_dict``.
"""
import errno
import os
import tempfile
import zipfile

import numpy as np

from . import backend

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # first local file header, or an empty archive
_PICKLE_MAGIC = b"\x80"  # pickle protocols 2 and later open with PROTO


def save(obj, path):
    """Write ``obj`` (a dict of arrays and scalars; nested dicts get '.' keys) to ``path``.

    The file is written next to its target and renamed onto it only once complete, so a
    crash or an error leaves any previous checkpoint at ``path`` intact. Exactly ``path``
    is written (numpy would append '.npz' to a name without it).
    """
    arrays = _flatten(obj)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_npz(f, arrays):
    """np.savez's format, written here so keys like 'file' cannot clash with its arguments."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, a in arrays.items():
            # force_zip64 as numpy does: the size is unknown when the member is opened.
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def _flatten(obj, prefix="", out=None):
    if out is None:
        if not isinstance(obj, dict):
            raise TypeError(f"scratchnet.save: expected a dict of arrays, got "
                            f"{type(obj).__name__}")
        out = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"scratchnet.save: keys must be str, got {key!r}")
        name = prefix + key
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
            continue
        if name in out:
            raise ValueError(f"scratchnet.save: key {name!r} appears twice after flattening")
        a = backend.to_numpy(value)
        if a.dtype.hasobject:
            raise TypeError(f"scratchnet.save: {name!r} is a {type(value).__name__}, which "
                            f"would need pickle; store arrays, numbers or strings")
        out[name] = a
    return out


def load(path):
    """Read a checkpoint written by ``save``: a dict str -> numpy array (0-d for scalars).

    Uses allow_pickle=False throughout: an entry holding Python objects is refused.
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "scratchnet.load: no such checkpoint",
                                path) from None
    with f:
        head = f.read(4)
        if head.startswith(_PICKLE_MAGIC):
            raise ValueError(f"scratchnet.load: {path!r} is a pickle; pickled objects are "
                             f"refused (checkpoints are .npz files of plain arrays)")
        if head not in _ZIP_MAGIC:
            raise ValueError(f"scratchnet.load: {path!r} is not a valid .npz checkpoint: "
                             f"it does not start with a zip header")
        f.seek(0)
        key = None
        try:
            with np.load(f, allow_pickle=False) as npz:
                out = {}
                for key in npz.files:
                    out[key] = npz[key]
                return out
        except ValueError as e:
            # numpy refuses object arrays with a message naming allow_pickle.
            if key is not None and "allow_pickle" in str(e):
                raise ValueError(f"scratchnet.load: entry {key!r} of {path!r} holds pickled "
                                 f"objects; pickled objects are refused") from None
            raise ValueError(f"scratchnet.load: {path!r} is not a valid .npz checkpoint: "
                             f"{e}") from e
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as e:
            # zipfile reports some corrupt headers as "encrypted" or "unsupported
            # compression" (RuntimeError, NotImplementedError).
            raise ValueError(f"scratchnet.load: {path!r} is not a valid .npz checkpoint: "
                             f"{e}") from e
