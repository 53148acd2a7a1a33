"""Fast elementwise passes: one compiled loop over flat views, split over the threads.

NumPy runs an elementwise pass on one core; on large float arrays a compiled loop split in one chunk
per thread does the same work on all of them. The arrays may be in any one dense memory order
(a convolution's NCHW output is an NHWC array seen through a transpose): the loops run over flat
views in that order.
"""
from __future__ import annotations

from deepbox.backend import xp
from deepbox.kernels import switch, threads

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


def elementwise_kernel(name, out, *arrays, ns=0.2):
    """Run the compiled kernel ``name(lo, hi, *arrays, out)`` over flat views, split over the threads.

    ``out`` is written; returns it, or None when the kernels are off, a dtype is not float32/64 or the
    arrays do not share a memory order (the caller then takes its NumPy path). ``ns``: the kernel's
    cost per element in nanoseconds, which decides whether the call is worth splitting.
    """
    K = switch.kernels_for(*arrays)
    if K is None:
        return None
    views = flat_views(*arrays, out)
    if views is None:
        return None
    n = out.size
    threads.parallel(getattr(K, name), n, *views, work=threads.split_work(n, ns))
    return out
