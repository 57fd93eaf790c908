"""save / load: round trips, atomic writes, refusal of pickles and broken files."""
import errno
import os
import pickle

import numpy as np
import pytest

from scratchnet import backend, io


def sample():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
        "fc.bias": rng.standard_normal(4),
        "steps": np.arange(5, dtype=np.int64),
        "lr": 0.05,
        "epoch": 7,
        "nesterov": True,
        "arch": "lenet",
    }


def test_round_trip_keeps_dtypes_and_values(tmp_path):
    path = tmp_path / "ck.npz"
    obj = sample()
    io.save(obj, path)
    out = io.load(path)
    assert list(out) == list(obj)
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            assert out[key].dtype == value.dtype
            np.testing.assert_array_equal(out[key], value)
        else:
            assert out[key].shape == ()
            assert out[key].item() == value
            assert type(out[key].item()) is type(value)
    assert out["conv.weight"].dtype == np.float32


def test_path_is_written_as_given(tmp_path):
    io.save({"a": np.ones(2)}, tmp_path / "model.ckpt")
    assert os.listdir(tmp_path) == ["model.ckpt"]
    np.testing.assert_array_equal(io.load(str(tmp_path / "model.ckpt"))["a"], np.ones(2))


def test_nested_dicts_are_flattened(tmp_path):
    io.save({"model": {"0.weight": np.ones(2)}, "optimizer": {"lr": 0.1}}, tmp_path / "c.npz")
    assert sorted(io.load(tmp_path / "c.npz")) == ["model.0.weight", "optimizer.lr"]


def test_keys_that_are_numpy_argument_names(tmp_path):
    io.save({"file": np.ones(1), "allow_pickle": np.zeros(1)}, tmp_path / "c.npz")
    assert sorted(io.load(tmp_path / "c.npz")) == ["allow_pickle", "file"]


def test_save_refuses_objects(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        io.save({"x": None}, tmp_path / "c.npz")
    with pytest.raises(TypeError):
        io.save([np.ones(2)], tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    io.save({"old": np.arange(3)}, path)
    before = path.read_bytes()
    write_array = np.lib.format.write_array
    calls = []

    def failing(fp, array, *args, **kwargs):
        calls.append(array)
        if len(calls) == 3:  # fail half-way, after two arrays reached the temp file
            raise OSError("disk full")
        return write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        io.save(sample(), path)
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_missing_folder_is_named_not_the_temp_file(tmp_path, monkeypatch, relative):
    """The error names the path the caller gave and says its folder does not exist; no
    temp file's name (.x.npz.<host>-<pid>.<random>.tmp) and nothing created."""
    monkeypatch.chdir(tmp_path)
    path = os.path.join("missing", "dir", "x.npz")
    path = path if relative else str(tmp_path / path)
    with pytest.raises(FileNotFoundError) as e:
        io.save({"a": np.ones(2)}, path)
    message = str(e.value)
    assert f"cannot write {path!r}: the folder {os.path.dirname(path)!r} does not exist" \
        in message
    assert ".tmp" not in message and e.value.errno == errno.ENOENT
    assert os.listdir(tmp_path) == []


def test_a_file_in_place_of_the_folder_is_named(tmp_path):
    (tmp_path / "notes").write_text("")
    with pytest.raises(NotADirectoryError, match=r"cannot write '.*notes/x\.npz': '.*notes' is "
                                                 r"not a folder$"):
        io.save({"a": np.ones(2)}, tmp_path / "notes" / "x.npz")
    assert os.listdir(tmp_path) == ["notes"]


def test_a_folder_in_place_of_the_file_is_named(tmp_path):
    (tmp_path / "x.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot write '.*x\.npz': "):
        io.save({"a": np.ones(2)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == ["x.npz"] and not os.listdir(tmp_path / "x.npz")


def test_interrupted_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    io.save({"old": np.arange(3)}, path)

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.save(sample(), path)
    monkeypatch.undo()
    np.testing.assert_array_equal(io.load(path)["old"], np.arange(3))
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, ok=np.ones(2), payload=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match=r"scratchnet\.load.*pickled objects are refused"):
        io.load(path)


def test_pickle_file_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": np.ones(2)}))
    with pytest.raises(ValueError, match=r"scratchnet\.load.*pickled objects are refused"):
        io.load(path)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file_names_the_path(tmp_path, keep):
    path = tmp_path / "ck.npz"
    io.save(sample(), path)
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(ValueError, match="not a valid .npz checkpoint") as info:
        io.load(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError) as info:
        io.load(path)
    assert str(path) in str(info.value)


def test_device_arrays_are_saved_as_numpy(tmp_path, device):
    xp = backend.device_module()
    io.save({"w": xp.arange(4, dtype=xp.float32)}, tmp_path / "g.npz")
    out = io.load(tmp_path / "g.npz")["w"]
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(4))
