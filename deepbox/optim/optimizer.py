"""``Optimizer``: the base class of every optimiser, with PyTorch's param groups and state layout.

An optimiser holds ``param_groups`` (a list of dicts, each with a ``"params"`` list and its own
hyperparameters, defaults filled in from ``defaults``) and ``state`` (a dict keyed by parameter,
filled lazily on the first step). ``state_dict()`` replaces parameters by their index in the
order they appear across the groups, exactly as ``torch.optim`` does, so a checkpoint of
either framework has the same layout.

Updates run in place on the raw arrays (``p._data``) with NumPy ufuncs writing into ``out=``
buffers: no graph is recorded, no float64 temporaries are made for float32 parameters, and the
scratch arrays that an update needs are reused from one step to the next (``_Scratch``).
"""
from __future__ import annotations

import copy
import functools
import math
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from itertools import chain
from typing import Any

from deepbox import backend
from deepbox.autograd import grad_mode
from deepbox.kernels.workspace import workspace as _pool
from deepbox.tensor import Tensor, _make

xp = backend.xp


class _RequiredParameter:
    """Marks a default that every param group must set (``torch.optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _to_scalar(x):
    """A learning rate or beta given as a one-element tensor, as a Python float."""
    if isinstance(x, Tensor):
        if x._data.size != 1:
            raise ValueError(f"expected a one-element tensor, got shape {tuple(x.shape)}")
        return float(x._data.reshape(()))
    return x


def _check_lr(lr) -> None:
    if isinstance(lr, Tensor) and lr._data.size != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _to_scalar(lr):
        raise ValueError(f"Invalid learning rate: {_to_scalar(lr)}")


def _check_finite_options(group: dict) -> None:
    """Refuse an infinite (or NaN) lr, momentum or weight_decay: the first step would turn the weights to
    NaN. PyTorch accepts infinities here and fails later; deepbox raises at once, with PyTorch's type."""
    for name in ("lr", "momentum", "weight_decay"):
        value = group.get(name)
        if value is None or value is required or isinstance(value, bool):
            continue
        try:
            v = float(_to_scalar(value))
        except (TypeError, ValueError):
            continue  # a type the optimiser's own checks speak about
        if not math.isfinite(v):
            raise ValueError(f"Invalid {name} value: {v}; expected a finite number")


def _check_nonneg(value, what: str) -> None:
    if not 0.0 <= value:
        raise ValueError(f"Invalid {what}: {value}")


class _Scratch:
    """The scratch arrays of an update, one per slot, reused from step to step.

    A fresh temporary the size of a large weight page-faults on every step; large ones come from
    the fast layer's shared pool of buffers instead (``deepbox/kernels/workspace.py``).
    """

    __slots__ = ()

    def get(self, slot: int, like):
        return _pool.get(like.shape, like.dtype, tag=("optim", slot))


class _Handle:
    """Removes a registered hook (``torch.utils.hooks.RemovableHandle``)."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict):
        self._hooks = hooks
        self.id = _Handle._next_id
        _Handle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _wrap_step(step: Callable) -> Callable:
    """Run the step hooks around a subclass's ``step`` (the hooks are rare, so check cheaply)."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        pre, post = self._optimizer_step_pre_hooks, self._optimizer_step_post_hooks
        if pre:
            for hook in list(pre.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            f"optimizer step pre-hook must return None or a tuple of (new_args, new_kwargs), "
                            f"but got {result}"
                        )
                    args, kwargs = result
        out = step(self, *args, **kwargs)
        if post:
            for hook in list(post.values()):
                hook(self, args, kwargs)
        return out

    wrapper._hooked_step = True
    return wrapper


