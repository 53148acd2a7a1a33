"""Each single-node op of deepbox/ops (linear, loss, norm, activation) against its composed twin and PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as DF
from deepbox.autograd import gradcheck
from tests.helpers import assert_close, check_op

R = np.random.default_rng(0)


def leaf(a):
    return deepbox.tensor(a).requires_grad_(True)


def grads_of(fn, *arrays, cot_seed=0):
    """Output and input gradients of ``fn`` on fresh deepbox leaves (random cotangent)."""
    xs = [leaf(a) for a in arrays]
    out = fn(*xs)
    cot = np.random.default_rng(cot_seed).standard_normal(tuple(out.shape))
    out.backward(deepbox.tensor(cot.astype(arrays[0].dtype)))
    return out._data, [x.grad._data for x in xs]


def same_as_composed(fused, composed, *arrays, rtol=1e-10, atol=1e-12):
    o1, g1 = grads_of(fused, *arrays)
    o2, g2 = grads_of(composed, *arrays)
    np.testing.assert_allclose(o1, o2, rtol=rtol, atol=atol)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_linear_fused_vs_composed_and_torch():
    x, w, b = R.standard_normal((2, 6, 5)), R.standard_normal((3, 5)), R.standard_normal(3)
    same_as_composed(DF.linear, lambda x, w, b: x @ w.t() + b, x, w, b)
    same_as_composed(lambda x, w: DF.linear(x, w), lambda x, w: x @ w.t(), x, w)
    check_op(lambda x, w, b: (DF if isinstance(x, deepbox.Tensor) else TF).linear(x, w, b), x, w, b)
    assert gradcheck(lambda x, w, b: DF.linear(x, w, b), (leaf(x[0]), leaf(w), leaf(b)))


def test_linear_float32_stays_float32():
    x = deepbox.randn(4, 5, requires_grad=True)
    lin = deepbox.nn.Linear(5, 3)
    out = lin(x)
    out.sum().backward()
    assert out.dtype == lin.weight.grad.dtype == lin.bias.grad.dtype == x.grad.dtype == deepbox.float32


def _ce_composed(x, t, C, weight=None, ls=0.0):
    """Cross-entropy from primitives: log_softmax, one-hot gather, weighted mean."""
    logp = x.log_softmax(1)
    oh = deepbox.tensor(np.eye(C)[t])
    w = deepbox.tensor(weight) if weight is not None else deepbox.ones(C, dtype=deepbox.float64)
    nll = -(logp * oh * w).sum(1)
    smooth = -(logp * w).sum(1)
    per = (1 - ls) * nll + ls / C * smooth
    return per.sum() / (oh * w).sum()


@pytest.mark.parametrize("ls", [0.0, 0.25])
def test_cross_entropy_fused_vs_composed(ls):
    x, t = R.standard_normal((7, 4)) * 3, R.integers(0, 4, 7)
    w = np.abs(R.standard_normal(4)) + 0.1
    same_as_composed(lambda x: DF.cross_entropy(x, deepbox.tensor(t), weight=deepbox.tensor(w), label_smoothing=ls),
                     lambda x: _ce_composed(x, t, 4, w, ls), x)
    assert gradcheck(lambda x: DF.cross_entropy(x, deepbox.tensor(t), label_smoothing=ls), (leaf(x),))
    assert gradcheck(lambda x: DF.nll_loss(x, deepbox.tensor(t), reduction="sum"), (leaf(x),))


def test_cross_entropy_large_logits_finite():
    x = deepbox.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], np.float32), requires_grad=True)
    loss = DF.cross_entropy(x, deepbox.tensor([0, 1]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad._data).all()
    np.testing.assert_allclose(loss.item(), 1e4, rtol=1e-6)


def _norm_composed(x, axes, w=None, b=None, eps=1e-5, wshape=None):
    mean = x.mean(axes, keepdim=True)
    var = ((x - mean) ** 2).mean(axes, keepdim=True)
    y = (x - mean) / (var + eps).sqrt()
    if w is not None:
        y = y * (w.reshape(wshape) if wshape else w)
    if b is not None:
        y = y + (b.reshape(wshape) if wshape else b)
    return y


def test_batch_norm_train_fused_vs_composed():
    x, w, b = R.standard_normal((6, 3, 4, 4)), R.standard_normal(3), R.standard_normal(3)
    same_as_composed(lambda x, w, b: DF.batch_norm(x, None, None, w, b, training=True),
                     lambda x, w, b: _norm_composed(x, (0, 2, 3), w, b, wshape=(1, 3, 1, 1)), x, w, b)
    assert gradcheck(lambda x, w, b: DF.batch_norm(x, None, None, w, b, training=True),
                     (leaf(x[:3, :, :2, :2]), leaf(w), leaf(b)))


def test_batch_norm_eval_fused_vs_composed():
    x, w, b = R.standard_normal((6, 3)), R.standard_normal(3), R.standard_normal(3)
    rm, rv = R.standard_normal(3), np.abs(R.standard_normal(3)) + 0.5
    rmt, rvt = deepbox.tensor(rm), deepbox.tensor(rv)
    same_as_composed(lambda x, w, b: DF.batch_norm(x, rmt, rvt, w, b, training=False),
                     lambda x, w, b: (x - rmt) / (rvt + 1e-5).sqrt() * w + b, x, w, b)


def test_batch_norm_running_stats_match_torch():
    x = R.standard_normal((8, 3, 5)).astype(np.float32)
    rm_d, rv_d = deepbox.zeros(3), deepbox.ones(3)
    rm_t, rv_t = torch.zeros(3), torch.ones(3)
    for _ in range(3):
        DF.batch_norm(deepbox.tensor(x), rm_d, rv_d, training=True, momentum=0.2)
        TF.batch_norm(torch.tensor(x), rm_t, rv_t, training=True, momentum=0.2)
    assert_close(rm_d, rm_t)
    assert_close(rv_d, rv_t)


def test_batch_norm_float32_no_float64():
    x = deepbox.randn(16, 8, 4, 4, requires_grad=True)
    bn = deepbox.nn.BatchNorm2d(8)
    out = bn(x)
    out.sum().backward()
    assert out.dtype == x.grad.dtype == bn.weight.grad.dtype == bn.running_mean.dtype == deepbox.float32


def test_layer_and_group_norm_fused_vs_composed():
    x, w, b = R.standard_normal((4, 3, 6)), R.standard_normal(6), R.standard_normal(6)
    same_as_composed(lambda x, w, b: DF.layer_norm(x, (6,), w, b), lambda x, w, b: _norm_composed(x, (-1,), w, b),
                     x, w, b)
    g_w, g_b = R.standard_normal(4), R.standard_normal(4)
    xg = R.standard_normal((2, 4, 3))

    def gn_composed(x, w, b):
        y = _norm_composed(x.reshape(2, 2, 6), (2,)).reshape(2, 4, 3)
        return y * w.reshape(1, 4, 1) + b.reshape(1, 4, 1)

    same_as_composed(lambda x, w, b: DF.group_norm(x, 2, w, b), gn_composed, xg, g_w, g_b)
    assert gradcheck(lambda x, w, b: DF.layer_norm(x, (6,), w, b), (leaf(x[:2]), leaf(w), leaf(b)))


def test_dropout_fused_vs_composed():
    x = R.standard_normal((20, 10))
    deepbox.manual_seed(5)
    o1, g1 = grads_of(lambda x: DF.dropout(x, 0.4), x)
    mask = (o1 != 0) / 0.6
    o2, g2 = grads_of(lambda x: x * deepbox.tensor(mask), x)
    np.testing.assert_allclose(o1, o2, rtol=1e-12)
    np.testing.assert_allclose(g1[0], g2[0], rtol=1e-12)


ACTS = [
    ("gelu", lambda F, x: F.gelu(x), lambda x: 0.5 * x * (1 + (x / np.sqrt(2)).erf())),
    ("gelu-tanh", lambda F, x: F.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + (np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)).tanh())),
    ("leaky", lambda F, x: F.leaky_relu(x, 0.1), lambda x: deepbox.where(x > 0, x, 0.1 * x)),
    ("elu", lambda F, x: F.elu(x, 0.5), lambda x: deepbox.where(x > 0, x, 0.5 * (x.exp() - 1))),
    ("softplus", lambda F, x: F.softplus(x), lambda x: (1 + x.exp()).log()),
    ("silu", lambda F, x: F.silu(x), lambda x: x * x.sigmoid()),
    ("mish", lambda F, x: F.mish(x), lambda x: x * (1 + x.exp()).log().tanh()),
    ("hardtanh", lambda F, x: F.hardtanh(x), lambda x: x.clamp(-1, 1)),
    ("logsigmoid", lambda F, x: F.logsigmoid(x), lambda x: x.sigmoid().log()),
]


@pytest.mark.parametrize("name,fn,composed", ACTS, ids=[a[0] for a in ACTS])
def test_activation_fused_vs_composed_and_torch(name, fn, composed):
    x = R.standard_normal((5, 7)) * 3
    same_as_composed(lambda x: fn(DF, x), composed, x, rtol=1e-9, atol=1e-12)
    check_op(lambda x: fn(DF, x), x, torch_fn=lambda x: fn(TF, x))
    check_op(lambda x: fn(DF, x), x.astype(np.float32), torch_fn=lambda x: fn(TF, x), dtype=np.float32)


def test_gelu_float64_accuracy_and_extremes():
    x = np.concatenate([np.linspace(-12, 12, 4001), [-40.0, 40.0, 0.0]])
    out = DF.gelu(deepbox.tensor(x))._data
    np.testing.assert_allclose(out, TF.gelu(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-14)


def test_erf_fallback_without_scipy(monkeypatch):
    from deepbox.ops import activation

    monkeypatch.setattr(activation, "_scipy_erf", None)
    x = np.linspace(-7, 7, 3001)
    np.testing.assert_allclose(activation.erf_array(x), torch.erf(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(DF.gelu(deepbox.tensor(x))._data, TF.gelu(torch.tensor(x)).numpy(),
                               rtol=1e-12, atol=1e-14)


def test_bce_with_logits_fused_vs_composed():
    x, y = R.standard_normal((4, 5)) * 4, R.random((4, 5))
    same_as_composed(lambda x, y: DF.binary_cross_entropy_with_logits(x, y),
                     lambda x, y: -(y * x.sigmoid().log() + (1 - y) * (1 - x.sigmoid()).log()).mean(), x, y,
                     rtol=1e-9)
