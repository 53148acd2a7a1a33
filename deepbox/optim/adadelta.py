"""Adadelta: step sizes from the ratio of running RMS of past updates and of gradients."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim.optimizer import (
    Optimizer,
    _bump_version,
    _check_lr,
    _effective_grad,
    _step_tensor,
    _to_scalar,
    _zeros_state,
)

xp = backend.xp


class Adadelta(Optimizer):
    r"""Adadelta (``torch.optim.Adadelta``).

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``):

    .. code-block:: text

        g <- g + weight_decay * theta                           (if weight_decay != 0)
        v <- rho * v + (1 - rho) * g^2
        delta <- sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho * u + (1 - rho) * delta^2
        theta <- theta - lr * delta

    Args:
        params: parameters or parameter groups to optimise.
        lr: scale applied to delta (default 1.0).
        rho: decay rate of the running averages (default 0.9).
        eps: added inside the square roots for numerical stability (default 1e-6).
        weight_decay: L2 penalty (default 0).
        maximize: maximise the objective instead of minimising it.
        foreach, capturable, differentiable: accepted for compatibility with PyTorch code.

    State per parameter: ``step``, ``square_avg`` (v) and ``acc_delta`` (u).
    """

    def __init__(self, params, lr=1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach: bool | None = None, *, capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_fill = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            rho, eps, wd, maximize = group["rho"], group["eps"], group["weight_decay"], group["maximize"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                d = p._data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["square_avg"] = _zeros_state(p)
                    state["acc_delta"] = _zeros_state(p)
                state["step"]._data += 1
                g = _effective_grad(ws, d, p._grad._data, maximize, wd)
                v = state["square_avg"]._data
                u = state["acc_delta"]._data
                tmp = ws.get(2, g)
                v *= rho
                xp.multiply(g, g, out=tmp)
                tmp *= 1 - rho
                v += tmp
                std = ws.get(3, g)
                xp.add(v, eps, out=std)
                xp.sqrt(std, out=std)
                delta = ws.get(4, g)
                xp.add(u, eps, out=delta)
                xp.sqrt(delta, out=delta)
                delta /= std
                delta *= g
                u *= rho
                xp.multiply(delta, delta, out=tmp)
                tmp *= 1 - rho
                u += tmp
                delta *= lr
                d -= delta
                _bump_version(p)
        return loss
