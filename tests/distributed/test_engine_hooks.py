"""Post-accumulate-grad hooks run as soon as a leaf's gradient is complete, as PyTorch's AccumulateGrad does.

DistributedDataParallel starts each bucket's all-reduce from these hooks, so that communication
overlaps the rest of backward; here, without MPI, the order of events shows when they run.
"""
from __future__ import annotations

import numpy as np
import torch

import deepbox


def _events(lib):
    x = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=lib.float64)
    w1 = lib.tensor(np.linspace(-0.5, 0.7, 12).reshape(3, 4), dtype=lib.float64, requires_grad=True)
    w2 = lib.tensor(np.linspace(0.3, -0.9, 8).reshape(4, 2), dtype=lib.float64, requires_grad=True)
    events = []
    w1.register_post_accumulate_grad_hook(lambda p: events.append(("w1", p.grad.sum().item())))
    w2.register_post_accumulate_grad_hook(lambda p: events.append(("w2", p.grad.sum().item())))
    h = (x @ w1).tanh()
    h.register_hook(lambda g: events.append(("h", None)))
    y = h @ w2
    z = y * w2.sum()          # w2 used twice: its hook waits for both contributions
    z.sum().backward()
    return events, w1.grad.numpy().copy(), w2.grad.numpy().copy()


def test_post_accumulate_hooks_fire_when_the_leaf_is_complete_as_in_pytorch():
    ev, g1, g2 = _events(deepbox)
    tev, tg1, tg2 = _events(torch)
    assert [e[0] for e in ev] == [e[0] for e in tev] == ["w2", "h", "w1"]
    for (_, a), (_, b) in zip(ev, tev):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(g1, tg1, rtol=1e-12)
    np.testing.assert_allclose(g2, tg2, rtol=1e-12)


def test_hooked_leaf_that_gets_no_gradient_from_one_edge_still_finishes():
    w = deepbox.ones(3, dtype=deepbox.float64, requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    idx = deepbox.tensor([0, 2])
    (w[idx].sum() * 2 + (w > 0).float().sum()).backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [2.0, 0.0, 2.0])
