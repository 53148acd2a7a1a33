"""ASGD: SGD with a decaying step size and a running (Polyak-Ruppert) average of the iterates."""
from __future__ import annotations

from deepbox import backend
from deepbox.optim._adam_family import plain_grad
from deepbox.optim.optimizer import Optimizer, _bump_version, _check_lr, _step_tensor, _to_scalar, _zeros_state
from deepbox.tensor import _make

xp = backend.xp


class ASGD(Optimizer):
    r"""Averaged SGD (``torch.optim.ASGD``; Polyak and Juditsky, 1992).

    .. code-block:: text

        theta <- theta * (1 - lambd * eta) - eta * g
        ax <- ax + mu * (theta - ax)        (ax = theta while mu == 1, i.e. before step t0)
        eta <- lr / (1 + lambd * lr * t)^alpha;   mu <- 1 / max(1, t - t0)

    ``state[p]["ax"]`` holds the averaged parameters, the estimate the method is known for.
    Args: params, lr (1e-2), lambd (1e-4), alpha (0.75), t0 (1e6), weight_decay (L2), maximize;
    foreach, capturable, differentiable: accepted. ``eta`` and ``mu`` are 0-d float32, as PyTorch keeps them.
    """

    def __init__(self, params, lr=1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                                  "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                                  "capturable": capturable})

    _group_fill = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False}

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            lambd, alpha, t0 = group["lambd"], group["alpha"], group["t0"]
            for p in group["params"]:
                if p._grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["eta"] = _make(xp.array(lr, dtype=xp.float32))
                    state["mu"] = _make(xp.array(1.0, dtype=xp.float32))
                    state["ax"] = _zeros_state(p)
                state["step"]._data += 1
                t = float(state["step"]._data)
                g = plain_grad(p, group["maximize"], group["weight_decay"])
                eta = float(state["eta"]._data)
                p._data *= 1 - lambd * eta
                p._data -= eta * g
                ax = state["ax"]._data
                mu = float(state["mu"]._data)
                if mu != 1:
                    ax += (p._data - ax) * mu
                else:
                    ax[...] = p._data
                state["eta"]._data[...] = lr / ((1 + lambd * lr * t) ** alpha)
                state["mu"]._data[...] = 1 / max(1, t - t0)
                _bump_version(p)
        return loss
