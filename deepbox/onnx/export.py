"""``deepbox.onnx.export``: a traced forward pass written as an ONNX model.

Steps, as ``torch.onnx.export`` takes them:

1. The model is put in eval mode (and restored afterwards) and run once on ``args`` while
   ``_trace.record`` lists every op call (``Call``). Float inputs require grad during the trace,
   so that values derived from them are told apart from constants through the autograd graph.
2. With ``dynamic_axes``, the model runs a second time on inputs whose dynamic axes have another
   size. The two traces must be the same sequence of ops; where an op's shape argument differs
   between them (a ``Reshape`` to ``(B, -1)``), the exporter writes ``-1`` there instead of the
   traced number. A one-valued tensor the forward pass made from the batch size (initial states)
   is expanded to a shape read from the input; any other constant whose shape differs is refused
   with the op and module named.
3. Each call is translated by the exporter registered for its op name (``deepbox/onnx/ops.py``)
   into ONNX nodes. A call whose inputs are all constants is folded: its traced output becomes an
   initializer (``do_constant_folding``). Parameters and buffers become initializers under their
   ``state_dict`` names; other tensors the forward pass made (masks, positions) become constants.
4. The model is checked with ``onnx.checker.check_model(full_check=True)`` and written.
"""
from __future__ import annotations

import os

from deepbox import backend
from deepbox.onnx._trace import Call, record
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = ["export", "UnsupportedOperatorError", "OnnxExporterError"]

# the IR version of each opset written (onnx writes its newest IR by default, which an older runtime may refuse)
IR_VERSIONS = {17: 8, 18: 8, 19: 9, 20: 9}


class OnnxExporterError(RuntimeError):
    """The model cannot be written as ONNX (the message says which op, in which module, and why)."""


class UnsupportedOperatorError(OnnxExporterError):
    """An op that has no ONNX exporter."""


def _need_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("deepbox.onnx.export needs the onnx package: pip install 'deepbox[onnx]' "
                          "(onnx and onnxruntime)") from None
    return onnx


