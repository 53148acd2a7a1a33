"""Activations with a closed-form derivative: GELU, leaky ReLU, ELU/SELU/CELU, softplus, SiLU, mish,
hardtanh, log-sigmoid; each one graph node where the composed form would cost several passes.

ReLU and sigmoid are elementwise primitives (``deepbox/ops/elementwise.py``). GELU's exact form
needs erf: scipy's (vectorised C in the input's own precision) when importable, else Cody's
rational approximations in NumPy.
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops.elementwise import erf_array as _cody_erf

xp = backend.xp

__all__ = ["GeluFn", "LeakyReluFn", "EluFn", "SoftplusFn", "SiluFn", "MishFn", "HardtanhFn", "LogSigmoidFn",
           "erf_array"]

_scipy_erf = False  # resolved on first use: importing scipy costs about 0.3 s, so `import deepbox` skips it


def _resolve_scipy_erf():
    global _scipy_erf
    try:  # scipy's erf is vectorised C in the input's own precision; the fallback is pure NumPy
        from scipy.special import erf
    except ImportError:  # pragma: no cover - exercised by the fallback test
        erf = None
    _scipy_erf = erf
    return erf


def erf_array(a):
    """erf of an array in its own dtype (scipy when importable, else Cody's rational approximations)."""
    erf = _resolve_scipy_erf() if _scipy_erf is False else _scipy_erf
    if erf is not None:
        return erf(a)
    return _cody_erf(a)


def _log_sigmoid(x):
    # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): no overflow for |x| of 1e4
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GeluFn(Function):
    """``x * Phi(x)`` (exact, via erf) or its tanh approximation.

    backward: ``Phi(x) + x * phi(x)`` (exact), or the derivative of the tanh form.
    """

    @staticmethod
    def forward(ctx, x, *, approximate="none"):
        ctx.save_for_backward(x)
        ctx.approx = approximate
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
            t = xp.tanh(inner)
            ctx.t = t
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1.0 + erf_array(x * _INV_SQRT2))
        ctx.cdf = cdf
        return x * cdf

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.approx == "tanh":
            t = ctx.t
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
        cdf = ctx.cdf
        pdf = xp.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return grad * (cdf + x * pdf)


class LeakyReluFn(Function):
    @staticmethod
    def forward(ctx, x, *, negative_slope=0.01):
        pos = x > 0
        ctx.save_for_backward(pos)
        ctx.slope = negative_slope
        return xp.where(pos, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (pos,) = ctx.saved_tensors
        return xp.where(pos, grad, grad * ctx.slope)


class EluFn(Function):
    """ELU / SELU / CELU: ``scale * (x if x > 0 else alpha * (exp(x / beta) - 1))``."""

    @staticmethod
    def forward(ctx, x, *, alpha=1.0, scale=1.0, beta=1.0):
        pos = x > 0
        em1 = xp.expm1(xp.minimum(x, 0) / beta)
        out = xp.where(pos, x * scale, (alpha * scale) * em1)
        ctx.save_for_backward(pos, em1)
        ctx.alpha, ctx.scale, ctx.beta = alpha, scale, beta
        return out

    @staticmethod
    def backward(ctx, grad):
        pos, em1 = ctx.saved_tensors
        neg = (ctx.alpha * ctx.scale / ctx.beta) * (em1 + 1)
        return grad * xp.where(pos, ctx.scale, neg)


class SoftplusFn(Function):
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold``."""

    @staticmethod
    def forward(ctx, x, *, beta=1.0, threshold=20.0):
        bx = x * beta
        lin = bx > threshold
        out = xp.where(lin, x, (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / beta)
        ctx.save_for_backward(bx, lin)
        return out

    @staticmethod
    def backward(ctx, grad):
        bx, lin = ctx.saved_tensors
        return grad * xp.where(lin, 1, _sigmoid(bx))


class SiluFn(Function):
    @staticmethod
    def forward(ctx, x):
        s = _sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        return grad * (s * (1 + x * (1 - s)))


class MishFn(Function):
    """``x * tanh(softplus(x))``."""

    @staticmethod
    def forward(ctx, x):
        sp = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        t = xp.tanh(sp)
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad):
        x, t = ctx.saved_tensors
        return grad * (t + x * (1 - t * t) * _sigmoid(x))


class HardtanhFn(Function):
    @staticmethod
    def forward(ctx, x, *, min_val=-1.0, max_val=1.0):
        inside = (x > min_val) & (x < max_val)
        ctx.save_for_backward(inside)
        return xp.clip(x, min_val, max_val).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


class LogSigmoidFn(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _log_sigmoid(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * _sigmoid(-x)
