"""Elementwise ops: arithmetic with broadcasting and PyTorch's type promotion, unary math, comparisons."""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.autograd.function import ComplexNotSupportedError, Function
from deepbox.ops._common import (  # noqa: F401  (cast, _as_tensor, _prepare: re-exported for the other families)
    CastFn,
    _as_tensor,
    _broadcast_error,
    _data,
    _prepare,
    _scalar,
    cast,
    no_out,
    write_out,
)
from deepbox.ops._dispatch import choose
from deepbox.tensor import Tensor, _make

xp = backend.xp
_ndarray = backend.ndarray
_LN2 = math.log(2.0)


# ----------------------------------------------------------------------------- binary arithmetic
class Add(Function):
    supports_complex = True  # linear: the conjugate of a real coefficient is itself
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    supports_complex = True  # linear: the conjugate of a real coefficient is itself
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    supports_complex = True

    @staticmethod
    def forward(ctx, a, b):
        n = ctx.needs_input_grad
        ctx.save_for_backward(a if n[1] else None, b if n[0] else None)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        if grad.dtype.kind == "c":  # complex: a gradient is multiplied by the conjugate of the derivative
            a, b = _conj(a), _conj(b)
        return (grad * b if b is not None else None), (grad * a if a is not None else None)


class Div(Function):
    supports_complex = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        if grad.dtype.kind == "c":  # complex: d(a/b)/da = 1/b and d(a/b)/db = -a/b^2, conjugated
            a, b = _conj(a), _conj(b)
        ga = grad / b
        gb = -ga * a / b if ctx.needs_input_grad[1] else None
        return (ga if ctx.needs_input_grad[0] else None), gb


class Pow(Function):
    supports_complex = True

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        if grad.dtype.kind == "c":
            return _complex_pow_grads(ctx, grad, a, b, out)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            if isinstance(b, (int, float)):
                ga = grad * (b * a ** (b - 1)) if b != 0 else xp.zeros_like(grad)
            else:
                ga = grad * xp.where(b == 0, 0.0, b * a ** xp.where(b == 0, 1.0, b - 1))
        if ctx.needs_input_grad[1]:
            with xp.errstate(divide="ignore", invalid="ignore"):
                lg = xp.where((a == 0) & (b >= 0), 0.0, out * xp.log(a))
            gb = grad * lg
        return ga, gb


def _complex_pow_grads(ctx, grad, a, b, out):
    """a ** b for complex numbers: d/da = b a^(b-1) and d/db = a^b log(a), each conjugated (holomorphic).
    At a = 0 the first is taken as 0 for b = 0 (a constant 1), the second as 0 (PyTorch's convention)."""
    ga = gb = None
    with xp.errstate(divide="ignore", invalid="ignore"):
        if ctx.needs_input_grad[0]:
            d = xp.where(b == 0, 0, b * a ** xp.where(b == 0, 1, b - 1))
            ga = grad * xp.conj(d)
        if ctx.needs_input_grad[1]:
            gb = grad * xp.conj(xp.where(a == 0, 0, out * xp.log(xp.where(a == 0, 1, a))))
    return ga, gb


class Maximum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp.maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        # ties split the gradient evenly, as PyTorch does
        w = (a > b) + 0.5 * (a == b)
        w = w.astype(grad.dtype)
        return grad * w, grad * (1 - w)


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp.minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        w = ((a < b) + 0.5 * (a == b)).astype(grad.dtype)
        return grad * w, grad * (1 - w)


