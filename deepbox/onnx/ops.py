"""ONNX exporters of deepbox's ops, one function per op name, each a few ONNX nodes.

An exporter receives the graph ``g`` and the traced ``call`` (``call.args``/``call.kwargs``
exactly as the op's ``forward`` got them, ``call.outputs`` the traced results) and returns the
ONNX names of the outputs. ``g.value(x)`` names an argument (a traced value, a parameter, or a
new constant); ``g.node(op, inputs, **attributes)`` adds a node. Ops are keyed by a stable name
(the Function's class name without ``Fn``/``Function``/``Kernel``), so a reference op and its
compiled twin share one exporter. Written for opset 17 (axes of ``ReduceMean``/``ReduceMax`` are
attributes there and inputs from opset 18, which ``_reduce`` handles).
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.tensor import Tensor

xp = backend.xp

EXPORTERS: dict = {}
# positional arguments an exporter recomputes in the graph instead of using (MaxDim's arg-max indices)
IGNORED_ARGS: dict = {"MaxDim": {1}}
_INT_MAX = 2 ** 62


def exporter(*names):
    def deco(fn):
        for n in names:
            EXPORTERS[n] = fn
        return fn

    return deco


def _arr(x):
    return x._data if isinstance(x, Tensor) else x


def _out_dtype(call, j=0):
    return call.outputs[j]._data.dtype


def uses_dynamic_arrays(g, call) -> bool:
    """Whether a raw array among the call's arguments (an index in a key) is a traced input-dependent value."""
    def walk(v):
        if isinstance(v, xp.ndarray):
            return g.is_dynamic(v)
        if isinstance(v, (tuple, list)):
            return any(walk(x) for x in v)
        return False

    return any(walk(a) for a in call.args if not isinstance(a, Tensor)) or \
        any(walk(v) for v in call.kwargs.values() if not isinstance(v, Tensor))


def _ins(g, call, n=None, dtype=None):
    """The names of the first ``n`` positional arguments, cast to ``dtype`` (the output's by default)."""
    args = call.args if n is None else call.args[:n]
    dt = _out_dtype(call) if dtype is None else dtype
    return [g.value(a, dt) for a in args]


def _reduce(g, op, x, axes, keepdims):
    """A Reduce* node over ``axes`` (None = all), with the axes as attribute or input as the opset wants."""
    as_input = op == "ReduceSum" or g.opset >= 18
    if axes is None:
        return g.node(op, [x], keepdims=int(keepdims))
    axes = [int(a) for a in (axes if isinstance(axes, (tuple, list)) else [axes])]
    if as_input:
        return g.node(op, [x, g.i64(axes)], keepdims=int(keepdims))
    return g.node(op, [x], axes=axes, keepdims=int(keepdims))


def _unsqueeze(g, x, axes):
    return g.node("Unsqueeze", [x, g.i64(axes)])


def _squeeze(g, x, axes):
    return g.node("Squeeze", [x, g.i64(axes)])


def _transpose_last2(g, x, ndim):
    perm = list(range(ndim - 2)) + [ndim - 1, ndim - 2]
    return g.node("Transpose", [x], perm=perm)


# ---------------------------------------------------------------------------------------------- elementwise
_UNARY = {"Neg": "Neg", "Abs": "Abs", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Reciprocal": "Reciprocal",
          "Sin": "Sin", "Cos": "Cos", "Tan": "Tan", "Atan": "Atan", "Tanh": "Tanh", "Sigmoid": "Sigmoid",
          "Relu": "Relu", "Erf": "Erf", "Contiguous": "Identity", "Clone": "Identity"}


def _unary(op):
    def fn(g, call):
        return g.node(op, _ins(g, call, 1))
    return fn


for _name, _op in _UNARY.items():
    EXPORTERS[_name] = _unary(_op)

_BINARY = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Maximum": "Max", "Minimum": "Min"}


def _binary(op):
    def fn(g, call):
        return g.node(op, _ins(g, call, 2))
    return fn


for _name, _op in _BINARY.items():
    EXPORTERS[_name] = _binary(_op)


@exporter("Pow")
def _pow(g, call):
    a, b = call.args[:2]
    dt = _out_dtype(call)
    base = g.value(a, dt)
    if not isinstance(b, (Tensor, xp.ndarray)) and float(b) == 2.0:
        return g.node("Mul", [base, base])
    return g.node("Pow", [base, g.value(b, dt)])


@exporter("Square")
def _square(g, call):
    x = g.value(call.args[0], _out_dtype(call))
    return g.node("Mul", [x, x])


@exporter("Rsqrt")
def _rsqrt(g, call):
    return g.node("Reciprocal", [g.node("Sqrt", _ins(g, call, 1))])


@exporter("Expm1")
def _expm1(g, call):
    x = _ins(g, call, 1)[0]
    return g.node("Sub", [g.node("Exp", [x]), g.scalar(1, call.outputs[0]._data)])


@exporter("Log1p")
def _log1p(g, call):
    x = _ins(g, call, 1)[0]
    return g.node("Log", [g.node("Add", [x, g.scalar(1, call.outputs[0]._data)])])


@exporter("Log2", "Log10")
def _log_base(g, call):
    x = _ins(g, call, 1)[0]
    base = 2.0 if call.op == "Log2" else 10.0
    return g.node("Div", [g.node("Log", [x]), g.scalar(math.log(base), call.outputs[0]._data)])


