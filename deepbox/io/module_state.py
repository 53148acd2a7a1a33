"""Whole modules in a checkpoint, without pickle: ``deepbox.save(model, f)`` / ``deepbox.load(f)``.

``torch.save(model, f)`` pickles the module, and loading it runs whatever the file names. deepbox
stores the module's *structure* instead, as plain checkpoint data: for each module its class by
import path (``deepbox.nn.modules.linear.Linear``, ``__main__.Net``), its plain attributes
(numbers, strings, bools, None, dtypes, tuples/lists/dicts of them, tensors, nested modules and
deepbox's own functions such as ``F.gelu`` by name), its parameters, buffers and submodules. Hooks
must be empty. Anything else (a lambda, a user function, an open file, an optimiser) is refused
at save time with the attribute's path, before the file is touched.

Loading rebuilds the module without calling the class's ``__init__``: the object is made with
``cls.__new__``, given ``Module.__init__``'s empty bookkeeping and then the stored attributes.
The class must already be imported (it is looked up in ``sys.modules``; nothing is imported) and
must be a ``Module`` subclass; a function is found only in deepbox's own already-imported
modules. So a file can name only code the program already trusts, and runs none of it.
"""
from __future__ import annotations

import sys
import types
from collections import OrderedDict

from deepbox import backend
from deepbox.io.errors import CheckpointError
from deepbox.tensor import Tensor

__all__ = ["encode", "decode", "contains_module"]

_TAG = "$deepbox.module"
_FN_TAG = "$deepbox.function"
_SET_TAG = "$deepbox.set"
_VERSION = "1"
_SKIP = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"}
_HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
               "_load_state_dict_post_hooks")


def _module_cls():
    from deepbox.nn.modules.module import Module

    return Module


