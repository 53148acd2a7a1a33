"""A direct convolution for channels-last float32 images whose output channels come in sixteens.

im2col + GEMM is memory-bound for few channels: with 16 channels the column matrix is 9x the input,
written and read back, and BLAS runs the thin ``(M, 144) x (144, 16)`` product at 35-70 GFLOP/s. This
kernel reads the input in place instead: for each output row it keeps 7 output pixels x 16 output
channels in seven vector registers (``_simd``), and sums over the window -- kh rows of kw*C consecutive
floats of an NHWC row -- with one weight vector load and seven broadcast-FMAs per step. Measured on one
core, batch 128, 16 -> 16 channels 3x3 at 28x28: 8.5-9 ms against 15-20 ms for the compiled im2col +
GEMM (PyTorch's oneDNN, channels-last, one thread: 8.9-9.1 ms); 32 -> 64 at 14x14: 13-14 vs 12-17 ms.

Each image is first copied into a small zero-bordered scratch image (tens of KB, so it stays in cache);
reading it, the kernel needs no border tests, and the zero border provides any padding. The input's
channel count ``C`` and the stride ``S`` are compile-time constants of each kernel (``direct_conv(C, S)``
compiles one per pair, cached on disk like every kernel here), which turns the seven pixels' offsets
into constants of the addressing; with them passed as arguments the seven addresses took seven
registers and the loop spilled.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit

from deepbox.kernels._simd import vadd, vbload, vfma, vload, vstore, vzero

__all__ = ["direct_conv", "direct_weight_grad", "BLOCK"]

BLOCK = 7           # output pixels per register block (divides 28, 14 and 7: Fashion-MNIST ResNets)

_kernels: dict = {}
_lock = threading.Lock()


def direct_conv(c: int, s: int):
    """The compiled direct convolution for ``c`` input channels and stride ``s`` (compiled once).

    ``kernel(lo, hi, x, wm, out, kh, kw, ph, pw)`` computes images ``lo:hi``:
    ``out[n, oy, ox, o] = sum over i, j, t of xpad[n, oy*s + i, ox*s + j, t] * wm[(i*kw + j)*c + t, o]``,
    where ``xpad`` is ``x`` with ``ph`` zero rows above and ``pw`` zero columns left (and zeros below
    and right as far as the windows reach). ``x``: ``(N, H, W*c)``, ``wm``: ``(kh*kw*c, O)``, ``out``:
    ``(N, Ho, Wo*O)``, all C-contiguous float32, ``O`` a multiple of 16.
    """
    key = (int(c), int(s))
    k = _kernels.get(key)
    if k is None:
        with _lock:
            k = _kernels.get(key)
            if k is None:
                k = _kernels[key] = _make(*key)
    return k


@njit(nogil=True, cache=True, boundscheck=False)
def _copy_row(src, dst, at):
    """``dst[at:at + len(src)] = src`` as a loop: numba's slice assignment from an array compiles a
    shape-mismatch message (string formatting), about 5-7 s of compilation on a fresh install's first run."""
    for t in range(src.shape[0]):
        dst[at + t] = src[t]


