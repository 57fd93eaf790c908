"""The CuPy double itself: what it refuses, what it counts as a host sync and as an
operation (a kernel launch), and what it lets through for free (views)."""
import numpy as np
import pytest

import fakecupy as cp

pytestmark = pytest.mark.fakegpu  # the double's own tests: `-m fakegpu` runs them


def arange(n=6, dtype=np.float32):
    return cp.arange(n, dtype=dtype)


@pytest.mark.parametrize("call", [
    lambda a: np.sum(a), lambda a: np.concatenate([a, a]), lambda a: np.shape(a),
    lambda a: np.asarray(a), lambda a: np.array(a), lambda a: np.exp(a),
    lambda a: np.add(a, 1), lambda a: np.isnan(a).any(),
], ids=["sum", "concatenate", "shape", "asarray", "array", "exp", "add", "isnan"])
def test_numpy_functions_are_refused_on_device_arrays(call):
    # numpy's own message for ufuncs: the array sets __array_ufunc__ = None
    with pytest.raises(TypeError, match="fakecupy|does not support ufuncs"):
        call(arange())


@pytest.mark.parametrize("call", [
    lambda a, h: a + h, lambda a, h: h * a, lambda a, h: cp.maximum(a, h),
    lambda a, h: a.__setitem__(slice(None), h), lambda a, h: a[h.astype(np.int64)],
    lambda a, h: cp.concatenate([a, h]), lambda a, h: cp.multiply(a, 2, out=h),
], ids=["add", "radd", "maximum", "assign", "index", "concatenate", "out"])
def test_host_arrays_mixed_with_device_arrays_are_refused(call):
    a = arange()
    before = a.get()
    with pytest.raises(TypeError, match="host numpy array|device array"):
        call(a, np.ones(6, np.float32))
    np.testing.assert_array_equal(a.get(), before)


@pytest.mark.parametrize("read, name", [
    (float, "float"), (int, "int"), (bool, "bool"), (lambda a: a.item(), "item"),
    (lambda a: a.tolist(), "tolist"), (lambda a: a.get(), "get"), (cp.asnumpy, "get"),
    (lambda a: f"{a:.2f}", "format"), (repr, "repr"),
    (lambda a: cp.cuda.get_current_stream().synchronize(), "stream.synchronize"),
    (lambda a: cp.cuda.Device().synchronize(), "device.synchronize"),
])
def test_host_syncs_are_counted(read, name):
    a = arange(1).reshape(())
    with cp.counting() as c:
        read(a)
    assert c.syncs == 1 and c.sync_names[name] == 1, c
    assert c.ops == 0, c


def test_a_boolean_mask_index_is_a_sync_and_an_operation():
    a = arange()
    with cp.counting() as c:
        b = a[a > 2]
    assert c.syncs == 1 and c.ops == 2, c  # the comparison and the gather
    np.testing.assert_array_equal(b.get(), [3, 4, 5])


@pytest.mark.parametrize("work, ops", [
    (lambda a: a + 1, 1), (lambda a: a.sum(), 1), (lambda a: cp.exp(a), 1),
    (lambda a: a.astype(np.float64), 1), (lambda a: a.astype(np.float32, copy=False), 0),
    (lambda a: a.copy(), 1), (lambda a: a.__setitem__(0, 5), 1), (lambda a: a.fill(0), 1),
    (lambda a: cp.zeros(3), 1), (lambda a: cp.dot(a, a), 1), (lambda a: a.argmax(), 1),
    (lambda a: a.reshape(2, 3).T[:, 1:], 0), (lambda a: a[None, ::2], 0),
    (lambda a: cp.lib.stride_tricks.as_strided(a, (2, 2), (8, 4)), 0),
    (lambda a: cp.result_type(a, np.float64), 0), (lambda a: a.reshape(2, 3).ravel(), 0),
    (lambda a: a.reshape(2, 3).T.ravel(), 1), (lambda a: cp.asarray(a), 0),
    (lambda a: cp.asarray(np.ones(3)), 1), (lambda a: cp.ascontiguousarray(a), 0),
], ids=["add", "sum", "exp", "astype", "astype-same", "copy", "setitem", "fill", "zeros",
        "dot", "argmax", "views", "slice", "as_strided", "result_type", "ravel-view",
        "ravel-copy", "asarray-device", "asarray-host", "contiguous"])
def test_operations_are_counted_and_views_are_free(work, ops):
    a = arange()
    with cp.counting() as c:
        work(a)
    assert c.ops == ops and c.syncs == 0, c


def test_results_are_numpys_and_stay_device_arrays():
    a = arange()
    b = (a * 2 - 1).reshape(2, 3).sum(axis=1)
    assert isinstance(b, cp.ndarray) and b.dtype == np.float32
    np.testing.assert_array_equal(b.get(), (np.arange(6, dtype=np.float32) * 2 - 1)
                                  .reshape(2, 3).sum(axis=1))
    s = a.sum()
    assert isinstance(s, cp.ndarray) and s.shape == ()  # not a host scalar, as in CuPy
    a[1:3] += 10
    np.testing.assert_array_equal(a.get(), [0, 11, 12, 3, 4, 5])


def test_out_of_bounds_integer_indices_wrap_as_in_cupy():
    a = arange(3)
    np.testing.assert_array_equal(a[cp.asarray(np.array([3, -1]))].get(), [0, 2])


def test_fused_functions_count_as_one_operation():
    @cp.fuse()
    def f(x, y):
        return x * y + x - y

    a = arange()
    with cp.counting() as c:
        f(a, a)
    assert c.ops == 1, c


def test_installed_only_inside_the_block():
    import scratchnet as sn
    before = sn.backend._cupy
    with cp.installed():
        assert sn.backend._cupy is cp and sn.gpu_available()
        with sn.use_device("gpu"):
            assert sn.backend.device_module() is cp
    assert sn.backend._cupy is before


def test_an_unmarked_test_that_uses_the_double_is_named(request):
    """conftest's guard: a test that touched the double without the fakegpu mark gets an
    error naming it; a marked one, or one that never touched it, none."""
    from conftest import unmarked_use_of_the_double

    class Item:
        nodeid = "tests/test_x.py::test_y"

        def __init__(self, marked):
            self.marked = marked

        def get_closest_marker(self, name):
            return object() if self.marked and name == "fakegpu" else None

    before = cp.uses[0]
    with cp.installed():
        pass
    after = cp.uses[0]
    assert after > before
    error = unmarked_use_of_the_double(Item(False), before, after)
    assert error.startswith("tests/test_x.py::test_y used the CuPy double") and "fakegpu" in error
    assert unmarked_use_of_the_double(Item(True), before, after) is None
    assert unmarked_use_of_the_double(Item(False), after, after) is None
    arange(3).sum()  # an operation counts as a use too
    assert cp.uses[0] > after and cp.uses[1] == "sum"
    assert request.node.get_closest_marker("fakegpu") is not None  # this file's mark
