"""Fashion-MNIST / MNIST: the real files, checks on the labels, the search order and the
download path, the latter against a local HTTP server (these tests never use the network).
"""
import gzip
import hashlib
import http.server
import os
import pathlib
import socket
import threading
import types

import numpy as np
import pytest
from conftest import require_data

from scratchnet.data import DownloadError, FashionMNIST, MNIST, content_sha256, datasets
from scratchnet.data import download_file, read_idx, write_idx

DATA = pathlib.Path(os.environ.get("SCRATCHNET_DATA", "/nonexistent"))
STEMS = datasets._FILES


def real_file(name, stem):
    """The real file of ``stem`` (.gz, or raw) of data set ``name``; without the data set
    the test skips with the reason (conftest.require_data)."""
    return datasets._existing(require_data(name), stem)


def write_set(folder, value=0, n_train=6, n_test=3, labels=None, test_labels=None):
    """The four .gz files of a tiny data set; every pixel is ``value`` (to tell sets apart)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, y in (("train", n_train, labels), ("t10k", n_test, test_labels)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.full((n, 4, 4), value, np.uint8))
        y = np.arange(n, dtype=np.uint8) % 3 if y is None else y
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    return folder


def fake_dataset(mirrors=(), sha256=None):
    return type("Fake", (datasets._IDXDataset,),
                {"name": "fake", "classes": ("a", "b", "c"), "mirrors": tuple(mirrors),
                 "sha256": sha256 or {}})


def assert_three_ways(message):
    for way in ("(1)", "root=", "SCRATCHNET_DATA", "(2)", str(datasets.REPO_CACHE / "fake"),
                "(3)", "apt install dataset-fake"):
        assert way in message


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No real copy anywhere: repo cache and Debian folder in tmp_path, no $SCRATCHNET_DATA,
    and download_file's pause between tries made instant."""
    monkeypatch.delenv("SCRATCHNET_DATA", raising=False)
    monkeypatch.setattr(datasets, "REPO_CACHE", tmp_path / "repo")
    monkeypatch.setattr(datasets, "DEBIAN_ROOT", tmp_path / "debian")
    monkeypatch.setattr(datasets, "time", types.SimpleNamespace(sleep=lambda seconds: None))


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /<name> serves www/<name>; ``cut[name]`` bytes only, with the full Content-Length
    (a connection dropped half-way); ``headers[name]`` as extra headers."""

    def do_GET(self):
        srv = self.server
        srv.hits.append(self.path)
        name = self.path.lstrip("/")
        path = srv.www / name
        if "/" in name or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for key, value in srv.headers.get(name, {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[:srv.cut.get(name, len(body))])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch, offline):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; ``url`` is its base URL."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.www = tmp_path / "www"
    httpd.www.mkdir()
    httpd.cut, httpd.headers, httpd.hits = {}, {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def served(srv, stem="a", payload=np.arange(50, dtype=np.uint8)):
    """Put ``stem``.gz (an IDX file of ``payload``) on the server; return its content hash."""
    write_idx(srv.www / f"{stem}.gz", payload)
    return content_sha256(srv.www / f"{stem}.gz")


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def real_sets():
    out = {}
    for cls in (FashionMNIST, MNIST):
        root = require_data(cls.name)
        out[cls.name] = (root, cls(train=True, download=False), cls(train=False, download=False))
    return out


@pytest.mark.parametrize("name, counts, means", [
    ("fashion-mnist", ([6000] * 10, [1000] * 10), (0.2860, 0.2868)),
    ("mnist", ([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
               [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]), (0.1307, 0.1325)),
])
def test_real_data_sets(real_sets, name, counts, means):
    root, *sets = real_sets[name]
    assert root == DATA / name or not (DATA / name).is_dir()  # $SCRATCHNET_DATA comes first
    for ds, n, count, mean in zip(sets, (60000, 10000), counts, means):
        assert ds.root == root
        assert ds.images.dtype == np.uint8 and ds.images.shape == (n, 28, 28)
        assert ds.labels.dtype == np.int64 and ds.labels.shape == (n,)
        assert len(ds) == n
        assert np.bincount(ds.labels, minlength=10).tolist() == count
        assert ds.images.mean() / 255 == pytest.approx(mean, abs=1e-4)
        x, y = ds[3]
        assert x.shape == (28, 28) and y == ds.labels[3]


def test_text_labels_and_repr(real_sets):
    test = real_sets["fashion-mnist"][2]
    assert test.text_labels([0, 9, 5]) == ["t-shirt", "ankle boot", "sandal"]
    assert repr(test).startswith("FashionMNIST(test, 10000 images")


@pytest.mark.parametrize("cls", [FashionMNIST, MNIST])
@pytest.mark.parametrize("stem", STEMS)
def test_class_checksums_match_the_real_files(cls, stem):
    assert content_sha256(real_file(cls.name, stem)) == cls.sha256[stem]


@pytest.mark.parametrize("stem", ["t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte"])
def test_recompressed_copy_has_the_same_content_hash(tmp_path, stem):
    """Debian ships the files re-compressed: other .gz bytes, same decompressed content."""
    original = real_file("fashion-mnist", stem)
    content = original.read_bytes()
    if original.suffix == ".gz":
        content = gzip.decompress(content)
    copy = tmp_path / f"{stem}.gz"
    with open(copy, "wb") as raw, gzip.GzipFile(stem, "wb", compresslevel=1, fileobj=raw,
                                                mtime=1234567890) as f:
        f.write(content)
    digest = hashlib.sha256
    assert digest(copy.read_bytes()).digest() != digest(original.read_bytes()).digest()
    assert content_sha256(copy) == content_sha256(original) == FashionMNIST.sha256[stem]
    raw = tmp_path / stem
    raw.write_bytes(content)
    assert content_sha256(raw) == FashionMNIST.sha256[stem]


def test_root_folder(tmp_path, offline):
    folder = write_set(tmp_path / "set", value=7)
    train = FashionMNIST(root=folder, download=False)
    test = FashionMNIST(root=folder, train=False, download=False)
    assert train.root == folder
    assert train.images.shape == (6, 4, 4) and (train.images == 7).all()
    assert train.labels.dtype == np.int64 and train.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert len(test) == 3


def test_root_folder_with_raw_files(tmp_path, offline):
    folder = write_set(tmp_path / "set", value=7)
    for stem in STEMS:
        gz = folder / f"{stem}.gz"
        (folder / stem).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert (FashionMNIST(root=folder, download=False).images == 7).all()


def test_incomplete_root_names_the_missing_files(tmp_path, offline):
    folder = write_set(tmp_path / "set")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        FashionMNIST(root=folder)


def test_label_count_differs_from_image_count(tmp_path, offline):
    folder = write_set(tmp_path / "set", n_train=6, labels=np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        FashionMNIST(root=folder)


@pytest.mark.parametrize("labels, bad", [(np.array([0, 1, 10, 2], np.uint8), 10),
                                         (np.array([0, 1, 255, 2], np.uint8), 255),
                                         (np.array([0, -1, 2, 3], np.int8), -1)])
def test_labels_out_of_range(tmp_path, offline, labels, bad):
    folder = write_set(tmp_path / "set", n_train=4, labels=labels)
    with pytest.raises(ValueError, match=rf"label {bad} outside \[0, 10\)"):
        FashionMNIST(root=folder)


def test_images_must_be_three_dimensional(tmp_path, offline):
    folder = write_set(tmp_path / "set")
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((6, 16), np.uint8))
    with pytest.raises(ValueError, match=r"expected images \(N, H, W\)"):
        FashionMNIST(root=folder)


def test_search_order(tmp_path, offline, monkeypatch):
    """root, then $SCRATCHNET_DATA/<name>, then the repo cache, then the Debian folder."""
    root = write_set(tmp_path / "root", value=1)
    env = tmp_path / "env"
    write_set(env / "fake", value=2)
    write_set(datasets.REPO_CACHE / "fake", value=3)
    write_set(datasets.DEBIAN_ROOT / "fake", value=4)
    monkeypatch.setenv("SCRATCHNET_DATA", str(env))
    Fake = fake_dataset()
    # A root given is the only place looked at (as the folder or as its parent).
    assert datasets.candidate_roots(Fake, root) == [root, root / "fake"]
    assert datasets.candidate_roots(Fake) == [
        env / "fake", datasets.REPO_CACHE / "fake", datasets.DEBIAN_ROOT / "fake"]

    def loaded(**kw):
        ds = Fake(download=False, **kw)
        return int(ds.images[0, 0, 0])

    assert loaded(root=root) == 1
    assert loaded() == 2
    (env / "fake" / "t10k-images-idx3-ubyte.gz").unlink()  # an incomplete copy is skipped
    assert loaded() == 3
    monkeypatch.delenv("SCRATCHNET_DATA")
    assert loaded() == 3
    (datasets.REPO_CACHE / "fake" / "train-labels-idx1-ubyte.gz").unlink()
    assert loaded() == 4


def test_offline_without_download(offline):
    with pytest.raises(FileNotFoundError, match="download=False") as e:
        fake_dataset(mirrors=["http://127.0.0.1:9/"])(download=False)
    assert_three_ways(str(e.value))
    assert not datasets.REPO_CACHE.exists()


def test_download_fails_404(server):
    Fake = fake_dataset(mirrors=[server.url])
    with pytest.raises(DownloadError, match="404") as e:
        Fake()
    assert_three_ways(str(e.value))
    assert set(server.hits) == {"/train-images-idx3-ubyte.gz"}
    assert leftovers(datasets.REPO_CACHE / "fake") == []


def test_download_fails_connection_refused(offline):
    Fake = fake_dataset(mirrors=[f"http://127.0.0.1:{closed_port()}/"])
    with pytest.raises(DownloadError, match="after 3 tries") as e:
        Fake()
    assert_three_ways(str(e.value))
    assert leftovers(datasets.REPO_CACHE / "fake") == []


def test_download_a_data_set(server):
    write_set(server.www, value=5)
    sha = {stem: content_sha256(server.www / f"{stem}.gz") for stem in STEMS}
    Fake = fake_dataset(mirrors=[server.url], sha256=sha)
    ds = Fake()
    cache = datasets.REPO_CACHE / "fake"
    assert ds.root == cache and (ds.images == 5).all()
    assert leftovers(cache) == sorted(f"{stem}.gz" for stem in STEMS)
    for stem in STEMS:
        assert (cache / f"{stem}.gz").read_bytes() == (server.www / f"{stem}.gz").read_bytes()
    assert sorted(server.hits) == sorted(f"/{stem}.gz" for stem in STEMS)
    Fake(train=False)  # found in the cache: nothing fetched again
    assert len(server.hits) == 4


def test_download_file(server, tmp_path):
    sha = served(server)
    path = download_file(fake_dataset(sha256={"a": sha}), "a", tmp_path / "cache",
                         mirrors=[server.url], retries=2, progress=False)
    assert path == tmp_path / "cache" / "a.gz"
    assert leftovers(tmp_path / "cache") == ["a.gz"]
    assert path.read_bytes() == (server.www / "a.gz").read_bytes()


def test_connection_dropped_half_way(server, tmp_path):
    payload = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8)
    Fake = fake_dataset(sha256={"a": served(server, payload=payload)})
    size = (server.www / "a.gz").stat().st_size
    server.cut["a.gz"] = size // 2
    target = tmp_path / "cache"
    with pytest.raises(DownloadError, match="after 2 tries"):
        download_file(Fake, "a", target, mirrors=[server.url], retries=2, progress=False)
    assert server.hits == ["/a.gz", "/a.gz"]
    assert leftovers(target) == []
    del server.cut["a.gz"]
    path = download_file(Fake, "a", target, mirrors=[server.url], retries=2, progress=False)
    assert leftovers(target) == ["a.gz"]
    np.testing.assert_array_equal(read_idx(path), payload)


def test_checksum_mismatch(server, tmp_path):
    actual = served(server)
    expected = "0" * 64
    with pytest.raises(DownloadError, match="checksum mismatch") as e:
        download_file(fake_dataset(sha256={"a": expected}), "a", tmp_path / "cache",
                      mirrors=[server.url], retries=3, progress=False)
    assert expected in str(e.value) and actual in str(e.value)
    assert server.hits == ["/a.gz"]  # the same mirror would serve the same bytes: no retry
    assert leftovers(tmp_path / "cache") == []


def test_mirror_fallback(server, tmp_path):
    sha = served(server)
    path = download_file(fake_dataset(sha256={"a": sha}), "a", tmp_path / "cache",
                         mirrors=[server.url + "missing/", server.url], retries=2,
                         progress=False)
    assert server.hits[0] == "/missing/a.gz" and server.hits[-1] == "/a.gz"
    assert leftovers(tmp_path / "cache") == ["a.gz"]
    assert content_sha256(path) == sha


@pytest.fixture(scope="module")
def fashion_mnist_root():
    """Found before (module scope) the function-scoped ``offline`` hides every copy."""
    return require_data("fashion-mnist")


def test_recompressed_copy_passes_the_download_check(fashion_mnist_root, server, tmp_path):
    stem = "t10k-labels-idx1-ubyte"
    original = datasets._existing(fashion_mnist_root, stem)
    content = original.read_bytes()
    if original.suffix == ".gz":
        content = gzip.decompress(content)
    (server.www / f"{stem}.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    path = download_file(FashionMNIST, stem, tmp_path / "cache", mirrors=[server.url],
                         retries=1, progress=False)
    assert content_sha256(path) == FashionMNIST.sha256[stem]


def test_server_that_labels_the_gz_with_content_encoding(server, tmp_path):
    """Some servers send a .gz with Content-Encoding: gzip; the file must be kept as sent."""
    sha = served(server)
    server.headers["a.gz"] = {"Content-Encoding": "gzip"}
    path = download_file(fake_dataset(sha256={"a": sha}), "a", tmp_path / "cache",
                         mirrors=[server.url], retries=1, progress=False)
    assert path.read_bytes() == (server.www / "a.gz").read_bytes()


def test_corrupt_gzip_download(server, tmp_path):
    write_idx(tmp_path / "a", np.arange(5000, dtype=np.int32))
    sha = content_sha256(tmp_path / "a")
    blob = bytearray(gzip.compress((tmp_path / "a").read_bytes()))
    blob[10] = 0xFF  # the first deflate block, of an invalid type: zlib.error while hashing
    (server.www / "a.gz").write_bytes(bytes(blob))
    with pytest.raises(DownloadError, match="after 2 tries"):
        download_file(fake_dataset(sha256={"a": sha}), "a", tmp_path / "cache",
                      mirrors=[server.url], retries=2, progress=False)
    assert leftovers(tmp_path / "cache") == []


def test_root_and_scratchnet_data_take_the_folder_or_its_parent(tmp_path, offline, monkeypatch):
    """--data-dir (root) and $SCRATCHNET_DATA each take the folder of IDX files or the
    folder holding <name>/; $SCRATCHNET_DATA's own folder counts only when it is named
    after the data set (MNIST and Fashion-MNIST files share their names)."""
    monkeypatch.delenv("SCRATCHNET_DATA", raising=False)
    Fake = fake_dataset()
    files = write_set(tmp_path / "parent" / "fake", value=5)
    for root in (files, files.parent, str(files.parent)):
        assert int(Fake(root=root, download=False).images[0, 0, 0]) == 5
    for env in (files, files.parent):
        monkeypatch.setenv("SCRATCHNET_DATA", str(env))
        assert int(Fake(download=False).images[0, 0, 0]) == 5
    other = write_set(tmp_path / "elsewhere", value=6)  # not named "fake": not this set
    monkeypatch.setenv("SCRATCHNET_DATA", str(other))
    assert other not in datasets.candidate_roots(Fake)


def test_a_root_without_the_files_is_named_in_one_line(tmp_path, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as e:
        fake_dataset()(root=empty)
    message = str(e.value)
    assert "\n" not in message and str(empty) in message and "fake/" in message
    assert "train-images-idx3-ubyte" in message
    assert not (empty / "fake").exists() and not datasets.REPO_CACHE.exists()


def test_a_failed_download_leaves_no_empty_folder(offline):
    with pytest.raises(datasets.DownloadError):
        fake_dataset(mirrors=["http://127.0.0.1:9/"])()
    assert not datasets.REPO_CACHE.exists()
