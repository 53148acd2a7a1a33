"""Fused forward/backward kernels for the layers NumPy needs them for.

Each ``Function`` here does in one graph node what a chain of primitives would do in several:
fewer temporaries, fewer Python round trips, and a backward written from the closed-form
derivative. Each is tested against its composed twin and against PyTorch (tests/nn/test_fused.py).

- ``LinearFn``: ``x W^T + b``: one GEMM forward, two backward; the bias gradient as a
  matrix-vector product with a ones vector (BLAS, much faster than ``sum(axis=0)``).
- ``CrossEntropyFn``: log-softmax + NLL over class indices (weight, ignore_index,
  label_smoothing) or class probabilities, for ``(N, C)`` or ``(N, C, d1, ...)`` inputs.
- ``NLLFn``: NLL on log-probabilities with the same options.
- ``NormalizeFn``: ``(x - mean) / sqrt(var + eps) * weight + bias`` over given axes: batch norm
  (train and eval), layer norm, group norm and instance norm are all this one node.
- ``LayerNormFn``, ``BatchNormFn``: the same normalisations on compiled kernels (``deepbox.ops.accel``).
- ``DropoutFn``, ``GeluFn`` and a few activations whose composed form costs several passes.

With numba installed, ``LinearFn``'s bias add, ``GeluFn`` (exact form) and layer norm run as compiled
passes split over the threads (``deepbox/ops/_numba_elementwise.py``); the NumPy code beside each is
the path for other dtypes and layouts and for ``accel.compiled(False)``.
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.kernels import elementwise as _kew
from deepbox.kernels import switch as _switch
from deepbox.kernels import threads as _threads

xp = backend.xp

__all__ = [
    "LinearFn", "CrossEntropyFn", "NLLFn", "NormalizeFn", "LayerNormFn", "BatchNormFn", "DropoutFn", "GeluFn",
    "BCEWithLogitsFn", "BCEFn", "LeakyReluFn", "EluFn", "SoftplusFn", "SiluFn", "MishFn", "HardtanhFn", "LogSigmoidFn",
    "erf_array", "erfinv_array",
]

_scipy_erf = False  # resolved on first use: importing scipy costs about 0.3 s, so `import deepbox` skips it


def _resolve_scipy_erf():
    global _scipy_erf
    try:  # scipy's erf is vectorised C in the input's own precision; the fallback is pure NumPy
        from scipy.special import erf
    except ImportError:  # pragma: no cover - exercised by the fallback test
        erf = None
    _scipy_erf = erf
    return erf


def _erf_numpy(a):
    from deepbox.ops.elementwise import erf_array as _cody_erf

    return _cody_erf(a)


def erf_array(a):
    """erf of an array in its own dtype (scipy when importable, else Cody's rational approximations)."""
    erf = _resolve_scipy_erf() if _scipy_erf is False else _scipy_erf
    if erf is not None:
        return erf(a)
    return _erf_numpy(a)


def erfinv_array(y):
    """Inverse error function on float64 values in (-1, 1).

    Giles' single-precision approximation (2010) as a start, then two Newton steps on
    ``erf(x) - y`` bring it to double precision.
    """
    y = xp.asarray(y, dtype=xp.float64)
    w = -xp.log((1.0 - y) * (1.0 + y))
    x = xp.empty_like(y)
    lo = w < 5.0
    wl = w[lo] - 2.5
    p = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
              -0.00417768164, 0.246640727, 1.50140941):
        p = c + p * wl
    x[lo] = p * y[lo]
    hi = ~lo
    wh = xp.sqrt(w[hi]) - 3.0
    p = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682):
        p = c + p * wh
    x[hi] = p * y[hi]
    two_over_sqrt_pi = 2.0 / math.sqrt(math.pi)
    finite = xp.abs(y) < 1
    for _ in range(2):
        err = _erf_numpy(x) - y
        step = err / (two_over_sqrt_pi * xp.exp(-x * x))
        x = xp.where(finite, x - step, x)
    x = xp.where(y == 1, xp.inf, xp.where(y == -1, -xp.inf, x))
    return x