@exporter("Clamp")
def _clamp(g, call):
    a, lo, hi = call.args[:3]
    dt = _out_dtype(call)
    x = g.value(a, dt)
    if isinstance(lo, (Tensor, xp.ndarray)) or isinstance(hi, (Tensor, xp.ndarray)):
        out = x
        if lo is not None:
            out = g.node("Max", [out, g.value(lo, dt)])
        if hi is not None:
            out = g.node("Min", [out, g.value(hi, dt)])
        return out
    return g.node("Clip", [x, "" if lo is None else g.const(xp.asarray(lo, dt)),
                           "" if hi is None else g.const(xp.asarray(hi, dt))])


@exporter("Where")
def _where(g, call):
    cond, a, b = call.args[:3]
    dt = _out_dtype(call)
    return g.node("Where", [g.value(cond, xp.bool_), g.value(a, dt), g.value(b, dt)])


@exporter("Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Equal")
def _compare(g, call):
    a, b = call.args[:2]
    dt = xp.result_type(_arr(a), _arr(b) if isinstance(b, (Tensor, xp.ndarray)) else _arr(a).dtype)
    return g.node(call.op, [g.value(a, dt), g.value(b, dt)])


@exporter("NotEqual")
def _not_equal(g, call):
    a, b = call.args[:2]
    dt = xp.result_type(_arr(a), _arr(b) if isinstance(b, (Tensor, xp.ndarray)) else _arr(a).dtype)
    return g.node("Not", [g.node("Equal", [g.value(a, dt), g.value(b, dt)])])


@exporter("Not", "And", "Or", "Xor")
def _logic(g, call):
    tensors = [a for a in call.args[:2] if isinstance(a, (Tensor, xp.ndarray))]
    if any(_arr(t).dtype != xp.bool_ for t in tensors):
        raise g.fail("bitwise operations on integers are not exported (only on bool masks)", unsupported=True)
    return g.node(call.op, [g.value(a, xp.bool_) for a in call.args[:1 if call.op == "Not" else 2]])


@exporter("IsNaN", "IsInf")
def _isnan(g, call):
    return g.node(call.op, [g.value(call.args[0])])


@exporter("Cast")
def _cast(g, call):
    return g.node("Cast", [g.value(call.args[0])], to=g.onnx_type(_out_dtype(call)))


# ---------------------------------------------------------------------------------------------- activations
@exporter("Gelu")
def _gelu(g, call):
    x = _ins(g, call, 1)[0]
    like = call.outputs[0]._data
    if call.kwargs.get("approximate", "none") == "tanh":
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [x3, g.scalar(0.044715, like)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.scalar(math.sqrt(2 / math.pi), like)])])
    else:
        t = g.node("Erf", [g.node("Mul", [x, g.scalar(1 / math.sqrt(2.0), like)])])
    return g.node("Mul", [g.node("Mul", [x, g.scalar(0.5, like)]), g.node("Add", [t, g.scalar(1.0, like)])])


@exporter("LeakyRelu")
def _leaky(g, call):
    return g.node("LeakyRelu", _ins(g, call, 1), alpha=float(call.kwargs.get("negative_slope", 0.01)))


@exporter("Elu")
def _elu(g, call):
    alpha, scale, beta = (float(call.kwargs.get(k, 1.0)) for k in ("alpha", "scale", "beta"))
    x = _ins(g, call, 1)[0]
    like = call.outputs[0]._data
    if beta != 1.0:
        x = g.node("Div", [x, g.scalar(beta, like)])
        out = g.node("Mul", [g.node("Elu", [x], alpha=alpha), g.scalar(beta, like)])
    else:
        out = g.node("Elu", [x], alpha=alpha)
    return out if scale == 1.0 else g.node("Mul", [out, g.scalar(scale, like)])


@exporter("Softplus")
def _softplus(g, call):
    beta, threshold = float(call.kwargs.get("beta", 1.0)), float(call.kwargs.get("threshold", 20.0))
    x = _ins(g, call, 1)[0]
    like = call.outputs[0]._data
    bx = g.node("Mul", [x, g.scalar(beta, like)])
    soft = g.node("Div", [g.node("Softplus", [bx]), g.scalar(beta, like)])
    return g.node("Where", [g.node("Greater", [bx, g.scalar(threshold, like)]), x, soft])


@exporter("Silu")
def _silu(g, call):
    x = _ins(g, call, 1)[0]
    return g.node("Mul", [x, g.node("Sigmoid", [x])])


@exporter("Mish")
def _mish(g, call):
    x = _ins(g, call, 1)[0]
    return g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])])


@exporter("Hardtanh")
def _hardtanh(g, call):
    like = call.outputs[0]._data
    return g.node("Clip", [_ins(g, call, 1)[0], g.scalar(call.kwargs.get("min_val", -1.0), like),
                           g.scalar(call.kwargs.get("max_val", 1.0), like)])


@exporter("LogSigmoid")
def _logsigmoid(g, call):
    x = _ins(g, call, 1)[0]
    return g.node("Neg", [g.node("Softplus", [g.node("Neg", [x])])])


