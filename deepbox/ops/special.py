"""Special functions and their derivatives: the gamma family, error functions, Bessel functions.

NumPy has almost none of these (only ``i0``), so each is computed here from a classical
approximation in float64 and cast back to its input's dtype:

* ``lgamma``: Lanczos' series (g = 7, nine terms), with the reflection formula below 1/2;
* ``digamma`` and ``polygamma``: the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10,
  then the asymptotic (Stirling) series in Bernoulli numbers;
* ``erfc``/``erfcx``: W. J. Cody's rational approximations of erfc on [0.5, 4) and [4, inf),
  the same that ``erf`` uses, kept scaled by exp(x^2) so nothing underflows;
* ``i0e``/``i1e``: the power series up to |x| = 20 and the asymptotic expansion beyond;
* ``gammainc``: the series of P(a, x) below x = a + 1 and Lentz's continued fraction of
  Q(a, x) above (Numerical Recipes, section 6.2).

Each derivative is written beside its function: d lgamma = digamma, d digamma = polygamma(1),
d erfc = -2/sqrt(pi) exp(-x^2), d I0 = I1, d I1 = I0 - I1/x, and so on.
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.tensor import Tensor

xp = backend.xp

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2 = math.sqrt(2.0)
_LOG_2PI_HALF = 0.5 * math.log(2.0 * math.pi)

_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)
# Bernoulli numbers B_2, B_4, ..., B_14 for the asymptotic series of the polygamma functions
_BERNOULLI = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6)


def _f64(a):
    return xp.asarray(a, dtype=xp.float64)


def _sinpi(x):
    """sin(pi x), exact at the integers (reduce x modulo 2 first)."""
    r = xp.remainder(x, 2.0)
    return xp.where(r == xp.floor(r), 0.0, xp.sin(math.pi * r))


# --------------------------------------------------------------------------- the gamma family
def lgamma_array(x):
    """log |Gamma(x)| in float64."""
    x = _f64(x)
    refl = x < 0.5
    z = xp.where(refl, 1.0 - x, x) - 1.0  # Lanczos' series is written for Gamma(z + 1)
    s = xp.full_like(z, _LANCZOS[0])
    for k in range(1, len(_LANCZOS)):
        s = s + _LANCZOS[k] / (z + k)
    t = z + _LANCZOS_G + 0.5
    with xp.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lg = _LOG_2PI_HALF + (z + 0.5) * xp.log(t) - t + xp.log(s)
        # Gamma(x) Gamma(1 - x) = pi / sin(pi x); at the poles (0, -1, -2, ...) lgamma is +inf
        out = xp.where(refl, math.log(math.pi) - xp.log(xp.abs(_sinpi(x))) - lg, lg)
    out = xp.where(xp.isinf(x), xp.inf, out)
    return xp.where((x == 1.0) | (x == 2.0), 0.0, out)  # exact zeros, as Gamma(1) = Gamma(2) = 1


def _asymptotic_shift(x, threshold):
    """How many unit steps bring every finite x up to ``threshold`` (0 where x is already there)."""
    need = xp.where(xp.isfinite(x), xp.ceil(threshold - x), 0.0)
    return int(max(0.0, float(need.max()))) if need.size else 0


def digamma_array(x):
    """psi(x) = d/dx log Gamma(x) in float64."""
    x = _f64(x)
    refl = x < 0.5
    y = xp.where(refl, 1.0 - x, x)  # psi(1 - x) - psi(x) = pi / tan(pi x)
    acc = xp.zeros_like(y)
    for _ in range(_asymptotic_shift(y, 10.0)):
        small = y < 10.0
        acc = acc - xp.where(small, 1.0 / y, 0.0)
        y = xp.where(small, y + 1.0, y)
    y2 = 1.0 / (y * y)
    series = xp.zeros_like(y)
    for k in range(len(_BERNOULLI), 0, -1):
        series = (series + _BERNOULLI[k - 1] / (2 * k)) * y2
    with xp.errstate(divide="ignore", invalid="ignore"):
        out = acc + xp.log(y) - 0.5 / y - series
        cot = xp.cos(math.pi * xp.remainder(x, 1.0)) / xp.sin(math.pi * xp.remainder(x, 1.0))
        out = xp.where(refl, out - math.pi * cot, out)
    # PyTorch: psi(0) = -inf, psi at the negative integers is NaN, psi(inf) = inf
    out = xp.where(x == 0, -xp.inf, out)
    out = xp.where((x < 0) & (x == xp.floor(x)), xp.nan, out)
    out = xp.where(x == xp.inf, xp.inf, out)
    return out


def polygamma_array(n: int, x):
    """The n-th derivative of digamma (n >= 1) in float64."""
    if n == 0:
        return digamma_array(x)
    x = _f64(x)
    sign = 1.0 if n % 2 == 1 else -1.0  # (-1)^(n + 1)
    fact = math.factorial(n)
    y = x.copy()
    acc = xp.zeros_like(y)
    # psi^(n)(y) = psi^(n)(y + 1) + (-1)^(n+1) n! / y^(n+1)
    with xp.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(min(_asymptotic_shift(y, 15.0), 100_000)):
            small = y < 15.0
            acc = acc + xp.where(small, sign * fact / y ** (n + 1), 0.0)
            y = xp.where(small, y + 1.0, y)
        series = math.factorial(n - 1) / y ** n + fact / (2.0 * y ** (n + 1))
        for k, b in enumerate(_BERNOULLI, start=1):
            series = series + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / y ** (2 * k + n)
        out = acc + sign * series
    # at the poles 0, -1, -2, ...: (-1)^(n+1) n! / x^(n+1) from the left and the right alike
    out = xp.where((x <= 0) & (x == xp.floor(x)), xp.inf if n % 2 == 1 else -xp.inf, out)
    out = xp.where(x == xp.inf, 0.0, out)
    return out


def gammainc_array(a, x):
    """The regularised lower incomplete gamma function P(a, x) in float64."""
    a, x = xp.broadcast_arrays(_f64(a), _f64(x))
    out = xp.full(a.shape, xp.nan)
    with xp.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        valid = (a > 0) & (x >= 0)
        log_pre = a * xp.log(xp.where(x > 0, x, 1.0)) - x - lgamma_array(a)
        ser = valid & (x < a + 1)
        if ser.any():  # P = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n))
            aa, xx = a[ser], x[ser]
            term = 1.0 / aa
            total = term.copy()
            ap = aa.copy()
            for _ in range(1000):
                ap = ap + 1.0
                term = term * xx / ap
                total = total + term
                if (xp.abs(term) < xp.abs(total) * 1e-17).all():
                    break
            out[ser] = xp.where(xx == 0, 0.0, total * xp.exp(log_pre[ser]))
        cf = valid & ~(x < a + 1)
        if cf.any():  # Q by Lentz's method, P = 1 - Q
            aa, xx = a[cf], x[cf]
            tiny = 1e-300
            b = xx + 1.0 - aa
            c = xp.full_like(b, 1.0 / tiny)
            d = 1.0 / b
            h = d.copy()
            for i in range(1, 1000):
                an = -i * (i - aa)
                b = b + 2.0
                d = an * d + b
                d = xp.where(xp.abs(d) < tiny, tiny, d)
                c = b + an / c
                c = xp.where(xp.abs(c) < tiny, tiny, c)
                d = 1.0 / d
                delta = d * c
                h = h * delta
                if (xp.abs(delta - 1.0) < 1e-16).all():
                    break
            out[cf] = 1.0 - xp.exp(log_pre[cf]) * h
        out = xp.where(valid & (x == xp.inf), 1.0, out)
    return out


# --------------------------------------------------------------------------- error functions
def erfcx_array(x):
    """exp(x^2) erfc(x) in float64 (no underflow for large x)."""
    from deepbox.ops.elementwise import erf_array

    x = _f64(x)
    out = xp.empty_like(x)
    low = x < 0.5
    with xp.errstate(over="ignore", invalid="ignore"):
        out[low] = xp.exp(x[low] ** 2) * (1.0 - erf_array(x[low]))
    mid = (x >= 0.5) & (x < 4.0)
    z = x[mid]
    p = (((((((2.15311535474403846e-8 * z + 0.564188496988670089) * z + 8.88314979438837594) * z
             + 66.1191906371416295) * z + 298.635138197400131) * z + 881.952221241769090) * z
          + 1712.04761263407058) * z + 2051.07837782607147) * z + 1230.33935479799725
    q = (((((((z + 15.7449261107098347) * z + 117.693950891312499) * z + 537.181101862009858) * z
            + 1621.38957456669019) * z + 3290.79923573345963) * z + 4362.61909014324716) * z
         + 3439.36767414372164) * z + 1230.33935480374942
    out[mid] = p / q
    big = x >= 4.0
    z = x[big]
    zi2 = 1.0 / (z * z)
    p = ((((0.0163153871373020978 * zi2 + 0.305326634961232344) * zi2 + 0.360344899949804439) * zi2
          + 0.125781726111229246) * zi2 + 0.0160837851487422766) * zi2 + 0.000658749161529837803
    q = ((((zi2 + 2.56852019228982242) * zi2 + 1.87295284992346725) * zi2 + 0.527905102951428412) * zi2
         + 0.0605183413124413191) * zi2 + 0.00233520497626869185
    out[big] = (1.0 / _SQRT_PI - zi2 * p / q) / z
    out[xp.isnan(x)] = xp.nan
    return out


def erfc_array(x):
    """1 - erf(x) in float64, accurate in the right tail."""
    from deepbox.ops.elementwise import erf_array

    x = _f64(x)
    with xp.errstate(under="ignore"):
        return xp.where(x < 0.5, 1.0 - erf_array(x), xp.exp(-x * x) * erfcx_array(xp.maximum(x, 0.5)))


def erfinv_array(y):
    """Inverse error function in float64: Giles' approximation, then two Newton steps."""
    from deepbox.ops.elementwise import erf_array

    y = _f64(y)
    with xp.errstate(divide="ignore", invalid="ignore"):
        w = -xp.log((1.0 - y) * (1.0 + y))
        lo = w < 5.0
        wl = w - 2.5
        pl = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                  -0.00417768164, 0.246640727, 1.50140941):
            pl = c + pl * wl
        wh = xp.sqrt(xp.maximum(w, 0.0)) - 3.0
        ph = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                  0.00943887047, 1.00167406, 2.83297682):
            ph = c + ph * wh
        x = xp.where(lo, pl, ph) * y
        finite = xp.abs(y) < 1
        for _ in range(2):
            step = (erf_array(x) - y) / (2.0 / _SQRT_PI * xp.exp(-x * x))
            x = xp.where(finite, x - step, x)
    x = xp.where(y == 1, xp.inf, xp.where(y == -1, -xp.inf, x))
    return xp.where(xp.abs(y) > 1, xp.nan, x)


