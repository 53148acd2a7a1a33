"""Collectives on small Python values: the one place where deepbox sends pickled objects between processes.

``all_gather_object`` and ``broadcast_object_list`` exist for what PyTorch scripts pass this way
(a metric, a random seed, a list of file names). Each object is pickled on the sending rank and
unpickled on the receiving ranks. Pickle runs arbitrary code when it loads, so these calls are
for the ranks of one job, which trust one another by construction; never route data from
outside the job through them. Checkpoints, by contrast, are never unpickled (``deepbox.io``).
"""
from __future__ import annotations

import pickle

from deepbox import backend
from deepbox.distributed.collectives import _agree, _root
from deepbox.distributed.process_group import _mpi, _NonMember, _resolve, wait_request

xp = backend.xp

__all__ = ["all_gather_object", "broadcast_object_list"]


def all_gather_object(object_list: list, obj, group=None) -> None:
    """``object_list[r]`` receives rank r's ``obj`` (pickled), on every rank."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return
    n = pg.size()
    err = None
    if not isinstance(object_list, list) or len(object_list) != n:
        got = f"a list of {len(object_list)}" if isinstance(object_list, list) else type(object_list).__name__
        err = ValueError(f"object_list must be a list with one slot per rank ({n}), got {got}")
    data = b""
    if err is None:
        try:
            data = pickle.dumps(obj)
        except Exception as e:   # noqa: BLE001 - any pickling failure is the caller's argument error
            err = TypeError(f"all_gather_object: the object can't be pickled: {e}")
    _agree(pg, "all_gather_object", error=err)
    if n == 1:
        object_list[0] = pickle.loads(data)
        return
    MPI = _mpi()
    sizes = xp.zeros(n, dtype=xp.int64)
    mine = xp.array([len(data)], dtype=xp.int64)
    wait_request(pg.data.Iallgather(mine, sizes), pg, "all_gather_object (sizes)")
    recv = bytearray(int(sizes.sum()))
    offsets = xp.concatenate([[0], xp.cumsum(sizes)[:-1]]).astype(xp.int64)
    req = pg.data.Iallgatherv([data, MPI.BYTE], [recv, (sizes.tolist(), offsets.tolist()), MPI.BYTE])
    wait_request(req, pg, "all_gather_object")
    view = memoryview(recv)
    for r in range(n):
        object_list[r] = pickle.loads(view[offsets[r]:offsets[r] + sizes[r]])


def broadcast_object_list(object_list: list, src: int | None = None, group=None, device=None,
                          group_src: int | None = None) -> None:
    """Replace every rank's ``object_list`` items with rank ``src``'s (pickled); lists must have equal length."""
    pg = _resolve(group)
    if isinstance(pg, _NonMember):
        return
    root, err = _root(pg, src, group_src, "src")
    data = b""
    if err is None and not isinstance(object_list, list):
        err = TypeError(f"object_list must be a list, got {type(object_list).__name__}")
    if err is None and pg.rank() == root:
        try:
            data = pickle.dumps(list(object_list))
        except Exception as e:   # noqa: BLE001
            err = TypeError(f"broadcast_object_list: an object can't be pickled: {e}")
    length = xp.zeros((len(object_list) if isinstance(object_list, list) else 0,))
    _agree(pg, "broadcast_object_list", length, root=-1 if root is None else root, error=err)
    if pg.size() == 1:
        return
    MPI = _mpi()
    size = xp.array([len(data)], dtype=xp.int64)
    wait_request(pg.data.Ibcast(size, root=root), pg, "broadcast_object_list (size)")
    buf = bytearray(data) if pg.rank() == root else bytearray(int(size[0]))
    wait_request(pg.data.Ibcast([buf, MPI.BYTE], root=root), pg, "broadcast_object_list")
    if pg.rank() != root:
        object_list[:] = pickle.loads(bytes(buf))
