"""The fast convolution: im2col + GEMM a few images at a time, split over the threads.

The twin of ``deepbox.ops.conv.Conv2dFn`` (same values), for the same layout (channels-last inside,
an NCHW view outside). What it adds, each measured (see PERF-NOTES and docs/performance.md):

* The column matrix is never built whole: im2col and its GEMM run a few MB of images at a time
  (still in cache when multiplied), backward recomputes the columns for the weight gradient instead
  of keeping them, and the input gradient goes per tap and image chunk too. The chunks are split
  over deepbox's threads with BLAS at one thread (``threads.parallel_gemms``).
* Padded inputs and chunk buffers come from the shared workspace, because fresh arrays pay page
  faults on every step (and two threads faulting at once serialise).
* The input gradient as one GEMM per kernel tap added into a shifted slice of the input (never
  ``np.add.at``), or, for stride 1 and dilation 1 with numba, one GEMM per chunk added by the
  compiled ``col2im_rows``; the bias gradient as a matrix-vector product with a ones vector.
* A one-channel input is copied tap-major (each of the ``kh*kw`` rows of the column matrix one
  strided copy of the image) with a ones row folding the bias into the GEMM; with numba and up to
  16 outputs it is convolved directly (``conv1ch_forward``, ``conv1ch_weight_grad``).
* float32 with output channels in sixteens (stride 1 or 2, no dilation) runs the register-blocked direct
  kernels of ``_numba_conv`` instead of im2col + GEMM: the forward (C > 1), the weight gradient (window
  rows of at least 16 floats) and, with input channels in sixteens too, the stride-1 input gradient (a
  convolution of the output gradient with the flipped weights). Step of the ResNet block stack (batch
  128, 2 threads, A/B in one process on a busy machine): 0.57-0.60x the im2col + GEMM step's time.
* Otherwise, with numba, the columns are copied by the compiled ``im2col`` straight from the unpadded
  input (no padded copy).
"""
from __future__ import annotations

import threading

from deepbox import kernels
from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.kernels import switch, threads
from deepbox.kernels.workspace import workspace
from deepbox.ops.conv import Conv2dFn, _bias_grad, _col2im, _nhwc, _out_size, _windows

__all__ = ["Conv2dKernelFn"]


# ----------------------------------------------------------------------------- padding and columns

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
    threads.parallel(_copy_rows, n, inner, x, work=x.size)
    return out


