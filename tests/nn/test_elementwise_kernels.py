"""The compiled elementwise, layer-norm and attention kernels (deepbox/kernels/_numba_elementwise.py) against PyTorch.

Every test runs twice through ``kernel_mode``: on the kernels and on their NumPy twins
(``kernels.switch.compiled(False)``). The ``small_kernels`` fixture lowers the size below which the ops skip
the kernels and forces every kernel call to split over two threads, so small odd shapes exercise the
chunked kernels; a call counter checks that the intended path really ran.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as DF
from deepbox import kernels
from deepbox.kernels import elementwise as ew

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = [np.float32, np.float64]


@pytest.fixture
def small_kernels(monkeypatch, kernel_mode):
    """Kernels on any size, every call split over 2 threads; yields a dict counting ``threads.parallel`` calls."""
    calls = {"n": 0}
    real = kernels.threads.parallel

    def counting(fn, n, *args, **kw):
        calls["n"] += 1
        kw["work"] = 1 << 30
        return real(fn, n, *args, **kw)

    monkeypatch.setattr(ew, "KERNEL_MIN_SIZE", 1)
    monkeypatch.setattr(kernels.threads, "parallel", counting)
    old = kernels.threads.num_threads()
    kernels.threads.set_num_threads(2)
    try:
        yield calls
    finally:
        kernels.threads.set_num_threads(old)


def _check_path(calls, kernel_mode):
    if kernel_mode == "numba":
        assert calls["n"] > 0, "the compiled kernels did not run"
    else:
        assert calls["n"] == 0, "a compiled kernel ran with the kernels switched off"


def _layout(a, kind):
    """``a`` (a NumPy array) as a C-contiguous, F-contiguous, channels-last (the NCHW view of an NHWC
    array, as a convolution returns) or strided (non-contiguous) array of its shape."""
    if kind == "channels_last" and a.ndim >= 3:
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)
    if kind in ("C", "channels_last"):
        return np.ascontiguousarray(a)
    if kind == "F":
        return np.asfortranarray(a)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _run(lib, fn, arrays, cot, dtype):
    """Value of ``fn`` on ``lib`` leaves made from ``arrays`` (layout kept), and the leaves' gradients."""
    if lib is deepbox:
        leaves = [deepbox.tensor(a) for a in arrays]
        for t, a in zip(leaves, arrays):
            t._data = a          # keep the array's memory layout (tensor() copies to C order)
            t.requires_grad_(True)
        out = fn(DF, *leaves)
        out.backward(deepbox.tensor(cot.astype(dtype)))
        return out._data, [t.grad._data for t in leaves]
    leaves = [torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in arrays]
    out = fn(TF, *leaves)
    out.backward(torch.tensor(cot.astype(dtype)))
    return out.detach().numpy(), [t.grad.numpy() for t in leaves]


def _compare(fn, arrays, dtype, seed=0, tol=None):
    """``fn(F, *tensors)`` in deepbox and PyTorch: the same value and input gradients (random cotangent)."""
    with torch.no_grad():
        shape = tuple(fn(TF, *[torch.tensor(np.ascontiguousarray(a)) for a in arrays]).shape)
    cot = np.random.default_rng(seed).standard_normal(shape)
    d_out, d_grads = _run(deepbox, fn, arrays, cot, dtype)
    t_out, t_grads = _run(torch, fn, arrays, cot, dtype)
    tol = tol or TOL[dtype]
    assert d_out.dtype == dtype
    np.testing.assert_allclose(d_out, t_out, **tol, err_msg="value")
    for i, (a, b) in enumerate(zip(d_grads, t_grads)):
        assert a.shape == b.shape and a.dtype == dtype
        np.testing.assert_allclose(a, b, **tol, err_msg=f"gradient of input {i}")