# --------------------------------------------------------------------------- linear
class LinearFn(Function):
    """``y = x @ W.T + b`` for ``x`` of shape ``(*, in)``, ``W`` ``(out, in)``, ``b`` ``(out,)``."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        out2 = (x if x.ndim == 2 else x.reshape(-1, x.shape[-1])) @ w.T
        if b is not None:
            K = _switch.kernels_for(out2, b) if out2.size >= _kew.KERNEL_MIN_SIZE and b.ndim == 1 else None
            if K is not None and out2.flags.c_contiguous:
                # the bias in one compiled pass split over the threads (NumPy's add runs on one core)

                _threads.parallel(K.add_rows, out2.shape[0], out2, b, work=_threads.split_work(out2.size, 0.25))
            else:
                out2 += b
        return out2 if x.ndim == 2 else out2.reshape(x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        n_in = x.shape[-1]
        g2 = grad.reshape(-1, grad.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = (g2 @ w).reshape(x.shape[:-1] + (n_in,))
        if ctx.needs_input_grad[1]:
            gw = g2.T @ x.reshape(-1, n_in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            # column sums as a BLAS matrix-vector product with a ones vector
            gb = xp.ones(g2.shape[0], dtype=g2.dtype) @ g2
        return gx, gw, gb


class BilinearFn(Function):
    """``y_k = x1 A_k x2^T + b_k``."""

    @staticmethod
    def forward(ctx, x1, x2, w, b=None):
        ctx.save_for_backward(x1, x2, w)
        ctx.has_bias = b is not None
        out = xp.einsum("...i,kij,...j->...k", x1, w, x2, optimize=True)
        if b is not None:
            out = out + b
        return out

    @staticmethod
    def backward(ctx, grad):
        x1, x2, w = ctx.saved_tensors
        n = ctx.needs_input_grad
        g1 = xp.einsum("...k,kij,...j->...i", grad, w, x2, optimize=True) if n[0] else None
        g2 = xp.einsum("...k,kij,...i->...j", grad, w, x1, optimize=True) if n[1] else None
        gw = xp.einsum("...k,...i,...j->kij", grad, x1, x2, optimize=True) if n[2] else None
        gb = grad.reshape(-1, grad.shape[-1]).sum(0) if ctx.has_bias and n[3] else None
        return g1, g2, gw, gb


# --------------------------------------------------------------------------- losses
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
    Returns (loss (N,), coef (N, C) = d loss_i / d logp[i, :], denominator for 'mean').
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
    return loss, coef, denom


class _IndexLossBase(Function):
    @staticmethod
    def _finish(ctx, loss, coef, denom, reduction, out_shape, dt):
        ctx.reduction = reduction
        ctx.out_shape = out_shape
        if reduction == "mean":
            # 0/0 = nan when every target is ignored, as in PyTorch
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


def _log_sigmoid(x):
    # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): no overflow for |x| of 1e4
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


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


# --------------------------------------------------------------------------- normalisation
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


class LayerNormFn(Function):
    """Layer norm over the last ``d`` elements of each row, on compiled kernels (``deepbox.ops.accel``).

    The same function as ``NormalizeFn`` with the statistics over the trailing dimensions, in one
    pass over each row forward (mean and variance in float64, then the affine map) and one back,
    split over the rows on every thread; the weight and bias gradients are per-thread column sums.
    Keeps ``x`` and the per-row mean and ``rstd`` for backward, not ``xhat``. ``x`` must be
    C-contiguous (``functional.layer_norm`` takes ``NormalizeFn`` otherwise).
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, d, eps):

        K = _switch.kernels()
        dt = x.dtype
        x2 = x.reshape(-1, d)
        m = x2.shape[0]
        w = weight.reshape(d) if weight is not None else xp.ones(d, dt)
        b = bias.reshape(d) if bias is not None else xp.zeros(d, dt)
        out = xp.empty(x.shape, dt)
        mean = xp.empty(m)
        rstd = xp.empty(m)
        _threads.parallel(K.layer_norm_fwd, m, x2, w, b, float(eps), out.reshape(-1, d), mean, rstd,
                       work=_threads.split_work(x.size, 0.5))
        ctx.save_for_backward(x, weight)
        ctx.w, ctx.mean, ctx.rstd, ctx.d = w, mean, rstd, d
        ctx.b_shape = None if bias is None else bias.shape
        return out

    @staticmethod
    def backward(ctx, grad):

        x, weight = ctx.saved_tensors
        w, mean, rstd, d = ctx.w, ctx.mean, ctx.rstd, ctx.d
        ctx.w = ctx.mean = ctx.rstd = None
        dt = grad.dtype
        x2 = x.reshape(-1, d)
        g2 = xp.ascontiguousarray(grad).reshape(-1, d)
        K = _switch.kernels_for(g2, x2)
        if K is not None:
            gx = xp.empty(x.shape, dt)
            part = xp.zeros((_threads.num_threads(), 2, d))
            _threads.parallel(K.layer_norm_bwd, x2.shape[0], g2, x2, w, mean, rstd, gx.reshape(-1, d), part,
                           work=_threads.split_work(x.size, 0.8), indexed=True)
            sgx, sg = part.sum(axis=0)
        else:  # the kernels were switched off after the forward: the same formulas in NumPy
            xhat = (x2 - mean[:, None].astype(dt)) * rstd[:, None].astype(dt)
            gw_ = g2 * w
            gx = gw_ - gw_.mean(axis=1, keepdims=True)
            gx -= xhat * (gw_ * xhat).mean(axis=1, keepdims=True)
            gx *= rstd[:, None].astype(dt)
            gx = gx.reshape(x.shape)
            sgx, sg = (g2 * xhat).sum(axis=0), g2.sum(axis=0)
        n = ctx.needs_input_grad
        gw = sgx.astype(dt).reshape(weight.shape) if weight is not None and n[1] else None
        gb = sg.astype(dt).reshape(ctx.b_shape) if ctx.b_shape is not None and n[2] else None
        return (gx if n[0] else None), gw, gb


