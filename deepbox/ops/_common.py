"""What every op family shares, at the bottom of ``deepbox/ops`` (it imports no op family).

Operand handling (``_as_tensor``, PyTorch's type promotion in ``_prepare``), the one differentiable
cast, dimension checks, and ``out=``: ``write_out`` for the ops that take it, ``no_out`` for the
ones that accept the argument but do not support it.
"""
from __future__ import annotations

import warnings

from deepbox import backend
from deepbox.autograd.function import ComplexNotSupportedError, Function
from deepbox.autograd.grad_mode import state as _grad_state
from deepbox.tensor import Tensor, _make, _to_array

xp = backend.xp
_ndarray = backend.ndarray
_bmax = max


# ----------------------------------------------------------------------------- operands
def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else _make(_to_array(x))


def _data(x):
    return x._data if isinstance(x, Tensor) else x


def _scalar(x):
    """A Python scalar for weak (scalar) type promotion, or None if ``x`` is not a scalar."""
    if isinstance(x, (int, float, bool, complex)):
        return x
    if isinstance(x, xp.generic):
        return x.item()
    return None


def _prepare(a, b, true_div=False):
    """Bring two operands to PyTorch's result dtype; Tensors stay Tensors, scalars stay scalars."""
    if isinstance(a, Tensor):
        ad = a._data.dtype
        if isinstance(b, Tensor):
            if ad == b._data.dtype and not (true_div and ad.kind != "f"):
                return a, b
        elif type(b) is float:
            if ad.kind == "f":
                return a, b
        elif type(b) is int:
            if ad.kind == "f" or (ad.kind in "iu" and not true_div):
                return a, b
    # general path: compute PyTorch's result dtype, cast what needs casting
    ops = []
    for x in (a, b):
        if isinstance(x, Tensor):
            ops.append(x._data)
        else:
            s = _scalar(x)
            ops.append(s if s is not None else _to_array(x))
    rd = backend.result_dtype(*ops)
    if true_div and rd.kind not in "fc":
        rd = backend.default_float_np()
    out = []
    for x, o in zip((a, b), ops):
        if isinstance(x, Tensor):
            out.append(x if x._data.dtype == rd else cast(x, rd))
        elif isinstance(o, _ndarray):
            out.append(_make(o.astype(rd, copy=False)))
        else:
            # a Python scalar: exact in the result dtype's kind (a real one stays real beside a complex tensor)
            k = rd.kind
            if k == "c":
                out.append(o if isinstance(o, complex) else float(o))
            else:
                out.append(float(o) if k == "f" else (bool(o) if k == "b" else int(o)))
    return out[0], out[1]


def _promote_all(tensors):
    """Tensors (or array-likes) cast to their common PyTorch result dtype."""
    ts = [_as_tensor(t) for t in tensors]
    dt = backend.result_dtype(*[t._data for t in ts]) if len({t._data.dtype for t in ts}) > 1 else None
    if dt is not None:
        ts = [t if t._data.dtype == dt else cast(t, dt) for t in ts]
    return ts


def _broadcast_error(a, b, op):
    sa = tuple(a._data.shape) if isinstance(a, Tensor) else ()
    sb = tuple(b._data.shape) if isinstance(b, Tensor) else ()
    return RuntimeError(
        f"{op}: the shapes {sa} and {sb} cannot be broadcast together: each dimension, counted from the "
        "right, must be equal or 1"
    )


def _one_axis(d, ndim):
    """``d`` as a non-negative axis of an ``ndim``-D tensor (None for 0-D); PyTorch's IndexError out of range."""
    n = _bmax(ndim, 1)
    if not isinstance(d, int) and not (hasattr(d, "__index__")):
        raise TypeError(f"dim must be an int, got {type(d).__name__}")
    d = int(d)
    if not -n <= d < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
    return d % n if ndim else None


# ----------------------------------------------------------------------------- casting
class CastFn(Function):
    supports_complex = True

    @staticmethod
    def forward(ctx, a, dtype):
        # real -> complex: the gradient a real input gets is the real part of the complex one
        ctx.real_input = a.dtype.kind != "c" and xp.dtype(dtype).kind == "c"
        if a.dtype.kind == "c" and xp.dtype(dtype).kind != "c":
            warnings.warn("Casting complex values to real discards the imaginary part", UserWarning, stacklevel=4)
            return a.real.astype(dtype)
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.real if ctx.real_input else grad  # the engine casts back to the input's dtype


def cast(x: Tensor, dtype, explicit: bool = False) -> Tensor:
    """``x`` converted to ``dtype``; differentiable into float and complex dtypes, a constant otherwise.

    Ops call it to bring their inputs to the dtype they compute in; a complex input would lose its imaginary
    part there, so it is refused unless the user asked for the conversion (``explicit``: ``Tensor.to``)."""
    nd = backend.to_numpy_dtype(dtype)
    if not explicit and nd.kind != "c" and x._data.dtype.kind == "c":
        raise ComplexNotSupportedError("this op")
    if nd.kind not in "fc" and x.requires_grad and _grad_state.enabled:
        with _NoGrad():
            return CastFn.apply(x, nd)
    return CastFn.apply(x, nd)


class _NoGrad:
    def __enter__(self):
        self.prev = _grad_state.enabled
        _grad_state.enabled = False

    def __exit__(self, *exc):
        _grad_state.enabled = self.prev


# ----------------------------------------------------------------------------- out=
def write_out(result: Tensor, out, name: str) -> Tensor:
    """PyTorch's ``out=``: ``result`` written into ``out`` (resized if its shape differs), ``out`` returned.

    As in PyTorch, ``out=`` does not record a graph: it is refused when an input requires grad.
    """
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be a Tensor, not {type(out).__name__}")
    if _grad_state.enabled and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    r, o = result._data, out._data
    if r.dtype != o.dtype and not xp.can_cast(r.dtype, o.dtype, "same_kind"):
        raise RuntimeError(f"{name}(): result type {_TORCH_NAMES[r.dtype.name]} can't be cast to the desired output "
                           f"type {_TORCH_NAMES[o.dtype.name]}")
    if r.shape != o.shape:
        if o.size:
            warnings.warn(f"{name}(): an output with one or more elements was resized since it had shape "
                          f"{list(o.shape)}, which does not match the required output shape {list(r.shape)}.",
                          UserWarning, stacklevel=3)
        out._data = xp.empty(r.shape, o.dtype)
    out._data[...] = r
    out._version[0] += 1
    return out


_TORCH_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool", "complex64": "ComplexFloat",
                "complex128": "ComplexDouble"}


def no_out(out, name: str) -> None:
    """Refuse an ``out=`` that this op does not implement (rather than ignore it)."""
    if out is not None:
        raise NotImplementedError(f"{name}(): the 'out' argument is not supported by deepbox; use the returned "
                                  f"tensor (or out.copy_({name}(...))) instead")
