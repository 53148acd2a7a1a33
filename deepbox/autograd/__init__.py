"""Reverse-mode automatic differentiation: ``backward``, ``grad``, grad modes and ``gradcheck``.

deepbox computes first-order gradients: backward functions work on raw arrays
and build no graph of their own, so gradients of gradients (``create_graph=True``)
are not available.
"""
from __future__ import annotations

from deepbox.autograd.engine import backward, grad  # noqa: F401
from deepbox.autograd.function import AccumulateGrad, Function  # noqa: F401
from deepbox.autograd.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from deepbox.autograd.gradcheck import gradcheck, gradgradcheck  # noqa: F401
