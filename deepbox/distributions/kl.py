"""KL(p || q) between distributions: a registry of closed forms, dispatched on both types.

``@register_kl(P, Q)`` adds a closed form; ``kl_divergence(p, q)`` picks the most specific
registered pair for ``type(p)`` and ``type(q)`` (by their method resolution orders), as
``torch.distributions.kl`` does, and raises NotImplementedError when there is none.
"""
from __future__ import annotations

import math
import warnings

import deepbox
import deepbox.nn.functional as F
from deepbox.distributions.bernoulli import Bernoulli
from deepbox.distributions.binomial import Binomial, Geometric
from deepbox.distributions.categorical import Categorical, OneHotCategorical
from deepbox.distributions.cauchy import Cauchy
from deepbox.distributions.exponential import Exponential, Laplace, Poisson
from deepbox.distributions.gamma import Beta, Dirichlet, Gamma
from deepbox.distributions.independent import Independent, _sum_rightmost
from deepbox.distributions.multivariate_normal import MultivariateNormal, _batch_mahalanobis
from deepbox.distributions.normal import Normal
from deepbox.distributions.transformed_distribution import EULER_GAMMA, Gumbel, HalfNormal, TransformedDistribution
from deepbox.distributions.uniform import Uniform
from deepbox.ops.special import digamma, lgamma

__all__ = ["kl_divergence", "register_kl"]

_KL_REGISTRY: dict = {}
_KL_MEMOIZE: dict = {}


def register_kl(type_p, type_q):
    """Decorator: register ``fn(p, q)`` as KL(p || q) for p of ``type_p`` and q of ``type_q``."""
    if not (isinstance(type_p, type) and isinstance(type_q, type)):
        raise TypeError(f"Expected type_p and type_q to be classes, got {type_p!r} and {type_q!r}")

    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        _KL_MEMOIZE.clear()
        return fn

    return decorator


def _dispatch_kl(type_p, type_q):
    matches = [(sp, sq) for sp, sq in _KL_REGISTRY if issubclass(type_p, sp) and issubclass(type_q, sq)]
    if not matches:
        return None
    mro_p, mro_q = type_p.__mro__, type_q.__mro__
    left = min(matches, key=lambda m: (mro_p.index(m[0]), mro_q.index(m[1])))
    right = min(matches, key=lambda m: (mro_q.index(m[1]), mro_p.index(m[0])))
    if _KL_REGISTRY[left] is not _KL_REGISTRY[right]:
        warnings.warn(f"Ambiguous kl_divergence({type_p.__name__}, {type_q.__name__}). Please register_kl"
                      f"({left[0].__name__}, {right[1].__name__})", RuntimeWarning, stacklevel=3)
    return _KL_REGISTRY[left]


def kl_divergence(p, q):
    r"""KL(p || q) = E_p[log p(x) - log q(x)], one value per batch element."""
    key = (type(p), type(q))
    if key not in _KL_MEMOIZE:
        _KL_MEMOIZE[key] = _dispatch_kl(*key)
    fn = _KL_MEMOIZE[key]
    if fn is None:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
                                  f"{type(q).__name__}")
    return fn(p, q)


def _inf_where(cond, value):
    return deepbox.where(cond, deepbox.full_like(value, math.inf), value)


