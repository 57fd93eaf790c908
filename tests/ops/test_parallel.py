"""ops.parallel and ops.workspace: chunking, threads, reused memory.

The model-sized tests elsewhere use tiny shapes, which run as one chunk on the
caller. Here the chunk size is forced down so that every path (several chunks,
several threads, a last chunk of another size) runs, and is checked against
one-chunk results, PyTorch and finite differences.
"""
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_info

import scratchnet as sn
from helpers import assert_equal, dev
from scratchnet import nn
from scratchnet.gradcheck import numerical_gradient, rel_error
from scratchnet.ops import (conv2d, conv2d_backward, linear, linear_backward, parallel,
                            workspace)


@pytest.fixture
def threads():
    """Restore the thread count and the chunk limits after a test changes them."""
    saved = (parallel.get_num_threads(), parallel.CHUNK_BYTES, parallel.MIN_PARALLEL_BYTES)
    yield
    parallel.set_num_threads(saved[0])
    parallel.CHUNK_BYTES, parallel.MIN_PARALLEL_BYTES = saved[1:]


def force_chunks(n_threads, chunk_bytes=1):
    """Every op splits into chunks of one item (chunk_bytes=1), on n_threads threads."""
    parallel.set_num_threads(n_threads)
    parallel.CHUNK_BYTES = chunk_bytes
    parallel.MIN_PARALLEL_BYTES = 0


@pytest.mark.parametrize("n, per_item, threads_", [
    (1, 10, 2), (5, 1, 2), (7, 1, 3), (128, 78400, 2), (32, 10 ** 9, 2), (10, 1 << 20, 1),
    (3, 1, 4)])
def test_chunks_cover_the_range_in_balanced_pieces(threads, n, per_item, threads_):
    parallel.CHUNK_BYTES = 1 << 22
    parts = parallel.chunks(n, per_item, threads_)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(parts, parts[1:]))  # contiguous
    sizes = [b - a for a, b in parts]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    # Each chunk stays under the byte limit unless one item alone is larger.
    assert max(sizes) * per_item <= max(parallel.CHUNK_BYTES, per_item)
    if n >= threads_:
        assert len(parts) % threads_ == 0  # every thread gets the same number of chunks


def test_results_come_back_in_chunk_order_from_all_threads(threads):
    force_chunks(3)
    names = set()

    def work(a, b):
        names.add(threading.current_thread().name)
        return list(range(a, b))

    out = parallel.parallel_for(10, 1, work)
    assert [i for part in out for i in part] == list(range(10))
    # The caller and the pool (which may hand two tasks to one idle thread).
    assert threading.current_thread().name in names and len(names) >= 2


def test_one_thread_runs_everything_on_the_caller(threads):
    force_chunks(1)
    names = set()
    out = parallel.parallel_for(6, 1, lambda a, b: names.add(threading.current_thread().name))
    assert len(out) == 6 and names == {threading.current_thread().name}


def test_small_work_stays_on_the_caller(threads):
    parallel.set_num_threads(2)
    parallel.MIN_PARALLEL_BYTES = 1 << 20
    names = set()
    parallel.parallel_for(100, 1000, lambda a, b: names.add(threading.current_thread().name))
    assert names == {threading.current_thread().name}


def test_a_worker_exception_reaches_the_caller_after_all_chunks_ran(threads):
    force_chunks(2)
    done = []

    def work(a, b):
        if a == 1:
            raise ValueError("chunk 1 failed")
        done.append(a)

    blas_before = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    with pytest.raises(ValueError, match="chunk 1 failed"):
        parallel.parallel_for(6, 1, work)
    # The caller's chunks (0, 2, 4) all ran; the failing thread stopped at its failure.
    assert sorted(done) == [0, 2, 4]
    # BLAS got its threads back even though a chunk failed.
    assert [d["num_threads"] for d in threadpool_info()
            if d["user_api"] == "blas"] == blas_before


