"""Adagrad: step sizes that shrink with the sum of a parameter's squared gradients."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim.optimizer import Optimizer, _bump_version, _check_lr, _effective_grad, _step_tensor, _to_scalar
from deepbox.tensor import _make

xp = backend.xp


class Adagrad(Optimizer):
    r"""Adagrad (``torch.optim.Adagrad``).

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``), at step t:

    .. code-block:: text

        g <- g + weight_decay * theta                  (if weight_decay != 0)
        lr_t <- lr / (1 + (t - 1) * lr_decay)
        s <- s + g^2                                    (s starts at initial_accumulator_value)
        theta <- theta - lr_t * g / (sqrt(s) + eps)

    Args:
        params: parameters or parameter groups to optimise.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay (default 0).
        weight_decay: L2 penalty (default 0).
        initial_accumulator_value: starting value of the sum of squares (default 0).
        eps: added to the denominator for numerical stability (default 1e-10).
        maximize: maximise the objective instead of minimising it.
        foreach, differentiable, fused: accepted for compatibility with PyTorch code.

    State per parameter (made at construction, as in PyTorch): ``step`` and ``sum``.
    """

    def __init__(self, params, lr=1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        _check_lr(lr)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group["initial_accumulator_value"])

    def _init_state(self, p, initial_accumulator_value) -> None:
        state = self.state[p]
        state["step"] = _step_tensor()
        state["sum"] = _make(xp.full_like(p._data, initial_accumulator_value))

    _group_fill = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            lr_decay, eps, wd, maximize = group["lr_decay"], group["eps"], group["weight_decay"], group["maximize"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                d = p._data
                state = self.state[p]
                if len(state) == 0:  # a group added after construction
                    self._init_state(p, self.defaults["initial_accumulator_value"])
                step_arr = state["step"]._data
                step_arr += 1
                step = float(step_arr)
                g = _effective_grad(ws, d, p._grad._data, maximize, wd)
                clr = lr / (1 + (step - 1) * lr_decay)
                s = state["sum"]._data
                tmp = ws.get(2, g)
                xp.multiply(g, g, out=tmp)
                s += tmp
                std = ws.get(3, g)
                xp.sqrt(s, out=std)
                std += eps
                xp.divide(g, std, out=tmp)
                tmp *= clr
                d -= tmp
                _bump_version(p)
        return loss
