"""Losses as single graph nodes: cross-entropy (class indices or probabilities), NLL, binary
cross-entropy on probabilities and on logits; each backward from the closed-form derivative.

The rarer losses are composed from tensor ops in ``nn.functional``, which keeps their gradients
automatic.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops.activation import _log_sigmoid, _sigmoid

xp = backend.xp

__all__ = ["CrossEntropyFn", "NLLFn", "CrossEntropyProbFn", "BCEWithLogitsFn", "BCEFn"]


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _classes_last(x):
    """``(N, C, d1, ...)`` -> ``(N * d1 * ..., C)``; ``(N, C)`` stays, ``(C,)`` becomes ``(1, C)``."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return xp.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _classes_back(g2, shape):
    """Inverse of ``_classes_last`` for a gradient."""
    if len(shape) <= 2:
        return g2.reshape(shape)
    moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return xp.moveaxis(g2.reshape(moved), -1, 1)


def _log_softmax_rows(x):
    m = x.max(axis=1, keepdims=True)
    z = x - m
    # z <= 0 so exp never overflows; logits of 1e4 are safe
    lse = xp.log(xp.exp(z).sum(axis=1, keepdims=True))
    z -= lse
    return z


def _index_target_coeffs(logp, t, weight, ignore_index, label_smoothing, C):
    """The loss per row and its derivative with respect to ``logp`` (per row, before reduction).

    loss_i = -(1 - eps) w[t_i] logp[i, t_i] - eps / C * sum_c w_c logp[i, c], zero where ignored.
    Returns (loss (N,), coef (N, C) = d loss_i / d logp[i, :], denominator for 'mean', None when
    every row is ignored).
    """
    n = logp.shape[0]
    dt = logp.dtype
    keep = t != ignore_index
    ts = xp.where(keep, t, 0)
    if keep.any():
        bad = (ts < 0) | (ts >= C)
        if bad.any():
            raise IndexError(f"Target {int(ts[bad][0])} is out of bounds (expected class indices in [0, {C - 1}]).")
    rows = xp.arange(n)
    wt = weight[ts].astype(dt) if weight is not None else xp.ones(n, dtype=dt)
    wt = wt * keep
    picked = logp[rows, ts]
    loss = -(1.0 - label_smoothing) * wt * picked if label_smoothing else -wt * picked
    coef = xp.zeros_like(logp)
    coef[rows, ts] = -(1.0 - label_smoothing) * wt if label_smoothing else -wt
    if label_smoothing:
        wc = weight.astype(dt) if weight is not None else xp.ones(C, dtype=dt)
        smooth = -(logp @ wc) * keep
        loss = loss + (label_smoothing / C) * smooth
        coef -= (label_smoothing / C) * (wc[None, :] * keep[:, None])
    denom = wt.sum()
    if not keep.any():
        denom = None   # every row ignored: the 'mean' is NaN, its gradient 0 (as PyTorch)
    return loss, coef, denom


class _IndexLossBase(Function):
    @staticmethod
    def _finish(ctx, loss, coef, denom, reduction, out_shape, dt):
        ctx.reduction = reduction
        ctx.out_shape = out_shape
        if reduction == "mean":
            # 0/0 = nan when every target is ignored or has weight 0, as in PyTorch; the gradient is then
            # 0 when every target is ignored, NaN when the kept ones weigh 0
            if denom is None:
                ctx.scale = 0.0
                return xp.asarray(xp.nan, dtype=dt), coef
            with xp.errstate(invalid="ignore", divide="ignore"):
                val = xp.asarray(loss.sum() / denom, dtype=dt)
            ctx.scale = (1.0 / denom) if denom != 0 else xp.nan
            return val, coef
        if reduction == "sum":
            return xp.asarray(loss.sum(), dtype=dt), coef
        return loss.reshape(out_shape).astype(dt, copy=False), coef

    @staticmethod
    def _upstream(ctx, grad):
        if ctx.reduction == "mean":
            return grad * ctx.scale
        if ctx.reduction == "sum":
            return grad
        return grad.reshape(-1, 1)


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction (expected 'none', 'mean' or 'sum')")


