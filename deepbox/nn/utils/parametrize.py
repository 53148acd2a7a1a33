"""Parametrizations (``torch.nn.utils.parametrize``): a module's tensor computed from other tensors.

``register_parametrization(module, "weight", P)`` keeps the original tensor as
``module.parametrizations.weight.original`` (or ``original0``, ``original1``, ... when
``P.right_inverse`` splits it, as weight norm does into magnitude and direction) and makes
``module.weight`` a property that returns ``P(original)`` each time it is read -- so the
optimiser updates the originals while the module's forward sees the constrained weight. The
module's class becomes a subclass ``Parametrized<Class>`` that carries those properties.
"""
from __future__ import annotations

import contextlib

import deepbox
from deepbox.nn.modules.container import ModuleDict, ModuleList
from deepbox.nn.modules.module import Module
from deepbox.nn.parameter import Parameter
from deepbox.tensor import Tensor

__all__ = ["ParametrizationList", "cached", "is_parametrized", "register_parametrization",
           "remove_parametrizations", "type_before_parametrizations"]

_cache_enabled = 0
_cache: dict = {}


@contextlib.contextmanager
def cached():
    """Inside this block each parametrized tensor is computed once, however often it is read."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to its original(s)."""

    def __init__(self, modules, original, unsafe: bool = False):
        super().__init__(modules)
        self.unsafe = unsafe
        with deepbox.no_grad():
            new = original
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        requires_grad = original.requires_grad
        if isinstance(new, Tensor):
            self.is_tensor = True
            self.ntensors = 1
            self._register_original("original", new, original, requires_grad)
        else:
            if not isinstance(new, (tuple, list)):
                raise ValueError(f"'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                                 f"Got {type(new).__name__}")
            self.is_tensor = False
            self.ntensors = len(new)
            for i, t in enumerate(new):
                self._register_original(f"original{i}", t, original, requires_grad)
        if not unsafe:
            with deepbox.no_grad():
                z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if tuple(z.shape) != tuple(original.shape) or z.dtype != original.dtype:
                raise ValueError(f"Registering a parametrization may not change the shape or dtype of the tensor: "
                                 f"unparametrized {original.dtype} of shape {tuple(original.shape)}, parametrized "
                                 f"{z.dtype} of shape {tuple(z.shape)} (pass unsafe=True to allow it)")

    def _register_original(self, name, value, original, requires_grad):
        if isinstance(original, Parameter) or requires_grad:
            self.register_parameter(name, Parameter(value.detach().clone(), requires_grad=requires_grad))
        else:
            self.register_buffer(name, value.detach().clone())

    def right_inverse(self, value: Tensor) -> None:
        """Set the originals so that the parametrized tensor becomes ``value``."""
        with deepbox.no_grad():
            for m in reversed(list(self)):
                if not hasattr(m, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(m).__name__} does not implement right_inverse.")
                value = m.right_inverse(value)
            values = (value,) if self.is_tensor else tuple(value)
            for i, v in enumerate(values):
                target = getattr(self, "original" if self.is_tensor else f"original{i}")
                if tuple(v.shape) != tuple(target.shape):
                    raise ValueError(f"right_inverse gave a tensor of shape {tuple(v.shape)} for one of shape "
                                     f"{tuple(target.shape)}")
                target.copy_(v)

    def forward(self):
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in list(self)[1:]:
            x = m(x)
        return x


def _parametrized_property(name: str):
    def getter(self):
        if _cache_enabled:
            key = (id(self), name)
            if key not in _cache:
                _cache[key] = self.parametrizations[name]()
            return _cache[key]
        return self.parametrizations[name]()

    def setter(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(getter, setter)


def _inject_new_class(module: Module) -> None:
    cls = module.__class__
    new_cls = type(f"Parametrized{cls.__name__}", (cls,), {"__module__": cls.__module__})
    new_cls._deepbox_original_class = cls
    module.__class__ = new_cls


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *, unsafe: bool = False):
    """Make ``module.<tensor_name>`` the output of ``parametrization`` applied to the stored original."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"parametrization must be a Module, got {type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            with deepbox.no_grad():
                y = getattr(module, tensor_name)
                z = parametrization(y)
            if tuple(z.shape) != tuple(y.shape) or z.dtype != y.dtype:
                raise ValueError("Registering a parametrization may not change the shape or dtype of the tensor")
        plist.append(parametrization)
        return module
    if tensor_name not in module._parameters and tensor_name not in module._buffers:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with "
                         f"name '{tensor_name}'")
    original = getattr(module, tensor_name)
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    module._parameters.pop(tensor_name, None)
    module._buffers.pop(tensor_name, None)
    if not is_parametrized(module):
        _inject_new_class(module)
        module.parametrizations = ModuleDict()
    setattr(module.__class__, tensor_name, _parametrized_property(tensor_name))
    module.parametrizations[tensor_name] = plist
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    plist = module._modules.get("parametrizations") if hasattr(module, "_modules") else None
    if plist is None or not isinstance(plist, ModuleDict):
        return False
    return len(plist) > 0 if tensor_name is None else tensor_name in plist


def type_before_parametrizations(module: Module) -> type:
    return getattr(module.__class__, "_deepbox_original_class", module.__class__) if is_parametrized(module) \
        else module.__class__


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo ``register_parametrization``: the tensor becomes a plain parameter again (its current value, or
    the original's when ``leave_parametrized=False``)."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    with deepbox.no_grad():
        if leave_parametrized:
            value = getattr(module, tensor_name).detach().clone()
        elif plist.is_tensor:
            value = plist.original.detach().clone()
        else:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized "
                             "in terms of a sequence of tensors.")
    requires_grad = plist.original.requires_grad if plist.is_tensor else plist.original0.requires_grad
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    module.register_parameter(tensor_name, Parameter(value, requires_grad=requires_grad))
    if not is_parametrized(module):
        del module._modules["parametrizations"]
        module.__class__ = module.__class__._deepbox_original_class
    return module
