"""In-place ops (``x.add_(y)``, ``x[i] = v``, ``x.zero_()``): PyTorch's semantics on NumPy arrays.

An in-place op writes into the tensor's own array (so views see the change)
and bumps the version counter that the tensor shares with its views; backward
then refuses any saved value that changed. When the op is recorded in the graph,
the result of the out-of-place op is computed from a snapshot of the old value
and the tensor takes over the new node, as PyTorch's rebasing does.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.grad_mode import state as _grad_state
from deepbox.ops import movement
from deepbox.ops._common import _as_tensor, cast
from deepbox.ops.elementwise import add, div, mul, sub
from deepbox.ops.indexing import _convert_key, index_put
from deepbox.tensor import Tensor, _make

xp = backend.xp


def _check_leaf(t: Tensor):
    if not (t.requires_grad and _grad_state.enabled):
        return
    if t._ctx is None:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation. Wrap the update in "
            "`with deepbox.no_grad():` (as an optimiser does) or use an out-of-place operation."
        )
    # a view (x[1:], w[0], x.t(), ...) shares its base's memory and version counter: writing into it would
    # change the leaf behind autograd's back
    ctx = t._ctx
    while type(ctx)._is_view:
        base = ctx.parents[0]
        if isinstance(base, Tensor):
            if base._version is t._version:
                raise RuntimeError(
                    "a view of a leaf Variable that requires grad is being used in an in-place operation. "
                    "Change the leaf under `with deepbox.no_grad():` or work on a .clone() of the view.")
            return
        if base is None:
            return
        ctx = base


def inplace(t: Tensor, fn, *others):
    """Apply ``fn`` (an out-of-place op on tensors) and write its result into ``t``."""
    if not isinstance(t, Tensor):
        raise TypeError(f"in-place operations need a Tensor, got {type(t).__name__}")
    record = _grad_state.enabled and (
        t.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
    )
    _check_leaf(t)
    if record:
        # the graph needs the old value: compute from a snapshot that keeps t's old graph edge
        old = _make(t._data.copy())
        old.requires_grad = t.requires_grad
        old._ctx, old._out_idx = t._ctx, t._out_idx
        r = fn(old, *others)
    else:
        prev = _grad_state.enabled
        _grad_state.enabled = False
        try:
            r = fn(t, *others)
        finally:
            _grad_state.enabled = prev
    rd = r._data
    if rd.shape != t._data.shape:
        raise RuntimeError(
            f"output with shape {list(t._data.shape)} doesn't match the broadcast shape {list(rd.shape)}"
        )
    if rd.dtype != t._data.dtype and not xp.can_cast(rd.dtype, t._data.dtype, "same_kind"):
        raise RuntimeError(f"result type {backend.from_numpy_dtype(rd.dtype).name} can't be cast to the desired "
                           f"output type {t.dtype.name}")
    if rd is not t._data:
        t._data[...] = rd
    t._version[0] += 1
    if record:
        t._ctx, t._out_idx = r._ctx, r._out_idx
        t.requires_grad = r.requires_grad
    return t


def _fast_binary(ufunc):
    """In-place arithmetic without graph: one NumPy ufunc writing into the tensor's array."""

    def op(t, other, alpha=None):
        if (_grad_state.enabled and (t.requires_grad or (isinstance(other, Tensor) and other.requires_grad))):
            return None
        o = other._data if isinstance(other, Tensor) else other
        if alpha is not None and alpha != 1:
            o = o * alpha
        try:
            ufunc(t._data, o, out=t._data, casting="same_kind")
        except (TypeError, ValueError) as e:  # numpy's casting/broadcast errors, in PyTorch's words
            if "cast" in str(e):
                dt = backend.result_dtype(t._data, o if not isinstance(o, xp.ndarray) else o)
                raise RuntimeError(
                    f"result type {dt} can't be cast to the desired output type {t.dtype.name}") from None
            raise RuntimeError(f"output with shape {list(t._data.shape)} doesn't match the broadcast shape "
                               f"{list(xp.broadcast_shapes(t._data.shape, xp.shape(o)))}") from None
        t._version[0] += 1
        return t

    return op


_add_fast = _fast_binary(xp.add)
_sub_fast = _fast_binary(xp.subtract)
_mul_fast = _fast_binary(xp.multiply)
_div_fast = _fast_binary(xp.true_divide)


