"""torch.save / torch.load (scratchnet/serialization.py): the structures d2l's read-write
section saves come back as they went in, printed as PyTorch prints what its torch.load
gives back; files are .npz, never pickles, written whole or not at all."""
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

import scratchnet as sn
from scratchnet import io, nn
from scratchnet.serialization import STRUCTURE


def round_trip(obj, tmp_path, name="f"):
    path = tmp_path / name
    sn.save(obj, path)
    return sn.load(path)


def torch_round_trip(obj, tmp_path):
    path = tmp_path / "torch-file"
    torch.save(obj, path)
    return torch.load(path, weights_only=False)


def test_the_read_write_sections_cells_print_as_pytorchs(tmp_path):
    """x, [x, y] and {'x': x, 'y': y}: each loaded back prints what PyTorch's does."""
    os.chdir(tmp_path)
    x, y = sn.arange(4), sn.zeros(4)
    tx, ty = torch.arange(4), torch.zeros(4)
    cases = [(x, tx), ([x, y], [tx, ty]), ({"x": x, "y": y}, {"x": tx, "y": ty})]
    for ours, theirs in cases:
        sn.save(ours, "x-file")
        torch.save(theirs, "t-file")
        assert repr(sn.load("x-file")) == repr(torch.load("t-file"))
    assert sorted(os.listdir(tmp_path)) == ["t-file", "x-file"]  # names as given


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.uint8,
                                   np.bool_])
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (3,), (2, 3, 4)])
def test_tensors_keep_dtype_shape_and_values(tmp_path, dtype, shape):
    a = np.asarray(np.arange(int(np.prod(shape))).reshape(shape) % 3).astype(dtype)
    back = round_trip(sn.tensor(a), tmp_path)
    assert isinstance(back, sn.Tensor) and not back.requires_grad
    assert back.dtype == dtype and back.shape == shape
    np.testing.assert_array_equal(sn.to_numpy(back), a)
    expect = torch_round_trip(torch.from_numpy(a.copy()), tmp_path)
    assert repr(back) == repr(expect)


def test_nested_structures_come_back_with_their_types(tmp_path):
    x = sn.tensor([[1.5, -2.0]], requires_grad=True)
    obj = {"model": OrderedDict([("0.weight", sn.ones(2, 3)), ("0.bias", sn.zeros(2))]),
           "steps": [sn.arange(3), (sn.tensor(2.5), np.arange(2, dtype=np.int16))],
           "shape": sn.Size([2, 3]), "lr": 0.1, "epoch": 3, "nesterov": False,
           "name": "mlp", "none": None, 7: "an int key", "empty": [], "nothing": {},
           "np_scalar": np.float32(0.25), "leaf": x}
    back = round_trip(obj, tmp_path)
    assert list(back) == list(obj) and type(back) is dict
    assert type(back["model"]) is OrderedDict and list(back["model"]) == ["0.weight", "0.bias"]
    assert type(back["steps"]) is list and type(back["steps"][1]) is tuple
    assert isinstance(back["steps"][1][1], np.ndarray) and back["steps"][1][1].dtype == np.int16
    assert type(back["shape"]) is sn.Size and back["shape"] == (2, 3)
    assert (back["lr"], back["epoch"], back["nesterov"], back["name"], back["none"],
            back[7], back["empty"], back["nothing"]) == (0.1, 3, False, "mlp", None,
                                                         "an int key", [], {})
    assert type(back["epoch"]) is int and type(back["lr"]) is float
    assert type(back["np_scalar"]) is np.float32 and back["np_scalar"] == 0.25
    assert back["leaf"].requires_grad and back["leaf"].is_leaf
    np.testing.assert_array_equal(sn.to_numpy(back["leaf"]), [[1.5, -2.0]])
    assert repr(back["steps"]) == repr(torch_round_trip(
        [torch.arange(3), (torch.tensor(2.5), np.arange(2, dtype=np.int16))], tmp_path))


