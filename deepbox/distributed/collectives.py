"""In-place collectives on tensors (``torch.distributed.all_reduce`` and friends), on MPI.

Every public collective runs in two steps:

1. **agreement**: each rank sends every other rank a 16-number summary of its call (which collective,
   its sequence number, root, reduce op, dtype, shape, and whether its own arguments were valid)
   and receives theirs. A mismatch (different shapes or dtypes, a rank calling a different
   collective) raises the same clear error on every rank instead of hanging or corrupting memory;
   a rank that never arrives is named by the timeout message.
2. **data**: the matching non-blocking MPI collective (``Iallreduce``, ``Ibcast``, ...) on the tensor's
   own array where it is contiguous, or on a contiguous copy that is written back on completion.

``async_op=True`` returns a :class:`Work` whose ``wait()`` completes the call; otherwise the call
returns ``None`` once the result is in place. DistributedDataParallel's gradient buckets skip step 1
(their layout was checked once, at construction) and use :func:`start_allreduce` directly.
"""
from __future__ import annotations

import zlib

from deepbox import backend
from deepbox.distributed.process_group import (
    DistBackendError,
    DistError,
    ProcessGroup,
    ReduceOp,
    _mpi,
    _NonMember,
    _resolve,
    _state,
    _to_seconds,
    _world,
    wait_request,
)
from deepbox.tensor import Tensor

xp = backend.xp

__all__ = [
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_reduce",
    "barrier",
    "broadcast",
    "gather",
    "new_group",
    "reduce",
    "reduce_scatter_tensor",
    "scatter",
]

_OPS = ["barrier", "all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "gather",
        "scatter", "reduce_scatter_tensor", "all_gather_object", "broadcast_object_list", "new_group",
        "ddp_setup"]