@exporter("PRelu")
def _prelu(g, call):
    x, w = call.args[:2]
    xa, wa = _arr(x), _arr(w)
    slope = g.value(w, _out_dtype(call))
    if wa.size > 1 and xa.ndim >= 2:  # one slope per channel (dim 1): line it up for ONNX's broadcasting
        slope = g.node("Reshape", [slope, g.i64([wa.size] + [1] * (xa.ndim - 2))])
    return g.node("PRelu", [g.value(x, _out_dtype(call)), slope])


@exporter("Dropout")
def _dropout(g, call):
    # dropout in a traced pass (training mode): its mask is what the trace drew; ONNX gets the mask as a constant
    return g.node("Mul", _ins(g, call, 2))


# ---------------------------------------------------------------------------------------------- reductions
@exporter("Sum")
def _sum(g, call):
    a, axes, keepdim = call.args[:3]
    return _reduce(g, "ReduceSum", g.value(a, _out_dtype(call)), axes, keepdim)


@exporter("Mean")
def _mean(g, call):
    a, axes, keepdim = call.args[:3]
    return _reduce(g, "ReduceMean", g.value(a, _out_dtype(call)), axes, keepdim)


@exporter("Amax")
def _amax(g, call):
    a, axes, keepdim, is_min = call.args[:4]
    return _reduce(g, "ReduceMin" if is_min else "ReduceMax", g.value(a), axes, keepdim)


@exporter("MaxDim")
def _maxdim(g, call):
    a, _idx, axis, keepdim = call.args[:4]
    # the traced op took the values at the arg-max/min indices; recompute both in the graph
    x = g.value(a)
    values = call.outputs[0]._data
    src = _arr(a)
    is_min = bool(xp.array_equal(values, xp.min(src, axis=axis, keepdims=bool(keepdim)))) and \
        not bool(xp.array_equal(values, xp.max(src, axis=axis, keepdims=bool(keepdim))))
    return _reduce(g, "ReduceMin" if is_min else "ReduceMax", x, [axis], keepdim)


@exporter("Var")
def _var(g, call):
    a, axes, correction, keepdim = call.args[:4]
    x = g.value(a, _out_dtype(call))
    like = call.outputs[0]._data
    src = _arr(a)
    ax = list(range(src.ndim)) if axes is None else [int(v) for v in (axes if isinstance(axes, (tuple, list))
                                                                      else [axes])]
    n = math.prod(src.shape[i] for i in ax)
    mu = _reduce(g, "ReduceMean", x, ax, True)
    d = g.node("Sub", [x, mu])
    ss = _reduce(g, "ReduceSum", g.node("Mul", [d, d]), ax, keepdim)
    return g.node("Div", [ss, g.scalar(max(n - correction, 0), like)])


@exporter("Std")
def _std(g, call):
    return g.node("Sqrt", [_var(g, call)])


@exporter("Softmax", "LogSoftmax")
def _softmax(g, call):
    a, axis = call.args[:2]
    return g.node(call.op, [g.value(a, _out_dtype(call))], axis=int(axis))


@exporter("LogSumExp")
def _lse(g, call):
    a, axes, keepdim = call.args[:3]
    return _reduce(g, "ReduceLogSumExp", g.value(a, _out_dtype(call)), axes, keepdim)


@exporter("Norm")
def _norm(g, call):
    a, p, axes, keepdim = call.args[:4]
    x = g.value(a, _out_dtype(call))
    if p == 2:
        return _reduce(g, "ReduceL2", x, axes, keepdim)
    if p == 1:
        return _reduce(g, "ReduceL1", x, axes, keepdim)
    raise g.fail(f"only p=1 and p=2 norms are exported, got p={p}")


# ---------------------------------------------------------------------------------------------- matmul, linear
@exporter("MatMul")
def _matmul(g, call):
    return g.node("MatMul", _ins(g, call, 2))


@exporter("Einsum")
def _einsum(g, call):
    eq = ",".join(call.kwargs["ins"]) + "->" + call.kwargs["out"]
    return g.node("Einsum", _ins(g, call), equation=eq)


@exporter("Linear")
def _linear(g, call):
    x, w = call.args[:2]
    b = call.args[2] if len(call.args) > 2 else None
    dt = _out_dtype(call)
    xv, wv = g.value(x, dt), g.value(w, dt)
    if _arr(x).ndim == 2:
        return g.node("Gemm", [xv, wv] + ([g.value(b, dt)] if b is not None else []), transB=1)
    y = g.node("MatMul", [xv, g.node("Transpose", [wv], perm=[1, 0])])
    return g.node("Add", [y, g.value(b, dt)]) if b is not None else y


@exporter("Embedding")
def _embedding(g, call):
    w, idx = call.args[:2]
    ia = _arr(idx)
    iv = g.value(idx)
    if ia.dtype not in (xp.int64, xp.int32):
        iv = g.node("Cast", [iv], to=g.onnx_type(xp.int64))
    return g.node("Gather", [g.value(w), iv], axis=0)


# ---------------------------------------------------------------------------------------------- movement
@exporter("Reshape")
def _reshape(g, call):
    target = g.target_shape()
    return g.node("Reshape", [g.value(call.args[0]), g.i64(target)])


@exporter("Permute")
def _permute(g, call):
    return g.node("Transpose", [g.value(call.args[0])], perm=[int(d) for d in call.args[1]])


