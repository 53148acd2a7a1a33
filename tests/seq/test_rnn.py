"""Recurrent layers against PyTorch with the same weights: outputs, final states, and the gradients of
inputs, initial states and every parameter (float64, tight), over the layers' options."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as dnn
from deepbox.nn.utils import rnn as drnn
from tests.helpers import assert_close, copy_torch_weights

torch.manual_seed(0)
rng = np.random.default_rng(0)
TOL = dict(rtol=1e-7, atol=1e-9)


def _pair(kind, *args, **kw):
    t = getattr(torch.nn, kind)(*args, **kw).double()
    d = getattr(dnn, kind)(*args, **kw).double()
    copy_torch_weights(t, d)
    return t, d


def _compare_grads(t_mod, d_mod, pairs):
    for name, tp in t_mod.named_parameters():
        dp = dict(d_mod.named_parameters())[name]
        assert_close(dp.grad, tp.grad, what=f"grad of {name}", **TOL)
    for d, t, what in pairs:
        assert_close(d.grad, t.grad, what=f"grad of {what}", **TOL)


def _run(kind, I=3, H=5, T=4, B=2, batched=True, with_h0=True, **kw):
    t_mod, d_mod = _pair(kind, I, H, **kw)
    L = kw.get("num_layers", 1)
    D = 2 if kw.get("bidirectional") else 1
    Hout = kw.get("proj_size", 0) or H
    bf = kw.get("batch_first", False)
    shape = ((B, T, I) if bf else (T, B, I)) if batched else (T, I)
    x = rng.standard_normal(shape)
    hshape = (L * D, B) if batched else (L * D,)
    states = [rng.standard_normal(hshape + (Hout,))]
    if kind == "LSTM":
        states.append(rng.standard_normal(hshape + (H,)))
    tx = torch.tensor(x, requires_grad=True)
    dx = deepbox.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    ds = [deepbox.tensor(s, requires_grad=True) for s in states]
    if with_h0:
        th = tuple(ts) if kind == "LSTM" else ts[0]
        dh = tuple(ds) if kind == "LSTM" else ds[0]
        tout = t_mod(tx, th)
        dout = d_mod(dx, dh)
    else:
        tout, dout = t_mod(tx), d_mod(dx)
    t_flat = [tout[0]] + (list(tout[1]) if kind == "LSTM" else [tout[1]])
    d_flat = [dout[0]] + (list(dout[1]) if kind == "LSTM" else [dout[1]])
    for i, (a, b) in enumerate(zip(d_flat, t_flat)):
        assert_close(a, b, what=f"output {i}", **TOL)
    cots = [rng.standard_normal(tuple(b.shape)) for b in t_flat]
    torch.autograd.backward(t_flat, [torch.tensor(c) for c in cots])
    deepbox.autograd.backward(d_flat, [deepbox.tensor(c) for c in cots])
    pairs = [(dx, tx, "input")] + ([(d, t, f"state {i}") for i, (d, t) in enumerate(zip(ds, ts))] if with_h0 else [])
    _compare_grads(t_mod, d_mod, pairs)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("cfg", [
    dict(),
    dict(batch_first=True),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(num_layers=3, bias=False),
])
def test_layer_matches_torch(kind, cfg, kernel_mode):
    """On the fast layer (the LSTM's feature-major twin) and on the reference Functions."""
    _run(kind, **cfg)


def _graph_nodes(t):
    seen, todo = [], [t.grad_fn]
    while todo:
        n = todo.pop()
        if n is not None and all(n is not m for m in seen):
            seen.append(n)
            todo.extend(f for f, _ in n.next_functions)
    return seen


@pytest.mark.parametrize("cfg", [dict(), dict(batch_first=True, bidirectional=True), dict(num_layers=2)])
def test_lstm_fast_twin_split_over_threads_float32(cfg, monkeypatch):
    """The compiled LSTM cell with every step cut over two threads (odd sizes, so chunks split units),
    float32, with initial states: values and gradients as PyTorch's."""
    from deepbox import kernels
    from deepbox.kernels import rnn as krnn
    from tests.helpers import require_kernels

    require_kernels()
    monkeypatch.setattr(kernels.threads, "split_work", lambda n, ns: 1 << 30)
    old = kernels.threads.num_threads()
    kernels.threads.set_num_threads(2)
    try:
        t_mod, d_mod = torch.nn.LSTM(5, 7, **cfg), dnn.LSTM(5, 7, **cfg)
        copy_torch_weights(t_mod, d_mod)
        L = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
        x = rng.standard_normal((3, 6, 5)).astype(np.float32)
        h0, c0 = (rng.standard_normal((L, 3 if cfg.get("batch_first") else 6, 7)).astype(np.float32)
                  for _ in range(2))
        tx, dx = torch.tensor(x, requires_grad=True), deepbox.tensor(x, requires_grad=True)
        th, tc = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
        dh, dc = deepbox.tensor(h0, requires_grad=True), deepbox.tensor(c0, requires_grad=True)
        to, (thn, tcn) = t_mod(tx, (th, tc))
        do, (dhn, dcn) = d_mod(dx, (dh, dc))
        assert any(isinstance(n, krnn.LSTMKernelFn) for n in _graph_nodes(do)), "the fast twin did not run"
        for a, b in ((do, to), (dhn, thn), (dcn, tcn)):
            assert_close(a, b, rtol=1e-5, atol=1e-6)
        cots = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for t in (to, thn, tcn)]
        torch.autograd.backward([to, thn, tcn], [torch.tensor(c) for c in cots])
        deepbox.autograd.backward([do, dhn, dcn], [deepbox.tensor(c) for c in cots])
        for d, t, what in ((dx, tx, "input"), (dh, th, "h0"), (dc, tc, "c0")):
            assert_close(d.grad, t.grad, rtol=1e-4, atol=1e-5, what=what)
        for (name, tp), dp in zip(t_mod.named_parameters(), d_mod.parameters()):
            assert_close(dp.grad, tp.grad, rtol=1e-4, atol=1e-5, what=name)
    finally:
        kernels.threads.set_num_threads(old)


