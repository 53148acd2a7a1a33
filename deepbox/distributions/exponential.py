"""The exponential, Laplace and Poisson distributions."""
from __future__ import annotations

import math

import deepbox
from deepbox import backend
from deepbox.distributions import constraints
from deepbox.distributions.distribution import Distribution, LocationScale
from deepbox.distributions.utils import broadcast_all
from deepbox.ops.special import lgamma, xlogy
from deepbox.tensor import Size

__all__ = ["Exponential", "Laplace", "Poisson"]


class Exponential(Distribution):
    """Density rate * exp(-rate x) on x >= 0; reparameterised samples are -log(1 - u) / rate."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.rate.reciprocal()

    @property
    def mode(self):
        return deepbox.zeros_like(self.rate)

    @property
    def stddev(self):
        return self.rate.reciprocal()

    @property
    def variance(self):
        return self.rate.pow(-2)

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        e = backend.rng(None).standard_exponential(shape)
        return deepbox.tensor(e, dtype=self.rate.dtype) / self.rate

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self.rate.log() - self.rate * value

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 1 - deepbox.exp(-self.rate * value)

    def icdf(self, value):
        return -deepbox.log1p(-value) / self.rate

    def entropy(self):
        return 1.0 - deepbox.log(self.rate)


class Laplace(LocationScale):
    """Density exp(-|x - loc| / scale) / (2 scale)."""

    @property
    def variance(self):
        return 2 * self.scale.pow(2)

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        eps = deepbox.finfo(self.loc.dtype).eps
        u = deepbox.rand(*shape, dtype=self.loc.dtype) * (2 - eps) - (1 - eps)  # in (-1, 1)
        return self.loc - self.scale * u.sign() * deepbox.log1p(-u.abs())

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -deepbox.log(2 * self.scale) - (value - self.loc).abs() / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 - 0.5 * (value - self.loc).sign() * deepbox.expm1(-(value - self.loc).abs() / self.scale)

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * term.sign() * deepbox.log1p(-2 * term.abs())

    def entropy(self):
        return 1 + deepbox.log(2 * self.scale)


class Poisson(Distribution):
    """P(x = k) = rate^k exp(-rate) / k!, for k = 0, 1, 2, ..."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        rate = self.rate.detach().numpy()
        counts = backend.rng(None).poisson(backend.xp.broadcast_to(rate, shape))
        return deepbox.tensor(counts, dtype=self.rate.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = deepbox.broadcast_tensors(self.rate, value.to(self.rate.dtype))
        return xlogy(value, rate) - rate - lgamma(value + 1)