@exporter("Expand")
def _expand(g, call):
    a = _arr(call.args[0])
    out = list(call.outputs[0].shape)
    src = [1] * (len(out) - a.ndim) + list(a.shape)
    shape = [1 if s == o else o for s, o in zip(src, out)]  # 1 keeps the input's size (ONNX broadcasting)
    if g.alt is not None:
        alt_out = list(g.alt.outputs[0].shape)
        alt_src = [1] * (len(alt_out) - _arr(g.alt.args[0]).ndim) + list(_arr(g.alt.args[0]).shape)
        alt_shape = [1 if s == o else o for s, o in zip(alt_src, alt_out)]
        g.same_in_both_traces("expanded shape", shape, alt_shape)
    return g.node("Expand", [g.value(call.args[0]), g.i64(shape)])


@exporter("Repeat")
def _repeat(g, call):
    a, reps = call.args[:2]
    x = g.value(a)
    nd = _arr(a).ndim
    reps = [int(r) for r in reps]
    if len(reps) > nd:  # torch's repeat adds leading dimensions first
        x = g.node("Reshape", [x, g.i64([1] * (len(reps) - nd) + list(_arr(a).shape))])
    if g.alt is not None:
        g.same_in_both_traces("repeat counts", reps, [int(r) for r in g.alt.args[1]])
    return g.node("Tile", [x, g.i64(reps)])


@exporter("Cat")
def _cat(g, call):
    dt = _out_dtype(call)
    return g.node("Concat", [g.value(a, dt) for a in call.args], axis=int(call.kwargs["axis"]))


@exporter("Stack")
def _stack(g, call):
    dt = _out_dtype(call)
    axis = int(call.kwargs["axis"])
    nd = _arr(call.args[0]).ndim + 1
    axis = axis % nd
    return g.node("Concat", [_unsqueeze(g, g.value(a, dt), [axis]) for a in call.args], axis=axis)


@exporter("Split")
def _split(g, call):
    a, sizes, axis = call.args[:3]
    if g.alt is not None:
        g.same_in_both_traces("split sizes", list(sizes), list(g.alt.args[1]))
    outs = g.node("Split", [g.value(a), g.i64(sizes)], n_out=len(sizes), axis=int(axis))
    return outs if isinstance(outs, list) else [outs]


@exporter("Flip")
def _flip(g, call):
    a, axes = call.args[:2]
    axes = [int(v) for v in axes]
    return g.node("Slice", [g.value(a), g.i64([-1] * len(axes)), g.i64([-_INT_MAX] * len(axes)), g.i64(axes),
                            g.i64([-1] * len(axes))])


@exporter("Pad")
def _pad(g, call):
    # constant padding; negative widths crop, which ONNX's Pad does too
    a, widths = call.args[:2]
    value = call.args[2] if len(call.args) > 2 else call.kwargs.get("value", 0)
    mode = call.args[3] if len(call.args) > 3 else "constant"
    if len(call.args) == 4 and not isinstance(call.args[2], str):  # an older (a, widths, mode, value) form
        mode, value = call.args[2], call.args[3]
    nd = _arr(a).ndim
    widths = [tuple(int(v) for v in w) for w in widths]
    widths = [(0, 0)] * (nd - len(widths)) + widths
    onnx_mode = {"constant": "constant", "reflect": "reflect", "edge": "edge", "replicate": "edge"}.get(mode)
    if onnx_mode is None:
        raise g.fail(f"padding mode {mode!r} has no ONNX counterpart in opset {g.opset}")
    ins = [g.value(a), g.i64([w[0] for w in widths] + [w[1] for w in widths])]
    if onnx_mode == "constant":
        ins.append(g.scalar(value, _arr(a)))
    return g.node("Pad", ins, mode=onnx_mode)


@exporter("IndexPad")
def _index_pad(g, call):
    a = call.args[0]
    x = g.value(a)
    if "pads" not in call.kwargs and len(call.args) > 1:
        # reflect/replicate/circular padding as one gather of constant source indices per padded axis
        for ax, src in call.args[1]:
            x = g.node("Gather", [x, g.const(xp.asarray(src, dtype=xp.int64), hint="pad_index")], axis=int(ax))
        return x
    pads = call.kwargs.get("pads", ())
    mode = call.kwargs.get("mode", "reflect")
    nd = _arr(a).ndim
    widths = [(0, 0)] * (nd - len(pads)) + [tuple(p) for p in pads]
    onnx_mode = {"reflect": "reflect", "replicate": "edge", "circular": None}.get(mode)
    if onnx_mode is None:
        raise g.fail(f"padding mode {mode!r} has no ONNX counterpart in opset {g.opset}")
    return g.node("Pad", [x, g.i64([w[0] for w in widths] + [w[1] for w in widths])], mode=onnx_mode)


@exporter("Tril")
def _tril(g, call):
    a, k, upper = call.args[:3]
    return g.node("Trilu", [g.value(a), g.const(xp.asarray(int(k), dtype=xp.int64), hint="k")],
                  upper=int(bool(upper)))