def contains_module(obj, _depth=0) -> bool:
    Module = _module_cls()
    if isinstance(obj, Module):
        return True
    if _depth > 50:
        return False
    if isinstance(obj, dict):
        return any(contains_module(v, _depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(contains_module(v, _depth + 1) for v in obj)
    return False


def _class_path(cls) -> str:
    if "<locals>" in cls.__qualname__:
        raise TypeError(f"deepbox.save cannot store a {cls.__qualname__}: the class is defined inside a function, "
                        "so loading could not find it; define it at module level")
    return f"{cls.__module__}:{cls.__qualname__}"


def encode(obj, path: str = "obj"):
    """``obj`` with every Module replaced by a plain description that deepbox.save can store."""
    Module = _module_cls()
    if isinstance(obj, Module):
        return _encode_module(obj, path)
    if not contains_module(obj):
        return obj
    if isinstance(obj, dict):
        out = obj.copy()
        for k, v in obj.items():
            out[k] = encode(v, f"{path}[{k!r}]")
        return out
    if isinstance(obj, list):
        return [encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if type(obj) is tuple:
        return tuple(encode(v, f"{path}[{i}]") for i, v in enumerate(obj))
    return obj


def _encode_module(m, path: str) -> dict:
    d = m.__dict__
    for name in _HOOK_DICTS:
        if d.get(name):
            raise TypeError(f"deepbox.save cannot store {path}: it has {name} registered (functions); remove the "
                            "hooks before saving the whole model, or save its state_dict()")
    attrs = {}
    for k, v in d.items():
        if k in _SKIP or k in _HOOK_DICTS:
            continue
        attrs[k] = _encode_value(v, f"{path}.{k}")
    return {
        _TAG: _VERSION,
        "class": _class_path(type(m)),
        "attributes": attrs,
        "parameters": OrderedDict((k, v) for k, v in d["_parameters"].items()),
        "buffers": OrderedDict((k, v) for k, v in d["_buffers"].items()),
        "non_persistent": sorted(d["_non_persistent_buffers_set"]),
        "modules": OrderedDict((k, None if v is None else _encode_module(v, f"{path}.{k}"))
                               for k, v in d["_modules"].items()),
    }


def _encode_value(v, path: str):
    Module = _module_cls()
    if v is None or isinstance(v, (bool, int, float, str, backend.dtype, Tensor, backend.ndarray, backend.xp.generic)):
        return v
    if isinstance(v, Module):
        return _encode_module(v, path)
    if isinstance(v, (list, tuple)):
        items = [_encode_value(x, f"{path}[{i}]") for i, x in enumerate(v)]
        return items if isinstance(v, list) else tuple(items)
    if isinstance(v, dict):
        out = type(v)() if type(v) in (dict, OrderedDict) else dict()
        for k, x in v.items():
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise TypeError(f"deepbox.save cannot store {path}: a dict key of type {type(k).__name__}")
            out[k] = _encode_value(x, f"{path}[{k!r}]")
        return out
    if isinstance(v, (set, frozenset)):
        return {_SET_TAG: [_encode_value(x, path) for x in sorted(v, key=repr)]}
    if isinstance(v, types.FunctionType) and _deepbox_function(v):
        return {_FN_TAG: f"{v.__module__}:{v.__qualname__}"}
    what = "a lambda" if getattr(v, "__name__", "") == "<lambda>" else f"a {type(v).__name__}"
    raise TypeError(f"deepbox.save cannot store the whole model: {path} is {what}. A saved model holds numbers, "
                    "strings, bools, None, dtypes, tensors, submodules, deepbox's own functions and lists, tuples "
                    "and dicts of them; save its state_dict() instead, or keep that attribute out of the model")


def _deepbox_function(fn) -> bool:
    mod = sys.modules.get(fn.__module__ or "")
    return (fn.__module__ or "").startswith("deepbox.") and mod is not None and \
        getattr(mod, fn.__qualname__, None) is fn


# ---------------------------------------------------------------------------------------------- loading
def decode(obj, source: str):
    """Rebuild the Modules described in a loaded checkpoint (in place of their descriptions)."""
    if isinstance(obj, dict):
        if _TAG in obj:
            return _decode_module(obj, source)
        for k, v in list(obj.items()):
            obj[k] = decode(v, source)
        return obj
    if isinstance(obj, list):
        return [decode(v, source) for v in obj]
    if type(obj) is tuple:
        return tuple(decode(v, source) for v in obj)
    return obj


def _error(source, msg):
    return CheckpointError(f"{source}: {msg}")


def _lookup(path: str, source: str):
    """An already-imported object by 'module:qualname' (nothing is imported)."""
    if not isinstance(path, str) or ":" not in path:
        raise _error(source, f"corrupt model description: class path {path!r:.80}")
    modname, qual = path.split(":", 1)
    mod = sys.modules.get(modname)
    if mod is None:
        raise _error(source, f"the saved model needs {qual} from the module {modname!r}, which is not imported; "
                             f"import it first (deepbox.load imports nothing from a file's say-so)")
    obj = mod
    for part in qual.split("."):
        # the namespace itself, not getattr: a module's __getattr__ could import or run something
        obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
        if obj is None:
            raise _error(source, f"the saved model needs {path}, which module {modname!r} does not define")
    return obj


def _decode_module(node: dict, source: str):
    Module = _module_cls()
    if node.get(_TAG) != _VERSION:
        raise _error(source, f"model description version {node.get(_TAG)!r} is not supported")
    cls = _lookup(node.get("class"), source)
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise _error(source, f"{node.get('class')} is not a deepbox Module subclass; refused")
    m = cls.__new__(cls)
    Module.__init__(m)  # the empty bookkeeping dicts; the subclass's __init__ is not run
    d = m.__dict__
    try:
        for k, v in node["attributes"].items():
            d[k] = _decode_value(v, source)
        from deepbox.nn.parameter import Parameter

        for k, v in node["parameters"].items():
            if v is not None and not isinstance(v, Parameter):
                v = Parameter(v) if isinstance(v, Tensor) else None
            d["_parameters"][k] = v
        for k, v in node["buffers"].items():
            d["_buffers"][k] = v
        d["_non_persistent_buffers_set"] = set(node.get("non_persistent", ()))
        for k, v in node["modules"].items():
            d["_modules"][k] = None if v is None else _decode_module(v, source)
    except (KeyError, AttributeError, TypeError) as e:
        raise _error(source, f"corrupt model description for {node.get('class')} ({type(e).__name__}: {e})") from None
    return m


def _decode_value(v, source):
    if isinstance(v, dict):
        if _TAG in v:
            return _decode_module(v, source)
        if _SET_TAG in v:
            return set(_decode_value(x, source) for x in v[_SET_TAG])
        if _FN_TAG in v:
            path = v[_FN_TAG]
            if not isinstance(path, str) or not path.startswith("deepbox."):
                raise _error(source, f"the saved model names the function {path!r:.80}; only deepbox's own "
                                     "functions are allowed")
            fn = _lookup(path, source)
            if not isinstance(fn, types.FunctionType):
                raise _error(source, f"{path} is not a function")
            return fn
        for k, x in list(v.items()):
            v[k] = _decode_value(x, source)
        return v
    if isinstance(v, list):
        return [_decode_value(x, source) for x in v]
    if type(v) is tuple:
        return tuple(_decode_value(x, source) for x in v)
    return v
