"""``DistributedDataParallel``: one model replica per rank, gradients averaged by bucketed all-reduces.

Each rank runs the same model on its own slice of the batch. After ``loss.backward()`` every
rank must hold the same gradient, the average over ranks, so that the same optimiser step
keeps the replicas identical. Doing that with one all-reduce per parameter would pay the
network's latency once per tensor; doing one all-reduce after backward would leave the network
idle during backward and the CPU idle during the all-reduce. So, as PyTorch's DDP and Horovod do:

* parameters are grouped into **buckets** of about ``bucket_cap_mb`` megabytes, in the reverse of
  registration order (roughly the order backward produces their gradients; the first bucket is
  capped at 1 MB so that communication starts early);
* each parameter has a post-accumulate-grad hook; when the last gradient of a bucket is ready
  (the engine runs the hook as soon as a leaf's gradient is complete), the bucket's gradients are
  copied into one flat array and a **non-blocking all-reduce** starts on it, while backward goes
  on with earlier layers;
* buckets are started strictly in index order on every rank (MPI requires collectives in the
  same order everywhere); the last bucket's hook waits for all of them, divides by the world size
  and copies the averages back into each ``param.grad``, all before ``backward()`` returns.

What is averaged: parameter gradients only. Buffers (batch norm's running statistics) are
copied from rank 0 before each forward when ``broadcast_buffers=True``, as in PyTorch.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from deepbox import backend
from deepbox.autograd.grad_mode import is_grad_enabled
from deepbox.nn.modules.module import Module
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1 << 20


class _Bucket:
    __slots__ = ("params", "offsets", "flat", "pending", "ready", "work", "dtype")

    def __init__(self, params, dtype):
        self.params = params
        self.dtype = dtype
        self.offsets = []
        off = 0
        for p in params:
            self.offsets.append(off)
            off += p._data.size
        self.flat = xp.zeros(off, dtype=dtype)
        self.pending = len(params)
        self.ready = False
        self.work = None


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of a process group (``torch.nn.parallel.DistributedDataParallel``).

    Args:
        module: the model; rank 0's parameters and buffers are copied to every rank here.
        device_ids, output_device, dim: accepted for PyTorch's signature; deepbox runs on the CPU.
        broadcast_buffers: copy rank 0's buffers to every rank before each forward (default True).
        init_sync: broadcast rank 0's parameters and buffers at construction (default True).
        process_group: the group to average over (default: the world).
        bucket_cap_mb: bucket size in megabytes (default 25, as PyTorch).
        find_unused_parameters: walk the output's graph after each forward and mark the parameters
            it does not reach as ready, so that a model whose forward skips parameters still
            completes its all-reduces (the unused ones count as zero gradient on that rank).
        gradient_as_bucket_view, static_graph, check_reduction: accepted; no effect here.

    ``no_sync()`` turns the all-reduce off for gradient accumulation; ``.module`` is the wrapped model
    and ``state_dict()`` keys carry the ``module.`` prefix, as in PyTorch.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, init_sync: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False, static_graph: bool = False):
        super().__init__()
        from deepbox import distributed as dist
        from deepbox.distributed.process_group import ProcessGroup, _resolve

        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        pg = _resolve(process_group)
        if not isinstance(pg, ProcessGroup):
            raise ValueError("DistributedDataParallel: this rank is not a member of process_group")
        if bucket_cap_mb is not None and not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self.module = module
        self.process_group = pg
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.dim = dim
        self.device_ids = device_ids
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.bucket_bytes_cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
        self._world_size = pg.size()
        # DDP's own communicator: its bucket all-reduces never interleave with the user's collectives
        self._comm_group = ProcessGroup(pg.comm, pg.ranks, pg.timeout)
        self._check_same_model(dist, module)
        if init_sync:
            self._broadcast_tensors(list(module.parameters()) + [b for b in module.buffers() if b is not None])
        self._params = params
        self._buckets = self._make_buckets(params)
        self._where = {}                  # id(param) -> (bucket index, position)
        for bi, b in enumerate(self._buckets):
            for pi, p in enumerate(b.params):
                self._where[id(p)] = (bi, pi)
        self._next = 0                    # the next bucket to start
        self._armed = False               # a forward ran with gradient sync on: backward must reduce
        self._fired = False               # a gradient hook ran since that forward
        self._used = None                 # find_unused_parameters: ids of params the last forward reached
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]
        self.comm_wait_s = 0.0            # time backward spent waiting for all-reduces to finish (benchmarks)

    # ------------------------------------------------------------------ construction helpers
    def _check_same_model(self, dist, module) -> None:
        sig = [(n, tuple(p.shape), str(p.dtype), bool(p.requires_grad)) for n, p in module.named_parameters()]
        sigs = [None] * self._world_size
        dist.all_gather_object(sigs, sig, group=self.process_group)
        for r, other in enumerate(sigs):
            if other != sig:
                diff = next((f"{a} vs {b}" for a, b in zip(sig, other) if a != b),
                            f"{len(sig)} parameters vs {len(other)}")
                raise RuntimeError(f"DistributedDataParallel: the model differs between this rank and rank "
                                   f"{self.process_group.ranks[r]} ({diff}); every rank must build the same model")

    def _broadcast_tensors(self, tensors) -> None:
        """Copy rank 0's values of ``tensors`` to every rank: one flat broadcast per dtype."""
        from deepbox.distributed.process_group import wait_request

        if self._world_size == 1 or not tensors:
            return
        by_dtype = {}
        for t in tensors:
            by_dtype.setdefault(t._data.dtype.str, []).append(t)
        for group in by_dtype.values():
            flat = xp.concatenate([t._data.reshape(-1) for t in group])
            req = self._comm_group.data.Ibcast(flat, root=0)
            wait_request(req, self._comm_group, "DistributedDataParallel broadcast from rank 0")
            off = 0
            for t in group:
                n = t._data.size
                if self.process_group.rank() != 0:
                    t._data[...] = flat[off:off + n].reshape(t._data.shape)
                    t._version[0] += 1
                off += n

    def _make_buckets(self, params) -> list[_Bucket]:
        buckets, cur, size, cap = [], [], 0, _FIRST_BUCKET_BYTES
        for p in reversed(params):
            if cur and (size + p._data.nbytes > min(cap, self.bucket_bytes_cap) or p._data.dtype != cur[0]._data.dtype):
                buckets.append(_Bucket(cur, cur[0]._data.dtype))
                cur, size, cap = [], 0, self.bucket_bytes_cap
            cur.append(p)
            size += p._data.nbytes
        if cur:
            buckets.append(_Bucket(cur, cur[0]._data.dtype))
        return buckets

    # ------------------------------------------------------------------ forward
    def forward(self, *inputs, **kwargs):
        if self._armed and self._fired:
            unreduced = [n for n, p in self.module.named_parameters() if p.requires_grad and not self._is_ready(p)]
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one. This "
                "error indicates that your module has parameters that were not used in producing loss. You can "
                "enable unused parameter detection by passing the keyword argument `find_unused_parameters=True` "
                f"to `DistributedDataParallel`. Parameters that did not receive a gradient: {unreduced[:10]}")
        self._reset()
        if self.broadcast_buffers and self.require_forward_param_sync and is_grad_enabled():
            bufs = [b for b in self.module.buffers() if b is not None]
            if bufs:
                self._broadcast_tensors(bufs)
        out = self.module(*inputs, **kwargs)
        if is_grad_enabled() and self.require_backward_grad_sync:
            self._armed = True
            if self.find_unused_parameters:
                self._mark_unused(out)
        return out

    def _reset(self) -> None:
        for b in self._buckets:
            b.pending = len(b.params)
            b.ready = False
            b.work = None
        self._next = 0
        self._armed = False
        self._fired = False
        self._used = None

    def _is_ready(self, p) -> bool:
        bi, _ = self._where[id(p)]
        return self._buckets[bi].ready

    def _mark_unused(self, out) -> None:
        reached = set()
        seen = set()
        stack = [t._ctx for t in _tensors_in(out) if t._ctx is not None]
        for t in _tensors_in(out):
            if t._ctx is None:
                reached.add(id(t))
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            for p in node.parents:
                if p is None:
                    continue
                if isinstance(p, Tensor):
                    reached.add(id(p))
                elif id(p) not in seen:
                    stack.append(p)
        self._used = reached
        for p in self._params:
            if id(p) not in reached:
                self._mark_ready(p)

    # ------------------------------------------------------------------ backward
    def _grad_ready(self, p) -> None:
        if not self._armed or not self.require_backward_grad_sync:
            return
        self._fired = True
        self._mark_ready(p)

    def _mark_ready(self, p) -> None:
        bi, _ = self._where[id(p)]
        b = self._buckets[bi]
        b.pending -= 1
        if b.pending == 0:
            b.ready = True
            self._launch_ready()
        else:
            # give MPI a chance to progress the buckets already in flight
            for q in self._buckets[:self._next]:
                if q.work is not None:
                    q.work.is_completed()

    def _launch_ready(self) -> None:
        from deepbox.distributed.collectives import start_allreduce

        while self._next < len(self._buckets) and self._buckets[self._next].ready:
            b = self._buckets[self._next]
            for p, off in zip(b.params, b.offsets):
                n = p._data.size
                if p._grad is not None and (self._used is None or id(p) in self._used):
                    b.flat[off:off + n] = p._grad._data.reshape(-1)
                else:
                    b.flat[off:off + n] = 0
            b.work = start_allreduce(self._comm_group, b.flat, average=True)
            self._next += 1
        if self._next == len(self._buckets):
            self._finalize()

    def _finalize(self) -> None:
        """Wait for every bucket, then write the averaged gradients back (still inside backward)."""
        t0 = time.perf_counter()
        globally_used = None
        if self.find_unused_parameters and self._world_size > 1:
            from deepbox.distributed.collectives import start_allreduce

            used = xp.array([1.0 if (self._used is None or id(p) in self._used) else 0.0 for p in self._params])
            start_allreduce(self._comm_group, used).wait()
            globally_used = {id(p) for p, u in zip(self._params, used) if u > 0}
        for b in self._buckets:
            b.work.wait()
            for p, off in zip(b.params, b.offsets):
                if globally_used is not None and id(p) not in globally_used:
                    continue
                avg = b.flat[off:off + p._data.size].reshape(p._data.shape)
                if p._grad is None:
                    p._grad = _make(avg.copy())
                else:
                    p._grad._data[...] = avg
        self.comm_wait_s += time.perf_counter() - t0
        self._armed = False
        self._fired = False

    # ------------------------------------------------------------------ PyTorch's API
    @contextmanager
    def no_sync(self):
        """Inside this block backward accumulates gradients locally, without all-reduce (gradient accumulation).

        The first backward after the block averages the accumulated gradients over the ranks.
        """
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def extra_repr(self) -> str:
        return f"world_size={self._world_size}, buckets={len(self._buckets)}"


def _tensors_in(obj):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors_in(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors_in(o)