# ---------------------------------------------------------------------------------------------- indexing
@exporter("GetItem", "GetItemView")
def _getitem(g, call):
    a, key = call.args[:2]
    src = _arr(a)
    if g.alt is not None:
        g.same_in_both_traces("index", _key_static(key), _key_static(g.alt.args[1]))
    x = g.value(a)
    key = key if isinstance(key, tuple) else (key,)
    arrays = [k for k in key if isinstance(k, xp.ndarray)]
    if any(k.dtype == xp.bool_ for k in arrays):
        raise g.fail("boolean-mask indexing has a data-dependent shape; ONNX export needs static shapes",
                     unsupported=True)
    if len(arrays) > 1:
        raise g.fail("indexing with more than one index tensor is not exported", unsupported=True)
    # expand the Ellipsis
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (src.ndim - n_real) + key[i + 1:]
    key = key + (slice(None),) * (src.ndim - sum(1 for k in key if k is not None))
    starts, ends, axes, steps = [], [], [], []
    squeeze, gathers = [], []
    dim = 0
    for k in key:
        if k is None:
            continue
        if isinstance(k, slice):
            start, stop, step = k.start, k.stop, k.step
            if (start, stop, step) != (None, None, None):
                step = 1 if step is None else int(step)
                starts.append(int(start) if start is not None else (0 if step > 0 else -1))
                ends.append(int(stop) if stop is not None else (_INT_MAX if step > 0 else -_INT_MAX))
                axes.append(dim)
                steps.append(step)
        elif isinstance(k, (int, xp.integer)):
            k = int(k)
            starts.append(k)
            ends.append(k + 1 if k != -1 else _INT_MAX)
            axes.append(dim)
            steps.append(1)
            squeeze.append(dim)
        elif isinstance(k, xp.ndarray):
            gathers.append((dim, k))
        else:
            raise g.fail(f"index {k!r} is not exported", unsupported=True)
        dim += 1
    if axes:
        x = g.node("Slice", [x, g.i64(starts), g.i64(ends), g.i64(axes), g.i64(steps)])
    for d, idx in gathers:
        iv = g.value(idx)
        if idx.dtype != xp.int64:
            iv = g.node("Cast", [iv], to=g.onnx_type(xp.int64))
        x = g.node("Gather", [x, iv], axis=d)
        if idx.ndim != 1:
            if squeeze or any(k is None for k in key):
                raise g.fail("an index tensor of rank != 1 mixed with integers or None is not exported",
                             unsupported=True)
    if squeeze:
        x = _squeeze(g, x, squeeze)
    if any(k is None for k in key) or gathers:
        # None inserts axes; numpy moves a single advanced index's dims in place: the traced shape is the truth
        x = g.node("Reshape", [x, g.i64(g.target_shape())])
    return x


def _key_static(key):
    key = key if isinstance(key, tuple) else (key,)
    return tuple(("array", k.shape) if isinstance(k, xp.ndarray) else
                 (k.start, k.stop, k.step) if isinstance(k, slice) else k for k in key)


@exporter("IndexSelect")
def _index_select(g, call):
    a, idx, axis = call.args[:3]
    iv = g.value(idx)
    if _arr(idx).dtype != xp.int64:
        iv = g.node("Cast", [iv], to=g.onnx_type(xp.int64))
    return g.node("Gather", [g.value(a), iv], axis=int(axis))


@exporter("Gather", "TakeAlong")
def _gather(g, call):
    a, idx, axis = call.args[:3]
    iv = g.value(idx)
    if _arr(idx).dtype != xp.int64:
        iv = g.node("Cast", [iv], to=g.onnx_type(xp.int64))
    return g.node("GatherElements", [g.value(a), iv], axis=int(axis))


@exporter("MaskedFill")
def _masked_fill(g, call):
    a, mask, value = call.args[:3]
    dt = _out_dtype(call)
    v = g.value(value, dt) if isinstance(value, (Tensor, xp.ndarray)) else g.scalar(value, call.outputs[0]._data)
    return g.node("Where", [g.value(mask, xp.bool_), v, g.value(a, dt)])


# ---------------------------------------------------------------------------------------------- convolution, pooling
@exporter("Conv2d")
def _conv(g, call):
    x, w, b = call.args[:3]
    kw = call.kwargs
    pads = kw.get("padding", ((0, 0), (0, 0)))
    pads = [tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in pads]
    dt = _out_dtype(call)
    ins = [g.value(x, dt), g.value(w, dt)] + ([g.value(b, dt)] if b is not None else [])
    return g.node("Conv", ins, strides=list(kw.get("stride", (1, 1))), dilations=list(kw.get("dilation", (1, 1))),
                  pads=[p[0] for p in pads] + [p[1] for p in pads], group=int(kw.get("groups", 1)),
                  kernel_shape=list(_arr(w).shape[2:]))


@exporter("ConvTranspose2d")
def _conv_t(g, call):
    x, w, b = call.args[:3]
    kw = call.kwargs
    pad = list(kw.get("padding", (0, 0)))
    dt = _out_dtype(call)
    ins = [g.value(x, dt), g.value(w, dt)] + ([g.value(b, dt)] if b is not None else [])
    return g.node("ConvTranspose", ins, strides=list(kw.get("stride", (1, 1))),
                  dilations=list(kw.get("dilation", (1, 1))), pads=pad + pad,
                  output_padding=list(kw.get("output_padding", (0, 0))), group=int(kw.get("groups", 1)),
                  kernel_shape=list(_arr(w).shape[2:]))


@exporter("MaxPool2d")
def _maxpool(g, call):
    kw = call.kwargs
    if kw.get("return_indices"):
        raise g.fail("max pooling with return_indices is not exported (ONNX's indices are laid out differently)",
                     unsupported=True)
    p = list(kw.get("padding", (0, 0)))
    return g.node("MaxPool", [g.value(call.args[0])], kernel_shape=list(kw.get("kernel_size", (2, 2))),
                  strides=list(kw.get("stride", (2, 2))), pads=p + p, dilations=list(kw.get("dilation", (1, 1))),
                  ceil_mode=int(bool(kw.get("ceil_mode", False))))


