"""Heavy-tailed distributions on the real line: Cauchy, HalfCauchy and Student's t."""
from __future__ import annotations

import math

import deepbox
from deepbox.distributions import constraints
from deepbox.distributions.distribution import Distribution, LocationScale
from deepbox.distributions.gamma import standard_gamma
from deepbox.distributions.transformed_distribution import _FoldedAtZero
from deepbox.distributions.utils import broadcast_all
from deepbox.ops.special import digamma, lgamma
from deepbox.tensor import Size

__all__ = ["Cauchy", "HalfCauchy", "StudentT"]


class Cauchy(LocationScale):
    """Density 1 / (pi scale (1 + z^2)), z = (x - loc) / scale. It has no mean and no variance (nan, inf);
    a reparameterised sample is loc + scale * tan(pi (u - 1/2)) for u ~ Uniform(0, 1)."""

    @property
    def mean(self):
        return deepbox.full_like(self.loc, math.nan)

    @property
    def variance(self):
        return deepbox.full_like(self.loc, math.inf)

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        u = deepbox.rand(*shape, dtype=self.loc.dtype)
        return self.loc + self.scale * deepbox.tan(math.pi * (u - 0.5))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - z.pow(2).log1p()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return deepbox.atan((value - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value):
        return self.loc + self.scale * deepbox.tan(math.pi * (value - 0.5))

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()


class HalfCauchy(_FoldedAtZero):
    """|X| with X ~ Cauchy(0, scale): density 2 / (pi scale (1 + (x / scale)^2)) on x >= 0."""

    def __init__(self, scale, validate_args=None):
        super().__init__(Cauchy(0, scale, validate_args=False), validate_args=validate_args)

    @property
    def mean(self):
        return deepbox.full_like(self.scale, math.inf)

    @property
    def variance(self):
        return deepbox.full_like(self.scale, math.inf)

    def __repr__(self):
        return f"HalfCauchy(scale: {self.scale})"


class StudentT(Distribution):
    r"""Student's t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``:

        p(x) = Gamma((df+1)/2) / (Gamma(df/2) sqrt(df pi) scale) * (1 + z^2 / df)^(-(df+1)/2),

    z = (x - loc) / scale. A reparameterised sample is loc + scale * X / sqrt(V / df) with
    X ~ N(0, 1) and V ~ Chi2(df) = 2 Gamma(df/2, 1) (its gradient in df from the gamma sampler's).
    """

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.shape, validate_args=validate_args)

    @property
    def mean(self):
        return deepbox.where(self.df > 1, self.loc, deepbox.full_like(self.loc, math.nan))

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        finite = self.scale.pow(2) * self.df / (self.df - 2)
        infinite_or_nan = deepbox.where(self.df > 1, deepbox.full_like(finite, math.inf),
                                        deepbox.full_like(finite, math.nan))
        return deepbox.where(self.df > 2, finite, infinite_or_nan)

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        x = deepbox.randn(*shape, dtype=self.df.dtype)
        chi2 = 2 * standard_gamma(0.5 * self.df.expand(shape))
        return self.loc + self.scale * x * (self.df / chi2).sqrt()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        log_norm = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi)
                    + lgamma(0.5 * self.df) - lgamma(0.5 * (self.df + 1)))
        return -0.5 * (self.df + 1) * (z.pow(2) / self.df).log1p() - log_norm

    def entropy(self):
        log_beta = lgamma(0.5 * self.df) + math.lgamma(0.5) - lgamma(0.5 * (self.df + 1))
        return (self.scale.log() + 0.5 * (self.df + 1) * (digamma(0.5 * (self.df + 1)) - digamma(0.5 * self.df))
                + 0.5 * self.df.log() + log_beta)