def ndtr_array(x):
    """The standard normal CDF."""
    return 0.5 * erfc_array(-_f64(x) / _SQRT_2)


def log_ndtr_array(x):
    """log of the standard normal CDF, accurate far into the left tail."""
    x = _f64(x)
    with xp.errstate(divide="ignore", invalid="ignore"):
        # ndtr(x) = exp(-x^2/2) erfcx(-x/sqrt 2) / 2 for x < 0; log1p(-ndtr(-x)) for x >= 0
        left = math.log(0.5) + xp.log(erfcx_array(xp.maximum(-x, 0.0) / _SQRT_2)) - 0.5 * xp.minimum(x, 0.0) ** 2
        right = xp.log1p(-ndtr_array(-xp.maximum(x, 0.0)))
    return xp.where(x < 0, left, right)


def ndtri_array(p):
    """The standard normal quantile function.

    erfinv(2p - 1) loses the lower tail (2p - 1 rounds to -1 below p ~ 1e-17), so there the
    start is the tail's leading term -sqrt(-2 log p), and Newton's method on log ndtr(x) = log p
    (whose slope sqrt(2/pi) / erfcx(-x/sqrt 2) never underflows) refines every start.
    """
    p = _f64(p)
    with xp.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tail = p < 1e-3
        x = xp.where(tail, -xp.sqrt(-2.0 * xp.log(xp.where(tail, p, 0.5))), _SQRT_2 * erfinv_array(2.0 * p - 1.0))
        ok = (p > 0) & (p < 0.5)
        logp = xp.log(xp.where(ok, p, 0.5))
        for _ in range(8 if tail.any() else 2):
            step = (log_ndtr_array(x) - logp) * erfcx_array(-x / _SQRT_2) / math.sqrt(2.0 / math.pi)
            x = xp.where(ok, x - step, x)
    return xp.where(p == 0, -xp.inf, xp.where(p == 1, xp.inf, xp.where((p < 0) | (p > 1), xp.nan, x)))


