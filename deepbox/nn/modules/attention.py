"""``MultiheadAttention``, as ``torch.nn.MultiheadAttention``.

Projections are ``F.linear`` calls; the attention itself is the fused
``scaled_dot_product_attention`` (one graph node per call). Masks follow
``nn.MultiheadAttention``'s convention: in a boolean ``attn_mask`` or
``key_padding_mask`` True marks a position that may NOT be attended to (the opposite
of ``F.scaled_dot_product_attention``'s); float masks are added to the scores.
"""
from __future__ import annotations

import deepbox
from deepbox import backend
from deepbox.nn import functional as F
from deepbox.nn import init
from deepbox.nn.modules.linear import Linear
from deepbox.nn.modules.module import Module
from deepbox.nn.parameter import Parameter
from deepbox.ops.attention import scaled_dot_product_attention
from deepbox.tensor import Tensor, _check_device, _make

__all__ = ["MultiheadAttention", "NonDynamicallyQuantizableLinear"]

xp = backend.xp


class NonDynamicallyQuantizableLinear(Linear):
    """``Linear`` under the name PyTorch gives ``MultiheadAttention.out_proj``."""


def _param(shape, dtype=None, device=None) -> Parameter:
    if device is not None:
        _check_device(device)
    nd = backend.to_numpy_dtype(dtype) if dtype is not None else backend.default_float_np()
    return Parameter(_make(xp.empty(shape, dtype=nd)))


def _mask_array(mask, what, dtype):
    """A mask as an array: bool stays bool (True = masked out), anything else becomes ``dtype``."""
    if mask is None:
        return None
    arr = mask._data if isinstance(mask, Tensor) else xp.asarray(mask)
    if arr.dtype == xp.bool_:
        return arr
    if arr.dtype.kind != "f":
        raise TypeError(f"only bool and floating types of {what} are supported, got {arr.dtype}")
    return arr.astype(dtype, copy=False)


def _merge_masks(attn_mask, key_padding_mask, N, h, L, S, dtype):
    """One mask for the fused attention: a bool array (True = may attend) or a float array added to scores."""
    am = None
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if attn_mask.shape != (L, S):
                raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be {(L, S)}.")
            am = attn_mask
        elif attn_mask.ndim == 3:
            if attn_mask.shape != (N * h, L, S):
                raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                                   f"{(N * h, L, S)}.")
            am = attn_mask.reshape(N, h, L, S)
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    kpm = None
    if key_padding_mask is not None:
        if key_padding_mask.shape != (N, S):
            raise RuntimeError(f"expected key_padding_mask of shape {(N, S)}, got {key_padding_mask.shape}")
        kpm = key_padding_mask.reshape(N, 1, 1, S)
    masks = [m for m in (am, kpm) if m is not None]
    if not masks:
        return None
    if all(m.dtype == xp.bool_ for m in masks):
        allowed = ~masks[0]
        for m in masks[1:]:
            allowed = allowed & ~m
        return allowed
    total = xp.zeros((), dtype)
    for m in masks:
        total = total + (xp.where(m, xp.asarray(-xp.inf, dtype), xp.asarray(0, dtype)) if m.dtype == xp.bool_ else m)
    return total.astype(dtype, copy=False)


