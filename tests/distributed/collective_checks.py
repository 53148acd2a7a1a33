"""Checks of every collective against NumPy, run on each rank of a 2-rank job (see mpi_jobs.py).

Every rank can compute every other rank's input (``data(r)``), so each expected result is plain
NumPy on those inputs; float64 results must match to 1e-12.
"""
from __future__ import annotations

import time

import numpy as np

import deepbox
import deepbox.distributed as dist
from deepbox.distributed import ReduceOp


def data(r: int, shape=(3, 4), dtype=np.float64):
    a = np.random.default_rng(100 + r).standard_normal(shape)
    return a.astype(dtype) if np.dtype(dtype).kind == "f" else (a * 10).astype(dtype)


def t(a):
    return deepbox.tensor(np.array(a))


def close(got, want, tol=1e-12):
    got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def raises(exc, fragment, fn):
    try:
        fn()
    except exc as e:
        assert fragment in str(e), f"{fragment!r} not in {e!r}"
        return e
    raise AssertionError(f"expected {exc.__name__} containing {fragment!r}")


def before_init():
    raises(ValueError, "init_process_group", lambda: dist.all_reduce(deepbox.zeros(2)))
    raises(ValueError, "init_process_group", lambda: dist.get_rank())
    assert not dist.is_initialized()
    assert dist.is_available()


def check_world(rank, size):
    assert dist.is_initialized() and size == 2 and rank in (0, 1)
    assert dist.get_backend() == "mpi"
    raises(RuntimeError, "twice", lambda: dist.init_process_group("mpi"))


def check_all_reduce_ops(rank, size):
    xs = [data(r) for r in range(size)]
    for op, ref in [(ReduceOp.SUM, sum(xs)), (ReduceOp.AVG, sum(xs) / size), (ReduceOp.MAX, np.maximum(*xs)),
                    (ReduceOp.MIN, np.minimum(*xs)), (ReduceOp.PRODUCT, xs[0] * xs[1])]:
        x = t(xs[rank])
        v = x.version
        dist.all_reduce(x, op=op)
        close(x, ref)
        assert x.version > v


def check_all_reduce_dtypes(rank, size):
    xs = [data(r, dtype=np.int64) for r in range(size)]
    x = t(xs[rank])
    dist.all_reduce(x)
    assert x.dtype == deepbox.int64
    np.testing.assert_array_equal(x.numpy(), xs[0] + xs[1])
    x = t(xs[rank])
    dist.all_reduce(x, op=ReduceOp.BXOR)
    np.testing.assert_array_equal(x.numpy(), xs[0] ^ xs[1])
    f = [data(r, dtype=np.float32) for r in range(size)]
    x = t(f[rank])
    dist.all_reduce(x)
    close(x, f[0] + f[1], 1e-6)
    h = [data(r, dtype=np.float16) for r in range(size)]
    x = t(h[rank])
    dist.all_reduce(x)
    assert x.dtype == deepbox.float16
    close(x.float(), (h[0].astype(np.float32) + h[1]).astype(np.float16).astype(np.float32), 1e-3)
    b = deepbox.tensor([rank == 0, False])
    dist.all_reduce(b, op=ReduceOp.MAX)
    assert b.tolist() == [True, False]


def check_all_reduce_noncontiguous(rank, size):
    xs = [data(r, (4, 6)) for r in range(size)]
    base = t(xs[rank])
    view = base.t()[::2]          # a strided view: the result must land in base's memory
    dist.all_reduce(view)
    want = xs[rank].copy()
    want.T[::2] = (xs[0] + xs[1]).T[::2]
    close(base, want)


def check_broadcast(rank, size):
    x = t(data(rank))
    dist.broadcast(x, src=1)
    close(x, data(1))
    y = t(data(rank, (5,)))
    dist.broadcast(y, group_src=0)
    close(y, data(0, (5,)))


def check_reduce(rank, size):
    x = t(data(rank))
    dist.reduce(x, dst=1, op=ReduceOp.SUM)
    close(x, data(0) + data(1) if rank == 1 else data(rank))
    x = t(data(rank))
    dist.reduce(x, dst=0, op=ReduceOp.MAX)
    close(x, np.maximum(data(0), data(1)) if rank == 0 else data(rank))


def check_all_gather(rank, size):
    out = [deepbox.zeros(3, 4, dtype=deepbox.float64) for _ in range(size)]
    dist.all_gather(out, t(data(rank)))
    for r in range(size):
        close(out[r], data(r))


def check_all_gather_into_tensor(rank, size):
    cat = deepbox.zeros(size * 3, 4, dtype=deepbox.float64)
    dist.all_gather_into_tensor(cat, t(data(rank)))
    close(cat, np.concatenate([data(r) for r in range(size)]))
    stacked = deepbox.zeros(size, 3, 4, dtype=deepbox.float64)
    dist.all_gather_into_tensor(stacked, t(data(rank)))
    close(stacked, np.stack([data(r) for r in range(size)]))


def check_gather(rank, size):
    lst = [deepbox.zeros(3, 4, dtype=deepbox.float64) for _ in range(size)] if rank == 0 else None
    dist.gather(t(data(rank)), lst, dst=0)
    if rank == 0:
        for r in range(size):
            close(lst[r], data(r))


def check_scatter(rank, size):
    x = deepbox.zeros(3, 4, dtype=deepbox.float64)
    lst = [t(data(10 + r)) for r in range(size)] if rank == 1 else None
    dist.scatter(x, lst, src=1)
    close(x, data(10 + rank))


