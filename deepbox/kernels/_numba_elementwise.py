"""Compiled elementwise and row kernels: activations, layer norm, attention softmax, cross-entropy, LSTM gates
(numba).

Imported only through ``deepbox.kernels.switch`` and only when numba is installed. Like the
kernels in ``_numba_kernels.py`` each takes ``(lo, hi, ...)``, the part of its leading
axis that it owns, so ``threads.parallel`` runs one chunk per thread; reductions take a
chunk index ``i`` and write partial sums to row ``i`` of a ``(threads, ...)`` array.
Elementwise kernels work on flat (1-D) views of arrays that share one memory order.

NumPy's ``exp``, ``tanh`` and scipy's ``erf`` are vectorised C; numba's ``math.exp``
and friends are scalar libm calls, 5-10x slower per element. So for float32 data the
kernels evaluate these functions with branch-free polynomial and rational forms in
float64 arithmetic, which LLVM vectorises and which are accurate to well below
float32's resolution (tests compare every kernel with PyTorch). For float64 data the
kernels call ``math.exp`` / ``math.erf`` / ``math.tanh`` (exact, and float64 is rare
outside tests). ``_exp``, ``_erf`` and ``_tanh`` pick the form from the dtype of an
array argument at compile time. Each kernel has a NumPy twin in the op that calls it.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

# error_model="numpy": x / 0 gives inf or NaN instead of a check that raises ZeroDivisionError,
# which would keep LLVM from vectorising every loop with a division
# fastmath "contract": a * b + c may be one fused multiply-add (faster, and rounded once)
_JIT = dict(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
# reductions may be reordered (vectorised); nothing here relies on NaN/inf being absent
_SUM = dict(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})

_F = np.float32
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2_32 = _F(_INV_SQRT2)
_INV_SQRT_2PI_32 = _F(_INV_SQRT_2PI)


# ----------------------------------------------------------------------------- float32 scalar functions
# Each is branch-free (selects only), so that LLVM vectorises the loops that call it.

@njit(**_JIT)
def _exp32(y):
    """``exp(y)`` for float32 ``y``, within 2 ulp; 0 below -87.33 (no subnormals), ``inf`` above 88.72.

    ``y = n ln2 + r`` with ``|r| <= ln2 / 2`` (ln2 split in two for an exact product), ``exp(r)`` by
    its Taylor series to degree 7 (remainder below 6e-9), ``2^n`` from its exponent bits.
    """
    yc = min(max(y, _F(-87.33)), _F(88.72))
    n = np.floor(yc * _F(1.442695) + _F(0.5))
    r = (yc - n * _F(0.693359375)) - n * _F(-2.12194440e-4)
    p = _F(1.0 / 5040.0)
    p = p * r + _F(1.0 / 720.0)
    p = p * r + _F(1.0 / 120.0)
    p = p * r + _F(1.0 / 24.0)
    p = p * r + _F(1.0 / 6.0)
    p = p * r + _F(0.5)
    p = p * r + _F(1.0)
    p = p * r + _F(1.0)
    # 2^n for n in [-126, 128]: 2^128 overflows the exponent field, so a positive n is 2^(n - 1) * 2
    k = np.int32(n)
    pos = k > 0
    e = p * np.int32((k - (1 if pos else 0) + 127) << 23).view(np.float32)
    e = e * _F(2.0) if pos else e
    e = _F(0.0) if y < _F(-87.33) else e
    e = _F(np.inf) if y > _F(88.72) else e
    return y if y != y else e


# erf(z) ~ z P(z^2) / Q(z^2) on [-4, 4], +-1 outside: a minimax rational form (the one Eigen and XLA
# use for float32); within 2 ulp of float32's erf.
_EA = tuple(_F(c) for c in (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                            -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                            -1.60960333262415e-02))
_EB = tuple(_F(c) for c in (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                            -7.37332916720468e-03, -1.42647390514189e-02))


@njit(**_JIT)
def _erf32(z):
    zc = min(max(z, _F(-4.0)), _F(4.0))
    z2 = zc * zc
    p = _EA[0]
    p = p * z2 + _EA[1]
    p = p * z2 + _EA[2]
    p = p * z2 + _EA[3]
    p = p * z2 + _EA[4]
    p = p * z2 + _EA[5]
    p = p * z2 + _EA[6]
    q = _EB[0]
    q = q * z2 + _EB[1]
    q = q * z2 + _EB[2]
    q = q * z2 + _EB[3]
    q = q * z2 + _EB[4]
    e = zc * p / q
    e = _F(1.0) if z >= _F(4.0) else e
    e = _F(-1.0) if z <= _F(-4.0) else e
    return z if z != z else e


# tanh(x) ~ x P(x^2) / Q(x^2) with x clamped to [-7.9053, 7.9053]: a minimax rational form (Eigen's and
# XLA's for float32), within 5 ulp; +-1 beyond 9 (where float32's tanh is 1), x itself below 4e-4.
_TA = tuple(_F(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                            5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                            4.89352455891786e-03))
_TB = tuple(_F(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                            4.89352518554385e-03))


@njit(**_JIT)
def _tanh32(x):
    xc = min(max(x, _F(-7.90531110763549805)), _F(7.90531110763549805))
    x2 = xc * xc
    p = _TA[0]
    p = p * x2 + _TA[1]
    p = p * x2 + _TA[2]
    p = p * x2 + _TA[3]
    p = p * x2 + _TA[4]
    p = p * x2 + _TA[5]
    p = p * x2 + _TA[6]
    q = _TB[0]
    q = q * x2 + _TB[1]
    q = q * x2 + _TB[2]
    q = q * x2 + _TB[3]
    t = xc * p / q
    t = (_F(1.0) if x > 0 else _F(-1.0)) if abs(x) > _F(9.0) else t   # where tanh rounds to +-1
    return x if abs(x) < _F(4e-4) or x != x else t                    # also keeps -0.0 and NaN


# ----------------------------------------------------------------------------- dtype dispatch
# ``_f(like, v)`` picks the float32 form above when ``like`` (an array) is float32, else the exact
# math function: float64 is rare outside tests, and there exactness beats speed.

def _exp(like, y):  # pragma: no cover - only the overloads below run, inside compiled code
    return math.exp(y)


def _tanh(like, x):  # pragma: no cover
    return math.tanh(x)


def _gelu(like, v):  # pragma: no cover
    return v * 0.5 * (1.0 + math.erf(v * _INV_SQRT2))


def _gelu_grad(like, v):  # pragma: no cover
    return 0.5 * (1.0 + math.erf(v * _INV_SQRT2)) + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI


def _is32(like):
    return like.dtype == types.float32


# the overloads compile with the kernels' error model, or their divisions would check for zero and
# keep the calling loop from vectorising
_OVERLOAD_OPTS = dict(error_model="numpy", fastmath={"contract"})


@overload(_exp, jit_options=_OVERLOAD_OPTS, inline="always")
def _exp_impl(like, y):
    if _is32(like):
        return lambda like, y: _exp32(np.float32(y))
    return lambda like, y: math.exp(y)


@overload(_tanh, jit_options=_OVERLOAD_OPTS, inline="always")
def _tanh_impl(like, x):
    if _is32(like):
        return lambda like, x: _tanh32(np.float32(x))
    return lambda like, x: math.tanh(x)


@overload(_gelu, jit_options=_OVERLOAD_OPTS, inline="always")
def _gelu_impl(like, v):
    if _is32(like):
        def gelu32(like, v):
            x = np.float32(v)
            return x * (_F(0.5) + _F(0.5) * _erf32(x * _INV_SQRT2_32))
        return gelu32
    return lambda like, v: v * (0.5 + 0.5 * math.erf(v * _INV_SQRT2))


@overload(_gelu_grad, jit_options=_OVERLOAD_OPTS, inline="always")
def _gelu_grad_impl(like, v):
    if _is32(like):
        def grad32(like, v):
            x = np.float32(v)
            cdf = _F(0.5) + _F(0.5) * _erf32(x * _INV_SQRT2_32)
            return cdf + x * _exp32(_F(-0.5) * x * x) * _INV_SQRT_2PI_32
        return grad32
    return lambda like, v: 0.5 + 0.5 * math.erf(v * _INV_SQRT2) + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI


# ----------------------------------------------------------------------------- activations (flat views)

@njit(**_JIT)
def relu_fwd(lo, hi, x, out):
    """``out = max(x, 0)``; NaN stays NaN and -0.0 stays -0.0, as in PyTorch."""
    x, out = x[lo:hi], out[lo:hi]   # loops from 0: numba then knows the index is non-negative and vectorises
    for k in range(out.shape[0]):
        v = x[k]
        out[k] = 0.0 if v < 0 else v


@njit(**_JIT)
def relu_bwd(lo, hi, g, y, out):
    """``out = g where y > 0 else 0`` (``y`` the forward's output)."""
    g, y, out = g[lo:hi], y[lo:hi], out[lo:hi]
    for k in range(out.shape[0]):
        out[k] = g[k] if y[k] > 0 else 0.0


@njit(**_JIT)
def add_flat(lo, hi, a, b, out):
    """``out = a + b``."""
    a, b, out = a[lo:hi], b[lo:hi], out[lo:hi]
    for k in range(out.shape[0]):
        out[k] = a[k] + b[k]


@njit(**_JIT)
def add_rows(lo, hi, x, b):
    """``x[r] += b`` for rows ``lo:hi`` of ``x`` (M, N): a bias added in place."""
    N = x.shape[1]
    for r in range(lo, hi):
        row = x[r]
        for j in range(N):
            row[j] += b[j]


@njit(**_JIT)
def gelu_fwd(lo, hi, x, out):
    """``out = x Phi(x)``, ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``."""
    x, out = x[lo:hi], out[lo:hi]
    for k in range(out.shape[0]):
        out[k] = _gelu(x, x[k])


@njit(**_JIT)
def gelu_bwd(lo, hi, g, x, out):
    """``out = g (Phi(x) + x phi(x))``, ``phi`` the standard normal density."""
    g, x, out = g[lo:hi], x[lo:hi], out[lo:hi]
    for k in range(out.shape[0]):
        out[k] = g[k] * _gelu_grad(x, x[k])


# ----------------------------------------------------------------------------- layer norm (rows of (M, D))

@njit(**_SUM)
def layer_norm_fwd(lo, hi, x, w, b, eps, out, mean, rstd):
    """Each row normalised: ``out = (x - mean) * rstd * w + b``; row means and ``rstd`` saved (float64)."""
    D = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        orow = out[r]
        s = 0.0
        for j in range(D):
            s += xr[j]
        mu = s / D
        q = 0.0
        for j in range(D):
            d = xr[j] - mu
            q += d * d
        rs = 1.0 / math.sqrt(q / D + eps)
        mean[r] = mu
        rstd[r] = rs
        for j in range(D):
            orow[j] = (xr[j] - mu) * rs * w[j] + b[j]


@njit(**_SUM)
def layer_norm_bwd(i, lo, hi, g, x, w, mean, rstd, gx, part):
    """Input gradient of rows ``lo:hi``, ``gx = rstd (g w - mean(g w) - xhat mean(g w xhat))``, and
    ``part[i] = (sum of g * xhat, sum of g)`` per column (the weight and bias gradients)."""
    D = x.shape[1]
    pw = np.zeros(D)
    pb = np.zeros(D)
    for r in range(lo, hi):
        xr = x[r]
        gr = g[r]
        gxr = gx[r]
        mu = mean[r]
        rs = rstd[r]
        s1 = 0.0
        s2 = 0.0
        for j in range(D):
            xh = (xr[j] - mu) * rs
            gj = np.float64(gr[j])
            gw = gj * w[j]
            s1 += gw
            s2 += gw * xh
            pw[j] += gj * xh
            pb[j] += gj
        s1 /= D
        s2 /= D
        for j in range(D):
            xh = (xr[j] - mu) * rs
            gxr[j] = rs * (np.float64(gr[j]) * w[j] - s1 - xh * s2)
    for j in range(D):      # a loop, not a slice assignment: see _numba_conv._copy_row
        part[i, 0, j] = pw[j]
        part[i, 1, j] = pb[j]


# ----------------------------------------------------------------------------- attention softmax

@njit(**_SUM)
def softmax_causal(lo, hi, s, r0, scale):
    """In place over raw scores ``s`` (B, R, C): row ``i`` is query ``r0 + i``, which sees keys
    ``0..r0 + i``; it becomes ``softmax(scale * s)`` over those keys and zeros after them.
    ``scale`` has ``s``'s dtype."""
    R, C = s.shape[1], s.shape[2]
    for b in range(lo, hi):
        for i in range(R):
            row = s[b, i]
            n = min(r0 + i + 1, C)
            m = row[0]
            for j in range(1, n):
                m = max(m, row[j])
            z = _F(0.0)   # float32 data sums in float32, float64 in float64
            for j in range(n):
                e = _exp(s, (row[j] - m) * scale)
                row[j] = e
                z += e
            inv = _F(1.0) / z
            for j in range(n):
                row[j] *= inv
            for j in range(n, C):
                row[j] = _F(0.0)


@njit(**_SUM)
def softmax_rows(lo, hi, s):
    """In place softmax of each row of ``s`` (M, C); ``-inf`` entries get 0, a row of only ``-inf`` all 0."""
    C = s.shape[1]
    for r in range(lo, hi):
        row = s[r]
        m = row[0]
        for j in range(1, C):
            m = max(m, row[j])
        if m == -np.inf:
            for j in range(C):
                row[j] = _F(0.0)
            continue
        z = _F(0.0)
        for j in range(C):
            e = _exp(s, row[j] - m)
            row[j] = e
            z += e
        inv = _F(1.0) / z
        for j in range(C):
            row[j] *= inv


@njit(**_SUM)
def softmax_bwd(lo, hi, dp, p, delta, r0):
    """In place over ``dp`` (B, R, C): ``dp = p * (dp - delta[:, r0 + i])`` (the softmax's backward)."""
    R, C = dp.shape[1], dp.shape[2]
    for b in range(lo, hi):
        for i in range(R):
            d = delta[b, r0 + i]
            drow = dp[b, i]
            prow = p[b, i]
            for j in range(C):
                drow[j] = prow[j] * (drow[j] - d)


# ----------------------------------------------------------------------------- cross-entropy (rows of (N, C))

@njit(**_SUM)
def cross_entropy_fwd(lo, hi, x, m, t, ignore, eps, lse, loss):
    """Per row of the logits ``x`` (N, C), given its maximum ``m``: ``lse = log sum exp(x)`` and the loss
    ``lse - (1 - eps) x[t] - eps mean(x)`` (label smoothing ``eps``; 0 where ``t == ignore``). Shifted by
    the maximum, logits of any size stay finite.

    The maximum comes from NumPy's ``max`` (vectorised, NaN-propagating; numba's loop did not vectorise:
    1.1 vs 0.24 ms on 2048 x 1000). Sums in the logits' dtype, over vector lanes.
    """
    C = x.shape[1]
    for r in range(lo, hi):
        row = x[r]
        mr = m[r]
        s = row[0] * _F(0.0)
        for j in range(C):
            s += _exp(x, row[j] - mr)
        v = mr + math.log(s)
        lse[r] = v
        k = t[r]
        if k == ignore:
            loss[r] = 0.0
        elif eps == 0.0:
            loss[r] = v - row[k]
        else:
            tot = row[0] * _F(0.0)
            for j in range(C):
                tot += row[j]
            loss[r] = v - (1.0 - eps) * row[k] - eps * tot / C


@njit(**_JIT)
def cross_entropy_bwd(lo, hi, x, t, ignore, eps, lse, up, g):
    """``g[r] = (softmax(x[r]) - (1 - eps) onehot(t[r]) - eps / C) * up[r]``; 0 where ``t == ignore``. ``lse``
    and ``up`` have the logits' dtype, so float32 logits stay in float32 arithmetic."""
    C = x.shape[1]
    for r in range(lo, hi):
        grow = g[r]
        k = t[r]
        if k == ignore:
            for j in range(C):
                grow[j] = 0.0
            continue
        row = x[r]
        u = up[r]
        v = lse[r]
        for j in range(C):
            grow[j] = _exp(x, row[j] - v) * u
        if eps != 0.0:
            us = u * (eps / C)
            for j in range(C):
                grow[j] -= us
        grow[k] -= u * (1.0 - eps)


# ----------------------------------------------------------------------------- scatter-add of rows

@njit(**_JIT)
def scatter_add_rows(idx, src, out):
    """``out[idx[i]] += src[i]`` for every row ``i`` of ``src`` (N, D), in ``i``'s order; the indices must
    lie in ``[0, len(out))`` (the caller checks). One thread: two rows with one index would race."""
    D = src.shape[1]
    for i in range(src.shape[0]):
        r = out[idx[i]]
        s = src[i]
        for j in range(D):
            r[j] += s[j]


# ----------------------------------------------------------------------------- LSTM cell
# Feature-major state: unit j of sequence b is element j * B + b of a flat (H * B) array, so one step's
# gates, cell state and factors are each one contiguous run and the recurrent GEMM is W (4H, H) @ h (H, B).
# Gates in deepbox's internal order (o, i, f, g); the sigmoid gates' weights are pre-halved so that
# sigmoid(a) = tanh(a / 2) / 2 + 1 / 2 takes the same tanh as the g gate. The constants are float32
# (exact) so that float32 data is not promoted to float64.

@njit(**_JIT)
def lstm_cell_fwd(lo, hi, g, x, bias, c, h, q, a, need):
    """One LSTM step over the elements ``lo:hi`` of the feature-major state.

    ``g`` (4, H*B): the recurrent pre-activations ``W_hh h``; ``x`` (4, H*B): the step's input
    projections; ``bias`` (4, H*B): the summed biases. ``c`` (H*B): the cell state, updated in place;
    ``h`` (H*B) receives ``o * tanh(c)``. With ``need``, the factors that backward needs:
    ``q`` (4, H*B) = ``(o' tanh c, i' g, f' c_prev, (1 - g^2) i)`` (``s' = s (1 - s)``) and
    ``a`` (2, H*B) = ``(o (1 - tanh^2 c), f)``.
    """
    g0, g1, g2, g3 = g[0, lo:hi], g[1, lo:hi], g[2, lo:hi], g[3, lo:hi]
    x0, x1, x2, x3 = x[0, lo:hi], x[1, lo:hi], x[2, lo:hi], x[3, lo:hi]
    b0, b1, b2, b3 = bias[0, lo:hi], bias[1, lo:hi], bias[2, lo:hi], bias[3, lo:hi]
    cc, hh = c[lo:hi], h[lo:hi]
    if need:
        q0, q1, q2, q3 = q[0, lo:hi], q[1, lo:hi], q[2, lo:hi], q[3, lo:hi]
        a0, a1 = a[0, lo:hi], a[1, lo:hi]
        for k in range(hi - lo):   # from 0: numba then knows the index is non-negative and vectorises
            so = _F(0.5) * _tanh(c, g0[k] + x0[k] + b0[k]) + _F(0.5)
            si = _F(0.5) * _tanh(c, g1[k] + x1[k] + b1[k]) + _F(0.5)
            sf = _F(0.5) * _tanh(c, g2[k] + x2[k] + b2[k]) + _F(0.5)
            gg = _tanh(c, g3[k] + x3[k] + b3[k])
            cp = cc[k]
            cn = sf * cp + si * gg
            tc = _tanh(c, cn)
            cc[k] = cn
            hh[k] = so * tc
            q0[k] = so * (_F(1.0) - so) * tc
            q1[k] = si * (_F(1.0) - si) * gg
            q2[k] = sf * (_F(1.0) - sf) * cp
            q3[k] = (_F(1.0) - gg * gg) * si
            a0[k] = so * (_F(1.0) - tc * tc)
            a1[k] = sf
    else:
        for k in range(hi - lo):
            so = _F(0.5) * _tanh(c, g0[k] + x0[k] + b0[k]) + _F(0.5)
            si = _F(0.5) * _tanh(c, g1[k] + x1[k] + b1[k]) + _F(0.5)
            sf = _F(0.5) * _tanh(c, g2[k] + x2[k] + b2[k]) + _F(0.5)
            gg = _tanh(c, g3[k] + x3[k] + b3[k])
            cn = sf * cc[k] + si * gg
            cc[k] = cn
            hh[k] = so * _tanh(c, cn)


@njit(**_JIT)
def lstm_cell_bwd(lo, hi, s, dout, dh, dc, q, a, r, dg):
    """Backward through step ``s`` of an LSTM for the units ``lo:hi`` (rows of the feature-major state).

    ``dout`` (H*B): the gradient of the step's output, feature-major like the state; ``dh`` (H*B): the
    one coming back from step s + 1; ``dc`` (H*B): the gradient reaching ``c_s``, replaced by the one
    reaching ``c_{s-1}``; ``q`` (4, H*B) and ``a`` (2, H*B): the step's factors as ``lstm_cell_fwd``
    wrote them. ``r`` (4, H*B) receives the gradients of the four gates' pre-activations, and ``dg``
    (4, H, T, B), all steps' gradients, a copy of them at step ``s``.

    One flat loop over the units' elements, then the copy row by row: a loop over the B columns of each
    unit instead would run scalar (LLVM vectorises 16 floats x 4 at a time, more than B = 16 or 32).
    """
    B = dg.shape[3]
    for k in range(lo * B, hi * B):
        d = dout[k] + dh[k]
        dk = dc[k] + d * a[0, k]
        r[0, k] = d * q[0, k]
        r[1, k] = dk * q[1, k]
        r[2, k] = dk * q[2, k]
        r[3, k] = dk * q[3, k]
        dc[k] = dk * a[1, k]
    for g in range(4):
        for j in range(lo, hi):
            src = r[g, j * B:(j + 1) * B]
            dst = dg[g, j, s]
            for b in range(B):
                dst[b] = src[b]


# ----------------------------------------------------------------------------- Adam

@njit(**_JIT)
def adam_update(lo, hi, g, m, v, vmax, out, c1, b2, c2, bc2_sqrt, eps, step_size, amsgrad):
    """One pass of Adam over flat arrays, in ``adam_update``'s order of operations: ``m += c1 (g - m)``,
    ``v = v b2 + g^2 c2``, with ``amsgrad`` ``vmax = max(vmax, v)`` (used instead of ``v``), and the
    parameter decrement ``out = m / (sqrt(v) / bc2_sqrt + eps) * step_size``. The scalars have the
    arrays' dtype (``c1 = 1 - beta1``, ``c2 = 1 - beta2``)."""
    g, m, v, out = g[lo:hi], m[lo:hi], v[lo:hi], out[lo:hi]
    if amsgrad:
        vmax = vmax[lo:hi]
        for k in range(out.shape[0]):
            gk = g[k]
            mk = m[k] + (gk - m[k]) * c1
            vk = v[k] * b2 + gk * gk * c2
            m[k] = mk
            v[k] = vk
            vm = max(vmax[k], vk)
            vmax[k] = vm
            out[k] = mk / (np.sqrt(vm) / bc2_sqrt + eps) * step_size
    else:
        for k in range(out.shape[0]):
            gk = g[k]
            mk = m[k] + (gk - m[k]) * c1
            vk = v[k] * b2 + gk * gk * c2
            m[k] = mk
            v[k] = vk
            out[k] = mk / (np.sqrt(vk) / bc2_sqrt + eps) * step_size
