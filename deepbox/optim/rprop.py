"""Rprop: a per-weight step size that grows while the gradient keeps its sign and shrinks when it flips."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim._adam_family import plain_grad
from deepbox.optim.optimizer import Optimizer, _bump_version, _check_lr, _step_tensor, _to_scalar, _zeros_state
from deepbox.tensor import _make

xp = backend.xp


class Rprop(Optimizer):
    r"""Resilient backpropagation (``torch.optim.Rprop``; Riedmiller and Braun, 1993).

    Only the sign of the gradient is used:

    .. code-block:: text

        s = sign(g * g_prev)
        step <- clamp(step * (etaplus if s > 0, etaminus if s < 0, 1 if s == 0), step_min, step_max)
        g <- 0 where s < 0                       (after a sign flip, wait one step)
        theta <- theta - sign(g) * step;   g_prev <- g

    Args: params, lr (the initial step, 1e-2), etas ((etaminus, etaplus) = (0.5, 1.2)),
    step_sizes ((min, max) = (1e-6, 50)), maximize; capturable, foreach, differentiable: accepted.
    State: ``step``, ``prev``, ``step_size``.
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, {"lr": lr, "etas": tuple(etas), "step_sizes": tuple(step_sizes),
                                  "maximize": maximize, "foreach": foreach, "capturable": capturable,
                                  "differentiable": differentiable})

    _group_fill = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            step_min, step_max = group["step_sizes"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["prev"] = _zeros_state(p)
                    state["step_size"] = _make(xp.full_like(p._data, _to_scalar(group["lr"])))
                state["step"]._data += 1
                g = plain_grad(p, group["maximize"])
                prev, step_size = state["prev"]._data, state["step_size"]._data
                s = xp.sign(g * prev)
                factor = xp.where(s > 0, etaplus, xp.where(s < 0, etaminus, 1.0)).astype(p._data.dtype)
                step_size *= factor
                xp.clip(step_size, step_min, step_max, out=step_size)
                g[s < 0] = 0
                p._data -= xp.sign(g) * step_size
                prev[...] = g
                _bump_version(p)
        return loss