def test_relu_rnn_and_no_initial_state():
    _run("RNN", nonlinearity="relu", num_layers=2)
    _run("LSTM", with_h0=False, num_layers=2)
    _run("GRU", with_h0=False, bidirectional=True)


def test_lstm_projection():
    _run("LSTM", H=6, proj_size=3)
    _run("LSTM", H=6, proj_size=2, num_layers=2, bidirectional=True, batch_first=True)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_unbatched(kind):
    _run(kind, batched=False, num_layers=2, bidirectional=True)


def test_state_dict_names_shapes_and_init():
    t = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    d = dnn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3)
    assert list(d.state_dict().keys()) == list(t.state_dict().keys())
    for (k, a), b in zip(d.state_dict().items(), t.state_dict().values()):
        assert tuple(a.shape) == tuple(b.shape), k
        assert a.dtype == deepbox.float32
        assert np.abs(a._data).max() <= 1 / np.sqrt(6) + 1e-7
    w = d.weight_ih_l0._data
    assert w.std() > 0.6 * (1 / np.sqrt(6)) / np.sqrt(3)  # uniform(-k, k): std k/sqrt(3)
    assert repr(d) == repr(t).replace("torch", "deepbox")
    assert sum(p.numel() for p in d.parameters()) == sum(p.numel() for p in t.parameters())


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells(kind):
    t_mod, d_mod = _pair(kind, 3, 4)
    for batched in (True, False):
        x = rng.standard_normal((2, 3) if batched else (3,))
        hs = [rng.standard_normal((2, 4) if batched else (4,)) for _ in range(2 if kind == "LSTMCell" else 1)]
        tx, dx = torch.tensor(x, requires_grad=True), deepbox.tensor(x, requires_grad=True)
        th = [torch.tensor(h, requires_grad=True) for h in hs]
        dh = [deepbox.tensor(h, requires_grad=True) for h in hs]
        to = t_mod(tx, tuple(th) if kind == "LSTMCell" else th[0])
        do = d_mod(dx, tuple(dh) if kind == "LSTMCell" else dh[0])
        to, do = (list(to), list(do)) if kind == "LSTMCell" else ([to], [do])
        for a, b in zip(do, to):
            assert_close(a, b, **TOL)
        sum((o * (k + 1)).sum() for k, o in enumerate(to)).backward()
        sum((o * (k + 1)).sum() for k, o in enumerate(do)).backward()
        _compare_grads(t_mod, d_mod, [(dx, tx, "input")] + [(a, b, "state") for a, b in zip(dh, th)])
        t_mod.zero_grad()
        d_mod.zero_grad()


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_packed_matches_torch_and_separate_sequences(kind):
    t_mod, d_mod = _pair(kind, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    lengths = [3, 6, 1, 4]
    x = rng.standard_normal((4, 6, 3))
    tx, dx = torch.tensor(x, requires_grad=True), deepbox.tensor(x, requires_grad=True)
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=True, enforce_sorted=False)
    dp = drnn.pack_padded_sequence(dx, lengths, batch_first=True, enforce_sorted=False)
    to, th = t_mod(tp)
    do, dh = d_mod(dp)
    # initial states are given in the caller's batch order and come back in it
    h0 = [rng.standard_normal((4, 4, 4)) for _ in range(2 if kind == "LSTM" else 1)]
    t_h0 = [torch.tensor(h, requires_grad=True) for h in h0]
    d_h0 = [deepbox.tensor(h, requires_grad=True) for h in h0]
    t_s = t_mod(tp, tuple(t_h0) if kind == "LSTM" else t_h0[0])[1]
    d_s = d_mod(dp, tuple(d_h0) if kind == "LSTM" else d_h0[0])[1]
    t_s, d_s = (t_s[1], d_s[1]) if kind == "LSTM" else (t_s, d_s)
    assert_close(d_s, t_s, **TOL)
    t_s.sum().backward(retain_graph=True)
    d_s.sum().backward(retain_graph=True)
    for a, b in zip(d_h0, t_h0):
        assert_close(a.grad, b.grad, **TOL)
    t_mod.zero_grad()
    d_mod.zero_grad()
    tpad, _ = torch.nn.utils.rnn.pad_packed_sequence(to, batch_first=True)
    dpad, dl = drnn.pad_packed_sequence(do, batch_first=True)
    assert dl.tolist() == lengths
    assert_close(dpad, tpad, **TOL)
    th, dh = (th[0], dh[0]) if kind == "LSTM" else (th, dh)
    assert_close(dh, th, **TOL)
    cot = rng.standard_normal(tuple(tpad.shape))
    ((tpad * torch.tensor(cot)).sum() + th.sum()).backward()
    ((dpad * deepbox.tensor(cot)).sum() + dh.sum()).backward()
    _compare_grads(t_mod, d_mod, [(dx, tx, "input")])
    # each sequence alone gives the same output and final state
    for b, n in enumerate(lengths):
        with deepbox.no_grad():
            single, hs = d_mod(deepbox.tensor(x[b : b + 1, :n]))
        hs = hs[0] if kind == "LSTM" else hs
        np.testing.assert_allclose(single._data[0], dpad._data[b, :n], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(hs._data[:, 0], dh._data[:, b], rtol=1e-10, atol=1e-12)
        assert np.all(dpad._data[b, n:] == 0)


def test_pack_sequence_and_pad_sequence_match_torch():
    seqs = [rng.standard_normal((n, 2)) for n in (2, 5, 3)]
    tp = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    dp = drnn.pack_sequence([deepbox.tensor(s) for s in seqs], enforce_sorted=False)
    assert_close(dp.data, tp.data)
    assert dp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    assert dp.sorted_indices.tolist() == tp.sorted_indices.tolist()
    for bf in (False, True):
        for side in ("right", "left"):
            t = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=bf, padding_value=-2.0,
                                                padding_side=side)
            d = drnn.pad_sequence([deepbox.tensor(s) for s in seqs], batch_first=bf, padding_value=-2.0,
                                  padding_side=side)
            assert_close(d, t)
    back = drnn.unpack_sequence(dp)
    for a, s in zip(back, seqs):
        np.testing.assert_array_equal(a._data, s)
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        drnn.pack_sequence([deepbox.tensor(s) for s in seqs])


