"""The Bernoulli distribution over {0, 1}, given by ``probs`` or ``logits``."""
from __future__ import annotations

import deepbox
import deepbox.nn.functional as F
from deepbox.distributions import constraints
from deepbox.distributions.distribution import Distribution
from deepbox.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits
from deepbox.tensor import Size

__all__ = ["Bernoulli"]


class Bernoulli(Distribution):
    r"""P(x = 1) = probs = sigmoid(logits); exactly one of ``probs`` and ``logits`` is given.

    log p(x) = x log p + (1 - x) log(1 - p), computed from the logits as minus the binary
    cross-entropy, so that it is exact for large |logits| (the REINFORCE estimator uses it).
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            shape = self.probs.shape
        else:
            (self.logits,) = broadcast_all(logits)
            shape = self.logits.shape
        super().__init__(shape, validate_args=validate_args)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self):
        return self.__dict__.get("probs", self.__dict__.get("logits")).shape

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        mode = (self.probs >= 0.5).to(self.probs.dtype)
        return deepbox.where(self.probs == 0.5, deepbox.full_like(mode, float("nan")), mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        with deepbox.no_grad():
            return deepbox.bernoulli(self.probs.expand(tuple(shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = deepbox.broadcast_tensors(self.logits, value.to(self.logits.dtype))
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand=True):
        values = deepbox.arange(2, dtype=self.probs.dtype).reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values
