"""Fashion-MNIST and MNIST: find the four official IDX files, or download them.

Where a data set is looked for, in order:
  1. ``root`` if given: the folder holding the four files, or the folder holding
     ``<name>/`` (so one path serves both spellings; nothing else is searched then),
  2. ``$SCRATCHNET_DATA/<name>/`` (or ``$SCRATCHNET_DATA`` itself when that folder is
     named ``<name>``),
  3. this repository's ``datasets/<name>/`` cache,
  4. Debian's ``/usr/share/datasets/<name>/`` (package dataset-fashion-mnist),
  5. the network: streamed with a timeout and retries over a mirror list, checked
     by the SHA-256 of the decompressed content (so a re-compressed copy such as
     Debian's passes), written atomically into ``datasets/<name>/``.
"""
import gzip
import hashlib
import os
import pathlib
import time
import zlib

import numpy as np
from tqdm import tqdm

from ..io import temp_file, undo_new_folders
from .idx import read_idx

REPO_CACHE = pathlib.Path(__file__).resolve().parents[2] / "datasets"
DEBIAN_ROOT = pathlib.Path("/usr/share/datasets")

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DownloadError(RuntimeError):
    """No copy of the data set could be found or fetched."""


class _IDXDataset:
    """``images`` uint8 (N, 28, 28), ``labels`` int64 (N,), ``classes`` the names."""

    name = ""
    classes = ()
    mirrors = ()
    sha256 = {}

    def __init__(self, root=None, train=True, download=True):
        self.train = train
        self.root = find_or_download(self, root, download)
        prefix = "train" if train else "t10k"
        self.images = read_idx(_existing(self.root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_existing(self.root, f"{prefix}-labels-idx1-ubyte"))
        if self.images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"{self.name}: expected images (N, H, W) and labels (N,), got "
                             f"{self.images.shape} and {labels.shape} in {self.root}")
        # DataLoader scales by 1/255 and indexes classes by label: other types would
        # train on wrong inputs or truncated labels without a word.
        if self.images.dtype != np.uint8 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{self.name}: expected uint8 images and integer labels, got "
                             f"{self.images.dtype} and {labels.dtype} in {self.root}")
        if len(labels) != len(self.images):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(labels)} labels "
                             f"in {self.root}")
        bad = labels[(labels < 0) | (labels >= len(self.classes))]
        if bad.size:
            raise ValueError(f"{self.name}: label {int(bad[0])} outside [0, "
                             f"{len(self.classes)}) in {self.root}")
        self.labels = labels.astype(np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    def text_labels(self, indices):
        return [self.classes[int(i)] for i in indices]

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"{type(self).__name__}({split}, {len(self)} images, root={self.root})"


class FashionMNIST(_IDXDataset):
    name = "fashion-mnist"
    classes = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")
    sha256 = {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }


class MNIST(_IDXDataset):
    name = "mnist"
    classes = tuple(str(i) for i in range(10))
    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/")
    sha256 = {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }


def _existing(folder, stem):
    """The file for ``stem`` in folder: gzip-compressed or raw, or None."""
    for name in (stem + ".gz", stem):
        p = pathlib.Path(folder) / name
        if p.is_file():
            return p
    return None


def _complete(folder):
    return folder is not None and all(_existing(folder, s) for s in _FILES)


def _either(folder, name):
    """``folder`` itself and ``folder/name``: a path to the IDX files or to their parent."""
    folder = pathlib.Path(folder)
    return [folder, folder / name]


def candidate_roots(dataset, root=None):
    """The folders searched, in order (see the module docstring)."""
    if root is not None:
        return _either(root, dataset.name)
    out = []
    env = os.environ.get("SCRATCHNET_DATA")
    if env:
        env = pathlib.Path(env)
        out += _either(env, dataset.name) if env.name == dataset.name else [env / dataset.name]
    out.append(REPO_CACHE / dataset.name)
    out.append(DEBIAN_ROOT / dataset.name)
    return out


def find_or_download(dataset, root=None, download=True):
    for folder in candidate_roots(dataset, root):
        if _complete(folder):
            return folder
    if root is not None:  # the user named a folder: never look or download elsewhere
        missing = [s for s in _FILES if not _existing(root, s)]
        raise FileNotFoundError(f"{dataset.name}: {root} holds neither the four IDX files "
                                f"(missing: {', '.join(missing)}; .gz or raw) nor a "
                                f"{dataset.name}/ folder with them")
    target = REPO_CACHE / dataset.name
    if not download:
        raise FileNotFoundError(_missing_message(dataset, "download=False"))
    try:
        with undo_new_folders(target):  # a failed download leaves no empty folder behind
            for stem in _FILES:
                if not _existing(target, stem):
                    download_file(dataset, stem, target)
    except DownloadError as e:
        raise DownloadError(_missing_message(dataset, str(e))) from None
    return target


def _missing_message(dataset, why):
    return (f"{dataset.name} not found and not downloaded ({why}). Provide it in one of three "
            f"ways: (1) pass root=<folder with the four IDX files, or holding "
            f"{dataset.name}/>, or set SCRATCHNET_DATA=<folder holding {dataset.name}/>; "
            f"(2) put the files in "
            f"{REPO_CACHE / dataset.name}; (3) on Debian/Ubuntu, "
            f"'apt install dataset-{dataset.name}' (files in {DEBIAN_ROOT / dataset.name}). "
            f"Searched: {', '.join(map(str, candidate_roots(dataset)))}")


def content_sha256(path):
    """SHA-256 of the decompressed content of a .gz file (or of a raw file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    with (gzip.open if gz else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(dataset, stem, target, mirrors=None, retries=3, timeout=30.0, progress=True):
    """Fetch ``stem``.gz from the mirrors into ``target``; returns the final path.

    The file is streamed into a temp file in ``target``, its decompressed
    content hashed, and only then renamed into place: a broken download or a
    checksum mismatch leaves nothing behind.
    """
    import requests
    from urllib3.exceptions import HTTPError as URLLib3Error

    target = pathlib.Path(target)
    target.mkdir(parents=True, exist_ok=True)
    final = target / f"{stem}.gz"
    errors = {}  # url -> the last error, kept short: one line per mirror in the message
    for base in mirrors or dataset.mirrors:
        url = base + f"{stem}.gz"
        for attempt in range(retries):
            fd, tmp = temp_file(final, ".part")
            try:
                with os.fdopen(fd, "wb") as f, requests.get(url, stream=True,
                                                            timeout=timeout) as r:
                    r.raise_for_status()
                    total = int(r.headers.get("content-length", 0)) or None
                    bar = tqdm(total=total, desc=f"{dataset.name}/{stem}.gz", unit="B",
                               unit_scale=True, leave=False, disable=not progress)
                    got = 0
                    # The raw bytes, as sent: a server that labels the .gz with
                    # Content-Encoding: gzip must not have it decoded on the way
                    # (Content-Length counts the compressed bytes).
                    for chunk in r.raw.stream(1 << 16, decode_content=False):
                        f.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                    bar.close()
                    if total is not None and got != total:
                        raise OSError(f"connection closed after {got} of {total} bytes")
                    f.flush()
                    os.fsync(f.fileno())
                digest = content_sha256(tmp)
                expected = dataset.sha256.get(stem)
                if expected and digest != expected:
                    errors[url] = f"checksum mismatch: expected sha256 {expected}, got {digest}"
                    break  # the same mirror would serve the same bytes again
                os.replace(tmp, final)
                return final
            except (requests.RequestException, URLLib3Error, OSError, EOFError, ValueError,
                    zlib.error) as e:
                errors[url] = f"{type(e).__name__} after {attempt + 1} tries: {str(e)[:160]}"
                status = getattr(getattr(e, "response", None), "status_code", None)
                if status is not None and 400 <= status < 500:
                    break  # not found or forbidden: asking again will not help
                time.sleep(min(0.5 * 2 ** attempt, 4.0) if attempt + 1 < retries else 0)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
    raise DownloadError("; ".join(f"{url}: {why}" for url, why in errors.items()))

