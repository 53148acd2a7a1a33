"""Batch norm whose statistics are those of the global batch: the union of every rank's batch.

With data parallelism each rank sees N/world samples; plain batch norm would normalise each
rank's slice by its own (noisier) statistics. ``SyncBatchNorm`` all-reduces per-channel sums so
that every rank normalises by the mean and variance of the whole batch, and all-reduces the two
per-channel sums that backward needs, so that the gradient is the whole batch's too.

Forward, with M the global number of values per channel (over ranks, batch and spatial dims):
``mean = sum_r sum(x_r) / M``, ``var = sum_r sum((x_r - mean)^2) / M`` (two all-reduces: the
centred second pass avoids E[x^2] - E[x]^2's cancellation), ``xhat = (x - mean) / sqrt(var + eps)``.

Backward, with ``g = grad * weight``: ``dx = rstd * (g - S1 / M - xhat * S2 / M)`` where
``S1 = sum_r sum(g_r)`` and ``S2 = sum_r sum(g_r * xhat_r)`` (one all-reduce of both). The weight
and bias gradients stay local: DistributedDataParallel averages them with the other parameters.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function

xp = backend.xp

__all__ = ["sync_batch_norm"]


def _allreduce(pg, arr):
    from deepbox.distributed.collectives import start_allreduce

    start_allreduce(pg, arr).wait()
    return arr


class SyncBatchNormFn(Function):
    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, eps, pg, stats):
        axes = (0,) + tuple(range(2, x.ndim))
        C = x.shape[1]
        shape = (1, C) + (1,) * (x.ndim - 2)
        local = xp.empty(C + 1, dtype=xp.float64)
        local[:C] = x.sum(axis=axes, dtype=xp.float64)
        local[C] = x.size // C
        _allreduce(pg, local)
        count = local[C]
        mean = (local[:C] / count).astype(x.dtype)
        xc = x - mean.reshape(shape)
        sq = xp.square(xc).sum(axis=axes, dtype=xp.float64)
        _allreduce(pg, sq)
        var = (sq / count).astype(x.dtype)
        rstd = 1.0 / xp.sqrt(var + xp.asarray(eps, dtype=x.dtype))
        xhat = xc * rstd.reshape(shape)
        out = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(shape)
        stats["mean"], stats["var"], stats["count"] = mean, var, int(count)
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.axes, ctx.shape, ctx.count, ctx.pg = axes, shape, count, pg
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, weight = ctx.saved_tensors
        axes, shape, count = ctx.axes, ctx.shape, ctx.count
        g = grad * weight.reshape(shape) if weight is not None else grad
        C = xhat.shape[1]
        sums = xp.empty(2 * C, dtype=xp.float64)
        sums[:C] = g.sum(axis=axes, dtype=xp.float64)
        sums[C:] = (g * xhat).sum(axis=axes, dtype=xp.float64)
        _allreduce(ctx.pg, sums)
        s1 = (sums[:C] / count).astype(xhat.dtype).reshape(shape)
        s2 = (sums[C:] / count).astype(xhat.dtype).reshape(shape)
        dx = rstd.reshape(shape) * (g - s1 - xhat * s2)
        dw = (grad * xhat).sum(axis=axes) if weight is not None else None
        db = grad.sum(axis=axes) if ctx.has_bias else None
        return dx, dw, db


def sync_batch_norm(input, running_mean, running_var, weight, bias, momentum: float, eps: float, pg):
    """Training-mode batch norm over the global batch of ``pg``'s ranks; updates the running statistics."""
    stats = {}
    out = SyncBatchNormFn.apply(input, weight, bias, eps=eps, pg=pg, stats=stats)
    if running_mean is not None:
        m = stats["count"]
        if m <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got {m} over all ranks")
        rm, rv = running_mean._data, running_var._data
        rm *= 1 - momentum
        rm += momentum * stats["mean"].astype(rm.dtype)
        rv *= 1 - momentum
        rv += momentum * (stats["var"] * (m / (m - 1))).astype(rv.dtype)
        running_mean._version[0] += 1
        running_var._version[0] += 1
    return out
