"""Batch norm whose statistics are those of the global batch: the union of every rank's batch.

With data parallelism each rank sees N/world samples; plain batch norm would normalise each
rank's slice by its own (noisier) statistics. ``SyncBatchNorm`` all-reduces per-channel sums so
that every rank normalises by the mean and variance of the whole batch, and all-reduces the two
per-channel sums that backward needs, so that the gradient is the whole batch's too.

Forward, with M the global number of values per channel (over ranks, batch and spatial dims): each
rank computes its count ``n_r``, mean ``m_r`` and centred sum of squares ``Q_r`` (stable: no
E[x^2] - E[x]^2 on the data), and one all-reduce of ``[n_r, n_r m_r, Q_r + n_r m_r^2]`` gives
``mean = sum(n_r m_r) / M`` and ``var = sum(Q_r + n_r m_r^2) / M - mean^2`` (Chan's combination;
float64 on C numbers); then ``xhat = (x - mean) / sqrt(var + eps)``.

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
        n = x.size // C
        # local mean and centred sum of squares (stable), then one all-reduce of
        # [n, n * mean_r, M2_r + n * mean_r^2] per channel: Chan's combination of the ranks' moments
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu
        m2 = _channel_dot(xc, xc)
        mu64 = mu.reshape(C).astype(xp.float64)
        local = xp.concatenate([[n], n * mu64, m2 + n * mu64 * mu64])
        _allreduce(pg, local)
        count = local[0]
        mean64 = local[1:C + 1] / count
        var64 = xp.maximum(local[C + 1:] / count - mean64 * mean64, 0.0)
        mean, var = mean64.astype(x.dtype), var64.astype(x.dtype)
        rstd = (1.0 / xp.sqrt(var64 + eps)).astype(x.dtype)
        xc += (mu.reshape(C) - mean).reshape(shape)     # now x - global mean
        xc *= rstd.reshape(shape)                       # xhat, in place
        xhat = xc
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
        C = xhat.shape[1]
        sum_dy = grad.sum(axis=axes)
        sum_dy_xhat = _channel_dot(grad, xhat)
        # with g = grad * weight, S1 = sum(g) and S2 = sum(g * xhat) are the per-channel sums times weight
        w = weight if weight is not None else xp.ones(C, dtype=xhat.dtype)
        sums = xp.concatenate([sum_dy * w, sum_dy_xhat * w]).astype(xp.float64)
        _allreduce(ctx.pg, sums)
        s1 = (sums[:C] / count).astype(xhat.dtype).reshape(shape)
        s2 = (sums[C:] / count).astype(xhat.dtype).reshape(shape)
        # dx = rstd * (g - S1/M - xhat * S2/M), computed with one temporary
        dx = xhat * -s2
        dx -= s1
        dx += grad * w.reshape(shape)
        dx *= rstd.reshape(shape)
        dw = sum_dy_xhat.astype(weight.dtype) if weight is not None else None
        db = sum_dy if ctx.has_bias else None
        return dx, dw, db


def _channel_dot(a, b):
    """Per-channel sum of ``a * b`` over every dim but dim 1, without a temporary of ``a``'s size."""
    C = a.shape[1]
    if a.ndim == 2:
        return xp.einsum("nc,nc->c", a, b).astype(xp.float64)
    a3 = a.reshape(a.shape[0], C, -1)
    b3 = b.reshape(b.shape[0], C, -1)
    return xp.einsum("ncl,ncl->c", a3, b3).astype(xp.float64)


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
