"""Fast cross-entropy over class indices: one compiled pass over the logits each way, split over the threads.

The twin of ``deepbox.ops.loss.CrossEntropyFn`` (same values) for the common case: 2-D float32/64
logits without class weights (label smoothing and ``ignore_index`` included). The reference builds
the log-softmax (N, C) and a dense coefficient matrix (N, C) in about eight NumPy passes on one core;
here forward reads the logits once per row for its maximum and once for the sum of exponentials, keeps
only the per-row ``log sum exp`` (N floats) and recomputes the softmax in backward. Measured on a
language model's head (2048 x 1000 logits, 2 threads, in-process): forward 3.6 -> 1.3 ms, forward +
backward 7.9 -> 3.9 ms (PyTorch's: 0.8 and 3.1 ms).
"""
from __future__ import annotations

from deepbox import kernels
from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.kernels import switch, threads
from deepbox.ops.loss import CrossEntropyFn

__all__ = ["CrossEntropyKernelFn"]


def _array(t):
    return getattr(t, "_data", t)


@kernels.fast_twin(CrossEntropyFn)
class CrossEntropyKernelFn(Function):
    """Cross-entropy of (N, C) logits against class indices, on compiled row kernels; see ``CrossEntropyFn``."""

    @staticmethod
    def accepts(x, target, weight=None, label_smoothing=0.0):
        x, target = _array(x), _array(target)
        return (x.ndim == 2 and x.size > 0 and x.flags.c_contiguous and weight is None
                and target.ndim == 1 and target.dtype.kind in "iu" and switch.kernels_for(x) is not None)

    @staticmethod
    def forward(ctx, x, target, weight=None, *, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        n, C = x.shape
        if target.shape != (n,):
            raise ValueError(f"Expected target of shape {(n,)} (class indices) for input of shape {x.shape}, "
                             f"got {target.shape}")
        t = target.astype(xp.int64, copy=False)
        keep = t != ignore_index
        bad = keep & ((t < 0) | (t >= C))
        if bad.any():
            raise IndexError(f"Target {int(t[bad][0])} is out of bounds (expected class indices in [0, {C - 1}]).")
        ctx.compiled = K = switch.kernels()   # backward runs the same loops, whatever the switch says then
        lse = xp.empty(n, x.dtype)
        loss = xp.empty(n)
        work = threads.split_work(x.size, 1.0)
        threads.parallel(K.cross_entropy_fwd, n, x, x.max(axis=1), t, ignore_index, float(label_smoothing), lse, loss,
                         work=work)
        ctx.save_for_backward(x)
        ctx.t, ctx.lse, ctx.ignore, ctx.reduction, ctx.work = t, lse, ignore_index, reduction, work
        ctx.eps = float(label_smoothing)
        if reduction == "none":
            return loss.astype(x.dtype)
        total = loss.sum()
        if reduction == "sum":
            return xp.asarray(total, dtype=x.dtype)
        count = int(keep.sum())
        ctx.scale = 1.0 / count if count else 0.0   # every row ignored: loss NaN, gradient 0 (as PyTorch)
        with xp.errstate(invalid="ignore", divide="ignore"):
            return xp.asarray(total / count if count else xp.nan, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        n = x.shape[0]
        if ctx.reduction == "none":
            up = grad.astype(x.dtype).reshape(n)
        else:
            scale = ctx.scale if ctx.reduction == "mean" else 1.0
            up = xp.full(n, float(grad) * scale, x.dtype)
        g = xp.empty_like(x)
        threads.parallel(ctx.compiled.cross_entropy_bwd, n, x, ctx.t, ctx.ignore, ctx.eps, ctx.lse, up, g,
                         work=ctx.work)
        return g, None, None
