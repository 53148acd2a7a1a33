"""PyTorch's NumPy-style keyword aliases: ``axis`` for ``dim``, ``keepdims`` for ``keepdim``, ``x``/``a``/``x1``
for ``input`` and ``x2`` for ``other``, accepted wherever the function has the PyTorch name.

PyTorch's argument parser accepts these names for every function and method, so
``x.sum(axis=1, keepdims=True)`` and ``torch.add(x1=a, x2=b)`` run there. Each public op here keeps
PyTorch's own parameter names; ``accept_numpy_names`` wraps the ones that have any of them so the
aliases reach the right parameter. Positional calls go straight through (one ``if`` on the way).
"""
from __future__ import annotations

import functools
import inspect

ALIASES = {"axis": "dim", "keepdims": "keepdim", "x": "input", "a": "input", "x1": "input", "x2": "other"}


def _renames(fn):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    found = {alias: name for alias, name in ALIASES.items() if name in params and alias not in params}
    return found or None


def with_aliases(fn):
    """``fn`` accepting PyTorch's NumPy-style keyword aliases for the parameters it has."""
    renames = _renames(fn)
    if renames is None:
        return fn

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if kwargs:
            for alias in kwargs.keys() & renames.keys():
                name = renames[alias]
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}() got both {name!r} and its alias {alias!r}")
                kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)

    op.__wrapped_op__ = fn
    return op


def accept_numpy_names(namespace: dict, names, cls=None) -> None:
    """Wrap ``namespace[name]`` for each name, and the same-named methods of ``cls``."""
    for name in names:
        f = namespace.get(name)
        if callable(f) and not isinstance(f, type):
            namespace[name] = with_aliases(f)
    if cls is not None:
        for name, f in list(vars(cls).items()):
            if name.startswith("_") or not inspect.isfunction(f) or hasattr(f, "__wrapped_op__"):
                continue
            setattr(cls, name, with_aliases(f))
