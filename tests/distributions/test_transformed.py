"""deepbox.distributions.transforms, TransformedDistribution and the distributions built on transforms or added
after the first set, against torch.distributions 2.13: values and gradients of log_prob/entropy/cdf/KL, moments,
shapes, expand, sample statistics, reparameterised gradients and argument validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributions as td
import torch.distributions.transforms as tt

import deepbox
import deepbox.distributions as dd
import deepbox.distributions.transforms as dt
from tests.helpers import assert_close

rng = np.random.default_rng(5)  # this module's own stream: drawing from another test module's would reorder its data


def U(lo, hi, *shape):
    return rng.uniform(lo, hi, shape)


def simplex(*shape):
    p = rng.uniform(0.1, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def _compare_with_grads(d_out, t_out, d_params, t_params, what):
    """Values agree, and so do the gradients of <out, random cotangent> with respect to every parameter."""
    assert_close(d_out, t_out, rtol=1e-8, atol=1e-10, what=what)
    cot = rng.normal(size=tuple(t_out.shape))
    (d_out * deepbox.tensor(cot)).sum().backward()
    (t_out * torch.tensor(cot)).sum().backward()
    for i, (dp, tp) in enumerate(zip(d_params, t_params)):
        if tp.grad is None:
            assert dp.grad is None or np.allclose(dp.grad.numpy(), 0), f"{what}: grad of param {i}"
            continue
        assert_close(dp.grad, tp.grad, rtol=1e-7, atol=1e-9, what=f"{what}: grad of param {i}")


# --------------------------------------------------------------------------- transforms
# name: (constructor of (transforms module, *params), params, x in the domain)
TRANSFORMS = {
    "Exp": (lambda m: m.ExpTransform(), [], U(-2, 2, 3, 4)),
    "Affine": (lambda m, a, b: m.AffineTransform(a, b), [U(-1, 1, 4), U(-2, -0.5, 4)], U(-2, 2, 3, 4)),
    "Affine_scalar": (lambda m: m.AffineTransform(1.5, -2.0), [], U(-2, 2, 3, 4)),
    "Affine_event": (lambda m, a, b: m.AffineTransform(a, b, event_dim=1), [U(-1, 1, 4), U(0.5, 2, 4)],
                     U(-2, 2, 3, 4)),
    "Sigmoid": (lambda m: m.SigmoidTransform(), [], U(-5, 5, 3, 4)),
    "Tanh": (lambda m: m.TanhTransform(), [], U(-3, 3, 3, 4)),
    "Power": (lambda m, e: m.PowerTransform(e), [U(0.5, 2.5, 4)], U(0.2, 3, 3, 4)),
    "Softplus": (lambda m: m.SoftplusTransform(), [], U(-4, 4, 3, 4)),
    "Compose": (lambda m, a, b: m.ComposeTransform([m.AffineTransform(a, b), m.ExpTransform(),
                                                    m.AffineTransform(0.5, 2.0, event_dim=1)]),
                [U(-1, 1, 4), U(0.5, 2, 4)], U(-1, 1, 3, 4)),
    "Inverse_exp": (lambda m: m.ExpTransform().inv, [], U(0.2, 3, 3, 4)),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transform_forward_inverse_and_log_det_against_torch(name):
    ctor, params, x = TRANSFORMS[name]
    d_params = [deepbox.tensor(p, dtype=deepbox.float64, requires_grad=True) for p in params]
    t_params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    d, t = ctor(dt, *d_params), ctor(tt, *t_params)
    dx = deepbox.tensor(x, dtype=deepbox.float64, requires_grad=True)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    dy, ty = d(dx), t(tx)
    assert_close(dy, ty, rtol=1e-10, atol=1e-12, what=f"{name} forward")
    assert_close(d.inv(dy.detach()), t.inv(ty.detach()), rtol=1e-8, atol=1e-10, what=f"{name} inverse")
    assert_close(d.inv(dy.detach()), x, rtol=1e-7, atol=1e-9, what=f"{name} round trip")
    d_ladj, t_ladj = d.log_abs_det_jacobian(dx, dy), t.log_abs_det_jacobian(tx, ty)
    if t_ladj.requires_grad:
        _compare_with_grads(d_ladj, t_ladj, d_params + [dx], t_params + [tx], f"{name} log_abs_det_jacobian")
    else:  # a constant (an affine map with a number for scale)
        assert_close(d_ladj, t_ladj.detach(), rtol=1e-10, what=f"{name} log_abs_det_jacobian")
    assert d.bijective == t.bijective
    assert d.domain.event_dim == t.domain.event_dim and d.codomain.event_dim == t.codomain.event_dim
    assert tuple(d.forward_shape((2, 3, 4))) == tuple(t.forward_shape(torch.Size((2, 3, 4))))
    sign_d, sign_t = d.sign, t.sign
    assert_close(deepbox.as_tensor(sign_d).to(deepbox.float64), torch.as_tensor(sign_t).to(torch.float64))


def test_log_abs_det_jacobian_against_finite_differences():
    x = U(-2, 2, 6)
    for t in (dt.TanhTransform(), dt.SigmoidTransform(), dt.SoftplusTransform(), dt.PowerTransform(1.7)):
        xx = np.abs(x) + 0.1 if isinstance(t, dt.PowerTransform) else x
        h = 1e-6
        fd = (t(deepbox.tensor(xx + h)).numpy() - t(deepbox.tensor(xx - h)).numpy()) / (2 * h)
        got = t.log_abs_det_jacobian(deepbox.tensor(xx), t(deepbox.tensor(xx))).numpy()
        np.testing.assert_allclose(got, np.log(np.abs(fd)), rtol=1e-6, atol=1e-8)


def test_transform_equality_abs_and_errors():
    assert dt.ExpTransform() == dt.ExpTransform() and dt.ExpTransform() != dt.SigmoidTransform()
    assert dt.AffineTransform(0.0, 2.0) == dt.AffineTransform(0.0, 2.0) != dt.AffineTransform(0.0, 3.0)
    assert dt.ExpTransform().inv == dt.ExpTransform().inv and dt.ExpTransform().inv.inv == dt.ExpTransform()
    a = dt.AbsTransform()
    assert_close(a(deepbox.tensor([-2.0, 3.0])), np.array([2.0, 3.0], dtype=np.float32))
    assert not a.bijective and a.inv(deepbox.tensor([2.0])).item() == 2.0
    for m in (dt, tt):
        with pytest.raises(ValueError):
            m.ExpTransform(cache_size=3)
        with pytest.raises(NotImplementedError):
            m.Transform().log_abs_det_jacobian(None, None)
        with pytest.raises(ValueError):  # the event dimension is ambiguous when domain and codomain differ
            _ = m.Transform().inv.event_dim if False else _Unequal(m).event_dim


def _Unequal(m):  # noqa: N802 - a transform whose domain is a vector and whose codomain is a scalar
    class T(m.Transform):
        domain = m.constraints.independent(m.constraints.real, 1) if m is dt else torch.distributions.constraints \
            .independent(torch.distributions.constraints.real, 1)
        codomain = dd.constraints.real if m is dt else torch.distributions.constraints.real
    return T()


# --------------------------------------------------------------------------- distributions
# name: (constructor of (module, *params), parameter arrays, a value array inside the support)
SPECS = {
    "LogNormal": (lambda m, a, b: m.LogNormal(a, b), [U(-1, 1, 3, 4), U(0.3, 1.2, 4)], U(0.1, 4, 2, 3, 4)),
    "HalfNormal": (lambda m, s: m.HalfNormal(s), [U(0.5, 2, 4)], U(0.05, 3, 3, 4)),
    "Gumbel": (lambda m, a, b: m.Gumbel(a, b), [U(-2, 2, 4), U(0.5, 2, 4)], U(-3, 5, 3, 4)),
    "Transformed_affine_exp": (lambda m, a, b: m.TransformedDistribution(
        m.Normal(a, b), [m.transforms.ExpTransform(), m.transforms.AffineTransform(0.5, -2.0)]),
        [U(-1, 1, 4), U(0.5, 1.5, 4)], U(-5, 0.4, 3, 4)),
    "Transformed_event": (lambda m, a, b: m.TransformedDistribution(
        m.Normal(a, b), [m.transforms.AffineTransform(a.detach() * 0 + 1.0, 3.0, event_dim=1),
                         m.transforms.SigmoidTransform()]),
        [U(-1, 1, 3, 4), U(0.5, 1.5, 3, 4)], U(0.05, 0.95, 3, 4)),
}
ENTROPY = ["LogNormal", "HalfNormal", "Gumbel"]
CDF = ["LogNormal", "HalfNormal", "Transformed_affine_exp"]


def build(name, requires_grad=True):
    ctor, params, value = SPECS[name]
    d_params = [deepbox.tensor(p, dtype=deepbox.float64, requires_grad=requires_grad) for p in params]
    t_params = [torch.tensor(p, dtype=torch.float64, requires_grad=requires_grad) for p in params]
    return ctor(dd, *d_params), ctor(td, *t_params), d_params, t_params, value


@pytest.mark.parametrize("name", sorted(SPECS))
def test_log_prob_value_and_gradients(name):
    d, t, dp, tp, value = build(name)
    _compare_with_grads(d.log_prob(deepbox.tensor(value)), t.log_prob(torch.tensor(value)), dp, tp,
                        f"{name}.log_prob")


@pytest.mark.parametrize("name", ENTROPY)
def test_entropy_value_and_gradients(name):
    d, t, dp, tp, _ = build(name)
    _compare_with_grads(d.entropy(), t.entropy(), dp, tp, f"{name}.entropy")


@pytest.mark.parametrize("name", CDF)
def test_cdf_icdf_value_and_gradients(name):
    d, t, dp, tp, value = build(name)
    _compare_with_grads(d.cdf(deepbox.tensor(value)), t.cdf(torch.tensor(value)), dp, tp, f"{name}.cdf")
    q = U(0.05, 0.95, *value.shape)
    d, t, dp, tp, _ = build(name)
    _compare_with_grads(d.icdf(deepbox.tensor(q)), t.icdf(torch.tensor(q)), dp, tp, f"{name}.icdf")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shapes_moments_and_expand(name):
    d, t, _, _, _ = build(name, requires_grad=False)
    assert tuple(d.batch_shape) == tuple(t.batch_shape) and tuple(d.event_shape) == tuple(t.event_shape)
    for sample_shape in ((), (2,), (2, 3)):
        assert tuple(d.sample(sample_shape).shape) == tuple(t.sample(sample_shape).shape)
        assert tuple(d.rsample(sample_shape).shape) == tuple(t.rsample(sample_shape).shape)
    if name in ENTROPY:
        for attr in ("mean", "variance", "stddev", "mode"):
            assert_close(getattr(d, attr), getattr(t, attr), rtol=1e-8, atol=1e-10, what=f"{name}.{attr}")
    assert d.has_rsample == t.has_rsample
    assert d.support.event_dim == t.support.event_dim
    ex, tex = d.expand((7,) + tuple(d.batch_shape)), t.expand((7,) + tuple(t.batch_shape))
    assert tuple(ex.batch_shape) == tuple(tex.batch_shape) and type(ex) is type(d)
    assert tuple(ex.sample().shape) == tuple(tex.sample().shape)
    tv = tex.sample()
    assert_close(ex.log_prob(deepbox.tensor(tv.numpy())), tex.log_prob(tv), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["LogNormal", "HalfNormal", "Gumbel"])
def test_sample_statistics(name):
    deepbox.manual_seed(1)
    d, _, _, _, _ = build(name, requires_grad=False)
    n = 100_000
    s = d.sample((n,)).numpy()
    mean, var = d.mean.numpy(), d.variance.numpy()
    np.testing.assert_array_less(np.abs(s.mean(0) - mean), 5 * np.sqrt(var / n) + 1e-12)
    np.testing.assert_allclose(s.var(0), var, rtol=0.1)


def test_rsample_gradients_are_reparameterised():
    loc = deepbox.tensor([0.5, -1.0], dtype=deepbox.float64, requires_grad=True)
    scale = deepbox.tensor([0.7, 0.3], dtype=deepbox.float64, requires_grad=True)
    x = dd.LogNormal(loc, scale).rsample((50,))
    x.sum().backward()
    # y = exp(loc + scale * eps): dy/dloc = y, dy/dscale = y * eps
    assert_close(loc.grad, x.detach().sum(0))
    eps = (x.detach().log() - loc.detach()) / scale.detach()
    assert_close(scale.grad, (x.detach() * eps).sum(0))
    assert not dd.LogNormal(loc, scale).sample().requires_grad


@pytest.mark.parametrize("name", ["LogNormal", "HalfNormal", "Gumbel"])
def test_kl_divergence_against_torch(name):
    d1, t1, dp1, tp1, _ = build(name)
    d2, t2, dp2, tp2, _ = build(name)
    _compare_with_grads(dd.kl_divergence(d1, d2), td.kl_divergence(t1, t2), dp1 + dp2, tp1 + tp2, f"KL {name}")


def test_kl_transformed_requires_equal_transforms():
    p = dd.TransformedDistribution(dd.Normal(0.0, 1.0), dt.AffineTransform(0.0, 2.0))
    q = dd.TransformedDistribution(dd.Normal(0.0, 1.0), dt.AffineTransform(0.0, 3.0))
    with pytest.raises(NotImplementedError):
        dd.kl_divergence(p, q)


def test_argument_validation_errors_match_torch():
    cases = [
        lambda m, t: m.LogNormal(t([0.0]), t([-1.0])),
        lambda m, t: m.HalfNormal(t([-1.0])),
        lambda m, t: m.Gumbel(t([0.0]), t([0.0])),
        lambda m, t: m.LogNormal(t([0.0]), t([1.0])).log_prob(t([-1.0])),
        lambda m, t: m.HalfNormal(t([1.0])).log_prob(t([-1.0])),
        lambda m, t: m.TransformedDistribution(m.Normal(t([0.0]), t([1.0])), "exp"),
        lambda m, t: m.TransformedDistribution(m.Normal(t(0.0), t(1.0)),
                                               m.transforms.AffineTransform(0.0, 1.0, event_dim=1)),
    ]
    for i, fn in enumerate(cases):
        for m, t in ((dd, lambda v: deepbox.tensor(v)), (td, lambda v: torch.tensor(v))):
            with pytest.raises(ValueError):
                fn(m, t)
                print(f"case {i} did not raise in {m.__name__}")


def test_transforms_are_exported_at_the_top_level_as_in_torch():
    for name in ("AbsTransform", "AffineTransform", "ComposeTransform", "ExpTransform", "PowerTransform",
                 "SigmoidTransform", "SoftplusTransform", "TanhTransform", "Transform"):
        assert hasattr(td, name) and getattr(dd, name) is getattr(dt, name)