def test_blas_runs_on_one_thread_inside_and_gets_its_threads_back(threads):
    force_chunks(2)
    before = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    inside = parallel.parallel_for(
        2, 1, lambda a, b: [d["num_threads"] for d in threadpool_info()
                            if d["user_api"] == "blas"])
    assert all(n == 1 for part in inside for n in part)
    assert [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"] == before


def test_nested_parallel_for_runs_inline(threads):
    force_chunks(2)
    outer = threading.current_thread().name

    def work(a, b):
        me = threading.current_thread().name
        inner = parallel.parallel_for(4, 1, lambda c, d: threading.current_thread().name)
        return all(name == me for name in inner)

    assert all(parallel.parallel_for(4, 1, work))
    assert threading.current_thread().name == outer


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_rejects_bad_values(threads, bad):
    before = parallel.get_num_threads()
    with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
        sn.set_num_threads(bad)
    assert parallel.get_num_threads() == before


def test_num_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv("SCRATCHNET_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    monkeypatch.setenv("SCRATCHNET_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="SCRATCHNET_NUM_THREADS: expected a positive integer"):
        parallel._default_threads()
    monkeypatch.delenv("SCRATCHNET_NUM_THREADS")
    assert parallel._default_threads() >= 1


CONV_CASES = [  # x shape, W shape, stride, pads, dilation
    ((5, 3, 9, 8), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((7, 2, 10, 10), (3, 2, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    ((3, 4, 11, 9), (6, 4, 3, 2), (2, 1), (1, 0, 0, 1), (1, 2)),
    ((4, 1, 12, 12), (2, 1, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),
]


def conv_all(x, W, b, stride, pads, dilation, gy, need_gx=True):
    y, saved = conv2d(x, W, b, stride, pads, dilation)
    return (y,) + conv2d_backward(gy, saved, W, x.shape, stride, pads, dilation, need_gx)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("x_shape, W_shape, stride, pads, dilation", CONV_CASES, ids=str)
def test_chunked_convolution_equals_one_chunk(threads, n_threads, x_shape, W_shape, stride,
                                              pads, dilation):
    rs = np.random.default_rng(0)
    x, W, b = rs.standard_normal(x_shape), rs.standard_normal(W_shape), rs.standard_normal(
        W_shape[0])
    y = conv2d(x, W, b, stride, pads, dilation)[0]
    gy = rs.standard_normal(y.shape)
    whole = conv_all(x, W, b, stride, pads, dilation, gy)  # small: one chunk
    force_chunks(n_threads)
    chunked = conv_all(x, W, b, stride, pads, dilation, gy)
    again = conv_all(x, W, b, stride, pads, dilation, gy)
    for a, c, d in zip(whole, chunked, again):
        assert rel_error(c, a) <= 1e-13
        assert np.array_equal(c, d)  # the same bits run after run
    # and against PyTorch, chunked, in float32 too
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        xt, Wt, bt = (torch.tensor(a.astype(dtype), requires_grad=True) for a in (x, W, b))
        yt = F.conv2d(F.pad(xt, (pads[2], pads[3], pads[0], pads[1])), Wt, bt, stride,
                      dilation=dilation)
        yt.backward(torch.from_numpy(gy.astype(dtype)))
        ours = conv_all(*(a.astype(dtype) for a in (x, W, b)), stride, pads, dilation,
                        gy.astype(dtype))
        for o, t in zip(ours, (yt, xt.grad, Wt.grad, bt.grad)):
            assert o.dtype == dtype
            assert rel_error(o, t.detach().numpy()) <= tol


def test_chunked_convolution_by_finite_differences(threads):
    force_chunks(2)
    rs = np.random.default_rng(1)
    x, W, b = rs.standard_normal((3, 2, 6, 5)), rs.standard_normal((3, 2, 3, 3)), \
        rs.standard_normal(3)
    y, saved = conv2d(x, W, b, (1, 1), (1, 1, 1, 1))
    gy = rs.standard_normal(y.shape)
    gx, gW, gb = conv2d_backward(gy, saved, W, x.shape, (1, 1), (1, 1, 1, 1))

    def loss():
        return (conv2d(x, W, b, (1, 1), (1, 1, 1, 1))[0] * gy).sum()

    for arr, grad in ((x, gx), (W, gW), (b, gb)):
        assert rel_error(grad, numerical_gradient(loss, arr)) <= 1e-7


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_chunked_linear_equals_one_chunk_and_torch(threads, n_threads):
    rs = np.random.default_rng(2)
    x, W, b = rs.standard_normal((6, 9)), rs.standard_normal((7, 9)), rs.standard_normal(7)
    gy = rs.standard_normal((6, 7))
    whole = (linear(x, W, b),) + linear_backward(gy, x, W)
    force_chunks(n_threads)  # one output feature per chunk
    chunked = (linear(x, W, b),) + linear_backward(gy, x, W)
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    yt = F.linear(xt, Wt, bt)
    yt.backward(torch.from_numpy(gy))
    for a, c, t in zip(whole, chunked, (yt, xt.grad, Wt.grad, bt.grad)):
        assert rel_error(c, a) <= 1e-13
        assert rel_error(c, t.detach().numpy()) <= 1e-12
    gx, gW, gb = linear_backward(gy, x, W, need_gx=False, need_gb=False)
    assert gx is None and gb is None and gW.shape == W.shape


def test_training_steps_are_bit_identical_with_threads(threads):
    """Two runs from the same seed, chunked on 2 threads, give the same bits."""
    force_chunks(2, chunk_bytes=1 << 12)
    rs = np.random.default_rng(3)
    X = rs.standard_normal((16, 1, 12, 12)).astype(np.float32)
    y = rs.integers(0, 4, 16)

    def run():
        sn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(4, 6, 3), nn.Sigmoid(), nn.Flatten(),
                              nn.Linear(6 * 4 * 4, 4))
        opt = sn.optim.SGD(model.parameters(), lr=0.1)
        loss = nn.CrossEntropyLoss()
        for _ in range(3):
            loss(model(X), y)
            opt.zero_grad()
            model.backward(loss.backward())
            opt.step()
        return [p.array.copy() for p in model.parameters()]

    for a, b in zip(run(), run()):
        assert np.array_equal(a, b)


def test_scratch_is_reused_per_name_and_per_thread():
    a = workspace.scratch("t.a", (3, 4), np.float32)
    b = workspace.scratch("t.a", (2, 5), np.float32)  # fits: the same memory
    assert np.shares_memory(a, b) and b.shape == (2, 5) and b.dtype == np.float32
    c = workspace.scratch("t.b", (3, 4), np.float32)  # another name: other memory
    assert not np.shares_memory(a, c)
    d = workspace.scratch("t.a", (3, 4), np.float64)  # another dtype: other memory
    assert not np.shares_memory(a, d) and d.dtype == np.float64
    big = workspace.scratch("t.a", (100, 100), np.float32)  # grows
    assert big.shape == (100, 100)
    other = []
    t = threading.Thread(target=lambda: other.append(workspace.scratch("t.a", (3, 4),
                                                                        np.float32)))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], big)  # each thread has its own
    workspace.release()
    assert not np.shares_memory(workspace.scratch("t.a", (3, 4), np.float32), big)


def test_reuse_takes_only_a_matching_contiguous_array():
    a = np.empty((2, 3), np.float32)
    assert workspace.reuse(a, (2, 3), np.float32) is a
    assert workspace.reuse(a, (3, 2), np.float32) is not a
    assert workspace.reuse(a, (2, 3), np.float64) is not a
    assert workspace.reuse(np.empty((3, 2), np.float32).T, (2, 3), np.float32).flags.c_contiguous
    assert workspace.reuse(None, (2, 3), np.float32).shape == (2, 3)


def test_conv_layer_memory_reuse_never_leaks_into_results(device):
    """The layer refills its padded-input buffer each forward: outputs and gradients
    handed out before must not change, and backward uses the latest input."""
    rs = np.random.default_rng(4)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x1, x2 = (dev(rs.standard_normal((2, 2, 5, 5)).astype(np.float32)) for _ in range(2))
    gy = dev(rs.standard_normal((2, 3, 5, 5)).astype(np.float32))
    y1 = conv(x1)
    y1_copy = sn.to_numpy(y1).copy()
    gx1 = conv.backward(gy)
    gx1_copy = sn.to_numpy(gx1).copy()
    conv.zero_grad()
    y2 = conv(x2)
    gx2 = conv.backward(gy)
    assert np.array_equal(sn.to_numpy(y1), y1_copy)
    assert np.array_equal(sn.to_numpy(gx1), gx1_copy)
    fresh = nn.Conv2d(2, 3, 3, padding=1)
    fresh.load_state_dict({k: sn.to_numpy(v) for k, v in conv.state_dict().items()})
    assert_equal(fresh(x2), y2)
    assert_equal(fresh.backward(gy), gx2)
    assert_equal(fresh.weight.grad, conv.weight.grad)


@pytest.mark.parametrize("n_threads", [2, 3])
def test_chunked_pooling_activations_and_batchnorm_equal_one_chunk(threads, n_threads):
    from scratchnet import ops
    rs = np.random.default_rng(5)
    x = rs.standard_normal((5, 3, 9, 8))
    gamma, beta = rs.standard_normal(3), rs.standard_normal(3)
    gy_for = {}

    def run():
        out = {}
        for name, f, b in (
                ("max", lambda: ops.max_pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1)),
                 lambda y, g: ops.max_pool2d_backward(g, y[1], x.shape, (3, 3), (2, 2),
                                                      (1, 1, 1, 1))),
                ("max2", lambda: ops.max_pool2d(x, (2, 2), (2, 2)),
                 lambda y, g: ops.max_pool2d_backward(g, y[1], x.shape, (2, 2), (2, 2))),
                ("avg", lambda: (ops.avg_pool2d(x, (3, 2), (1, 2), (1, 1, 0, 0)),),
                 lambda y, g: ops.avg_pool2d_backward(g, x.shape, (3, 2), (1, 2),
                                                      (1, 1, 0, 0))),
                ("relu", lambda: (ops.relu(x),), lambda y, g: ops.relu_backward(g, y[0])),
                ("batchnorm", lambda: ops.batch_norm_train(x, gamma, beta, 1e-5, (0, 2, 3)),
                 lambda y, g: ops.batch_norm_train_backward(g, y[1], gamma, (0, 2, 3))[0]),
                ("sigmoid", lambda: (ops.sigmoid(x),),
                 lambda y, g: ops.sigmoid_backward(g, y[0]))):
            y = f()
            g = gy_for.setdefault(name, rs.standard_normal(y[0].shape))
            out[name] = (y[0], b(y, g))
        return out

    whole = run()
    force_chunks(n_threads)
    chunked = run()
    for name in whole:
        for a, c in zip(whole[name], chunked[name]):
            assert a.shape == c.shape, name
            if name == "batchnorm":  # statistics summed chunk by chunk: rounding differs
                assert rel_error(c, a) <= 1e-13
            else:
                assert np.array_equal(a, c), name


