"""``deepbox.special``: PyTorch's ``torch.special`` namespace.

The gamma family, error functions and modified Bessel functions are computed in
``deepbox/ops/special.py`` (each with its derivative beside it); the rest are the familiar
elementwise ops under their SciPy-style names.

    >>> import deepbox as torch
    >>> torch.special.gammaln(torch.tensor([1.0, 5.0]))
    tensor([0.0000, 3.1781])
"""
from __future__ import annotations

import math

from deepbox.ops import elementwise as _ew
from deepbox.ops import reduction as _rd
from deepbox.ops.special import (  # noqa: F401
    digamma,
    entr,
    erfc,
    erfcx,
    erfinv,
    gammainc,
    gammaincc,
    i0,
    i0e,
    i1,
    i1e,
    log_ndtr,
    ndtri,
    polygamma,
    sinc,
    xlog1py,
    xlogy,
)
from deepbox.ops.special import lgamma as gammaln  # noqa: F401
from deepbox.ops.special import mvlgamma as _mvlgamma
from deepbox.tensor import Tensor

psi = digamma
erf = _ew.erf
exp2 = _ew.exp2
expm1 = _ew.expm1
log1p = _ew.log1p
expit = _ew.sigmoid
round = _ew.round  # noqa: A001
logsumexp = _rd.logsumexp


def multigammaln(input, p: int, *, out=None) -> Tensor:
    """The multivariate log-gamma function of dimension ``p``."""
    return _mvlgamma(input, p, out=out)


def ndtr(input, *, out=None) -> Tensor:
    """The standard normal CDF: (1 + erf(x / sqrt 2)) / 2, computed as erfc(-x / sqrt 2) / 2."""
    if out is not None:
        raise NotImplementedError("deepbox.special.ndtr: the `out=` argument is not supported")
    return 0.5 * erfc(-_ew._as_tensor(input) / math.sqrt(2.0))


def logit(input, eps: float | None = None, *, out=None) -> Tensor:
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when ``eps`` is given."""
    if out is not None:
        raise NotImplementedError("deepbox.special.logit: the `out=` argument is not supported")
    x = _ew._as_tensor(input)
    if x._data.dtype.kind != "f":
        x = x.float()
    if eps is not None:
        x = _ew.clamp(x, eps, 1.0 - eps)
    return _ew.log(x) - _ew.log1p(-x)


def softmax(input, dim: int, *, dtype=None) -> Tensor:
    return _rd.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim: int, *, dtype=None) -> Tensor:
    return _rd.log_softmax(input, dim, dtype=dtype)


__all__ = ["digamma", "psi", "polygamma", "gammaln", "multigammaln", "gammainc", "gammaincc", "erf", "erfc", "erfcx",
           "erfinv", "ndtr", "ndtri", "log_ndtr", "expit", "logit", "exp2", "expm1", "log1p", "i0", "i0e", "i1",
           "i1e", "sinc", "entr", "xlogy", "xlog1py", "round", "logsumexp", "softmax", "log_softmax"]