def add_(t, other, *, alpha=1):
    r = _add_fast(t, other, alpha)
    return r if r is not None else inplace(t, lambda a, b: add(a, b, alpha=alpha), other)


def sub_(t, other, *, alpha=1):
    r = _sub_fast(t, other, alpha)
    return r if r is not None else inplace(t, lambda a, b: sub(a, b, alpha=alpha), other)


def mul_(t, other):
    r = _mul_fast(t, other)
    return r if r is not None else inplace(t, mul, other)


def div_(t, other, *, rounding_mode=None):
    if rounding_mode is None and t._data.dtype.kind == "f":
        r = _div_fast(t, other)
        if r is not None:
            return r
    return inplace(t, lambda a, b: div(a, b, rounding_mode=rounding_mode), other)


def zero_(t):
    _check_leaf(t)
    if _grad_state.enabled and t.requires_grad:
        return inplace(t, lambda a: a * 0)
    t._data[...] = 0
    t._version[0] += 1
    return t


def fill_(t, value):
    _check_leaf(t)
    v = value.item() if isinstance(value, Tensor) else value
    if _grad_state.enabled and (t.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
        return inplace(t, lambda a: add(mul(a, 0), value))
    t._data[...] = v
    t._version[0] += 1
    return t


def copy_(t, src, non_blocking=False):
    src = _as_tensor(src)
    try:
        xp.broadcast_to(src._data, t._data.shape)
    except ValueError:
        raise RuntimeError(f"copy_: the source of shape {list(src.shape)} cannot be broadcast to the destination's "
                           f"shape {list(t.shape)}") from None
    if not (_grad_state.enabled and (t.requires_grad or src.requires_grad)):
        _check_leaf(t)
        t._data[...] = src._data
        t._version[0] += 1
        return t

    def f(a, s):
        s = movement.expand(s, tuple(a.shape))
        if s._data.dtype != a._data.dtype:
            s = cast(s, a._data.dtype)
        return add(mul(a, 0), s)

    return inplace(t, f, src)


def _random_fill(t, arr):
    if _grad_state.enabled and t.requires_grad and t._ctx is None:
        _check_leaf(t)
    t._data[...] = arr
    t._version[0] += 1
    return t


def uniform_(t, a=0.0, b=1.0, *, generator=None):
    return _random_fill(t, backend.rng(generator).uniform(a, b, t._data.shape))


def normal_(t, mean=0.0, std=1.0, *, generator=None):
    return _random_fill(t, backend.rng(generator).normal(mean, std, t._data.shape))


def bernoulli_(t, p=0.5, *, generator=None):
    probs = p._data if isinstance(p, Tensor) else xp.asarray(p)
    if ((probs < 0) | (probs > 1)).any():
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    return _random_fill(t, backend.rng(generator).random(t._data.shape) < probs)


def exponential_(t, lambd=1.0, *, generator=None):
    return _random_fill(t, backend.rng(generator).exponential(1.0 / lambd, t._data.shape))


def random_(t, low=0, high=None, *, generator=None):
    if high is None:
        low, high = 0, low if low else 2**24
    return _random_fill(t, backend.rng(generator).integers(low, high, t._data.shape))


def setitem(input, key, value):
    """``x[key] = value`` in place, recorded in the graph when needed."""
    key, _ = _convert_key(key)
    return inplace(input, lambda t: index_put(t, key, value))


def inplace_variant(fn, name):
    """``x.name_(*args)`` for an out-of-place op ``fn``: ``fn(x, *args)`` written into ``x`` (see ``inplace``)."""

    def op(t, *args, **kwargs):
        return inplace(t, lambda a, *rest: fn(a, *rest, **kwargs), *args)

    op.__name__ = name
    return op


def _shape_inplace(fn, name):
    """``x.t_()``, ``x.squeeze_()``...: ``x`` takes the new view's shape; no autograd through them."""

    def op(t, *args, **kwargs):
        r = fn(t, *args, **kwargs)
        t._data = r._data
        t._version[0] += 1
        return t

    op.__name__ = name
    return op


t_ = _shape_inplace(movement.t, "t_")
transpose_ = _shape_inplace(movement.transpose, "transpose_")
swapaxes_ = _shape_inplace(movement.swapaxes, "swapaxes_")
swapdims_ = _shape_inplace(movement.swapdims, "swapdims_")
squeeze_ = _shape_inplace(movement.squeeze, "squeeze_")
unsqueeze_ = _shape_inplace(movement.unsqueeze, "unsqueeze_")