# ----------------------------------------------------------------------------- activations

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "channels_last", "strided"])
@pytest.mark.parametrize("shape", [(7, 13), (3, 5, 17), (2, 5, 3, 4), (1,)])
@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_activation_matches_torch(small_kernels, kernel_mode, act, shape, layout, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype) * 3
    x.reshape(-1)[0] = 0.0                      # relu's kink: gradient 0 there, as in PyTorch
    _compare(lambda F, t: getattr(F, act)(t), [_layout(x, layout)], dtype)
    if layout != "strided":                     # a strided input's forward takes NumPy
        _check_path(small_kernels, kernel_mode)


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_activation_keeps_channels_last_layout(small_kernels, kernel_mode, act):
    # a convolution's output is an NHWC array seen as NCHW: the kernels run over its memory in order
    # and give an output (and input gradient) of the same layout, so that no copy is made
    x = _layout(np.random.default_rng(5).standard_normal((2, 6, 3, 5)).astype(np.float32), "channels_last")
    t = deepbox.tensor(x)
    t._data = x
    t.requires_grad_(True)
    out = getattr(DF, act)(t)
    cot = deepbox.tensor(x)
    cot._data = x * 0.5                         # the upstream gradient in the same layout (x * 0.5 keeps it)
    out.backward(cot)
    if kernel_mode == "numba":
        assert out._data.strides == x.strides
        assert t.grad._data.strides == x.strides
    _check_path(small_kernels, kernel_mode)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_gradient_in_other_layout(small_kernels, kernel_mode, dtype):
    # the upstream gradient arrives transposed (F order) while the saved array is C-contiguous
    x = np.random.default_rng(2).standard_normal((9, 11)).astype(dtype)
    for act in ("relu", "gelu"):
        _compare(lambda F, t, act=act: getattr(F, act)(t).t() * 2.0, [x], dtype)
    _check_path(small_kernels, kernel_mode)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_special_values(small_kernels, kernel_mode, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 6.0, -6.0, 30.0, -30.0, 1e4, -1e4], dtype)
    for act in ("relu", "gelu"):
        with np.errstate(invalid="ignore"):          # the NumPy path's -inf * 0
            d = getattr(DF, act)(deepbox.tensor(x))._data
        t = getattr(TF, act)(torch.tensor(x)).numpy()
        finite = np.isfinite(x)
        np.testing.assert_allclose(d[finite], t[finite], **TOL[dtype])
        # NaN stays NaN, +inf stays +inf (PyTorch's float32 GELU gives NaN there), -inf: 0 for ReLU
        assert np.isnan(d[0]) and d[1] == np.inf
        assert d[2] == 0 if act == "relu" else np.isnan(d[2])
    _check_path(small_kernels, kernel_mode)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_dense_grid(small_kernels, kernel_mode, dtype):
    # every float32 regime of erf and exp: the rational form's clamp at |x / sqrt 2| = 4, exp's underflow.
    # In float32, 1 + erf(x / sqrt 2) cancels for x < -2: PyTorch's own GELU is off by up to 1.1e-6 from
    # the exact value there, the kernel's by up to 1.4e-6
    x = np.linspace(-20, 20, 40001).astype(dtype)
    _compare(lambda F, t: F.gelu(t), [x], dtype, tol=dict(rtol=1e-5, atol=3e-6) if dtype == np.float32 else None)
    _check_path(small_kernels, kernel_mode)


def test_gelu_kernels_switched_off_between_forward_and_backward(small_kernels, kernel_mode):
    x = np.random.default_rng(3).standard_normal((6, 7))
    t = deepbox.tensor(x, requires_grad=True)
    out = DF.gelu(t)
    with kernels.switch.compiled(kernel_mode == "numpy"):   # the other path for backward
        out.sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    TF.gelu(tt).sum().backward()
    np.testing.assert_allclose(t.grad._data, tt.grad.numpy(), **TOL[np.float64])


def test_relu_in_place_and_integer_input(small_kernels, kernel_mode):
    x = np.random.default_rng(4).standard_normal((5, 8)).astype(np.float32)
    t = deepbox.tensor(x)
    DF.relu(t, inplace=True)
    np.testing.assert_array_equal(t._data, np.maximum(x, 0))
    ints = deepbox.tensor(np.arange(-6, 6).reshape(3, 4))
    r = DF.relu(ints)
    assert r.dtype == deepbox.int64
    np.testing.assert_array_equal(r._data, TF.relu(torch.arange(-6, 6).reshape(3, 4)).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "channels_last", "strided"])
def test_add_matches_torch(small_kernels, kernel_mode, layout, dtype):
    rng = np.random.default_rng(17)
    shape = (2, 6, 3, 11) if layout == "channels_last" else (6, 11)
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    _compare(lambda F, x, y: (x + y) * 1.5, [_layout(a, layout), _layout(b, layout)], dtype)
    if layout != "strided":
        _check_path(small_kernels, kernel_mode)
    # two layouts, broadcasting and Python numbers keep NumPy's add
    _compare(lambda F, x, y: x + y, [_layout(a, "channels_last"), a], dtype)
    c = rng.standard_normal(11).astype(dtype)
    _compare(lambda F, x, y: x + y, [a, c], dtype)
    _compare(lambda F, x: x + 2.5, [a], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(9, 7), (2, 5, 7), (7,)])
