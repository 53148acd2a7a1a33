"""The chi-squared distribution: a Gamma(df / 2, rate 1/2)."""
from __future__ import annotations

from deepbox.distributions import constraints
from deepbox.distributions.distribution import Distribution
from deepbox.distributions.gamma import Gamma
from deepbox.tensor import Size

__all__ = ["Chi2"]


class Chi2(Gamma):
    """The sum of ``df`` squared standard normals: Gamma(concentration = df / 2, rate = 1 / 2)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = _instance if _instance is not None else object.__new__(type(self))
        new.concentration = self.concentration.expand(tuple(batch_shape))
        new.rate = self.rate.expand(tuple(batch_shape))
        Distribution.__init__(new, Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def df(self):
        return self.concentration * 2