def _copy_rows(lo, hi, dst, src):
    """``dst[lo:hi] = src[lo:hi]``: one chunk of a batch copy (NumPy releases the GIL)."""
    dst[lo:hi] = src[lo:hi]


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
    return min(b, -(-n // threads.num_threads()))


def _column_chunks(xpad, kh, kw, sh, sw, dh, dw, ho, wo, ones_row=False, start=0, stop=None, direct=None):
    """Yield ``(lo, hi, cols)``: the im2col matrix of images ``lo:hi``, a few MB at a time.

    Measured on 2 cores (one thread each side): copying a chunk and multiplying it while it
    is still in cache beats one full-batch column matrix and GEMM by 1.2-1.7x for the
    forward, and -- recomputing the columns in backward instead of keeping them -- by
    1.1-1.4x for the weight gradient; the full matrix (tens of MB per layer) is never held.
    ``cols`` is ``(rows, kh*kw*C)`` (plus a ones column with ``ones_row``), in a buffer of this
    generator's own (so that threads can each run one), over images ``start:stop``.
    With ``direct = (K, ph, pw)`` (numba, C > 1), ``xpad`` is the *unpadded* C-contiguous NHWC input
    and the compiled ``im2col`` writes the columns, zeros at the borders included (see ``_sources``).
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
    if direct is not None:
        K, ph, pw = direct
        x3 = xpad.reshape(n, xpad.shape[1], -1)
        rows = buf.reshape(b, ho, wo, kh, kw * c)
        for lo in range(start, stop, b):
            hi = min(stop, lo + b)
            K.im2col(lo, hi, x3, rows[:hi - lo], c, sh, sw, dh, dw, ph, pw)
            yield lo, hi, buf[:hi - lo].reshape((hi - lo) * ho * wo, k)
        return
    win = _windows(xpad, kh, kw, sh, sw, dh, dw, ho, wo)
    for lo in range(start, stop, b):
        hi = min(stop, lo + b)
        part = buf[:hi - lo]
        part[...] = win[lo:hi]
        yield lo, hi, part.reshape((hi - lo) * ho * wo, k)


def _sources(K, x, ph, pw):
    """What ``_column_chunks`` reads for an NCHW input with ``groups == 1``: ``(array, direct)``.

    With the compiled kernels and C > 1, the unpadded NHWC input itself (made contiguous if it is
    not: one copy, as the padding would be) and ``direct = (K, ph[0], pw[0])``; else the zero-padded
    NHWC copy and None. Measured on one core, 16 channels at 28x28, batch 128: padding copy and
    NumPy's window copy 8-10 ms, the compiled im2col 4.7-5.4 ms.
    """
    if K is None or x.shape[1] == 1:
        return _padded_nhwc(x, ph, pw), None
    xh = _nhwc(x)
    if not xh.flags.c_contiguous:
        xh = xp.ascontiguousarray(xh)
    return xh, (K, ph[0], pw[0])


def _chunk_ranges(n, b, lo, hi):
    """Images ``start:stop`` of chunks ``lo:hi`` when chunks hold ``b`` images."""
    return lo * b, min(n, hi * b)


def _tap_rows(lo, hi, cols, x3, sh, sw, dh, dw):
    """Tap-major one-channel im2col of images ``lo:hi``: each tap one strided copy."""
    kh, kw, _, ho, wo = cols.shape
    for i in range(kh):
        for j in range(kw):
            cols[i, j, lo:hi] = x3[lo:hi, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]


def _tap_range(i: int, s: int, d: int, p: int, size: int, out: int):
    """Output positions of tap ``i`` that land inside the unpadded input, and where they land."""
    off = i * d - p                           # input row of output 0 for this tap
    lo = max(0, -(off // s))                  # first output with off + lo*s >= 0
    hi = min(out - 1, (size - 1 - off) // s)  # last output with off + hi*s < size
    if hi < lo:
        return None
    return slice(lo, hi + 1), slice(off + lo * s, off + hi * s + 1, s)


def _conv_input_grad(K, gm, wm, shape, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo):
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
    n, h, w, c = shape
    if _direct_input_grad(K, gm, wm, c, sh, sw, dh, dw, kh, kw, ph, pw):
        # a stride-1 convolution of the gradient with the flipped, transposed weights (see _direct)
        o = wm.shape[1]
        wflip = wm.reshape(kh, kw, c, o)[::-1, ::-1].transpose(0, 1, 3, 2).reshape(kh * kw * o, c)
        return _direct_conv(gm.reshape(n, ho, wo, o), wflip, c, 1, kh, kw, kh - 1 - ph, kw - 1 - pw, h, w)
    if K is not None and sh == sw == 1 and dh == dw == 1:
        return _conv_input_grad_rows(K, gm, wm, shape, kh, kw, ph, pw, ho, wo)
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

    threads.parallel_gemms(input_chunks, -(-n // b), work=gm.shape[0] * wm.shape[0])
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

    threads.parallel_gemms(input_chunks, -(-n // b), work=gm.shape[0] * k)
    return dx.reshape(n, h, w, c)


# ----------------------------------------------------------------------------- convolution

# One input channel (the first layer of an image model): a direct compiled kernel. With C = 1 the
# GEMM's K is kh*kw and, for few output channels, N is tiny too: LeNet-5's conv1 ran at 24 GFLOP/s
# in BLAS after a 25-copy im2col. Measured on one core, batch 128, 1->6 5x5: forward 2.1 -> 1.2 ms.
_ONE_CHANNEL_MAX_OUT = 16


def _one_channel_direct(c, o, stride, dilation, groups):
    """Whether the direct one-channel kernels apply to this convolution (with numba)."""
    return c == 1 and groups == 1 and o <= _ONE_CHANNEL_MAX_OUT and stride == (1, 1) and dilation == (1, 1)


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
    threads.parallel(K.conv1ch_forward, n, xflat, wk, bk, out, wp, work=n * ho * wp * o * kh * kw // 4)
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
    K = ctx.compiled
    xflat, _ = ctx.saved_tensors
    (wp,) = ctx.direct
    gpl = xp.zeros((n, o, ho, wp), dtype=xflat.dtype)     # planes, zero past each row's end
    gpl[..., :wo] = grad
    gpl = gpl.reshape(n, o, ho * wp)
    parts = xp.zeros((threads.num_threads(), o, kh, kw), dtype=xflat.dtype)
    threads.parallel(K.conv1ch_weight_grad, n, xflat, gpl, parts, wp, work=n * o * kh * kw * ho * wp // 4,
                     indexed=True)
    return parts.sum(0).astype(xflat.dtype, copy=False)[:, None]


# Output channels in sixteens, float32, stride 1 or 2: the direct kernel of ``_numba_conv`` (register-blocked,
# no column matrix). Measured on one core, batch 128, 16 -> 16 3x3 at 28x28: 8.5-9 ms against 15-20 ms for
# im2col + GEMM; it also computes stride-1 input gradients with C in sixteens (a convolution of the output
# gradient with the flipped, transposed weights) in place of the GEMM + ``col2im_rows``.

def _direct(K, x, w, c, o, stride, dilation, groups):
    """Whether the direct kernel computes this convolution (compiled kernels on, see above)."""
    return (K is not None and groups == 1 and c > 1 and o % 16 == 0 and dilation == (1, 1)
            and stride[0] == stride[1] and stride[0] in (1, 2)
            and x.dtype == xp.float32 and w.dtype == xp.float32)


def _direct_input_grad(K, gm, wm, c, sh, sw, dh, dw, kh, kw, ph, pw):
    """Whether the direct kernel computes this input gradient (stride 1, no padding beyond the kernel)."""
    return (K is not None and sh == sw == 1 and dh == dw == 1 and c % 16 == 0
            and gm.dtype == wm.dtype == xp.float32 and ph <= kh - 1 and pw <= kw - 1)


def _direct_weight_grad(K, x, wm, c, o, kw, stride, dilation):
    """Whether the direct kernel computes this weight gradient: O in sixteens, and a window row of at least
    16 floats (``kw*C``: the kernel computes rows in sixteens and drops the spare ones; see ``_direct``).
    LeNet-5's conv2 (6 -> 16, 5x5): step 0.84x in-process A/B."""
    return (K is not None and o % 16 == 0 and kw * c >= 16 and dilation == (1, 1) and stride[0] == stride[1]
            and stride[0] in (1, 2) and x.dtype == wm.dtype == xp.float32)


def _direct_conv_weight_grad(xh, g, kh, kw, s, ph, pw):
    """``_numba_conv.direct_weight_grad`` over the images, one partial sum per thread: ``(O, C, kh, kw)``."""
    from deepbox.kernels import _numba_conv

    n, h, w, c = xh.shape
    _, ho, wo, o = g.shape
    xh = xp.ascontiguousarray(xh)
    g = xp.ascontiguousarray(g)
    parts = xp.zeros((threads.num_threads(), kh * kw * c, o), dtype=xh.dtype)
    used = threads.parallel(_numba_conv.direct_weight_grad, n, xh.reshape(n, h, w * c), g.reshape(n, ho, wo * o),
                            parts, c, s, kh, kw, ph, pw, work=n * ho * wo * o * kh * kw * c // 16, indexed=True)
    dwm = parts[0] if used == 1 else parts[:used].sum(0)
    return dwm.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)


def _direct_conv(xh, wm, o, s, kh, kw, ph, pw, ho, wo):
    """``_numba_conv.direct_conv`` over the images, split over the threads: ``(N, Ho, Wo, O)``."""
    from deepbox.kernels import _numba_conv

    n, h, w, c = xh.shape
    xh = xp.ascontiguousarray(xh)
    out = xp.empty((n, ho, wo, o), dtype=xh.dtype)
    kern = _numba_conv.direct_conv(c, s)
    threads.parallel(kern, n, xh.reshape(n, h, w * c), xp.ascontiguousarray(wm), out.reshape(n, ho, wo * o),
                     kh, kw, ph, pw, work=n * ho * wo * o * kh * kw * c // 16)
    return out


@kernels.fast_twin(Conv2dFn)
class Conv2dKernelFn(Function):
    """2-D convolution of an NCHW input, chunked and threaded (the twin of ``Conv2dFn``).

    forward:  cols = im2col(x)  (M, kh*kw*C),  out = cols @ W + b   (M = N*Ho*Wo)
    backward: dW = cols.T @ g,  db = 1 @ g,  dx = sum over taps of shift(g @ W_tap.T)
    With groups the GEMMs are batched over groups (a ``(G, M, K/G)`` matmul).
    A 3-D input/weight (conv1d) runs as a height-1 image. Takes every call that ``Conv2dFn`` takes
    (without numba the chunks and threads still pay; the compiled pieces then stay off).
    """

    @staticmethod
    def accepts(*arrays):
        return True

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
        # the compiled loops, or None (numba off or missing, or not float32/64): backward reads this
        ctx.compiled = K = switch.kernels_for(x, w)
        direct = _direct(K, x, w, c, o, stride, dilation, groups)
        if _one_channel_direct(c, o, stride, dilation, groups) and K is not None and not direct:
            return _one_channel_forward(ctx, K, x, w, b, ph, pw, ho, wo, one_d)
        ctx.direct = None
        if direct:
            xpad, im2col = xp.ascontiguousarray(_nhwc(x)), None     # the direct kernel reads it unpadded
        elif groups == 1:
            xpad, im2col = _sources(K, x, ph, pw)
        else:
            xpad, im2col = _padded_nhwc(x, ph, pw), None
        m = n * ho * wo
        taps = kh * kw
        fused_bias = groups == 1 and c == 1 and b is not None and not direct
        if groups == 1:
            wm = w.transpose(2, 3, 1, 0).reshape(taps * c, o)
            if fused_bias:
                # one-channel input: the GEMM's K is tiny, so the bias costs as much as the GEMM
                # as a separate pass; a ones row in the columns folds it in (and db into dW)
                wm = xp.concatenate([wm, b.reshape(1, o).astype(wm.dtype, copy=False)])
            if direct:
                out = _direct_conv(xpad, wm, o, sh, kh, kw, ph[0], pw[0], ho, wo).reshape(m, o)
            else:
                out = xp.empty((m, o), dtype=xpad.dtype)
                per_chunk = _chunk_images(n, ho, wo, wm.shape[0], xpad.dtype.itemsize, _CHUNK_BYTES)

                def forward_chunks(lo, hi):
                    start, stop = _chunk_ranges(n, per_chunk, lo, hi)
                    for i0, i1, cm in _column_chunks(xpad, kh, kw, sh, sw, dh, dw, ho, wo, fused_bias, start, stop,
                                                     im2col):
                        xp.matmul(cm, wm, out=out[i0 * ho * wo:i1 * ho * wo])

                threads.parallel_gemms(forward_chunks, -(-n // per_chunk), work=m * wm.shape[0])
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
            if need_w and _direct_weight_grad(ctx.compiled, cols, wm, c, o, kw, (sh, sw), (dh, dw)):
                xin = cols[:, :, None, :] if one_d else cols
                dw_ = _direct_conv_weight_grad(_nhwc(xin), gm.reshape(n, ho, wo, o), kh, kw, sh, ph[0], pw[0])
            elif need_w:
                xin = cols[:, :, None, :] if one_d else cols
                xpad, im2col = _sources(ctx.compiled, xin, ph, pw)
                k = kh * kw * c + int(ctx.fused_bias)
                per_chunk = _chunk_images(n, ho, wo, k, xpad.dtype.itemsize, _CHUNK_BYTES)
                parts = [None] * threads.num_threads()

                def weight_chunks(t, lo, hi):
                    start, stop = _chunk_ranges(n, per_chunk, lo, hi)
                    acc = None
                    for i0, i1, cm in _column_chunks(xpad, kh, kw, sh, sw, dh, dw, ho, wo, ctx.fused_bias,
                                                     start, stop, im2col):
                        part = cm.T @ gm[i0 * ho * wo:i1 * ho * wo]
                        if acc is None:
                            acc = part
                        else:
                            acc += part
                    parts[t] = acc

                threads.parallel_gemms(weight_chunks, -(-n // per_chunk), work=m * k, indexed=True)
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
                dx = _conv_input_grad(ctx.compiled, gm, wx, (n, h, wd, c), kh, kw, sh, sw, dh, dw, ph[0], pw[0], ho, wo)
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