def _target_rows(target, x_shape):
    if len(x_shape) == 1:
        if target.ndim != 0:
            raise ValueError(f"for unbatched input of shape {tuple(x_shape)} the target must be a scalar class index")
        return target.reshape(1)
    expected = (x_shape[0],) + tuple(x_shape[2:])
    if target.shape != expected:
        raise ValueError(
            f"Expected target of shape {expected} (class indices) for input of shape {tuple(x_shape)}, "
            f"got {tuple(target.shape)}"
        )
    return target.reshape(-1)


def _none_shape(x_shape):
    if len(x_shape) == 1:
        return ()
    return (x_shape[0],) + tuple(x_shape[2:])


class CrossEntropyFn(_IndexLossBase):
    """Log-softmax over dim 1 then NLL, as one node. ``target`` holds class indices (int)."""

    @staticmethod
    def forward(ctx, x, target, weight=None, *, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        C = x.shape[1] if x.ndim > 1 else x.shape[0]
        x2 = _classes_last(x)
        logp = _log_softmax_rows(x2)
        t = _target_rows(target, x.shape)
        loss, coef, denom = _index_target_coeffs(logp, t, weight, ignore_index, label_smoothing, C)
        # d loss / d x = coef - softmax * sum(coef): keep softmax (exp of logp) for backward
        ctx.save_for_backward(logp, coef)
        ctx.x_shape = x.shape
        out, _ = _IndexLossBase._finish(ctx, loss, coef, denom, reduction, _none_shape(x.shape), x.dtype)
        return out

    @staticmethod
    def backward(ctx, grad):
        logp, coef = ctx.saved_tensors
        up = _IndexLossBase._upstream(ctx, grad)
        p = xp.exp(logp)
        g = coef - p * coef.sum(axis=1, keepdims=True)
        g *= up
        return _classes_back(g, ctx.x_shape), None, None


class NLLFn(_IndexLossBase):
    """Negative log-likelihood of class indices given log-probabilities ``(N, C, ...)``."""

    @staticmethod
    def forward(ctx, logp, target, weight=None, *, ignore_index=-100, reduction="mean"):
        C = logp.shape[1] if logp.ndim > 1 else logp.shape[0]
        lp2 = _classes_last(logp)
        t = _target_rows(target, logp.shape)
        loss, coef, denom = _index_target_coeffs(lp2, t, weight, ignore_index, 0.0, C)
        ctx.save_for_backward(coef)
        ctx.x_shape = logp.shape
        out, _ = _IndexLossBase._finish(ctx, loss, coef, denom, reduction, _none_shape(logp.shape), logp.dtype)
        return out

    @staticmethod
    def backward(ctx, grad):
        (coef,) = ctx.saved_tensors
        g = coef * _IndexLossBase._upstream(ctx, grad)
        return _classes_back(g, ctx.x_shape), None, None


class CrossEntropyProbFn(Function):
    """Cross-entropy against class probabilities ``target`` of the input's shape."""

    @staticmethod
    def forward(ctx, x, target, weight=None, *, label_smoothing=0.0, reduction="mean"):
        C = x.shape[1] if x.ndim > 1 else x.shape[0]
        x2 = _classes_last(x)
        t2 = _classes_last(target).astype(x.dtype, copy=False)
        if label_smoothing:
            t2 = t2 * (1.0 - label_smoothing) + label_smoothing / C
        logp = _log_softmax_rows(x2)
        tw = t2 * weight.astype(x.dtype) if weight is not None else t2
        loss = -(logp * tw).sum(axis=1)
        ctx.save_for_backward(logp, tw)
        ctx.x_shape = x.shape
        ctx.weight = weight
        ctx.ls = label_smoothing
        ctx.reduction = reduction
        n = x2.shape[0]
        ctx.n = n
        if reduction == "mean":
            with xp.errstate(invalid="ignore", divide="ignore"):
                return xp.asarray(loss.sum() / n if n else xp.nan, dtype=x.dtype)
        if reduction == "sum":
            return xp.asarray(loss.sum(), dtype=x.dtype)
        return loss.reshape(_none_shape(x.shape))

    @staticmethod
    def backward(ctx, grad):
        logp, tw = ctx.saved_tensors
        if ctx.reduction == "mean":
            up = grad / ctx.n
        elif ctx.reduction == "sum":
            up = grad
        else:
            up = grad.reshape(-1, 1)
        gx = gt = None
        if ctx.needs_input_grad[0]:
            p = xp.exp(logp)
            gx = (p * tw.sum(axis=1, keepdims=True) - tw) * up
            gx = _classes_back(gx, ctx.x_shape)
        if ctx.needs_input_grad[1]:
            gt = -logp * up
            if ctx.weight is not None:
                gt = gt * ctx.weight
            if ctx.ls:
                gt = gt * (1.0 - ctx.ls)
            gt = _classes_back(gt, ctx.x_shape)
        return gx, gt, None


class BCEWithLogitsFn(Function):
    """``-w [pw y log s(x) + (1 - y) log(1 - s(x))]`` computed from logits without overflow."""

    @staticmethod
    def forward(ctx, x, y, weight=None, pos_weight=None, *, reduction="mean"):
        ls = _log_sigmoid(x)
        if pos_weight is not None:
            lw = (pos_weight - 1) * y + 1
            loss = (1 - y) * x - lw * ls
        else:
            lw = None
            loss = (1 - y) * x - ls
        base = loss
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(x, y, ls, base)
        ctx.lw = lw
        ctx.weight = weight
        ctx.pos_weight = pos_weight
        ctx.reduction = reduction
        ctx.shape = loss.shape
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, y, ls, base = ctx.saved_tensors
        if ctx.reduction == "mean":
            grad = grad / max(int(xp.prod(ctx.shape)), 1) if len(ctx.shape) else grad
        up = grad if ctx.weight is None else grad * ctx.weight
        n = ctx.needs_input_grad
        gx = gy = gw = gpw = None
        if n[0]:
            sneg = _sigmoid(-x)  # 1 - sigmoid(x) = d(-log s(x))/dx * -1
            lw = ctx.lw if ctx.lw is not None else 1
            gx = ((1 - y) - lw * sneg) * up
        if n[1]:
            gy = -x * up
            if ctx.pos_weight is not None:
                gy = gy - (ctx.pos_weight - 1) * ls * up
        if n[2]:
            gw = grad * base
        if n[3]:
            gpw = -y * ls * up
        return gx, gy, gw, gpw


class BCEFn(Function):
    """Binary cross-entropy on probabilities; each log is clamped at -100 as in PyTorch."""

    @staticmethod
    def forward(ctx, x, y, weight=None, *, reduction="mean"):
        if ((x < 0) | (x > 1)).any():
            raise RuntimeError("all elements of input should be between 0 and 1")
        with xp.errstate(divide="ignore"):
            lx = xp.maximum(xp.log(x), -100)
            l1x = xp.maximum(xp.log1p(-x), -100)
        loss = -(y * lx + (1 - y) * l1x)
        base = loss
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(x, y, lx, l1x, base)
        ctx.weight = weight
        ctx.reduction = reduction
        ctx.shape = loss.shape
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, y, lx, l1x, base = ctx.saved_tensors
        if ctx.reduction == "mean" and len(ctx.shape):
            grad = grad / max(int(xp.prod(ctx.shape)), 1)
        up = grad if ctx.weight is None else grad * ctx.weight
        n = ctx.needs_input_grad
        gx = gy = gw = None
        if n[0]:
            eps = xp.asarray(1e-12, dtype=x.dtype)
            gx = (x - y) / xp.maximum((1 - x) * x, eps) * up
        if n[1]:
            # PyTorch differentiates the unclamped logs here (infinite at x = 0 or 1)
            with xp.errstate(divide="ignore", invalid="ignore"):
                gy = (xp.log1p(-x) - xp.log(x)) * up
        if len(n) > 2 and n[2]:
            gw = grad * base
        return gx, gy, gw
