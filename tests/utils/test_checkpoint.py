"""deepbox.utils.checkpoint: the same values and gradients as without checkpointing (and as PyTorch's
checkpoint with the same weights), dropout masks preserved, and a lower memory peak."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as nn
from deepbox.utils.checkpoint import checkpoint, checkpoint_sequential
from tests.helpers import copy_torch_weights


def _mlp(m, width=16, depth=4):
    layers = []
    for _ in range(depth):
        layers += [m.Linear(width, width), m.Tanh()]
    return m.Sequential(*layers)


def test_gradients_equal_plain_backward_and_torch():
    torch.manual_seed(0)
    tm = _mlp(torch.nn).double()
    dm = _mlp(nn).double()
    copy_torch_weights(tm, dm)
    x = np.random.default_rng(0).normal(size=(5, 16))
    tx = torch.tensor(x, requires_grad=True)
    dx = deepbox.tensor(x, requires_grad=True)
    ty = torch.utils.checkpoint.checkpoint(tm, tx, use_reentrant=False)
    dy = checkpoint(dm, dx, use_reentrant=False)
    (ty ** 2).sum().backward()
    (dy ** 2).sum().backward()
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    for (name, tp), dp in zip(tm.named_parameters(), dm.parameters()):
        np.testing.assert_allclose(dp.grad.numpy(), tp.grad.numpy(), rtol=1e-10, err_msg=name)


def test_multiple_outputs_and_inputs_without_grad():
    a = deepbox.randn(3, 4, requires_grad=True)
    b = deepbox.randn(3, 4)
    s, p = checkpoint(lambda u, v: (u + v, (u * v).sum()), a, b, use_reentrant=True)
    (s.sum() + 2 * p).backward()
    np.testing.assert_allclose(a.grad.numpy(), 1 + 2 * b.numpy(), rtol=1e-6)


def test_dropout_masks_are_the_same_in_the_recomputation():
    deepbox.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 32), nn.Dropout(0.5), nn.Linear(32, 1))
    x = deepbox.randn(16, 8)
    deepbox.manual_seed(7)
    checkpoint(m, x, use_reentrant=False).sum().backward()
    g_ckpt = [p.grad.numpy().copy() for p in m.parameters()]
    m.zero_grad()
    deepbox.manual_seed(7)
    m(x).sum().backward()
    for a, p in zip(g_ckpt, m.parameters()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-6)


def test_checkpoint_sequential_matches_plain():
    deepbox.manual_seed(0)
    m = _mlp(nn, width=8, depth=6)
    x = deepbox.randn(4, 8, requires_grad=True)
    checkpoint_sequential(m, 3, x, use_reentrant=False).sum().backward()
    g = x.grad.numpy().copy()
    x.grad = None
    m(x).sum().backward()
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-6)


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_falls():
    """32 layers on a large batch in 8 checkpointed segments: the forward keeps only the segment boundaries,
    and backward holds one segment's activations at a time (about sqrt(depth) arrays instead of depth)."""
    deepbox.manual_seed(0)
    m = _mlp(nn, width=64, depth=32)
    x = deepbox.randn(2048, 64, requires_grad=True)
    segments = [nn.Sequential(*list(m.children())[i:i + 8]) for i in range(0, 64, 8)]

    def plain():
        m(x).sum().backward()

    def ckpt():
        h = x
        for s in segments:
            h = checkpoint(s, h, use_reentrant=False)
        h.sum().backward()

    plain()  # warm up caches and gradient buffers alike
    ckpt()
    assert _peak_bytes(ckpt) < 0.6 * _peak_bytes(plain)


def test_bad_arguments():
    with pytest.raises(TypeError, match="Tensors as positional"):
        checkpoint(lambda a, n: a * n, deepbox.randn(2, requires_grad=True), 3, use_reentrant=False)
    with pytest.warns(UserWarning, match="use_reentrant"):
        checkpoint(lambda a: a * 2, deepbox.randn(2, requires_grad=True))
