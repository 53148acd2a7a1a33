"""nn.utils: gradient clipping and parameter vectors equal torch.nn.utils'."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as dnn


def pair(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    arrays = [rng.standard_normal(s) * scale for s in shapes]
    grads = [rng.standard_normal(s) * scale for s in shapes]
    d = [dnn.Parameter(deepbox.tensor(a)) for a in arrays]
    t = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    for p, g in zip(d, grads):
        p.grad = deepbox.tensor(g)
    for p, g in zip(t, grads):
        p.grad = torch.tensor(g)
    return d, t


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    d, t = pair()
    nd = dnn.utils.clip_grad_norm_(d, max_norm, norm_type)
    nt = torch.nn.utils.clip_grad_norm_(t, max_norm, norm_type)
    np.testing.assert_allclose(float(nd), float(nt), rtol=1e-12)
    for a, b in zip(d, t):
        np.testing.assert_allclose(a.grad._data, b.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_single_tensor_float32_and_nonfinite():
    p = dnn.Parameter(deepbox.ones(4))
    p.grad = deepbox.full((4,), 3.0)
    total = dnn.utils.clip_grad_norm_(p, 1.0)
    assert total.dtype == deepbox.float32 and float(total) == pytest.approx(6.0)
    np.testing.assert_allclose(p.grad._data, 0.5 / (1 + 1e-6 / 6), rtol=1e-6)
    p.grad = deepbox.tensor([np.inf, 1.0, 0.0, 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        dnn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert float(dnn.utils.clip_grad_norm_([dnn.Parameter(deepbox.ones(2))], 1.0)) == 0.0  # no grads


def test_clip_grad_value_matches_torch():
    d, t = pair(1, scale=3.0)
    dnn.utils.clip_grad_value_(d, 1.5)
    torch.nn.utils.clip_grad_value_(t, 1.5)
    for a, b in zip(d, t):
        np.testing.assert_array_equal(a.grad._data, b.grad.numpy())


def test_parameters_to_vector_round_trip():
    d, t = pair(2)
    vd = dnn.utils.parameters_to_vector(d)
    vt = torch.nn.utils.parameters_to_vector(t)
    np.testing.assert_array_equal(vd.detach().numpy(), vt.detach().numpy())
    dnn.utils.vector_to_parameters(vd * 2, d)
    torch.nn.utils.vector_to_parameters(vt * 2, t)
    for a, b in zip(d, t):
        np.testing.assert_array_equal(a._data, b.detach().numpy())
    with pytest.raises(RuntimeError, match="expected"):
        dnn.utils.vector_to_parameters(deepbox.zeros(3), d)


def test_clip_in_a_training_step():
    m = dnn.Linear(5, 2)
    loss = (m(deepbox.randn(8, 5) * 100) ** 2).mean()
    loss.backward()
    before = dnn.utils.clip_grad_norm_(m.parameters(), 1.0)
    assert float(before) > 1.0
    after = math.sqrt(sum(float((p.grad ** 2).sum()) for p in m.parameters()))
    assert after == pytest.approx(1.0, rel=1e-4)
