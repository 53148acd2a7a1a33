"""The gamma, beta and Dirichlet distributions, and the reparameterised gamma sampler they share.

A gamma sample x ~ Gamma(alpha, 1) is not a smooth function of alpha and parameter-free noise,
so its gradient comes from *implicit* reparameterisation (Figurnov et al., 2018): x is the
alpha-dependent quantile F^-1(u; alpha) of a fixed uniform u, and differentiating
F(x(alpha); alpha) = u gives

    dx/dalpha = -(dF/dalpha)(x; alpha) / p(x; alpha),

with F the regularised incomplete gamma function P(alpha, x) and p the density. dF/dalpha is
taken here by a central difference of P in alpha (P is accurate to ~1e-15, so the derivative
to ~1e-9). Beta and Dirichlet samples are normalised gamma samples, so their gradients follow.
"""
from __future__ import annotations

import deepbox
from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.distributions import constraints
from deepbox.distributions.distribution import Distribution
from deepbox.distributions.utils import broadcast_all
from deepbox.ops.special import digamma, gammainc, gammainc_array, lgamma, lgamma_array, xlogy
from deepbox.tensor import Size

__all__ = ["Beta", "Dirichlet", "Gamma", "standard_gamma", "standard_gamma_grad"]

xp = backend.xp


def standard_gamma_grad(alpha, x):
    """dx/dalpha of a Gamma(alpha, 1) sample x, by implicit differentiation (float64 arrays)."""
    alpha = xp.asarray(alpha, dtype=xp.float64)
    x = xp.asarray(x, dtype=xp.float64)
    h = 1e-5 * xp.maximum(alpha, 1.0)
    h = xp.minimum(h, 0.5 * alpha)  # stay inside alpha > 0
    dP = (gammainc_array(alpha + h, x) - gammainc_array(alpha - h, x)) / (2 * h)
    with xp.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        log_pdf = (alpha - 1) * xp.log(x) - x - lgamma_array(alpha)
        out = -dP / xp.exp(log_pdf)
    return xp.where(xp.isfinite(out), out, 0.0)


class StandardGammaFn(Function):
    """Draw x ~ Gamma(alpha, 1) elementwise; backward by implicit reparameterisation."""

    @staticmethod
    def forward(ctx, alpha):
        x = backend.rng(None).standard_gamma(alpha.astype(xp.float64))
        x = xp.maximum(x, xp.finfo(alpha.dtype).tiny).astype(alpha.dtype)  # never exactly 0 (log_prob stays finite)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, grad):
        alpha, x = ctx.saved_tensors
        return grad * standard_gamma_grad(alpha, x).astype(grad.dtype)


def standard_gamma(alpha):
    """Gamma(alpha, 1) samples of ``alpha``'s shape, differentiable in ``alpha``."""
    return StandardGammaFn.apply(alpha)


class Gamma(Distribution):
    r"""Density rate^a x^(a-1) exp(-rate x) / Gamma(a), a = ``concentration``."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        return standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.to(self.rate.dtype)
        return (xlogy(self.concentration, self.rate) + xlogy(self.concentration - 1, value)
                - self.rate * value - lgamma(self.concentration))

    def entropy(self):
        return (self.concentration - deepbox.log(self.rate) + lgamma(self.concentration)
                + (1.0 - self.concentration) * digamma(self.concentration))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return gammainc(self.concentration, self.rate * value)


class Dirichlet(Distribution):
    r"""Density Gamma(sum a) / prod Gamma(a_i) * prod x_i^(a_i - 1) on the simplex; a = ``concentration``."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True
    _param_event_dims = {"concentration": 1}

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        g = standard_gamma(self.concentration.expand(shape))
        x = g / g.sum(-1, keepdim=True)
        tiny = deepbox.finfo(x.dtype).tiny
        return x.clamp(min=tiny, max=1 - tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a = self.concentration
        return xlogy(a - 1.0, value).sum(-1) + lgamma(a.sum(-1)) - lgamma(a).sum(-1)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        a = (self.concentration - 1).clamp(min=0.0)
        mode = a / a.sum(-1, keepdim=True)
        mask = (self.concentration < 1).all(dim=-1)
        onehot = deepbox.nn.functional.one_hot(self.concentration.argmax(-1), self.concentration.shape[-1])
        return deepbox.where(mask.unsqueeze(-1), onehot.to(mode.dtype), mode)

    @property
    def variance(self):
        con0 = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (con0 - self.concentration) / (con0.pow(2) * (con0 + 1))

    def entropy(self):
        k = self.concentration.shape[-1]
        a0 = self.concentration.sum(-1)
        return (lgamma(self.concentration).sum(-1) - lgamma(a0) - (k - a0) * digamma(a0)
                - ((self.concentration - 1.0) * digamma(self.concentration)).sum(-1))


class Beta(Distribution):
    r"""Density x^(a-1) (1-x)^(b-1) / B(a, b) on [0, 1]; a = ``concentration1``, b = ``concentration0``.

    A two-category Dirichlet: sample and densities go through ``Dirichlet([a, b])``.
    """

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        self._dirichlet = Dirichlet(deepbox.stack([self.concentration1, self.concentration0], -1),
                                    validate_args=validate_args)
        super().__init__(self._dirichlet._batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._dirichlet = self._dirichlet.expand(batch_shape)
        return new

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()):
        return self._dirichlet.rsample(sample_shape).select(-1, 0)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        heads_tails = deepbox.stack([value, 1.0 - value], -1)
        return self._dirichlet.log_prob(heads_tails)

    def entropy(self):
        return self._dirichlet.entropy()