class Optimizer:
    """Base class of all optimisers.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs (as from ``named_parameters()``),
            or of dicts, each a parameter group with a ``"params"`` entry and options that override
            ``defaults`` for that group.
        defaults: the default value of every option of this optimiser.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked_step", False):
            cls.step = _wrap_step(step)

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._ws = _Scratch()
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ pickling / printing
    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    # options that older state dicts may lack, filled in when one is loaded (each optimiser lists its own)
    _group_fill: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for group in self.__dict__.get("param_groups", ()):
            for key, value in self._group_fill.items():
                group.setdefault(key, value)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                     "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        if "_ws" not in self.__dict__:
            self._ws = _Scratch()
        self.defaults.setdefault("differentiable", False)

    def __repr__(self) -> str:
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. to unfreeze layers while fine-tuning).

        Raises:
            TypeError: the group is not a dict, its params are a set, or one of them is not a tensor.
            ValueError: a parameter is not a leaf, a required option is missing, or a parameter is
                already in another group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of "
                "tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple):
                names.append(p[0])
                tensors.append(p[1])
            else:
                tensors.append(p)
        param_group = dict(param_group)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            param_group["param_names"] = names
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but param {i} is {type(p).__name__}")
            if not self.defaults.get("differentiable", False) and not (p.is_leaf or p.retains_grad):
                raise ValueError(f"can't optimize a non-leaf Tensor (param {i} of the group has a grad_fn)")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        _check_finite_options(param_group)
        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            import warnings

            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; each parameter is "
                "updated once per occurrence",
                stacklevel=3,
            )
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                txt = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {txt} to the optimizer"
                )
        clash = [i for i, pid in enumerate(ids) if pid in seen]
        if clash:
            raise ValueError(
                "some parameters appear in more than one parameter group "
                f"(positions {clash} of the new group are already optimized)"
            )
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ gradients
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters: to ``None`` by default, else to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p._grad
                if g is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    if g._ctx is not None:
                        g.detach_()
                    g.requires_grad = False
                    arr = g._data
                    if arr.flags.writeable:
                        arr.fill(0)
                    else:  # a read-only broadcast view that the engine handed over: replace it
                        g._data = xp.zeros(arr.shape, arr.dtype)

    def step(self, closure: Callable[[], Any] | None = None):
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        raise NotImplementedError

    @staticmethod
    def _run_closure(closure):
        if closure is None:
            return None
        with grad_mode.enable_grad():
            return closure()

    # ------------------------------------------------------------------ hooks
    def register_step_pre_hook(self, hook) -> _Handle:
        """``hook(optimizer, args, kwargs)`` runs before each ``step``; it may return new (args, kwargs)."""
        h = _Handle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[h.id] = hook
        return h

    def register_step_post_hook(self, hook) -> _Handle:
        """``hook(optimizer, args, kwargs)`` runs after each ``step``."""
        h = _Handle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[h.id] = hook
        return h

    def register_state_dict_pre_hook(self, hook, prepend: bool = False) -> _Handle:
        h = _Handle(self._optimizer_state_dict_pre_hooks)
        self._optimizer_state_dict_pre_hooks[h.id] = hook
        if prepend:
            self._optimizer_state_dict_pre_hooks.move_to_end(h.id, last=False)
        return h

    def register_state_dict_post_hook(self, hook, prepend: bool = False) -> _Handle:
        h = _Handle(self._optimizer_state_dict_post_hooks)
        self._optimizer_state_dict_post_hooks[h.id] = hook
        if prepend:
            self._optimizer_state_dict_post_hooks.move_to_end(h.id, last=False)
        return h

    def register_load_state_dict_pre_hook(self, hook, prepend: bool = False) -> _Handle:
        h = _Handle(self._optimizer_load_state_dict_pre_hooks)
        self._optimizer_load_state_dict_pre_hooks[h.id] = hook
        if prepend:
            self._optimizer_load_state_dict_pre_hooks.move_to_end(h.id, last=False)
        return h

    def register_load_state_dict_post_hook(self, hook, prepend: bool = False) -> _Handle:
        h = _Handle(self._optimizer_load_state_dict_post_hooks)
        self._optimizer_load_state_dict_post_hooks[h.id] = hook
        if prepend:
            self._optimizer_load_state_dict_post_hooks.move_to_end(h.id, last=False)
        return h

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state as ``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are numbered in the order they appear across the groups; the state tensors are
        the live ones (save or copy them before stepping again), as in PyTorch.
        """
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        mapping: dict[int, int] = {}
        start = 0

        def pack_group(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            mapping.update({id(p): i for i, p in enumerate(group["params"], start) if id(p) not in mapping})
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        sd = {"state": packed_state, "param_groups": param_groups}
        for hook in self._optimizer_state_dict_post_hooks.values():
            result = hook(self, sd)
            if result is not None:
                sd = result
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from ``state_dict()`` (of deepbox, or PyTorch's converted to deepbox tensors).

        The groups must match this optimiser's in number and size; state tensors are copied and cast
        to their parameter's dtype (except ``step``). Raises ``ValueError`` naming the mismatch
        before anything changes.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            keys = list(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"optimizer state_dict must be a dict with keys 'state' and 'param_groups', got {keys}")
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups: {len(saved_groups)} saved, "
                f"{len(groups)} in this optimizer"
            )
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size of optimizer's "
                    f"group: group {i} has {len(sg['params'])} saved parameters, {len(g['params'])} here"
                )
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        for k, v in state_dict["state"].items():
            if k in id_map:
                self._check_state_shapes(k, id_map[k], v)

        def cast(param, value, key=None):
            if isinstance(value, Tensor):
                arr = value._data
                if key != "step" and param._data.dtype.kind == "f" and arr.dtype != param._data.dtype:
                    return _make(arr.astype(param._data.dtype))
                return _make(arr.copy())
            if isinstance(value, dict):
                return {k: cast(param, v, key=k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v) for v in value)
            return value

        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = cast(param, v)
            else:
                state[k] = v

        def update_group(group, new_group):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)

    @staticmethod
    def _check_state_shapes(index, param, value) -> None:
        # a state tensor the size of its parameter must have the parameter's shape; catching it here
        # gives a message naming the entry instead of a broadcasting error in a later step
        if not isinstance(value, dict):
            return
        for key, v in value.items():
            if isinstance(v, Tensor) and key in _PARAM_SHAPED and v._data.shape != param._data.shape:
                raise ValueError(
                    f"loaded state for parameter {index} has {key!r} of shape {tuple(v.shape)}, "
                    f"but the parameter has shape {tuple(param.shape)}"
                )


