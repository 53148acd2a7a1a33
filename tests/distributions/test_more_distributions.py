"""Cauchy, HalfCauchy, StudentT, Chi2, Geometric, Binomial, RelaxedBernoulli, RelaxedOneHotCategorical and
MixtureSameFamily against torch.distributions 2.13: log_prob/entropy/cdf/KL values and gradients, moments, shapes,
expand, sample statistics, reparameterised gradients and argument validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributions as td

import deepbox
import deepbox.distributions as dd
from tests.distributions.test_transformed import _compare_with_grads
from tests.helpers import assert_close

rng = np.random.default_rng(7)


def U(lo, hi, *shape):
    return rng.uniform(lo, hi, shape)


def simplex(*shape):
    p = rng.uniform(0.1, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def _temp(m, t):
    return t.detach().sum() * 0 + 0.7  # a fixed 0-d temperature tensor of the parameters' dtype


def _mix(m, w, loc, scale):
    return m.MixtureSameFamily(m.Categorical(probs=w), m.Normal(loc, scale))


def _mix_mvn(m, lg, loc, scale):
    return m.MixtureSameFamily(m.Categorical(logits=lg), m.Independent(m.Normal(loc, scale), 1))


# name: (constructor of (module, *params), parameter arrays, a value array inside the support)
SPECS = {
    "Cauchy": (lambda m, a, b: m.Cauchy(a, b), [U(-2, 2, 3, 4), U(0.5, 2, 4)], U(-5, 5, 2, 3, 4)),
    "HalfCauchy": (lambda m, s: m.HalfCauchy(s), [U(0.5, 2, 4)], U(0.05, 5, 3, 4)),
    "StudentT": (lambda m, df, a, b: m.StudentT(df, a, b), [U(2.5, 8, 4), U(-1, 1, 4), U(0.5, 2, 4)],
                 U(-4, 4, 3, 4)),
    "Chi2": (lambda m, df: m.Chi2(df), [U(1, 6, 4)], U(0.1, 8, 3, 4)),
    "Geometric_probs": (lambda m, p: m.Geometric(probs=p), [U(0.2, 0.9, 4)], rng.integers(0, 6, (3, 4)) * 1.0),
    "Geometric_logits": (lambda m, lg: m.Geometric(logits=lg), [U(-2, 2, 4)], rng.integers(0, 6, (3, 4)) * 1.0),
    "Binomial_probs": (lambda m, p: m.Binomial(8, probs=p), [U(0.1, 0.9, 3, 4)], rng.integers(0, 9, (3, 4)) * 1.0),
    "Binomial_logits": (lambda m, lg: m.Binomial(5, logits=lg), [U(-2, 2, 4)], rng.integers(0, 6, (2, 4)) * 1.0),
    "RelaxedBernoulli": (lambda m, lg: m.RelaxedBernoulli(_temp(m, lg), logits=lg), [U(-2, 2, 4)],
                         U(0.05, 0.95, 3, 4)),
    "RelaxedOneHotCategorical": (lambda m, p: m.RelaxedOneHotCategorical(_temp(m, p), probs=p), [simplex(3, 4)],
                                 simplex(2, 3, 4)),
    "Mixture": (_mix, [simplex(3, 4), U(-2, 2, 3, 4), U(0.5, 1.5, 3, 4)], U(-3, 3, 2, 3)),
    "Mixture_event": (_mix_mvn, [U(-1, 1, 4), U(-2, 2, 4, 2), U(0.5, 1.5, 4, 2)], U(-3, 3, 5, 2)),
}
ENTROPY = ["Cauchy", "HalfCauchy", "StudentT", "Chi2", "Geometric_probs", "Geometric_logits", "Binomial_probs",
           "Binomial_logits"]
MOMENTS = ENTROPY + ["Mixture", "Mixture_event"]
CDF = ["Cauchy", "HalfCauchy", "Mixture"]
ICDF = ["Cauchy", "HalfCauchy"]


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
    if name in ICDF:
        q = U(0.05, 0.95, *value.shape)
        d, t, dp, tp, _ = build(name)
        _compare_with_grads(d.icdf(deepbox.tensor(q)), t.icdf(torch.tensor(q)), dp, tp, f"{name}.icdf")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shapes_moments_and_expand(name):
    d, t, _, _, _ = build(name, requires_grad=False)
    assert tuple(d.batch_shape) == tuple(t.batch_shape) and tuple(d.event_shape) == tuple(t.event_shape)
    for sample_shape in ((), (2,), (2, 3)):
        assert tuple(d.sample(sample_shape).shape) == tuple(t.sample(sample_shape).shape)
        if t.has_rsample:
            assert tuple(d.rsample(sample_shape).shape) == tuple(t.rsample(sample_shape).shape)
    if name in MOMENTS:
        attrs = ("mean", "variance", "stddev") + (() if name.startswith("Mixture") else ("mode",))
        for attr in attrs:
            assert_close(getattr(d, attr), getattr(t, attr), rtol=1e-8, atol=1e-10, what=f"{name}.{attr}")
    assert d.has_rsample == t.has_rsample
    assert d.has_enumerate_support == t.has_enumerate_support
    if t.has_enumerate_support:
        for expand in (True, False):
            assert_close(d.enumerate_support(expand), t.enumerate_support(expand))
    ex, tex = d.expand((7,) + tuple(d.batch_shape)), t.expand((7,) + tuple(t.batch_shape))
    assert tuple(ex.batch_shape) == tuple(tex.batch_shape) and type(ex) is type(d)
    assert tuple(ex.sample().shape) == tuple(tex.sample().shape)
    tv = tex.sample()
    assert_close(ex.log_prob(deepbox.tensor(tv.numpy())), tex.log_prob(tv), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["StudentT", "Chi2", "Geometric_probs", "Binomial_probs", "Mixture",
                                  "Mixture_event"])
def test_sample_statistics(name):
    deepbox.manual_seed(1)
    d, _, _, _, _ = build(name, requires_grad=False)
    n = 100_000
    s = d.sample((n,)).numpy()
    mean, var = d.mean.numpy(), d.variance.numpy()
    # the sample mean within 5 standard errors; the sample variance within 10 % (StudentT's tails are heavy)
    np.testing.assert_array_less(np.abs(s.mean(0) - mean), 5 * np.sqrt(var / n) + 1e-12)
    np.testing.assert_allclose(s.var(0), var, rtol=0.1 if name != "StudentT" else 0.25)


def test_cauchy_sample_quantiles():
    deepbox.manual_seed(2)
    s = dd.Cauchy(deepbox.tensor(1.0), deepbox.tensor(2.0)).sample((100_000,)).numpy()
    # quartiles of Cauchy(1, 2) are 1 -+ 2; the median's standard error is ~ pi * 2 / (2 sqrt(n))
    np.testing.assert_allclose(np.quantile(s, [0.25, 0.5, 0.75]), [-1.0, 1.0, 3.0], atol=0.05)
    h = dd.HalfCauchy(deepbox.tensor(2.0)).sample((100_000,)).numpy()
    assert h.min() >= 0 and abs(np.median(h) - 2.0) < 0.05


def test_relaxed_samples_and_gradients():
    deepbox.manual_seed(3)
    logits = deepbox.tensor([0.3, -1.0, 2.0], dtype=deepbox.float64, requires_grad=True)
    x = dd.RelaxedOneHotCategorical(deepbox.tensor(0.5, dtype=deepbox.float64), logits=logits).rsample((4000,))
    assert_close(x.detach().sum(-1), np.ones(4000))
    assert float(x.detach().min()) > 0
    x[:, 0].sum().backward()  # raising a logit raises its component on average
    assert logits.grad[0].item() > 0 and logits.grad[1].item() < 0
    # at a low temperature the argmax of a relaxed sample is distributed as the categorical
    cold = dd.RelaxedOneHotCategorical(deepbox.tensor(0.05), logits=deepbox.tensor([0.3, -1.0, 2.0]))
    freq = np.bincount(cold.sample((20_000,)).numpy().argmax(-1), minlength=3) / 20_000
    np.testing.assert_allclose(freq, torch.softmax(torch.tensor([0.3, -1.0, 2.0]), 0).numpy(), atol=0.015)
    b = dd.RelaxedBernoulli(deepbox.tensor(0.05), probs=deepbox.tensor([0.2, 0.7]))
    s = b.sample((20_000,)).numpy()
    assert ((s > 0) & (s < 1)).all()
    np.testing.assert_allclose((s > 0.5).mean(0), [0.2, 0.7], atol=0.015)


def test_studentt_rsample_gradient_in_loc_and_scale():
    loc = deepbox.tensor([0.5], dtype=deepbox.float64, requires_grad=True)
    scale = deepbox.tensor([2.0], dtype=deepbox.float64, requires_grad=True)
    x = dd.StudentT(deepbox.tensor([4.0], dtype=deepbox.float64), loc, scale).rsample((100,))
    x.sum().backward()
    assert_close(loc.grad, np.array([100.0]))
    assert_close(scale.grad, ((x.detach() - 0.5) / 2.0).sum(0))


KL_PAIRS = ["Cauchy", "Geometric_probs", "Binomial_probs", "Chi2", "HalfCauchy"]  # HalfCauchy: the transformed rule


@pytest.mark.parametrize("name", KL_PAIRS)
def test_kl_divergence_against_torch(name):
    d1, t1, dp1, tp1, _ = build(name)
    d2, t2, dp2, tp2, _ = build(name)
    _compare_with_grads(dd.kl_divergence(d1, d2), td.kl_divergence(t1, t2), dp1 + dp2, tp1 + tp2, f"KL {name}")


def test_kl_binomial_needs_p_count_not_above_q():
    p = dd.Binomial(5, probs=deepbox.tensor([0.3, 0.4]))
    q = dd.Binomial(deepbox.tensor([5.0, 4.0]), probs=deepbox.tensor([0.5, 0.5]))
    tp = td.Binomial(5, probs=torch.tensor([0.3, 0.4]))
    tq = td.Binomial(torch.tensor([5.0, 4.0]), probs=torch.tensor([0.5, 0.5]))
    assert_close(dd.kl_divergence(p, q), td.kl_divergence(tp, tq))  # inf where p's count exceeds q's
    with pytest.raises(NotImplementedError):
        dd.kl_divergence(q, p)
    with pytest.raises(NotImplementedError):
        td.kl_divergence(tq, tp)


def test_argument_validation_errors_match_torch():
    cases = [
        lambda m, t: m.Cauchy(t([0.0]), t([-1.0])),
        lambda m, t: m.HalfCauchy(t([0.0])),
        lambda m, t: m.StudentT(t([-1.0])),
        lambda m, t: m.Chi2(t([-2.0])),
        lambda m, t: m.Geometric(probs=t([1.5])),
        lambda m, t: m.Geometric(probs=t([0.0])),
        lambda m, t: m.Geometric(),
        lambda m, t: m.Binomial(3, probs=t([0.5]), logits=t([0.0])),
        lambda m, t: m.Binomial(t([-1.0]), probs=t([0.5])),
        lambda m, t: m.Binomial(3, probs=t([0.5])).log_prob(t([4.0])),
        lambda m, t: m.Geometric(probs=t([0.5])).log_prob(t([1.5])),
        lambda m, t: m.HalfCauchy(t([1.0])).log_prob(t([-1.0])),
        lambda m, t: m.RelaxedBernoulli(t(0.5), probs=t([1.5])),
        lambda m, t: m.RelaxedOneHotCategorical(t(0.5)),
        lambda m, t: m.MixtureSameFamily(m.Normal(t([0.0]), t([1.0])), m.Normal(t([0.0]), t([1.0]))),
        lambda m, t: m.MixtureSameFamily(m.Categorical(probs=t([0.5, 0.5])), m.Normal(t([0.0] * 3), t([1.0] * 3))),
    ]
    for i, fn in enumerate(cases):
        for m, t in ((dd, lambda v: deepbox.tensor(v)), (td, lambda v: torch.tensor(v))):
            with pytest.raises(ValueError):
                fn(m, t)
                print(f"case {i} did not raise in {m.__name__}")


@pytest.mark.parametrize("p_name,q_name", [("Normal", "Gumbel"), ("Uniform", "Gumbel"), ("Exponential", "Gumbel"),
                                           ("Gamma", "Gumbel"), ("Gumbel", "Normal"), ("Gumbel", "Uniform"),
                                           ("Gumbel", "Gamma"), ("Gumbel", "Exponential"), ("Gumbel", "Beta"),
                                           ("Poisson", "Binomial")])
def test_kl_cross_pairs_against_torch(p_name, q_name):
    ctors = {
        "Normal": (lambda m, a, b: m.Normal(a, b), [U(-1, 1, 4), U(0.5, 2, 4)]),
        "Uniform": (lambda m, a, b: m.Uniform(a, a + b), [U(-1, 1, 4), U(0.5, 2, 4)]),
        "Exponential": (lambda m, r: m.Exponential(r), [U(0.5, 2, 4)]),
        "Gamma": (lambda m, a, b: m.Gamma(a, b), [U(0.5, 3, 4), U(0.5, 2, 4)]),
        "Beta": (lambda m, a, b: m.Beta(a, b), [U(0.5, 3, 4), U(0.5, 2, 4)]),
        "Gumbel": (lambda m, a, b: m.Gumbel(a, b), [U(-1, 1, 4), U(0.5, 2, 4)]),
        "Poisson": (lambda m, r: m.Poisson(r), [U(0.5, 4, 4)]),
        "Binomial": (lambda m, p: m.Binomial(6, probs=p), [U(0.2, 0.8, 4)]),
    }
    made = []
    for name in (p_name, q_name):
        ctor, params = ctors[name]
        dp = [deepbox.tensor(v, dtype=deepbox.float64, requires_grad=True) for v in params]
        tp = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in params]
        made.append((ctor(dd, *dp), ctor(td, *tp), dp, tp))
    (d1, t1, dp1, tp1), (d2, t2, dp2, tp2) = made
    t_kl = td.kl_divergence(t1, t2)
    if not t_kl.requires_grad:  # an infinite KL (disjoint supports)
        assert_close(dd.kl_divergence(d1, d2), t_kl.detach())
        return
    _compare_with_grads(dd.kl_divergence(d1, d2), t_kl, dp1 + dp2, tp1 + tp2, f"KL({p_name} || {q_name})")
