"""Adam: per-parameter step sizes from running averages of the gradient and its square."""
from __future__ import annotations

from deepbox import backend, kernels
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

    _group_fill = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                   "decoupled_weight_decay": False, "fused": None}

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and not isinstance(st.get("step"), Tensor):
                    st["step"] = _step_tensor(float(st["step"]))

    # a group of at least this many small parameters is updated as one flat array (see _FlatAdamState)
    _flat_min_params = 4
    _flat_max_mean_numel = 1 << 16

    def step(self, closure=None):
        """Perform one step; ``closure`` (optional) re-evaluates the model and returns the loss."""
        loss = self._run_closure(closure)
        flat_cache = self.__dict__.setdefault("_flat", {})
        for gi, group in enumerate(self.param_groups):
            hp = _Hyper(group)
            params = [p for p in group["params"] if p._grad is not None]
            if not params:
                continue
            if len(params) >= self._flat_min_params and self._flat_step(flat_cache, gi, params, hp):
                continue
            for p in params:
                self._param_step(p, hp)
        return loss

    def _init_state(self, p, amsgrad: bool) -> dict:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _step_tensor()
            state["exp_avg"] = _zeros_state(p)
            state["exp_avg_sq"] = _zeros_state(p)
            if amsgrad:
                state["max_exp_avg_sq"] = _zeros_state(p)
        return state

    def _param_step(self, p, hp: _Hyper) -> None:
        d = p._data
        state = self._init_state(p, hp.amsgrad)
        step_arr = state["step"]._data
        step_arr += 1
        if hp.decoupled:
            g = _effective_grad(self._ws, d, p._grad._data, hp.maximize, 0)
            if hp.wd != 0:
                d *= 1 - hp.lr * hp.wd
        else:
            g = _effective_grad(self._ws, d, p._grad._data, hp.maximize, hp.wd)
        tmp = self._ws.get(2, g)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        vmax = state["max_exp_avg_sq"]._data if hp.amsgrad else None
        update = kernels.choose(adam_update, g, m, v, vmax, tmp)
        update(g, m, v, vmax, tmp, float(step_arr), hp)
        d -= tmp
        _bump_version(p)

    def _flat_step(self, flat_cache: dict, gi: int, params: list, hp: _Hyper) -> bool:
        """Update many small parameters at once: their moments live in one flat array per kind.

        The per-parameter state tensors are views into those arrays, so ``state`` and
        ``state_dict()`` keep PyTorch's layout; the gradients are gathered into one array and the
        update is scattered back, which costs a few microseconds per parameter instead of a dozen
        NumPy calls. Returns False (and the caller updates parameter by parameter) when the
        parameters differ in dtype or step count, repeat, or are large.
        """
        dtype = params[0]._data.dtype
        total = 0
        for p in params:
            if p._data.dtype != dtype or p._grad._data.dtype != dtype:
                return False
            total += p._data.size
        if total > self._flat_max_mean_numel * len(params):
            return False
        flat = flat_cache.get(gi)
        if flat is None or not flat.valid(self.state, params, hp.amsgrad):
            if len({id(p) for p in params}) != len(params):
                return False
            flat = _FlatAdamState(self, params, hp.amsgrad, dtype, total)
            flat_cache[gi] = flat
        steps = flat.steps
        if steps.size > 1 and steps.min() != steps.max():
            return False
        steps += 1
        g = xp.concatenate([p._grad._data.reshape(-1) for p in params])
        if hp.maximize:
            xp.negative(g, out=g)
        if hp.wd != 0 and not hp.decoupled:
            pf = xp.concatenate([p._data.reshape(-1) for p in params])
            pf *= hp.wd
            g += pf
        tmp = self._ws.get(2, g)
        update = kernels.choose(adam_update, g, flat.m, flat.v, flat.vmax, tmp)
        update(g, flat.m, flat.v, flat.vmax, tmp, float(steps[0]), hp)
        decay = 1 - hp.lr * hp.wd if hp.decoupled and hp.wd != 0 else None
        for p, (a, b) in zip(params, flat.spans):
            d = p._data
            if decay is not None:
                d *= decay
            d -= tmp[a:b].reshape(d.shape)
            p._version[0] += 1
        return True



