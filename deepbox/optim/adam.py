"""Adam: per-parameter step sizes from running averages of the gradient and its square."""
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
from deepbox.tensor import Tensor

xp = backend.xp


class Adam(Optimizer):
    r"""Adam (``torch.optim.Adam``), with the AMSGrad variant and L2 or decoupled weight decay.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``), at step t:

    .. code-block:: text

        theta <- theta * (1 - lr * weight_decay)     if decoupled_weight_decay   (AdamW)
        g <- g + weight_decay * theta                otherwise, if weight_decay != 0
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)                       if amsgrad (and v_max is used below for v)
        theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        params: parameters or parameter groups to optimise.
        lr: learning rate (default 1e-3).
        betas: decay rates of the running averages of the gradient and of its square (default (0.9, 0.999)).
        eps: added to the denominator for numerical stability (default 1e-8).
        weight_decay: L2 penalty, or the decoupled decay rate when ``decoupled_weight_decay`` (default 0).
        amsgrad: use the running maximum of ``v`` (AMSGrad).
        maximize: maximise the objective instead of minimising it.
        decoupled_weight_decay: decay the weights directly, as AdamW does.
        foreach, capturable, differentiable, fused: accepted for compatibility with PyTorch code.

    State per parameter: ``step`` (0-d float32 tensor), ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        betas = tuple(_to_scalar(b) for b in betas)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
            for p in group["params"]:
                st = self.state.get(p)
                if st and not isinstance(st.get("step"), Tensor):
                    st["step"] = _step_tensor(float(st["step"]))

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        ws = self._ws
        get = ws.get
        multiply, sqrt, divide, subtract = xp.multiply, xp.sqrt, xp.divide, xp.subtract
        for group in self.param_groups:
            lr = _to_scalar(group["lr"])
            beta1, beta2 = (_to_scalar(b) for b in group["betas"])
            eps = group["eps"]
            wd = group["weight_decay"]
            amsgrad = group["amsgrad"]
            maximize = group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            one_m_b1, one_m_b2 = 1 - beta1, 1 - beta2
            for p in group["params"]:
                if p._grad is None:
                    continue
                d = p._data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _step_tensor()
                    state["exp_avg"] = _zeros_state(p)
                    state["exp_avg_sq"] = _zeros_state(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = _zeros_state(p)
                step_arr = state["step"]._data
                step_arr += 1
                step = float(step_arr)
                if decoupled:
                    g = _effective_grad(ws, d, p._grad._data, maximize, 0)
                    if wd != 0:
                        d *= 1 - lr * wd
                else:
                    g = _effective_grad(ws, d, p._grad._data, maximize, wd)
                m = state["exp_avg"]._data
                v = state["exp_avg_sq"]._data
                tmp = get(2, g)
                # m <- m + (1 - beta1) (g - m): PyTorch's lerp, the same value as beta1 m + (1 - beta1) g
                subtract(g, m, out=tmp)
                tmp *= one_m_b1
                m += tmp
                v *= beta2
                multiply(g, g, out=tmp)
                tmp *= one_m_b2
                v += tmp
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2**0.5
                if amsgrad:
                    vmax = state["max_exp_avg_sq"]._data
                    xp.maximum(vmax, v, out=vmax)
                    v = vmax
                sqrt(v, out=tmp)
                tmp /= bias_correction2_sqrt
                tmp += eps
                divide(m, tmp, out=tmp)
                tmp *= step_size
                d -= tmp
                _bump_version(p)
        return loss