def test_linear_bias_matches_torch(small_kernels, kernel_mode, shape, dtype):
    rng = np.random.default_rng(18)
    x = rng.standard_normal(shape).astype(dtype)
    w, b = rng.standard_normal((13, 7)).astype(dtype), rng.standard_normal(13).astype(dtype)
    _compare(lambda F, x, w, b: F.linear(x, w, b), [x, w, b], dtype)
    _check_path(small_kernels, kernel_mode)


# ----------------------------------------------------------------------------- layer norm

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("shape,ns", [((5, 7, 33), (33,)), ((4, 7, 9), (7, 9)), ((3, 2), (2,)), ((65,), (65,))])
def test_layer_norm_matches_torch(small_kernels, kernel_mode, shape, ns, affine, dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 4 + 3).astype(dtype)
    w = rng.standard_normal(ns).astype(dtype)
    b = rng.standard_normal(ns).astype(dtype)
    if affine == "both":
        _compare(lambda F, t, w, b: F.layer_norm(t, ns, w, b), [x, w, b], dtype)
    elif affine == "weight":
        _compare(lambda F, t, w: F.layer_norm(t, ns, w), [x, w], dtype)
    else:
        _compare(lambda F, t: F.layer_norm(t, ns), [x], dtype)
    _check_path(small_kernels, kernel_mode)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_strided_input_and_gradient(small_kernels, kernel_mode, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 10)).astype(dtype)
    w, b = rng.standard_normal(10).astype(dtype), rng.standard_normal(10).astype(dtype)
    # a strided input takes the NumPy path; a transposed upstream gradient is copied for the kernel
    _compare(lambda F, t, w, b: F.layer_norm(t, (10,), w, b), [_layout(x, "strided"), w, b], dtype)
    assert small_kernels["n"] == 0
    _compare(lambda F, t, w, b: F.layer_norm(t, (10,), w, b).t() * 3.0, [x, w, b], dtype)
    _check_path(small_kernels, kernel_mode)


def test_layer_norm_kernels_switched_off_between_forward_and_backward(small_kernels, kernel_mode):
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal(6), rng.standard_normal(6)
    ts = [deepbox.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = DF.layer_norm(ts[0], (6,), ts[1], ts[2])
    cot = rng.standard_normal((4, 6))
    with kernels.switch.compiled(kernel_mode == "numpy"):
        out.backward(deepbox.tensor(cot))
    tt = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    TF.layer_norm(tt[0], (6,), tt[1], tt[2]).backward(torch.tensor(cot))
    for d, t in zip(ts, tt):
        np.testing.assert_allclose(d.grad._data, t.grad.numpy(), **TOL[np.float64])


def test_layer_norm_module_float32_training_step(small_kernels, kernel_mode):
    torch.manual_seed(0)
    tm = torch.nn.LayerNorm(12)
    dm = deepbox.nn.LayerNorm(12)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    dm.load_state_dict({k: v.numpy().copy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(8).standard_normal((3, 5, 12)).astype(np.float32) * 10
    dx, tx = deepbox.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (dm(dx) ** 2).sum().backward()
    (tm(tx) ** 2).sum().backward()
    for d, t in ((dx.grad, tx.grad), (dm.weight.grad, tm.weight.grad), (dm.bias.grad, tm.bias.grad)):
        np.testing.assert_allclose(d._data, t.numpy(), rtol=1e-4, atol=1e-4)
    _check_path(small_kernels, kernel_mode)


# ----------------------------------------------------------------------------- attention

def _attention_case(L, S, E, dtype, seed=9, batch=(2, 3)):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(batch + (L, E)).astype(dtype)
    k = rng.standard_normal(batch + (S, E)).astype(dtype)
    v = rng.standard_normal(batch + (S, E + 3)).astype(dtype)
    return q, k, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L", [130, 37])
def test_causal_attention_matches_torch(small_kernels, kernel_mode, L, dtype):
    # L >= 128 takes the query-block path (CausalAttentionFn and its twin), shorter ones the masked one
    q, k, v = _attention_case(L, L, 8, dtype)
    _compare(lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v], dtype)
    _check_path(small_kernels, kernel_mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask", ["none", "bool", "float"])
def test_attention_masks_match_torch(small_kernels, kernel_mode, mask, dtype):
    q, k, v = _attention_case(11, 19, 5, dtype)
    rng = np.random.default_rng(10)
    if mask == "none":
        _compare(lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3), [q, k, v], dtype)
    elif mask == "bool":
        m = rng.random((11, 19)) > 0.4
        m[:, 0] = True

        def fn(F, q, k, v):
            mm = torch.tensor(m) if F is TF else deepbox.tensor(m)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mm)
        _compare(fn, [q, k, v], dtype)
    else:
        m = (rng.standard_normal((3, 11, 19)) * 2).astype(dtype)
        m[0, 4] = -np.inf
        m[1, 2, 3:] = -np.inf
        _compare(lambda F, q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), [q, k, v, m], dtype)
    _check_path(small_kernels, kernel_mode)