# ---------------------------------------------------------------------------------------------- the graph
class Graph:
    """ONNX nodes and initializers being built, and the names of traced values."""

    def __init__(self, onnx, opset: int):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: dict = {}
        self._used: set = set()
        self._n = 0
        self.values: dict = {}       # key -> (name, dynamic)
        self.pending: dict = {}      # key -> (name, array) of parameters/buffers not yet written
        self.call: Call | None = None
        self.alt: Call | None = None
        self.batch = None            # (input name, axis, traced size, growth in the second trace)
        self.born: dict = {}         # id(tensor) -> its version counter when it was made (traced outputs, inputs)

    # -------------------------------------------------------------- names and nodes
    def fresh(self, hint: str) -> str:
        hint = hint.replace("/", ".") or "v"
        name = hint
        while name in self._used:
            self._n += 1
            name = f"{hint}_{self._n}"
        self._used.add(name)
        return name

    def node(self, op: str, inputs, n_out: int = 1, **attrs):
        """Add a node; returns its output name (or a list of names when ``n_out > 1``)."""
        hint = (self.call.module + "/" if self.call is not None and self.call.module else "") + op
        outs = [self.fresh(f"{hint}_out{i}" if n_out > 1 else hint) for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, name=self.fresh("n." + hint), **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=None, hint: str = "const") -> str:
        arr = xp.asarray(value, dtype=dtype)
        if arr.dtype == xp.float64 and dtype is None and not isinstance(value, xp.ndarray):
            arr = arr.astype(xp.float32)
        name = self.fresh(hint)
        self.initializers[name] = xp.ascontiguousarray(arr)
        return name

    def i64(self, values) -> str:
        return self.const(xp.asarray(list(values) if not xp.isscalar(values) else [values], dtype=xp.int64),
                          hint="ints")

    def scalar(self, value, like) -> str:
        """A 0-d constant of the dtype of the array ``like``."""
        return self.const(xp.asarray(value, dtype=like.dtype), hint="scalar")

    # -------------------------------------------------------------- values
    def key_of(self, x):
        if isinstance(x, Tensor):
            if x._ctx is not None:
                k = ("node", id(x._ctx), x._out_idx)
                if k in self.values:
                    return k
            k = ("tensor", id(x))
            if k in self.values or k in self.pending:
                return k
            return ("array", id(x._data))
        if isinstance(x, xp.ndarray):
            return ("array", id(x))
        return None

    def lookup(self, x):
        """(name, dynamic) of a traced value, a parameter or buffer, or None for an unknown constant."""
        k = self.key_of(x)
        if k is None:
            return None
        if k in self.values:
            return self.values[k]
        if k in self.pending:
            name, arr = self.pending.pop(k)
            self.initializers[name] = xp.ascontiguousarray(arr)
            self._used.add(name)
            self.values[k] = (name, False)
            return self.values[k]
        return None

    def is_dynamic(self, x) -> bool:
        found = self.lookup(x)
        return bool(found and found[1])

    def value(self, x, dtype=None) -> str:
        """The ONNX name of an op argument: a traced value, an initializer, or a new constant."""
        found = self.lookup(x)
        if found is not None:
            name = found[0]
            arr = x._data if isinstance(x, Tensor) else x
            if dtype is not None and arr.dtype != xp.dtype(dtype):
                return self.node("Cast", [name], to=self.onnx_type(dtype))
            return name
        arr = x._data if isinstance(x, Tensor) else xp.asarray(x)
        if dtype is not None:
            arr = arr.astype(dtype)
        return self.const(arr.copy(), hint="const")

    def onnx_type(self, dtype) -> int:
        return self.helper.np_dtype_to_tensor_dtype(xp.dtype(dtype))

    def fail(self, reason: str, unsupported: bool = False):
        cls = UnsupportedOperatorError if unsupported else OnnxExporterError
        where = self.call.where() if self.call is not None else "the model"
        return cls(f"deepbox.onnx.export: {where}: {reason}")

    # -------------------------------------------------------------- shapes that depend on the batch size
    def target_shape(self, out_index: int = 0) -> list:
        """The traced output shape, with -1 at the one dimension that differs in the second trace."""
        shape = list(self.call.outputs[out_index].shape)
        if self.alt is None:
            return shape
        alt = list(self.alt.outputs[out_index].shape)
        differ = [i for i, (a, b) in enumerate(zip(shape, alt)) if a != b]
        if len(differ) > 1:
            raise self.fail(f"the output shape depends on the dynamic axes in {len(differ)} dimensions "
                            f"({shape} vs {alt}); only one can be inferred")
        for i in differ:
            shape[i] = -1
        return shape

    def same_in_both_traces(self, what: str, a, b):
        if self.alt is not None and not _equal(a, b):
            raise self.fail(f"its {what} changes with the dynamic axes ({_short(a)} vs {_short(b)}), so it would be "
                            "baked into the graph; export without dynamic_axes or change the model")


def _short(v) -> str:
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