class MultiheadAttention(Module):
    """Multi-head attention: ``concat(head_1..head_h) W_o``, ``head_i = attention(Q W_q^i, K W_k^i, V W_v^i)``.

    Args:
        embed_dim: model width E. num_heads: heads (E must divide evenly).
        dropout: dropout on the attention weights (training only). bias: biases of the projections.
        add_bias_kv: learn a bias row appended to keys and values. add_zero_attn: append a zero key/value.
        kdim, vdim: key and value widths (default E; when they differ the projections are separate).
        batch_first: (N, L, E) instead of (L, N, E).

    Shape:
        query (L, N, E), key (S, N, kdim), value (S, N, vdim) (or batch-first, or unbatched without N);
        key_padding_mask (N, S); attn_mask (L, S) or (N * num_heads, L, S). Returns
        ``(attn_output, attn_weights)``: (L, N, E) and (N, L, S) averaged over heads or
        (N, num_heads, L, S), or None without ``need_weights``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        if embed_dim % num_heads != 0:
            raise AssertionError("embed_dim must be divisible by num_heads")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = _param((embed_dim, embed_dim), dtype, device)
            self.k_proj_weight = _param((embed_dim, self.kdim), dtype, device)
            self.v_proj_weight = _param((embed_dim, self.vdim), dtype, device)
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = _param((3 * embed_dim, embed_dim), dtype, device)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = _param((3 * embed_dim,), dtype, device)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = _param((1, 1, embed_dim), dtype, device)
            self.bias_v = _param((1, 1, embed_dim), dtype, device)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:
                # self-attention: one GEMM for all three projections
                return F.linear(query, w, b).chunk(3, dim=-1)
            wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
            if key is value:
                k, v = F.linear(key, w[E:], None if b is None else b[E:]).chunk(2, dim=-1)
                return F.linear(query, wq, bq), k, v
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):
        if query.dim() not in (2, 3):
            raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.dim()}-D "
                                 "query tensor")
        batched = query.dim() == 3
        if key.dim() != query.dim() or value.dim() != query.dim():
            raise AssertionError("query, key and value must all be batched (3-D) or all unbatched (2-D)")
        if query.shape[-1] != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but got {query.shape[-1]}")
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise AssertionError(f"expected key/value widths {self.kdim}/{self.vdim}, got {key.shape[-1]}/"
                                 f"{value.shape[-1]}")
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                               "method `generate_square_subsequent_mask` to create this mask.")
        same_qk, same_kv = query is key, key is value
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0) if isinstance(key_padding_mask, Tensor) else \
                    xp.asarray(key_padding_mask)[None]
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if same_qk:
            key = query
        if same_kv:
            value = key
        N, L, E = query.shape
        S = key.shape[1]
        h, d = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        dt = q._data.dtype
        am = _mask_array(attn_mask, "attn_mask", dt)
        kpm = _mask_array(key_padding_mask, "key_padding_mask", dt)
        if self.bias_k is not None:
            k = deepbox.cat([k, self.bias_k.expand(N, 1, E)], 1)
            v = deepbox.cat([v, self.bias_v.expand(N, 1, E)], 1)
            am = None if am is None else xp.concatenate([am, xp.zeros(am.shape[:-1] + (1,), am.dtype)], -1)
            kpm = None if kpm is None else xp.concatenate([kpm, xp.zeros((N, 1), kpm.dtype)], -1)
            S += 1
        q = q.reshape(N, L, h, d).transpose(1, 2)
        k = k.reshape(N, S, h, d).transpose(1, 2)
        v = v.reshape(N, S, h, d).transpose(1, 2)
        if self.add_zero_attn:
            k = deepbox.cat([k, deepbox.zeros((N, h, 1, d), dtype=k.dtype)], 2)
            v = deepbox.cat([v, deepbox.zeros((N, h, 1, d), dtype=v.dtype)], 2)
            am = None if am is None else xp.concatenate([am, xp.zeros(am.shape[:-1] + (1,), am.dtype)], -1)
            kpm = None if kpm is None else xp.concatenate([kpm, xp.zeros((N, 1), kpm.dtype)], -1)
            S += 1
        p = self.dropout if self.training else 0.0
        use_causal = is_causal and kpm is None and not need_weights and not self.add_zero_attn \
            and self.bias_k is None and L == S
        mask = None if use_causal else _merge_masks(am, kpm, N, h, L, S, dt)
        res = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=use_causal,
                                           need_weights=need_weights)
        out, weights = res if need_weights else (res, None)
        out = self.out_proj(out.transpose(1, 2).reshape(N, L, E))
        if batched and not self.batch_first:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(0)
        if weights is not None:
            if average_attn_weights:
                weights = weights.mean(dim=1)
            if not batched:
                weights = weights.squeeze(0)
        return out, weights