def test_float32_and_gradient_clipping():
    t_mod, d_mod = torch.nn.LSTM(3, 8, num_layers=2), dnn.LSTM(3, 8, num_layers=2)
    copy_torch_weights(t_mod, d_mod)
    x = rng.standard_normal((7, 2, 3)).astype(np.float32)
    to, _ = t_mod(torch.tensor(x))
    do, _ = d_mod(deepbox.tensor(x))
    assert do.dtype == deepbox.float32
    assert_close(do, to, rtol=1e-5, atol=1e-6)
    to.pow(2).sum().backward()
    do.pow(2).sum().backward()
    tn = torch.nn.utils.clip_grad_norm_(t_mod.parameters(), 0.1)
    dn = dnn.utils.clip_grad_norm_(d_mod.parameters(), 0.1)
    np.testing.assert_allclose(float(dn), float(tn), rtol=1e-4)
    for (name, tp), dp in zip(t_mod.named_parameters(), d_mod.parameters()):
        assert_close(dp.grad, tp.grad, rtol=1e-4, atol=1e-6, what=name)


def test_bad_inputs_name_the_problem():
    m = dnn.LSTM(3, 4)
    with pytest.raises(RuntimeError, match="input_size. Expected 3, got 5"):
        m(deepbox.randn(2, 2, 5))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        m(deepbox.randn(2, 2, 3), (deepbox.randn(1, 3, 4), deepbox.randn(1, 2, 4)))
    with pytest.raises(ValueError, match="2D or 3D"):
        m(deepbox.randn(3))
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        dnn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        dnn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="dropout"):
        dnn.GRU(3, 4, dropout=1.5)