# --------------------------------------------------------------------------- modified Bessel functions
def _bessel_ie(nu: int, x):
    """exp(-|x|) I_nu(|x|) for nu in {0, 1}, in float64."""
    ax = xp.abs(_f64(x))
    out = xp.empty_like(ax)
    small = ax <= 20.0
    z = ax[small]
    q = z * z / 4.0
    term = xp.ones_like(z) if nu == 0 else z / 2.0
    total = term.copy()
    for k in range(1, 90):  # I_nu(z) = (z/2)^nu sum_k (z^2/4)^k / (k! (k + nu)!)
        term = term * q / (k * (k + nu))
        total = total + term
    out[small] = total * xp.exp(-z)
    z = ax[~small]
    mu = 4.0 * nu * nu
    term = xp.ones_like(z)
    total = term.copy()
    for k in range(1, 40):  # I_nu(z) e^-z ~ (2 pi z)^-1/2 sum_k (-1)^k a_k(nu) / z^k
        term = -term * (mu - (2 * k - 1) ** 2) / (k * 8.0 * z)
        total = total + term
    out[~small] = total / xp.sqrt(2.0 * math.pi * z)
    return out


def i0e_array(x):
    return _bessel_ie(0, x)


def i1e_array(x):
    x = _f64(x)
    return xp.sign(x) * _bessel_ie(1, x)