_META = 16
_MAX_DIMS = 8
_DTYPE_NAMES = {xp.dtype(t).num: xp.dtype(t).name for t in (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool", "complex64", "complex128")}


class Work:
    """The handle of a collective started with ``async_op=True``: ``wait()`` finishes it."""

    def __init__(self, req, finish, pg: ProcessGroup, what: str):
        self._req = req
        self._finish = finish
        self._pg = pg
        self._what = what
        self._done = False

    def wait(self, timeout=None) -> bool:
        """Block until the collective is complete and its result is in the tensors; returns True."""
        if not self._done:
            wait_request(self._req, self._pg, self._what)
            self._done = True
            if self._finish is not None:
                self._finish()
        return True

    def is_completed(self) -> bool:
        if self._done:
            return True
        if self._req.Test():
            self.wait()
        return self._done

    def is_success(self) -> bool:
        return self.is_completed()

    def exception(self):
        return None

    def __repr__(self) -> str:
        return f"Work({self._what}, {'done' if self._done else 'pending'})"


class _Done(Work):
    """A finished work handle (collectives on a group this rank is not in, or on a world of one)."""

    def __init__(self):
        self._done = True

    def wait(self, timeout=None) -> bool:
        return True

    def __repr__(self) -> str:
        return "Work(done)"


# ---------------------------------------------------------------------- agreement


def _summary(op: str, pg: ProcessGroup, arr, root: int, redop, error, extra) -> object:
    v = xp.full(_META, -1, dtype=xp.int64)
    v[0] = _OPS.index(op)
    v[1] = pg.seq
    v[2] = root
    v[3] = -1 if redop is None else redop.value
    if arr is not None:
        v[4] = arr.dtype.num
        v[5] = arr.ndim
        dims = list(arr.shape)
        if len(dims) > _MAX_DIMS:   # fold the trailing dims into the last slot
            tail = 1
            for d in dims[_MAX_DIMS - 1:]:
                tail *= d
            dims = dims[:_MAX_DIMS - 1] + [tail]
        v[6:6 + len(dims)] = dims
        v[14] = arr.size
    if extra is not None:
        v[13] = zlib.crc32(repr(extra).encode())
    v[15] = 1 if error is not None else 0
    return v


def _describe(row) -> str:
    if row[4] < 0:
        return "no tensor"
    ndim = int(row[5])
    shape = tuple(int(d) for d in row[6:6 + min(ndim, _MAX_DIMS)])
    return f"shape {list(shape)} {_DTYPE_NAMES.get(int(row[4]), f'dtype #{int(row[4])}')}"


def _agree(pg: ProcessGroup, op: str, arr=None, root: int = -1, redop=None, error: Exception | None = None,
           extra=None) -> None:
    """Exchange call summaries with every other rank of ``pg``; raise on any rank-to-rank mismatch.

    ``error`` is this rank's own complaint about its arguments: it is raised only after the
    exchange, so that the other ranks learn of it and raise too instead of waiting for data.
    """
    if pg.broken:
        raise DistBackendError(f"{op}: the process group can't be used after an earlier failure: {pg.broken}")
    n, me = pg.size(), pg.rank()
    mine = _summary(op, pg, arr, root, redop, error, extra)
    pg.seq += 1
    if n == 1:
        if error is not None:
            raise error
        return
    rows = xp.empty((n, _META), dtype=xp.int64)
    rows[me] = mine
    comm = pg.check
    recvs = {r: comm.Irecv(rows[r], source=r, tag=0) for r in range(n) if r != me}
    sends = [comm.Isend(mine, dest=r, tag=0) for r in range(n) if r != me]
    MPI = _mpi()
    allreq = list(recvs.values()) + sends

    class _All:
        @staticmethod
        def Test():   # noqa: N802 - MPI's name
            return MPI.Request.Testall(allreq)

    def missing():
        return [pg.ranks[r] for r, q in recvs.items() if not q.Test()]

    wait_request(_All, pg, f"{op} (collective #{mine[1]} of this group)", missing)
    g = pg.ranks   # report global ranks
    if (rows[:, 0] != mine[0]).any() or (rows[:, 1] != mine[1]).any():
        calls = ", ".join(f"rank {g[r]} called {_OPS[int(rows[r, 0])]} (#{int(rows[r, 1])})" for r in range(n))
        raise DistError(f"ranks called different collectives: {calls}; every rank must run the same collectives "
                        f"in the same order")
    if error is not None:
        raise error
    bad = [g[r] for r in range(n) if rows[r, 15]]
    if bad:
        raise DistError(f"{op}: rank(s) {bad} rejected their arguments (see their error); nothing was exchanged")
    if (rows[:, 2] != mine[2]).any():
        roots = ", ".join(f"rank {g[r]} named root {int(rows[r, 2])}" for r in range(n))
        raise DistError(f"{op}: ranks disagree on the root: {roots}")
    if (rows[:, 3] != mine[3]).any():
        ops = ", ".join(f"rank {g[r]} {ReduceOp(int(rows[r, 3])).name}" for r in range(n))
        raise DistError(f"{op}: ranks use different reduce ops: {ops}")
    if (rows[:, 4:15] != mine[4:15]).any():
        what = "new_group's ranks" if op == "new_group" else "tensors"
        if op == "new_group":
            raise ValueError("new_group: every rank must pass the same ranks")
        parts = ", ".join(f"rank {g[r]} has {_describe(rows[r])}" for r in range(n))
        raise DistError(f"{op}: {what} differ across ranks: {parts}; every rank must pass the same shape and dtype")


# ---------------------------------------------------------------------- groups


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False,
              group_desc=None):
    """A group of a subset of the ranks; every rank of the job must call it, with the same ``ranks``.

    On ranks outside ``ranks`` it returns a placeholder on which collectives do nothing, as in PyTorch.
    """
    w = _world()
    n = w.size()
    rs = list(range(n)) if ranks is None else sorted(int(r) for r in ranks)
    if len(set(rs)) != len(rs) or any(not 0 <= r < n for r in rs):
        raise ValueError(f"new_group: ranks must be distinct ranks of the world (0..{n - 1}), got {ranks}")
    _agree(w, "new_group", extra=rs)
    MPI = _mpi()
    me = w.rank()
    sub = w.comm.Split(0 if me in rs else MPI.UNDEFINED, key=me)
    if sub == MPI.COMM_NULL:
        return _NonMember(rs)
    seconds = w.timeout if timeout is None else _to_seconds(timeout)
    g = ProcessGroup(sub, rs, seconds)
    _state.groups.append(g)
    return g


# ---------------------------------------------------------------------- buffers and ops


def _work_dtype(dt):
    """MPI moves these dtypes as they are; float16 is reduced in float32 (MPI has no half type)."""
    return xp.dtype(xp.float32) if dt == xp.float16 else dt


class _Buf:
    """A contiguous, writable array that MPI can use for ``t``; ``commit()`` writes it back when it is a copy."""

    __slots__ = ("t", "w")

    def __init__(self, t: Tensor, fill: bool = True):
        self.t = t
        a = t._data
        wd = _work_dtype(a.dtype)
        if a.flags.c_contiguous and a.flags.writeable and wd == a.dtype:
            self.w = a
        else:
            self.w = xp.ascontiguousarray(a, dtype=wd) if fill else xp.empty(a.shape, dtype=wd)

    def commit(self) -> None:
        a = self.t._data
        if self.w is not a:
            a[...] = self.w
        self.t._version[0] += 1


def _check_tensor(t, name: str) -> Exception | None:
    if not isinstance(t, Tensor):
        return TypeError(f"{name} must be a Tensor, got {type(t).__name__}")
    return None


def _check_in_out(inp, out, in_name: str, out_name: str):
    """``inp``'s array (None unless both are tensors) and the first complaint about the pair, or None:
    either is not a tensor, or ``out`` has another dtype than ``inp``."""
    err = _check_tensor(inp, in_name) or _check_tensor(out, out_name)
    if err is not None:
        return None, err
    arr = inp._data
    if out._data.dtype != arr.dtype:
        return arr, TypeError(f"{out_name} has dtype {out._data.dtype}, expected {arr.dtype} like {in_name}")
    return arr, None


def _check_op(op, arr) -> Exception | None:
    if not isinstance(op, ReduceOp):
        return TypeError(f"op must be a deepbox.distributed.ReduceOp (SUM, AVG, PRODUCT, MIN, MAX, BAND, BOR, BXOR), "
                         f"got {op!r}")
    if arr is None:
        return None
    kind = arr.dtype.kind
    if op is ReduceOp.AVG and kind not in "fc":
        return ValueError(f"ReduceOp.AVG needs a floating-point tensor, got {arr.dtype}")
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and kind not in "iub":
        return ValueError(f"ReduceOp.{op.name} needs an integer or bool tensor, got {arr.dtype}")
    if op in (ReduceOp.MIN, ReduceOp.MAX) and kind == "c":
        return ValueError(f"ReduceOp.{op.name} is not defined for complex tensors")
    return None


def _mpi_op(op: ReduceOp, dtype):
    MPI = _mpi()
    if dtype.kind == "b":
        return {ReduceOp.SUM: MPI.LOR, ReduceOp.MAX: MPI.LOR, ReduceOp.BOR: MPI.LOR, ReduceOp.PRODUCT: MPI.LAND,
                ReduceOp.MIN: MPI.LAND, ReduceOp.BAND: MPI.LAND, ReduceOp.BXOR: MPI.LXOR}[op]
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
            ReduceOp.MAX: MPI.MAX, ReduceOp.BAND: MPI.BAND, ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}[op]