def test_dropout_between_layers_only_in_training():
    m = dnn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = deepbox.randn(5, 2, 3)
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(a._data, b._data)
    m.train()
    c, _ = m(x)
    assert not np.allclose(a._data, c._data)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_retain_graph_backward_twice(kind):
    t_mod, d_mod = _pair(kind, 3, 4)
    x = rng.standard_normal((5, 2, 3))
    to = t_mod(torch.tensor(x))[0].pow(2).sum()
    do = d_mod(deepbox.tensor(x))[0].pow(2).sum()
    to.backward(retain_graph=True)
    to.backward()
    do.backward(retain_graph=True)
    do.backward()
    _compare_grads(t_mod, d_mod, [])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        do.backward()


@pytest.mark.parametrize("seed", range(4))
def test_random_packed_configurations_match_torch(seed):
    r = np.random.default_rng(100 + seed)
    kind = ["LSTM", "GRU", "RNN"][seed % 3]
    B, T = int(r.integers(1, 5)), int(r.integers(1, 6))
    kw = dict(num_layers=int(r.integers(1, 3)), bidirectional=bool(r.integers(0, 2)), bias=bool(r.integers(0, 2)))
    t_mod, d_mod = _pair(kind, 2, 3, **kw)
    lengths = r.integers(1, T + 1, size=B).tolist()
    lengths[0] = T
    x = r.standard_normal((T, B, 2))
    tx, dx = torch.tensor(x, requires_grad=True), deepbox.tensor(x, requires_grad=True)
    to = t_mod(torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, enforce_sorted=False))
    do = d_mod(drnn.pack_padded_sequence(dx, lengths, enforce_sorted=False))
    assert_close(do[0].data, to[0].data, **TOL)
    th, dh = (to[1][0], do[1][0]) if kind == "LSTM" else (to[1], do[1])
    assert_close(dh, th, **TOL)
    (to[0].data.pow(2).sum() + th.sum()).backward()
    (do[0].data.pow(2).sum() + dh.sum()).backward()
    _compare_grads(t_mod, d_mod, [(dx, tx, "input")])
