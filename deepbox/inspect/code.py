"""From a layer to the code that computes it: its docstring and its reference op's source.

Clicking a layer on the inspector's page shows the layer's docstring, its ``forward`` and the
source of the reference ``Function`` (``deepbox/ops/``) whose ``forward`` and ``backward`` compute
it, side by side in one class. ``LAYER_OPS`` maps a module type to the op it uses, by a
*normalised* op name (lower case, no underscores, without a ``Fn``/``Function``/``Layer`` suffix),
so ``Conv2dFn``, ``Conv2d`` and ``Conv2dFunction`` all answer to ``conv2d`` and the class may move
between files of ``deepbox/ops/``. A layer type that the table does not know (a user's own
module) is resolved by tracing: the ``Function`` classes in the graph between the layer's input
and its output, each replaced by its reference twin when it is a fast kernel.
"""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil

from deepbox.autograd.function import Function

__all__ = ["LAYER_OPS", "normalize_op_name", "reference_ops", "ops_for_module_type", "traced_ops", "layer_code",
           "op_entry"]

# module type name -> normalised names of the reference ops it uses (first found wins, all shown).
# Subclasses are found through the MRO (ReLU6 -> Hardtanh, LazyLinear -> Linear).
LAYER_OPS: dict[str, tuple[str, ...]] = {
    "Linear": ("linear",),
    "Bilinear": ("bilinear",),
    "Conv1d": ("conv2d",),
    "Conv2d": ("conv2d",),
    "ConvTranspose1d": ("convtranspose2d",),
    "ConvTranspose2d": ("convtranspose2d",),
    "BatchNorm1d": ("batchnorm",),
    "BatchNorm2d": ("batchnorm",),
    "LayerNorm": ("layernorm",),
    "ReLU": ("relu",),
    "Sigmoid": ("sigmoid",),
    "Tanh": ("tanh",),
    "Hardtanh": ("hardtanh",),
    "LeakyReLU": ("leakyrelu",),
    "ELU": ("elu",),
    "GELU": ("gelu",),
    "SiLU": ("silu",),
    "Mish": ("mish",),
    "Softplus": ("softplus",),
    "LogSigmoid": ("logsigmoid",),
    "Softmax": ("softmax",),
    "LogSoftmax": ("logsoftmax",),
    "MaxPool1d": ("maxpool2d",),
    "MaxPool2d": ("maxpool2d",),
    "AvgPool1d": ("avgpool2d",),
    "AvgPool2d": ("avgpool2d",),
    "AdaptiveAvgPool2d": ("globalavgpool", "adaptiveavgpool2d", "avgpool2d"),
    "AdaptiveMaxPool2d": ("adaptivemaxpool2d",),
    "Dropout": ("dropout",),
    "Flatten": ("reshape",),
    "Unflatten": ("reshape",),
    "Embedding": ("indexselect", "embedding", "gather"),
    "LSTM": ("lstm",),
    "GRU": ("gru",),
    "RNN": ("rnn",),
    "MultiheadAttention": ("attention",),
    "PixelShuffle": ("pixelshuffle",),
}

_SUFFIXES = ("function", "func", "fn", "layer")


def normalize_op_name(name: str) -> str:
    """``"Conv2dFn"`` -> ``"conv2d"``, ``"LSTMLayer"`` -> ``"lstm"``, ``"Relu"`` -> ``"relu"``."""
    n = name.lower().replace("_", "")
    changed = True
    while changed:
        changed = False
        for s in _SUFFIXES:
            if n.endswith(s) and len(n) > len(s):
                n, changed = n[: -len(s)], True
    return n


def _is_fast(cls) -> bool:
    return "kernel" in cls.__name__.lower() or not cls.__module__.startswith("deepbox.ops")


_INDEX: dict[str, type] | None = None