def test_attention_fully_masked_row_gives_zeros(small_kernels, kernel_mode):
    q, k, v = _attention_case(4, 6, 3, np.float64)
    m = np.ones((4, 6), bool)
    m[2] = False
    ts = [deepbox.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = DF.scaled_dot_product_attention(*ts, attn_mask=deepbox.tensor(m))
    out.sum().backward()
    assert np.all(out._data[..., 2, :] == 0) and np.isfinite(out._data).all()
    assert all(np.isfinite(t.grad._data).all() for t in ts)
    keep = np.delete(np.arange(4), 2)
    tt = [torch.tensor(a) for a in (q, k, v)]
    ref = TF.scaled_dot_product_attention(*tt, attn_mask=torch.tensor(m)).numpy()
    np.testing.assert_allclose(out._data[..., keep, :], ref[..., keep, :], **TOL[np.float64])
    _check_path(small_kernels, kernel_mode)


def test_multihead_attention_causal_training_matches_torch(small_kernels, kernel_mode):
    # the GPT layout: q, k, v are strided views of one projection, L = 128 takes the block path
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    dm = deepbox.nn.MultiheadAttention(16, 4, batch_first=True)
    dm.load_state_dict({k: v.numpy().copy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(11).standard_normal((2, 128, 16)).astype(np.float32)
    mask = np.triu(np.full((128, 128), -np.inf, np.float32), 1)
    dx, tx = deepbox.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dout = dm(dx, dx, dx, attn_mask=deepbox.tensor(mask), is_causal=True, need_weights=False)[0]
    tout = tm(tx, tx, tx, attn_mask=torch.tensor(mask), is_causal=True, need_weights=False)[0]
    np.testing.assert_allclose(dout._data, tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    (dout ** 2).sum().backward()
    (tout ** 2).sum().backward()
    np.testing.assert_allclose(dx.grad._data, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dm.in_proj_weight.grad._data, tm.in_proj_weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    _check_path(small_kernels, kernel_mode)


# ----------------------------------------------------------------------------- the float32 scalar functions

def _ulps(got, ref64):
    ref32 = ref64.astype(np.float32)
    spacing = np.spacing(np.abs(ref32)).astype(np.float64)
    ok = np.isfinite(ref64) & (np.abs(ref64) > np.finfo(np.float32).tiny)
    return np.max(np.abs(got.astype(np.float64) - ref64)[ok] / spacing[ok])


def _grid(lo, hi):
    return np.concatenate([np.linspace(lo, hi, 200001), np.geomspace(1e-30, 1, 2001),
                           -np.geomspace(1e-30, 1, 2001)]).astype(np.float32)


@pytest.mark.parametrize("name,ref,lo,hi,max_ulps", [
    ("_exp32", torch.exp, -87.3, 88.7, 2),
    ("_tanh32", torch.tanh, -12, 12, 5),
    ("_erf32", torch.erf, -6, 6, 8),
])
def test_float32_functions_within_a_few_ulps(name, ref, lo, hi, max_ulps):
    from tests.helpers import require_kernels

    require_kernels()
    from numba import njit

    from deepbox.kernels import _numba_elementwise as K

    f = getattr(K, name)

    @njit
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    x = _grid(lo, hi)
    out = np.empty_like(x)
    apply(x, out)
    expected = ref(torch.tensor(x.astype(np.float64))).numpy()
    assert _ulps(out, expected) <= max_ulps
    special = np.array([np.nan, np.inf, -np.inf, 0.0, 200.0, -200.0], np.float32)
    out = np.empty_like(special)
    apply(special, out)
    expected = ref(torch.tensor(special)).numpy()
    np.testing.assert_array_equal(out, expected)


# ----------------------------------------------------------------------------- LSTM cell
# The LSTM's fast twin takes layers without a projection and unpacked input; projections and packed
# sequences run the reference (no compiled call then, in either mode).

def _check_lstm_path(calls, kernel_mode, twin_applies):
    if twin_applies:   # (otherwise other small ops may still take their compiled twins)
        _check_path(calls, kernel_mode)


def test_lstm_twin_declines_projections_and_packed_sequences():
    from deepbox.kernels.rnn import LSTMKernelFn
    from deepbox.ops.rnn import LSTMFn
    from tests.helpers import require_kernels

    require_kernels()
    x, w_hh, w_hr = np.zeros((3, 2, 4), np.float32), np.zeros((28, 7), np.float32), np.zeros((7, 7), np.float32)
    with kernels.switch.compiled(True):
        assert kernels.choose(LSTMFn, x, w_hh, None, None) is LSTMKernelFn
        assert kernels.choose(LSTMFn, x, w_hh, w_hr, None) is LSTMFn
        assert kernels.choose(LSTMFn, x, w_hh, None, [2, 2, 1]) is LSTMFn
        assert kernels.choose(LSTMFn, x.astype(np.float16), w_hh, None, None) is LSTMFn
        assert kernels.choose(LSTMFn, x.astype(np.float64), w_hh, None, None) is LSTMFn     # mixed dtypes


def _lstm_pair(dtype, **kw):
    torch.manual_seed(0)
    t = torch.nn.LSTM(5, 7, **kw).to(torch.float64 if dtype == np.float64 else torch.float32)
    d = deepbox.nn.LSTM(5, 7, **kw)
    if dtype == np.float64:
        d = d.double()
    d.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    return t, d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [dict(), dict(batch_first=True, num_layers=2), dict(proj_size=3),
                                dict(bidirectional=True, batch_first=True, proj_size=2)])
@pytest.mark.parametrize("state", [False, True])
def test_lstm_matches_torch(small_kernels, kernel_mode, kw, state, dtype):
    t, d = _lstm_pair(dtype, **kw)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 9, 5) if kw.get("batch_first") else (9, 4, 5)).astype(dtype) * 2
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    hs = [rng.standard_normal((layers, 4, kw.get("proj_size") or 7)).astype(dtype),
          rng.standard_normal((layers, 4, 7)).astype(dtype)]
    dx, tx = deepbox.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dh = [deepbox.tensor(a, requires_grad=True) for a in hs]
    th = [torch.tensor(a, requires_grad=True) for a in hs]
    dout, (dhn, dcn) = d(dx, tuple(dh)) if state else d(dx)
    tout, (thn, tcn) = t(tx, tuple(th)) if state else t(tx)
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)
    for a, b in ((dout, tout), (dhn, thn), (dcn, tcn)):
        np.testing.assert_allclose(a._data, b.detach().numpy(), **tol)
    cot = [rng.standard_normal(tuple(o.shape)).astype(dtype) for o in (tout, thn, tcn)]
    ((dout * deepbox.tensor(cot[0])).sum() + (dhn * deepbox.tensor(cot[1])).sum()
     + (dcn * deepbox.tensor(cot[2])).sum()).backward()
    ((tout * torch.tensor(cot[0])).sum() + (thn * torch.tensor(cot[1])).sum()
     + (tcn * torch.tensor(cot[2])).sum()).backward()
    np.testing.assert_allclose(dx.grad._data, tx.grad.numpy(), **tol)
    if state:
        for a, b in zip(dh, th):
            np.testing.assert_allclose(a.grad._data, b.grad.numpy(), **tol)
    tp = dict(t.named_parameters())
    for name, p in d.named_parameters():
        np.testing.assert_allclose(p.grad._data, tp[name].grad.numpy(), **tol, err_msg=name)
    _check_lstm_path(small_kernels, kernel_mode, not kw.get("proj_size"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [dict(), dict(batch_first=True), dict(bidirectional=True, num_layers=2)])
@pytest.mark.parametrize("grad", [True, False])
def test_lstm_batch_chunks_per_thread_match_torch(small_kernels, kernel_mode, monkeypatch, kw, grad, dtype):
    """The twin's split of the batch over the threads (each runs its columns through the whole sequence):
    5 sequences in chunks of 2 and 3 columns, against PyTorch, values and every gradient."""
    from deepbox.kernels import rnn as krnn

    monkeypatch.setattr(krnn, "MIN_CHUNK", 2)
    assert krnn._batch_chunks(5) == [0, 2, 5] and krnn._batch_chunks(3) == [0, 3]
    t, d = _lstm_pair(dtype, **kw)
    rng = np.random.default_rng(16)
    B, T = 5, 6
    x = rng.standard_normal((B, T, 5) if kw.get("batch_first") else (T, B, 5)).astype(dtype)
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    hs = [rng.standard_normal((layers, B, 7)).astype(dtype) for _ in range(2)]
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)
    if not grad:
        with deepbox.no_grad():
            dout, (dhn, dcn) = d(deepbox.tensor(x), tuple(deepbox.tensor(a) for a in hs))
        with torch.no_grad():
            tout, (thn, tcn) = t(torch.tensor(x), tuple(torch.tensor(a) for a in hs))
        for a, b in ((dout, tout), (dhn, thn), (dcn, tcn)):
            np.testing.assert_allclose(a._data, b.numpy(), **tol)
        return
    dx, tx = deepbox.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dh = [deepbox.tensor(a, requires_grad=True) for a in hs]
    th = [torch.tensor(a, requires_grad=True) for a in hs]
    dout, (dhn, dcn) = d(dx, tuple(dh))
    tout, (thn, tcn) = t(tx, tuple(th))
    for a, b in ((dout, tout), (dhn, thn), (dcn, tcn)):
        np.testing.assert_allclose(a._data, b.detach().numpy(), **tol)
    cot = [rng.standard_normal(tuple(o.shape)).astype(dtype) for o in (tout, thn, tcn)]
    sum((o * deepbox.tensor(c)).sum() for o, c in zip((dout, dhn, dcn), cot)).backward()
    sum((o * torch.tensor(c)).sum() for o, c in zip((tout, thn, tcn), cot)).backward()
    np.testing.assert_allclose(dx.grad._data, tx.grad.numpy(), **tol)
    for a, b in zip(dh, th):
        np.testing.assert_allclose(a.grad._data, b.grad.numpy(), **tol)
    tp = dict(t.named_parameters())
    for name, p in d.named_parameters():
        np.testing.assert_allclose(p.grad._data, tp[name].grad.numpy(), **tol, err_msg=name)
    _check_lstm_path(small_kernels, kernel_mode, True)


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_packed_sequences_match_torch(small_kernels, kernel_mode, batch_first):
    t, d = _lstm_pair(np.float64, batch_first=batch_first, proj_size=4)
    rng = np.random.default_rng(13)
    lengths = [6, 2, 5, 1]
    x = rng.standard_normal((4, 6, 5) if batch_first else (6, 4, 5))
    dx, tx = deepbox.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dp = deepbox.nn.utils.rnn.pack_padded_sequence(dx, lengths, batch_first=batch_first, enforce_sorted=False)
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=batch_first, enforce_sorted=False)
    dout, (dhn, dcn) = d(dp)
    tout, (thn, tcn) = t(tp)
    dpad = deepbox.nn.utils.rnn.pad_packed_sequence(dout, batch_first=batch_first)[0]
    tpad = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=batch_first)[0]
    np.testing.assert_allclose(dpad._data, tpad.detach().numpy(), **TOL[np.float64])
    ((dpad ** 2).sum() + dhn.sum() + (dcn * 3).sum()).backward()
    ((tpad ** 2).sum() + thn.sum() + (tcn * 3).sum()).backward()
    np.testing.assert_allclose(dx.grad._data, tx.grad.numpy(), **TOL[np.float64])
    np.testing.assert_allclose(d.weight_hh_l0.grad._data, t.weight_hh_l0.grad.numpy(), **TOL[np.float64])
    _check_lstm_path(small_kernels, kernel_mode, False)


