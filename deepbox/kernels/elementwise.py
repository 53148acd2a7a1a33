"""Fast elementwise passes: same-shape add, ReLU and exact GELU as one compiled loop each way.

NumPy runs an elementwise pass on one core; on large float arrays a compiled loop split in one chunk
per thread does the same work on all of them. The arrays may be in any one dense memory order
(a convolution's NCHW output is an NHWC array seen through a transpose): the loops run over flat
views in that order, and return that layout. Twins of ``Add`` and ``Relu``
(``deepbox/ops/elementwise.py``) and ``GeluFn`` (``deepbox/ops/activation.py``).
"""
from __future__ import annotations

from deepbox import kernels
from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.kernels import switch, threads
from deepbox.ops.activation import GeluFn
from deepbox.ops.elementwise import Add, Relu

__all__ = ["AddKernelFn", "ReluKernelFn", "GeluKernelFn", "flat_views", "empty_like_flat", "run_flat"]

# below this many elements a NumPy call costs less than handing an array to a compiled kernel
KERNEL_MIN_SIZE = 16384


def flat_views(*arrays):
    """1-D views, in one memory order, of same-shape arrays that share one dense layout; else None.

    The layout may be C, F or any axis permutation of a contiguous array (a convolution's
    NCHW output is an NHWC array seen through a transpose): element ``k`` of each view is
    then the same logical element. Arrays with gaps (slices) or differing layouts give None.
    """
    a0 = arrays[0]
    if all(a.flags.c_contiguous for a in arrays):
        return [a.reshape(-1) for a in arrays]
    if all(a.flags.f_contiguous for a in arrays):
        return [a.T.reshape(-1) for a in arrays]
    # the axis order that walks a0's memory outermost-first (size-1 axes do not matter)
    perm = sorted(range(a0.ndim), key=lambda i: -a0.strides[i])
    views = []
    for a in arrays:
        if a.shape != a0.shape:
            return None
        t = a.transpose(perm)
        if not t.flags.c_contiguous:
            return None
        views.append(t.reshape(-1))
    return views


def empty_like_flat(a, dtype=None):
    """A new array of ``a``'s shape in ``a``'s memory layout (C, F, or the axis order of a
    permuted contiguous array, as ``empty_like``'s ``order='K'``), so ``flat_views`` pairs them."""
    return xp.empty_like(a, dtype=dtype or a.dtype)


def run_flat(K, name, out, *arrays, ns=0.2):
    """Run the compiled kernel ``K.name(lo, hi, *arrays, out)`` over flat views, split over the threads.

    ``out`` is written; returns it, or None when the arrays do not share a memory order (the caller
    then takes its NumPy path). ``ns``: the kernel's cost per element in nanoseconds, which decides
    whether the call is worth splitting.
    """
    views = flat_views(*arrays, out)
    if views is None:
        return None
    n = out.size
    threads.parallel(getattr(K, name), n, *views, work=threads.split_work(n, ns))
    return out


def _large_float(*arrays):
    """The compiled loops when the arrays are large float32/64 arrays of one dense layout, else None."""
    a = arrays[0]
    if a.size < KERNEL_MIN_SIZE or flat_views(*arrays) is None:
        return None
    return switch.kernels_for(*arrays)


@kernels.fast_twin(Add)
class AddKernelFn(Function):
    """``a + b`` for two same-shape, same-dtype large float arrays (the twin of ``Add``)."""

    @staticmethod
    def accepts(a, b):
        return (type(a) is xp.ndarray and type(b) is xp.ndarray and a.shape == b.shape and a.dtype == b.dtype
                and _large_float(a, b) is not None)

    @staticmethod
    def forward(ctx, a, b):
        return run_flat(switch.kernels(), "add_flat", empty_like_flat(a), a, b, ns=0.25)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


@kernels.fast_twin(Relu)
class ReluKernelFn(Function):
    """``max(x, 0)``, backward ``grad where out > 0``, one compiled pass each way (the twin of ``Relu``)."""

    @staticmethod
    def accepts(a):
        return _large_float(a) is not None

    @staticmethod
    def forward(ctx, a):
        ctx.compiled = K = switch.kernels()
        out = run_flat(K, "relu_fwd", empty_like_flat(a), a, ns=0.1)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        if flat_views(grad, out) is None and grad.shape == out.shape:
            # a gradient in another memory layout: one copy into out's layout, then the compiled pass
            # (a mixed-layout NumPy pass took 7 ms where the copy takes 1.2, on 16 x 28 x 28 x 128)
            g = empty_like_flat(out, grad.dtype)
            g[...] = grad
            grad = g
        gx = run_flat(ctx.compiled, "relu_bwd", empty_like_flat(out, grad.dtype), grad, out, ns=0.15)
        return gx if gx is not None else grad * (out > 0)


@kernels.fast_twin(GeluFn)
class GeluKernelFn(Function):
    """Exact GELU ``x * Phi(x)`` in one compiled pass each way (the twin of ``GeluFn``).

    ``gelu_bwd`` recomputes ``Phi`` in backward instead of keeping it.
    """

    @staticmethod
    def accepts(x, approximate="none"):
        return approximate == "none" and _large_float(x) is not None

    @staticmethod
    def forward(ctx, x, *, approximate="none"):
        ctx.compiled = K = switch.kernels()
        ctx.save_for_backward(x)
        return run_flat(K, "gelu_fwd", empty_like_flat(x), x, ns=0.5)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if flat_views(grad, x) is None:   # the gradient in x's memory layout
            g = empty_like_flat(x, grad.dtype)
            g[...] = grad
            grad = g
        return run_flat(ctx.compiled, "gelu_bwd", empty_like_flat(x, grad.dtype), grad, x, ns=1.0)
