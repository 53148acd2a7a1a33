"""RAdam: Adam whose adaptive step is switched on only once the variance of its estimate is bounded."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim._adam_family import check_adam_args, plain_grad
from deepbox.optim.optimizer import Optimizer, _bump_version, _step_tensor, _to_scalar, _zeros_state

xp = backend.xp


class RAdam(Optimizer):
    r"""Rectified Adam (``torch.optim.RAdam``; Liu et al., 2020).

    .. code-block:: text

        m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
        rho_inf = 2 / (1 - beta2) - 1;      rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:   r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                        theta <- theta - lr * m / (1 - beta1^t) * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps)
        else:           theta <- theta - lr * m / (1 - beta1^t)          (plain momentum SGD while warming up)

    Args: params, lr (1e-3), betas ((0.9, 0.999)), eps (1e-8), weight_decay, decoupled_weight_decay,
    maximize; foreach, capturable, differentiable: accepted.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        betas = check_adam_args(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                                  "foreach": foreach, "capturable": capturable, "differentiable": differentiable})

    _group_fill = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                   "decoupled_weight_decay": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd, eps, decoupled = group["weight_decay"], group["eps"], group["decoupled_weight_decay"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["exp_avg"] = _zeros_state(p)
                    state["exp_avg_sq"] = _zeros_state(p)
                state["step"]._data += 1
                t = float(state["step"]._data)
                if decoupled and wd != 0:
                    p._data *= 1 - lr * wd
                g = plain_grad(p, group["maximize"], 0.0 if decoupled else wd)
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                m += (g - m) * (1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                bias_correction2 = 1 - beta2 ** t
                corrected_m = m / (1 - beta1 ** t)
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * t * (beta2 ** t) / bias_correction2
                if rho_t > 5.0:
                    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                    adaptive = bias_correction2 ** 0.5 / (xp.sqrt(v) + eps)
                    p._data -= corrected_m * lr * adaptive * rect
                else:
                    p._data -= corrected_m * lr
                _bump_version(p)
        return loss