def _make(C, S):
    @njit(nogil=True, cache=True, boundscheck=False)
    def conv(lo, hi, x, wm, out, kh, kw, ph, pw):
        H, WC = x.shape[1], x.shape[2]
        O = wm.shape[1]
        Ho, Wo = out.shape[1], out.shape[2] // O
        hp = max(S * (Ho - 1) + kh, ph + H)
        wq = max(S * (-(-Wo // 7) * 7 - 1) + kw, pw + WC // C)
        rowlen = wq * C
        pb = np.zeros((hp, rowlen), np.float32)      # the zero-bordered image
        pbf = pb.ravel()
        wf = wm.ravel()
        tmp = np.empty(7 * 16, np.float32)            # a block that overhangs the row's end
        KC = kw * C
        SC = S * C
        for n in range(lo, hi):
            for y in range(H):
                _copy_row(x[n, y], pb[ph + y], pw * C)
            of = out[n].ravel()
            for oy in range(Ho):
                for ob in range(0, O, 16):
                    for x0 in range(0, Wo, 7):
                        a0 = vzero()
                        a1 = vzero()
                        a2 = vzero()
                        a3 = vzero()
                        a4 = vzero()
                        a5 = vzero()
                        a6 = vzero()
                        for i in range(kh):
                            rb = (oy * S + i) * rowlen + x0 * SC
                            wb = i * KC * O + ob
                            for t in range(KC):
                                wv = vload(wf, wb + t * O)
                                r = rb + t
                                a0 = vfma(vbload(pbf, r), wv, a0)
                                a1 = vfma(vbload(pbf, r + SC), wv, a1)
                                a2 = vfma(vbload(pbf, r + 2 * SC), wv, a2)
                                a3 = vfma(vbload(pbf, r + 3 * SC), wv, a3)
                                a4 = vfma(vbload(pbf, r + 4 * SC), wv, a4)
                                a5 = vfma(vbload(pbf, r + 5 * SC), wv, a5)
                                a6 = vfma(vbload(pbf, r + 6 * SC), wv, a6)
                        ob0 = (oy * Wo + x0) * O + ob
                        if x0 + 7 <= Wo:
                            vstore(of, ob0, a0)
                            vstore(of, ob0 + O, a1)
                            vstore(of, ob0 + 2 * O, a2)
                            vstore(of, ob0 + 3 * O, a3)
                            vstore(of, ob0 + 4 * O, a4)
                            vstore(of, ob0 + 5 * O, a5)
                            vstore(of, ob0 + 6 * O, a6)
                        else:
                            vstore(tmp, 0, a0)
                            vstore(tmp, 16, a1)
                            vstore(tmp, 32, a2)
                            vstore(tmp, 48, a3)
                            vstore(tmp, 64, a4)
                            vstore(tmp, 80, a5)
                            vstore(tmp, 96, a6)
                            for p in range(Wo - x0):
                                for q in range(16):
                                    of[ob0 + p * O + q] = tmp[p * 16 + q]

    return conv


@njit(nogil=True, cache=True, boundscheck=False)
def direct_weight_grad(t, lo, hi, x, g, part, C, S, kh, kw, ph, pw):
    """The weight gradient of ``direct_conv(C, S)``'s convolution.

    Adds, over images ``lo:hi``, ``sum over oy, ox of xpad[n, oy*S + i, ox*S + j, u] * g[n, oy, ox, o]`` into
    ``part[t, (i*kw + j)*C + u, o]``. ``x``: ``(N, H, W*C)``, ``g``: ``(N, Ho, Wo*O)``, ``part``:
    ``(threads, kh*kw*C, O)``, all C-contiguous float32. Sixteen rows of the gradient (of one window row's
    ``kw*C``) x 16 outputs stay in registers for a whole image: per output pixel one load of its 16 gradient
    values and sixteen broadcast-FMAs, whose offsets are constants (one kernel serves every ``C`` and ``S``).
    When ``kw*C`` is not a multiple of 16, the last block's spare rows read past the window (into the
    scratch image's spare end) and are dropped.
    """
    H, WC = x.shape[1], x.shape[2]
    O = part.shape[2]
    Ho, Wo = g.shape[1], g.shape[2] // O
    hp = max(S * (Ho - 1) + kh, ph + H)
    wq = max(S * (Wo - 1) + kw, pw + WC // C)
    rowlen = wq * C + 16              # 16 spare floats: a partial block reads past the window
    pb = np.zeros((hp, rowlen), np.float32)
    pbf = pb.ravel()
    pf = part[t].ravel()
    tmp = np.empty(16 * 16, np.float32)
    KC = kw * C
    SC = S * C
    for n in range(lo, hi):
        for y in range(H):
            _copy_row(x[n, y], pb[ph + y], pw * C)
        gf = g[n].ravel()
        for i in range(kh):
            for u0 in range(0, KC, 16):
                for ob in range(0, O, 16):
                    a0 = vzero()
                    a1 = vzero()
                    a2 = vzero()
                    a3 = vzero()
                    a4 = vzero()
                    a5 = vzero()
                    a6 = vzero()
                    a7 = vzero()
                    a8 = vzero()
                    a9 = vzero()
                    a10 = vzero()
                    a11 = vzero()
                    a12 = vzero()
                    a13 = vzero()
                    a14 = vzero()
                    a15 = vzero()
                    for oy in range(Ho):
                        rb = (oy * S + i) * rowlen + u0
                        gb = oy * Wo * O + ob
                        for ox in range(Wo):
                            gv = vload(gf, gb + ox * O)
                            r = rb + ox * SC
                            a0 = vfma(vbload(pbf, r + 0), gv, a0)
                            a1 = vfma(vbload(pbf, r + 1), gv, a1)
                            a2 = vfma(vbload(pbf, r + 2), gv, a2)
                            a3 = vfma(vbload(pbf, r + 3), gv, a3)
                            a4 = vfma(vbload(pbf, r + 4), gv, a4)
                            a5 = vfma(vbload(pbf, r + 5), gv, a5)
                            a6 = vfma(vbload(pbf, r + 6), gv, a6)
                            a7 = vfma(vbload(pbf, r + 7), gv, a7)
                            a8 = vfma(vbload(pbf, r + 8), gv, a8)
                            a9 = vfma(vbload(pbf, r + 9), gv, a9)
                            a10 = vfma(vbload(pbf, r + 10), gv, a10)
                            a11 = vfma(vbload(pbf, r + 11), gv, a11)
                            a12 = vfma(vbload(pbf, r + 12), gv, a12)
                            a13 = vfma(vbload(pbf, r + 13), gv, a13)
                            a14 = vfma(vbload(pbf, r + 14), gv, a14)
                            a15 = vfma(vbload(pbf, r + 15), gv, a15)
                    pb0 = (i * KC + u0) * O + ob
                    if u0 + 16 <= KC:
                        vstore(pf, pb0 + 0 * O, vadd(vload(pf, pb0 + 0 * O), a0))
                        vstore(pf, pb0 + 1 * O, vadd(vload(pf, pb0 + 1 * O), a1))
                        vstore(pf, pb0 + 2 * O, vadd(vload(pf, pb0 + 2 * O), a2))
                        vstore(pf, pb0 + 3 * O, vadd(vload(pf, pb0 + 3 * O), a3))
                        vstore(pf, pb0 + 4 * O, vadd(vload(pf, pb0 + 4 * O), a4))
                        vstore(pf, pb0 + 5 * O, vadd(vload(pf, pb0 + 5 * O), a5))
                        vstore(pf, pb0 + 6 * O, vadd(vload(pf, pb0 + 6 * O), a6))
                        vstore(pf, pb0 + 7 * O, vadd(vload(pf, pb0 + 7 * O), a7))
                        vstore(pf, pb0 + 8 * O, vadd(vload(pf, pb0 + 8 * O), a8))
                        vstore(pf, pb0 + 9 * O, vadd(vload(pf, pb0 + 9 * O), a9))
                        vstore(pf, pb0 + 10 * O, vadd(vload(pf, pb0 + 10 * O), a10))
                        vstore(pf, pb0 + 11 * O, vadd(vload(pf, pb0 + 11 * O), a11))
                        vstore(pf, pb0 + 12 * O, vadd(vload(pf, pb0 + 12 * O), a12))
                        vstore(pf, pb0 + 13 * O, vadd(vload(pf, pb0 + 13 * O), a13))
                        vstore(pf, pb0 + 14 * O, vadd(vload(pf, pb0 + 14 * O), a14))
                        vstore(pf, pb0 + 15 * O, vadd(vload(pf, pb0 + 15 * O), a15))
                    else:
                        vstore(tmp, 0, a0)
                        vstore(tmp, 16, a1)
                        vstore(tmp, 32, a2)
                        vstore(tmp, 48, a3)
                        vstore(tmp, 64, a4)
                        vstore(tmp, 80, a5)
                        vstore(tmp, 96, a6)
                        vstore(tmp, 112, a7)
                        vstore(tmp, 128, a8)
                        vstore(tmp, 144, a9)
                        vstore(tmp, 160, a10)
                        vstore(tmp, 176, a11)
                        vstore(tmp, 192, a12)
                        vstore(tmp, 208, a13)
                        vstore(tmp, 224, a14)
                        vstore(tmp, 240, a15)
                        for r in range(KC - u0):
                            for q in range(16):
                                pf[pb0 + r * O + q] += tmp[r * 16 + q]
