"""The compiled cross-entropy (deepbox/kernels/loss.py) against PyTorch and its reference twin.

Each case runs through ``kernel_mode`` (the fast layer on, then off), with a check that the intended
Function ran, and compares the loss and the logits' gradient with torch 2.13's.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as DF
from deepbox import kernels
from deepbox.kernels import loss as kloss
from deepbox.ops import loss as rloss

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture
def two_threads():
    """Every kernel call split over two threads, so the row chunks meet."""
    old = kernels.threads.num_threads()
    kernels.threads.set_num_threads(2)
    real = kernels.threads.split_work
    kernels.threads.split_work = lambda n, ns: 1 << 30
    try:
        yield
    finally:
        kernels.threads.split_work = real
        kernels.threads.set_num_threads(old)


def _both(x, t, **kw):
    xd = deepbox.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ld = DF.cross_entropy(xd, deepbox.tensor(t), **kw)
    lt = TF.cross_entropy(xt, torch.tensor(t), **kw)
    return xd, xt, ld, lt


def _chosen(x, t, **kw):
    return kernels.choose(rloss.CrossEntropyFn, deepbox.tensor(x), deepbox.tensor(t), None,
                          kw.get("label_smoothing", 0.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (64, 1000)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_torch(kernel_mode, two_threads, dtype, reduction, shape, smoothing):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    fn = _chosen(x, t, label_smoothing=smoothing)
    assert fn is (kloss.CrossEntropyKernelFn if kernel_mode == "numba" else rloss.CrossEntropyFn)
    xd, xt, ld, lt = _both(x, t, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), **TOL[dtype])
    up = rng.standard_normal(ld.shape).astype(dtype)
    ld.backward(deepbox.tensor(up))
    lt.backward(torch.tensor(up))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_ignore_index_rows_and_all_ignored(kernel_mode, reduction, smoothing):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    for t in (np.array([0, -100, 3, -100, 1, 2]), np.full(6, 7)):
        xd, xt, ld, lt = _both(x, t, ignore_index=t[1] if t[0] == 7 else -100, reduction=reduction,
                               label_smoothing=smoothing)
        np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=2e-5, atol=2e-6)
        ld.sum().backward()
        lt.sum().backward()
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=2e-5, atol=2e-6)


def test_large_logits_stay_finite_and_nan_propagates(kernel_mode):
    x = np.array([[1e4, 0.0, -1e4], [3.0, np.nan, 1.0]], np.float32)
    t = np.array([1, 0])
    _, _, ld, lt = _both(x, t, reduction="none")
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-6)


def test_out_of_range_target_raises_before_computing(kernel_mode):
    x = deepbox.randn(3, 4)
    with pytest.raises(IndexError, match="out of bounds"):
        DF.cross_entropy(x, deepbox.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="out of bounds"):
        DF.cross_entropy(x, deepbox.tensor([0, -2, 1]))


def test_kernel_declines_what_it_does_not_handle():
    """Class weights, non-2-D logits, strided logits and integer logits go to the reference Function."""
    x = np.zeros((4, 3), np.float32)
    t = np.zeros(4, np.int64)
    ch = kernels.choose
    ref = rloss.CrossEntropyFn
    with kernels.compiled(True):
        assert ch(ref, x, t, np.ones(3, np.float32), 0.0) is ref
        assert ch(ref, x, t, None, 0.1) is kloss.CrossEntropyKernelFn
        assert ch(ref, np.zeros((2, 3, 4), np.float32), np.zeros((2, 4), np.int64), None, 0.0) is ref
        assert ch(ref, np.zeros((3, 4), np.float32).T, t, None, 0.0) is ref
        assert ch(ref, x.astype(np.int64), t, None, 0.0) is ref


def test_backward_follows_the_forward_when_the_switch_changes_between(kernel_mode):
    """The Function records its loops in forward; switching the fast layer before backward changes nothing."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    t = rng.integers(0, 6, 9)
    xd, xt, ld, lt = _both(x, t, label_smoothing=0.1)
    with kernels.compiled(kernel_mode == "numpy"):
        ld.backward()
    lt.backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=2e-5, atol=2e-6)
