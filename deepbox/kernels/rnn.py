"""Fast recurrent layers: the LSTM in a feature-major layout, its gate math one compiled pass per step.

``LSTMKernelFn`` is the twin of ``deepbox.ops.rnn.LSTMFn`` (same values). Where the reference keeps
the state batch-major (B, H), the twin keeps it feature-major (H, B): unit j of sequence b at
``j * B + b``. Then

* the recurrent product of a step is ``W_hh (4H, H) @ h (H, B)``, which OpenBLAS runs 25-30 %
  faster than ``h (B, H) @ W_hh^T`` at batch 32 (0.11 vs 0.15 ms at H = 256, 2 threads), and
  the backward's ``W_hh^T @ dg`` 10-15 % faster than ``dg @ W_hh``;
* a step's four gates, cell state and saved factors are each one contiguous run, so the
  compiled cell (``lstm_cell_fwd``/``_bwd``) is one flat loop each way;
* the input projections of all steps are one stacked product ``W_ih (4H, I) @ x_t^T``;
* backward writes each step's gate gradients straight into a (4H, T, B) array, so the weight
  gradients of all steps are one GEMM each over the (t, b) columns.

The work buffers that live from forward to backward come from the shared workspace, as a fresh
one page-faults on first touch (measured: ~15 % of an LSTM layer's forward). Projections
(``proj_size``) and packed sequences take the reference.

All the recurrent twins give BLAS its own threads back first: their GEMMs are large, and a fast
convolution leaves BLAS at one thread (``threads.blas_single``). ``GRUKernelFn`` and
``RNNKernelFn`` do only that, around their reference's loops.
"""
from __future__ import annotations

from deepbox import kernels
from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.kernels import switch, threads
from deepbox.kernels.workspace import workspace
from deepbox.ops.rnn import (
    _LSTM_BACK,
    GRUFn,
    LSTMFn,
    RNNFn,
    _lstm_weights,
    _time_major,
    _x_time_major,
)

__all__ = ["LSTMKernelFn", "GRUKernelFn", "RNNKernelFn"]


def _take(shape, dtype):
    # work buffers that live from a forward to its backward return to the workspace when the
    # graph node that saved them is freed
    return workspace.get(shape, dtype, tag="rnn")


def _torch_rows(m, H):
    """(4H, K) rows in the internal gate order (o, i, f, g) -> PyTorch's (i, f, g, o)."""
    return m.reshape(4, H, -1)[list(_LSTM_BACK)].reshape(4 * H, -1)


