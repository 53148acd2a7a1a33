"""The discrete Fourier transform (PyTorch's ``torch.fft``) and its gradients, on NumPy's ``numpy.fft``.

The DFT of length n is a matrix F with F[k, j] = exp(-2 pi i jk / n); ``norm`` scales it by 1
("backward", the default for the forward transform), 1/sqrt(n) ("ortho") or 1/n ("forward"), and the
inverse transform by the matching 1/n, 1/sqrt(n) or 1. Three Functions cover every transform:

* ``FFTn``: complex -> complex, ``y = c F x`` (``fft``, ``fftn``) or ``y = c' F^H x`` (``ifft``, ``ifftn``).
  Linear and holomorphic, so the input's gradient is the adjoint applied to the output's: ``c F^H g``.
  That is the *other* transform with the *dual* norm (c is 1 for "backward" and 1/n for "forward": the
  adjoint of ``fft(norm="backward")`` is ``ifft(norm="forward")``, and ortho stays ortho).
* ``RFFTn``: real -> the first n//2 + 1 bins (the rest mirror them). Its adjoint fills the missing bins
  with zeros, applies the inverse transform with the dual norm and keeps the real part (a real input).
* ``IRFFTn``: half spectrum -> real signal, the Hermitian extension of the bins then the inverse
  transform. Each bin but the first (and, for even n, the last) stands for itself and its mirror image,
  so its gradient is twice that of the forward transform of the output's gradient: ``w * rfft(g)``.

The length arguments (``n``, ``s``) crop or zero-pad the input first; backward undoes that by padding
or cropping the gradient back to the input's shape (``_resize``). ``hfft`` and ``ihfft`` are ``irfft``
and ``rfft`` of the conjugate, with the dual norm. As in PyTorch, float32 and complex64 give complex64
and float32 (NumPy would compute in double).
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops._common import _as_tensor, cast, write_out
from deepbox.ops.complex import conj
from deepbox.ops.movement import roll
from deepbox.tensor import Tensor, _make

xp = backend.xp

_DUAL = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _resize(a, axes, sizes):
    """``a`` cropped or zero-padded at the end of each axis in ``axes`` to the length in ``sizes``."""
    for ax, n in zip(axes, sizes):
        have = a.shape[ax]
        if have > n:
            a = a[(slice(None),) * ax + (slice(0, n),)]
        elif have < n:
            widths = [(0, 0)] * a.ndim
            widths[ax] = (0, n - have)
            a = xp.pad(a, widths)
    return a


# ----------------------------------------------------------------------------- the three transforms
class FFTn(Function):
    """complex -> complex over ``axes``, sizes ``s``; ``inverse`` picks ifftn. Backward: the other one, dual norm."""

    supports_complex = True

    @staticmethod
    def forward(ctx, a, s, axes, norm, inverse):
        ctx.in_sizes = [a.shape[ax] for ax in axes]
        ctx.s, ctx.axes, ctx.norm, ctx.inverse = s, axes, norm, inverse
        ctx.real_input = a.dtype.kind != "c"
        transform = xp.fft.ifftn if inverse else xp.fft.fftn
        return transform(a, s, axes, norm).astype(backend.complex_of(backend.real_of(a.dtype)), copy=False)

    @staticmethod
    def backward(ctx, grad):
        adjoint = xp.fft.fftn if ctx.inverse else xp.fft.ifftn
        g = _resize(adjoint(grad, ctx.s, ctx.axes, _DUAL[ctx.norm]), ctx.axes, ctx.in_sizes)
        return g.real if ctx.real_input else g  # a real input moves along the real axis only


class RFFTn(Function):
    """real -> half spectrum (the last axis keeps s[-1] // 2 + 1 bins). Backward: zero-fill, inverse, real part."""

    @staticmethod
    def forward(ctx, a, s, axes, norm):
        ctx.in_sizes = [a.shape[ax] for ax in axes]
        ctx.s, ctx.axes, ctx.norm = s, axes, norm
        return xp.fft.rfftn(a, s, axes, norm).astype(backend.complex_of(a.dtype), copy=False)

    @staticmethod
    def backward(ctx, grad):
        full = _resize(grad, ctx.axes[-1:], ctx.s[-1:])  # the missing bins' gradients are zero
        g = xp.fft.ifftn(full, ctx.s, ctx.axes, _DUAL[ctx.norm]).real
        return _resize(g, ctx.axes, ctx.in_sizes)


class IRFFTn(Function):
    """half spectrum -> real signal of sizes ``s``. Backward: rfftn with the dual norm, mirrored bins doubled."""

    supports_complex = True

    @staticmethod
    def forward(ctx, a, s, axes, norm):
        ctx.in_sizes = [a.shape[ax] for ax in axes]
        ctx.s, ctx.axes, ctx.norm = s, axes, norm
        return xp.fft.irfftn(a, s, axes, norm).astype(backend.real_of(a.dtype), copy=False)

    @staticmethod
    def backward(ctx, grad):
        g = xp.fft.rfftn(grad, ctx.s, ctx.axes, _DUAL[ctx.norm])
        n, last = ctx.s[-1], ctx.axes[-1]
        mirrored = n - (n // 2 + 1)  # bins 1 .. mirrored appear twice in the Hermitian extension
        weight = xp.ones(g.shape[last], g.real.dtype)
        weight[1:1 + mirrored] = 2
        g = g * weight.reshape((-1,) + (1,) * (g.ndim - 1 - last))
        return _resize(g, ctx.axes, ctx.in_sizes)


# ----------------------------------------------------------------------------- argument handling
def _norm(norm):
    if norm is None:
        return "backward"
    if norm not in _DUAL:
        raise RuntimeError(f'Invalid normalization mode: "{norm}"')
    return norm


def _input(x, name, real_only=False):
    """The tensor to transform: integers and bools become the default float (as in PyTorch); half is refused."""
    x = _as_tensor(x)
    d = x._data.dtype
    if d.kind in "iub":
        x = cast(x, backend.default_float_np())
    elif d == xp.float16:
        raise RuntimeError(f"{name}: Unsupported dtype Half (deepbox's FFT computes in float32 and float64)")
    if real_only and x._data.dtype.kind == "c":
        raise RuntimeError(f"{name} expects a real input tensor, but got {x.dtype}")
    if x.ndim == 0:
        raise IndexError(f"{name}: Dimension specified as -1 but tensor has no dimensions")
    return x


def _axes(x, dim, name):
    ndim = x.ndim
    axes = []
    for d in dim:
        if not -ndim <= d < ndim:
            raise IndexError(f"{name}: Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but "
                             f"got {d})")
        axes.append(d % ndim)
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"{name}: FFT dims must be unique, got {list(dim)}")
    return axes


def _plan(x, s, dim, name, half_last=False):
    """PyTorch's (s, dim) rules: the axes to transform and the signal length along each.

    ``dim`` None: the last len(s) axes when ``s`` is given, else all. A length of -1 (or none) keeps the
    input's; for the inverse real transforms (``half_last``) the last one defaults to 2 * (m - 1).
    """
    if isinstance(dim, int):
        dim = (dim,)
    if s is not None and isinstance(s, int):
        s = (s,)
    if dim is None:
        dim = tuple(range(-len(s), 0)) if s is not None else tuple(range(-x.ndim, 0))
    axes = _axes(x, tuple(dim), name)
    if s is None:
        s = [-1] * len(axes)
    if len(s) != len(axes):
        raise RuntimeError(f"{name}: When given, dim and shape arguments must have the same length (got s={list(s)}, "
                           f"dim={list(dim)})")
    sizes = [x._data.shape[ax] if int(n) == -1 else int(n) for ax, n in zip(axes, s)]
    if half_last and int(s[-1]) == -1:
        sizes[-1] = 2 * (x._data.shape[axes[-1]] - 1)
    for n in sizes:
        if n < 1:
            raise RuntimeError(f"{name}: Invalid number of data points ({n}) specified")
    return sizes, axes


def _c2c(input, s, dim, norm, out, name, inverse):
    x = _input(input, name)
    sizes, axes = _plan(x, s, dim, name)
    return write_out(FFTn.apply(x, sizes, axes, _norm(norm), inverse), out, name)


def _r2c(input, s, dim, norm, out, name):
    x = _input(input, name, real_only=True)
    sizes, axes = _plan(x, s, dim, name)
    return write_out(RFFTn.apply(x, sizes, axes, _norm(norm)), out, name)


def _c2r(input, s, dim, norm, out, name):
    x = _input(input, name)
    if x._data.dtype.kind != "c":
        x = cast(x, backend.complex_of(x._data.dtype))
    sizes, axes = _plan(x, s, dim, name, half_last=True)
    return write_out(IRFFTn.apply(x, sizes, axes, _norm(norm)), out, name)


def _one(n):
    return None if n is None else (n,)


# ----------------------------------------------------------------------------- the public functions
def fft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The one-dimensional DFT along ``dim``, the input cropped or zero-padded to ``n`` points."""
    return _c2c(input, _one(n), (dim,), norm, out, "fft", False)


def ifft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The inverse of ``fft``: ``ifft(fft(x)) == x``."""
    return _c2c(input, _one(n), (dim,), norm, out, "ifft", True)


def fft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    return _c2c(input, s, dim, norm, out, "fft2", False)


def ifft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    return _c2c(input, s, dim, norm, out, "ifft2", True)


def fftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    return _c2c(input, s, dim, norm, out, "fftn", False)


def ifftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    return _c2c(input, s, dim, norm, out, "ifftn", True)


def rfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The DFT of a real signal: its n // 2 + 1 non-negative frequencies (the others are their conjugates)."""
    return _r2c(input, _one(n), (dim,), norm, out, "rfft")


def irfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The real signal of n points (default 2 * (m - 1)) whose ``rfft`` is ``input``'s m bins."""
    return _c2r(input, _one(n), (dim,), norm, out, "irfft")


def rfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    return _r2c(input, s, dim, norm, out, "rfft2")


def irfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    return _c2r(input, s, dim, norm, out, "irfft2")


def rfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    return _r2c(input, s, dim, norm, out, "rfftn")


def irfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    return _c2r(input, s, dim, norm, out, "irfftn")


def hfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The real DFT of a signal with Hermitian symmetry given by its first half: ``irfft(conj(x))`` scaled
    as a forward transform (the dual norm)."""
    x = _input(input, "hfft")
    r = _c2r(conj(x), _one(n), (dim,), _DUAL[_norm(norm)], None, "hfft")
    return write_out(r, out, "hfft")


def ihfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The inverse of ``hfft``: the conjugate of ``rfft`` scaled as an inverse transform (the dual norm)."""
    r = conj(_r2c(input, _one(n), (dim,), _DUAL[_norm(norm)], None, "ihfft"))
    return write_out(r, out, "ihfft")


def hfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    return hfftn(input, s, dim, norm, out=out)


def ihfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    return ihfftn(input, s, dim, norm, out=out)


def hfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """``hfft`` over several dimensions (the last of ``dim`` holds the half spectrum)."""
    x = _input(input, "hfftn")
    return write_out(_c2r(conj(x), s, dim, _DUAL[_norm(norm)], None, "hfftn"), out, "hfftn")


def ihfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """The inverse of ``hfftn``: the conjugate of ``rfftn`` with the dual norm."""
    return write_out(conj(_r2c(input, s, dim, _DUAL[_norm(norm)], None, "ihfftn")), out, "ihfftn")


# ----------------------------------------------------------------------------- frequencies and shifts
def _frequencies(values, dtype, requires_grad):
    nd = backend.default_float_np() if dtype is None else backend.to_numpy_dtype(dtype)
    t = _make(values.astype(nd))
    return t.requires_grad_(True) if requires_grad else t


def fftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False) -> Tensor:
    """The frequency of each bin of an n-point ``fft`` with sample spacing ``d``: [0, 1, ..., -2, -1] / (d n)."""
    return write_out(_frequencies(xp.fft.fftfreq(int(n), d), dtype, requires_grad), out, "fftfreq")


def rfftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False) -> Tensor:
    """The frequency of each bin of an n-point ``rfft``: [0, 1, ..., n // 2] / (d n)."""
    return write_out(_frequencies(xp.fft.rfftfreq(int(n), d), dtype, requires_grad), out, "rfftfreq")


def _shift(input, dim, sign):
    x = _as_tensor(input)
    if dim is None:
        dim = tuple(range(x.ndim))
    elif isinstance(dim, int):
        dim = (dim,)
    axes = _axes(x, tuple(dim), "fftshift")
    return roll(x, tuple(sign * (x._data.shape[ax] // 2) for ax in axes), tuple(axes))


def fftshift(input, dim=None) -> Tensor:
    """The zero frequency moved to the middle (each dimension rolled by half its length)."""
    return _shift(input, dim, 1)


def ifftshift(input, dim=None) -> Tensor:
    """The inverse of ``fftshift``."""
    return _shift(input, dim, -1)