def check_reduce_scatter_tensor(rank, size):
    ins = [data(r, (size * 2, 3)) for r in range(size)]
    out = deepbox.zeros(2, 3, dtype=deepbox.float64)
    dist.reduce_scatter_tensor(out, t(ins[rank]))
    close(out, sum(ins)[rank * 2:(rank + 1) * 2])
    out = deepbox.zeros(2, 3, dtype=deepbox.float64)
    dist.reduce_scatter_tensor(out, t(ins[rank]), op=ReduceOp.AVG)
    close(out, (sum(ins) / size)[rank * 2:(rank + 1) * 2])


def check_barrier(rank, size):
    # rank 1 arrives late: rank 0 must not leave the barrier before it does
    if rank == 1:
        time.sleep(0.3)
    start = time.monotonic()
    dist.barrier()
    stamp = deepbox.tensor([time.time()], dtype=deepbox.float64)
    if rank == 0:
        assert time.monotonic() - start > 0.2
    del stamp


def check_async_op(rank, size):
    x = t(data(rank))
    y = t(data(rank, (7,)))
    w1 = dist.all_reduce(x, async_op=True)
    w2 = dist.broadcast(y, src=0, async_op=True)
    assert w1 is not None and w2 is not None
    assert w2.wait() and w1.wait()
    assert w1.is_completed()
    close(x, data(0) + data(1))
    close(y, data(0, (7,)))
    assert dist.barrier(async_op=True).wait()


def check_objects(rank, size):
    got = [None] * size
    dist.all_gather_object(got, {"rank": rank, "name": f"r{rank}", "vals": [rank] * (rank + 1)})
    assert got == [{"rank": r, "name": f"r{r}", "vals": [r] * (r + 1)} for r in range(size)]
    lst = [f"seed-{rank}", rank * 10, None] if rank == 1 else [None, None, None]
    dist.broadcast_object_list(lst, src=1)
    assert lst == ["seed-1", 10, None]


def check_new_group(rank, size):
    solo = dist.new_group([1])
    assert dist.get_rank(solo) == (0 if rank == 1 else -1)
    assert dist.get_world_size(solo) == (1 if rank == 1 else -1)
    x = t(data(rank))
    assert dist.all_reduce(x, group=solo) is None           # a world of one (rank 1) or not a member (rank 0)
    close(x, data(rank))
    both = dist.new_group([1, 0])
    assert dist.get_world_size(both) == 2 and dist.get_process_group_ranks(both) == [0, 1]
    x = t(data(rank))
    dist.all_reduce(x, group=both)
    close(x, data(0) + data(1))
    y = t(data(rank))
    dist.broadcast(y, src=1, group=both)
    close(y, data(1))
    dist.destroy_process_group(both)
    raises(ValueError, "destroyed", lambda: dist.all_reduce(x, group=both))


def check_mismatched_shapes(rank, size):
    x = deepbox.zeros(3 + rank, dtype=deepbox.float64)
    raises(dist.DistError, "rank 0 has shape [3] float64, rank 1 has shape [4] float64", lambda: dist.all_reduce(x))
    raises(dist.DistError, "differ across ranks", lambda: dist.broadcast(x, src=0))
    # and the group still works afterwards
    y = t(data(rank))
    dist.all_reduce(y)
    close(y, data(0) + data(1))


def check_mismatched_dtypes(rank, size):
    x = deepbox.zeros(3, dtype=deepbox.float64 if rank == 0 else deepbox.float32)
    raises(dist.DistError, "rank 0 has shape [3] float64, rank 1 has shape [3] float32", lambda: dist.all_reduce(x))


def check_different_collectives(rank, size):
    x = deepbox.zeros(3, dtype=deepbox.float64)
    fn = (lambda: dist.all_reduce(x)) if rank == 0 else (lambda: dist.broadcast(x, src=0))
    raises(dist.DistError, "rank 0 called all_reduce", fn)


def check_bad_argument_on_one_rank(rank, size):
    x = deepbox.zeros(3, dtype=deepbox.float64)
    lst = [deepbox.zeros(3, dtype=deepbox.float64)] * size
    if rank == 1:   # gather_list on a non-destination rank is rank 1's own error; rank 0 hears of it
        raises(ValueError, "must NOT be specified", lambda: dist.gather(x, lst, dst=0))
    else:
        raises(dist.DistError, "rank(s) [1] rejected their arguments", lambda: dist.gather(x, lst, dst=0))
    raises(ValueError, "AVG needs a floating-point", lambda: dist.all_reduce(deepbox.zeros(2, dtype=deepbox.int64),
                                                                              op=ReduceOp.AVG))
    raises(TypeError, "must be a Tensor", lambda: dist.all_reduce(np.zeros(2)))


def check_timeout_names_missing_rank(rank, size):
    g = dist.new_group([0, 1], timeout=1.5)
    if rank == 0:
        start = time.monotonic()
        e = raises(dist.DistBackendError, "rank(s) [1] did not take part",
                   lambda: dist.all_reduce(deepbox.zeros(2, dtype=deepbox.float64), group=g))
        assert "timed out after 1.5 s" in str(e)
        assert time.monotonic() - start < 10
        raises(dist.DistBackendError, "can't be used", lambda: dist.barrier(group=g))
    dist.barrier()   # the world group is unaffected