def _zero_where(cond, value):
    return deepbox.where(cond, deepbox.zeros_like(value), value)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = _zero_where(p.probs == 0, _inf_where(q.probs == 0, t1))
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = _zero_where(p.probs == 1, _inf_where(q.probs == 1, t2))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = _inf_where((q.probs == 0).expand_as(t), t)
    t = _zero_where((p.probs == 0).expand_as(t), t)
    return t.sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehotcategorical_onehotcategorical(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return _inf_where((q.low > p.low) | (q.high < p.high), result)


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    sum_p = p.concentration1 + p.concentration0
    sum_q = q.concentration1 + q.concentration0
    t1 = lgamma(q.concentration1) + lgamma(q.concentration0) + lgamma(sum_p)
    t2 = lgamma(p.concentration1) + lgamma(p.concentration0) + lgamma(sum_q)
    t3 = (p.concentration1 - q.concentration1) * digamma(p.concentration1)
    t4 = (p.concentration0 - q.concentration0) * digamma(p.concentration0)
    t5 = (sum_q - sum_p) * digamma(sum_p)
    return t1 - t2 + t3 + t4 + t5


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    t1 = q.concentration * (p.rate / q.rate).log()
    t2 = lgamma(q.concentration) - lgamma(p.concentration)
    t3 = (p.concentration - q.concentration) * digamma(p.concentration)
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    sum_p = p.concentration.sum(-1)
    sum_q = q.concentration.sum(-1)
    t1 = lgamma(sum_p) - lgamma(sum_q)
    t2 = (lgamma(p.concentration) - lgamma(q.concentration)).sum(-1)
    t3 = p.concentration - q.concentration
    t4 = digamma(p.concentration) - digamma(sum_p).unsqueeze(-1)
    return t1 - t2 + (t3 * t4).sum(-1)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return -rate_ratio.log() + rate_ratio - 1


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    return -scale_ratio.log() + loc_abs_diff / q.scale + scale_ratio * deepbox.exp(-loc_abs_diff / p.scale) - 1


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (p.rate.log() - q.rate.log()) - (p.rate - q.rate)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot be "
                         "computed")
    Lp, Lq = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    half_term1 = (Lq.diagonal(dim1=-2, dim2=-1).log().sum(-1) - Lp.diagonal(dim1=-2, dim2=-1).log().sum(-1))
    batch = deepbox.broadcast_shapes(tuple(Lq.shape[:-2]), tuple(Lp.shape[:-2]))
    n = p.event_shape[0]
    Lq_b = Lq.expand(tuple(batch) + (n, n))
    Lp_b = Lp.expand(tuple(batch) + (n, n))
    term2 = deepbox.linalg.solve_triangular(Lq_b, Lp_b, upper=False).pow(2).flatten(-2).sum(-1)
    term3 = _batch_mahalanobis(Lq, q.loc - p.loc)
    return half_term1 + 0.5 * (term2 + term3 - n)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("KL between Independents with different reinterpreted_batch_ndims")
    return _sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p, q):
    # KL is invariant under a shared bijection: KL(f(X) || f(Y)) = KL(X || Y)
    if p.transforms != q.transforms:
        raise NotImplementedError("KL between TransformedDistributions with different transforms")
    if p.event_shape != q.event_shape:
        raise NotImplementedError("KL between TransformedDistributions with different event shapes")
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    # -H(p) + log s_q + E[z_q] + E[exp(-z_q)], z_q = (x - m_q) / s_q, with E[x] = m_p + s_p gamma and
    # E[exp(-x / s_q)] = exp(-m_p / s_q) Gamma(1 + s_p / s_q) for x ~ Gumbel(m_p, s_p)
    ratio = p.scale / q.scale
    q_loc, p_loc = q.loc / q.scale, p.loc / q.scale
    t1 = -ratio.log() - q_loc + p_loc
    t3 = (q_loc + lgamma(1 + ratio) - p_loc).exp()
    return t1 + ratio * EULER_GAMMA + t3 - (1 + EULER_GAMMA)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p, q):
    # log(((s_p + s_q)^2 + (m_p - m_q)^2) / (4 s_p s_q)) (Chyzak and Nielsen, 2019)
    num = (p.scale + q.scale).pow(2) + (p.loc - q.loc).pow(2)
    return (num / (4 * p.scale * q.scale)).log()


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    return -p.entropy() - (-q.probs).log1p() / p.probs - q.logits


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    # the closed form holds for equal counts; p's count above q's puts mass where q has none (KL = inf)
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    kl = p.total_count * (p.probs * (p.logits - q.logits) + (-p.probs).log1p() - (-q.probs).log1p())
    return _inf_where(p.total_count > q.total_count, kl)


# ---------------------------------------------------------------------------- Gumbel against other families
# KL(p || Gumbel(m, s)) = -H(p) + log s + E_p[z] + E_p[exp(-z)], z = (x - m) / s: the Gumbel's log-density is
# linear in z and in exp(-z), so every p whose mean and Laplace transform are closed-form has a closed form.

def _kl_to_gumbel(neg_entropy, mean_x, mean_exp_neg_x_over_s, q):
    return neg_entropy + q.scale.log() + (mean_x - q.loc) / q.scale + (q.loc / q.scale).exp() * mean_exp_neg_x_over_s


@register_kl(Normal, Gumbel)
def _kl_normal_gumbel(p, q):
    # E[exp(-x / s)] = exp(-mu / s + sigma^2 / (2 s^2)) for x ~ N(mu, sigma^2)
    laplace = (-p.loc / q.scale + 0.5 * (p.scale / q.scale).pow(2)).exp()
    return _kl_to_gumbel(-p.entropy(), p.loc, laplace, q)


@register_kl(Uniform, Gumbel)
def _kl_uniform_gumbel(p, q):
    # E[exp(-x / s)] = s (exp(-a / s) - exp(-b / s)) / (b - a) for x ~ U(a, b)
    laplace = q.scale * ((-p.low / q.scale).exp() - (-p.high / q.scale).exp()) / (p.high - p.low)
    return _kl_to_gumbel(-p.entropy(), 0.5 * (p.low + p.high), laplace, q)


@register_kl(Exponential, Gumbel)
def _kl_exponential_gumbel(p, q):
    # E[exp(-x / s)] = rate / (rate + 1 / s) for x ~ Exp(rate)
    laplace = p.rate / (p.rate + q.scale.reciprocal())
    return _kl_to_gumbel(-p.entropy(), p.rate.reciprocal(), laplace, q)


@register_kl(Gamma, Gumbel)
def _kl_gamma_gumbel(p, q):
    # E[exp(-x / s)] = (rate / (rate + 1 / s))^concentration for x ~ Gamma(concentration, rate)
    laplace = (p.rate / (p.rate + q.scale.reciprocal())).pow(p.concentration)
    return _kl_to_gumbel(-p.entropy(), p.concentration / p.rate, laplace, q)


@register_kl(Gumbel, Normal)
def _kl_gumbel_normal(p, q):
    # -H(p) + log sigma + log(2 pi) / 2 + E[(x - mu)^2] / (2 sigma^2), E[(x - mu)^2] = Var(x) + (E x - mu)^2
    second_moment = p.variance + (p.mean - q.loc).pow(2)
    return -p.entropy() + q.scale.log() + 0.5 * math.log(2 * math.pi) + second_moment / (2 * q.scale.pow(2))


def _kl_infinite(p, q):
    """p puts mass where q has none (a Gumbel's support is the whole line): KL = inf."""
    return deepbox.full(tuple(p.batch_shape), math.inf, dtype=p.mean.dtype)


for _q_type in (Uniform, Gamma, Exponential, Beta):
    register_kl(Gumbel, _q_type)(_kl_infinite)
register_kl(Poisson, Binomial)(_kl_infinite)  # a Poisson's support is unbounded, a binomial's is not
