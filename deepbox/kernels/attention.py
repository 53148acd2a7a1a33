"""Fast scaled dot-product attention: the softmax and its backward as compiled passes over the rows.

Twins of ``deepbox.ops.attention.AttentionFn`` and ``CausalAttentionFn`` (same values): the
softmax (mask, scale, max, exp, normalisation in one pass over each row) and its backward
``P * (dP - delta)`` run as compiled kernels split over the threads, and the causal form applies
the scale inside the softmax (no scaled copy of ``q``). They take float32/64 inputs of at most 4
dimensions, and give BLAS its own threads back first (a fast convolution leaves it at one).
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
    """

    accepts = staticmethod(_accepts)

    @staticmethod
    def forward(ctx, q, k, v, *, scale, edges, dropout_p=0.0, generator=None):
        threads.blas_multi()
        # in q's memory order: q, k and v of nn.MultiheadAttention are (N, L, heads, E) memory seen as
        # (N, heads, L, E), and an output stored the same way goes back to (N, L, heads * E) without a copy
        out = xp.empty_like(q, dtype=xp.result_type(q, v), shape=q.shape[:-1] + (v.shape[-1],))
        ctx.compiled = K = switch.kernels()
        qs = q      # the scale is applied inside the compiled softmax (no scaled copy of q)
        ps, keeps = [], []
        rng = backend.rng(generator) if dropout_p > 0 else None
        for r0, r1 in zip(edges[:-1], edges[1:]):
            s = xp.matmul(qs[..., r0:r1, :], k[..., :r1, :].swapaxes(-1, -2))
            s3 = s.reshape(-1, r1 - r0, r1)
            threads.parallel(K.softmax_causal, s3.shape[0], s3, r0, s.dtype.type(scale),
                             work=threads.split_work(s.size, 1.0))
            p = s
            keep = None
            pd = p
            if dropout_p > 0:
                keep = (rng.random(p.shape, dtype=p.dtype) >= dropout_p).astype(p.dtype)
                keep *= 1.0 / (1.0 - dropout_p)
                pd = p * keep
            xp.matmul(pd, v[..., :r1, :], out=out[..., r0:r1, :])
            ps.append(p)
            keeps.append(keep)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(qs, k, v, out, *ps)
            ctx.keeps = keeps
            ctx.edges = edges
            ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, dout):
        threads.blas_multi()
        qs, k, v, out, *ps = ctx.saved_tensors
        keeps, edges = ctx.keeps, ctx.edges
        need = ctx.needs_input_grad
        K = ctx.compiled
        # gradients in their inputs' memory order (see forward): the head merge upstream is then a view
        dq = xp.empty_like(qs, dtype=dout.dtype)
        dk = xp.empty_like(k, dtype=dout.dtype)
        dv = xp.empty_like(v, dtype=dout.dtype)
        delta = _row_dots(dout, out)
        scale = xp.asarray(ctx.scale, dout.dtype)
        blocks = list(zip(zip(edges[:-1], edges[1:]), ps, keeps))
        # the last block sees every key: it writes dk and dv, the earlier (shorter) blocks add to them
        for n_block, ((r0, r1), p, keep) in enumerate(reversed(blocks)):
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
                threads.parallel(K.softmax_bwd, delta.shape[0], dp.reshape(-1, r1 - r0, r1),
                                 p.reshape(-1, r1 - r0, r1), delta, r0, work=threads.split_work(dp.size, 0.3))
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
        return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None)