def test_lstm_kernels_switched_between_forward_and_backward_and_retain_graph(small_kernels, kernel_mode):
    t, d = _lstm_pair(np.float64)
    x = np.random.default_rng(14).standard_normal((5, 3, 5))
    dx, tx = deepbox.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    dloss = (d(dx)[0] ** 2).sum()
    (t(tx)[0] ** 2).sum().backward()
    with kernels.switch.compiled(kernel_mode == "numpy"):
        dloss.backward(retain_graph=True)
    np.testing.assert_allclose(dx.grad._data, tx.grad.numpy(), **TOL[np.float64])
    dloss.backward()                                  # the saved buffers survive a second backward
    np.testing.assert_allclose(dx.grad._data, 2 * tx.grad.numpy(), **TOL[np.float64])
    np.testing.assert_allclose(d.weight_ih_l0.grad._data, 2 * t.weight_ih_l0.grad.numpy(), **TOL[np.float64])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("proj_size", [0, 2])
def test_lstm_inference_without_grad(small_kernels, kernel_mode, dtype, proj_size):
    t, d = _lstm_pair(dtype, proj_size=proj_size)
    x = (np.random.default_rng(15).standard_normal((7, 2, 5)) * 3).astype(dtype)
    with deepbox.no_grad():
        dout, (dhn, dcn) = d(deepbox.tensor(x))
    with torch.no_grad():
        tout, (thn, tcn) = t(torch.tensor(x))
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)
    for a, b in ((dout, tout), (dhn, thn), (dcn, tcn)):
        np.testing.assert_allclose(a._data, b.numpy(), **tol)
    _check_lstm_path(small_kernels, kernel_mode, not proj_size)