class _Hyper:
    """One group's hyperparameters, read once per step."""

    __slots__ = ("lr", "beta1", "beta2", "eps", "wd", "amsgrad", "maximize", "decoupled")

    def __init__(self, group: dict):
        self.lr = _to_scalar(group["lr"])
        self.beta1, self.beta2 = (_to_scalar(b) for b in group["betas"])
        self.eps = group["eps"]
        self.wd = group["weight_decay"]
        self.amsgrad = group["amsgrad"]
        self.maximize = group["maximize"]
        self.decoupled = group["decoupled_weight_decay"]


def adam_update(g, m, v, vmax, out, step: float, hp: _Hyper) -> None:
    """Update the moments ``m``, ``v`` (and ``vmax``) in place and write the parameter decrement to ``out``.

    Eleven NumPy passes over the arrays; the fast twin (``deepbox/kernels/optim.py``) does the same
    operations in the same order in one compiled pass split over the threads.
    """
    beta1, beta2 = hp.beta1, hp.beta2
    # m <- m + (1 - beta1) (g - m): PyTorch's lerp, the same value as beta1 m + (1 - beta1) g
    xp.subtract(g, m, out=out)
    out *= 1 - beta1
    m += out
    v *= beta2
    xp.multiply(g, g, out=out)
    out *= 1 - beta2
    v += out
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = hp.lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    xp.sqrt(v, out=out)
    out /= bias_correction2_sqrt
    out += hp.eps
    xp.divide(m, out, out=out)
    out *= step_size


class _FlatAdamState:
    """The moments of a list of parameters as flat arrays, with the per-parameter state tensors as views."""

    __slots__ = ("state_obj", "ids", "spans", "m", "v", "vmax", "steps", "views")

    def __init__(self, opt: Adam, params: list, amsgrad: bool, dtype, total: int):
        self.state_obj = opt.state
        self.ids = [id(p) for p in params]
        self.m = xp.empty(total, dtype)
        self.v = xp.empty(total, dtype)
        self.vmax = xp.empty(total, dtype) if amsgrad else None
        self.steps = xp.empty(len(params), xp.float32)
        self.spans = []
        self.views = []
        offset = 0
        for i, p in enumerate(params):
            st = opt._init_state(p, amsgrad)
            if amsgrad and "max_exp_avg_sq" not in st:
                st["max_exp_avg_sq"] = _zeros_state(p)
            n = p._data.size
            span = (offset, offset + n)
            self.spans.append(span)
            kinds = [("exp_avg", self.m), ("exp_avg_sq", self.v)]
            if amsgrad:
                kinds.append(("max_exp_avg_sq", self.vmax))
            for key, flat in kinds:
                t = st[key]
                flat[span[0]:span[1]] = t._data.reshape(-1)
                t._data = flat[span[0]:span[1]].reshape(p._data.shape)
            self.steps[i] = float(st["step"]._data)
            st["step"]._data = self.steps[i:i + 1].reshape(())
            self.views.append((st, st["exp_avg"], st["step"]))
            offset += n

    def valid(self, state, params: list, amsgrad: bool) -> bool:
        """Whether the state still is these flat arrays (not replaced by load_state_dict or by hand)."""
        if state is not self.state_obj or len(params) != len(self.ids) or (self.vmax is None) == amsgrad:
            return False
        m, v, steps = self.m, self.v, self.steps
        for p, pid, (st, t_m, t_step) in zip(params, self.ids, self.views):
            if id(p) != pid or st.get("exp_avg") is not t_m or t_m._data.base is not m \
                    or st.get("step") is not t_step or t_step._data.base is not steps:
                return False
            t_v = st.get("exp_avg_sq")
            if t_v is None or t_v._data.base is not v:
                return False
            if amsgrad:
                t_max = st.get("max_exp_avg_sq")
                if t_max is None or t_max._data.base is not self.vmax:
                    return False
        return True
