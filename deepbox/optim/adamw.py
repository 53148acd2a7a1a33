"""AdamW: Adam with weight decay applied to the weights directly, not through the gradient."""
from __future__ import annotations

from deepbox.optim.adam import Adam


class AdamW(Adam):
    r"""AdamW (``torch.optim.AdamW``): Adam whose weight decay does not pass through the moment estimates.

    Each step first shrinks the weights, ``theta <- theta * (1 - lr * weight_decay)``, then takes the
    Adam step of :class:`Adam` with the raw gradient (see there for the full rule).

    Args:
        params: parameters or parameter groups to optimise.
        lr: learning rate (default 1e-3).
        betas: decay rates of the running averages (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: decoupled weight decay rate (default 1e-2).
        amsgrad: use the AMSGrad variant.
        maximize: maximise the objective instead of minimising it.
        foreach, capturable, differentiable, fused: accepted for compatibility with PyTorch code.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