def _equal(a, b) -> bool:
    if isinstance(a, xp.ndarray) or isinstance(b, xp.ndarray):
        return isinstance(a, xp.ndarray) and isinstance(b, xp.ndarray) and a.shape == b.shape and \
            bool(xp.array_equal(a, b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------------------------------------- helpers
def _flatten(out) -> list:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flatten(o))
        return res
    if isinstance(out, dict):
        res = []
        for o in out.values():
            res.extend(_flatten(o))
        return res
    if out is None:
        return []
    raise TypeError(f"deepbox.onnx.export: inputs and outputs must be tensors (or tuples, lists and dicts of "
                    f"them), got a {type(out).__name__}")


def _split_args(args):
    if isinstance(args, Tensor):
        return (args,), {}
    if not isinstance(args, tuple):
        args = tuple(args) if isinstance(args, list) else (args,)
    kwargs = {}
    if args and isinstance(args[-1], dict):
        kwargs = args[-1]
        args = args[:-1]
    return args, kwargs


def _axes_of(spec) -> dict:
    if isinstance(spec, dict):
        return {int(k): str(v) for k, v in spec.items()}
    return {int(a): f"dim_{int(a)}" for a in spec}


def _fresh_inputs(args, dyn_by_pos, grow: int):
    """Copies of the input tensors (float ones requiring grad), nesting kept; dynamic axes grown by ``grow``.

    Returns the new arguments and the flat list of their tensors (the graph inputs, in order)."""
    flat: list = []

    def copy(a):
        if isinstance(a, (tuple, list)):
            return type(a)(copy(v) for v in a)
        if not isinstance(a, Tensor):
            raise TypeError(f"deepbox.onnx.export: inputs must be tensors (or tuples/lists of them), got a "
                            f"{type(a).__name__}")
        arr = a._data.copy()
        for axis in sorted(dyn_by_pos.get(len(flat), {})):
            n = arr.shape[axis]
            if grow:
                arr = xp.take(arr, xp.arange(n + grow) % max(n, 1), axis=axis)
        t = _make(arr)
        if arr.dtype.kind == "f":
            t.requires_grad = True
        flat.append(t)
        return t

    return tuple(copy(a) for a in args), flat


def _run(model, args, kwargs):
    from deepbox.autograd.grad_mode import enable_grad

    with enable_grad(), record(model, _flatten(args)) as calls:
        out = model(*args, **kwargs)
    return out, calls


# ---------------------------------------------------------------------------------------------- export
def export(model, args, f, export_params: bool = True, verbose: bool = False, training=None,
           input_names=None, output_names=None, operator_export_type=None, opset_version: int | None = 17,
           do_constant_folding: bool = True, dynamic_axes=None, keep_initializers_as_inputs=None,
           custom_opsets=None, export_modules_as_functions: bool = False, dynamo: bool = False, **kwargs):
    """Export ``model`` to an ONNX file by tracing one forward pass on ``args`` (as ``torch.onnx.export``).

    Args:
        model: a ``deepbox.nn.Module`` (put in eval mode while it is traced).
        args: the example input: a tensor, or a tuple of them (a final dict holds keyword arguments).
        f: a path or a binary file object.
        input_names, output_names: names of the graph inputs and outputs (default ``input_0``...,
            ``output_0``...).
        opset_version: the ONNX opset (17 by default; 17 to 20 are written).
        do_constant_folding: ops whose inputs are all constants are written as their result.
        dynamic_axes: ``{name: {axis: "symbol"}}`` or ``{name: [axis, ...]}`` for inputs and outputs
            whose size may change (the batch), as in PyTorch.

    Returns:
        the ``onnx.ModelProto`` written (PyTorch returns None; the model is handy in tests).

    Raises:
        UnsupportedOperatorError: an op without an exporter; the message names the op and module.
        OnnxExporterError: anything else that cannot be expressed (a shape baked in by the batch size).
    """
    onnx = _need_onnx()
    from deepbox.nn.modules.module import Module
    from deepbox.onnx import ops as _ops

    if not isinstance(model, Module):
        raise TypeError(f"deepbox.onnx.export expects a deepbox.nn.Module, got {type(model).__name__}")
    opset = 17 if opset_version is None else int(opset_version)
    if not 17 <= opset <= 20:
        raise ValueError(f"deepbox.onnx.export writes opsets 17 to 20, got opset_version={opset_version}")
    args, call_kwargs = _split_args(args)
    if any(isinstance(v, Tensor) for v in call_kwargs.values()):
        raise TypeError("deepbox.onnx.export: pass tensors positionally (keyword tensors cannot be named inputs)")
    n_inputs = len(_flatten(args))
    input_names = list(input_names or [])
    if len(input_names) > n_inputs:
        raise ValueError(f"deepbox.onnx.export: {len(input_names)} input_names for {n_inputs} input tensors")
    input_names += [f"input_{i}" for i in range(len(input_names), n_inputs)]
    dynamic_axes = dict(dynamic_axes or {})
    dyn_by_pos = {input_names.index(n): _axes_of(spec) for n, spec in dynamic_axes.items() if n in input_names}

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        inputs, flat_inputs = _fresh_inputs(args, dyn_by_pos, 0)
        out, calls = _run(model, inputs, call_kwargs)
        alt_calls = None
        if dyn_by_pos:
            alt_inputs, _ = _fresh_inputs(args, dyn_by_pos, 3)
            alt_out, alt_calls = _run(model, alt_inputs, call_kwargs)
            if [c.op for c in alt_calls] != [c.op for c in calls]:
                raise OnnxExporterError(
                    "deepbox.onnx.export: the model runs different ops when the dynamic axes change size "
                    "(Python control flow on a shape), so one graph cannot serve every size; export without "
                    "dynamic_axes")
    finally:
        for m, t in modes:
            m.training = t

    g = Graph(onnx, opset)
    # graph inputs
    graph_inputs = []
    for i, (name, t) in enumerate(zip(input_names, flat_inputs)):
        g._used.add(name)
        g.values[("tensor", id(t))] = (name, True)
        g.values[("array", id(t._data))] = (name, True)
        dims = [dyn_by_pos.get(i, {}).get(a, d) for a, d in enumerate(t._data.shape)]
        graph_inputs.append(g.helper.make_tensor_value_info(name, g.onnx_type(t._data.dtype), dims))
    if dyn_by_pos:
        pos = min(dyn_by_pos)
        axis = min(dyn_by_pos[pos])
        g.batch = (input_names[pos], axis, flat_inputs[pos]._data.shape[axis], 3)
    # parameters and buffers, written when first used
    for pname, p in list(model.named_parameters()) + list(model.named_buffers()):
        if p is None:
            continue
        for k in (("tensor", id(p)), ("array", id(p._data))):
            g.pending.setdefault(k, (pname, p._data))

    for t in flat_inputs:
        g.born[id(t)] = 0
    for i, call in enumerate(calls):
        g.call = call
        g.alt = alt_calls[i] if alt_calls is not None else None
        _check_versions(g, call)
        if g.alt is not None:
            _check_constants(g, call, g.alt)
        tensors = [a for a in call.args if isinstance(a, Tensor)] + \
                  [v for v in call.kwargs.values() if isinstance(v, Tensor)]
        dynamic = any(g.is_dynamic(t) for t in tensors) or _ops.uses_dynamic_arrays(g, call)
        if not dynamic and do_constant_folding:
            for j, o in enumerate(call.outputs):
                if g.alt is not None and g.alt.outputs[j].shape != o.shape:
                    raise g.fail(f"a constant of shape {tuple(o.shape)} changes shape with the dynamic axes "
                                 f"(to {tuple(g.alt.outputs[j].shape)}); export without dynamic_axes")
                _register(g, call, j, o, g.const(o._data.copy(), hint=(call.module + "." if call.module else "")
                                                 + call.op.lower()), dynamic=False)
            continue
        exporter = _ops.EXPORTERS.get(call.op)
        if exporter is None:
            raise g.fail("no ONNX exporter for this op", unsupported=True)
        names = exporter(g, call)
        if isinstance(names, str):
            names = [names]
        for j, o in enumerate(call.outputs):
            if j < len(names) and names[j] is not None:
                _register(g, call, j, o, names[j], dynamic=True)
    g.call = g.alt = None

    # graph outputs
    outs = _flatten(out)
    output_names = list(output_names or [])
    output_names += [f"output_{i}" for i in range(len(output_names), len(outs))]
    dyn_out = {n: _axes_of(spec) for n, spec in dynamic_axes.items() if n in output_names}
    unknown = [n for n in dynamic_axes if n not in input_names and n not in output_names]
    if unknown:
        raise ValueError(f"deepbox.onnx.export: dynamic_axes names {unknown}, which are neither input_names "
                         f"{input_names} nor output_names {output_names}")
    graph_outputs = []
    alt_outs = _flatten(alt_out) if alt_calls is not None else None
    for i, (name, t) in enumerate(zip(output_names, outs)):
        src = g.value(t)
        g.nodes.append(g.helper.make_node("Identity", [src], [name], name=g.fresh("n.output." + name)))
        dims = [dyn_out.get(name, {}).get(a, d) for a, d in enumerate(t._data.shape)]
        if alt_outs is not None:  # a dimension that followed the dynamic axes is dynamic too
            symbols = sorted({s for spec in dyn_by_pos.values() for s in spec.values()})
            dims = [d if isinstance(d, str) or d == alt_outs[i]._data.shape[a] else
                    (symbols[0] if len(symbols) == 1 else f"{name}_dim_{a}") for a, d in enumerate(dims)]
        graph_outputs.append(g.helper.make_tensor_value_info(name, g.onnx_type(t._data.dtype), dims))

    used = {i for n in g.nodes for i in n.input}
    initializers = [onnx.numpy_helper.from_array(a, name) for name, a in g.initializers.items() if name in used]
    graph = g.helper.make_graph(g.nodes, type(model).__name__, graph_inputs, graph_outputs, initializers)
    proto = g.helper.make_model(graph, opset_imports=[g.helper.make_opsetid("", opset)],
                                producer_name="deepbox", ir_version=IR_VERSIONS[opset])
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:  # noqa: BLE001 - onnx raises several types; say it is ours
        raise OnnxExporterError(f"deepbox.onnx.export: the graph fails onnx's checker: {e}") from e
    data = proto.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            fh.write(data)
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"deepbox.onnx.export expects a path or a binary file object, got {type(f).__name__}")
    if verbose:
        print(g.helper.printable_graph(graph))
    return proto


