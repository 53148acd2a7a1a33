"""deepbox.distributions against torch.distributions: densities, entropies, moments, KL and their gradients;
sample shapes and statistics; reparameterised gradients; argument validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributions as td

import deepbox
import deepbox.distributions as dd
from tests.helpers import assert_close

rng = np.random.default_rng(0)


def U(lo, hi, *shape):
    return rng.uniform(lo, hi, shape)


def simplex(*shape):
    p = rng.uniform(0.1, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def spd(batch, n):
    a = rng.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def lower_chol(batch, n):
    return np.linalg.cholesky(spd(batch, n))


# name: (constructor of (module, *params), parameter arrays, a value array inside the support or None)
SPECS = {
    "Normal": (lambda m, a, b: m.Normal(a, b), [U(-2, 2, 3, 4), U(0.5, 2, 4)], U(-3, 3, 2, 3, 4)),
    "Bernoulli_probs": (lambda m, p: m.Bernoulli(probs=p), [U(0.05, 0.95, 3, 4)], rng.integers(0, 2, (3, 4)) * 1.0),
    "Bernoulli_logits": (lambda m, lg: m.Bernoulli(logits=lg), [U(-4, 4, 5)], rng.integers(0, 2, (2, 5)) * 1.0),
    "Categorical_probs": (lambda m, p: m.Categorical(probs=p), [simplex(3, 5)], rng.integers(0, 5, (2, 3))),
    "Categorical_logits": (lambda m, lg: m.Categorical(logits=lg), [U(-3, 3, 4, 6)], rng.integers(0, 6, (4,))),
    "OneHotCategorical": (lambda m, p: m.OneHotCategorical(probs=p), [simplex(3, 4)],
                          np.eye(4)[rng.integers(0, 4, (3,))]),
    "Uniform": (lambda m, a, b: m.Uniform(a, a + b), [U(-2, -1, 4), U(2.5, 3, 4)], U(-0.9, 0.4, 3, 4)),
    "Exponential": (lambda m, r: m.Exponential(r), [U(0.5, 3, 4)], U(0.1, 4, 3, 4)),
    "Laplace": (lambda m, a, b: m.Laplace(a, b), [U(-2, 2, 4), U(0.5, 2, 4)], U(-3, 3, 2, 4)),
    "Poisson": (lambda m, r: m.Poisson(r), [U(0.5, 6, 4)], rng.integers(0, 9, (3, 4)) * 1.0),
    "Gamma": (lambda m, a, b: m.Gamma(a, b), [U(0.5, 4, 4), U(0.5, 3, 4)], U(0.1, 5, 3, 4)),
    "Beta": (lambda m, a, b: m.Beta(a, b), [U(0.5, 4, 4), U(0.5, 4, 4)], U(0.05, 0.95, 3, 4)),
    "Dirichlet": (lambda m, a: m.Dirichlet(a), [U(0.5, 4, 3, 5)], simplex(2, 3, 5)),
    "MVN_cov": (lambda m, mu, c: m.MultivariateNormal(mu, covariance_matrix=c), [U(-1, 1, 2, 3), spd((2,), 3)],
                U(-2, 2, 4, 2, 3)),
    "MVN_tril": (lambda m, mu, L: m.MultivariateNormal(mu, scale_tril=L), [U(-1, 1, 3), lower_chol((), 3)],
                 U(-2, 2, 5, 3)),
    "MVN_prec": (lambda m, mu, P: m.MultivariateNormal(mu, precision_matrix=P), [U(-1, 1, 3), spd((), 3)],
                 U(-2, 2, 2, 3)),
    "Independent": (lambda m, a, b: m.Independent(m.Normal(a, b), 1), [U(-2, 2, 3, 4), U(0.5, 2, 3, 4)],
                    U(-2, 2, 3, 4)),
}
DISCRETE_VALUES = {"Bernoulli_probs", "Bernoulli_logits", "Categorical_probs", "Categorical_logits",
                   "OneHotCategorical", "Poisson"}


def build(name, requires_grad=True):
    ctor, params, value = SPECS[name]
    d_params = [deepbox.tensor(p, dtype=deepbox.float64, requires_grad=requires_grad) for p in params]
    t_params = [torch.tensor(p, dtype=torch.float64, requires_grad=requires_grad) for p in params]
    return ctor(dd, *d_params), ctor(td, *t_params), d_params, t_params, value


def _value_pair(name, value):
    if name.startswith("Categorical"):
        return deepbox.tensor(value), torch.tensor(value)
    return deepbox.tensor(value, dtype=deepbox.float64), torch.tensor(value, dtype=torch.float64)


def _compare_with_grads(d_out, t_out, d_params, t_params, what):
    assert_close(d_out, t_out, rtol=1e-8, atol=1e-10, what=what)
    cot = rng.normal(size=tuple(t_out.shape))
    (d_out * deepbox.tensor(cot)).sum().backward()
    (t_out * torch.tensor(cot)).sum().backward()
    for i, (dp, tp) in enumerate(zip(d_params, t_params)):
        if tp.grad is None:
            assert dp.grad is None or np.allclose(dp.grad.numpy(), 0), f"{what}: grad of param {i}"
            continue
        assert_close(dp.grad, tp.grad, rtol=1e-7, atol=1e-9, what=f"{what}: grad of param {i}")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_log_prob_value_and_gradients(name):
    d, t, dp, tp, value = build(name)
    dv, tv = _value_pair(name, value)
    _compare_with_grads(d.log_prob(dv), t.log_prob(tv), dp, tp, f"{name}.log_prob")


@pytest.mark.parametrize("name", sorted(set(SPECS) - {"Poisson"}))
def test_entropy_value_and_gradients(name):
    d, t, dp, tp, _ = build(name)
    _compare_with_grads(d.entropy(), t.entropy(), dp, tp, f"{name}.entropy")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shapes_and_moments(name):
    d, t, _, _, _ = build(name, requires_grad=False)
    assert tuple(d.batch_shape) == tuple(t.batch_shape) and tuple(d.event_shape) == tuple(t.event_shape)
    for sample_shape in ((), (2,), (2, 3)):
        assert tuple(d.sample(sample_shape).shape) == tuple(t.sample(sample_shape).shape)
    for attr in ("mean", "variance", "stddev", "mode"):
        assert_close(getattr(d, attr), getattr(t, attr), rtol=1e-8, atol=1e-10, what=f"{name}.{attr}")
    assert d.has_rsample == t.has_rsample
    assert d.has_enumerate_support == t.has_enumerate_support
    if t.has_enumerate_support:
        for expand in (True, False):
            assert_close(d.enumerate_support(expand), t.enumerate_support(expand).to(
                torch.float64 if d.enumerate_support(expand).dtype == deepbox.float64 else torch.int64))
    ex = d.expand((7,) + tuple(d.batch_shape))
    assert tuple(ex.batch_shape) == (7,) + tuple(d.batch_shape)
    assert tuple(ex.sample().shape) == tuple(t.expand((7,) + tuple(t.batch_shape)).sample().shape)


@pytest.mark.parametrize("name", ["Normal", "Uniform", "Exponential", "Laplace"])
def test_cdf_and_icdf(name):
    d, t, dp, tp, value = build(name)
    dv, tv = _value_pair(name, value)
    _compare_with_grads(d.cdf(dv), t.cdf(tv), dp, tp, f"{name}.cdf")
    q = U(0.05, 0.95, *value.shape)
    d, t, dp, tp, _ = build(name)
    _compare_with_grads(d.icdf(deepbox.tensor(q)), t.icdf(torch.tensor(q)), dp, tp, f"{name}.icdf")


def test_gamma_cdf():
    d, t, dp, tp, value = build("Gamma")
    assert_close(d.cdf(deepbox.tensor(value)), t.cdf(torch.tensor(value)), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["Normal", "Bernoulli_probs", "Categorical_probs", "Uniform", "Exponential",
                                  "Laplace", "Poisson", "Gamma", "Beta", "Dirichlet", "MVN_cov", "OneHotCategorical"])
def test_sample_statistics(name):
    deepbox.manual_seed(1)
    d, _, _, _, _ = build(name, requires_grad=False)
    n = 100_000
    s = d.sample((n,)).to(deepbox.float64).numpy()
    mean, var = d.mean.numpy(), d.variance.numpy()
    if name.startswith("Categorical"):
        k = np.arange(d.probs.shape[-1])
        mean = (d.probs.numpy() * k).sum(-1)
        var = (d.probs.numpy() * k ** 2).sum(-1) - mean ** 2
    # the sample mean is within 5 standard errors of the mean, the sample variance within 5 %
    np.testing.assert_array_less(np.abs(s.mean(0) - mean), 5 * np.sqrt(var / n) + 1e-12)
    np.testing.assert_allclose(s.var(0), var, rtol=0.05)


def test_rsample_gradients_are_reparameterised():
    # d/dloc of loc + scale * eps is 1 and d/dscale is eps
    loc = deepbox.tensor([0.5, -1.0], dtype=deepbox.float64, requires_grad=True)
    scale = deepbox.tensor([2.0, 0.5], dtype=deepbox.float64, requires_grad=True)
    x = dd.Normal(loc, scale).rsample((50,))
    x.sum().backward()
    assert_close(loc.grad, np.array([50.0, 50.0]))
    eps = (x.detach() - loc.detach()) / scale.detach()
    assert_close(scale.grad, eps.sum(0))
    assert not dd.Normal(loc, scale).sample().requires_grad


def test_standard_gamma_gradient_against_mpmath_and_torch():
    """dx/dalpha of a Gamma(alpha, 1) sample, against -dP/dalpha / p computed in 40-digit arithmetic; torch's
    own approximation (_standard_gamma_grad) is good to about 5e-4, and agrees at that tolerance."""
    import mpmath as mp

    mp.mp.dps = 30
    alpha = np.array([0.05, 0.3, 1.0, 2.5, 10.0, 100.0])[:, None] * np.ones((1, 3))
    x = np.stack([np.quantile(rng.gamma(a, size=20_000), [0.05, 0.5, 0.95]) for a in alpha[:, 0]])
    ours = dd.gamma.standard_gamma_grad(alpha, x)
    exact = np.array([[float(-mp.diff(lambda aa, xx=xx: mp.gammainc(aa, 0, xx, regularized=True), a)
                             / (mp.mpf(xx) ** (a - 1) * mp.e ** (-xx) / mp.gamma(a)))
                       for a, xx in zip(ra, rx)] for ra, rx in zip(alpha, x)])
    np.testing.assert_allclose(ours, exact, rtol=1e-7)
    ref = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-3)


@pytest.mark.parametrize("name", ["Gamma", "Beta", "Dirichlet"])
def test_pathwise_gradient_of_the_mean(name):
    """E[x] by Monte Carlo over rsample: its gradient matches the gradient of the closed-form mean."""
    deepbox.manual_seed(3)
    d, _, dp, _, _ = build(name)
    n = 40_000
    d.rsample((n,)).mean(0).sum().backward()
    mc = [p.grad.numpy().copy() for p in dp]
    d2, _, dp2, _, _ = build(name)
    for p, v in zip(dp2, SPECS[name][1]):
        p._data[...] = v
    d2 = SPECS[name][0](dd, *dp2)
    d2.mean.sum().backward()
    for g_mc, p in zip(mc, dp2):
        np.testing.assert_allclose(g_mc, p.grad.numpy(), rtol=0.08, atol=0.02)


KL_PAIRS = ["Normal", "Bernoulli_probs", "Categorical_logits", "OneHotCategorical", "Exponential", "Laplace",
            "Poisson", "Gamma", "Beta", "Dirichlet", "MVN_cov", "MVN_tril", "Independent"]


@pytest.mark.parametrize("name", KL_PAIRS)
def test_kl_divergence_against_torch(name):
    d1, t1, dp1, tp1, _ = build(name)
    d2, t2, dp2, tp2, _ = build(name)  # new random parameters
    _compare_with_grads(dd.kl_divergence(d1, d2), td.kl_divergence(t1, t2), dp1 + dp2, tp1 + tp2, f"KL {name}")


def test_kl_uniform_and_infinities():
    p, q = dd.Uniform(deepbox.tensor([0.0, 0.0]), deepbox.tensor([1.0, 2.0])), \
        dd.Uniform(deepbox.tensor([-1.0, 0.5]), deepbox.tensor([2.0, 3.0]))
    tp, tq = td.Uniform(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0])), \
        td.Uniform(torch.tensor([-1.0, 0.5]), torch.tensor([2.0, 3.0]))
    assert_close(dd.kl_divergence(p, q), td.kl_divergence(tp, tq))
    pb, qb = dd.Bernoulli(probs=deepbox.tensor([0.0, 1.0, 0.3])), dd.Bernoulli(probs=deepbox.tensor([0.0, 0.5, 1.0]))
    tpb, tqb = td.Bernoulli(probs=torch.tensor([0.0, 1.0, 0.3])), td.Bernoulli(probs=torch.tensor([0.0, 0.5, 1.0]))
    assert_close(dd.kl_divergence(pb, qb), td.kl_divergence(tpb, tqb))


def test_kl_registry_dispatch_and_missing_pair():
    with pytest.raises(NotImplementedError, match="Normal.*Gamma"):
        dd.kl_divergence(dd.Normal(0.0, 1.0), dd.Gamma(1.0, 1.0))

    class MyNormal(dd.Normal):
        pass

    # a subclass uses its parent's closed form until it registers its own
    assert_close(dd.kl_divergence(MyNormal(0.0, 1.0), dd.Normal(1.0, 1.0)), np.array(0.5, dtype=np.float32))

    @dd.register_kl(MyNormal, dd.Normal)
    def _kl(p, q):
        return deepbox.tensor(42.0)

    assert dd.kl_divergence(MyNormal(0.0, 1.0), dd.Normal(1.0, 1.0)).item() == 42.0


def test_argument_validation_errors_match_torch():
    cases = [
        (lambda m, t: m.Normal(t([0.0]), t([-1.0])), ValueError),
        (lambda m, t: m.Bernoulli(probs=t([1.5])), ValueError),
        (lambda m, t: m.Bernoulli(probs=t([0.5]), logits=t([0.0])), ValueError),
        (lambda m, t: m.Categorical(), ValueError),
        (lambda m, t: m.Uniform(t([1.0]), t([0.0])), ValueError),
        (lambda m, t: m.Gamma(t([0.0]), t([1.0])), ValueError),
        (lambda m, t: m.Dirichlet(t([1.0, -1.0])), ValueError),
        (lambda m, t: m.MultivariateNormal(t([0.0, 0.0])), ValueError),
        (lambda m, t: m.Normal(t([0.0]), t([1.0])).log_prob(t([[1.0, 2.0]])), None),  # broadcasts
        (lambda m, t: m.Normal(t([0.0, 0.0]), t([1.0, 1.0])).log_prob(t([1.0, 2.0, 3.0])), ValueError),
        (lambda m, t: m.Bernoulli(probs=t([0.5])).log_prob(t([0.5])), ValueError),
        (lambda m, t: m.Exponential(t([1.0])).log_prob(t([-1.0])), ValueError),
        (lambda m, t: m.Independent(m.Normal(t([0.0]), t([1.0])), 2), ValueError),
    ]
    for i, (fn, exc) in enumerate(cases):
        for m, t in ((dd, lambda v: deepbox.tensor(v)), (td, lambda v: torch.tensor(v))):
            if exc is None:
                fn(m, t)
            else:
                with pytest.raises(exc):
                    fn(m, t)
                    print(f"case {i} did not raise in {m.__name__}")
    # validate_args=False skips the checks, as in PyTorch
    dd.Normal(deepbox.tensor([0.0]), deepbox.tensor([-1.0]), validate_args=False)
    dd.Exponential(deepbox.tensor([1.0]), validate_args=False).log_prob(deepbox.tensor([-1.0]))


def test_vae_style_reparameterised_loss_trains():
    """An encoder's mean and log-variance, a reparameterised sample and the KL to N(0, 1), trained by Adam.

    The expected loss E[(z - t)^2] + KL(N(mu, s^2) || N(0, 1)) is smallest at mu = 2t/3 and s^2 = 1/3;
    the trained parameters land there (without the KL term mu would go to t, without the
    reparameterisation it would not move). The target comes from the test's own random stream, so the
    test does not depend on which tests ran before it.
    """
    deepbox.manual_seed(0)
    t = np.random.default_rng(11).normal(size=(8, 2)) + 2.0
    mu = deepbox.zeros(8, 2, requires_grad=True)
    log_var = deepbox.zeros(8, 2, requires_grad=True)
    target = deepbox.tensor(t, dtype=deepbox.float32)
    opt = deepbox.optim.Adam([mu, log_var], lr=0.05)
    prior = dd.Normal(deepbox.zeros(2), deepbox.ones(2))
    for step in range(300):
        if step == 200:
            opt.param_groups[0]["lr"] = 0.01
        q = dd.Normal(mu, (0.5 * log_var).exp())
        z = q.rsample()
        loss = ((z - target) ** 2).sum() + dd.kl_divergence(q, prior.expand((8, 2))).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.abs(mu.detach().numpy() - 2 * t / 3).mean() < 0.1
    assert np.abs(np.exp(log_var.detach().numpy()) - 1 / 3).mean() < 0.08


def test_reinforce_with_categorical_prefers_the_rewarded_action():
    deepbox.manual_seed(0)
    logits = deepbox.zeros(4, requires_grad=True)
    opt = deepbox.optim.SGD([logits], lr=0.5)
    reward = deepbox.tensor([0.0, 0.0, 1.0, 0.0])
    for _ in range(60):
        dist = dd.Categorical(logits=logits)
        a = dist.sample((16,))
        loss = -(dist.log_prob(a) * reward[a]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert int(logits.argmax()) == 2 and dd.Categorical(logits=logits).probs[2].item() > 0.8
