"""Tracing one forward pass: every ``Function.apply`` call, with its arguments, outputs and module.

While ``record`` is active, ``Function.apply`` is wrapped so that each call is appended to a list
as a ``Call``: the op's stable name (its class name without a trailing ``Fn``/``Function``/
``Kernel``, so that a reference op and its fast twin map to one exporter), the positional and
keyword arguments exactly as the op received them, the output tensors, and the qualified name of
the innermost module running (kept by global forward hooks). Nothing about the computation
changes; the graph is built from this list afterwards (``deepbox/onnx/export.py``).
"""
from __future__ import annotations

import contextlib

from deepbox.autograd.function import Function
from deepbox.nn.modules import module as _module
from deepbox.tensor import Tensor

__all__ = ["Call", "record", "op_name", "active"]

_active = [0]


def active() -> bool:
    return _active[0] > 0


def op_name(cls) -> str:
    name = cls.__name__.lstrip("_")
    for suffix in ("Function", "Fn"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    if name.endswith("Kernel") and len(name) > 6:
        name = name[:-6]
    return name


# comparisons and logic on tensors make bool masks without a Function (nothing to differentiate);
# they are recorded by wrapping the Tensor methods and deepbox functions that compute them
_LOGIC = {"__gt__": "Greater", "gt": "Greater", "greater": "Greater", "__lt__": "Less", "lt": "Less",
          "less": "Less", "__ge__": "GreaterOrEqual", "ge": "GreaterOrEqual", "greater_equal": "GreaterOrEqual",
          "__le__": "LessOrEqual", "le": "LessOrEqual", "less_equal": "LessOrEqual", "__eq__": "Equal",
          "eq": "Equal", "__ne__": "NotEqual", "ne": "NotEqual", "not_equal": "NotEqual", "logical_not": "Not",
          "__invert__": "Not", "bitwise_not": "Not", "logical_and": "And", "__and__": "And", "logical_or": "Or",
          "__or__": "Or", "logical_xor": "Xor", "isnan": "IsNaN", "isinf": "IsInf"}


class Call:
    __slots__ = ("op", "cls", "args", "kwargs", "outputs", "module", "index", "versions", "out_versions")

    def __init__(self, cls, args, kwargs, outputs, module, index, op=None, owners=None):
        self.op = op or op_name(cls)
        self.cls = cls
        self.args = args
        self.kwargs = kwargs
        self.outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        self.module = module
        self.index = index
        # (tensor, its version counter) at call time for each argument, or the traced tensor whose array an
        # array argument is: a value changed in place by an untraced op is then detectable
        owners = owners or {}
        self.versions = tuple((a, a._version[0]) if isinstance(a, Tensor) else
                              (owners[id(a)], owners[id(a)]._version[0]) if id(a) in owners else None for a in args)
        self.out_versions = tuple(o._version[0] if isinstance(o, Tensor) else None for o in self.outputs)

    def where(self) -> str:
        what = f"{self.op} ({self.cls.__module__}.{self.cls.__qualname__})" if self.cls is not None else self.op
        return f"{what} in module {self.module or '<top level>'}"


@contextlib.contextmanager
def record(model, inputs=()):
    """Collect the ``Call``s of everything run inside the block (``with record(model) as calls:``)."""
    calls: list[Call] = []
    owners = {id(t._data): t for t in inputs}  # id(array) -> the traced tensor holding it
    names = {id(m): (n or type(m).__name__) for n, m in model.named_modules()} if model is not None else {}
    stack: list[str] = []
    original = Function.__dict__["apply"]
    depth = [0]

    def traced_apply(cls, *args, **kwargs):
        depth[0] += 1
        try:
            out = original.__func__(cls, *args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0:  # an op called inside another op's forward is part of that op
            call = Call(cls, args, kwargs, out, stack[-1] if stack else "", len(calls), owners=owners)
            calls.append(call)
            for o in call.outputs:
                owners.setdefault(id(o._data), o)
        return out

    def pre(mod, args):
        stack.append(names.get(id(mod), type(mod).__name__))

    def post(mod, args, out):
        if stack:
            stack.pop()

    def logic(orig, op):
        def wrapped(*args, **kwargs):
            depth[0] += 1
            try:
                out = orig(*args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0 and isinstance(out, Tensor):
                calls.append(Call(None, args, kwargs, out, stack[-1] if stack else "", len(calls), op=op,
                                  owners=owners))
                owners.setdefault(id(out._data), out)
            return out
        return wrapped

    import deepbox

    patched = []
    for owner in (Tensor, deepbox):
        for attr, op in _LOGIC.items():
            orig = owner.__dict__.get(attr) if owner is Tensor else getattr(owner, attr, None)
            if orig is not None and callable(orig):
                patched.append((owner, attr, orig))
                setattr(owner, attr, logic(orig, op))

    h1 = _module.register_module_forward_pre_hook(pre)
    h2 = _module.register_module_forward_hook(post)
    Function.apply = classmethod(traced_apply)
    _active[0] += 1
    try:
        yield calls
    finally:
        _active[0] -= 1
        Function.apply = original
        for owner, attr, orig in patched:
            setattr(owner, attr, orig)
        h1.remove()
        h2.remove()