def _channel_view(x):
    """``(kind, view)`` of an ``(N, C, ...)`` array for the per-channel kernels, without copying.

    ``"rows"``: channels-last memory (a conv output, or a 2-D ``(N, C)``), viewed as ``(M, C)``;
    ``"planes"``: channels-first contiguous, viewed as ``(N, C, P)``; ``(None, None)`` otherwise.
    """
    c = x.shape[1]
    last = xp.moveaxis(x, 1, -1)
    if last.flags.c_contiguous:
        return "rows", last.reshape(-1, c)
    if x.flags.c_contiguous:
        return "planes", x.reshape(x.shape[0], c, -1)
    return None, None


def _like_layout(a, kind, shape):
    """``a`` (of ``shape``) as a view of the given kind, copied into that layout when it is not."""
    k, v = _channel_view(a)
    if k == kind:
        return v
    if kind == "rows":
        return xp.ascontiguousarray(xp.moveaxis(a, 1, -1)).reshape(-1, shape[1])
    return xp.ascontiguousarray(a).reshape(shape[0], shape[1], -1)


def _empty_layout(kind, shape, dtype):
    """A new ``(N, C, ...)`` array stored as ``kind`` and its kernel view."""
    if kind == "rows":
        moved = xp.empty((shape[0],) + tuple(shape[2:]) + (shape[1],), dtype=dtype)
        return xp.moveaxis(moved, -1, 1), moved.reshape(-1, shape[1])
    out = xp.empty(shape, dtype=dtype)
    return out, out.reshape(shape[0], shape[1], -1)


