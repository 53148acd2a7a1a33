"""The fused scaled dot-product attention against PyTorch: values and gradients of q, k, v (and float masks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
from deepbox.ops.attention import scaled_dot_product_attention as sdpa
from tests.helpers import check_op

rng = np.random.default_rng(0)


def qkv(*lead, L=5, S=7, E=4, Ev=3):
    return (rng.standard_normal(lead + (L, E)), rng.standard_normal(lead + (S, E)), rng.standard_normal(lead + (S, Ev)))


def test_plain_and_scale():
    check_op(lambda q, k, v: sdpa(q, k, v), *qkv(2, 3),
             torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v))
    check_op(lambda q, k, v: sdpa(q, k, v, scale=0.3), *qkv(2),
             torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, scale=0.3))


def test_causal():
    q, k, v = qkv(2, 2, L=6, S=6)
    check_op(lambda q, k, v: sdpa(q, k, v, is_causal=True), q, k, v,
             torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True))
    # L != S: top-left aligned, as PyTorch
    q, k, v = qkv(2, L=4, S=6)
    check_op(lambda q, k, v: sdpa(q, k, v, is_causal=True), q, k, v,
             torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_bool_mask_with_fully_masked_row():
    q, k, v = qkv(2, 3)
    m = rng.random((5, 7)) > 0.4
    m[2] = False  # a query that may attend to nothing gives zeros, as in PyTorch
    out = check_op(lambda q, k, v: sdpa(q, k, v, attn_mask=deepbox.tensor(m)), q, k, v,
                   torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(m)))
    assert np.all(out._data[..., 2, :] == 0)


def test_float_mask_gets_gradient():
    q, k, v = qkv(2, 3)
    fm = rng.standard_normal((3, 5, 7))
    check_op(lambda q, k, v, m: sdpa(q, k, v, attn_mask=m), q, k, v, fm,
             torch_fn=lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m))


def test_float32():
    q, k, v = (a.astype(np.float32) for a in qkv(2, 4, L=16, S=16, E=8, Ev=8))
    check_op(lambda q, k, v: sdpa(q, k, v, is_causal=True), q, k, v, dtype=np.float32,
             torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_dropout_gradient_matches_composed_twin():
    # the same keep-mask applied by hand to the composed formula: the fused backward must agree
    q, k, v = qkv(2, 2)
    g = deepbox.Generator().manual_seed(3)
    dq = [deepbox.tensor(a, requires_grad=True) for a in (q, k, v)]
    out, w = sdpa(*dq, dropout_p=0.3, need_weights=True, generator=g)
    p = TF.softmax(torch.tensor(q) @ torch.tensor(k).transpose(-1, -2) / 2.0, -1)
    keep = torch.tensor(w._data) / p.detach()           # the kept entries are 1/(1-p), the others 0
    tq = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    tout = (TF.softmax(tq[0] @ tq[1].transpose(-1, -2) / 2.0, -1) * keep) @ tq[2]
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=1e-9, atol=1e-12)
    cot = rng.standard_normal(out.shape)
    (out * deepbox.tensor(cot)).sum().backward()
    (tout * torch.tensor(cot)).sum().backward()
    for a, b in zip(dq, tq):
        np.testing.assert_allclose(a.grad._data, b.grad.numpy(), rtol=1e-7, atol=1e-10)
    kept = np.unique(np.round(keep.numpy(), 6))
    assert set(kept) <= {0.0, round(1 / 0.7, 6)}


def test_causal_mask_blocks_the_future():
    q, k, v = (deepbox.tensor(a) for a in qkv(1, L=6, S=6))
    base = sdpa(q, k, v, is_causal=True)._data
    k2, v2 = k._data.copy(), v._data.copy()
    k2[..., 4:, :] += 5.0
    v2[..., 4:, :] -= 3.0
    new = sdpa(q, deepbox.tensor(k2), deepbox.tensor(v2), is_causal=True)._data
    np.testing.assert_array_equal(new[..., :4, :], base[..., :4, :])
    assert not np.allclose(new[..., 4:, :], base[..., 4:, :])


def test_bad_inputs():
    q, k, v = (deepbox.tensor(a) for a in qkv(2))
    with pytest.raises(ValueError, match="feature sizes"):
        sdpa(q, deepbox.tensor(rng.standard_normal((2, 7, 3))), v)
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        sdpa(q, k, v, attn_mask=deepbox.ones(5, 7, dtype=deepbox.bool), is_causal=True)


@pytest.mark.parametrize("L", [128, 130, 256])
def test_long_causal_uses_blocks_and_matches_torch(L, kernel_mode):
    """The query-block path, as the reference (numpy) and as its fast twin (numba), against PyTorch."""
    q, k, v = qkv(1, 2, L=L, S=L, E=3, Ev=2)
    out = check_op(lambda q, k, v: sdpa(q, k, v, is_causal=True), q, k, v,
                   torch_fn=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True))
    fn = "CausalAttentionKernelFn" if kernel_mode == "numba" else "CausalAttentionFn"
    assert out.grad_fn.name() == fn + "Backward"


def test_blocked_causal_dropout_gradient_by_finite_differences():
    q, k, v = qkv(1, L=128, S=128, E=2, Ev=2)
    cot = rng.standard_normal((1, 128, 2))

    def f(qa, ka, va, grad=False):
        g = deepbox.Generator().manual_seed(7)   # the same dropout mask on every call
        ts = [deepbox.tensor(a, requires_grad=grad) for a in (qa, ka, va)]
        out = sdpa(*ts, is_causal=True, dropout_p=0.2, generator=g)
        val = (out * deepbox.tensor(cot)).sum()
        if grad:
            val.backward()
            return [t.grad._data for t in ts]
        return float(val)

    grads = f(q, k, v, grad=True)
    eps = 1e-6
    for i, base in enumerate((q, k, v)):
        d = rng.standard_normal(base.shape)
        args_p = [a + eps * d if j == i else a for j, a in enumerate((q, k, v))]
        args_m = [a - eps * d if j == i else a for j, a in enumerate((q, k, v))]
        fd = (f(*args_p) - f(*args_m)) / (2 * eps)
        np.testing.assert_allclose((grads[i] * d).sum(), fd, rtol=1e-6, atol=1e-8)
