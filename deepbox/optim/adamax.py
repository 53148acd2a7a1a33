"""Adamax: Adam with the infinity norm of past gradients in place of their root mean square."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim._adam_family import check_adam_args, plain_grad
from deepbox.optim.optimizer import Optimizer, _bump_version, _step_tensor, _to_scalar, _zeros_state

xp = backend.xp


class Adamax(Optimizer):
    r"""Adamax (``torch.optim.Adamax``; Kingma and Ba, 2015, section 7).

    .. code-block:: text

        m <- beta1 * m + (1 - beta1) * g
        u <- max(beta2 * u, |g| + eps)
        theta <- theta - lr / (1 - beta1^t) * m / u

    Args: params, lr (2e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay (L2), maximize;
    foreach, capturable, differentiable: accepted. State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 foreach: bool | None = None, *, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        betas = check_adam_args(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize, "foreach": foreach, "capturable": capturable,
                                  "differentiable": differentiable})

    _group_fill = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["exp_avg"] = _zeros_state(p)
                    state["exp_inf"] = _zeros_state(p)
                state["step"]._data += 1
                t = float(state["step"]._data)
                g = plain_grad(p, group["maximize"], group["weight_decay"])
                m, u = state["exp_avg"]._data, state["exp_inf"]._data
                m += (g - m) * (1 - beta1)
                u *= beta2
                xp.maximum(u, xp.abs(g) + group["eps"], out=u)
                p._data -= (lr / (1 - beta1 ** t)) * m / u
                _bump_version(p)
        return loss
