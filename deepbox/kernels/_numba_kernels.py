"""Compiled loops for the pooling and batch-norm hot paths (numba).

Imported only through ``deepbox.kernels.switch`` and only when numba is installed. Every
kernel takes ``(lo, hi, ...)`` -- the range of the leading (batch or row) axis that
it owns -- and writes only that part of its outputs, so ``threads.parallel`` can
run one chunk per thread; reductions take a chunk index ``i`` and write their
partial sums to row ``i`` of a ``(threads, ...)`` array. All kernels release the
GIL. Images are channels-last ``(N, H, W, C)``: the innermost loop then runs
over contiguous channels, and a channels-first array is passed as
``(N*C, H, W, 1)``. Each kernel has a NumPy twin in the op that calls it, and
the tests compare the two.

Convolutions: ``col2im_rows`` adds a chunk of window gradients (one GEMM's output) into the
padded input gradient, for stride 1 and dilation 1, where each window row's ``kw*C`` values
land on ``kw*C`` consecutive floats of an NHWC row. With the GEMM and the adds a few images
at a time (still in cache), this beats the per-tap GEMMs of the convolution whenever
their ``K = C`` side is thin. ``conv1ch_forward``/``conv1ch_weight_grad`` convolve one-channel
images directly (a first layer with few outputs, where BLAS's GEMM has K = kh*kw and N = O both
tiny); their inner loops run over a whole output plane at once (rows padded to the input's width),
since numba's vectorised loops only pay off over long runs. Measured and rejected: im2col as a numba loop (NumPy's
strided window copy is as fast), and col2im over whole batches (its input left the cache).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from deepbox.kernels import _simd

_JIT = dict(nogil=True, cache=True)
# sums may be reordered (vectorised); nothing here relies on NaN/inf being absent
_SUM = dict(nogil=True, cache=True, fastmath={"reassoc", "contract"})


# ----------------------------------------------------------------------------- max pooling

@njit(**_JIT)
def maxpool(lo, hi, x, out, arg, kh, kw, sh, sw, dh, dw, ph, pw):
    """Window maxima and their flat ``iy*W + ix`` positions (the first maximum; NaN wins, as PyTorch)."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    Ho, Wo = out.shape[1], out.shape[2]
    for n in range(lo, hi):
        for oy in range(Ho):
            for ox in range(Wo):
                first = True
                for i in range(kh):
                    iy = oy * sh + i * dh - ph
                    if iy < 0 or iy >= H:
                        continue
                    for j in range(kw):
                        ix = ox * sw + j * dw - pw
                        if ix < 0 or ix >= W:
                            continue
                        idx = iy * W + ix
                        if first:
                            for c in range(C):
                                out[n, oy, ox, c] = x[n, iy, ix, c]
                                arg[n, oy, ox, c] = idx
                            first = False
                        else:
                            for c in range(C):
                                v = x[n, iy, ix, c]
                                m = out[n, oy, ox, c]
                                if v > m or v != v:
                                    out[n, oy, ox, c] = v
                                    arg[n, oy, ox, c] = idx


@njit(**_JIT)
def maxpool2x2(lo, hi, x, out, arg):
    """``maxpool`` for the common 2x2 window with stride 2 and no padding, C-contiguous arrays:
    no bounds checks and a branch-free select chain (4-5x faster for few channels)."""
    W, C = x.shape[2], x.shape[3]
    Ho, Wo = out.shape[1], out.shape[2]
    for n in range(lo, hi):
        for oy in range(Ho):
            r0 = x[n, 2 * oy].ravel()
            r1 = x[n, 2 * oy + 1].ravel()
            o = out[n, oy].ravel()
            a = arg[n, oy].ravel()
            base = 2 * oy * W
            for ox in range(Wo):
                p = 2 * ox * C
                for c in range(C):
                    v0 = r0[p + c]
                    v1 = r0[p + C + c]
                    v2 = r1[p + c]
                    v3 = r1[p + C + c]
                    m = v0
                    k = 0
                    u = (v1 > m) | (v1 != v1)
                    m = v1 if u else m
                    k = 1 if u else k
                    u = (v2 > m) | (v2 != v2)
                    m = v2 if u else m
                    k = W if u else k
                    u = (v3 > m) | (v3 != v3)
                    m = v3 if u else m
                    k = W + 1 if u else k
                    o[ox * C + c] = m
                    a[ox * C + c] = base + 2 * ox + k


@njit(**_JIT)
def maxpool_backward(lo, hi, g, arg, dx):
    """``dx[n]`` (as ``(N, H*W, C)``) zeroed, then each output gradient added at its argmax."""
    Ho, Wo, C = g.shape[1], g.shape[2], g.shape[3]
    for n in range(lo, hi):
        dx[n] = 0
        for oy in range(Ho):
            for ox in range(Wo):
                for c in range(C):
                    dx[n, arg[n, oy, ox, c], c] += g[n, oy, ox, c]


# ----------------------------------------------------------------------------- convolution