class Remainder(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        if xp.asarray(a).dtype.kind in "iub":
            _check_int_divisor(a, b)
        return xp.remainder(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        gb = -grad * xp.floor(a / b) if ctx.needs_input_grad[1] else None
        return grad, gb


def _conj(v):
    """The complex conjugate of a saved operand (an array, a Python number, or None)."""
    return None if v is None else v.conjugate()


def _binary(fn, a, b, name, true_div=False):
    a, b = _prepare(a, b, true_div)
    try:
        return fn.apply(a, b)
    except ValueError as e:
        if "broadcast" in str(e):
            raise _broadcast_error(a, b, name) from None
        raise


def add(input, other, *, alpha=1, out=None):
    if alpha != 1:
        other = mul(other, alpha)
    return write_out(_binary(Add, input, other, "add"), out, "add")


def sub(input, other, *, alpha=1, out=None):
    if alpha != 1:
        other = mul(other, alpha)
    return write_out(_binary(Sub, input, other, "sub"), out, "sub")


subtract = sub


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def mul(input, other, *, out=None):
    return write_out(_binary(Mul, input, other, "mul"), out, "mul")


multiply = mul


def div(input, other, *, rounding_mode=None, out=None):
    if rounding_mode is None:
        r = _binary(Div, input, other, "div", true_div=True)
    elif rounding_mode not in ("floor", "trunc"):
        raise ValueError(
            f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found {rounding_mode!r}")
    else:
        a, b = _prepare(input, other)
        ad, bd = _data(a), _data(b)
        if xp.asarray(ad).dtype.kind in "iub":
            _check_int_divisor(ad, bd)
            q = xp.floor_divide(ad, bd)
            if rounding_mode == "trunc":  # floor rounds down; trunc rounds toward zero (exact, no float round trip)
                q = q + ((q * bd != ad) & ((xp.asarray(ad) < 0) != (xp.asarray(bd) < 0)))
            r = _make(xp.asarray(q))
        else:
            r = RoundedDiv.apply(a, b, rounding_mode)
    return write_out(r, out, "div")


class RoundedDiv(Function):
    """Float division rounded down or toward zero: piecewise constant, so its gradient is zero."""

    @staticmethod
    def forward(ctx, a, b, mode):
        q = a / b
        return xp.floor(q) if mode == "floor" else xp.trunc(q)

    @staticmethod
    def backward(ctx, grad):
        z = xp.zeros_like(grad)
        return z, z


class Fmod(Function):
    """a - trunc(a / b) * b: gradient 1 for a and -trunc(a / b) for b."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp.fmod(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        gb = -grad * xp.trunc(a / b) if ctx.needs_input_grad[1] else None
        return grad, gb


def _check_int_divisor(a, b):
    """Integer division by zero has no value: PyTorch raises where NumPy would give 0 with a warning."""
    b = xp.asarray(b)
    if b.dtype.kind in "iub" and b.size and xp.asarray(a).size and not b.all():
        raise RuntimeError("ZeroDivisionError: integer division or remainder by zero")


divide = div
true_divide = div


def floor_divide(input, other):
    r = div(input, other, rounding_mode="floor")
    if r.requires_grad:  # PyTorch has no derivative for floor_divide (div(rounding_mode="floor") has one)
        r = r.detach()
    return r


def remainder(input, other):
    return _binary(Remainder, input, other, "remainder")


def fmod(input, other):
    a, b = _prepare(input, other)
    if xp.asarray(_data(a)).dtype.kind in "iub":
        _check_int_divisor(_data(a), _data(b))
        return _make(xp.asarray(xp.fmod(_data(a), _data(b))))
    return Fmod.apply(a, b)


def pow(input, exponent):  # noqa: A001
    if not isinstance(input, Tensor):
        return _binary(Pow, _as_tensor(input) if not isinstance(input, (int, float)) else input, exponent, "pow") \
            if isinstance(exponent, Tensor) else _make(xp.asarray(input**exponent))
    return _binary(Pow, input, exponent, "pow")


def float_power(input, exponent):
    return pow(cast(_as_tensor(input), xp.float64), exponent)


def maximum(input, other):
    return _binary(Maximum, input, other, "maximum")


def minimum(input, other):
    return _binary(Minimum, input, other, "minimum")


def fmax(input, other):
    return maximum(input, other)


def fmin(input, other):
    return minimum(input, other)


# ----------------------------------------------------------------------------- unary math
class Neg(Function):
    supports_complex = True  # linear: the conjugate of a real coefficient is itself
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Abs(Function):
    supports_complex = True

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.abs(a)  # complex -> real magnitude

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        # sign(z) = z / |z| for complex z (0 at 0): the gradient of |z| = sqrt(x^2 + y^2) is x/|z| + i y/|z|
        return grad * xp.sign(a)


class Exp(Function):
    supports_complex = True

    @staticmethod
    def forward(ctx, a):
        out = xp.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out.conjugate() if out.dtype.kind == "c" else out)  # complex: exp(z) is its own derivative


class Exp2(Function):
    @staticmethod
    def forward(ctx, a):
        out = xp.exp2(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * _LN2


class Expm1(Function):
    @staticmethod
    def forward(ctx, a):
        out = xp.expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out + 1)


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Log1p(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (1 + a)


class Log2(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.log2(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (a * _LN2)


class Log10(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.log10(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (a * math.log(10.0))


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Rsqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = 1 / xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (-0.5 * out * out * out)


class Square(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * (2 * a)


class Reciprocal(Function):
    @staticmethod
    def forward(ctx, a):
        out = 1 / a
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return -grad * out * out


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.sin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * xp.cos(a)


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.cos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return -grad * xp.sin(a)


class Tan(Function):
    @staticmethod
    def forward(ctx, a):
        out = xp.tan(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 + out * out)


class Atan(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.arctan(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (1 + a * a)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = xp.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def _sigmoid(a):
    # exp of a non-positive number only: no overflow for large |a|, full precision in both tails
    e = xp.exp(-xp.abs(a))
    r = 1 / (1 + e)
    return xp.where(a >= 0, r, e * r)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        out = _sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Relu(Function):
    """``max(x, 0)``; backward ``grad where out > 0``."""

    @staticmethod
    def forward(ctx, a):
        out = xp.maximum(a, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out > 0)


class Clamp(Function):
    """Clamp to numeric bounds ``[lo, hi]`` (either may be None): gradient 1 inside, 0 outside.
    Tensor bounds go through ``maximum``/``minimum`` instead, which differentiate the bounds too."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        out = a
        if lo is not None:
            out = xp.maximum(out, lo)
        if hi is not None:
            out = xp.minimum(out, hi)
        return out if out is not a else a.copy()

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        lo, hi = ctx.lo, ctx.hi
        if lo is None:
            return grad * (a <= hi)
        if hi is None:
            return grad * (a >= lo)
        return grad * ((a >= lo) & (a <= hi))


class Erf(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return erf_array(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * (2.0 / math.sqrt(math.pi)) * xp.exp(-a * a)


def erf_array(a):
    """erf on an array with NumPy alone: W. J. Cody's rational approximations (double precision)."""
    x = xp.asarray(a, dtype=xp.float64)
    ax = xp.abs(x)
    out = xp.empty_like(x)
    small = ax < 0.5
    if small.any():
        z = x[small]
        t = z * z
        p = (((0.185777706184603153 * t + 3.16112374387056560) * t + 113.864154151050156) * t
             + 377.485237685302021) * t + 3209.37758913846947
        q = (((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t \
            + 2844.23683343917062
        out[small] = z * p / q
    mid = (ax >= 0.5) & (ax < 4.0)
    if mid.any():
        z = ax[mid]
        p = (((((((2.15311535474403846e-8 * z + 0.564188496988670089) * z + 8.88314979438837594) * z
                 + 66.1191906371416295) * z + 298.635138197400131) * z + 881.952221241769090) * z
              + 1712.04761263407058) * z + 2051.07837782607147) * z + 1230.33935479799725
        q = (((((((z + 15.7449261107098347) * z + 117.693950891312499) * z + 537.181101862009858) * z
                + 1621.38957456669019) * z + 3290.79923573345963) * z + 4362.61909014324716) * z
             + 3439.36767414372164) * z + 1230.33935480374942
        r = 1.0 - xp.exp(-z * z) * p / q
        out[mid] = xp.sign(x[mid]) * r
    big = ax >= 4.0
    if big.any():
        z = ax[big]
        zi2 = 1.0 / (z * z)
        p = ((((0.0163153871373020978 * zi2 + 0.305326634961232344) * zi2 + 0.360344899949804439) * zi2
              + 0.125781726111229246) * zi2 + 0.0160837851487422766) * zi2 + 0.000658749161529837803
        q = ((((zi2 + 2.56852019228982242) * zi2 + 1.87295284992346725) * zi2 + 0.527905102951428412) * zi2
             + 0.0605183413124413191) * zi2 + 0.00233520497626869185
        r = (1.0 / math.sqrt(math.pi) - zi2 * p / q) / z
        r = 1.0 - xp.exp(-z * z) * r
        out[big] = xp.sign(x[big]) * r
    nan = xp.isnan(x)
    if nan.any():
        out[nan] = xp.nan
    return out.astype(xp.asarray(a).dtype, copy=False)


class _ZeroGrad(Function):
    """Piecewise-constant functions: their gradient is zero wherever it exists."""

    fn = None

    @classmethod
    def forward(cls, ctx, a):
        return cls.fn(a)

    @staticmethod
    def backward(ctx, grad):
        return xp.zeros_like(grad)


class Sign(_ZeroGrad):
    fn = staticmethod(xp.sign)


class Floor(_ZeroGrad):
    fn = staticmethod(xp.floor)


class Ceil(_ZeroGrad):
    fn = staticmethod(xp.ceil)


class RoundFn(Function):
    """Round half to even at ``decimals`` places (PyTorch's rule); a step function, so gradient zero."""

    @staticmethod
    def forward(ctx, a, decimals):
        return xp.round(a, decimals)

    @staticmethod
    def backward(ctx, grad):
        return xp.zeros_like(grad)


class Trunc(_ZeroGrad):
    fn = staticmethod(xp.trunc)


class Frac(Function):
    @staticmethod
    def forward(ctx, a):
        return a - xp.trunc(a)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _unary(cls):
    """The public function of a one-input Function that computes in floating point (ints become float)."""

    def op(input, *, out=None):
        if not isinstance(input, Tensor):
            input = _as_tensor(input)
        if input._data.dtype.kind not in "fc":  # a complex input goes to the Function, which accepts or refuses it
            input = cast(input, backend.default_float_np())
        return write_out(cls.apply(input), out, op.__name__)

    op.__name__ = cls.__name__.lower()
    return op


exp = _unary(Exp)
exp2 = _unary(Exp2)
expm1 = _unary(Expm1)
log = _unary(Log)
log1p = _unary(Log1p)
log2 = _unary(Log2)
log10 = _unary(Log10)
sqrt = _unary(Sqrt)
rsqrt = _unary(Rsqrt)
reciprocal = _unary(Reciprocal)
sin = _unary(Sin)
cos = _unary(Cos)
tan = _unary(Tan)
atan = _unary(Atan)
arctan = atan
tanh = _unary(Tanh)
sigmoid = _unary(Sigmoid)
erf = _unary(Erf)
frac = _unary(Frac)


def _int_preserving(cls):
    """The public function of a one-input Function that keeps integer dtypes (``abs``, ``floor``, ...)."""

    def op(input, *, out=None):
        if not isinstance(input, Tensor):
            input = _as_tensor(input)
        return write_out(cls.apply(input), out, op.__name__)

    op.__name__ = cls.__name__.lower()
    return op


neg = _int_preserving(Neg)
negative = neg
abs = _int_preserving(Abs)  # noqa: A001
absolute = abs
square = _int_preserving(Square)
sign = _int_preserving(Sign)
floor = _int_preserving(Floor)
ceil = _int_preserving(Ceil)
trunc = _int_preserving(Trunc)
fix = trunc


def relu(input, *, out=None):
    if not isinstance(input, Tensor):
        input = _as_tensor(input)
    return write_out(choose(Relu, input._data).apply(input), out, "relu")


def round(input, *, decimals=0, out=None):  # noqa: A001
    return write_out(RoundFn.apply(_as_tensor(input), int(decimals)), out, "round")


def sgn(input):
    return sign(input)


def clamp(input, min=None, max=None, *, out=None):  # noqa: A002
    """Clamp to [min, max]; bounds may be numbers or tensors. Gradient 1 inside, 0 outside."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    x = input
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if min is not None:
            x = maximum(x, min)
        if max is not None:
            x = minimum(x, max)
        return write_out(x, out, "clamp")
    if x._data.dtype.kind in "iu" and (isinstance(min, float) or isinstance(max, float)):
        x = cast(x, backend.default_float_np())
    if x._data.dtype.kind in "iu":
        min, max = _int_bound(x, min), _int_bound(x, max)
    return write_out(Clamp.apply(x, min, max), out, "clamp")


def _int_bound(x, v):
    """A clamp bound in an integer tensor's dtype, converted as PyTorch does: too large raises, and a
    negative bound of an unsigned tensor wraps around (uint8: -3 -> 253)."""
    if v is None or isinstance(v, Tensor):
        return v
    info = xp.iinfo(x._data.dtype)
    if info.min == 0 and v < 0:
        return v % (info.max + 1)
    if not info.min <= v <= info.max:
        if x._data.size == 0:
            return info.max if v > 0 else info.min
        raise RuntimeError(f"clamp: value {v} cannot be converted to type {x.dtype.name} without overflow")
    return v


clip = clamp


def clamp_min(input, min):  # noqa: A002
    return clamp(input, min=min)


def clamp_max(input, max):  # noqa: A002
    return clamp(input, max=max)


# ----------------------------------------------------------------------------- where, lerp
class Where(Function):
    supports_complex = True  # a selection: each branch gets the gradient where it was chosen

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        n = ctx.needs_input_grad
        z = xp.zeros((), grad.dtype)
        return (None,
                xp.where(cond, grad, z) if n[1] else None,
                xp.where(cond, z, grad) if n[2] else None)


def where(condition, input=None, other=None, *, out=None):
    """``where(cond, a, b)`` picks from ``a`` where ``cond`` else ``b``.

    ``where(cond)`` alone gives ``nonzero(cond, as_tuple=True)``.
    """
    cond = _as_tensor(condition)
    if input is None and other is None:
        from deepbox.ops.indexing import nonzero

        return nonzero(cond, as_tuple=True)
    if cond._data.dtype != xp.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{cond.dtype}")
    a, b = _prepare(input, other)
    if not isinstance(a, Tensor):
        a = _make(xp.asarray(a, dtype=b._data.dtype if isinstance(b, Tensor) else None))
    try:
        r = Where.apply(cond, a, b)
    except ValueError:
        raise RuntimeError(
            f"where: the shapes of condition {tuple(cond.shape)}, input {tuple(_as_tensor(a).shape)} and other "
            f"{tuple(_as_tensor(b).shape)} cannot be broadcast together"
        ) from None
    return write_out(r, out, "where")


def lerp(input, end, weight):
    return add(input, mul(weight, sub(end, input)))


def addcmul(input, tensor1, tensor2, *, value=1):
    return add(input, mul(mul(tensor1, tensor2), value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    return add(input, mul(div(tensor1, tensor2), value))


# ----------------------------------------------------------------------------- comparisons (no gradient)
def _compare(ufunc, name):
    ordering = name not in ("eq", "ne")

    def op(input, other):
        a, b = _prepare(input, other)
        if ordering and xp.asarray(_data(a)).dtype.kind == "c":  # NumPy would order complex numbers lexically
            raise ComplexNotSupportedError(name)
        try:
            return _make(xp.asarray(ufunc(_data(a), _data(b))))
        except ValueError:
            raise _broadcast_error(a, b, name) from None

    op.__name__ = name
    return op


eq = _compare(xp.equal, "eq")
ne = _compare(xp.not_equal, "ne")
lt = _compare(xp.less, "lt")
le = _compare(xp.less_equal, "le")
gt = _compare(xp.greater, "gt")
ge = _compare(xp.greater_equal, "ge")
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _logical(ufunc, name):
    def op(input, other):
        return _make(xp.asarray(ufunc(_data(_as_tensor(input)), _data(_as_tensor(other)))))

    op.__name__ = name
    return op


logical_and = _logical(xp.logical_and, "logical_and")
logical_or = _logical(xp.logical_or, "logical_or")
logical_xor = _logical(xp.logical_xor, "logical_xor")


def logical_not(input):
    return _make(xp.logical_not(_as_tensor(input)._data))


def _bitwise(ufunc, name):
    def op(input, other):
        a, b = _prepare(input, other)
        if xp.asarray(_data(a)).dtype.kind == "f":
            raise NotImplementedError(f"{name} is only supported for integer and boolean tensors")
        return _make(xp.asarray(ufunc(_data(a), _data(b))))

    op.__name__ = name
    return op


bitwise_and = _bitwise(xp.bitwise_and, "bitwise_and")
bitwise_or = _bitwise(xp.bitwise_or, "bitwise_or")
bitwise_xor = _bitwise(xp.bitwise_xor, "bitwise_xor")


def bitwise_not(input):
    a = _as_tensor(input)._data
    if a.dtype.kind == "f":
        raise NotImplementedError("bitwise_not is only supported for integer and boolean tensors")
    return _make(xp.invert(a))


def isnan(input):
    return _make(xp.isnan(_as_tensor(input)._data))


def isinf(input):
    return _make(xp.isinf(_as_tensor(input)._data))


def isfinite(input):
    return _make(xp.isfinite(_as_tensor(input)._data))


def isposinf(input):
    return _make(xp.isposinf(_as_tensor(input)._data))


def isneginf(input):
    return _make(xp.isneginf(_as_tensor(input)._data))


class NanToNum(Function):
    """NaN and infinities replaced by numbers: gradient 1 where the input was finite, 0 where replaced."""

    @staticmethod
    def forward(ctx, a, nan, posinf, neginf):
        ctx.save_for_backward(a)
        return xp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return xp.where(xp.isfinite(a), grad, xp.zeros((), grad.dtype))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    x = _as_tensor(input)
    if x._data.dtype.kind != "f":
        return x.clone()
    return NanToNum.apply(x, nan, posinf, neginf)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _as_tensor(input)._data, _as_tensor(other)._data
    return _make(xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    a, b = _as_tensor(input)._data, _as_tensor(other)._data
    return bool(xp.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input, other) -> bool:
    a, b = _as_tensor(input)._data, _as_tensor(other)._data
    return a.shape == b.shape and bool((a == b).all())


# ----------------------------------------------------------------------------- inverse trig and hyperbolic
class Asin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.arcsin(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / xp.sqrt(1 - a * a)  # d/dx asin x = 1 / sqrt(1 - x^2)


class Acos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.arccos(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return -grad / xp.sqrt(1 - a * a)


class Sinh(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.sinh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * xp.cosh(a)


class Cosh(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.cosh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * xp.sinh(a)


class Asinh(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.arcsinh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / xp.sqrt(a * a + 1)


class Acosh(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.arccosh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / xp.sqrt(a * a - 1)


class Atanh(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp.arctanh(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (1 - a * a)


def _quiet_unary(cls):
    """A unary op whose domain is limited (asin of 2 is NaN, as in PyTorch, without NumPy's warning)."""
    base = _unary(cls)

    def op(input, *, out=None):
        with xp.errstate(invalid="ignore", divide="ignore"):
            return base(input, out=out)

    op.__name__ = cls.__name__.lower()
    return op


asin = _quiet_unary(Asin)
arcsin = asin
acos = _quiet_unary(Acos)
arccos = acos
sinh = _quiet_unary(Sinh)
cosh = _quiet_unary(Cosh)
asinh = _quiet_unary(Asinh)
arcsinh = asinh
acosh = _quiet_unary(Acosh)
arccosh = acosh
atanh = _quiet_unary(Atanh)
arctanh = atanh


# ----------------------------------------------------------------------------- log-space sums and signs
class LogAddExp(Function):
    """log(e^a + e^b) without overflow; ``base2`` for log2(2^a + 2^b). Gradients: the softmax weights."""

    @staticmethod
    def forward(ctx, a, b, base2):
        out = xp.logaddexp2(a, b) if base2 else xp.logaddexp(a, b)
        ctx.save_for_backward(a, b, out)
        ctx.base2 = base2
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        pw = xp.exp2 if ctx.base2 else xp.exp
        return grad * pw(a - out), grad * pw(b - out)


def _float_operands(input, other, name):
    a, b = _prepare(input, other)
    if xp.asarray(_data(a)).dtype.kind != "f":
        raise NotImplementedError(f'"{name}" is implemented for floating point tensors only')
    return a, b


def logaddexp(input, other):
    return LogAddExp.apply(*_float_operands(input, other, "logaddexp"), False)


def logaddexp2(input, other):
    return LogAddExp.apply(*_float_operands(input, other, "logaddexp2"), True)


class CopySign(Function):
    """|a| with the sign of b: gradient sign(a) * sign(result) for a (0 where a = 0, as PyTorch), none for b."""

    @staticmethod
    def forward(ctx, a, b):
        out = xp.copysign(a, b)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved_tensors
        return grad * xp.sign(a) * xp.sign(out), xp.zeros_like(grad) if ctx.needs_input_grad[1] else None


def copysign(input, other):
    a, b = _prepare(input, other, true_div=True)
    return CopySign.apply(a, b)


def _shift(ufunc, name):
    """``<<`` / ``>>`` on integer tensors; PyTorch gives 0 (or -1 for >> of negatives) past the width."""

    def op(input, other):
        a, b = _prepare(input, other)
        ad, bd = xp.asarray(_data(a)), xp.asarray(_data(b))
        if ad.dtype.kind == "f":
            raise NotImplementedError(f'"{name}_cpu" not implemented for floating point tensors')
        if ad.dtype.kind == "b":
            ad, bd = ad.astype(xp.int64), bd.astype(xp.int64)
        bits = ad.dtype.itemsize * 8
        big = (bd < 0) | (bd >= bits)
        safe = xp.where(big, 0, bd).astype(ad.dtype)
        r = ufunc(ad, safe)
        if big.any():
            past = xp.where(ad < 0, -1, 0).astype(ad.dtype) if name == "rshift" else xp.zeros((), ad.dtype)
            r = xp.where(big, past, r)
        return _make(xp.asarray(r, dtype=ad.dtype))

    op.__name__ = "bitwise_left_shift" if name == "lshift" else "bitwise_right_shift"
    return op


bitwise_left_shift = _shift(xp.left_shift, "lshift")
bitwise_right_shift = _shift(xp.right_shift, "rshift")


# ----------------------------------------------------------------------------- the angle of a point
class Atan2(Function):
    """The angle of the point (b, a): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp.arctan2(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        with xp.errstate(invalid="ignore", divide="ignore"):
            g = grad / (a * a + b * b)
        return g * b, -g * a


def atan2(input, other, *, out=None):
    return write_out(_binary(Atan2, input, other, "atan2", true_div=True), out, "atan2")


arctan2 = atan2
