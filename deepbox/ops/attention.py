"""Scaled dot-product attention as one fused ``Function``.

``softmax(q k^T * scale + mask) @ v`` composed from primitives makes six graph nodes
and keeps four (L, S) arrays alive per head for backward. Fused, the forward keeps
one: the attention probabilities ``P``. The softmax runs in place on the score array,
and the backward uses the identity ``rowsum(dP * P) = rowsum(dout * out)`` (with or
without dropout), so the softmax's backward costs one (L, E) reduction instead of an
(L, S) one::

    dv = P_drop^T @ dout
    dP = (dout @ v^T) * keep / (1 - p)
    dS = P * (dP - rowsum(dout * out))
    dq = dS @ k * scale,   dk = dS^T @ q * scale

Rows whose every key is masked out give zeros (as PyTorch's ``scaled_dot_product_attention``
does), not NaN.

The fast twins (``deepbox/kernels/attention.py``) run the softmax and its backward as compiled
passes over the rows.
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.ops._dispatch import choose
from deepbox.tensor import Tensor

__all__ = ["scaled_dot_product_attention", "AttentionFn", "CausalAttentionFn"]


def _softmax_inplace(s, masked):
    m = s.max(axis=-1, keepdims=True)
    if masked:
        m[~xp.isfinite(m)] = 0.0        # a fully masked row: exp(-inf - 0) = 0 everywhere
    s -= m
    xp.exp(s, out=s)
    z = s.sum(axis=-1, keepdims=True)
    if masked:
        z[z == 0] = 1.0
    s /= z
    return s


class AttentionFn(Function):
    """``(out, weights) = attention(q, k, v, mask)``; ``weights`` only with ``need_weights``.

    ``mask`` is None, a boolean array (True = may attend) or a float array added to the
    scores (it gets a gradient when it requires one). ``weights`` are the probabilities
    after dropout, as ``nn.MultiheadAttention`` returns them.
    """

    @staticmethod
    def softmax(s, masked):
        """The softmax of the scores over the last axis, in place."""
        return _softmax_inplace(s, masked)

    @staticmethod
    def softmax_backward(dp, p, dout, out, dweights_added):
        """``dP -> dS = P * (dP - rowsum(dP * P))`` in place; ``rowsum(dP * P) = rowsum(dout * out)``
        unless a gradient of the weights was added into ``dP``."""
        if dweights_added:
            delta = (dp * p).sum(axis=-1, keepdims=True)
        else:
            delta = xp.einsum("...e,...e->...", dout, out)[..., None]
        dp -= delta
        dp *= p

    @staticmethod
    def forward(ctx, q, k, v, mask, *, scale, causal=False, dropout_p=0.0, need_weights=False, generator=None):
        qs = q * xp.asarray(scale, q.dtype)
        s = xp.matmul(qs, k.swapaxes(-1, -2))
        masked = False
        if mask is not None:
            if mask.dtype == xp.bool_:
                xp.copyto(s, -xp.inf, where=~mask)
            else:
                s += mask
            masked = True
        if causal:
            L, S = s.shape[-2], s.shape[-1]
            xp.copyto(s, -xp.inf, where=xp.triu(xp.ones((L, S), bool), 1))
            masked = True
        p = ctx.softmax(s, masked)
        keep = None
        pd = p
        if dropout_p > 0.0:
            if dropout_p >= 1.0:
                keep = xp.zeros(p.shape, p.dtype)
            else:
                rnd = backend.rng(generator).random(p.shape, dtype=p.dtype)
                keep = (rnd >= dropout_p).astype(p.dtype)
                keep *= 1.0 / (1.0 - dropout_p)
            pd = p * keep
        out = xp.matmul(pd, v)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(qs, k, v, p, out)
            ctx.keep = keep
            ctx.scale = scale
        if need_weights:
            return out, pd
        return out

    @staticmethod
    def backward(ctx, dout, dweights=None):
        qs, k, v, p, out = ctx.saved_tensors
        keep = ctx.keep
        ctx.keep = None
        pd = p if keep is None else p * keep
        need = ctx.needs_input_grad
        dv = xp.matmul(pd.swapaxes(-1, -2), dout) if need[2] else None
        dp = xp.matmul(dout, v.swapaxes(-1, -2))
        if dweights is not None:
            dp += dweights
        if keep is not None:
            dp *= keep
        ctx.softmax_backward(dp, p, dout, out, dweights is not None)     # dS, in place
        scale = xp.asarray(ctx.scale, dp.dtype)
        dq = xp.matmul(dp, k) * scale if need[0] else None
        dk = xp.matmul(dp.swapaxes(-1, -2), qs) if need[1] else None
        dmask = dp if need[3] else None
        return dq, dk, dv, dmask


class CausalAttentionFn(Function):
    """Causal attention computed in blocks of queries, skipping the fully masked key blocks.

    Query block ``[r0, r1)`` can only see keys ``[0, r1)``, so with ``nb`` blocks the score
    matrices hold about ``(nb + 1) / (2 nb)`` of the L x L entries, and every GEMM and softmax
    pass shrinks with them. Used for ``is_causal`` self-attention of L >= 128 without weights.
    """

    @staticmethod
    def forward(ctx, q, k, v, *, scale, edges, dropout_p=0.0, generator=None):
        # in q's memory order: q, k and v of nn.MultiheadAttention are (N, L, heads, E) memory seen as
        # (N, heads, L, E), and an output stored the same way goes back to (N, L, heads * E) without a copy
        out = xp.empty_like(q, dtype=xp.result_type(q, v), shape=q.shape[:-1] + (v.shape[-1],))
        qs = q * xp.asarray(scale, q.dtype)
        ps, keeps = [], []
        rng = backend.rng(generator) if dropout_p > 0 else None
        for r0, r1 in zip(edges[:-1], edges[1:]):
            s = xp.matmul(qs[..., r0:r1, :], k[..., :r1, :].swapaxes(-1, -2))
            # inside the block, query r0 + i sees keys up to r0 + i
            xp.copyto(s[..., r0:r1], -xp.inf, where=xp.triu(xp.ones((r1 - r0, r1 - r0), bool), 1))
            p = _softmax_inplace(s, False)
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
        qs, k, v, out, *ps = ctx.saved_tensors
        keeps, edges = ctx.keeps, ctx.edges
        need = ctx.needs_input_grad
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
            dp -= delta.reshape(dout.shape[:-1])[..., r0:r1, None]
            dp *= p
            xp.matmul(dp, k[..., :r1, :], out=dq[..., r0:r1, :])
            if n_block == 0:
                xp.matmul(dp.swapaxes(-1, -2), qs[..., r0:r1, :], out=dk[..., :r1, :])
            else:
                dk[..., :r1, :] += xp.matmul(dp.swapaxes(-1, -2), qs[..., r0:r1, :])
        dq *= scale                    # dk is already scaled: it came from the scaled q
        return (dq if need[0] else None, dk if need[1] else None, dv if need[2] else None)


def _row_dots(a, b):
    """``(a * b).sum(-1)`` as a C-contiguous ``(rows, L)`` array (rows = the leading dims' product).

    ``einsum`` reads both operands once, without the product's temporary, for any strides.
    """
    d = xp.einsum("...e,...e->...", a, b)
    return d.reshape(-1, d.shape[-1])


def _causal_edges(L):
    nb = min(8, L // 64)
    return [round(i * L / nb) for i in range(nb + 1)]


def _check_qkv(query, key, value):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"scaled_dot_product_attention: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: {name} needs at least 2 dims (..., seq, features), "
                             f"got shape {tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: query and key feature sizes differ: "
                         f"{query.shape[-1]} vs {key.shape[-1]}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key and value sequence lengths differ: "
                         f"{key.shape[-2]} vs {value.shape[-2]}")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False,
                                 *, need_weights: bool = False, generator=None):
    """``softmax(query @ key^T * scale + mask) @ value``, as ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        query: (..., L, E). key: (..., S, E). value: (..., S, Ev).
        attn_mask: broadcastable to (..., L, S); boolean (True = the query may attend to the key)
            or float (added to the scores).
        dropout_p: dropout probability on the attention weights (applied whenever > 0, as in PyTorch).
        is_causal: mask out keys after the query's position (top-left aligned, as in PyTorch).
        scale: defaults to ``1 / sqrt(E)``.
        enable_gqa: grouped-query attention: key/value heads (dim -3) are repeated to match the query's.
        need_weights: deepbox extension: also return the attention weights (after dropout).

    Returns:
        (..., L, Ev), or ``(output, weights)`` with ``need_weights``.
    """
    _check_qkv(query, key, value)
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        if rep * key.shape[-3] != query.shape[-3]:
            raise ValueError(f"enable_gqa: query heads ({query.shape[-3]}) must be a multiple of key heads "
                             f"({key.shape[-3]})")
        key = key.repeat_interleave(rep, dim=-3)
        value = value.repeat_interleave(rep, dim=-3)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    mask = attn_mask
    if mask is not None and not isinstance(mask, Tensor):
        mask = xp.asarray(mask)
    if isinstance(mask, Tensor) and mask._data.dtype == xp.bool_:
        mask = mask._data      # a boolean mask is a constant
    if isinstance(mask, Tensor) and mask._data.dtype != query._data.dtype:
        mask = mask.to(query.dtype)
    L, S = query.shape[-2], key.shape[-2]
    if is_causal and not need_weights and L == S and L >= 128:
        fn = choose(CausalAttentionFn, query, key, value)
        return fn.apply(query, key, value, scale=float(scale), edges=_causal_edges(L), dropout_p=float(dropout_p),
                        generator=generator)
    fn = choose(AttentionFn, query, key, value)
    return fn.apply(query, key, value, mask, scale=float(scale), causal=bool(is_causal), dropout_p=float(dropout_p),
                    need_weights=need_weights, generator=generator)
