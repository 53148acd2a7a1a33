"""``deepbox.distributions``: probability distributions with PyTorch's API.

What VAEs, policy gradients and Bayesian examples use: ``sample``/``rsample`` (reparameterised,
so gradients flow through a sample), ``log_prob``, ``entropy``, moments, ``cdf``/``icdf``, and
``kl_divergence`` with a registry of closed forms. Every density is written with deepbox's
differentiable ops, so gradients with respect to parameters come from autograd.

    >>> import deepbox as torch
    >>> from deepbox.distributions import Normal, kl_divergence
    >>> kl_divergence(Normal(0.0, 1.0), Normal(1.0, 1.0))
    tensor(0.5000)
"""
from deepbox.distributions import constraints, transforms
from deepbox.distributions.bernoulli import Bernoulli
from deepbox.distributions.binomial import Binomial, Geometric
from deepbox.distributions.categorical import Categorical, OneHotCategorical
from deepbox.distributions.cauchy import Cauchy, HalfCauchy, StudentT
from deepbox.distributions.chi2 import Chi2
from deepbox.distributions.distribution import Distribution
from deepbox.distributions.exponential import Exponential, Laplace, Poisson
from deepbox.distributions.gamma import Beta, Dirichlet, Gamma
from deepbox.distributions.independent import Independent
from deepbox.distributions.kl import kl_divergence, register_kl
from deepbox.distributions.mixture_same_family import MixtureSameFamily
from deepbox.distributions.multivariate_normal import MultivariateNormal
from deepbox.distributions.normal import Normal
from deepbox.distributions.relaxed import (
    ExpRelaxedCategorical,
    LogitRelaxedBernoulli,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from deepbox.distributions.transformed_distribution import Gumbel, HalfNormal, LogNormal, TransformedDistribution
from deepbox.distributions.transforms import (
    AbsTransform,
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    PowerTransform,
    SigmoidTransform,
    SoftplusTransform,
    TanhTransform,
    Transform,
)
from deepbox.distributions.uniform import Uniform

__all__ = ["AbsTransform", "AffineTransform", "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2",
           "ComposeTransform", "Dirichlet", "Distribution", "ExpRelaxedCategorical", "ExpTransform", "Exponential",
           "Gamma", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "Laplace", "LogNormal",
           "LogitRelaxedBernoulli", "MixtureSameFamily", "MultivariateNormal", "Normal", "OneHotCategorical",
           "Poisson", "PowerTransform", "RelaxedBernoulli", "RelaxedOneHotCategorical", "SigmoidTransform",
           "SoftplusTransform", "StudentT", "TanhTransform", "Transform", "TransformedDistribution", "Uniform",
           "constraints", "kl_divergence", "register_kl", "transforms"]
