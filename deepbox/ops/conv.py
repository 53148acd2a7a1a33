"""Convolutions: im2col, one GEMM, and col2im for the gradient (the reference layer).

The public layout is PyTorch's NCHW, but the computation runs channels-last (NHWC): im2col's
window copy then moves runs of ``C`` contiguous floats, and the GEMM output ``(N*Ho*Wo, O)`` *is*
the NHWC result. A convolution returns that array as an NCHW-shaped view (``transpose(0, 3, 1,
2)``), like PyTorch's ``channels_last`` memory format; NumPy's elementwise ops keep that memory
order, so the next convolution or pooling finds its input channels-last again without a copy.

    forward:   cols = im2col(pad(x))          (N*Ho*Wo, kh*kw*C)   one row per output position
               out  = cols @ W + b            W: (kh*kw*C, O)
    backward:  dW   = cols.T @ g,   db = sum of g over positions
               dx   = crop(col2im(g @ W.T))   col2im: each window's gradient added back where it came from

im2col is a strided *view* of the padded input (``_windows``: no copy until the GEMM reads it), and
col2im one strided slice add per kernel tap (never ``np.add.at``). With ``groups`` the GEMMs are
batched over the groups. The fast twin (``deepbox/kernels/conv.py``) computes the same thing a few
images at a time, split over threads.
"""
from __future__ import annotations

import math

from numpy.lib.stride_tricks import as_strided

from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.ops._dispatch import choose  # the twin registry: picks a fast twin where one applies

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "unfold", "fold"]


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
            raise RuntimeError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {vals}")


def _out_size(size: int, k: int, s: int, pad_total: int, d: int) -> int:
    return (size + pad_total - d * (k - 1) - 1) // s + 1


def _same_padding(k: tuple, d: tuple) -> tuple:
    """PyTorch's ``padding='same'``: total ``d*(k-1)``, the odd extra on the bottom/right."""
    pads = []
    for kk, dd in zip(k, d):
        total = dd * (kk - 1)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


# ----------------------------------------------------------------------------- im2col and col2im

def _pad_nhwc(x, ph: tuple, pw: tuple):
    """Zero-pad the spatial axes (1, 2) of an NHWC array by ``ph = (top, bottom)``, ``pw = (left, right)``."""
    if not (ph[0] or ph[1] or pw[0] or pw[1]):
        return x
    return xp.pad(x, ((0, 0), ph, pw) + ((0, 0),) * (x.ndim - 3))


def _windows(x, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, ho: int, wo: int):
    """The ``(N, Ho, Wo, kh, kw, *C)`` window view of a padded NHWC array (no copy)."""
    st = x.strides
    shape = (x.shape[0], ho, wo, kh, kw) + x.shape[3:]
    strides = (st[0], st[1] * sh, st[2] * sw, st[1] * dh, st[2] * dw) + st[3:]
    return as_strided(x, shape, strides, writeable=False)


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