def reference_ops() -> dict[str, type]:
    """Normalised name -> reference ``Function`` class, for every public Function in ``deepbox.ops``."""
    global _INDEX
    if _INDEX is not None:
        return _INDEX
    import deepbox.ops as ops_pkg

    index: dict[str, type] = {}
    for info in pkgutil.iter_modules(ops_pkg.__path__):
        if info.name.startswith("_"):
            continue
        try:
            mod = importlib.import_module(f"deepbox.ops.{info.name}")
        except Exception:  # an optional dependency missing: that family has no entry
            continue
        for name, obj in vars(mod).items():
            if (isinstance(obj, type) and issubclass(obj, Function) and obj is not Function
                    and obj.__module__ == mod.__name__ and not name.startswith("_") and not _is_fast(obj)):
                index.setdefault(normalize_op_name(name), obj)
    _INDEX = index
    return index


def ops_for_module_type(module_type: type) -> list[type]:
    """The reference ops ``LAYER_OPS`` names for ``module_type`` (or a base class of it)."""
    index = reference_ops()
    for klass in module_type.__mro__:
        keys = LAYER_OPS.get(klass.__name__)
        if keys:
            found = [index[k] for k in keys if k in index]
            return found[:1]
    return []


def _reference_twin(cls: type) -> type | None:
    if not _is_fast(cls):
        return cls
    key = normalize_op_name(cls.__name__.replace("Kernel", "").replace("kernel", ""))
    return reference_ops().get(key)


def traced_ops(output, inputs=()) -> list[type]:
    """The reference ops on the graph from ``inputs`` to ``output`` (a Tensor), nearest the output first."""
    stop = {id(t._ctx) for t in inputs if getattr(t, "_ctx", None) is not None}
    start = getattr(output, "_ctx", None)
    seen, found, todo = set(), [], [start] if start is not None else []
    while todo and len(seen) < 64:
        node = todo.pop(0)
        if node is None or id(node) in seen or id(node) in stop or not isinstance(node, Function):
            continue
        seen.add(id(node))
        ref = _reference_twin(type(node))
        if ref is not None and ref not in found:
            found.append(ref)
        todo.extend(p for p in getattr(node, "parents", ()) if isinstance(p, Function))
    return found


def _source(obj) -> tuple[str | None, str | None, int | None]:
    try:
        lines, line = inspect.getsourcelines(obj)
        path = inspect.getsourcefile(obj)
    except (OSError, TypeError):
        return None, None, None
    return "".join(lines), path, line


def _relpath(path: str | None) -> str | None:
    if path is None:
        return None
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = os.path.abspath(path)
    return os.path.relpath(ap, root) if ap.startswith(root + os.sep) else ap


def op_entry(cls: type) -> dict:
    src, path, line = _source(cls)
    return {"name": cls.__name__, "module": cls.__module__, "file": _relpath(path), "line": line, "source": src,
            "doc": inspect.getdoc(cls)}


def _own_doc(t: type) -> str | None:
    """The docstring of ``t`` or of a base class below ``Module`` (never ``Module``'s own)."""
    for klass in t.__mro__:
        if klass.__name__ == "Module" and klass.__module__.startswith("deepbox.nn"):
            break
        doc = vars(klass).get("__doc__")
        if doc:
            return inspect.cleandoc(doc)
    return None


def layer_code(module, traced: list[type] | None = None) -> dict:
    """What the page shows for a module (or module type): docstring, ``forward`` source and reference ops."""
    t = module if isinstance(module, type) else type(module)
    ops = ops_for_module_type(t)
    how = "table"
    if not ops and traced:
        ops, how = list(traced), "traced"
    if not ops:
        how = "none"
    fsrc, fpath, fline = _source(t.forward) if "forward" in vars(t) or hasattr(t, "forward") else (None, None, None)
    doc = _own_doc(t) or (inspect.getdoc(ops[0]) if ops else None)
    return {"type": t.__name__, "qualname": f"{t.__module__}.{t.__qualname__}", "doc": doc,
            "forward": {"source": fsrc, "file": _relpath(fpath), "line": fline}, "ops": [op_entry(c) for c in ops],
            "how": how}
