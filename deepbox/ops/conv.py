"""Convolutions as fused forward/backward kernels: im2col + one GEMM, col2im as strided adds.

The public layout is PyTorch's NCHW, but the kernels compute channels-last (NHWC):
the window copy of im2col then moves runs of ``C`` contiguous floats, the GEMM
output ``(N*Ho*Wo, O)`` *is* the NHWC result, and no transpose copy is needed on
either side. A convolution returns its NHWC array as an NCHW-shaped view
(``transpose(0, 3, 1, 2)``), like PyTorch's ``channels_last`` memory format;
NumPy's elementwise ops keep that memory order (``order='K'``), so the next
convolution or pooling finds its input channels-last again without a copy.

Measured reasons (see PERF-NOTES): NHWC im2col beats channels-first by
1.3-1.4x; a single ``(N*Ho*Wo, K) @ (K, O)`` GEMM beats per-sample GEMMs;
the input gradient is one GEMM per kernel tap whose contiguous ``(N*Ho*Wo, C)``
result is added into a shifted slice of the input (col2im without the strided
``dcols`` view, and never ``np.add.at``); the bias gradient is a matrix-vector
product with a ones vector, which BLAS runs several times faster than
``sum(axis=0)``. A one-channel input (the first layer of an MNIST network) is
copied tap-major instead: each of the ``kh*kw`` rows of the column matrix is
then one strided copy of the image, and a ones row folds the bias into the GEMM.

The column matrix is never built whole: im2col and its GEMM run a few MB of images at
a time (still in cache when multiplied), backward recomputes the columns for the
weight gradient instead of keeping them, and the input gradient goes per tap and
image chunk too. The chunks are split over deepbox's threads with BLAS at one thread
(``_threads.parallel_gemms``). Padded inputs and chunk buffers live in a reusable
workspace, because fresh arrays pay page faults on every step (and two threads
faulting at once serialise).
"""
from __future__ import annotations

import math
import threading

from numpy.lib.stride_tricks import as_strided

from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.kernels import switch as _switch
from deepbox.kernels import threads as _threads
from deepbox.kernels.workspace import workspace

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "unfold", "fold"]


# ----------------------------------------------------------------------------- argument helpers

def _ntuple(v, n: int, name: str) -> tuple:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v!r}")
        out = tuple(int(a) for a in v)
    else:
        out = (int(v),) * n
    return out


def _positive(vals: tuple, name: str, allow_zero: bool = False) -> None:
    for v in vals:
        if v < 0 or (v == 0 and not allow_zero):
            raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {vals}")


def _out_size(size: int, k: int, s: int, pad_total: int, d: int) -> int:
    return (size + pad_total - d * (k - 1) - 1) // s + 1


def _same_padding(k: tuple, d: tuple) -> tuple:
    """PyTorch's ``padding='same'``: total ``d*(k-1)``, the odd extra on the bottom/right."""
    pads = []
    for kk, dd in zip(k, d):
        total = dd * (kk - 1)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


# ----------------------------------------------------------------------------- raw-array kernels

def _pad_nhwc(x, ph: tuple, pw: tuple):
    """Zero-pad the spatial axes (1, 2) of an NHWC array; returns ``x`` itself when no padding.

    The padded array is a workspace buffer, only read by im2col (backward pads again rather
    than keep it). The buffer is zeroed when new and its borders are never written afterwards.
    """
    if not (ph[0] or ph[1] or pw[0] or pw[1]):
        return x
    n, h, w = x.shape[:3]
    shape = (n, h + ph[0] + ph[1], w + pw[0] + pw[1]) + x.shape[3:]
    # the tag holds one image's padded shape: a buffer's zero border then stays where it was
    # for any batch size, and no layer of another geometry reuses it
    out = workspace.get(shape, x.dtype, tag=("pad", shape[1:]), zeroed=True)
    inner = out[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w]
    _threads.parallel(_copy_rows, n, inner, x, work=x.size)
    return out


def _copy_rows(lo, hi, dst, src):
    """``dst[lo:hi] = src[lo:hi]``: one chunk of a batch copy (NumPy releases the GIL)."""
    dst[lo:hi] = src[lo:hi]


def _windows(x, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, ho: int, wo: int):
    """The ``(N, Ho, Wo, kh, kw, *C)`` window view of a padded NHWC array (no copy)."""
    st = x.strides
    shape = (x.shape[0], ho, wo, kh, kw) + x.shape[3:]
    strides = (st[0], st[1] * sh, st[2] * sw, st[1] * dh, st[2] * dw) + st[3:]
    return as_strided(x, shape, strides, writeable=False)


def _padded_nhwc(x, ph, pw):
    """The zero-padded NHWC copy (or view) of an NCHW input that im2col reads."""
    xh = _nhwc(x)
    c = x.shape[1]
    if c > 1 and not xh.flags.c_contiguous and not (ph[0] or ph[1] or pw[0] or pw[1]):
        xh = xp.ascontiguousarray(xh)   # one transposing copy beats a gather inside im2col
    return _pad_nhwc(xh, ph, pw)


# bytes of columns per chunk: small enough to stay in cache between the copy and its GEMM
_CHUNK_BYTES = 2 << 20