class BatchNormFn(Function):
    """Batch norm over dim 1 with compiled, multi-threaded kernels (``deepbox.ops.accel``).

    The same function as ``NormalizeFn`` with per-channel statistics, in two passes each
    way instead of six: the channel sums of ``x - k`` and ``(x - k)^2`` in float64, ``k`` one
    sample per channel (a shift near the mean, so the variance has no cancellation even far
    from zero), then ``out = (x - mean) * a + bias`` with ``a = weight * rstd``.
    Backward: the sums of ``g`` and ``g * (x - mean)``, then
    ``dx = g * a + (x - mean) * B + K`` per channel, the closed form of
    ``rstd * w * (g - mean(g) - xhat * mean(g * xhat))``.
    ``running=(mean, var)`` normalises with given statistics (eval mode): ``dx = g * a``.
    The input must be channels-last or contiguous channels-first (``_channel_view``).
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, *, eps, running=None, stats=None):

        K = _switch.kernels()
        dt = x.dtype
        c = x.shape[1]
        m = x.size // c
        kind, v = _channel_view(x)
        if running is None:
            shift = (v[0] if kind == "rows" else v[0, :, 0]).astype(xp.float64)
            part = xp.zeros((_threads.num_threads(), 2, c))
            _threads.parallel(K.sums_rows if kind == "rows" else K.sums_planes, v.shape[0], v, v, shift, shift,
                           part, work=x.size, indexed=True)
            s = part.sum(axis=0)
            d = s[0] / m
            mean = shift + d
            var = xp.maximum(s[1] / m - d * d, 0.0)
            if stats is not None:
                stats["mean"], stats["var"] = mean, var
        else:
            mean = running[0].astype(xp.float64).reshape(c)
            var = running[1].astype(xp.float64).reshape(c)
        rstd = 1.0 / xp.sqrt(var + eps)
        a = rstd * weight.reshape(c) if weight is not None else rstd
        b = bias.reshape(c).astype(dt) if bias is not None else xp.zeros(c, dtype=dt)
        out, ov = _empty_layout(kind, x.shape, dt)
        _threads.parallel(K.affine_rows if kind == "rows" else K.affine_planes, v.shape[0], v,
                       mean.astype(dt), a.astype(dt), b, ov, work=x.size)
        ctx.kind, ctx.m, ctx.given = kind, m, running is not None
        ctx.mean, ctx.rstd, ctx.a = mean, rstd, a
        ctx.has_w, ctx.has_b = weight is not None, bias is not None
        ctx.save_for_backward(x if (running is None or ctx.needs_input_grad[1]) else None)
        return out

    @staticmethod
    def backward(ctx, grad):

        K = _switch.kernels()
        (x,) = ctx.saved_tensors
        kind, m, dt = ctx.kind, ctx.m, grad.dtype
        c = grad.shape[1]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gv = _like_layout(grad, kind, grad.shape)
        mean, rstd, a = ctx.mean, ctx.rstd, ctx.a
        zero = xp.zeros(c)
        gx = gw = gb = None
        if x is not None:
            xv = _like_layout(x, kind, x.shape)
            part = xp.zeros((_threads.num_threads(), 2, c))
            _threads.parallel(K.sums_rows if kind == "rows" else K.sums_planes, gv.shape[0], gv, xv, zero, mean,
                           part, work=grad.size, indexed=True)
            sg, sgxc = part.sum(axis=0)
            sgxhat = rstd * sgxc                     # sum of g * xhat
            if need_w and ctx.has_w:
                gw = sgxhat.astype(dt)
            if need_b and ctx.has_b:
                gb = sg.astype(dt)
        elif need_b and ctx.has_b:
            gb = xp.ones(gv.shape[0], dtype=dt) @ gv if kind == "rows" else gv.sum(axis=(0, 2)).astype(dt)
        if need_x:
            out, ov = _empty_layout(kind, grad.shape, dt)
            zdt = zero.astype(dt)
            if ctx.given:
                _threads.parallel(K.affine_rows if kind == "rows" else K.affine_planes, gv.shape[0], gv,
                               zdt, a.astype(dt), zdt, ov, work=grad.size)
            else:
                bx = -a * rstd * rstd * sgxc / m
                k = -a * sg / m
                _threads.parallel(K.affine2_rows if kind == "rows" else K.affine2_planes, gv.shape[0], gv, xv,
                               mean.astype(dt), a.astype(dt), bx.astype(dt), k.astype(dt), ov, work=grad.size)
            gx = out
        return gx, gw, gb


# --------------------------------------------------------------------------- dropout and activations
class DropoutFn(Function):
    """``x * mask / (1 - p)`` with the scaled mask kept for backward."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GeluFn(Function):
    """``x * Phi(x)`` (exact, via erf) or its tanh approximation.

    The exact form runs as one compiled pass each way on large float arrays (``gelu_fwd`` and
    ``gelu_bwd`` in ``_numba_elementwise``, which recompute ``Phi`` in backward instead of keeping it).
    """

    @staticmethod
    def forward(ctx, x, *, approximate="none"):
        ctx.save_for_backward(x)
        ctx.approx = approximate
        ctx.cdf = None
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
            t = xp.tanh(inner)
            ctx.t = t
            return 0.5 * x * (1 + t)
        if x.size >= _kew.KERNEL_MIN_SIZE:
            out = _kew.elementwise_kernel("gelu_fwd", _kew.empty_like_flat(x), x, ns=0.5)
            if out is not None:
                return out
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
        if cdf is None:  # the forward ran the kernel
            if _kew.flat_views(grad, x) is None:   # the gradient in x's memory layout
                g = _kew.empty_like_flat(x, grad.dtype)
                g[...] = grad
                grad = g
            gx = _kew.elementwise_kernel("gelu_bwd", _kew.empty_like_flat(x, grad.dtype), grad, x, ns=1.0)
            if gx is not None:
                return gx
            cdf = 0.5 * (1.0 + erf_array(x * _INV_SQRT2))  # kernels switched off since the forward
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
