"""Argument checks and the plain gradient shared by the Adam-family optimisers written with NumPy alone."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim.optimizer import _check_lr, _to_scalar

xp = backend.xp


def check_adam_args(lr, betas, eps, weight_decay) -> tuple:
    """PyTorch's checks and messages; returns ``betas`` as floats."""
    _check_lr(lr)
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    betas = tuple(_to_scalar(b) for b in betas)
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    return betas


def plain_grad(p, maximize: bool, weight_decay: float = 0.0):
    """The gradient an update uses, as a new array: -grad when maximising, plus weight_decay * theta (L2)."""
    g = xp.array(p._grad._data, copy=True)  # an ndarray even for 0-d parameters
    if maximize:
        xp.negative(g, out=g)
    if weight_decay != 0:
        g += weight_decay * p._data
    return g
