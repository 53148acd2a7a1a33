"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim.optimizer import Optimizer, _bump_version, _check_lr, _effective_grad, _to_scalar
from deepbox.tensor import _make

xp = backend.xp


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (``torch.optim.SGD``).

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``):

    .. code-block:: text

        g <- g + weight_decay * theta                     (if weight_decay != 0)
        b <- g                                            (first step)
        b <- momentum * b + (1 - dampening) * g           (later steps, if momentum != 0)
        g <- g + momentum * b   if nesterov   else   g <- b
        theta <- theta - lr * g

    Args:
        params: parameters or parameter groups to optimise.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening of the momentum (default 0).
        weight_decay: L2 penalty (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: maximise the objective instead of minimising it.
        foreach, differentiable, fused: accepted for compatibility with PyTorch code; deepbox always
            runs its one in-place NumPy update.

    State per parameter: ``momentum_buffer`` (only when momentum != 0).
    """

    def __init__(self, params, lr=1e-3, momentum: float = 0, dampening: float = 0, weight_decay: float = 0,
                 nesterov: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        _check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                    "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Nesterov momentum requires a momentum and zero dampening (got momentum={momentum}, "
                f"dampening={dampening})"
            )
        super().__init__(params, defaults)

    _group_fill = {"nesterov": False, "maximize": False, "foreach": None, "differentiable": False, "fused": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            wd = _to_scalar(group["weight_decay"])
            momentum = group["momentum"]
            dampening = group["dampening"]
            nesterov = group["nesterov"]
            maximize = group["maximize"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                d = p._data
                g = _effective_grad(ws, d, p._grad._data, maximize, wd)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        state["momentum_buffer"] = _make(xp.array(g))  # an ndarray even for a 0-d parameter
                        b = state["momentum_buffer"]._data
                    else:
                        b = buf._data
                        b *= momentum
                        if dampening == 0:
                            b += g
                        else:
                            tmp = ws.get(2, g)
                            xp.multiply(g, 1 - dampening, out=tmp)
                            b += tmp
                    if nesterov:
                        tmp = ws.get(2, g)
                        xp.multiply(b, momentum, out=tmp)
                        tmp += g
                        g = tmp
                    else:
                        g = b
                tmp = ws.get(3, g)
                xp.multiply(g, lr, out=tmp)
                d -= tmp
                _bump_version(p)
        return loss
