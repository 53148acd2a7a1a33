"""``MixtureSameFamily``: a mixture whose K components are one batched distribution (a Gaussian mixture, say).

The component distribution's rightmost batch dimension indexes the K components; the
``Categorical`` mixture distribution gives their weights. The density is

    p(x) = sum_k w_k p_k(x),  computed as logsumexp_k(log w_k + log p_k(x)).
"""
from __future__ import annotations

import deepbox
from deepbox.distributions import constraints
from deepbox.distributions.categorical import Categorical
from deepbox.distributions.distribution import Distribution
from deepbox.tensor import Size

__all__ = ["MixtureSameFamily"]


class MixtureSameFamily(Distribution):
    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError("The Mixture distribution needs to be an instance of deepbox.distributions.Categorical, "
                             f"got {type(mixture_distribution).__name__}")
        if not isinstance(component_distribution, Distribution):
            raise ValueError("The Component distribution needs to be an instance of deepbox.distributions."
                             f"Distribution, got {type(component_distribution).__name__}")
        mix_batch = tuple(mixture_distribution.batch_shape)
        comp_batch = tuple(component_distribution.batch_shape)[:-1]
        for size1, size2 in zip(reversed(mix_batch), reversed(comp_batch)):
            if size1 != 1 and size2 != 1 and size1 != size2:
                raise ValueError(f"`mixture_distribution.batch_shape` ({mix_batch}) is not compatible with "
                                 f"`component_distribution.batch_shape` ({comp_batch})")
        km = mixture_distribution.logits.shape[-1]
        kc = component_distribution.batch_shape[-1] if len(component_distribution.batch_shape) else None
        if km != kc:
            raise ValueError(f"`mixture_distribution` component ({km}) does not equal "
                             f"`component_distribution.batch_shape[-1]` ({kc})")
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._num_component = km
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(comp_batch, component_distribution.event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = _instance if _instance is not None else object.__new__(type(self))
        batch_shape = tuple(batch_shape)
        new._component_distribution = self._component_distribution.expand(batch_shape + (self._num_component,))
        new._mixture_distribution = self._mixture_distribution.expand(batch_shape)
        new._num_component = self._num_component
        new._event_ndims = self._event_ndims
        Distribution.__init__(new, Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property
    def support(self):
        return self._component_distribution.support

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    def _pad_mixture(self, probs):
        """Mixture weights of shape [..., K] -> [..., K, 1, ..., 1] (one 1 per event dimension)."""
        return probs.reshape(tuple(probs.shape) + (1,) * self._event_ndims)

    @property
    def mean(self):
        probs = self._pad_mixture(self._mixture_distribution.probs)
        return (probs * self._component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self):
        """The law of total variance: E[Var(x | k)] + Var(E[x | k])."""
        probs = self._pad_mixture(self._mixture_distribution.probs)
        dim = -1 - self._event_ndims
        mean_cond_var = (probs * self._component_distribution.variance).sum(dim)
        var_cond_mean = (probs * (self._component_distribution.mean - self.mean.unsqueeze(dim)).pow(2)).sum(dim)
        return mean_cond_var + var_cond_mean

    def _pad(self, x):
        return x.unsqueeze(-1 - self._event_ndims)

    def cdf(self, x):
        cdf_x = self._component_distribution.cdf(self._pad(x))
        return (cdf_x * self._mixture_distribution.probs).sum(-1)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        log_prob_x = self._component_distribution.log_prob(self._pad(x))  # [S, B, K]
        log_mix_prob = self._mixture_distribution.logits.log_softmax(dim=-1)  # [B, K]
        return (log_prob_x + log_mix_prob).logsumexp(dim=-1)

    def sample(self, sample_shape=Size()):
        """Draw a component index k from the mixture, then x from component k."""
        with deepbox.no_grad():
            sample_shape = tuple(sample_shape)
            mix_sample = self._mixture_distribution.sample(sample_shape)  # [S, B]
            comp_samples = self._component_distribution.sample(sample_shape)  # [S, B, K, E]
            batch_shape, event_shape = tuple(self.batch_shape), tuple(self.event_shape)
            mix_batch = tuple(self._mixture_distribution.batch_shape)  # may broadcast against batch_shape
            index = mix_sample.reshape(sample_shape + (1,) * (len(batch_shape) - len(mix_batch)) + mix_batch
                                       + (1,) * (1 + self._event_ndims))
            index = index.expand(sample_shape + batch_shape + (1,) + event_shape)
            return comp_samples.gather(-1 - self._event_ndims, index).squeeze(-1 - self._event_ndims)

    def __repr__(self):
        return (f"MixtureSameFamily(\n  {self._mixture_distribution!r},\n  {self._component_distribution!r})")