@exporter("AvgPool2d")
def _avgpool(g, call):
    kw = call.kwargs
    if kw.get("divisor_override") is not None:
        raise g.fail("avg_pool2d with divisor_override is not exported", unsupported=True)
    p = list(kw.get("padding", (0, 0)))
    return g.node("AveragePool", [g.value(call.args[0])], kernel_shape=list(kw.get("kernel_size", (2, 2))),
                  strides=list(kw.get("stride", (2, 2))), pads=p + p,
                  ceil_mode=int(bool(kw.get("ceil_mode", False))),
                  count_include_pad=int(bool(kw.get("count_include_pad", True))))


@exporter("GlobalAvgPool")
def _gap(g, call):
    return _reduce(g, "ReduceMean", g.value(call.args[0]), [-2, -1], True)


@exporter("AdaptiveMaxPool2d")
def _amp(g, call):
    if tuple(call.outputs[0].shape[-2:]) != (1, 1) or call.kwargs.get("return_indices"):
        raise g.fail("adaptive max pooling is exported only to 1x1 without indices", unsupported=True)
    return g.node("GlobalMaxPool", [g.value(call.args[0])])


@exporter("SeparableMap")
def _separable(g, call):
    # out = A_h @ x @ A_w.T: upsampling and adaptive average pooling as two constant matrices
    x = g.value(call.args[0])
    ah, aw = call.kwargs.get("ah"), call.kwargs.get("aw")
    if ah is not None:
        x = g.node("MatMul", [g.const(xp.ascontiguousarray(ah), hint="rows_map"), x])
    if aw is not None:
        x = g.node("MatMul", [x, g.const(xp.ascontiguousarray(aw.T), hint="cols_map")])
    return x


@exporter("PixelShuffle")
def _pixel_shuffle(g, call):
    r = int(call.kwargs.get("r", call.args[1] if len(call.args) > 1 else 1))
    inverse = call.kwargs.get("inverse", call.args[2] if len(call.args) > 2 else False)
    if _arr(call.args[0]).ndim != 4:
        raise g.fail("pixel (un)shuffle is exported for 4-D inputs only", unsupported=True)
    if inverse:
        return g.node("SpaceToDepth", [g.value(call.args[0])], blocksize=r)
    return g.node("DepthToSpace", [g.value(call.args[0])], blocksize=r, mode="CRD")


# ---------------------------------------------------------------------------------------------- normalisation
def _affine(g, y, w, b, shape, dt):
    if w is not None:
        wv = g.value(w, dt)
        if shape is not None:
            wv = g.node("Reshape", [wv, g.i64(shape)])
        y = g.node("Mul", [y, wv])
    if b is not None:
        bv = g.value(b, dt)
        if shape is not None:
            bv = g.node("Reshape", [bv, g.i64(shape)])
        y = g.node("Add", [y, bv])
    return y


@exporter("BatchNorm")
def _batchnorm(g, call):
    x, w, b = (list(call.args) + [None, None])[:3]
    kw = call.kwargs
    dt = _out_dtype(call)
    c = _arr(x).shape[1]
    running = kw.get("running")
    if running is None:
        raise g.fail("batch norm with batch statistics (training mode) is not exported; call model.eval()")
    wv = g.value(w, dt) if w is not None else g.const(xp.ones(c, dt))
    bv = g.value(b, dt) if b is not None else g.const(xp.zeros(c, dt))
    stats = [g.value(r, dt) if r.shape == (c,) else g.const(xp.asarray(r, dt).reshape(c)) for r in running[:2]]
    return g.node("BatchNormalization", [g.value(x, dt), wv, bv] + stats, epsilon=float(kw["eps"]))


@exporter("Normalize")
def _normalize(g, call):
    x, w, b = (list(call.args) + [None, None])[:3]
    kw = call.kwargs
    dt = _out_dtype(call)
    xa = _arr(x)
    axes = [int(a) % xa.ndim for a in kw["axes"]]
    like = call.outputs[0]._data
    xv = g.value(x, dt)
    if kw.get("mean") is None:
        mu = _reduce(g, "ReduceMean", xv, axes, True)
        xc = g.node("Sub", [xv, mu])
        var = _reduce(g, "ReduceMean", g.node("Mul", [xc, xc]), axes, True)
    else:
        shape = [1] * xa.ndim
        for i in range(xa.ndim):
            if i not in axes:
                shape[i] = xa.shape[i]
        mean, var_a = kw["mean"], kw["var"]
        if mean.ndim != xa.ndim:
            mean, var_a = mean.reshape(shape), var_a.reshape(shape)
        xc = g.node("Sub", [xv, g.const(xp.asarray(mean, dt))])
        var = g.const(xp.asarray(var_a, dt))
    rstd = g.node("Reciprocal", [g.node("Sqrt", [g.node("Add", [var, g.scalar(kw["eps"], like)])])])
    y = g.node("Mul", [xc, rstd])
    return _affine(g, y, w, b, list(kw["wshape"]) if kw.get("wshape") is not None else None, dt)


