"""MultiheadAttention and the transformer layers against PyTorch with the same weights (float64):
outputs, attention weights, and gradients of inputs and every parameter; masks; positional encodings."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as dnn
from tests.helpers import assert_close, copy_torch_weights

rng = np.random.default_rng(0)
TOL = dict(rtol=1e-7, atol=1e-9)


def _pair(kind, *args, **kw):
    torch.manual_seed(0)
    t = getattr(torch.nn, kind)(*args, **kw).double()
    d = getattr(dnn, kind)(*args, **kw).double()
    copy_torch_weights(t, d)
    t.eval()
    d.eval()
    return t, d


def _leaf(arr):
    return torch.tensor(arr, requires_grad=True), deepbox.tensor(arr, requires_grad=True)


def _check_backward(t_outs, d_outs, t_mod, d_mod, inputs):
    cots = [rng.standard_normal(tuple(o.shape)) for o in t_outs]
    torch.autograd.backward(list(t_outs), [torch.tensor(c) for c in cots])
    deepbox.autograd.backward(list(d_outs), [deepbox.tensor(c) for c in cots])
    dparams = dict(d_mod.named_parameters())
    for name, tp in t_mod.named_parameters():
        if tp.grad is None:
            assert dparams[name].grad is None or not np.any(dparams[name].grad._data), name
            continue
        assert_close(dparams[name].grad, tp.grad, what=f"grad of {name}", **TOL)
    for i, (t, d) in enumerate(inputs):
        assert_close(d.grad, t.grad, what=f"grad of input {i}", **TOL)


@pytest.mark.parametrize("cfg", [
    dict(batch_first=False, self_attn=True),
    dict(batch_first=True, self_attn=False),
    dict(batch_first=True, self_attn=False, kdim=3, vdim=5),
    dict(batch_first=False, self_attn=True, add_bias_kv=True, add_zero_attn=True),
])
@pytest.mark.parametrize("masks", ["none", "bool", "float", "kpm", "both"])
def test_multihead_attention(cfg, masks):
    cfg = dict(cfg)
    self_attn = cfg.pop("self_attn")
    E, h, N, L, S = 8, 2, 3, 4, 5
    if self_attn:
        S = L
    t_mod, d_mod = _pair("MultiheadAttention", E, h, **cfg)
    bf = cfg.get("batch_first", False)
    kd, vd = cfg.get("kdim", E), cfg.get("vdim", E)
    sh = lambda n, f: (N, n, f) if bf else (n, N, f)
    tq, dq = _leaf(rng.standard_normal(sh(L, E)))
    if self_attn:
        tk, dk, tv, dv = tq, dq, tq, dq
    else:
        tk, dk = _leaf(rng.standard_normal(sh(S, kd)))
        tv, dv = _leaf(rng.standard_normal(sh(S, vd)))
    kw_t, kw_d = {}, {}
    if masks in ("bool", "both"):
        m = rng.random((L, S)) < 0.3
        m[:, 0] = False
        kw_t["attn_mask"], kw_d["attn_mask"] = torch.tensor(m), deepbox.tensor(m)
    if masks == "float":
        m = rng.standard_normal((N * h, L, S))
        kw_t["attn_mask"], kw_d["attn_mask"] = torch.tensor(m), deepbox.tensor(m)
    if masks in ("kpm", "both"):
        m = np.zeros((N, S), bool)
        m[0, -2:] = True
        m[2, -1] = True
        kw_t["key_padding_mask"], kw_d["key_padding_mask"] = torch.tensor(m), deepbox.tensor(m)
    for avg in (True, False):
        to, tw = t_mod(tq, tk, tv, average_attn_weights=avg, **kw_t)
        do, dw = d_mod(dq, dk, dv, average_attn_weights=avg, **kw_d)
        assert_close(do, to, **TOL)
        assert_close(dw, tw, **TOL)
    to, _ = t_mod(tq, tk, tv, need_weights=False, **kw_t)
    do, dw = d_mod(dq, dk, dv, need_weights=False, **kw_d)
    assert dw is None
    assert_close(do, to, **TOL)
    inputs = [(tq, dq)] if self_attn else [(tq, dq), (tk, dk), (tv, dv)]
    _check_backward([to], [do], t_mod, d_mod, inputs)


def test_multihead_attention_unbatched_and_state_dict():
    t_mod, d_mod = _pair("MultiheadAttention", 6, 3)
    assert list(d_mod.state_dict()) == list(t_mod.state_dict())
    x = rng.standard_normal((4, 6))
    to, tw = t_mod(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    do, dw = d_mod(deepbox.tensor(x), deepbox.tensor(x), deepbox.tensor(x))
    assert_close(do, to, **TOL)
    assert_close(dw, tw, **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_stack(norm_first, activation):
    torch.manual_seed(0)
    layer_t = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation, batch_first=True,
                                               norm_first=norm_first)
    t_mod = torch.nn.TransformerEncoder(layer_t, 2, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False).double()
    layer_d = dnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation, batch_first=True,
                                          norm_first=norm_first)
    d_mod = dnn.TransformerEncoder(layer_d, 2, norm=dnn.LayerNorm(8)).double()
    copy_torch_weights(t_mod, d_mod)
    tx, dx = _leaf(rng.standard_normal((3, 5, 8)))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    dmask = dnn.Transformer.generate_square_subsequent_mask(5, dtype=deepbox.float64)
    assert_close(dmask, mask)
    kpm = np.zeros((3, 5))
    kpm[1, 3:] = -np.inf
    to = t_mod(tx, mask=mask, src_key_padding_mask=torch.tensor(kpm))
    do = d_mod(dx, mask=dmask, src_key_padding_mask=deepbox.tensor(kpm))
    assert_close(do, to, **TOL)
    _check_backward([to], [do], t_mod, d_mod, [(tx, dx)])


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_full_transformer_matches_torch():
    t_mod, d_mod = _pair("Transformer", 8, 2, 2, 2, 16, 0.0)
    assert list(d_mod.state_dict()) == list(t_mod.state_dict())
    ts, ds = _leaf(rng.standard_normal((6, 2, 8)))
    tt, dt = _leaf(rng.standard_normal((4, 2, 8)))
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    to = t_mod(ts, tt, tgt_mask=tmask, tgt_is_causal=True)
    do = d_mod(ds, dt, tgt_mask=deepbox.tensor(tmask.numpy()), tgt_is_causal=True)
    assert_close(do, to, **TOL)
    _check_backward([to], [do], t_mod, d_mod, [(ts, ds), (tt, dt)])


def test_decoder_layer_norm_first_batch_first_with_masks():
    t_mod, d_mod = _pair("TransformerDecoderLayer", 8, 4, 12, 0.0, "gelu", batch_first=True, norm_first=True)
    tt, dt = _leaf(rng.standard_normal((2, 4, 8)))
    tm, dm = _leaf(rng.standard_normal((2, 6, 8)))
    mkpm = np.zeros((2, 6), bool)
    mkpm[0, 4:] = True
    cm = np.triu(np.ones((4, 4), bool), 1)
    to = t_mod(tt, tm, tgt_mask=torch.tensor(cm), memory_key_padding_mask=torch.tensor(mkpm))
    do = d_mod(dt, dm, tgt_mask=deepbox.tensor(cm), memory_key_padding_mask=deepbox.tensor(mkpm))
    assert_close(do, to, **TOL)
    _check_backward([to], [do], t_mod, d_mod, [(tt, dt), (tm, dm)])


def test_causal_encoder_ignores_future_tokens():
    layer = dnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    enc = dnn.TransformerEncoder(layer, 2).eval()
    mask = dnn.Transformer.generate_square_subsequent_mask(6)
    x = rng.standard_normal((2, 6, 8)).astype(np.float32)
    y = enc(deepbox.tensor(x), mask=mask, is_causal=True)._data
    x2 = x.copy()
    x2[:, 4:] += rng.standard_normal((2, 2, 8)).astype(np.float32) * 3
    y2 = enc(deepbox.tensor(x2), mask=mask, is_causal=True)._data
    np.testing.assert_array_equal(y2[:, :4], y[:, :4])
    assert not np.allclose(y2[:, 4:], y[:, 4:])


def test_dropout_in_training_only():
    t_mod = dnn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = deepbox.randn(5, 2, 8)
    t_mod.eval()
    a, b = t_mod(x), t_mod(x)
    np.testing.assert_array_equal(a._data, b._data)
    t_mod.train()
    assert not np.allclose(t_mod(x)._data, a._data)


def test_positional_encodings():
    pe = dnn.SinusoidalPositionalEncoding(6, max_len=10)
    x = deepbox.zeros(4, 2, 6)
    y = pe(x)._data
    pos = np.arange(4)[:, None]
    div = 10000 ** (np.arange(0, 6, 2) / 6)
    np.testing.assert_allclose(y[:, 0, 0::2], np.sin(pos / div), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(y[:, 1, 1::2], np.cos(pos / div), rtol=1e-6, atol=1e-7)
    assert "pe" not in pe.state_dict()
    lp = dnn.LearnedPositionalEncoding(6, max_len=10, batch_first=True)
    z = deepbox.zeros(2, 4, 6, requires_grad=True)
    out = lp(z)
    np.testing.assert_array_equal(out._data[1], lp.weight._data[:4])
    out.sum().backward()
    np.testing.assert_array_equal(lp.weight.grad._data[:4], 2.0)
    np.testing.assert_array_equal(lp.weight.grad._data[4:], 0.0)
    with pytest.raises(ValueError, match="exceeds max_len"):
        pe(deepbox.zeros(11, 1, 6))