def test_members_are_named_by_where_they_sit_and_read_by_numpy(tmp_path):
    path = tmp_path / "f"
    sn.save({"x": sn.arange(2), "ys": [sn.ones(1)], "x.y": sn.zeros(1), "x~": {"y": 1}},
            path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted([f"{STRUCTURE}.npy", "x.npy", "ys.0.npy",
                                               "x.y.npy", "x~.y.npy"])
    with np.load(path, allow_pickle=False) as npz:  # a plain .npz: no pickle anywhere
        np.testing.assert_array_equal(npz["ys.0"], [1.0])
    assert sn.load(path)["x~"] == {"y": 1}


def test_a_flat_dict_reads_with_io_load_as_the_trainers_checkpoints_do(tmp_path):
    """Numbers and strings are members too: a checkpoint edited with load and save stays
    a Trainer checkpoint (io.load reads it)."""
    sn.save({"epoch": 3, "lr": 0.5, "rng": '{"state": 1}', "w": sn.ones(2), "big": 2 ** 70,
             "none": None}, tmp_path / "ck")
    flat = io.load(tmp_path / "ck")
    assert sorted(flat) == sorted([STRUCTURE, "epoch", "lr", "rng", "w"])
    assert (int(flat["epoch"]), float(flat["lr"]), str(flat["rng"])) == (3, 0.5, '{"state": 1}')
    back = sn.load(tmp_path / "ck")
    assert (back["big"], back["none"], type(back["rng"])) == (2 ** 70, None, str)


def test_names_that_clash_after_joining_stay_apart(tmp_path):
    obj = {"a.b": sn.tensor([1.0]), "a": {"b": sn.tensor([2.0])}, STRUCTURE: sn.tensor([3])}
    back = round_trip(obj, tmp_path)
    assert float(back["a.b"]) == 1.0 and float(back["a"]["b"]) == 2.0
    assert int(back[STRUCTURE]) == 3


def test_a_parameter_comes_back_as_a_parameter(tmp_path):
    p = nn.Linear(3, 2).weight
    back = round_trip(p, tmp_path)
    assert isinstance(back, nn.Parameter)
    np.testing.assert_array_equal(sn.to_numpy(back.array), sn.to_numpy(p.array))


def test_a_state_dict_loads_back_into_a_clone(tmp_path):
    """read-write's MLP: torch.save(net.state_dict()), clone.load_state_dict(torch.load)."""
    sn.manual_seed(0)
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(3))
    X = sn.rand(2, 5)
    Y = net(X)
    sn.save(net.state_dict(), tmp_path / "mlp.params")
    state = sn.load(tmp_path / "mlp.params")
    assert type(state) is OrderedDict and all(isinstance(v, sn.Tensor) for v in state.values())
    clone = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(3))
    clone.load_state_dict(state)
    clone.eval()
    np.testing.assert_array_equal(sn.to_numpy(clone(X)), sn.to_numpy(Y))
    for k, v in clone.state_dict().items():  # copied in, not aliased to the loaded dict
        assert not np.shares_memory(sn.to_numpy(v.array), sn.to_numpy(state[k].array))


def test_tensors_load_on_the_active_device(tmp_path, device):
    t = sn.arange(6).reshape(2, 3) * 1.5
    back = round_trip({"t": t}, tmp_path)["t"]
    assert back.device == t.device and back.dtype == np.float32
    np.testing.assert_array_equal(sn.to_numpy(back), sn.to_numpy(t))


def test_an_npz_without_structure_loads_as_a_dict_of_arrays(tmp_path):
    """np.savez files and Trainer checkpoints (io.save): their arrays by name, as before."""
    np.savez(tmp_path / "a.npz", w=np.ones(2, np.float32), b=np.arange(3))
    io.save({"step": 3, "w": np.zeros(1)}, tmp_path / "ck")
    for name, keys in (("a.npz", ["b", "w"]), ("ck", ["step", "w"])):
        back = sn.load(tmp_path / name)
        assert sorted(back) == keys and all(isinstance(v, np.ndarray) for v in back.values())


@pytest.mark.parametrize("obj, what", [
    ({1, 2}, "cannot save the object, a set"),
    (nn.Linear(2, 1), r"cannot save the object, a Linear: .* \(save a model's state_dict\(\) "
                      r"instead\)"),
    ({"f": print}, r"cannot save the entry \['f'\], a builtin_function_or_method"),
    ([sn.ones(1), np.array([None])], r"the entry \[1\] is an array of Python objects, which "
                                     r"would need pickle"),
    ({(1, 2): sn.ones(1)}, r"the object has a key of type tuple \(\(1, 2\)\); dict keys "
                           r"must be"),
    ({"l": nn.LazyLinear(2).weight}, r"the entry \['l'\] is an uninitialized parameter"),
    (torch.ones(2), r"got a torch.Tensor as the object"),
    (b"bytes", "cannot save the object, a bytes"),
])
def test_unsupported_objects_are_refused_by_name_and_nothing_is_written(tmp_path, obj, what):
    with pytest.raises(TypeError, match="^torch.save: " + what):
        sn.save(obj, tmp_path / "f")
    assert os.listdir(tmp_path) == []


def test_a_structure_holding_itself_is_refused(tmp_path):
    loop = [sn.ones(1)]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"torch.save: the entry \[1\] contains itself"):
        sn.save(loop, tmp_path / "f")
    assert os.listdir(tmp_path) == []


def test_a_failed_save_keeps_the_previous_file(tmp_path):
    sn.save(sn.arange(3), tmp_path / "f")
    before = (tmp_path / "f").read_bytes()
    with pytest.raises(TypeError):
        sn.save([sn.ones(2), {3}], tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == before and os.listdir(tmp_path) == ["f"]


def test_open_files_are_refused_with_the_reason(tmp_path):
    with open(tmp_path / "f", "wb") as f, pytest.raises(TypeError, match="file name"):
        sn.save(sn.ones(1), f)
    with open(tmp_path / "f", "rb") as f, pytest.raises(TypeError, match="file name"):
        sn.load(f)


def test_a_file_of_pytorchs_torch_save_is_refused_saying_what_it_is(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"was written by PyTorch's torch.save, which "
                                         r"pickles, and scratchnet never unpickles"):
        sn.load(tmp_path / "t.pt")


def test_a_broken_structure_is_refused(tmp_path):
    io.save({STRUCTURE: '{"tensor": "missing"}', "x": np.ones(1)}, tmp_path / "f")
    with pytest.raises(ValueError, match="is not a valid file of torch.save"):
        sn.load(tmp_path / "f")


def test_weights_only_is_accepted_as_in_pytorch(tmp_path):
    sn.save([sn.ones(1)], tmp_path / "f")
    assert float(sn.load(tmp_path / "f", weights_only=True)[0]) == 1.0