# ----------------------------------------------------------------------------- Adam

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_kernel_follows_torch_adam(amsgrad, dtype):
    from tests.helpers import require_kernels

    require_kernels()
    K = kernels.switch.kernels()
    T = np.dtype(dtype).type
    lr, b1, b2, eps = 1e-2, 0.9, 0.99, 1e-8
    rng = np.random.default_rng(16)
    p0 = rng.standard_normal(1001).astype(dtype)
    tp = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.Adam([tp], lr=lr, betas=(b1, b2), eps=eps, amsgrad=amsgrad)
    p, m, v, vmax = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
    for step in range(1, 7):
        g = (rng.standard_normal(1001) * (10.0 if step == 3 else 1.0)).astype(dtype)
        tp.grad = torch.tensor(g)
        opt.step()
        out = np.empty_like(p)
        kernels.threads.parallel(K.adam_update, p.size, g, m, v, vmax, out, T(1 - b1), T(b2), T(1 - b2),
                       T(math.sqrt(1 - b2 ** step)), T(eps), T(lr / (1 - b1 ** step)), amsgrad, work=1 << 30)
        p -= out
        np.testing.assert_allclose(p, tp.detach().numpy(), **TOL[dtype], err_msg=f"step {step}")
    st = opt.state[tp]
    np.testing.assert_allclose(m, st["exp_avg"].numpy(), **TOL[dtype])
    np.testing.assert_allclose(vmax if amsgrad else v, (st["max_exp_avg_sq"] if amsgrad else st["exp_avg_sq"]).numpy(),
                               **TOL[dtype])