def _check_constants(g: Graph, call: Call, alt: Call):
    """Tensors the forward pass made itself (not from an op on the inputs) whose shape follows the batch size.

    A tensor filled with one value (``torch.zeros(num_layers, x.size(0), hidden)``, the usual initial
    state) becomes that value expanded to a shape computed from the input's batch size; any other such
    tensor (``randn_like`` noise) would be baked into the graph and is refused.
    """
    from deepbox.onnx.ops import IGNORED_ARGS

    skip = IGNORED_ARGS.get(call.op, ())
    pairs = [(a, b) for i, (a, b) in enumerate(zip(call.args, alt.args)) if i not in skip]
    pairs += [(v, alt.kwargs.get(k)) for k, v in call.kwargs.items()]
    for a, b in pairs:
        if isinstance(a, (Tensor, xp.ndarray)) and g.lookup(a) is None:
            sa = a._data.shape if isinstance(a, Tensor) else a.shape
            sb = b._data.shape if isinstance(b, Tensor) else getattr(b, "shape", None)
            if sa != sb and not _expand_uniform(g, a, b):
                raise g.fail(f"it uses a tensor of shape {tuple(sa)} made inside forward() (randn_like, ...) "
                             f"whose shape follows the dynamic axes ({tuple(sb)} in a second trace); it would be "
                             "baked into the graph. Export without dynamic_axes, or pass it as an input")