def _finish(pg: ProcessGroup, req, finish, what: str, async_op: bool):
    work = Work(req, finish, pg, what)
    if async_op:
        return work
    work.wait()
    return None


def _root(pg: ProcessGroup, rank, group_rank, name: str):
    """The group-local root from PyTorch's ``src``/``dst`` (a global rank) or ``group_src``/``group_dst``."""
    if rank is not None and group_rank is not None:
        return None, ValueError(f"pass {name} or group_{name}, not both")
    if group_rank is not None:
        r = int(group_rank)
        if not 0 <= r < pg.size():
            return None, ValueError(f"group_{name}={r} is not a rank of this group of {pg.size()}")
        return r, None
    r = 0 if rank is None else int(rank)
    if r not in pg.ranks:
        return None, ValueError(f"{name}={r} is not a rank of this group (its global ranks are {pg.ranks})")
    return pg.ranks.index(r), None


def _agree_rooted(pg: ProcessGroup, op: str, tensor, tensors, list_name: str, rank, group_rank, role: str):
    """The checks and the agreement step of ``gather``/``scatter``: one tensor per rank of ``pg`` in ``tensors``
    on the root (``role``: "dst" or "src", from ``rank``/``group_rank``), no list elsewhere.

    Returns the group-local root and ``tensor``'s array; raises on every rank when any rank's arguments are bad.
    """
    root, err = _root(pg, rank, group_rank, role)
    err = err or _check_tensor(tensor, "tensor")
    arr = None if err else tensor._data
    if err is None:
        if pg.rank() == root:
            err = _check_list(tensors, pg.size(), arr, list_name)
        elif tensors:
            which = "destination" if role == "dst" else "source"
            err = ValueError(f"Argument ``{list_name}`` must NOT be specified on non-{which} ranks.")
    _agree(pg, op, arr, root=-1 if root is None else root, error=err)
    return root, arr