# Each layer's chunks use one of two layouts (ops.conv.use_images_last): images second,
# (C, N, H, W), or images last, (C, H, W, N); in the latter, some layers take dL/dx by
# the flipped kernel (ops.conv.flipped_input_grad). Every route, with strides, dilation,
# asymmetric padding and a last chunk of another size, must agree with PyTorch and with
# finite differences.
LAYOUT_CASES = [  # x shape, W shape, stride, pads, dilation, images last?, flipped dL/dx?
    ((3, 4, 7, 6), (4, 4, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), True, True),
    ((5, 6, 8, 8), (3, 6, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), True, True),
    ((3, 8, 9, 9), (4, 8, 2, 3), (1, 1), (0, 1, 2, 2), (2, 2), True, True),
    ((2, 16, 3, 3), (16, 16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), True, False),  # big W
    ((3, 8, 7, 9), (2, 8, 2, 4), (2, 1), (0, 1, 1, 2), (1, 1), True, False),
    ((3, 9, 9, 8), (3, 9, 3, 2), (1, 2), (2, 2, 1, 1), (2, 2), True, False),
    ((4, 6, 5, 5), (6, 6, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), False, False),
    ((5, 2, 9, 8), (4, 2, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False, False),
]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("x_shape, W_shape, stride, pads, dilation, last, flipped",
                         LAYOUT_CASES, ids=str)
def test_both_chunk_layouts_match_torch_and_finite_differences(
        threads, n_threads, x_shape, W_shape, stride, pads, dilation, last, flipped):
    from scratchnet.ops.conv import conv2d as conv_op, flipped_input_grad, use_images_last
    o, c, kh, kw = W_shape
    # the case takes the layout and the dL/dx route it is meant to
    assert use_images_last(c, kh, kw, o) == last
    assert flipped_input_grad(x_shape, W_shape, stride, pads, dilation)[0] == flipped
    force_chunks(n_threads, chunk_bytes=2 * c * kh * kw * 4 * 8)  # chunks of a few images
    rs = np.random.default_rng(6)
    x, W, b = rs.standard_normal(x_shape), rs.standard_normal(W_shape), rs.standard_normal(o)
    y_shape = conv_op(x, W, b, stride, pads, dilation)[0].shape
    gy = rs.standard_normal(y_shape)
    y, gx, gW, gb = conv_all(x, W, b, stride, pads, dilation, gy)
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    yt = F.conv2d(F.pad(xt, (pads[2], pads[3], pads[0], pads[1])), Wt, bt, stride,
                  dilation=dilation)
    yt.backward(torch.from_numpy(gy))
    for ours, theirs in ((y, yt), (gx, xt.grad), (gW, Wt.grad), (gb, bt.grad)):
        assert rel_error(ours, theirs.detach().numpy()) <= 1e-12

    def loss():
        return (conv_op(x, W, b, stride, pads, dilation)[0] * gy).sum()

    assert rel_error(gx, numerical_gradient(loss, x)) <= 1e-7
    assert rel_error(gW, numerical_gradient(loss, W)) <= 1e-7


def test_the_pool_is_made_once_per_thread_count(threads):
    force_chunks(3)
    parallel.parallel_for(6, 1, lambda a, b: None)
    pool = parallel._pool
    parallel.parallel_for(2, 1, lambda a, b: None)  # fewer chunks than threads
    parallel.parallel_for(9, 1, lambda a, b: None)
    assert parallel._pool is pool
    parallel.set_num_threads(2)
    parallel.parallel_for(4, 1, lambda a, b: None)
    assert parallel._pool is not pool and parallel._pool_threads == 1
