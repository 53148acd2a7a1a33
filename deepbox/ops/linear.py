"""Fully connected layers: ``x @ W.T + b`` and the bilinear form, forward and backward side by side."""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function

xp = backend.xp

__all__ = ["LinearFn", "BilinearFn"]


class LinearFn(Function):
    """``y = x @ W.T + b`` for ``x`` of shape ``(*, in)``, ``W`` ``(out, in)``, ``b`` ``(out,)``.

    forward: one GEMM over all leading dimensions at once, ``(M, in) @ (in, out)``.
    backward: ``dx = g @ W``, ``dW = g.T @ x``, ``db`` the column sums of ``g`` (as a matrix-vector
    product with a ones vector, which BLAS runs much faster than ``sum(axis=0)``).
    """

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        out2 = (x if x.ndim == 2 else x.reshape(-1, x.shape[-1])) @ w.T
        if b is not None:
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