def _expand_uniform(g: Graph, a, b) -> bool:
    """Write a one-valued tensor whose shape follows the batch as Expand(value, shape from the input)."""
    arr = a._data if isinstance(a, Tensor) else a
    alt = b._data if isinstance(b, Tensor) else b
    if g.batch is None or not isinstance(alt, xp.ndarray) or arr.ndim != alt.ndim or not arr.size or not alt.size:
        return False
    first = arr.reshape(-1)[0]
    if not (bool((arr == first).all()) and bool((alt == first).all())):
        return False
    name, axis, size, grow = g.batch
    dims = []
    for da, db in zip(arr.shape, alt.shape):
        if da == db:
            dims.append(g.i64([da]))
            continue
        k, rem = divmod(db - da, grow)
        if rem or da != k * size:
            return False
        batch = g.node("Shape", [name], start=axis, end=axis + 1)
        dims.append(batch if k == 1 else g.node("Mul", [batch, g.i64([k])]))
    shape = g.node("Concat", dims, axis=0)
    out = g.node("Expand", [g.const(xp.asarray(first, dtype=arr.dtype).reshape(1), hint="fill"), shape])
    g.values[("array", id(arr))] = (out, True)
    if isinstance(a, Tensor):
        g.values[("tensor", id(a))] = (out, True)
    return True


def _check_versions(g: Graph, call: Call):
    """Refuse a value changed in place by an op the trace could not see (one on tensors needing no grad)."""
    for a, entry in zip(call.args, call.versions):
        if entry is None or id(entry[0]) not in g.born:
            continue
        t, v = entry
        if a is t and t._ctx is not None and ("node", id(t._ctx), t._out_idx) in g.values:
            continue  # an in-place op recorded in the graph: the tensor names its new node
        if v != g.born[id(t)]:
            raise g.fail("an input of this op was changed in place after it was made (x += ..., x.add_(...)) on a "
                         "tensor that needs no gradient, which the trace cannot follow; use the out-of-place op")


def _register(g: Graph, call: Call, j: int, out: Tensor, name: str, dynamic: bool):
    entry = (name, dynamic)
    g.born.setdefault(id(out), call.out_versions[j])
    if out._ctx is not None:
        g.values[("node", id(out._ctx), out._out_idx)] = entry
    g.values[("tensor", id(out))] = entry
    g.values.setdefault(("array", id(out._data)), entry)
