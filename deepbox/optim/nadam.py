"""NAdam: Adam with Nesterov momentum, the momentum factor warming up over the first steps."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim._adam_family import check_adam_args, plain_grad
from deepbox.optim.optimizer import Optimizer, _bump_version, _step_tensor, _to_scalar, _zeros_state
from deepbox.tensor import _make

xp = backend.xp


class NAdam(Optimizer):
    r"""NAdam (``torch.optim.NAdam``; Dozat, 2016).

    .. code-block:: text

        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))       (the momentum schedule)
        m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
        denom = sqrt(v / (1 - beta2^t)) + eps
        theta <- theta - lr * (1 - mu_t) / (1 - prod_{i<=t} mu_i) * g / denom
                       - lr * mu_{t+1} / (1 - prod_{i<=t+1} mu_i) * m / denom

    Args:
        params, lr (default 2e-3), betas (default (0.9, 0.999)), eps (default 1e-8),
        weight_decay (L2, or decoupled as in AdamW when ``decoupled_weight_decay``),
        momentum_decay (default 4e-3), maximize; foreach, capturable, differentiable: accepted.

    State per parameter: ``step``, ``mu_product`` (0-d float32, as PyTorch), ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        betas = check_adam_args(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize, "foreach": foreach, "capturable": capturable,
                                  "differentiable": differentiable})

    _group_fill = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                   "decoupled_weight_decay": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd, eps, decay = group["weight_decay"], group["eps"], group["momentum_decay"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["mu_product"] = _make(xp.array(1.0, dtype=xp.float32))
                    state["exp_avg"] = _zeros_state(p)
                    state["exp_avg_sq"] = _zeros_state(p)
                state["step"]._data += 1
                t = float(state["step"]._data)
                if decoupled and wd != 0:
                    p._data *= 1 - lr * wd
                g = plain_grad(p, group["maximize"], 0.0 if decoupled else wd)
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
                mu_product = state["mu_product"]._data
                mu_product *= mu  # kept in float32, as PyTorch keeps it
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                m += (g - m) * (1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                denom = xp.sqrt(v / (1 - beta2 ** t)) + eps
                prod = float(mu_product)
                p._data += (-lr * (1.0 - mu) / (1.0 - prod)) * g / denom
                p._data += (-lr * mu_next / (1.0 - prod * mu_next)) * m / denom
                _bump_version(p)
        return loss
