"""parallel_for: run an op over chunks of the batch on every CPU core.

NumPy runs an element-wise op or a copy on one core; only its BLAS products
use more. PyTorch splits each op over all cores (``at::parallel_for``), so on a
2-core machine it has twice our hands for everything that is not a product.
This module is our ``parallel_for``:

    results = parallel_for(n, bytes_per_item, work)   # work(a, b): items a..b-1

splits ``range(n)`` (the images of a batch) into chunks of at most
``CHUNK_BYTES`` of temporaries each (so a chunk's im2col columns stay in the
CPU cache), and runs ``work`` on them from a small thread pool, chunk ``i`` on
thread ``i % threads`` (thread 0 is the caller). Work under
``MIN_PARALLEL_BYTES`` in all runs on the caller alone: waking a sleeping
thread costs more than it saves there. NumPy lets go of the GIL inside
copies, ufuncs and BLAS calls, so the threads really run at once; BLAS is held
to one thread per call meanwhile, or the threads would fight over the cores.

Rules for ``work``: it writes only its own slice ``[a:b]`` of shared outputs,
takes temporaries from ``workspace.scratch`` (one set per thread), and returns
anything to be summed (a weight gradient); ``parallel_for`` returns those in
chunk order, so the caller adds them in an order fixed by ``n`` and the thread
count alone: the same bits run after run (they may differ in the last bits
between thread counts, as PyTorch's do).

CuPy arrays are not split: the GPU is already parallel, ``work(0, n)`` runs
once. ``set_num_threads(1)`` (or ``SCRATCHNET_NUM_THREADS=1``) turns threads
off; chunks then still run one after the other, for the cache.
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from functools import reduce

import numpy as np

from . import workspace

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # threadpoolctl is a dependency; without it BLAS keeps its threads
    ThreadpoolController = None

# Smaller chunks, down to L2's size, were no faster: more Python calls, smaller products.
CHUNK_BYTES = 1 << 24  # 16 MiB

# Below this, one chunk on the calling thread: waking a pool thread costs more.
MIN_PARALLEL_BYTES = 1 << 21  # 2 MiB

_pool = None
_pool_threads = 0
_blas = None
_local = threading.local()


def _default_threads():
    env = os.environ.get("SCRATCHNET_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"SCRATCHNET_NUM_THREADS: expected a positive integer, "
                             f"got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_threads = None


def get_num_threads():
    """Threads the CPU ops use (default: the cores this process may run on)."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_num_threads(n):
    """As ``torch.set_num_threads``: how many threads the CPU ops use."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _threads = int(n)


def _executor():
    """The pool: get_num_threads() - 1 workers (the caller is the other thread),
    made again only when set_num_threads changed the count."""
    global _pool, _pool_threads
    workers = get_num_threads() - 1
    if _pool is None or _pool_threads != workers:
        if _pool is not None:
            _pool.shutdown(wait=True)
            workspace.release()  # the old workers' scratch memory
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="scratchnet")
        _pool_threads = workers
    return _pool


def _forget_pool_after_fork():
    # A forked child has the pool object but none of its threads: work submitted there
    # would wait forever. The child starts a pool of its own when it needs one.
    global _pool, _pool_threads
    _pool, _pool_threads = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _one_blas_thread():
    global _blas
    if ThreadpoolController is None:
        return contextlib.nullcontext()
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def chunks(n, bytes_per_item, threads):
    """The (a, b) bounds: sizes differ by at most one, the count a multiple of threads."""
    per = max(1, CHUNK_BYTES // max(1, int(bytes_per_item)))
    count = -(-n // per)
    count = min(n, threads * -(-count // threads))
    return [(i * n // count, (i + 1) * n // count) for i in range(count)]


def parallel_for(n, bytes_per_item, work, xp=np, blas=True):
    """``[work(a, b) for (a, b) in chunks]`` over ``range(n)``, on all threads (see above).

    ``blas=False`` says ``work`` makes no BLAS call: small work then runs at once,
    without touching BLAS's thread count.
    """
    if xp is not np:
        return [work(0, n)] if n > 0 else []
    threads = get_num_threads()
    small = n * bytes_per_item < MIN_PARALLEL_BYTES
    # One thread: BLAS keeps its own. Inside another parallel_for: run here, BLAS is
    # already held. Small work that makes no BLAS call: nothing to hold.
    if threads == 1 or getattr(_local, "inside", False) or (small and not blas):
        return [work(a, b) for a, b in chunks(n, bytes_per_item, 1)]
    parts = chunks(n, bytes_per_item, 1 if small else threads)
    # BLAS runs on one thread even when there is a single chunk: once woken, OpenBLAS's
    # own threads spin for a while after each call and take the cores from ours.
    with _one_blas_thread():
        if len(parts) <= 1:
            return [work(a, b) for a, b in parts]
        results = [None] * len(parts)
        threads = min(threads, len(parts))

        def run(t):
            inside = getattr(_local, "inside", False)
            _local.inside = True
            try:
                for i in range(t, len(parts), threads):
                    results[i] = work(*parts[i])
            finally:
                _local.inside = inside

        # Task 0 runs here while the pool runs the others: one thread fewer to wake.
        pool = _executor()
        futures = [pool.submit(run, t) for t in range(1, threads)]
        try:
            run(0)
        finally:
            wait(futures)  # all of them, even when one fails, before BLAS gets its threads back
    for f in futures:
        f.result()  # re-raises a worker's exception
    return results


def add_in_order(parts):
    """The sum of per-chunk partial results, added in chunk order: the same bits every run."""
    return reduce(lambda a, b: a + b, parts)