@njit(**_JIT)
def im2col(lo, hi, x, cols, c, sh, sw, dh, dw, ph, pw):
    """The columns of images ``lo:hi`` of an unpadded NHWC input, zeros where a window leaves it.

    ``x``: ``(N, H, W*c)``; ``cols``: ``(hi-lo, Ho, Wo, kh, kw*c)``, written whole. With dilation 1 in
    width, each window row is one run of ``kw*c`` consecutive input floats (clipped at the borders),
    else ``kw`` runs of ``c``. Reading the unpadded input saves the padded copy that NumPy's strided
    window view needs, and copying whole runs is faster than NumPy's copy over runs of ``c``.
    """
    H, Wc = x.shape[1], x.shape[2]
    Ho, Wo, kh, r = cols.shape[1], cols.shape[2], cols.shape[3], cols.shape[4]
    kw = r // c
    zero = np.zeros(1, cols.dtype)[0]
    for n in range(lo, hi):
        xn = x[n]
        cn = cols[n - lo]
        for oy in range(Ho):
            for i in range(kh):
                y = oy * sh + i * dh - ph
                inside = y >= 0 and y < H
                for ox in range(Wo):
                    d = cn[oy, ox, i]
                    if not inside:
                        for t in range(r):
                            d[t] = zero
                        continue
                    row = xn[y]
                    base = (ox * sw - pw) * c
                    if dw == 1 and base >= 0 and base + r <= Wc:     # the whole window row is inside
                        src = row[base:base + r]
                        for t in range(r):
                            d[t] = src[t]
                    else:
                        for j in range(kw):
                            b0 = base + j * dw * c
                            dj = d[j * c:(j + 1) * c]
                            if b0 >= 0 and b0 + c <= Wc:
                                src = row[b0:b0 + c]
                                for t in range(c):
                                    dj[t] = src[t]
                            else:
                                for t in range(c):
                                    dj[t] = zero


@njit(**_JIT)
def col2im_rows(lo, hi, d, dx, c, ph, pw):
    """``dx[n, oy + i - ph, (ox - pw)*c + t] += d[n, oy, ox, i, t]`` for images ``lo:hi`` (stride 1,
    dilation 1), leaving out what falls into the padding.

    ``d``: window gradients ``(N, Ho, Wo, kh, kw*c)``; ``dx``: the input gradient ``(N, H, W*c)``, added into.
    """
    Ho, Wo, kh, r = d.shape[1], d.shape[2], d.shape[3], d.shape[4]
    H, Wc = dx.shape[1], dx.shape[2]
    for n in range(lo, hi):
        for oy in range(Ho):
            for i in range(kh):
                y = oy + i - ph
                if y < 0 or y >= H:
                    continue
                row = dx[n, y]
                for ox in range(Wo):
                    src = d[n, oy, ox, i]
                    base = (ox - pw) * c
                    if base >= 0 and base + r <= Wc:     # the whole window row is inside: vectorised
                        for t in range(r):
                            row[base + t] += src[t]
                    else:
                        for t in range(max(0, -base), min(r, Wc - base)):
                            row[base + t] += src[t]


@njit(**_JIT)
def conv1ch_forward(lo, hi, xflat, w, b, out, wp):
    """One-input-channel convolution (stride 1, dilation 1) of images ``lo:hi``, direct.

    ``xflat``: zero-padded images as flat rows ``(N, Hp*Wp + kw)``; ``w``: ``(O, kh, kw)``; ``b``:
    ``(O,)``; ``out``: ``(N, Ho, Wo, O)``. Each output plane is computed as one run of ``Ho*Wp``
    values (the ``Wp - Wo`` values past each row's end are computed and dropped), so every tap is
    one long vectorised multiply-add instead of ``Ho`` short ones.
    """
    O, kh, kw = w.shape
    Ho, Wo = out.shape[1], out.shape[2]
    L = Ho * wp
    acc = np.empty(L, out.dtype)
    for n in range(lo, hi):
        xr = xflat[n]
        for o in range(O):
            bo = b[o]
            for t in range(L):
                acc[t] = bo
            for i in range(kh):
                for j in range(kw):
                    wv = w[o, i, j]
                    xs = xr[i * wp + j:]          # a view: its index t needs no wraparound check
                    for t in range(L):
                        acc[t] += wv * xs[t]
            for y in range(Ho):
                row = acc[y * wp:]
                for x in range(Wo):
                    out[n, y, x, o] = row[x]


@njit(**_SUM)
def conv1ch_weight_grad(i, lo, hi, xflat, gpl, part, wp):
    """Partial weight gradient of ``conv1ch_forward`` over images ``lo:hi`` into ``part[i]`` ``(O, kh, kw)``.

    ``gpl``: output gradients as planes ``(N, O, Ho*Wp)``, zero past each row's ``Wo`` values.
    """
    O, kh, kw = part.shape[1], part.shape[2], part.shape[3]
    L = gpl.shape[2]
    zero = np.zeros(1, part.dtype)[0]        # sums of one run in the data's precision (float32: 1.3x faster)
    for n in range(lo, hi):
        xr = xflat[n]
        for o in range(O):
            gr = gpl[n, o]
            for a in range(kh):
                for j in range(kw):
                    xs = xr[a * wp + j:]
                    tot = zero
                    for t in range(L):
                        tot += gr[t] * xs[t]
                    part[i, o, a, j] += tot


