"""Counting distributions built on Bernoulli trials: Geometric and Binomial."""
from __future__ import annotations

import deepbox
import deepbox.nn.functional as F
from deepbox import backend
from deepbox.distributions import constraints
from deepbox.distributions.distribution import Distribution
from deepbox.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits
from deepbox.ops.special import lgamma
from deepbox.tensor import Size

__all__ = ["Binomial", "Geometric"]


def _softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), exact for every x (no threshold)."""
    return x.clamp(min=0) + (-x.abs()).exp().log1p()


class Geometric(Distribution):
    r"""The number of failures before the first success of Bernoulli(probs) trials:
    P(x = k) = (1 - p)^k p, for k = 0, 1, 2, ..."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

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
        if self._validate_args and probs is not None and not bool((self.probs > 0).all()):
            raise ValueError(f"Expected parameter probs ({type(self.probs).__name__} of shape "
                             f"{tuple(self.probs.shape)}) of distribution {self!r} to be positive "
                             f"(a geometric distribution needs a chance of success), but found invalid values:\n"
                             f"{self.probs}")

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return deepbox.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=Size()):
        """floor(log u / log(1 - p)) for u ~ Uniform(0, 1): the inverse of the cdf 1 - (1 - p)^(k+1)."""
        shape = tuple(self._extended_shape(sample_shape))
        with deepbox.no_grad():
            tiny = deepbox.finfo(self.probs.dtype).tiny
            u = deepbox.rand(*shape, dtype=self.probs.dtype).clamp(min=tiny)
            return (u.log() / (-self.probs).log1p()).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = deepbox.broadcast_tensors(value.to(self.probs.dtype), self.probs)
        # 0 * log(1 - 1) is 0 (a sure success has no failures before it), not nan
        probs = deepbox.where((probs == 1) & (value == 0), deepbox.zeros_like(probs), probs)
        return value * (-probs).log1p() + self.probs.log()

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / self.probs


class Binomial(Distribution):
    r"""The number of successes in ``total_count`` Bernoulli(probs) trials:

        P(x = k) = C(n, k) p^k (1 - p)^(n - k),

    written with the logits for accuracy: log P = k logits - n softplus(logits) + log C(n, k).
    """

    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.to(self.probs.dtype)
            shape = self.probs.shape
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.to(self.logits.dtype)
            shape = self.logits.shape
        super().__init__(shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        n = backend.xp.broadcast_to(self.total_count.detach().numpy().astype(backend.xp.int64), shape)
        p = backend.xp.broadcast_to(self.probs.detach().numpy(), shape)
        return deepbox.tensor(backend.rng(None).binomial(n, p), dtype=self.probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, k = self.total_count, value.to(self.logits.dtype)
        log_binom = lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)
        return k * self.logits - n * _softplus(self.logits) + log_binom

    def entropy(self):
        """-sum_k P(k) log P(k) over k = 0..n (n must be the same for every batch element)."""
        n = int(self.total_count.max().item())
        if not bool((self.total_count == n).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(log_prob.exp() * log_prob).sum(0)

    def enumerate_support(self, expand=True):
        n = int(self.total_count.max().item())
        if not bool((self.total_count == n).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `enumerate_support`.")
        values = deepbox.arange(1 + n, dtype=self.total_count.dtype).reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + tuple(self.batch_shape)) if expand else values