# ----------------------------------------------------------------------------- layers split over the threads

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(9, 5), (2, 7, 5)])
@pytest.mark.parametrize("need_x", [True, False])
def test_linear_split_by_rows_matches_torch(small_kernels, kernel_mode, monkeypatch, shape, need_x, dtype):
    """The linear twin with its rows split over the threads (each its rows of y and dx, its share of dW and
    db, summed): values and gradients against PyTorch; an input without a gradient takes no dx."""
    from deepbox.kernels import linear as klin

    monkeypatch.setattr(klin, "SPLIT_MIN_ROWS", 2)
    monkeypatch.setattr(klin, "SPLIT_MIN_FLOPS", 1)
    assert klin._split(9, 5, 3) and not klin._split(3, 5, 3)
    rng = np.random.default_rng(21)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (shape, (3, 5), (3,)))
    cot = rng.standard_normal(shape[:-1] + (3,)).astype(dtype)
    out, grads = {}, {}
    for lib, F in ((deepbox, DF), (torch, TF)):
        ts = [lib.tensor(a, requires_grad=(i > 0 or need_x)) for i, a in enumerate((x, w, b))]
        y = F.linear(*ts)
        (y * lib.tensor(cot)).sum().backward()
        out[lib] = np.asarray(y.detach().numpy() if lib is torch else y._data)
        grads[lib] = [None if t.grad is None else np.asarray(t.grad.numpy() if lib is torch else t.grad._data)
                      for t in ts]
    np.testing.assert_allclose(out[deepbox], out[torch], **TOL[dtype])
    for a, b_ in zip(grads[deepbox], grads[torch]):
        assert (a is None) == (b_ is None)
        if a is not None:
            np.testing.assert_allclose(a, b_, **TOL[dtype])
    _check_path(small_kernels, kernel_mode)


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_attention_split_over_batch_matches_torch(small_kernels, kernel_mode, monkeypatch, dtype):
    """Causal attention (the query-block path, L >= 128) with the batch split over the threads."""
    from deepbox.kernels import attention as katt

    monkeypatch.setattr(katt, "SPLIT_MIN_WORK", 1)
    q, k, v = _attention_case(130, 130, 8, dtype, batch=(3, 2))
    _compare(lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v], dtype)
    _check_path(small_kernels, kernel_mode)