# ----------------------------------------------------------------------------- batch norm
# Channels-last data is a (M, C) matrix ("rows"), channels-first a (N, C, P) array ("planes").

@njit(**_SUM)
def sums_rows(i, lo, hi, x, y, kx, ky, part):
    """``part[i] = (sum of x-kx, sum of (x-kx)*(y-ky))`` per column over rows ``lo:hi``, in float64.

    The shifts ``kx``, ``ky`` (per column) keep the sums small: with ``k`` near the mean,
    ``E[(x-k)^2] - E[x-k]^2`` has no cancellation even for data far from zero.
    """
    C = x.shape[1]
    s = np.zeros(C)
    q = np.zeros(C)
    for r in range(lo, hi):
        for c in range(C):
            a = x[r, c] - kx[c]
            s[c] += a
            q[c] += a * (y[r, c] - ky[c])
    for c in range(C):      # a loop, not a slice assignment (see _numba_conv._copy_row)
        part[i, 0, c] = s[c]
        part[i, 1, c] = q[c]


@njit(nogil=True, cache=True, boundscheck=False)
def sums_rows16(i, lo, hi, x, y, kx, ky, part):
    """``sums_rows`` for float32 C-contiguous rows with ``C`` a multiple of 16 and float32 shifts.

    Sixteen columns' two sums stay in vector registers (``_simd``) over blocks of 32 rows, in float32,
    and each block's sums are added to float64 totals: ``sums_rows`` adds every row into float64
    arrays in memory, which the loop reads and writes on every row. Measured on one core: 100352 x 16
    1.08 -> 0.17 ms, 25088 x 32 0.26 -> 0.08 ms, 6272 x 64 0.12 -> 0.05 ms; relative error of the sums
    2.6e-8 against float64 (the shift keeps the block sums small).
    """
    C = x.shape[1]
    xf = x.ravel()
    yf = y.ravel()
    s = np.zeros(C)
    q = np.zeros(C)
    tmp = np.empty(32, np.float32)
    for r0 in range(lo, hi, 32):
        r1 = min(hi, r0 + 32)
        for cb in range(0, C, 16):
            kxv = _simd.vload(kx, cb)
            kyv = _simd.vload(ky, cb)
            sv = _simd.vzero()
            qv = _simd.vzero()
            for r in range(r0, r1):
                a = _simd.vsub(_simd.vload(xf, r * C + cb), kxv)
                sv = _simd.vadd(sv, a)
                qv = _simd.vfma(a, _simd.vsub(_simd.vload(yf, r * C + cb), kyv), qv)
            _simd.vstore(tmp, 0, sv)
            _simd.vstore(tmp, 16, qv)
            for c in range(16):
                s[cb + c] += tmp[c]
                q[cb + c] += tmp[16 + c]
    part[i, 0, :] = s
    part[i, 1, :] = q


@njit(**_SUM)
def sums_planes(i, lo, hi, x, y, kx, ky, part):
    """``sums_rows`` for a channels-first ``(N, C, P)`` array, over samples ``lo:hi``."""
    C, P = x.shape[1], x.shape[2]
    for c in range(C):
        s = 0.0
        q = 0.0
        kxc = kx[c]
        kyc = ky[c]
        for n in range(lo, hi):
            for p in range(P):
                a = x[n, c, p] - kxc
                s += a
                q += a * (y[n, c, p] - kyc)
        part[i, 0, c] = s
        part[i, 1, c] = q


@njit(**_SUM)
def affine_rows(lo, hi, x, kx, a, b, out):
    """``out = (x - kx) * a + b`` per column (centring first: no cancellation far from zero)."""
    C = x.shape[1]
    for r in range(lo, hi):
        for c in range(C):
            out[r, c] = (x[r, c] - kx[c]) * a[c] + b[c]


@njit(**_SUM)
def affine_planes(lo, hi, x, kx, a, b, out):
    C, P = x.shape[1], x.shape[2]
    for n in range(lo, hi):
        for c in range(C):
            kc = kx[c]
            ac = a[c]
            bc = b[c]
            for p in range(P):
                out[n, c, p] = (x[n, c, p] - kc) * ac + bc


@njit(**_SUM)
def affine2_rows(lo, hi, g, x, kx, a, b, k, out):
    """``out = g * a + (x - kx) * b + k`` per column (batch norm's input gradient)."""
    C = x.shape[1]
    for r in range(lo, hi):
        for c in range(C):
            out[r, c] = g[r, c] * a[c] + (x[r, c] - kx[c]) * b[c] + k[c]


@njit(**_SUM)
def affine2_planes(lo, hi, g, x, kx, a, b, k, out):
    C, P = x.shape[1], x.shape[2]
    for n in range(lo, hi):
        for c in range(C):
            kxc = kx[c]
            ac = a[c]
            bc = b[c]
            kc = k[c]
            for p in range(P):
                out[n, c, p] = g[n, c, p] * ac + (x[n, c, p] - kxc) * bc + kc
