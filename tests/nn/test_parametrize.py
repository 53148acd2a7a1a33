"""Parametrizations against PyTorch: weight norm and spectral norm (parametrizations and the older hooks) give
the same forward values, parameter gradients, state_dict keys and power-iteration buffers; register_parametrization
with a user's parametrization, right_inverse, caching and removal behave as in torch.nn.utils.parametrize."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as nn
from deepbox.nn.utils import parametrize
from tests.helpers import assert_close

rng = np.random.default_rng(0)


def _pair(kind):
    if kind == "linear":
        return torch.nn.Linear(5, 4).double(), nn.Linear(5, 4).double(), rng.normal(size=(3, 5))
    if kind == "conv":
        return torch.nn.Conv2d(2, 3, 3).double(), nn.Conv2d(2, 3, 3).double(), rng.normal(size=(2, 2, 6, 6))
    return torch.nn.ConvTranspose2d(2, 3, 3).double(), nn.ConvTranspose2d(2, 3, 3).double(), \
        rng.normal(size=(2, 2, 4, 4))


def _load(dm, tm):
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})


def _run_and_compare(tm, dm, x, train=True):
    tm.train(train)
    dm.train(train)
    tx, dx = torch.tensor(x), deepbox.tensor(x)
    ty, dy = tm(tx), dm(dx)
    assert_close(dy, ty, rtol=1e-10, atol=1e-12, what="forward")
    cot = rng.normal(size=tuple(ty.shape))
    (ty * torch.tensor(cot)).sum().backward()
    (dy * deepbox.tensor(cot)).sum().backward()
    tparams = dict(tm.named_parameters())
    dparams = dict(dm.named_parameters())
    assert sorted(tparams) == sorted(dparams)
    for k in tparams:
        assert_close(dparams[k].grad, tparams[k].grad, rtol=1e-9, atol=1e-11, what=f"grad {k}")
    for k, v in tm.state_dict().items():  # power-iteration buffers advanced alike
        assert_close(dm.state_dict()[k], v, rtol=1e-10, atol=1e-12, what=f"state {k}")


@pytest.mark.parametrize("kind", ["linear", "conv", "convT"])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_parametrization(kind, dim):
    tm, dm, x = _pair(kind)
    torch.nn.utils.parametrizations.weight_norm(tm, dim=dim)
    nn.utils.parametrizations.weight_norm(dm, dim=dim)
    assert list(dm.state_dict()) == list(tm.state_dict())
    _load(dm, tm)
    _run_and_compare(tm, dm, x)
    assert type(dm).__name__ == type(tm).__name__ == f"Parametrized{type(tm).__mro__[1].__name__}"


@pytest.mark.parametrize("kind", ["linear", "conv", "convT"])
@pytest.mark.parametrize("train", [True, False])
def test_spectral_norm_parametrization(kind, train):
    tm, dm, x = _pair(kind)
    torch.nn.utils.parametrizations.spectral_norm(tm, n_power_iterations=2)
    nn.utils.parametrizations.spectral_norm(dm, n_power_iterations=2)
    assert list(dm.state_dict()) == list(tm.state_dict())
    _load(dm, tm)
    _run_and_compare(tm, dm, x, train)


def test_spectral_norm_bounds_the_largest_singular_value():
    m = nn.utils.parametrizations.spectral_norm(nn.Linear(20, 30))
    for _ in range(10):  # power iteration converges over forwards in training mode
        m(deepbox.randn(1, 20))
    assert abs(np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)[0] - 1.0) < 1e-3


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_hook_weight_norm_and_spectral_norm(kind):
    tm, dm, x = _pair(kind)
    with pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(tm)
    with pytest.warns(FutureWarning):
        nn.utils.weight_norm(dm)
    _load(dm, tm)
    _run_and_compare(tm, dm, x)
    nn.utils.remove_weight_norm(dm)
    torch.nn.utils.remove_weight_norm(tm)
    assert sorted(dict(dm.named_parameters())) == sorted(dict(tm.named_parameters()))
    tm, dm, x = _pair(kind)
    torch.nn.utils.spectral_norm(tm)
    nn.utils.spectral_norm(dm)
    assert list(dm.state_dict()) == list(tm.state_dict())
    _load(dm, tm)
    _run_and_compare(tm, dm, x)
    nn.utils.remove_spectral_norm(dm)
    assert "weight" in dict(dm.named_parameters())


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


def test_register_parametrization_user_module_and_right_inverse():
    m = nn.Linear(4, 4)
    parametrize.register_parametrization(m, "weight", Symmetric())
    W = m.weight.detach().numpy()
    np.testing.assert_allclose(W, W.T)
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    assert parametrize.type_before_parametrizations(m) is nn.Linear
    A = deepbox.tensor(np.arange(16.0).reshape(4, 4).astype(np.float32))
    A = A + A.t()
    m.weight = A  # goes through right_inverse
    np.testing.assert_allclose(m.weight.detach().numpy(), A.numpy())
    opt = deepbox.optim.SGD(m.parameters(), lr=0.1)
    m(deepbox.randn(3, 4)).pow(2).sum().backward()
    opt.step()
    W = m.weight.detach().numpy()
    np.testing.assert_allclose(W, W.T)  # still symmetric after the update
    with parametrize.cached():
        assert m.weight is m.weight
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    np.testing.assert_allclose(m.weight.detach().numpy(), W)


def test_register_parametrization_errors_match_torch():
    class Shrink(nn.Module):
        def forward(self, X):
            return X[:2]

    class TShrink(torch.nn.Module):
        def forward(self, X):
            return X[:2]

    with pytest.raises(ValueError):
        parametrize.register_parametrization(nn.Linear(3, 4), "weight", Shrink())
    with pytest.raises(ValueError):
        torch.nn.utils.parametrize.register_parametrization(torch.nn.Linear(3, 4), "weight", TShrink())
    m = parametrize.register_parametrization(nn.Linear(3, 4), "weight", Shrink(), unsafe=True)
    assert tuple(m.weight.shape) == (2, 3)
    with pytest.raises(ValueError):
        parametrize.register_parametrization(nn.Linear(3, 4), "nope", Symmetric())
    with pytest.raises(ValueError):
        parametrize.remove_parametrizations(nn.Linear(3, 4), "weight")
    with pytest.raises(ValueError):
        parametrize.remove_parametrizations(nn.utils.parametrizations.weight_norm(nn.Linear(3, 4)), "weight",
                                            leave_parametrized=False)