def test_multihead_attention_causal_split_training_matches_torch(small_kernels, kernel_mode, monkeypatch):
    """The GPT layout (q, k, v strided views of one projection) with the batch and the projections'
    rows split over the threads."""
    from deepbox.kernels import attention as katt
    from deepbox.kernels import linear as klin

    monkeypatch.setattr(katt, "SPLIT_MIN_WORK", 1)
    monkeypatch.setattr(klin, "SPLIT_MIN_ROWS", 2)
    monkeypatch.setattr(klin, "SPLIT_MIN_FLOPS", 1)
    test_multihead_attention_causal_training_matches_torch(small_kernels, kernel_mode)


def test_causal_attention_split_with_dropout_matches_reference(monkeypatch):
    """With dropout the split path draws the same keep masks as the reference (block by block, before the
    threads start): the same values and gradients as the reference twin from the same seed."""
    from deepbox.kernels import attention as katt
    from tests.helpers import require_kernels

    require_kernels()
    monkeypatch.setattr(katt, "SPLIT_MIN_WORK", 1)
    q, k, v = _attention_case(128, 128, 4, np.float64, batch=(4, 2))
    results = []
    for on in (True, False):
        with kernels.switch.compiled(on):
            deepbox.manual_seed(5)
            ts = [deepbox.tensor(a, requires_grad=True) for a in (q, k, v)]
            out = DF.scaled_dot_product_attention(*ts, is_causal=True, dropout_p=0.3)
            (out ** 2).sum().backward()
            results.append([out._data] + [t.grad._data for t in ts])
    assert (results[0][0] == 0).any()
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **TOL[np.float64])


# ----------------------------------------------------------------------------- embedding's scatter-add

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [dict(), dict(padding_idx=3), dict(scale_grad_by_freq=True)])
def test_embedding_scatter_add_matches_torch(kernel_mode, kw, dtype):
    """The embedding's backward (repeated indices accumulate) on the compiled scatter-add and on the
    reference's sort, against PyTorch; 1200 rows of 16 take the twin."""
    from deepbox.kernels.indexing import MIN_SIZE

    torch.manual_seed(0)
    t = torch.nn.Embedding(50, 16, **kw).to(torch.float64 if dtype == np.float64 else torch.float32)
    d = deepbox.nn.Embedding(50, 16, **kw)
    d.weight._data = t.weight.detach().numpy().copy()
    rng = np.random.default_rng(22)
    idx = rng.integers(0, 50, (4, 300))
    assert idx.size * 16 >= MIN_SIZE
    cot = rng.standard_normal((4, 300, 16)).astype(dtype)
    dout, tout = d(deepbox.tensor(idx)), t(torch.tensor(idx))
    np.testing.assert_array_equal(dout._data, tout.detach().numpy())
    (dout * deepbox.tensor(cot)).sum().backward()
    (tout * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(d.weight.grad._data, t.weight.grad.numpy(), **TOL[dtype])
    from deepbox.kernels.indexing import index_add_rows_kernel
    from deepbox.ops.indexing import index_add_rows

    chosen = kernels.choose(index_add_rows, 50, idx.reshape(-1), dout._data.reshape(-1, 16))
    assert chosen is (index_add_rows_kernel if kernel_mode == "numba" else index_add_rows)


def test_index_add_rows_twin_falls_back_for_indices_out_of_range_and_other_dtypes():
    """Negative indices wrap and too large ones raise IndexError as in the reference (the compiled loop
    would write outside the array); float16 rows take the reference."""
    from deepbox.kernels.indexing import index_add_rows_kernel
    from deepbox.ops.indexing import index_add_rows
    from tests.helpers import require_kernels

    require_kernels()
    rng = np.random.default_rng(23)
    src = rng.standard_normal((500, 10))
    idx = rng.integers(-7, 7, 500)
    np.testing.assert_allclose(index_add_rows_kernel(7, idx, src), index_add_rows(7, idx, src), rtol=1e-12)
    with pytest.raises(IndexError):
        index_add_rows_kernel(7, idx + 7, src)
    s16 = src.astype(np.float16)
    np.testing.assert_array_equal(index_add_rows_kernel(7, idx % 7, s16), index_add_rows(7, idx % 7, s16))
    assert index_add_rows_kernel(7, idx[:0], src[:0]).shape == (7, 10)