def i0_array(x):
    x = _f64(x)
    with xp.errstate(over="ignore"):
        return i0e_array(x) * xp.exp(xp.abs(x))


def i1_array(x):
    x = _f64(x)
    with xp.errstate(over="ignore", invalid="ignore"):
        return xp.where(x == 0, 0.0, i1e_array(x) * xp.exp(xp.abs(x)))


# --------------------------------------------------------------------------- differentiable ops
def _cast_like(out, a):
    return out.astype(a.dtype, copy=False)


class _Unary(Function):
    """f(x) computed in float64 by ``fn``; its derivative by ``dfn(x, out)`` (both on float64)."""

    fn = None
    dfn = None

    @classmethod
    def forward(cls, ctx, a):
        out = cls.fn(a)
        ctx.save_for_backward(a)
        ctx.out = out
        return _cast_like(out, a)

    @classmethod
    def backward(cls, ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * _cast_like(cls.dfn(_f64(a), ctx.out), grad)


class LgammaFn(_Unary):
    fn = staticmethod(lgamma_array)
    dfn = staticmethod(lambda x, out: digamma_array(x))


class DigammaFn(_Unary):
    fn = staticmethod(digamma_array)
    dfn = staticmethod(lambda x, out: polygamma_array(1, x))


class PolygammaFn(Function):
    @staticmethod
    def forward(ctx, a, n):
        ctx.n = n
        ctx.save_for_backward(a)
        return _cast_like(polygamma_array(n, a), a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * _cast_like(polygamma_array(ctx.n + 1, a), grad), None


class ErfcFn(_Unary):
    fn = staticmethod(erfc_array)
    dfn = staticmethod(lambda x, out: -2.0 / _SQRT_PI * xp.exp(-x * x))


class ErfcxFn(_Unary):
    fn = staticmethod(erfcx_array)
    dfn = staticmethod(lambda x, out: 2.0 * x * out - 2.0 / _SQRT_PI)


class ErfinvFn(_Unary):
    fn = staticmethod(erfinv_array)
    dfn = staticmethod(lambda x, out: 0.5 * _SQRT_PI * xp.exp(out * out))


class NdtriFn(_Unary):
    fn = staticmethod(ndtri_array)
    dfn = staticmethod(lambda x, out: math.sqrt(2 * math.pi) * xp.exp(0.5 * out * out))


class LogNdtrFn(_Unary):
    fn = staticmethod(log_ndtr_array)
    # d/dx log ndtr(x) = pdf(x) / ndtr(x) = sqrt(2/pi) / erfcx(-x / sqrt 2)
    dfn = staticmethod(lambda x, out: math.sqrt(2.0 / math.pi) / erfcx_array(-x / _SQRT_2))


class I0Fn(_Unary):
    fn = staticmethod(i0_array)
    dfn = staticmethod(lambda x, out: i1_array(x))


class I0eFn(_Unary):
    fn = staticmethod(i0e_array)
    dfn = staticmethod(lambda x, out: i1e_array(x) - xp.sign(x) * out)


def _i1_derivative(x, out):
    with xp.errstate(divide="ignore", invalid="ignore"):
        return xp.where(x == 0, 0.5, i0_array(x) - out / x)


class I1Fn(_Unary):
    fn = staticmethod(i1_array)
    dfn = staticmethod(_i1_derivative)


def _i1e_derivative(x, out):
    with xp.errstate(divide="ignore", invalid="ignore"):
        return xp.where(x == 0, 0.5, i0e_array(x) - out * (xp.sign(x) + 1.0 / x))


class I1eFn(_Unary):
    fn = staticmethod(i1e_array)
    dfn = staticmethod(_i1e_derivative)


def _sinc(x):
    with xp.errstate(divide="ignore", invalid="ignore"):
        px = math.pi * x
        return xp.where(x == 0, 1.0, xp.sin(px) / px)


def _sinc_derivative(x, out):
    with xp.errstate(divide="ignore", invalid="ignore"):
        px = math.pi * x
        return xp.where(x == 0, 0.0, (xp.cos(px) * px - xp.sin(px)) / (px * x))


class SincFn(_Unary):
    fn = staticmethod(_sinc)
    dfn = staticmethod(_sinc_derivative)


def _entr(x):
    with xp.errstate(divide="ignore", invalid="ignore"):
        out = xp.where(x > 0, -x * xp.log(xp.where(x > 0, x, 1.0)), xp.where(x == 0, 0.0, -xp.inf))
    return xp.where(xp.isnan(x), xp.nan, out)


def _entr_derivative(x, out):
    with xp.errstate(divide="ignore", invalid="ignore"):
        return -(xp.log(x) + 1.0)


class EntrFn(_Unary):
    fn = staticmethod(_entr)
    dfn = staticmethod(_entr_derivative)


class XlogyFn(Function):
    """x log(y), 0 where x == 0 (unless y is NaN); log1p(y) in place of log(y) for ``xlog1py``."""

    @staticmethod
    def forward(ctx, x, y, log1p):
        logf = xp.log1p if log1p else xp.log
        ctx.save_for_backward(x, y)
        ctx.log1p = log1p
        with xp.errstate(divide="ignore", invalid="ignore"):
            out = xp.where((x == 0) & ~xp.isnan(y), 0.0, x * logf(y))
        return out.astype(xp.result_type(x, y), copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        logf = xp.log1p if ctx.log1p else xp.log
        with xp.errstate(divide="ignore", invalid="ignore"):
            gx = grad * xp.where((x == 0) & ~xp.isnan(y), 0.0, logf(y))
            gy = grad * x / (1.0 + y if ctx.log1p else y)
        return gx, gy, None


class GammaincFn(Function):
    """P(a, x) (``upper=False``) or Q(a, x) = 1 - P; like PyTorch, differentiable in x only."""

    @staticmethod
    def forward(ctx, a, x, upper):
        ctx.save_for_backward(a, x)
        ctx.upper = upper
        p = gammainc_array(a, x)
        out = 1.0 - p if upper else p
        return out.astype(xp.result_type(a, x), copy=False)

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError("the derivative of gammainc/gammaincc with respect to `input` (a) is not "
                                      "implemented (as in PyTorch); only `other` (x) is differentiable")
        with xp.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dens = xp.exp((a - 1.0) * xp.log(x) - x - lgamma_array(a))
        return None, grad * (-dens if ctx.upper else dens), None


# --------------------------------------------------------------------------- public functions
def _float(input, fn):
    from deepbox.ops.elementwise import _as_tensor, cast

    t = input if isinstance(input, Tensor) else _as_tensor(input)
    if t._data.dtype.kind != "f":
        t = cast(t, backend.default_float_np())
    return t


def _floats(a, b):
    """Both operands as tensors of their promoted floating dtype (PyTorch's rules, ints to the default float)."""
    from deepbox.ops.elementwise import _as_tensor, _scalar, cast

    ops = [x if _scalar(x) is not None and not isinstance(x, Tensor) else _as_tensor(x)._data for x in (a, b)]
    dt = backend.result_dtype(*ops)
    if dt.kind != "f":
        dt = backend.default_float_np()
    out = []
    for x in (a, b):
        t = x if isinstance(x, Tensor) else _as_tensor(xp.asarray(x, dtype=dt))
        out.append(t if t._data.dtype == dt else cast(t, dt))
    return out


def _out_unsupported(out, name):
    if out is not None:
        raise NotImplementedError(f"deepbox.{name}: the `out=` argument is not supported; assign the result instead")


def _make_unary(cls, name, doc):
    def op(input, *, out=None):
        _out_unsupported(out, name)
        return cls.apply(_float(input, name))

    op.__name__ = name
    op.__qualname__ = name
    op.__doc__ = doc
    return op


lgamma = _make_unary(LgammaFn, "lgamma", "log |Gamma(x)|, elementwise.")
digamma = _make_unary(DigammaFn, "digamma", "psi(x) = d/dx log Gamma(x), elementwise.")
erfc = _make_unary(ErfcFn, "erfc", "The complementary error function 1 - erf(x).")
erfcx = _make_unary(ErfcxFn, "erfcx", "The scaled complementary error function exp(x^2) erfc(x).")
erfinv = _make_unary(ErfinvFn, "erfinv", "The inverse error function.")
ndtri = _make_unary(NdtriFn, "ndtri", "The standard normal quantile function (inverse of ndtr).")
log_ndtr = _make_unary(LogNdtrFn, "log_ndtr", "log of the standard normal CDF.")
i0 = _make_unary(I0Fn, "i0", "The modified Bessel function of the first kind of order 0.")
i0e = _make_unary(I0eFn, "i0e", "exp(-|x|) I0(x).")
i1 = _make_unary(I1Fn, "i1", "The modified Bessel function of the first kind of order 1.")
i1e = _make_unary(I1eFn, "i1e", "exp(-|x|) I1(x).")
sinc = _make_unary(SincFn, "sinc", "The normalised sinc function sin(pi x) / (pi x), 1 at 0.")
entr = _make_unary(EntrFn, "entr", "-x log(x) for x > 0, 0 at 0, -inf for x < 0.")


def polygamma(n: int, input, *, out=None) -> Tensor:
    """The n-th derivative of the digamma function (``n = 0`` is digamma itself)."""
    _out_unsupported(out, "polygamma")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise RuntimeError(f"polygamma(n, x) does not support negative n (got n={n!r})")
    t = _float(input, "polygamma")
    return DigammaFn.apply(t) if n == 0 else PolygammaFn.apply(t, n)


def mvlgamma(input, p: int, *, out=None) -> Tensor:
    """The multivariate log-gamma function of dimension p: sum_j lgamma(x - j/2) + p(p-1)/4 log(pi)."""
    _out_unsupported(out, "mvlgamma")
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise RuntimeError(f"mvlgamma: p has to be greater than or equal to 1 (got {p!r})")
    t = _float(input, "mvlgamma")
    if bool((t._data <= (p - 1) / 2).any()):
        raise RuntimeError(f"All elements must be greater than (p-1)/2 (= {(p - 1) / 2})")
    total = lgamma(t)
    for j in range(1, p):
        total = total + lgamma(t - j / 2.0)
    return total + p * (p - 1) / 4.0 * math.log(math.pi)


def xlogy(input, other, *, out=None) -> Tensor:
    """x * log(y), with 0 where x == 0 (the convention of entropy terms)."""
    _out_unsupported(out, "xlogy")
    a, b = _floats(input, other)
    return XlogyFn.apply(a, b, False)


def xlog1py(input, other, *, out=None) -> Tensor:
    """x * log1p(y), with 0 where x == 0."""
    _out_unsupported(out, "xlog1py")
    a, b = _floats(input, other)
    return XlogyFn.apply(a, b, True)


def gammainc(input, other, *, out=None) -> Tensor:
    """The regularised lower incomplete gamma function P(a, x) (``input`` = a, ``other`` = x)."""
    _out_unsupported(out, "gammainc")
    a, x = _floats(input, other)
    return GammaincFn.apply(a, x, False)


def gammaincc(input, other, *, out=None) -> Tensor:
    """The regularised upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    _out_unsupported(out, "gammaincc")
    a, x = _floats(input, other)
    return GammaincFn.apply(a, x, True)


__all__ = ["lgamma", "digamma", "polygamma", "mvlgamma", "erfc", "erfcx", "erfinv", "ndtri", "log_ndtr", "i0",
           "i0e", "i1", "i1e", "sinc", "entr", "xlogy", "xlog1py", "gammainc", "gammaincc",
           "lgamma_array", "digamma_array", "polygamma_array", "gammainc_array", "erfc_array", "erfcx_array",
           "erfinv_array", "ndtr_array", "log_ndtr_array", "ndtri_array", "i0_array", "i0e_array", "i1_array",
           "i1e_array"]