@kernels.fast_twin(LSTMFn)
class LSTMKernelFn(Function):
    """One LSTM layer, one direction, feature-major on the compiled cell kernels (float32/64); see ``LSTMFn``."""

    @staticmethod
    def accepts(x, w_hh, w_hr=None, batch_sizes=None):
        return w_hr is None and batch_sizes is None and switch.kernels_for(x, w_hh) is not None

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, *, reverse=False, batch_first=False,
                batch_sizes=None):
        threads.blas_multi()
        ctx.compiled = K = switch.kernels()
        H = w_hh.shape[0] // 4
        x_tm = _x_time_major(x, batch_first)
        T, B, I = x_tm.shape
        HB, dt = H * B, x.dtype
        w_ih4, w_hh4, w_ih4_s, w_hh_sT, b4 = _lstm_weights(w_ih, w_hh, b_ih, b_hh, dt)
        w_s = xp.ascontiguousarray(w_hh_sT.transpose(0, 2, 1)).reshape(4 * H, H)   # halved sigmoid rows
        xs = xp.ascontiguousarray(x_tm[::-1] if reverse else x_tm)                   # (T, B, I), step order
        xproj = _take((T, 4 * H, B), dt)
        xp.matmul(w_ih4_s.reshape(4 * H, I), xs.transpose(0, 2, 1), out=xproj)
        bias = (xp.zeros((4, HB), dt) if b4 is None
                else xp.repeat(b4.reshape(4 * H), B).reshape(4, HB))
        hs = _take((T + 1, H, B), dt)      # hs[s]: the state after s steps
        hs[0] = 0 if h0 is None else h0.T
        c = xp.zeros(HB, dt) if c0 is None else c0.T.astype(dt, order="C", copy=True).reshape(HB)
        need = any(ctx.needs_input_grad)
        if need:
            q, a = _take((T, 4, HB), dt), _take((T, 2, HB), dt)
        else:
            q = a = xp.zeros((T, 4, 1), dt)
        g = xp.empty((4 * H, B), dt)
        g4 = g.reshape(4, HB)
        work = threads.split_work(HB, 5.0)
        for s in range(T):
            xp.matmul(w_s, hs[s], out=g)
            threads.parallel(K.lstm_cell_fwd, HB, g4, xproj[s].reshape(4, HB), bias, c, hs[s + 1].reshape(HB),
                             q[s], a[s], need, work=work)
        ys = hs[1:][::-1] if reverse else hs[1:]                                      # (T, H, B), time order
        out = xp.ascontiguousarray(ys.transpose(2, 0, 1) if batch_first else ys.transpose(0, 2, 1))
        if need:
            ctx.save_for_backward(xs, w_ih4, w_hh4)
            ctx.seq = (q, a, hs)
            ctx.cfg = (reverse, batch_first, H)
        return out, xp.ascontiguousarray(hs[T].T), xp.ascontiguousarray(c.reshape(H, B).T)

    @staticmethod
    def backward(ctx, dout, dhn, dcn):
        threads.blas_multi()
        xs, w_ih4, w_hh4 = ctx.saved_tensors
        q, a, hs = ctx.seq
        reverse, batch_first, H = ctx.cfg
        T, B = xs.shape[0], xs.shape[1]
        HB, dt = H * B, q.dtype
        dout_tm = _time_major(dout, batch_first)
        douts = dout_tm[::-1] if reverse else dout_tm                                 # (T, B, H) views, step order
        dh = dhn.T.astype(dt, order="C", copy=True)                                   # (H, B)
        dc = dcn.T.astype(dt, order="C", copy=True).reshape(HB)
        dg = _take((4, H, T, B), dt)
        w_hhT = xp.ascontiguousarray(w_hh4.reshape(4 * H, H).T)                       # (H, 4H)
        cell = ctx.compiled.lstm_cell_bwd
        work = threads.split_work(HB, 1.0)
        for s in range(T - 1, -1, -1):
            dgs = dg[:, :, s, :]
            threads.parallel(cell, H, douts[s], dh.reshape(HB), dc, q[s], a[s], dgs, work=work)
            xp.matmul(w_hhT, dgs.reshape(4 * H, B), out=dh)

        need = ctx.needs_input_grad
        d2 = dg.reshape(4 * H, T * B)                 # column s * B + b: step s, sequence b
        dx = dw_ih = dw_hh = db = None
        if need[0]:
            dxs = (d2.T @ w_ih4.reshape(4 * H, -1)).reshape(T, B, -1)
            dxt = dxs[::-1] if reverse else dxs
            dx = dxt.swapaxes(0, 1) if batch_first else dxt
        if need[1]:
            dw_ih = _torch_rows(d2 @ xs.reshape(T * B, -1), H)
        if need[2]:
            dw_hh = _torch_rows(d2 @ hs[:T].transpose(0, 2, 1).reshape(T * B, H), H)
        if need[3] or need[4]:
            db = _torch_rows((d2 @ xp.ones(T * B, dt))[:, None], H).reshape(4 * H)
        db_ih = db if need[3] else None
        db_hh = (db.copy() if need[3] else db) if need[4] else None
        dh0, dc0 = xp.ascontiguousarray(dh.T), xp.ascontiguousarray(dc.reshape(H, B).T)
        return dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, None


@kernels.fast_twin(GRUFn)
class GRUKernelFn(Function):
    """``GRUFn`` with BLAS's own threads given back first (see the module docstring)."""

    @staticmethod
    def accepts(x):
        return True

    @staticmethod
    def forward(ctx, *args, **kwargs):
        threads.blas_multi()
        return GRUFn.forward(ctx, *args, **kwargs)

    @staticmethod
    def backward(ctx, *grads):
        threads.blas_multi()
        return GRUFn.backward(ctx, *grads)


@kernels.fast_twin(RNNFn)
class RNNKernelFn(Function):
    """``RNNFn`` with BLAS's own threads given back first (see the module docstring)."""

    @staticmethod
    def accepts(x):
        return True

    @staticmethod
    def forward(ctx, *args, **kwargs):
        threads.blas_multi()
        return RNNFn.forward(ctx, *args, **kwargs)

    @staticmethod
    def backward(ctx, *grads):
        threads.blas_multi()
        return RNNFn.backward(ctx, *grads)