@exporter("LayerNorm")
def _layernorm(g, call):
    x, w, b = (list(call.args) + [None, None])[:3]
    kw = call.kwargs
    dt = _out_dtype(call)
    xa = _arr(x)
    k = int(kw["dims"])        # the number of trailing dims normalised
    nshape = list(xa.shape[-k:])
    wv = g.value(w, dt) if w is not None else g.const(xp.ones(nshape, dt))
    bv = g.value(b, dt) if b is not None else g.const(xp.zeros(nshape, dt))
    if w is not None and list(_arr(w).shape) != nshape:
        wv = g.node("Reshape", [wv, g.i64(nshape)])
    if b is not None and list(_arr(b).shape) != nshape:
        bv = g.node("Reshape", [bv, g.i64(nshape)])
    return g.node("LayerNormalization", [g.value(x, dt), wv, bv], axis=-k, epsilon=float(kw["eps"]))


# ---------------------------------------------------------------------------------------------- attention
def _attention(g, call, causal):
    q, k, v = call.args[:3]
    mask = call.args[3] if len(call.args) > 3 else None
    kw = call.kwargs
    if float(kw.get("dropout_p", 0.0)) > 0:
        raise g.fail("attention with dropout is not exported; call model.eval()")
    dt = _out_dtype(call)
    like = call.outputs[0]._data
    qa, ka = _arr(q), _arr(k)
    qs = g.node("Mul", [g.value(q, dt), g.scalar(kw["scale"], like)])
    s = g.node("MatMul", [qs, _transpose_last2(g, g.value(k, dt), ka.ndim)])
    if mask is not None:
        ma = _arr(mask)
        if ma.dtype == xp.bool_:
            s = g.node("Where", [g.value(mask), s, g.scalar(-xp.inf, like)])
        else:
            s = g.node("Add", [s, g.value(mask, dt)])
    if causal:
        L, S = qa.shape[-2], ka.shape[-2]
        tri = xp.where(xp.triu(xp.ones((L, S), bool), 1), -xp.inf, 0).astype(dt)
        s = g.node("Add", [s, g.const(tri, hint="causal_mask")])
    p = g.node("Softmax", [s], axis=-1)
    out = g.node("MatMul", [p, g.value(v, dt)])
    if len(call.outputs) > 1:
        return [out, p]
    return out


@exporter("Attention")
def _attn(g, call):
    return _attention(g, call, bool(call.kwargs.get("causal", False)))


@exporter("CausalAttention")
def _causal_attn(g, call):
    return _attention(g, call, True)


# ---------------------------------------------------------------------------------------------- recurrent layers
# PyTorch stacks gates as LSTM (i, f, g, o), GRU (r, z, n); ONNX as LSTM (i, o, f, c), GRU (z, r, h)
_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def _gates(arr, kind):
    n = len(_GATE_ORDER[kind])
    h = arr.shape[0] // n
    return xp.concatenate([arr[i * h:(i + 1) * h] for i in _GATE_ORDER[kind]], axis=0)


def _recurrent(g, call, kind):
    kw = call.kwargs
    x, w_ih, w_hh, b_ih, b_hh = call.args[:5]
    h0 = call.args[5] if len(call.args) > 5 else None
    c0 = call.args[6] if kind == "LSTM" and len(call.args) > 6 else None
    if kind == "LSTM" and len(call.args) > 7 and call.args[7] is not None:
        raise g.fail("LSTM with proj_size is not exported (ONNX's LSTM has no projection)", unsupported=True)
    if kw.get("batch_sizes") is not None:
        raise g.fail("packed sequences are not exported; pass a padded batch", unsupported=True)
    if g.is_dynamic(w_ih) or g.is_dynamic(w_hh):
        raise g.fail("recurrent weights computed from the inputs are not exported", unsupported=True)
    dt = _out_dtype(call)
    wi, wh = _arr(w_ih).astype(dt), _arr(w_hh).astype(dt)
    hidden = wh.shape[1]
    W = g.const(_gates(wi, kind)[None], hint="W")
    R = g.const(_gates(wh, kind)[None], hint="R")
    if b_ih is not None or b_hh is not None:
        bi = _arr(b_ih).astype(dt) if b_ih is not None else xp.zeros(wi.shape[0], dt)
        bh = _arr(b_hh).astype(dt) if b_hh is not None else xp.zeros(wi.shape[0], dt)
        B = g.const(xp.concatenate([_gates(bi, kind), _gates(bh, kind)])[None], hint="B")
    else:
        B = ""
    batch_first = bool(kw.get("batch_first", False))
    xv = g.value(x, dt)
    if batch_first:
        xv = g.node("Transpose", [xv], perm=[1, 0, 2])
    ins = [xv, W, R, B, ""]
    ins.append(_unsqueeze(g, g.value(h0, dt), [0]) if h0 is not None else "")
    if kind == "LSTM":
        ins.append(_unsqueeze(g, g.value(c0, dt), [0]) if c0 is not None else "")
    while ins and ins[-1] == "":
        ins.pop()
    attrs = {"hidden_size": int(hidden), "direction": "reverse" if kw.get("reverse") else "forward"}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1  # PyTorch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    if kind == "RNN":
        attrs["activations"] = ["Tanh" if kw.get("nonlinearity", "tanh") == "tanh" else "Relu"]
    n_out = 3 if kind == "LSTM" else 2
    outs = g.node(kind, ins, n_out=n_out, **attrs)
    y = _squeeze(g, outs[0], [1])                   # (T, 1, B, H) -> (T, B, H)
    if batch_first:
        y = g.node("Transpose", [y], perm=[1, 0, 2])
    res = [y, _squeeze(g, outs[1], [0])]
    if kind == "LSTM":
        res.append(_squeeze(g, outs[2], [0]))
    return res


