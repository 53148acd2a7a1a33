"""Dropout: ``x * mask``, the mask already scaled by ``1 / (1 - p)`` (drawn in ``nn.functional``)."""
from __future__ import annotations

from deepbox.autograd.function import Function

__all__ = ["DropoutFn"]


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
