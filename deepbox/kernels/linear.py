"""Fast linear layer: the reference GEMMs, with the bias added by one compiled pass over the threads.

NumPy's ``out += b`` runs on one core; for a large output the compiled ``add_rows`` splits the rows
over the threads. The twin of ``deepbox.ops.linear.LinearFn`` (same values, same backward).
"""
from __future__ import annotations

from deepbox import kernels
from deepbox.kernels import elementwise, switch, threads
from deepbox.ops.linear import LinearFn

__all__ = ["LinearKernelFn"]


def _array(t):
    return getattr(t, "_data", t)


@kernels.fast_twin(LinearFn)
class LinearKernelFn(LinearFn):
    """``y = x @ W.T + b`` with the bias added in one compiled pass split over the threads."""

    @staticmethod
    def accepts(x, w, b=None):
        if b is None:
            return False
        x, w, b = _array(x), _array(w), _array(b)
        rows = x.size // max(x.shape[-1], 1)
        return (b.ndim == 1 and rows * w.shape[0] >= elementwise.KERNEL_MIN_SIZE
                and switch.kernels_for(x, w, b) is not None)

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        ctx.has_bias = True
        out2 = (x if x.ndim == 2 else x.reshape(-1, x.shape[-1])) @ w.T
        threads.parallel(switch.kernels().add_rows, out2.shape[0], out2, b, work=threads.split_work(out2.size, 0.25))
        return out2 if x.ndim == 2 else out2.reshape(x.shape[:-1] + (w.shape[0],))
