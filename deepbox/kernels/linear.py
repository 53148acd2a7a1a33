"""Fast linear layer: the reference GEMMs, with the bias added by one compiled pass over the threads, and
large layers split by rows over the threads.

NumPy's ``out += b`` runs on one core; for a large output the compiled ``add_rows`` splits the rows
over the threads. The twin of ``deepbox.ops.linear.LinearFn`` (same values).

With at least ``SPLIT_MIN_ROWS`` rows per thread (a sequence model's ``(batch * seq, features)``
activations), each thread takes a block of rows through the whole layer with BLAS on one thread, as
the convolutions, the LSTM and causal attention do: forward its rows of ``x @ W^T + b``; backward its
rows of ``dx = g @ W`` and its rows' share of ``dW = g^T x`` and ``db``, summed at the end (one GEMM
over a long K split in two). The BLAS setting then stays at one thread for the split layers around it
(``threads.blas_single``): switching BLAS's threads on and off between layers leaves its worker
spinning on the core that deepbox's other thread wants.
"""
from __future__ import annotations

from deepbox import kernels
from deepbox.backend import xp
from deepbox.kernels import elementwise, switch, threads
from deepbox.ops.linear import LinearFn

__all__ = ["LinearKernelFn"]

SPLIT_MIN_ROWS = 256          # rows per thread below which BLAS's own threads run the layer's GEMMs
SPLIT_MIN_FLOPS = 1 << 22     # and multiply-adds (rows * in * out) below which the split does not pay


def _array(t):
    return getattr(t, "_data", t)


def _split(rows, n_in, n_out):
    t = threads.num_threads()
    return t > 1 and rows >= SPLIT_MIN_ROWS * t and rows * n_in * n_out >= SPLIT_MIN_FLOPS


@kernels.fast_twin(LinearFn)
class LinearKernelFn(LinearFn):
    """``y = x @ W.T + b`` with the bias added in one compiled pass split over the threads; large layers
    split by rows (see the module docstring)."""

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
        K = switch.kernels()
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        rows = x2.shape[0]
        ctx.split = _split(rows, w.shape[1], w.shape[0]) and threads.blas_single()
        if ctx.split:
            out2 = xp.empty((rows, w.shape[0]), xp.result_type(x2, w))
            threads.parallel(_forward_rows, rows, K, x2, w, b, out2, work=1 << 30)
        else:
            out2 = x2 @ w.T
            threads.parallel(K.add_rows, out2.shape[0], out2, b, work=threads.split_work(out2.size, 0.25))
        return out2 if x.ndim == 2 else out2.reshape(x.shape[:-1] + (w.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        if not ctx.split:
            return LinearFn.backward(ctx, grad)
        threads.blas_single()
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        x2 = x.reshape(-1, x.shape[-1])
        g2 = grad.reshape(-1, grad.shape[-1])
        rows = g2.shape[0]
        gx2 = xp.empty((rows, w.shape[1]), xp.result_type(g2, w)) if need[0] else None
        parts = [None] * threads.num_threads()
        n = threads.parallel(_backward_rows, rows, g2, x2, w, gx2, need, parts, work=1 << 30, indexed=True)
        gw = gb = None
        if need[1]:
            gw = parts[0][0]
            for i in range(1, n):
                gw += parts[i][0]
        if need[2]:
            gb = parts[0][1]
            for i in range(1, n):
                gb += parts[i][1]
        return (None if gx2 is None else gx2.reshape(x.shape[:-1] + (w.shape[1],))), gw, gb


def _forward_rows(lo, hi, K, x2, w, b, out2):
    xp.matmul(x2[lo:hi], w.T, out=out2[lo:hi])
    K.add_rows(lo, hi, out2, b)


def _backward_rows(i, lo, hi, g2, x2, w, gx2, need, parts):
    g = g2[lo:hi]
    if need[0]:
        xp.matmul(g, w, out=gx2[lo:hi])
    parts[i] = (g.T @ x2[lo:hi] if need[1] else None,
                xp.ones(hi - lo, dtype=g.dtype) @ g if need[2] else None)   # column sums as a BLAS product
