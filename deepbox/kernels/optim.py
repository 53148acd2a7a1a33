"""Fast Adam update: one compiled pass over the parameter, gradient and moments, split over the threads.

The twin of ``deepbox.optim.adam.adam_update`` (the same operations in the same order, so the same
values): eleven NumPy passes over arrays the size of the parameters become one.
"""
from __future__ import annotations

from deepbox import kernels
from deepbox.kernels import switch, threads

__all__ = ["adam_update_kernel"]


def _accepts(g, m, v, vmax, out):
    """Large float32/64 C-contiguous arrays of one dtype (the flat views the loop runs over)."""
    if g.size < 16384:
        return False
    arrays = (g, m, v, out) + ((vmax,) if vmax is not None else ())
    return switch.kernels_for(*arrays) is not None and all(a.flags.c_contiguous and a.dtype == g.dtype
                                                             for a in arrays)


# registered by name: importing deepbox.optim here would load it at ``import deepbox``
@kernels.fast_twin("deepbox.optim.adam:adam_update")
def adam_update_kernel(g, m, v, vmax, out, step: float, hp) -> None:
    """``adam_update`` in one compiled pass: the moments in place, the parameter decrement into ``out``."""
    beta1, beta2 = hp.beta1, hp.beta2
    T = g.dtype.type
    bc2_sqrt = (1 - beta2**step) ** 0.5
    flat = [a.reshape(-1) for a in (g, m, v)]
    vm = vmax.reshape(-1) if vmax is not None else flat[2]
    threads.parallel(switch.kernels().adam_update, g.size, *flat, vm, out.reshape(-1), T(1 - beta1), T(beta2),
                     T(1 - beta2), T(bc2_sqrt), T(hp.eps), T(hp.lr / (1 - beta1**step)), vmax is not None,
                     work=g.size // 4)


adam_update_kernel.accepts = _accepts
