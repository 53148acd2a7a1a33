"""Fast scaled dot-product attention: the softmax and its backward as compiled passes over the rows.

Twins of ``deepbox.ops.attention.AttentionFn`` and ``CausalAttentionFn`` (same values): the
softmax (mask, scale, max, exp, normalisation in one pass over each row) and its backward
``P * (dP - delta)`` run as compiled kernels split over the threads, and the causal form applies
the scale inside the softmax (no scaled copy of ``q``). They take float32/64 inputs of at most 4
dimensions. The general form gives BLAS its own threads back first (a fast convolution leaves it at
one); the causal form splits its batch over deepbox's threads with BLAS on one thread (see
``CausalAttentionKernelFn``) where the work is large enough.
"""
from __future__ import annotations

from deepbox import backend, kernels
from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.kernels import switch, threads
from deepbox.ops.attention import AttentionFn, CausalAttentionFn, _row_dots, _softmax_inplace

__all__ = ["AttentionKernelFn", "CausalAttentionKernelFn"]


def _accepts(*arrays):
    """float32/64 arrays of at most 4 dimensions (the kernels' row views)."""
    arrays = [getattr(a, "_data", a) for a in arrays]
    return all(a.ndim <= 4 for a in arrays) and switch.kernels_for(*arrays) is not None


@kernels.fast_twin(AttentionFn)
class AttentionKernelFn(AttentionFn):
    """``AttentionFn`` with its softmax and the softmax's backward as compiled row passes over the threads
    (for C-contiguous scores; other layouts take the reference's NumPy steps)."""

    accepts = staticmethod(_accepts)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        threads.blas_multi()
        ctx.compiled = switch.kernels()
        return AttentionFn.forward(ctx, *args, **kwargs)

    @staticmethod
    def backward(ctx, *grads):
        threads.blas_multi()
        return AttentionFn.backward(ctx, *grads)

    def softmax(self, s, masked):
        if s.flags.c_contiguous and s.size:
            s2 = s.reshape(-1, s.shape[-1])
            threads.parallel(self.compiled.softmax_rows, s2.shape[0], s2, work=threads.split_work(s.size, 1.0))
            return s
        return _softmax_inplace(s, masked)

    def softmax_backward(self, dp, p, dout, out, dweights_added):
        if not dweights_added and dp.flags.c_contiguous and p.flags.c_contiguous \
                and dp.shape == p.shape and dp.shape[:-1] == dout.shape[:-1] and dp.size:
            delta = _row_dots(dout, out)
            threads.parallel(self.compiled.softmax_bwd, delta.shape[0], dp.reshape(delta.shape + (-1,)),
                             p.reshape(delta.shape + (-1,)), delta, 0, work=threads.split_work(dp.size, 0.3))
        else:
            AttentionFn.softmax_backward(dp, p, dout, out, dweights_added)


@kernels.fast_twin(CausalAttentionFn)
class CausalAttentionKernelFn(Function):
    """Causal attention computed in blocks of queries, skipping the fully masked key blocks.

    Query block ``[r0, r1)`` can only see keys ``[0, r1)``, so with ``nb`` blocks the score
    matrices hold about ``(nb + 1) / (2 nb)`` of the L x L entries, and every GEMM and softmax
    pass shrinks with them. Used for ``is_causal`` self-attention of L >= 128 without weights.

    The batch (the leading axis) is split over the threads, each running all the blocks' products
    and softmaxes of its part with BLAS on one thread: NumPy runs a stacked product as one small GEMM
    per matrix (a 64 x 32 by 32 x 128 product per head and sequence at d 128, 4 heads), which BLAS's
    own threads barely speed up.
    """

    accepts = staticmethod(_accepts)

    @staticmethod
    def forward(ctx, q, k, v, *, scale, edges, dropout_p=0.0, generator=None):
        # in q's memory order: q, k and v of nn.MultiheadAttention are (N, L, heads, E) memory seen as
        # (N, heads, L, E), and an output stored the same way goes back to (N, L, heads * E) without a copy
        out = xp.empty_like(q, dtype=xp.result_type(q, v), shape=q.shape[:-1] + (v.shape[-1],))
        ctx.compiled = K = switch.kernels()
        qs = q      # the scale is applied inside the compiled softmax (no scaled copy of q)
        lead = q.shape[:-2]
        sdt = xp.result_type(q, k)
        ps = [xp.empty(lead + (r1 - r0, r1), sdt) for r0, r1 in zip(edges[:-1], edges[1:])]
        keeps = [None] * len(ps)
        if dropout_p > 0:      # drawn here, block by block, so that the threads' split leaves the draws alone
            rng = backend.rng(generator)
            for i, p in enumerate(ps):
                keep = (rng.random(p.shape, dtype=p.dtype) >= dropout_p).astype(p.dtype)
                keep *= 1.0 / (1.0 - dropout_p)
                keeps[i] = keep
        _over_batch(q, k, v, _causal_forward, K, qs, k, v, out, ps, keeps, edges, sdt.type(scale))
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(qs, k, v, out, *ps)
            ctx.keeps = keeps
            ctx.edges = edges
            ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, dout):
        qs, k, v, out, *ps = ctx.saved_tensors
        # gradients in their inputs' memory order (see forward): the head merge upstream is then a view
        dq = xp.empty_like(qs, dtype=dout.dtype)
        dk = xp.empty_like(k, dtype=dout.dtype)
        dv = xp.empty_like(v, dtype=dout.dtype)
        _over_batch(qs, k, v, _causal_backward, ctx.compiled, qs, k, v, out, ps, ctx.keeps, ctx.edges, dout,
                    dq, dk, dv, xp.asarray(ctx.scale, dout.dtype))
        need = ctx.needs_input_grad
        return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None)