def start_allreduce(pg: ProcessGroup, arr, average: bool = False) -> Work:
    """Start summing (or averaging) the contiguous array ``arr`` in place over ``pg``, without the agreement step.

    For callers that already know every rank makes the same calls in the same order (DDP's buckets).
    """
    MPI = _mpi()
    n = pg.size()
    if n == 1:
        return _Done()
    req = pg.data.Iallreduce(MPI.IN_PLACE, arr, op=MPI.SUM)

    def finish():
        if average:
            xp.divide(arr, n, out=arr)

    return Work(req, finish, pg, "gradient all_reduce")


# ---------------------------------------------------------------------- the collectives


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank of the group has reached this call."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    _agree(pg, "barrier")
    if pg.size() == 1:
        return _Done() if async_op else None
    return _finish(pg, pg.data.Ibarrier(), None, "barrier", async_op)


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` over all ranks with ``op``; every rank gets the result, in place."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    err = _check_tensor(tensor, "tensor")
    arr = None if err else tensor._data
    err = err or _check_op(op, arr)
    _agree(pg, "all_reduce", arr, redop=op, error=err)
    n = pg.size()
    buf = _Buf(tensor)
    if n == 1:
        buf.commit()
        return _Done() if async_op else None
    req = pg.data.Iallreduce(_mpi().IN_PLACE, buf.w, op=_mpi_op(op, buf.w.dtype))

    def finish():
        if op is ReduceOp.AVG:
            buf.w /= n
        buf.commit()

    return _finish(pg, req, finish, "all_reduce", async_op)


def broadcast(tensor, src: int | None = None, group=None, async_op: bool = False, group_src: int | None = None):
    """Copy rank ``src``'s ``tensor`` into every other rank's ``tensor``."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    root, err = _root(pg, src, group_src, "src")
    err = err or _check_tensor(tensor, "tensor")
    arr = None if err else tensor._data
    _agree(pg, "broadcast", arr, root=-1 if root is None else root, error=err)
    if pg.size() == 1:
        return _Done() if async_op else None
    buf = _Buf(tensor, fill=pg.rank() == root)
    req = pg.data.Ibcast(buf.w, root=root)
    return _finish(pg, req, buf.commit, "broadcast", async_op)


def reduce(tensor, dst: int | None = None, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False,
           group_dst: int | None = None):
    """Combine ``tensor`` over all ranks with ``op`` into rank ``dst``'s ``tensor`` (others keep theirs)."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    root, err = _root(pg, dst, group_dst, "dst")
    err = err or _check_tensor(tensor, "tensor")
    arr = None if err else tensor._data
    err = err or _check_op(op, arr)
    _agree(pg, "reduce", arr, root=-1 if root is None else root, redop=op, error=err)
    n = pg.size()
    if n == 1:
        return _Done() if async_op else None
    MPI = _mpi()
    buf = _Buf(tensor)
    mop = _mpi_op(op, buf.w.dtype)
    if pg.rank() == root:
        req = pg.data.Ireduce(MPI.IN_PLACE, buf.w, op=mop, root=root)

        def finish():
            if op is ReduceOp.AVG:
                buf.w /= n
            buf.commit()
    else:
        req = pg.data.Ireduce(buf.w, None, op=mop, root=root)
        finish = None
    return _finish(pg, req, finish, "reduce", async_op)


def _check_list(tensors, n: int, like, name: str) -> Exception | None:
    if not isinstance(tensors, (list, tuple)):
        return TypeError(f"{name} must be a list of {n} tensors, got {type(tensors).__name__}")
    if len(tensors) != n:
        return ValueError(f"{name} must hold one tensor per rank ({n}), got {len(tensors)}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            return TypeError(f"{name}[{i}] must be a Tensor, got {type(t).__name__}")
        if t._data.shape != like.shape or t._data.dtype != like.dtype:
            return ValueError(f"{name}[{i}] has shape {list(t._data.shape)} {t._data.dtype}, expected "
                              f"{list(like.shape)} {like.dtype} like the input tensor")
    return None


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """``tensor_list[r]`` receives rank r's ``tensor``, on every rank."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    n = pg.size()
    err = _check_tensor(tensor, "tensor")
    arr = None if err else tensor._data
    err = err or _check_list(tensor_list, n, arr, "tensor_list")
    _agree(pg, "all_gather", arr, error=err)
    src = xp.ascontiguousarray(arr, dtype=_work_dtype(arr.dtype))
    recv = xp.empty((n,) + arr.shape, dtype=src.dtype)

    def finish():
        for t, part in zip(tensor_list, recv):
            t._data[...] = part
            t._version[0] += 1

    if n == 1:
        recv[0] = src
        finish()
        return _Done() if async_op else None
    req = pg.data.Iallgather(src, recv)
    return _finish(pg, req, finish, "all_gather", async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """Rank r's ``input_tensor`` becomes part r of ``output_tensor`` (concatenated on dim 0, or stacked)."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    n = pg.size()
    arr, err = _check_in_out(input_tensor, output_tensor, "input_tensor", "output_tensor")
    if err is None:
        out = output_tensor._data
        if out.size != n * arr.size or (out.shape != (n,) + arr.shape and (
                arr.ndim == 0 or out.shape != (n * arr.shape[0],) + arr.shape[1:])):
            cat = [n * (arr.shape[0] if arr.ndim else 1)] + list(arr.shape[1:])
            err = ValueError(f"output_tensor must have shape {cat} or {[n] + list(arr.shape)} for {n} ranks' input "
                             f"of shape {list(arr.shape)}, got {list(out.shape)}")
    _agree(pg, "all_gather_into_tensor", arr, error=err)
    src = xp.ascontiguousarray(arr, dtype=_work_dtype(arr.dtype))
    buf = _Buf(output_tensor, fill=False)
    if n == 1:
        buf.w.reshape(-1)[...] = src.reshape(-1)
        buf.commit()
        return _Done() if async_op else None
    req = pg.data.Iallgather(src, buf.w)
    return _finish(pg, req, buf.commit, "all_gather_into_tensor", async_op)


def gather(tensor, gather_list=None, dst: int | None = None, group=None, async_op: bool = False,
           group_dst: int | None = None):
    """Rank ``dst``'s ``gather_list[r]`` receives rank r's ``tensor``; other ranks pass no list."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    n, me = pg.size(), pg.rank()
    root, arr = _agree_rooted(pg, "gather", tensor, gather_list, "gather_list", dst, group_dst, "dst")
    src = xp.ascontiguousarray(arr, dtype=_work_dtype(arr.dtype))
    recv = xp.empty((n,) + arr.shape, dtype=src.dtype) if me == root else None

    def finish():
        if recv is not None:
            for t, part in zip(gather_list, recv):
                t._data[...] = part
                t._version[0] += 1

    if n == 1:
        recv[0] = src
        finish()
        return _Done() if async_op else None
    req = pg.data.Igather(src, recv, root=root)
    return _finish(pg, req, finish, "gather", async_op)


def scatter(tensor, scatter_list=None, src: int | None = None, group=None, async_op: bool = False,
            group_src: int | None = None):
    """Rank r's ``tensor`` receives rank ``src``'s ``scatter_list[r]``; other ranks pass no list."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    n, me = pg.size(), pg.rank()
    root, arr = _agree_rooted(pg, "scatter", tensor, scatter_list, "scatter_list", src, group_src, "src")
    wd = _work_dtype(arr.dtype)
    send = xp.stack([xp.asarray(t._data, dtype=wd) for t in scatter_list]) if me == root else None
    buf = _Buf(tensor, fill=False)
    if n == 1:
        buf.w[...] = send[0]
        buf.commit()
        return _Done() if async_op else None
    req = pg.data.Iscatter(send, buf.w, root=root)
    return _finish(pg, req, buf.commit, "scatter", async_op)


def reduce_scatter_tensor(output, input, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``input`` over all ranks with ``op``; rank r keeps part r (dim 0 split into world-size parts)."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return _Done() if async_op else None
    n = pg.size()
    arr, err = _check_in_out(input, output, "input", "output")
    if err is None:
        out = output._data
        if arr.size != n * out.size:
            err = ValueError(f"input must hold world size ({n}) x output's {out.size} elements, got input of shape "
                             f"{list(arr.shape)} and output of shape {list(out.shape)}")
    err = err or _check_op(op, arr)
    _agree(pg, "reduce_scatter_tensor", arr, redop=op, error=err)
    src = xp.ascontiguousarray(arr, dtype=_work_dtype(arr.dtype))
    buf = _Buf(output, fill=False)

    def finish():
        if op is ReduceOp.AVG:
            buf.w /= n
        buf.commit()

    if n == 1:
        buf.w.reshape(-1)[...] = src.reshape(-1)
        finish()
        return _Done() if async_op else None
    req = pg.data.Ireduce_scatter_block(src, buf.w, op=_mpi_op(op, src.dtype))
    return _finish(pg, req, finish, "reduce_scatter_tensor", async_op)