@exporter("LSTM", "LSTMLayer")
def _lstm(g, call):
    return _recurrent(g, call, "LSTM")


@exporter("GRU", "GRULayer")
def _gru(g, call):
    return _recurrent(g, call, "GRU")


@exporter("RNN", "RNNLayer")
def _rnn(g, call):
    return _recurrent(g, call, "RNN")


# ---------------------------------------------------------------------------------------------- rounding, scans, misc
for _name in ("Floor", "Ceil", "Round", "Sign"):
    EXPORTERS[_name] = _unary(_name)


@exporter("Trunc")
def _trunc(g, call):
    x = _ins(g, call, 1)[0]
    like = call.outputs[0]._data
    if like.dtype.kind != "f":
        return g.node("Identity", [x])
    return g.node("Where", [g.node("Less", [x, g.scalar(0, like)]), g.node("Ceil", [x]), g.node("Floor", [x])])


@exporter("Exp2")
def _exp2(g, call):
    return g.node("Pow", [g.scalar(2.0, call.outputs[0]._data), _ins(g, call, 1)[0]])


@exporter("Remainder")
def _remainder(g, call):
    a, b = _ins(g, call, 2)
    if _out_dtype(call).kind != "f":
        return g.node("Mod", [a, b], fmod=0)  # the sign of the divisor, as Python's %
    return g.node("Sub", [a, g.node("Mul", [g.node("Floor", [g.node("Div", [a, b])]), b])])


@exporter("Cumsum")
def _cumsum(g, call):
    a, axis = call.args[:2]
    return g.node("CumSum", [g.value(a, _out_dtype(call)), g.const(xp.asarray(int(axis), dtype=xp.int64))])


@exporter("Prod")
def _prod(g, call):
    a, axis, keepdim = call.args[:3]
    return _reduce(g, "ReduceProd", g.value(a, _out_dtype(call)), None if axis is None else [axis], keepdim)


@exporter("Roll")
def _roll(g, call):
    a, shifts, axes = call.args[:3]
    src = _arr(a)
    x = g.value(a)
    if axes is None:  # numpy rolls the flattened array
        flat = g.node("Reshape", [x, g.i64([-1])])
        return g.node("Reshape", [_roll_axis(g, flat, int(shifts), 0, src.size), g.i64(list(src.shape))])
    shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
    axes = axes if isinstance(axes, (tuple, list)) else (axes,)
    for s, ax in zip(shifts, axes):
        x = _roll_axis(g, x, int(s), int(ax), src.shape[int(ax)])
    return x


def _roll_axis(g, x, shift, axis, n):
    shift %= max(n, 1)
    if shift == 0:
        return x
    tail = g.node("Slice", [x, g.i64([n - shift]), g.i64([n]), g.i64([axis])])
    head = g.node("Slice", [x, g.i64([0]), g.i64([n - shift]), g.i64([axis])])
    return g.node("Concat", [tail, head], axis=axis)


@exporter("Bilinear")
def _bilinear(g, call):
    x1, x2, w = call.args[:3]
    b = call.args[3] if len(call.args) > 3 else None
    dt = _out_dtype(call)
    y = g.node("Einsum", [g.value(x1, dt), g.value(w, dt), g.value(x2, dt)], equation="...i,kij,...j->...k")
    return g.node("Add", [y, g.value(b, dt)]) if b is not None else y


@exporter("BackwardHook")
def _backward_hook(g, call):
    # the identity that reports gradients to a module's backward hooks
    return [g.node("Identity", [g.value(a)]) for a in call.args]


@exporter("Fmod")
def _fmod(g, call):
    return g.node("Mod", _ins(g, call, 2), fmod=1)


@exporter("Frac")
def _frac(g, call):
    x = _ins(g, call, 1)[0]
    like = call.outputs[0]._data
    t = g.node("Where", [g.node("Less", [x, g.scalar(0, like)]), g.node("Ceil", [x]), g.node("Floor", [x])])
    return g.node("Sub", [x, t])


@exporter("RoundedDiv")
def _rounded_div(g, call):
    a, b, mode = call.args[:3]
    dt = _out_dtype(call)
    q = g.node("Div", [g.value(a, dt), g.value(b, dt)])
    if mode == "floor":
        return g.node("Floor", [q])
    like = call.outputs[0]._data
    return g.node("Where", [g.node("Less", [q, g.scalar(0, like)]), g.node("Ceil", [q]), g.node("Floor", [q])])


@exporter("NanToNum")
def _nan_to_num(g, call):
    a, nan, posinf, neginf = call.args[:4]
    x = g.value(a)
    like = _arr(a)
    info = xp.finfo(like.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    x = g.node("Where", [g.node("IsNaN", [x]), g.scalar(nan, like), x])
    x = g.node("Where", [g.node("IsInf", [x], detect_negative=0), g.scalar(posinf, like), x])
    return g.node("Where", [g.node("IsInf", [x], detect_positive=0), g.scalar(neginf, like), x])