SPLIT_MIN_WORK = 1 << 20    # q.size * keys: the smallest attention split over the threads


def _over_batch(q, k, v, fn, *args):
    """``fn(lo, hi, *args)`` over the leading axis: split over the threads with BLAS on one thread in each
    when q, k and v share their leading dimensions (no broadcasting) and there is enough work, else in
    the calling thread with BLAS on its own threads. BLAS stays at one thread after a split (as after a
    convolution or a split linear layer, see ``deepbox.kernels.linear``)."""
    n = q.shape[0] if q.ndim >= 3 else 1
    if (n > 1 and threads.num_threads() > 1 and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            and q.size * k.shape[-2] >= SPLIT_MIN_WORK and threads.blas_single()):
        threads.parallel(fn, n, *args, work=1 << 30)
        return
    threads.blas_multi()
    fn(None, None, *args)


def _causal_forward(lo, hi, K, q, k, v, out, ps, keeps, edges, scale):
    """The blocks of queries for the batch entries ``lo:hi`` (all with ``None, None``)."""
    part = slice(lo, hi)
    q, k, v, out = q[part], k[part], v[part], out[part]
    for (r0, r1), p, keep in zip(zip(edges[:-1], edges[1:]), ps, keeps):
        s = p[part]
        xp.matmul(q[..., r0:r1, :], k[..., :r1, :].swapaxes(-1, -2), out=s)
        s3 = s.reshape(-1, r1 - r0, r1)
        threads.parallel(K.softmax_causal, s3.shape[0], s3, r0, scale, work=threads.split_work(s.size, 1.0))
        pd = s if keep is None else s * keep[part]
        xp.matmul(pd, v[..., :r1, :], out=out[..., r0:r1, :])


def _causal_backward(lo, hi, K, qs, k, v, out, ps, keeps, edges, dout, dq, dk, dv, scale):
    part = slice(lo, hi)
    qs, k, v, out, dout, dq, dk, dv = (a[part] for a in (qs, k, v, out, dout, dq, dk, dv))
    delta = _row_dots(dout, out)
    blocks = list(zip(zip(edges[:-1], edges[1:]), ps, keeps))
    # the last block sees every key: it writes dk and dv, the earlier (shorter) blocks add to them
    for n_block, ((r0, r1), p, keep) in enumerate(reversed(blocks)):
        p = p[part]
        keep = None if keep is None else keep[part]
        do = dout[..., r0:r1, :]
        pd = p if keep is None else p * keep
        if n_block == 0:
            xp.matmul(pd.swapaxes(-1, -2), do, out=dv[..., :r1, :])
        else:
            dv[..., :r1, :] += xp.matmul(pd.swapaxes(-1, -2), do)
        dp = xp.matmul(do, v[..., :r1, :].swapaxes(-1, -2))
        if keep is not None:
            dp *= keep
        if dp.flags.c_contiguous and p.flags.c_contiguous:
            threads.parallel(K.softmax_bwd, delta.shape[0], dp.reshape(-1, r1 - r0, r1), p.reshape(-1, r1 - r0, r1),
                             delta, r0, work=threads.split_work(dp.size, 0.3))
        else:
            dp -= delta.reshape(dout.shape[:-1])[..., r0:r1, None]
            dp *= p
        xp.matmul(dp, k[..., :r1, :], out=dq[..., r0:r1, :])
        if n_block == 0:
            xp.matmul(dp.swapaxes(-1, -2), qs[..., r0:r1, :], out=dk[..., :r1, :])
        else:
            dk[..., :r1, :] += xp.matmul(dp.swapaxes(-1, -2), qs[..., r0:r1, :])
    dq *= scale
    dk *= scale      # forward kept q unscaled