def _chunk_images(n, ho, wo, k, itemsize, budget):
    """Images per chunk so that a chunk's ``(rows, k)`` matrix takes about ``budget`` bytes,
    and so that there are at least as many chunks as threads (LeNet-5's conv2 input gradient
    fits 128 images in one 2 MB chunk, which left the second core idle)."""
    b = max(1, min(n, budget // max(ho * wo * k * itemsize, 1)))
    return min(b, -(-n // _threads.num_threads()))


def _column_chunks(xpad, kh, kw, sh, sw, dh, dw, ho, wo, ones_row=False, start=0, stop=None):
    """Yield ``(lo, hi, cols)``: the im2col matrix of images ``lo:hi``, a few MB at a time.

    Measured on 2 cores (one thread each side): copying a chunk and multiplying it while it
    is still in cache beats one full-batch column matrix and GEMM by 1.2-1.7x for the
    forward, and -- recomputing the columns in backward instead of keeping them -- by
    1.1-1.4x for the weight gradient; the full matrix (tens of MB per layer) is never held.
    ``cols`` is ``(rows, kh*kw*C)`` (plus a ones column with ``ones_row``), in a buffer of this
    generator's own (so that threads can each run one), over images ``start:stop``.
    """
    n, _, _, c = xpad.shape
    stop = n if stop is None else stop
    k = kh * kw * c + int(ones_row)
    b = _chunk_images(n, ho, wo, k, xpad.dtype.itemsize, _CHUNK_BYTES)
    tag = ("chunk", threading.get_ident())    # one buffer per thread, reused: fresh pages fault
    if c == 1:
        # tap-major: each tap one strided copy; a ones row makes the GEMM add the bias
        flat = workspace.get((k, b * ho * wo), xpad.dtype, tag=tag)
        if ones_row:
            flat[-1] = 1
        x3 = xpad[..., 0]
        for lo in range(start, stop, b):
            hi = min(stop, lo + b)
            cols = flat[:kh * kw, :(hi - lo) * ho * wo].reshape(kh, kw, hi - lo, ho, wo)
            _tap_rows(0, hi - lo, cols, x3[lo:hi], sh, sw, dh, dw)
            yield lo, hi, flat[:, :(hi - lo) * ho * wo].T
        return
    buf = workspace.get((b, ho, wo, kh, kw, c), xpad.dtype, tag=tag)
    win = _windows(xpad, kh, kw, sh, sw, dh, dw, ho, wo)
    for lo in range(start, stop, b):
        hi = min(stop, lo + b)
        part = buf[:hi - lo]
        part[...] = win[lo:hi]
        yield lo, hi, part.reshape((hi - lo) * ho * wo, k)


def _chunk_ranges(n, b, lo, hi):
    """Images ``start:stop`` of chunks ``lo:hi`` when chunks hold ``b`` images."""
    return lo * b, min(n, hi * b)


def _tap_rows(lo, hi, cols, x3, sh, sw, dh, dw):
    """Tap-major one-channel im2col of images ``lo:hi``: each tap one strided copy."""
    kh, kw, _, ho, wo = cols.shape
    for i in range(kh):
        for j in range(kw):
            cols[i, j, lo:hi] = x3[lo:hi, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]


def _col2im(dcols, shape, kh, kw, sh, sw, dh, dw, ho, wo):
    """Adjoint of ``_windows``: sum ``(N, Ho, Wo, kh, kw, *C)`` window values into an NHWC array.

    One strided slice add per kernel tap; overlapping windows accumulate.
    """
    dx = xp.zeros(shape, dtype=dcols.dtype)
    for i in range(kh):
        hs = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
        for j in range(kw):
            dx[:, hs, j * dw:j * dw + sw * (wo - 1) + 1:sw] += dcols[:, :, :, i, j]
    return dx


def _tap_range(i: int, s: int, d: int, p: int, size: int, out: int):
    """Output positions of tap ``i`` that land inside the unpadded input, and where they land."""
    off = i * d - p                           # input row of output 0 for this tap
    lo = max(0, -(off // s))                  # first output with off + lo*s >= 0
    hi = min(out - 1, (size - 1 - off) // s)  # last output with off + hi*s < size
    if hi < lo:
        return None
    return slice(lo, hi + 1), slice(off + lo * s, off + hi * s + 1, s)


def _conv_input_grad(gm, wm, shape, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo):
    """dx of a convolution as one GEMM per kernel tap, each added into the unpadded NHWC input.

    ``g @ W_tap`` is a contiguous ``(N*Ho*Wo, C)`` block, so the slice add runs over
    long contiguous rows even for few channels (the strided ``dcols`` view of one
    big GEMM has inner runs of only ``C`` floats: 5-10x slower to add for C <= 16).
    Measured single-threaded on a busy machine: 10-50 % faster than one big GEMM
    plus strided adds also at 16-32 channels (PERF-NOTES: 1.3-2.5x on an idle one);
    only when other processes hold both cores does the big GEMM win, as it makes
    fewer BLAS calls and so fewer thread hand-offs.
    Contributions that fall into the padding are never computed; with stride 1
    and 'same' output the centre tap covers the whole input and is written, not added.
    """
    K = _switch.kernels_for(gm) if sh == sw == 1 and dh == dw == 1 else None
    if K is not None:
        return _conv_input_grad_rows(K, gm, wm, shape, kh, kw, ph, pw, ho, wo)
    n, h, w, c = shape
    wt = wm.reshape(kh, kw, c, -1)
    o = wt.shape[3]
    taps = []
    full_tap = None
    for i in range(kh):
        ri = _tap_range(i, sh, dh, ph, h, ho)
        for j in range(kw):
            rj = _tap_range(j, sw, dw, pw, w, wo)
            if ri is None or rj is None:
                continue
            full = (ho == h and wo == w and ri[1] == slice(0, h, 1) and rj[1] == slice(0, w, 1)
                    and ri[0] == slice(0, h) and rj[0] == slice(0, w))
            if full_tap is None and full:
                full_tap = (i, j)
            else:
                taps.append((i, j, ri, rj))
    dx = xp.empty(shape, dtype=gm.dtype) if full_tap is not None else xp.zeros(shape, dtype=gm.dtype)
    # a few images at a time, so that each tap's product is added while still in cache
    b = _chunk_images(n, ho, wo, o + c, gm.dtype.itemsize, _DX_CHUNK_BYTES)

    def input_chunks(lo, hi):
        start, stop = _chunk_ranges(n, b, lo, hi)
        buf = workspace.get((b * ho * wo, c), gm.dtype, tag=("dx", threading.get_ident()))
        for i0 in range(start, stop, b):
            i1 = min(stop, i0 + b)
            rows = (i1 - i0) * ho * wo
            gc = gm[i0 * ho * wo:i0 * ho * wo + rows]
            dc = dx[i0:i1]
            if full_tap is not None:
                xp.matmul(gc, wt[full_tap].T, out=dc.reshape(rows, c))
            bc = buf[:rows]
            b4 = bc.reshape(i1 - i0, ho, wo, c)
            for i, j, ri, rj in taps:
                xp.matmul(gc, wt[i, j].T, out=bc)
                dc[:, ri[1], rj[1]] += b4[:, ri[0], rj[0]]

    _threads.parallel_gemms(input_chunks, -(-n // b), work=gm.shape[0] * wm.shape[0])
    return dx


_DX_CHUNK_BYTES = 2 << 20


def _conv_input_grad_rows(K, gm, wm, shape, kh, kw, ph, pw, ho, wo):
    """dx of a stride-1, dilation-1 convolution: ``g @ W.T`` for a few images at a time (one GEMM
    with ``N = kh*kw*C`` instead of ``kh*kw`` with ``N = C``), each chunk added into dx by the
    compiled ``col2im_rows`` while still in cache.

    Measured on one core, whole input gradients against the per-tap GEMMs: LeNet-5's conv2
    (6 channels) 1.8 vs 3.0 ms, a 16-channel ResNet conv 12.8 vs 16.8 ms.
    """
    n, h, w, c = shape
    k = kh * kw * c
    dx = xp.zeros((n, h, w * c), dtype=gm.dtype)
    wall = wm.T                                # (O, kh*kw*C)
    b = _chunk_images(n, ho, wo, k, gm.dtype.itemsize, _DX_CHUNK_BYTES)

    def input_chunks(lo, hi):
        start, stop = _chunk_ranges(n, b, lo, hi)
        buf = workspace.get((b * ho * wo, k), gm.dtype, tag=("dcols", threading.get_ident()))
        for i0 in range(start, stop, b):
            i1 = min(stop, i0 + b)
            rows = (i1 - i0) * ho * wo
            d = buf[:rows]
            xp.matmul(gm[i0 * ho * wo:i0 * ho * wo + rows], wall, out=d)
            K.col2im_rows(0, i1 - i0, d.reshape(i1 - i0, ho, wo, kh, kw * c), dx[i0:i1], c, ph, pw)

    _threads.parallel_gemms(input_chunks, -(-n // b), work=gm.shape[0] * k)
    return dx.reshape(n, h, w, c)


def _nhwc(x):
    """An NCHW array as its NHWC view (a free transpose; contiguous when x came from a conv)."""
    return x.transpose(0, 2, 3, 1)


def _bias_grad(gm):
    """Column sums of a ``(M, O)`` matrix as a BLAS matvec with a ones vector."""
    return xp.ones(gm.shape[0], dtype=gm.dtype) @ gm


# ----------------------------------------------------------------------------- padding modes

def _pad_index(size: int, lo: int, hi: int, mode: str):
    """Source index of every padded position along one axis (reflect / replicate / circular)."""
    idx = xp.arange(-lo, size + hi)
    if mode == "reflect":
        if lo >= size or hi >= size:
            raise ValueError(f"reflect padding ({lo}, {hi}) must be smaller than the input size {size}")
        period = 2 * (size - 1) if size > 1 else 1
        idx = xp.abs(idx) % period
        idx = xp.where(idx >= size, period - idx, idx)
    elif mode == "replicate":
        idx = xp.clip(idx, 0, size - 1)
    elif mode == "circular":
        if lo > size or hi > size:
            raise ValueError(f"circular padding ({lo}, {hi}) must be at most the input size {size}")
        idx = idx % size
    else:
        raise ValueError(f"padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got {mode!r}")
    return idx


class _IndexPad(Function):
    """Reflect/replicate/circular padding of the last ``len(pads)`` axes by index gathers.

    The backward of a gather along one axis is a product with the transposed 0/1
    selection matrix, which sums the gradient of every copy back to its source
    exactly once per copy (a small GEMM instead of ``np.add.at``).
    """

    @staticmethod
    def forward(ctx, x, pads=(), mode="reflect"):
        # pads: ((lo, hi) per padded axis), first entry is the first padded axis
        nd = len(pads)
        mats = []
        out = x
        for a, (lo, hi) in enumerate(pads):
            axis = x.ndim - nd + a
            idx = _pad_index(x.shape[axis], lo, hi, mode)
            out = xp.take(out, idx, axis=axis)
            mats.append((axis, idx, x.shape[axis]))
        ctx.mats = mats
        return out

    @staticmethod
    def backward(ctx, grad):
        g = grad
        for axis, idx, size in ctx.mats:
            sel = xp.zeros((idx.shape[0], size), dtype=grad.dtype)
            sel[xp.arange(idx.shape[0]), idx] = 1
            g = xp.moveaxis(xp.moveaxis(g, axis, -1) @ sel, -1, axis)
        return (g,)


# ----------------------------------------------------------------------------- convolution

# One input channel (the first layer of an image model): a direct compiled kernel. With C = 1 the
# GEMM's K is kh*kw and, for few output channels, N is tiny too: LeNet-5's conv1 ran at 24 GFLOP/s
# in BLAS after a 25-copy im2col. Measured on one core, batch 128, 1->6 5x5: forward 2.1 -> 1.2 ms.
_ONE_CHANNEL_MAX_OUT = 16


def _one_channel_kernels(x, w, c, o, stride, dilation, groups):
    """The kernel module when the direct one-channel path applies to this convolution, else None."""
    if c != 1 or groups != 1 or o > _ONE_CHANNEL_MAX_OUT or stride != (1, 1) or dilation != (1, 1):
        return None
    return _switch.kernels_for(x, w)


def _one_channel_forward(ctx, K, x, w, b, ph, pw, ho, wo, one_d):
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    hp, wp = ho + kh - 1, wo + kw - 1
    # zero-padded images as flat rows, with kw spare zeros so the last tap's run stays inside
    xflat = xp.zeros((n, hp * wp + kw), dtype=x.dtype)
    xflat[:, :hp * wp].reshape(n, hp, wp)[:, ph[0]:ph[0] + h, pw[0]:pw[0] + wd] = x[:, 0]
    wk = xp.ascontiguousarray(w[:, 0], dtype=x.dtype)
    bk = xp.zeros(o, dtype=x.dtype) if b is None else xp.ascontiguousarray(b, dtype=x.dtype)
    out = xp.empty((n, ho, wo, o), dtype=x.dtype)
    _threads.parallel(K.conv1ch_forward, n, xflat, wk, bk, out, wp, work=n * ho * wp * o * kh * kw // 4)
    ctx.direct = (wp,)
    ctx.geom = (n, 1, h, wd, o, kh, kw, 1, 1, 1, 1, ph, pw, ho, wo, 1, one_d, None)
    ctx.has_bias = b is not None
    ctx.fused_bias = False
    wm = w.transpose(2, 3, 1, 0).reshape(kh * kw, o)
    ctx.save_for_backward(xflat if ctx.needs_input_grad[1] else None, wm)
    out = out.transpose(0, 3, 1, 2)
    return out[:, :, 0, :] if one_d else out


def _one_channel_weight_grad(ctx, grad, n, o, kh, kw, ho, wo):
    """dW of ``_one_channel_forward`` from the output gradient (any layout), ``(O, 1, kh, kw)``."""
    K = _switch.kernels_for(grad)
    xflat, _ = ctx.saved_tensors
    (wp,) = ctx.direct
    gpl = xp.zeros((n, o, ho, wp), dtype=xflat.dtype)     # planes, zero past each row's end
    gpl[..., :wo] = grad
    gpl = gpl.reshape(n, o, ho * wp)
    parts = xp.zeros((_threads.num_threads(), o, kh, kw), dtype=xp.float64 if K is None else xflat.dtype)
    if K is None:      # kernels switched off since the forward: the same sums in NumPy
        for a in range(kh):
            for j in range(kw):
                xs = xflat[:, a * wp + j:a * wp + j + ho * wp]
                parts[0, :, a, j] = xp.einsum("not,nt->o", gpl, xs)
    else:
        _threads.parallel(K.conv1ch_weight_grad, n, xflat, gpl, parts, wp, work=n * o * kh * kw * ho * wp // 4,
                       indexed=True)
    return parts.sum(0).astype(xflat.dtype, copy=False)[:, None]


class Conv2dFn(Function):
    """2-D convolution (cross-correlation) of an NCHW input, channels-last inside.

    forward:  cols = im2col(x)  (M, kh*kw*C),  out = cols @ W + b   (M = N*Ho*Wo)
    backward: dW = cols.T @ g,  db = 1 @ g,  dx = sum over taps of shift(g @ W_tap.T)
    With groups the GEMMs are batched over groups (a ``(G, M, K/G)`` matmul).
    A 3-D input/weight (conv1d) runs as a height-1 image.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        x_in = x
        one_d = x.ndim == 3
        if one_d:
            x = x[:, :, None, :]
            w = w[:, :, None, :]
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        sh, sw = stride
        dh, dw = dilation
        ph, pw = padding
        ho = _out_size(h, kh, sh, ph[0] + ph[1], dh)
        wo = _out_size(wd, kw, sw, pw[0] + pw[1], dw)
        K = _one_channel_kernels(x, w, c, o, stride, dilation, groups)
        if K is not None:
            return _one_channel_forward(ctx, K, x, w, b, ph, pw, ho, wo, one_d)
        ctx.direct = None
        xpad = _padded_nhwc(x, ph, pw)
        m = n * ho * wo
        taps = kh * kw
        fused_bias = groups == 1 and c == 1 and b is not None
        if groups == 1:
            wm = w.transpose(2, 3, 1, 0).reshape(taps * c, o)
            if fused_bias:
                # one-channel input: the GEMM's K is tiny, so the bias costs as much as the GEMM
                # as a separate pass; a ones row in the columns folds it in (and db into dW)
                wm = xp.concatenate([wm, b.reshape(1, o).astype(wm.dtype, copy=False)])
            out = xp.empty((m, o), dtype=xpad.dtype)
            per_chunk = _chunk_images(n, ho, wo, wm.shape[0], xpad.dtype.itemsize, _CHUNK_BYTES)

            def forward_chunks(lo, hi):
                start, stop = _chunk_ranges(n, per_chunk, lo, hi)
                for i0, i1, cm in _column_chunks(xpad, kh, kw, sh, sw, dh, dw, ho, wo, fused_bias, start, stop):
                    xp.matmul(cm, wm, out=out[i0 * ho * wo:i1 * ho * wo])

            _threads.parallel_gemms(forward_chunks, -(-n // per_chunk), work=m * wm.shape[0])
            cols = None
        else:
            og = o // groups
            win = _windows(xpad, kh, kw, sh, sw, dh, dw, ho, wo).reshape(m, taps, groups, cg)
            cols = win.transpose(2, 0, 1, 3).reshape(groups, m, taps * cg)
            wm = w.reshape(groups, og, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(groups, taps * cg, og)
            out = (cols @ wm).transpose(1, 0, 2).reshape(m, o)
        if b is not None and not fused_bias:
            out += b
        ctx.fused_bias = fused_bias
        ctx.geom = (n, c, h, wd, o, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo, groups, one_d, xpad.shape)
        ctx.has_bias = b is not None
        # groups == 1 keeps the input, not the columns: backward recomputes them chunk by chunk
        keep = (x_in if groups == 1 else cols) if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(keep, wm)
        out = out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
        return out[:, :, 0, :] if one_d else out

    @staticmethod
    def backward(ctx, grad):
        n, c, h, wd, o, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo, groups, one_d, pshape = ctx.geom
        cols, wm = ctx.saved_tensors
        if one_d:
            grad = grad[:, :, None, :]
        m = n * ho * wo
        gc = grad.transpose(1, 0, 2, 3)
        if gc.flags.c_contiguous:          # channels-first gradient: (M, O) as a transposed view
            gm = gc.reshape(o, m).T
        else:
            gm = _nhwc(grad).reshape(m, o)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = dw_ = db = None
        if ctx.direct is not None:
            if need_w:
                dw_ = _one_channel_weight_grad(ctx, grad, n, o, kh, kw, ho, wo)
        elif groups == 1:
            if need_w:
                xin = cols[:, :, None, :] if one_d else cols
                xpad = _padded_nhwc(xin, ph, pw)
                k = kh * kw * c + int(ctx.fused_bias)
                per_chunk = _chunk_images(n, ho, wo, k, xpad.dtype.itemsize, _CHUNK_BYTES)
                parts = [None] * _threads.num_threads()

                def weight_chunks(t, lo, hi):
                    start, stop = _chunk_ranges(n, per_chunk, lo, hi)
                    acc = None
                    for i0, i1, cm in _column_chunks(xpad, kh, kw, sh, sw, dh, dw, ho, wo, ctx.fused_bias,
                                                     start, stop):
                        part = cm.T @ gm[i0 * ho * wo:i1 * ho * wo]
                        if acc is None:
                            acc = part
                        else:
                            acc += part
                    parts[t] = acc

                _threads.parallel_gemms(weight_chunks, -(-n // per_chunk), work=m * k, indexed=True)
                dwb = None
                for part in parts:
                    if part is not None:
                        dwb = part if dwb is None else dwb + part
                if ctx.fused_bias:
                    db, dwb = dwb[-1], dwb[:-1]
                dw_ = dwb.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
        else:
            og, cg = o // groups, c // groups
            gg = gm.reshape(m, groups, og).transpose(1, 0, 2)
            if need_w:
                dw_ = (cols.transpose(0, 2, 1) @ gg).reshape(groups, kh, kw, cg, og)
                dw_ = dw_.transpose(0, 4, 3, 1, 2).reshape(o, cg, kh, kw)
            if need_x:
                dcols = (gg @ wm.transpose(0, 2, 1)).reshape(groups, n, ho, wo, kh, kw, cg)
                dcols = dcols.transpose(1, 2, 3, 4, 5, 0, 6)
        if need_x:
            if groups == 1:
                wx = wm[:-1] if ctx.fused_bias else wm
                dx = _conv_input_grad(gm, wx, (n, h, wd, c), kh, kw, sh, sw, dh, dw, ph[0], pw[0], ho, wo)
            else:
                pshape = pshape[:3] + (groups, c // groups)
                dxp = _col2im(dcols, pshape, kh, kw, sh, sw, dh, dw, ho, wo).reshape(n, pshape[1], pshape[2], c)
                dx = dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + wd]
            dx = dx.transpose(0, 3, 1, 2)
            if one_d:
                dx = dx[:, :, 0, :]
        if need_w:
            dw_ = xp.ascontiguousarray(dw_)
            if one_d:
                dw_ = dw_[:, :, 0, :]
        if need_b and ctx.has_bias:
            if db is None:
                db = _bias_grad(gm)
            else:
                db = db.copy()
        else:
            db = None
        return dx, dw_, db


def _check_conv_args(x, weight, groups, nd, name):
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{name} expects a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                         f"got shape {tuple(x.shape)}")
    if weight.ndim != nd + 2:
        raise ValueError(f"{name} expects a {nd + 2}-D weight, got shape {tuple(weight.shape)}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups}")
    return groups


def _resolve_padding(padding, k, s, d, nd, name):
    """Padding as ((lo, hi), ...) per spatial axis; accepts int, tuple, 'same', 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(v != 1 for v in s):
                raise ValueError(f"padding='same' is not supported for strided convolutions ({name}, stride={s})")
            return _same_padding(k, d)
        raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    p = _ntuple(padding, nd, "padding")
    _positive(p, "padding", allow_zero=True)
    return tuple((v, v) for v in p)


def _conv(input, weight, bias, stride, padding, dilation, groups, nd, name, padding_mode="zeros"):
    groups = _check_conv_args(input, weight, groups, nd, name)
    unbatched = input.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
    k = tuple(weight.shape[2:])
    s = _ntuple(stride, nd, "stride")
    d = _ntuple(dilation, nd, "dilation")
    _positive(s, "stride")
    _positive(d, "dilation")
    pads = _resolve_padding(padding, k, s, d, nd, name)
    c = input.shape[1]
    if c != weight.shape[1] * groups:
        raise RuntimeError(
            f"{name}: expected input with {weight.shape[1] * groups} channels (weight {tuple(weight.shape)}, "
            f"groups={groups}), got input of shape {tuple(input.shape)}")
    if weight.shape[0] % groups:
        raise ValueError(f"{name}: out_channels ({weight.shape[0]}) must be divisible by groups ({groups})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise RuntimeError(f"{name}: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if padding_mode != "zeros" and any(p != (0, 0) for p in pads):
        input = _IndexPad.apply(input, pads=pads, mode=padding_mode)
        pads = ((0, 0),) * nd
    spatial = tuple(input.shape[2:])
    for size, kk, dd, (lo, hi) in zip(spatial, k, d, pads):
        if size + lo + hi < dd * (kk - 1) + 1:
            raise RuntimeError(
                f"{name}: the padded input ({tuple(input.shape)} with padding {pads}) is smaller than the "
                f"dilated kernel {k} (dilation {d})")
    if nd == 1:
        out = Conv2dFn.apply(input, weight, bias, stride=(1,) + s, padding=((0, 0),) + pads,
                             dilation=(1,) + d, groups=groups)
    else:
        out = Conv2dFn.apply(input, weight, bias, stride=s, padding=pads, dilation=d, groups=groups)
    return out.squeeze(0) if unbatched else out


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution over an ``(N, C, H, W)`` input, as ``torch.nn.functional.conv2d``.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: optional ``(C_out,)``.
        stride, dilation: int or pair.
        padding: int, pair, ``'valid'`` or ``'same'`` (stride 1; odd extra on the bottom/right).
        groups: input and output channels split into this many independent groups.

    Shape:
        output ``(N, C_out, H_out, W_out)`` with
        ``H_out = (H + 2*pad - dilation*(kH-1) - 1) // stride + 1``.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over an ``(N, C, L)`` input, as ``torch.nn.functional.conv1d``.

    Shape: weight ``(C_out, C_in / groups, k)``; output ``(N, C_out, L_out)``.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


# ----------------------------------------------------------------------------- transposed convolution

class ConvTranspose2dFn(Function):
    """Transposed 2-D convolution: the adjoint of ``Conv2dFn`` with respect to its input.

    forward:  cols = x @ W  (M_in, kh*kw*C_out),  out = crop(col2im(cols)) + b
    backward: gcols = im2col(pad(g)),  dx = gcols @ W.T,  dW = x.T @ gcols
    """

    @staticmethod
    def forward(ctx, x, w, b, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1):
        one_d = x.ndim == 3
        if one_d:
            x = x[:, :, None, :]
            w = w[:, :, None, :]
        n, c, h, wd = x.shape
        _, og, kh, kw = w.shape
        o = og * groups
        cg = c // groups
        sh, sw = stride
        dh, dw = dilation
        ph, pw = padding
        ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1
        wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1
        hfull = (h - 1) * sh + dh * (kh - 1) + 1
        wfull = (wd - 1) * sw + dw * (kw - 1) + 1
        hb, wb = max(hfull, ph + ho), max(wfull, pw + wo)
        m = n * h * wd
        taps = kh * kw
        xm = _nhwc(x).reshape(m, c)
        if groups == 1:
            wm = w.transpose(0, 2, 3, 1).reshape(c, taps * o)
            cols = (xm @ wm).reshape(n, h, wd, kh, kw, o)
            bshape = (n, hb, wb, o)
        else:
            xm = xm.reshape(m, groups, cg).transpose(1, 0, 2)
            wm = w.reshape(groups, cg, og, kh, kw).transpose(0, 1, 3, 4, 2).reshape(groups, cg, taps * og)
            cols = (xm @ wm).reshape(groups, n, h, wd, kh, kw, og).transpose(1, 2, 3, 4, 5, 0, 6)
            bshape = (n, hb, wb, groups, og)
        buf = _col2im(cols, bshape, kh, kw, sh, sw, dh, dw, h, wd).reshape(n, hb, wb, o)
        out = buf[:, ph:ph + ho, pw:pw + wo]
        if b is not None:
            out = out + b
        ctx.geom = (n, c, h, wd, o, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo, hb, wb, groups, one_d)
        ctx.has_bias = b is not None
        ctx.save_for_backward(xm if ctx.needs_input_grad[1] else None, wm)
        out = out.transpose(0, 3, 1, 2)
        return out[:, :, 0, :] if one_d else out

    @staticmethod
    def backward(ctx, grad):
        n, c, h, wd, o, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo, hb, wb, groups, one_d = ctx.geom
        xm, wm = ctx.saved_tensors
        if one_d:
            grad = grad[:, :, None, :]
        gh = _nhwc(grad)
        gpad = xp.zeros((n, hb, wb, o), dtype=grad.dtype)
        gpad[:, ph:ph + ho, pw:pw + wo] = gh
        m = n * h * wd
        taps = kh * kw
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = dw_ = db = None
        win = _windows(gpad, kh, kw, sh, sw, dh, dw, h, wd)
        if groups == 1:
            gcols = win.reshape(m, taps * o)
            if need_x:
                dx = (gcols @ wm.T).reshape(n, h, wd, c).transpose(0, 3, 1, 2)
            if need_w:
                dw_ = (xm.T @ gcols).reshape(c, kh, kw, o).transpose(0, 3, 1, 2)
        else:
            og, cg = o // groups, c // groups
            gcols = win.reshape(n, h, wd, kh, kw, groups, og).transpose(5, 0, 1, 2, 3, 4, 6)
            gcols = gcols.reshape(groups, m, taps * og)
            if need_x:
                dx = (gcols @ wm.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(n, h, wd, c).transpose(0, 3, 1, 2)
            if need_w:
                dw_ = (xm.transpose(0, 2, 1) @ gcols).reshape(groups, cg, kh, kw, og)
                dw_ = dw_.transpose(0, 1, 4, 2, 3).reshape(c, og, kh, kw)
        if need_w:
            dw_ = xp.ascontiguousarray(dw_)
        if need_b and ctx.has_bias:
            db = _bias_grad(gh.reshape(n * ho * wo, o) if gh.flags.c_contiguous else
                            xp.ascontiguousarray(gh).reshape(n * ho * wo, o))
        if one_d:
            if dx is not None:
                dx = dx[:, :, 0, :]
            if dw_ is not None:
                dw_ = dw_[:, :, 0, :]
        return dx, dw_, db


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nd, name):
    groups = _check_conv_args(input, weight, groups, nd, name)
    unbatched = input.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
    s = _ntuple(stride, nd, "stride")
    p = _ntuple(padding, nd, "padding")
    op = _ntuple(output_padding, nd, "output_padding")
    d = _ntuple(dilation, nd, "dilation")
    _positive(s, "stride")
    _positive(d, "dilation")
    _positive(p, "padding", allow_zero=True)
    _positive(op, "output_padding", allow_zero=True)
    for a, b_, c in zip(op, s, d):
        if a >= b_ and a >= c:
            raise ValueError(f"{name}: output_padding {op} must be smaller than either stride {s} or dilation {d}")
    if input.shape[1] != weight.shape[0]:
        raise RuntimeError(f"{name}: expected input with {weight.shape[0]} channels (weight "
                           f"{tuple(weight.shape)}), got input of shape {tuple(input.shape)}")
    if weight.shape[0] % groups:
        raise ValueError(f"{name}: in_channels ({weight.shape[0]}) must be divisible by groups ({groups})")
    o = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (o,):
        raise RuntimeError(f"{name}: bias must have shape ({o},), got {tuple(bias.shape)}")
    k = tuple(weight.shape[2:])
    for size, kk, ss, pp, oo, dd in zip(input.shape[2:], k, s, p, op, d):
        if (size - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1 <= 0:
            raise RuntimeError(f"{name}: the output size of input {tuple(input.shape)} with kernel {k}, "
                               f"stride {s}, padding {p} is not positive")
    if nd == 1:
        out = ConvTranspose2dFn.apply(input, weight, bias, stride=(1,) + s, padding=(0,) + p,
                                      output_padding=(0,) + op, dilation=(1,) + d, groups=groups)
    else:
        out = ConvTranspose2dFn.apply(input, weight, bias, stride=s, padding=p, output_padding=op,
                                      dilation=d, groups=groups)
    return out.squeeze(0) if unbatched else out


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d``.

    Shape: weight ``(C_in, C_out / groups, kH, kW)``; output ``H_out = (H-1)*stride - 2*padding
    + dilation*(kH-1) + output_padding + 1``.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                           "conv_transpose2d")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-D convolution, as ``torch.nn.functional.conv_transpose1d``."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                           "conv_transpose1d")


# ----------------------------------------------------------------------------- unfold / fold

def _unfold_array(x, kh, kw, sh, sw, dh, dw, ph, pw):
    n, c, h, wd = x.shape
    ho = _out_size(h, kh, sh, 2 * ph, dh)
    wo = _out_size(wd, kw, sw, 2 * pw, dw)
    xpad = _pad_nhwc(_nhwc(x), (ph, ph), (pw, pw))
    win = _windows(xpad, kh, kw, sh, sw, dh, dw, ho, wo)          # N, Ho, Wo, kh, kw, C
    return win.transpose(0, 5, 3, 4, 1, 2).reshape(n, c * kh * kw, ho * wo)


def _fold_array(cols, c, h, wd, kh, kw, sh, sw, dh, dw, ph, pw):
    n = cols.shape[0]
    ho = _out_size(h, kh, sh, 2 * ph, dh)
    wo = _out_size(wd, kw, sw, 2 * pw, dw)
    dcols = cols.reshape(n, c, kh, kw, ho, wo).transpose(0, 4, 5, 2, 3, 1)
    dxp = _col2im(dcols, (n, h + 2 * ph, wd + 2 * pw, c), kh, kw, sh, sw, dh, dw, ho, wo)
    return dxp[:, ph:ph + h, pw:pw + wd].transpose(0, 3, 1, 2)


class UnfoldFn(Function):
    """Sliding blocks of an ``(N, C, H, W)`` array as columns ``(N, C*kh*kw, L)``; backward folds."""

    @staticmethod
    def forward(ctx, x, kernel_size=(1, 1), dilation=(1, 1), padding=(0, 0), stride=(1, 1)):
        ctx.args = (x.shape[1], x.shape[2], x.shape[3]) + kernel_size + stride + dilation + padding
        return _unfold_array(x, *kernel_size, *stride, *dilation, *padding)

    @staticmethod
    def backward(ctx, grad):
        return (_fold_array(grad, *ctx.args),)


class FoldFn(Function):
    """Sum columns ``(N, C*kh*kw, L)`` back into ``(N, C, H, W)`` (the adjoint of unfold)."""

    @staticmethod
    def forward(ctx, cols, output_size=(1, 1), kernel_size=(1, 1), dilation=(1, 1), padding=(0, 0),
                stride=(1, 1)):
        c = cols.shape[1] // (kernel_size[0] * kernel_size[1])
        ctx.args = kernel_size + stride + dilation + padding
        return _fold_array(cols, c, *output_size, *kernel_size, *stride, *dilation, *padding)

    @staticmethod
    def backward(ctx, grad):
        return (_unfold_array(grad, *ctx.args),)


def _block_args(kernel_size, dilation, padding, stride):
    k = _ntuple(kernel_size, 2, "kernel_size")
    d = _ntuple(dilation, 2, "dilation")
    p = _ntuple(padding, 2, "padding")
    s = _ntuple(stride, 2, "stride")
    _positive(k, "kernel_size")
    _positive(d, "dilation")
    _positive(s, "stride")
    _positive(p, "padding", allow_zero=True)
    return k, d, p, s


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding local blocks, as ``torch.nn.functional.unfold``.

    Shape: input ``(N, C, H, W)`` (or ``(C, H, W)``) → ``(N, C*kH*kW, L)`` with ``L`` the number of
    block positions; columns are ordered channel-major (``c, i, j``), as in PyTorch.
    """
    k, d, p, s = _block_args(kernel_size, dilation, padding, stride)
    unbatched = input.ndim == 3
    if input.ndim not in (3, 4):
        raise ValueError(f"unfold expects a 3-D or 4-D input, got shape {tuple(input.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    for size, kk, dd, pp, ss in zip(input.shape[2:], k, d, p, s):
        if _out_size(size, kk, ss, 2 * pp, dd) < 1:
            raise RuntimeError(f"unfold: input {tuple(input.shape)} is smaller than the block {k} "
                               f"(dilation {d}, padding {p})")
    out = UnfoldFn.apply(input, kernel_size=k, dilation=d, padding=p, stride=s)
    return out.squeeze(0) if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Combine sliding blocks into a tensor by summing overlaps, as ``torch.nn.functional.fold``.

    Shape: input ``(N, C*kH*kW, L)`` (or ``(C*kH*kW, L)``) → ``(N, C, H, W)`` with ``(H, W) = output_size``.
    """
    k, d, p, s = _block_args(kernel_size, dilation, padding, stride)
    size = _ntuple(output_size, 2, "output_size")
    unbatched = input.ndim == 2
    if input.ndim not in (2, 3):
        raise ValueError(f"fold expects a 2-D or 3-D input, got shape {tuple(input.shape)}")
    if unbatched:
        input = input.unsqueeze(0)
    kk = k[0] * k[1]
    if input.shape[1] % kk:
        raise RuntimeError(f"fold: input.shape[1] ({input.shape[1]}) must be divisible by the block size "
                           f"{k[0]}*{k[1]}")
    blocks = math.prod(_out_size(sz, a, ss, 2 * pp, dd) for sz, a, ss, pp, dd in zip(size, k, s, p, d))
    if input.shape[2] != blocks:
        raise RuntimeError(f"fold: expected {blocks} blocks for output_size {size}, kernel {k}, got "
                           f"input of shape {tuple(input.shape)}")
    out = FoldFn.apply(input, output_size=size, kernel_size=k, dilation=d, padding=p, stride=s)
    return out.squeeze(0) if unbatched else out
