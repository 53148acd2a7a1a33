"""nn.init: fan computation and gains equal PyTorch's; the distributions have the right statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import deepbox
from deepbox.nn import init


@pytest.mark.parametrize("shape", [(3, 5), (7, 2, 3), (8, 4, 3, 3), (2, 3, 2, 2, 2), (1, 9)])
def test_fans_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(deepbox.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(deepbox.empty(4))


@pytest.mark.parametrize("nl,param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                      ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                      ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_gain_matches_torch(nl, param):
    assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param), rel=1e-15)


def test_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")


def _stats(t):
    a = t._data.astype(np.float64)
    return a.mean(), a.std(), a.min(), a.max()


def test_uniform_normal_constant():
    deepbox.manual_seed(0)
    t = deepbox.empty(300, 400)
    init.uniform_(t, -2, 3)
    m, s, lo, hi = _stats(t)
    assert lo >= -2 and hi < 3 and abs(m - 0.5) < 0.02 and abs(s - 5 / math.sqrt(12)) < 0.01
    init.normal_(t, 1.0, 2.0)
    m, s, _, _ = _stats(t)
    assert abs(m - 1) < 0.02 and abs(s - 2) < 0.01
    assert t.dtype == deepbox.float32
    assert np.all(init.constant_(t, 0.3)._data == np.float32(0.3))
    assert np.all(init.zeros_(t)._data == 0) and np.all(init.ones_(t)._data == 1)
    np.testing.assert_array_equal(init.eye_(deepbox.empty(3, 4))._data, np.eye(3, 4))


def test_seed_reproducible_and_generator():
    deepbox.manual_seed(7)
    a = init.normal_(deepbox.empty(5, 5))._data.copy()
    deepbox.manual_seed(7)
    b = init.normal_(deepbox.empty(5, 5))._data.copy()
    np.testing.assert_array_equal(a, b)
    g = deepbox.Generator().manual_seed(3)
    c = init.uniform_(deepbox.empty(4), generator=g)._data.copy()
    g.manual_seed(3)
    np.testing.assert_array_equal(init.uniform_(deepbox.empty(4), generator=g)._data, c)


@pytest.mark.parametrize("shape", [(256, 512), (64, 32, 3, 3)])
def test_xavier_and_kaiming_statistics(shape):
    deepbox.manual_seed(1)
    t = deepbox.empty(*shape)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    a = math.sqrt(6 / (fan_in + fan_out)) * 2.0
    init.xavier_uniform_(t, gain=2.0)
    _, s, lo, hi = _stats(t)
    assert -a <= lo and hi <= a and abs(s - a / math.sqrt(3)) / s < 0.02
    init.xavier_normal_(t)
    assert abs(_stats(t)[1] - math.sqrt(2 / (fan_in + fan_out))) / _stats(t)[1] < 0.02
    init.kaiming_uniform_(t, a=math.sqrt(5))
    bound = math.sqrt(3) * torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(fan_in)
    _, s, lo, hi = _stats(t)
    assert -bound <= lo and hi <= bound and abs(s - bound / math.sqrt(3)) / s < 0.02
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(_stats(t)[1] - math.sqrt(2 / fan_out)) / _stats(t)[1] < 0.02
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_normal_(t, mode="fan_avg")


def test_trunc_normal():
    deepbox.manual_seed(2)
    t = init.trunc_normal_(deepbox.empty(200, 500), mean=0.5, std=1.0, a=-1.0, b=1.5)
    a = t._data.astype(np.float64)
    assert a.min() >= -1.0 and a.max() <= 1.5
    # moments of N(0.5, 1) truncated to [-1, 1.5], from the closed form
    from scipy.stats import truncnorm

    dist = truncnorm(-1.5, 1.0, loc=0.5, scale=1.0)
    assert abs(a.mean() - dist.mean()) < 0.01 and abs(a.std() - dist.std()) < 0.01


def test_erfinv_accuracy():
    from deepbox.ops.special import erfinv_array

    y = np.linspace(-0.999999, 0.999999, 2001)
    np.testing.assert_allclose(erfinv_array(y), torch.special.erfinv(torch.tensor(y)).numpy(), rtol=1e-12, atol=1e-12)


def test_orthogonal_and_dirac_and_sparse():
    deepbox.manual_seed(3)
    for shape in [(6, 4), (4, 6), (5, 2, 3)]:
        t = init.orthogonal_(deepbox.empty(*shape), gain=2.0)
        flat = t._data.reshape(shape[0], -1).astype(np.float64)
        gram = flat @ flat.T if shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(gram, 4 * np.eye(gram.shape[0]), atol=1e-5)
    w = init.dirac_(deepbox.empty(4, 4, 3, 3))
    np.testing.assert_array_equal(w._data, torch.nn.init.dirac_(torch.empty(4, 4, 3, 3)).numpy())
    s = init.sparse_(deepbox.empty(10, 6), sparsity=0.3)
    assert np.all((s._data == 0).sum(0) >= 3)


def test_init_does_not_record_graph_and_bumps_version():
    p = deepbox.nn.Parameter(deepbox.empty(3, 3))
    v = p._version[0]
    init.normal_(p)
    assert p.is_leaf and p.requires_grad and p._version[0] > v
