"""Normalisation: batch, layer, group and instance norm as one graph node each.

All are ``(x - mean) / sqrt(var + eps) * weight + bias`` with the statistics over different axes
(``NormalizeFn``): batch norm over the batch and spatial axes per channel, layer norm over the
trailing dimensions, group and instance norm over a reshaped input. ``BatchNormFn`` and
``LayerNormFn`` name the two that have fast twins (``deepbox/kernels/norm.py``).
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function

xp = backend.xp

__all__ = ["NormalizeFn", "BatchNormFn", "LayerNormFn"]


class NormalizeFn(Function):
    """``(x - mean) * rstd * weight + bias``, the statistics taken over ``axes``.

    Batch norm uses ``axes=(0, 2, 3, ...)`` with per-channel parameters, layer norm the last
    dimensions, group and instance norm a reshaped input. With ``mean``/``var`` given (batch
    norm in eval mode) the statistics are constants. ``stats`` (a dict), when given, receives the
    batch mean and biased variance for the running averages.

    Backward, with ``g = grad * weight`` and ``N`` elements per statistic:
    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, axes, eps, wshape=None, mean=None, var=None, stats=None):
        dt = x.dtype
        ctx.given = mean is not None
        if mean is None:
            mu = x.mean(axis=axes, keepdims=True, dtype=dt)
            xc = x - mu
            # variance from the centred values, not E[x^2] - E[x]^2: no cancellation in float32
            var_b = xp.mean(xp.square(xc), axis=axes, keepdims=True, dtype=dt)
            if stats is not None:
                stats["mean"] = mu
                stats["var"] = var_b
        else:
            if mean.ndim != x.ndim:  # per-channel statistics: line them up with the kept dims
                shape = [1] * x.ndim
                for i in range(x.ndim):
                    if i not in axes:
                        shape[i] = x.shape[i]
                mean, var = mean.reshape(shape), var.reshape(shape)
            mu = mean.astype(dt, copy=False)
            var_b = var.astype(dt, copy=False)
            xc = x - mu
        rstd = 1.0 / xp.sqrt(var_b + xp.asarray(eps, dtype=dt))
        xhat = xc
        xhat *= rstd
        w = b = None
        if weight is not None:
            w = weight.reshape(wshape) if wshape is not None else weight
        if bias is not None:
            b = bias.reshape(wshape) if wshape is not None else bias
        if w is not None:
            out = xhat * w
            if b is not None:
                out += b
        elif b is not None:
            out = xhat + b
        else:
            out = xhat.copy()
        ctx.save_for_backward(xhat, rstd, w)
        ctx.axes = axes
        ctx.w_shape = None if weight is None else weight.shape
        ctx.b_shape = None if bias is None else bias.shape
        ctx.wshape = wshape
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, rstd, w = ctx.saved_tensors
        axes = ctx.axes
        n = ctx.needs_input_grad
        gx = gw = gb = None
        # the axes that the (broadcast) weight does not have: reduce over them for its gradient
        if n[1] or n[2]:
            bshape = ctx.wshape if ctx.wshape is not None else (ctx.w_shape or ctx.b_shape)
            lead = grad.ndim - len(bshape) if bshape is not None else 0
            red = tuple(i for i in range(grad.ndim)
                        if i < lead or (bshape is not None and bshape[i - lead] == 1 and grad.shape[i] != 1))
            if n[1]:
                gw = (grad * xhat).sum(axis=red).reshape(ctx.w_shape)
            if n[2]:
                gb = grad.sum(axis=red).reshape(ctx.b_shape)
        if n[0]:
            g = grad * w if w is not None else grad
            if ctx.given:
                gx = g * rstd
            else:
                mg = g.mean(axis=axes, keepdims=True)
                mgx = (g * xhat).mean(axis=axes, keepdims=True)
                gx = g - mg
                gx -= xhat * mgx
                gx *= rstd
        return gx, gw, gb


class BatchNormFn(NormalizeFn):
    """Batch norm of an ``(N, C, ...)`` input: ``NormalizeFn`` over every axis but the channels (dim 1).

    ``running=(mean, var)`` normalises with given statistics (eval mode); ``stats`` (a dict), when
    given, receives the batch mean and biased variance for the running averages.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, eps, running=None, stats=None):
        axes = (0,) + tuple(range(2, x.ndim))
        wshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        mean, var = running if running is not None else (None, None)
        return NormalizeFn.forward(ctx, x, weight, bias, axes=axes, eps=eps, wshape=wshape, mean=mean, var=var,
                                   stats=stats)

    @staticmethod
    def backward(ctx, grad):
        return NormalizeFn.backward(ctx, grad)


class LayerNormFn(NormalizeFn):
    """Layer norm: ``NormalizeFn`` over the last ``dims`` dimensions (the weight and bias have their shape)."""

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, dims, eps):
        axes = tuple(range(x.ndim - dims, x.ndim))
        return NormalizeFn.forward(ctx, x, weight, bias, axes=axes, eps=eps)

    @staticmethod
    def backward(ctx, grad):
        return NormalizeFn.backward(ctx, grad)