class Conv2dFn(Function):
    """2-D convolution (cross-correlation) of an NCHW input: im2col, one GEMM, col2im.

    forward:  cols = im2col(pad(x))  (M, kh*kw*C),  out = cols @ W + b   (M = N*Ho*Wo)
    backward: dW = cols.T @ g,  db = sum_M g,  dx = crop(col2im(g @ W.T))
    With groups every GEMM is batched over the groups, ``(G, M, kh*kw*C/G) @ (G, kh*kw*C/G, O/G)``.
    A 3-D input/weight (conv1d) runs as a height-1 image.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
        one_d = x.ndim == 3
        if one_d:
            x, w = x[:, :, None, :], w[:, :, None, :]
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        og = o // groups
        (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
        ho = _out_size(h, kh, sh, ph[0] + ph[1], dh)
        wo = _out_size(wd, kw, sw, pw[0] + pw[1], dw)
        m = n * ho * wo
        xpad = _pad_nhwc(_nhwc(x), ph, pw)
        win = _windows(xpad, kh, kw, sh, sw, dh, dw, ho, wo)               # (N, Ho, Wo, kh, kw, C), a view
        cols = win.reshape(m, kh * kw, groups, cg).transpose(2, 0, 1, 3).reshape(groups, m, kh * kw * cg)
        wm = w.reshape(groups, og, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(groups, kh * kw * cg, og)
        out = (cols @ wm).transpose(1, 0, 2).reshape(m, o)                 # (M, O): the NHWC output
        if b is not None:
            out += b
        ctx.geom = (n, c, h, wd, o, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo, groups, one_d, xpad.shape)
        ctx.has_bias = b is not None
        ctx.save_for_backward(cols if ctx.needs_input_grad[1] else None, wm)
        out = out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
        return out[:, :, 0, :] if one_d else out

    @staticmethod
    def backward(ctx, grad):
        n, c, h, wd, o, kh, kw, sh, sw, dh, dw, ph, pw, ho, wo, groups, one_d, pshape = ctx.geom
        cols, wm = ctx.saved_tensors
        if one_d:
            grad = grad[:, :, None, :]
        og, cg = o // groups, c // groups
        m = n * ho * wo
        gm = _nhwc(grad).reshape(m, o)
        gg = gm.reshape(m, groups, og).transpose(1, 0, 2)                  # (G, M, O/G)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = dw_ = db = None
        if need_w:
            dw_ = (cols.transpose(0, 2, 1) @ gg).reshape(groups, kh, kw, cg, og)
            dw_ = xp.ascontiguousarray(dw_.transpose(0, 4, 3, 1, 2).reshape(o, cg, kh, kw))
            if one_d:
                dw_ = dw_[:, :, 0, :]
        if need_b and ctx.has_bias:
            db = gm.sum(axis=0)
        if need_x:
            dcols = (gg @ wm.transpose(0, 2, 1)).reshape(groups, n, ho, wo, kh, kw, cg)
            dcols = dcols.transpose(1, 2, 3, 4, 5, 0, 6)                   # (N, Ho, Wo, kh, kw, G, C/G)
            dxp = _col2im(dcols, pshape[:3] + (groups, cg), kh, kw, sh, sw, dh, dw, ho, wo)
            dx = dxp.reshape(pshape)[:, ph[0]:ph[0] + h, pw[0]:pw[0] + wd].transpose(0, 3, 1, 2)
            if one_d:
                dx = dx[:, :, 0, :]
        return dx, dw_, db


def _check_conv_args(x, weight, groups, nd, name, bias=None):
    # PyTorch raises RuntimeError for all of these
    if x.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name} expects a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                           f"got shape {tuple(x.shape)}")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"{name} expects a {nd + 2}-D weight, got shape {tuple(weight.shape)}")
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise RuntimeError(f"{name}: Input type ({x.dtype}) and {what} type ({t.dtype}) should be the same; "
                               f"convert the input (x.float()) or the layer (.to({x.dtype}))")
    groups = int(groups)
    if groups < 1:
        raise RuntimeError(f"non-positive groups is not supported (groups={groups})")
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
    groups = _check_conv_args(input, weight, groups, nd, name, bias)
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
        s, pads, d = (1,) + s, ((0, 0),) + pads, (1,) + d
    fn = choose(Conv2dFn, input, weight)
    out = fn.apply(input, weight, bias, stride=s, padding=pads, dilation=d, groups=groups)
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
    groups = _check_conv_args(input, weight, groups, nd, name, bias)
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


# ----------------------------------------------------------------------------- 3-D, from 2-D planes
def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution over ``(N, C, D, H, W)``, as ``torch.nn.functional.conv3d``.

    Built from 2-D ones: depth tap ``i`` of the kernel convolves every depth slice the stride
    selects, ``x[:, :, i*dd + od*sd]``, with the weight's plane ``i``; the planes' results add up.
    So the 2-D kernel does the work and autograd differentiates the composition.

    Shape: input ``(N, C_in, D, H, W)`` (or unbatched), weight ``(C_out, C_in/groups, kD, kH, kW)``.
    """
    from deepbox.ops.movement import pad, permute, reshape

    nd = 3
    groups = _check_conv_args(input, weight, groups, nd, "conv3d", bias)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    k = tuple(weight.shape[2:])
    s, d = _ntuple(stride, nd, "stride"), _ntuple(dilation, nd, "dilation")
    _positive(s, "stride")
    _positive(d, "dilation")
    pads = _resolve_padding(padding, k, s, d, nd, "conv3d")
    if x.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(f"conv3d: expected input with {weight.shape[1] * groups} channels (weight "
                           f"{tuple(weight.shape)}, groups={groups}), got input of shape {tuple(input.shape)}")
    if any(lo or hi for lo, hi in pads):
        x = pad(x, tuple(v for lo_hi in reversed(pads) for v in lo_hi))
    n, c = x.shape[0], x.shape[1]
    sizes = [x.shape[2 + a] - d[a] * (k[a] - 1) for a in range(3)]
    if min(sizes) < 1:
        raise RuntimeError(f"conv3d: the padded input {tuple(x.shape)} is smaller than the dilated kernel {k} "
                           f"(dilation {d})")
    do = (sizes[0] - 1) // s[0] + 1
    out = None
    for i in range(k[0]):
        planes = x[:, :, i * d[0]:i * d[0] + s[0] * (do - 1) + 1:s[0]]           # (N, C, Do, H, W)
        planes = reshape(permute(planes, 0, 2, 1, 3, 4), (n * do, c) + tuple(x.shape[3:]))
        y = conv2d(planes, weight[:, :, i], None, s[1:], 0, d[1:], groups)      # (N*Do, O, Ho, Wo)
        out = y if out is None else out + y
    out = permute(reshape(out, (n, do) + tuple(out.shape[1:])), 0, 2, 1, 3, 4)
    if bias is not None:
        out = out + reshape(bias, (1, -1, 1, 1, 1))
    return out.squeeze(0) if unbatched else out


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``.

    Depth tap ``i`` transposes-convolves every input depth slice with the weight's plane ``i`` (2-D)
    and adds it at depth ``id*sd + i*dd`` of the full output, which is then cropped by the padding.

    Shape: input ``(N, C_in, D, H, W)`` (or unbatched), weight ``(C_in, C_out/groups, kD, kH, kW)``.
    """
    from deepbox.ops.indexing import index_put
    from deepbox.ops.movement import permute, reshape
    from deepbox.tensor import _make

    nd = 3
    groups = _check_conv_args(input, weight, groups, nd, "conv_transpose3d", bias)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    s, p = _ntuple(stride, nd, "stride"), _ntuple(padding, nd, "padding")
    op, d = _ntuple(output_padding, nd, "output_padding"), _ntuple(dilation, nd, "dilation")
    _positive(s, "stride")
    _positive(d, "dilation")
    _positive(p, "padding", allow_zero=True)
    _positive(op, "output_padding", allow_zero=True)
    for a, b_, c in zip(op, s, d):
        if a >= b_ and a >= c:
            raise RuntimeError(f"conv_transpose3d: output_padding {op} must be smaller than either stride {s} or "
                               f"dilation {d}")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"conv_transpose3d: expected input with {weight.shape[0]} channels (weight "
                           f"{tuple(weight.shape)}), got input of shape {tuple(input.shape)}")
    k = tuple(weight.shape[2:])
    n, c, depth = x.shape[0], x.shape[1], x.shape[2]
    d_out = (depth - 1) * s[0] - 2 * p[0] + d[0] * (k[0] - 1) + op[0] + 1
    if d_out <= 0:
        raise RuntimeError(f"conv_transpose3d: the output size of input {tuple(input.shape)} with kernel {k}, "
                           f"stride {s}, padding {p} is not positive")
    planes = reshape(permute(x, 0, 2, 1, 3, 4), (n * depth, c) + tuple(x.shape[3:]))
    full = None
    for i in range(k[0]):
        y = conv_transpose2d(planes, weight[:, :, i], None, s[1:], p[1:], op[1:], groups, d[1:])
        y = reshape(y, (n, depth) + tuple(y.shape[1:]))                        # (N, D, O, Ho, Wo)
        if full is None:
            full = _make(xp.zeros((n, (depth - 1) * s[0] + d[0] * (k[0] - 1) + 1 + op[0]) + tuple(y.shape[2:]),
                                  y._data.dtype))
        at = _make(xp.arange(depth) * s[0] + i * d[0])
        full = index_put(full, (slice(None), at), y, accumulate=True)
    out = permute(full[:, p[0]:p[0] + d_out], 0, 2, 1, 3, 4)
    if bias is not None:
        out = out + reshape(bias, (1, -1, 1, 1, 1))
    return out.squeeze(0) if unbatched else out