# state entries that always have their parameter's shape
_PARAM_SHAPED = frozenset(
    ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "grad_avg", "sum", "acc_delta",
     "exp_inf", "prev", "step_size", "ax")
)


def _bump_version(p: Tensor) -> None:
    # an optimiser step changes the parameter in place, as PyTorch's add_ does: a graph that saved
    # the old value must refuse to backpropagate through it
    p._version[0] += 1


def _zeros_state(p: Tensor) -> Tensor:
    return _make(xp.zeros_like(p._data))


def _step_tensor(value: float = 0.0) -> Tensor:
    """The per-parameter step counter: a 0-d float32 tensor, as PyTorch stores it."""
    return _make(xp.array(value, dtype=xp.float32))


def _effective_grad(ws: _Scratch, param, grad, maximize: bool, weight_decay: float):
    """The gradient an update uses: ``-grad`` when maximizing, plus ``weight_decay * param`` (L2).

    Works on raw arrays and never writes into ``grad`` (it belongs to the parameter); when the
    result differs from ``grad`` it lives in scratch slot 0, and slot 1 is used on the way.
    """
    if maximize:
        out = ws.get(0, grad)
        xp.negative(grad, out=out)
        grad = out
    if weight_decay != 0:
        out = ws.get(0, grad)
        tmp = ws.get(1, grad)
        xp.multiply(param, weight_decay, out=tmp)
        xp.add(grad, tmp, out=out)
        grad = out
    return grad
