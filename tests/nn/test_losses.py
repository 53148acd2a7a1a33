"""Every loss, every reduction: value and gradients equal PyTorch's, also for logits of +-1e4."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn as dnn
import deepbox.nn.functional as DF
from tests.helpers import assert_close

R = np.random.default_rng(0)
REDS = ["none", "mean", "sum"]


def compare(fn, *inputs, dtype=np.float64, grad_idx=None, tol=None):
    """Run ``fn(F, *tensors)`` with deepbox's and torch's functional modules; compare values and grads."""
    tol = tol or ({} if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5))
    d_in, t_in = [], []
    for i, a in enumerate(inputs):
        if isinstance(a, np.ndarray):
            a = a.astype(dtype) if a.dtype.kind == "f" else a
            d, t = deepbox.tensor(a), torch.tensor(a)
            if a.dtype.kind == "f" and (grad_idx is None or i in grad_idx):
                d.requires_grad_(True)
                t.requires_grad_(True)
            d_in.append(d)
            t_in.append(t)
        else:
            d_in.append(a)
            t_in.append(a)
    d_out = fn(DF, *d_in)
    t_out = fn(TF, *t_in)
    assert tuple(d_out.shape) == tuple(t_out.shape)
    assert_close(d_out, t_out, what="loss", **tol)
    cot = R.standard_normal(tuple(t_out.shape)).astype(dtype)
    d_out.backward(deepbox.tensor(cot))
    t_out.backward(torch.tensor(cot))
    for i, (d, t) in enumerate(zip(d_in, t_in)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            assert d.grad is not None, f"input {i} has no gradient"
            finite_t = np.isfinite(t.grad.numpy())
            assert np.all(np.isfinite(d.grad._data)[finite_t]), f"input {i}: gradient not finite"
            assert_close(d.grad, t.grad, what=f"grad of input {i}", **tol)
    return d_out


def logits(*shape, scale=1.0):
    return R.standard_normal(shape) * scale


def labels(n, c, *extra):
    return R.integers(0, c, (n,) + extra).astype(np.int64)


@pytest.mark.parametrize("red", REDS)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_indices(red, scale):
    compare(lambda F, x, t: F.cross_entropy(x, t, reduction=red), logits(6, 5, scale=scale), labels(6, 5))


@pytest.mark.parametrize("red", REDS)
def test_cross_entropy_options(red):
    w = np.abs(logits(5)) + 0.1
    t = labels(8, 5)
    t[[1, 4]] = -100
    compare(lambda F, x, t, w: F.cross_entropy(x, t, weight=w, reduction=red), logits(8, 5), t, w, grad_idx={0})
    t2 = labels(8, 5)
    t2[2] = 3
    compare(lambda F, x, t: F.cross_entropy(x, t, ignore_index=3, reduction=red), logits(8, 5), t2)
    compare(lambda F, x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=-100, label_smoothing=0.2,
                                               reduction=red), logits(8, 5, scale=1e4), t, w, grad_idx={0})
    compare(lambda F, x, t: F.cross_entropy(x, t, label_smoothing=0.1, reduction=red), logits(8, 5), labels(8, 5))


@pytest.mark.parametrize("red", REDS)
def test_cross_entropy_kdim_and_unbatched(red):
    compare(lambda F, x, t: F.cross_entropy(x, t, reduction=red), logits(2, 4, 3, 3), labels(2, 4, 3, 3))
    compare(lambda F, x, t: F.cross_entropy(x, t, reduction=red, label_smoothing=0.3), logits(2, 4, 5), labels(2, 4, 5))
    compare(lambda F, x, t: F.cross_entropy(x, t, reduction=red), logits(5), np.array(2))


@pytest.mark.parametrize("red", REDS)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_probabilities(red, scale):
    p = np.exp(logits(6, 5))
    p /= p.sum(1, keepdims=True)
    w = np.abs(logits(5)) + 0.1
    compare(lambda F, x, p: F.cross_entropy(x, p, reduction=red), logits(6, 5, scale=scale), p)
    compare(lambda F, x, p, w: F.cross_entropy(x, p, weight=w, label_smoothing=0.2, reduction=red),
            logits(6, 5, scale=scale), p, w, grad_idx={0, 1})
    p4 = np.exp(logits(2, 3, 4))
    p4 /= p4.sum(1, keepdims=True)
    compare(lambda F, x, p: F.cross_entropy(x, p, reduction=red), logits(2, 3, 4), p4)


def test_cross_entropy_all_ignored_is_nan_and_float32():
    x = deepbox.randn(3, 4)
    out = DF.cross_entropy(x, deepbox.tensor([-100, -100, -100]))
    assert np.isnan(out.item())
    compare(lambda F, x, t: F.cross_entropy(x, t), logits(16, 10, scale=1e4), labels(16, 10), dtype=np.float32)
    assert DF.cross_entropy(deepbox.randn(4, 3), deepbox.tensor([0, 1, 2, 0])).dtype == deepbox.float32
    with pytest.raises(IndexError, match="out of bounds"):
        DF.cross_entropy(deepbox.randn(2, 3), deepbox.tensor([0, 3]))


@pytest.mark.parametrize("red", REDS)
def test_nll(red):
    lp = np.log(np.abs(logits(6, 5)) + 0.1)
    w = np.abs(logits(5)) + 0.1
    t = labels(6, 5)
    t[0] = -100
    compare(lambda F, x, t: F.nll_loss(x, t, reduction=red), lp, t)
    compare(lambda F, x, t, w: F.nll_loss(x, t, weight=w, reduction=red), lp, t, w, grad_idx={0})
    compare(lambda F, x, t: F.nll_loss(x, t, reduction=red), logits(2, 3, 4), labels(2, 3, 4))
    compare(lambda F, x, t: F.nll_loss(F.log_softmax(x, 1), t, reduction=red), logits(6, 5, scale=1e4), t)


@pytest.mark.parametrize("red", REDS)
def test_regression_losses(red):
    a, b = logits(4, 5), logits(4, 5)
    compare(lambda F, x, y: F.mse_loss(x, y, reduction=red), a, b)
    compare(lambda F, x, y: F.l1_loss(x, y, reduction=red), a, b)
    compare(lambda F, x, y: F.smooth_l1_loss(x, y, reduction=red), a, b)
    compare(lambda F, x, y: F.smooth_l1_loss(x, y, reduction=red, beta=0.3), a, b)
    compare(lambda F, x, y: F.huber_loss(x, y, reduction=red, delta=0.5), a, b)
    compare(lambda F, x, y: F.soft_margin_loss(x, y, reduction=red), a, np.sign(b), grad_idx={0})


@pytest.mark.parametrize("red", REDS)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_bce_with_logits(red, scale):
    x, y = logits(4, 5, scale=scale), R.random((4, 5))
    w, pw = np.abs(logits(4, 5)), np.abs(logits(5)) + 0.5
    compare(lambda F, x, y: F.binary_cross_entropy_with_logits(x, y, reduction=red), x, y)
    compare(lambda F, x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, w, reduction=red, pos_weight=pw),
            x, y, w, pw, grad_idx={0, 1})


@pytest.mark.parametrize("red", REDS)
def test_bce(red):
    p, y, w = R.uniform(0.01, 0.99, (4, 5)), R.random((4, 5)), np.abs(logits(4, 5))
    compare(lambda F, x, y: F.binary_cross_entropy(x, y, reduction=red), p, y)
    compare(lambda F, x, y, w: F.binary_cross_entropy(x, y, w, reduction=red), p, y, w, grad_idx={0, 1})
    # probabilities of exactly 0 and 1: logs clamp at -100, as in PyTorch
    compare(lambda F, x, y: F.binary_cross_entropy(x, y, reduction=red), np.array([0.0, 1.0, 0.5]),
            np.array([1.0, 0.0, 1.0]), grad_idx={1})


@pytest.mark.parametrize("red", REDS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(red, log_target):
    inp = np.log(R.dirichlet(np.ones(5), 4))
    tgt = R.dirichlet(np.ones(5), 4)
    if log_target:
        tgt = np.log(tgt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare(lambda F, x, t: F.kl_div(x, t, reduction=red, log_target=log_target), inp, tgt)
        if not log_target:
            # a zero target contributes 0; PyTorch's gradient for that target entry is nan, deepbox's 0,
            # so only the input's gradient is compared here
            tgt[0, 0] = 0.0
            compare(lambda F, x, t: F.kl_div(x, t, reduction=red), inp, tgt, grad_idx={0})


@pytest.mark.parametrize("red", REDS)
def test_margin_losses(red):
    x, t = logits(5, 4), labels(5, 4)
    w = np.abs(logits(4)) + 0.1
    compare(lambda F, x, t: F.multi_margin_loss(x, t, reduction=red), x, t)
    compare(lambda F, x, t, w: F.multi_margin_loss(x, t, p=2, margin=0.5, weight=w, reduction=red), x, t, w,
            grad_idx={0})
    y = np.where(R.random(6) > 0.5, 1.0, -1.0)
    compare(lambda F, x, y: F.hinge_embedding_loss(x, y, margin=0.8, reduction=red), logits(6), y, grad_idx={0})
    compare(lambda F, a, b, y: F.cosine_embedding_loss(a, b, y, margin=0.1, reduction=red), logits(6, 3),
            logits(6, 3), y, grad_idx={0, 1})
    compare(lambda F, a, b, y: F.margin_ranking_loss(a, b, y, margin=0.2, reduction=red), logits(6), logits(6), y,
            grad_idx={0, 1})
    compare(lambda F, a, p, n: F.triplet_margin_loss(a, p, n, reduction=red), logits(6, 3), logits(6, 3),
            logits(6, 3))
    compare(lambda F, x, y: F.multilabel_soft_margin_loss(x, y, reduction=red), logits(4, 3),
            (R.random((4, 3)) > 0.5).astype(np.float64), grad_idx={0})
    mt = np.array([[3, 0, -1, 1], [1, 2, 3, -1]], dtype=np.int64)
    compare(lambda F, x, t: F.multilabel_margin_loss(x, t, reduction=red), logits(2, 4), mt)


@pytest.mark.parametrize("red", REDS)
def test_likelihood_losses(red):
    compare(lambda F, x, y: F.poisson_nll_loss(x, y, reduction=red), logits(4, 3), R.poisson(2.0, (4, 3)) * 1.0,
            grad_idx={0})
    compare(lambda F, x, y: F.poisson_nll_loss(x, y, log_input=False, full=True, reduction=red),
            R.uniform(0.5, 3, (4, 3)), R.poisson(2.0, (4, 3)) * 1.0, grad_idx={0})
    compare(lambda F, x, y, v: F.gaussian_nll_loss(x, y, v, reduction=red), logits(4, 3), logits(4, 3),
            R.uniform(0.1, 2, (4, 3)))


@pytest.mark.parametrize("cls,kwargs,n_in", [
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, 2), ("NLLLoss", {}, 2), ("MSELoss", {}, 2), ("L1Loss", {}, 2),
    ("SmoothL1Loss", {"beta": 0.5}, 2), ("HuberLoss", {"delta": 2.0}, 2), ("BCEWithLogitsLoss", {}, 2),
    ("MultiMarginLoss", {}, 2), ("KLDivLoss", {"reduction": "batchmean"}, 2), ("HingeEmbeddingLoss", {}, 2),
])
def test_loss_modules(cls, kwargs, n_in):
    dm, tm = getattr(dnn, cls)(**kwargs), getattr(torch.nn, cls)(**kwargs)
    assert repr(dm) == repr(tm)
    assert dm.reduction == tm.reduction
    x = logits(6, 4)
    if cls in ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss"):
        y = labels(6, 4)
    elif cls == "HingeEmbeddingLoss":
        y = np.sign(logits(6, 4))
    elif cls == "KLDivLoss":
        x, y = np.log(R.dirichlet(np.ones(4), 6)), R.dirichlet(np.ones(4), 6)
    else:
        y = R.random((6, 4))
    d = dm(deepbox.tensor(x), deepbox.tensor(y))
    t = tm(torch.tensor(x), torch.tensor(y))
    assert_close(d, t)


def test_loss_module_buffers_and_legacy_args():
    w = deepbox.tensor([1.0, 2.0, 3.0])
    m = dnn.CrossEntropyLoss(weight=w)
    assert list(m.state_dict()) == list(torch.nn.CrossEntropyLoss(weight=torch.ones(3)).state_dict()) == ["weight"]
    assert m.double().weight.dtype == deepbox.float64
    assert list(dnn.BCEWithLogitsLoss(pos_weight=w).state_dict()) == ["pos_weight"]
    with pytest.warns(UserWarning):
        m2 = dnn.MSELoss(size_average=False)
    assert m2.reduction == "sum"
    with pytest.raises(ValueError, match="reduction"):
        DF.mse_loss(deepbox.zeros(2), deepbox.zeros(2), reduction="avg")
