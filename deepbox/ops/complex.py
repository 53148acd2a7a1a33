"""Complex numbers: taking them apart (real, imag, abs, angle, view_as_real) and putting them together
(complex, polar, view_as_complex), and the conjugate.

Gradients follow PyTorch's convention. For a real loss L of a complex z = x + iy, ``z.grad`` is
dL/dx + i dL/dy: the direction of steepest ascent, so ``z -= lr * z.grad`` descends as for a real
parameter. An op's backward receives that gradient ``g`` of its output and returns it for its inputs:

* for a holomorphic map w = f(z) (z * c, z / c, the FFT), the input gets ``g * conj(f'(z))``;
* for a complex output w of a real input t, the input gets ``Re(conj(dw/dt) * g)``;
* for a real output r of a complex input z, the input gets ``g * (dr/dx + i dr/dy)``.

Every Function here says which case it is, next to its formula.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops._common import _as_tensor, write_out
from deepbox.tensor import Tensor

xp = backend.xp


def _need_complex(x: Tensor, name: str) -> None:
    if x._data.dtype.kind != "c":
        raise RuntimeError(f"{name} is not implemented for tensors with non-complex dtypes (got {x.dtype}).")


def _need_float_pair(a: Tensor, b: Tensor, name: str) -> None:
    """``complex`` and ``polar`` take two float tensors of one dtype, as in PyTorch."""
    da, db = a._data.dtype, b._data.dtype
    if da.kind != "f" or db.kind != "f":
        raise RuntimeError(f"{name}: Expected both inputs to be Half, Float or Double tensors but got {a.dtype} and "
                           f"{b.dtype}")
    if da != db:
        raise RuntimeError(f"{name}: expected both inputs to have the same dtype, got {a.dtype} and {b.dtype}")


# ----------------------------------------------------------------------------- parts of a complex number
class Real(Function):
    """x = Re(z), a view: real output, so the input gets g * (dx/dx + i dx/dy) = g."""

    supports_complex = True
    _is_view = True

    @staticmethod
    def forward(ctx, a):
        return a.real

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(backend.complex_of(grad.dtype))


class Imag(Function):
    """y = Im(z), a view: real output, so the input gets g * (dy/dx + i dy/dy) = i g."""

    supports_complex = True
    _is_view = True

    @staticmethod
    def forward(ctx, a):
        return a.imag

    @staticmethod
    def backward(ctx, grad):
        return grad * 1j


def real(input) -> Tensor:
    """The real part of a complex tensor, as a view; a real tensor is returned as it is."""
    x = _as_tensor(input)
    return Real.apply(x) if x._data.dtype.kind == "c" else x


def imag(input) -> Tensor:
    """The imaginary part of a complex tensor, as a view."""
    x = _as_tensor(input)
    _need_complex(x, "imag")
    return Imag.apply(x)


class Conj(Function):
    """conj(z) is not holomorphic: with w = x - iy, the input gets dL/dx + i dL/dy = conj(g)."""

    supports_complex = True

    @staticmethod
    def forward(ctx, a):
        return xp.conj(a)

    @staticmethod
    def backward(ctx, grad):
        return xp.conj(grad)


def conj(input) -> Tensor:
    """The complex conjugate; a real tensor is returned as it is (PyTorch's conj is lazy; this one copies)."""
    x = _as_tensor(input)
    return Conj.apply(x) if x._data.dtype.kind == "c" else x


conj_physical = conj


def resolve_conj(input) -> Tensor:
    """The tensor itself: deepbox's ``conj`` computes the conjugate at once (PyTorch's only marks it)."""
    return _as_tensor(input)


class Angle(Function):
    """theta = atan2(y, x): real output, so the input gets g * (-y + ix) / |z|^2 = g * i z / |z|^2 (0 at z = 0).
    For a real input the angle is 0 or pi, piecewise constant: gradient 0."""

    supports_complex = True

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        out = xp.angle(a)
        return out if a.dtype.kind == "c" else out.astype(a.dtype)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        if a.dtype.kind != "c":
            return xp.zeros_like(grad)
        r2 = a.real ** 2 + a.imag ** 2
        safe = xp.where(r2 == 0, 1, r2)
        return xp.where(r2 == 0, 0, grad * 1j * a / safe)


def angle(input) -> Tensor:
    """The argument of each complex element, in (-pi, pi]; for real input 0 (pi where negative)."""
    x = _as_tensor(input)
    if x._data.dtype.kind not in "fc":
        x = x.to(backend.get_default_dtype())
    return Angle.apply(x)


# ----------------------------------------------------------------------------- the same numbers as pairs of reals
class ViewAsReal(Function):
    """(..., ) complex -> (..., 2) real [x, y], a view: the input gets g[..., 0] + i g[..., 1]."""

    supports_complex = True
    _is_view = True

    @staticmethod
    def forward(ctx, a):
        return a[..., None].view(backend.real_of(a.dtype))

    @staticmethod
    def backward(ctx, grad):
        return grad[..., 0] + 1j * grad[..., 1]


class ViewAsComplex(Function):
    """(..., 2) real -> (..., ) complex: each pair [x, y] read as x + iy, a view; the input gets [Re g, Im g]."""

    _is_view = True

    @staticmethod
    def forward(ctx, a):
        return a.view(backend.complex_of(a.dtype))[..., 0]

    @staticmethod
    def backward(ctx, grad):
        return xp.stack([grad.real, grad.imag], axis=-1)


def view_as_real(input) -> Tensor:
    """A complex tensor of shape (..., ) seen as a real one of shape (..., 2), sharing memory."""
    x = _as_tensor(input)
    if x._data.dtype.kind != "c":
        raise RuntimeError(f"view_as_real is only supported for complex tensors (got {x.dtype})")
    return ViewAsReal.apply(x)


def view_as_complex(input) -> Tensor:
    """A real tensor of shape (..., 2) (last dimension contiguous) seen as a complex one of shape (..., )."""
    x = _as_tensor(input)
    a = x._data
    if a.dtype not in (xp.float32, xp.float64):
        raise RuntimeError(f"view_as_complex is only supported for float and double tensors, but got a tensor of "
                           f"scalar type: {x.dtype}")
    if a.ndim == 0 or a.shape[-1] != 2:
        raise RuntimeError(f"Tensor must have a last dimension of size 2 (got shape {tuple(a.shape)})")
    if a.strides[-1] != a.itemsize or any(s % (2 * a.itemsize) for s in a.strides[:-1]):
        raise RuntimeError("Tensor must have a last dimension with stride 1 and its other strides divisible by 2: "
                           "call .contiguous() first")
    return ViewAsComplex.apply(x)


# ----------------------------------------------------------------------------- building complex tensors
class Complex(Function):
    """z = x + iy from two real tensors: complex output of real inputs, so x gets Re(conj(1) g) = Re g and
    y gets Re(conj(i) g) = Im g."""

    @staticmethod
    def forward(ctx, re, im):
        out = xp.empty(xp.broadcast_shapes(re.shape, im.shape), backend.complex_of(re.dtype))
        out.real, out.imag = re, im  # not re + 1j * im, which turns an infinite part into nan
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad.real, grad.imag


def complex(real, imag, *, out=None) -> Tensor:  # noqa: A001 - PyTorch's name
    """``real + i * imag`` from two float tensors of one dtype (broadcast together)."""
    re, im = _as_tensor(real), _as_tensor(imag)
    _need_float_pair(re, im, "complex")
    return write_out(Complex.apply(re, im), out, "complex")


class Polar(Function):
    """z = r (cos t + i sin t): complex output of real inputs, so r gets Re(conj(cos t + i sin t) g)
    = g.x cos t + g.y sin t, and t gets Re(conj(r (-sin t + i cos t)) g) = r (g.y cos t - g.x sin t)."""

    @staticmethod
    def forward(ctx, r, t):
        c, s = xp.cos(t), xp.sin(t)
        ctx.save_for_backward(r, c, s)
        out = xp.empty(xp.broadcast_shapes(r.shape, t.shape), backend.complex_of(r.dtype))
        out.real, out.imag = r * c, r * s
        return out

    @staticmethod
    def backward(ctx, grad):
        r, c, s = ctx.saved_tensors
        gx, gy = grad.real, grad.imag
        return gx * c + gy * s, r * (gy * c - gx * s)


def polar(abs, angle, *, out=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """The complex tensor with magnitude ``abs`` and argument ``angle`` (float tensors of one dtype)."""
    r, t = _as_tensor(abs), _as_tensor(angle)
    _need_float_pair(r, t, "polar")
    return write_out(Polar.apply(r, t), out, "polar")
