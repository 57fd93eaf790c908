"""save / load: checkpoints as .npz files, written atomically and never read with pickle.

A checkpoint is a flat dict str -> array (state_dict keys like "0.weight"); Python
scalars are stored as 0-d arrays. Loading hands back numpy arrays; moving them to the
GPU is the job of ``load_state_dict``. The Trainer's checkpoints are these;
``scratchnet.save`` / ``scratchnet.load`` (torch.save / torch.load, serialization.py)
write any structure of Tensors through them. This file sits below the tape (figures and
the data sets write through ``atomic_write``), so it knows arrays only.
"""
import contextlib
import errno
import os
import pathlib
import socket
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
    atomic_write(path, lambda f: _write_npz(f, arrays))


def atomic_write(path, write, binary=True):
    """Write the file ``path`` whole or not at all: ``write(f)`` fills a temp file next to
    it, which is then renamed onto ``path``. A crash or an error leaves any previous file
    there intact. The file gets the permissions any new file gets (0644 under the usual
    umask 022), not the temp file's 0600."""
    path = os.fspath(path)
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except OSError as e:  # a folder in the way, say: name the file asked for
            raise type(e)(e.errno, f"cannot write {path!r}: {e.strerror}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path, text):
    """:func:`atomic_write` of a str (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text), binary=False)


@contextlib.contextmanager
def undo_new_folders(folder):
    """A block that may make ``folder`` (and parents of it): if the block fails, each of
    those that did not exist before it and is still empty is removed again, deepest
    first, so a failed run or download leaves no empty folder behind. ``folder`` None:
    nothing to watch."""
    new = [] if folder is None else [
        p for p in (pathlib.Path(folder), *pathlib.Path(folder).parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for p in new:
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        raise


def _umask():
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def temp_file(path, suffix=".tmp"):
    """(fd, name) of a new temp file next to ``path``, to be renamed onto it when complete,
    with the permissions the umask gives a new file (mkstemp alone makes it 0600).

    Its name records this host and process: a writer killed before the rename (SIGKILL,
    a power cut) cannot remove its temp file, so each call first removes those of
    ``path`` whose process on this host is gone.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    owner = f"{socket.gethostname()}-{os.getpid()}"
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        # .<name>.<host>-<pid>.<random><suffix>; mkstemp's random part has no dots.
        host, _, pid = name[len(prefix):-len(suffix)].rpartition(".")[0].rpartition("-")
        if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
    try:
        fd, name = tempfile.mkstemp(prefix=f"{prefix}{owner}.", suffix=suffix, dir=directory)
    except OSError as e:
        raise _cannot_write(path, e) from None
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o666 & ~_umask())
    return fd, name


def _cannot_write(path, e):
    """The OSError ``e`` of making a temp file next to ``path`` as one about ``path``, the
    file the caller named, not the temp file it never saw."""
    folder = os.path.dirname(path) or "."
    if not os.path.exists(folder):
        why = f"the folder {folder!r} does not exist (create it first: os.makedirs)"
    elif not os.path.isdir(folder):
        why = f"{folder!r} is not a folder"
    else:
        why = f"cannot create a file in the folder {folder!r}: {e.strerror}"
    return type(e)(e.errno, f"cannot write {path!r}: {why}")


def _alive(pid):
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows: never remove
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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
    # np.load hands back a member that is not a .npy array (a torch.save pickle) as bytes.
    bad = [key for key, value in out.items() if not isinstance(value, np.ndarray)]
    if bad:
        key = next((k for k in bad if k.endswith("data.pkl")), bad[0])
        raise ValueError(_not_an_array(path, key, out[key]))
    return out


def _not_an_array(path, key, raw):
    if key.endswith("data.pkl"):  # PyTorch's zip format: data.pkl, then data/0, data/1 ...
        return (f"scratchnet.load: entry {key!r} of {path!r} is a pickle (is this a torch.save "
                f"file?): {path!r} was written by PyTorch's torch.save, which pickles, and "
                f"scratchnet never unpickles (a pickle can run any code). In PyTorch, save "
                f"the tensors as NumPy arrays instead, np.savez(file, **{{k: v.numpy() for "
                f"k, v in state_dict.items()}}), and load that file")
    if key.endswith(".pkl") or raw.startswith(_PICKLE_MAGIC):
        return (f"scratchnet.load: entry {key!r} of {path!r} is a pickle (is this a torch.save "
                f"file?); pickled objects are refused (checkpoints are .npz files of plain "
                f"arrays)")
    return (f"scratchnet.load: {path!r} is not a valid .npz checkpoint: entry {key!r} is not "
            f"a .npy array")
