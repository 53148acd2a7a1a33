"""The normal (Gaussian) distribution N(loc, scale^2)."""
from __future__ import annotations

import math

import deepbox
from deepbox.distributions.distribution import LocationScale
from deepbox.ops.special import erfinv
from deepbox.tensor import Size, Tensor

__all__ = ["Normal"]


class Normal(LocationScale):
    r"""The normal distribution with mean ``loc`` and standard deviation ``scale``.

    log p(x) = -(x - loc)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi)); reparameterised
    samples are ``loc + scale * eps`` with eps ~ N(0, 1).

    Example::

        >>> import deepbox as torch
        >>> m = torch.distributions.Normal(torch.tensor([0.0]), torch.tensor([1.0]))
        >>> m.log_prob(torch.tensor([0.0]))
        tensor([-0.9189])
    """

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale.pow(2)

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = deepbox.randn(*shape, dtype=self.loc.dtype)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        var = self.scale ** 2
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - math.log(math.sqrt(2 * math.pi))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + deepbox.erf((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)))

    def icdf(self, value):
        return self.loc + self.scale * erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + deepbox.log(self.scale)
