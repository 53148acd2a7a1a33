"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""
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


class RMSprop(Optimizer):
    r"""RMSprop (``torch.optim.RMSprop``), optionally centered and with momentum.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``):

    .. code-block:: text

        g <- g + weight_decay * theta                    (if weight_decay != 0)
        v <- alpha * v + (1 - alpha) * g^2
        avg <- sqrt(v - ga^2) + eps   with ga <- alpha * ga + (1 - alpha) * g     if centered
        avg <- sqrt(v) + eps                                                       otherwise
        b <- momentum * b + g / avg;  theta <- theta - lr * b                      if momentum > 0
        theta <- theta - lr * g / avg                                              otherwise

    Args:
        params: parameters or parameter groups to optimise.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the squared-gradient average (default 0.99).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by an estimate of the gradient's variance instead of its second moment.
        maximize: maximise the objective instead of minimising it.
        capturable, foreach, differentiable: accepted for compatibility with PyTorch code.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0) and
    ``grad_avg`` (centered).
    """

    def __init__(self, params, lr=1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_fill = {"momentum": 0, "centered": False, "foreach": None, "maximize": False, "differentiable": False,
                   "capturable": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            alpha, eps, wd = group["alpha"], group["eps"], group["weight_decay"]
            momentum, centered, maximize = group["momentum"], group["centered"], group["maximize"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                d = p._data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["square_avg"] = _zeros_state(p)
                    if momentum > 0:
                        state["momentum_buffer"] = _zeros_state(p)
                    if centered:
                        state["grad_avg"] = _zeros_state(p)
                state["step"]._data += 1
                g = _effective_grad(ws, d, p._grad._data, maximize, wd)
                v = state["square_avg"]._data
                tmp = ws.get(2, g)
                v *= alpha
                xp.multiply(g, g, out=tmp)
                tmp *= 1 - alpha
                v += tmp
                avg = ws.get(3, g)
                if centered:
                    ga = state["grad_avg"]._data
                    xp.subtract(g, ga, out=tmp)
                    tmp *= 1 - alpha
                    ga += tmp
                    xp.multiply(ga, ga, out=tmp)
                    xp.subtract(v, tmp, out=avg)
                    xp.sqrt(avg, out=avg)
                else:
                    xp.sqrt(v, out=avg)
                avg += eps
                xp.divide(g, avg, out=tmp)
                if momentum > 0:
                    b = state["momentum_buffer"]._data
                    b *= momentum
                    b += tmp
                    xp.multiply(b, lr, out=tmp)
                else:
                    tmp *= lr
                d -= tmp
                _bump_version(p)
        return loss
