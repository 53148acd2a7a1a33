"""Fast recurrent layers: the LSTM in a feature-major layout, each thread taking its own batch columns
through the whole sequence, its gate math one compiled pass per step.

``LSTMKernelFn`` is the twin of ``deepbox.ops.rnn.LSTMFn`` (same values). Where the reference keeps
the state batch-major (B, H), the twin keeps it feature-major (H, B): unit j of sequence b at
``j * B + b``. Then

* the recurrent product of a step is ``W_hh (4H, H) @ h (H, B)``, which OpenBLAS runs 25-30 %
  faster than ``h (B, H) @ W_hh^T`` at batch 32 (0.11 vs 0.15 ms at H = 256, 2 threads), and
  the backward's ``W_hh^T @ dg`` 10-15 % faster than ``dg @ W_hh``;
* a step's four gates, cell state and saved factors are each one contiguous run, so the
  compiled cell (``lstm_cell_fwd``/``_bwd``) is one flat loop each way (backward: the output
  gradient is copied feature-major once per sequence for that);
* the input projections of all steps are one stacked product ``W_ih (4H, I) @ x_t^T``;
* backward copies each step's gate gradients into a (4H, T, B) array, so the weight gradients of
  all steps are one GEMM each over the (t, b) columns.

The sequences of a batch are independent, so with at least ``MIN_CHUNK`` columns per thread each
thread runs its own columns through the whole sequence, forward and backward (weight gradients of
its columns included, summed at the end), with BLAS on one thread: no hand-off between threads at
any step. Handing each step's cell or GEMM to the other thread instead costs a thread wake-up
(about 25 us on this VM, 50-75 us per hand-off) per step, and BLAS's two-thread GEMM at N = 32 is
no faster than two one-thread GEMMs at N = 16. With a smaller batch one chunk runs in the calling
thread with BLAS on its own threads.

The work buffers that live from forward to backward come from the shared workspace, as a fresh
one page-faults on first touch (measured: ~15 % of an LSTM layer's forward). Projections
(``proj_size``) and packed sequences take the reference.

The LSTM split over the batch leaves BLAS at one thread (``threads.blas_single``), as the convolutions,
causal attention and large linear layers do; with a single chunk it gives BLAS its own threads back
first. ``GRUKernelFn`` and ``RNNKernelFn`` do only that, around their reference's loops.
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
        # one dtype for the input and the weights: each thread's buffers take the weights' dtype
        return (w_hr is None and batch_sizes is None and switch.kernels_for(x, w_hh) is not None
                and getattr(x, "_data", x).dtype == getattr(w_hh, "_data", w_hh).dtype)

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, *, reverse=False, batch_first=False,
                batch_sizes=None):
        K = switch.kernels()
        H = w_hh.shape[0] // 4
        B, dt = x.shape[0 if batch_first else 1], x.dtype
        w_ih4, w_hh4, w_ih4_s, w_hh_sT, b4 = _lstm_weights(w_ih, w_hh, b_ih, b_hh, dt)
        w_s = xp.ascontiguousarray(w_hh_sT.transpose(0, 2, 1)).reshape(4 * H, H)   # halved sigmoid rows
        need = any(ctx.needs_input_grad)
        out = xp.empty(x.shape[:-1] + (H,), dt)
        hn, cn = xp.empty((B, H), dt), xp.empty((B, H), dt)
        bounds = _batch_chunks(B)
        saved = [None] * (len(bounds) - 1)
        _each_chunk(bounds, _forward_chunk, K, _time_major(x, batch_first), w_ih4_s.reshape(4 * H, -1), w_s, b4,
                    h0, c0, reverse, need, _time_major(out, batch_first), hn, cn, saved)
        if need:
            ctx.save_for_backward(w_ih4, w_hh4)
            ctx.seq = saved
            ctx.cfg = (reverse, batch_first, H, bounds, K)
        return out, hn, cn

    @staticmethod
    def backward(ctx, dout, dhn, dcn):
        w_ih4, w_hh4 = ctx.saved_tensors
        reverse, batch_first, H, bounds, K = ctx.cfg
        need = ctx.needs_input_grad
        dt = w_ih4.dtype
        B, I = bounds[-1], w_ih4.shape[2]
        T = dout.shape[1 if batch_first else 0]
        dx = xp.empty((B, T, I) if batch_first else (T, B, I), dt) if need[0] else None
        dh0, dc0 = xp.empty((B, H), dt), xp.empty((B, H), dt)
        parts = [None] * (len(bounds) - 1)
        w_hhT = xp.ascontiguousarray(w_hh4.reshape(4 * H, H).T)                       # (H, 4H)
        _each_chunk(bounds, _backward_chunk, K, ctx.seq, _time_major(dout, batch_first), dhn, dcn,
                    w_ih4.reshape(4 * H, I), w_hhT, reverse, need,
                    None if dx is None else _time_major(dx, batch_first), dh0, dc0, parts)
        dw_ih = dw_hh = db = None
        if need[1]:
            dw_ih = _torch_rows(_total([p[0] for p in parts]), H)
        if need[2]:
            dw_hh = _torch_rows(_total([p[1] for p in parts]), H)
        if need[3] or need[4]:
            db = _torch_rows(_total([p[2] for p in parts])[:, None], H).reshape(4 * H)
        db_ih = db if need[3] else None
        db_hh = (db.copy() if need[3] else db) if need[4] else None
        return dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, None


# Each thread runs the whole sequence for its own batch columns (a layer's sequences are independent), with
# BLAS on one thread inside it: no hand-off between threads at any time step.
MIN_CHUNK = 16      # fewer columns per GEMM than this, and one chunk on BLAS's own threads is faster


def _batch_chunks(B):
    """Bounds of the batch columns that each thread takes through the whole sequence."""
    n = max(1, min(threads.num_threads(), B // MIN_CHUNK))
    return [B * i // n for i in range(n + 1)]


def _each_chunk(bounds, fn, *args):
    """``fn(i, b0, b1, *args)`` for each chunk ``i`` of batch columns ``b0:b1``: one chunk per thread with
    BLAS on one thread in each (and left there, as after a split linear layer: see ``deepbox.kernels.linear``),
    or a single chunk in the calling thread with BLAS on its own threads."""
    n = len(bounds) - 1
    if n == 1:
        threads.blas_multi()
        fn(0, 0, bounds[1], *args)
        return

    def run(lo, hi):
        for i in range(lo, hi):
            fn(i, bounds[i], bounds[i + 1], *args)

    if not threads.blas_single():      # no control over BLAS's threads: one chunk after the other
        run(0, n)
        return
    threads.parallel(run, n, work=1 << 30)


def _forward_chunk(i, b0, b1, K, x_tm, w_ih_s, w_s, b4, h0, c0, reverse, need, out_tm, hn, cn, saved):
    """The whole sequence for the batch columns ``b0:b1``, the state feature-major (H, Bt)."""
    T = x_tm.shape[0]
    H, Bt, dt = w_s.shape[1], b1 - b0, w_s.dtype
    HB = H * Bt
    xs = xp.ascontiguousarray(x_tm[::-1, b0:b1] if reverse else x_tm[:, b0:b1])  # (T, Bt, I), step order
    xproj = _take((T, 4 * H, Bt), dt)
    xp.matmul(w_ih_s, xs.transpose(0, 2, 1), out=xproj)
    bias = xp.zeros((4, HB), dt) if b4 is None else xp.repeat(b4.reshape(4 * H), Bt).reshape(4, HB)
    hs = _take((T + 1, H, Bt), dt)      # hs[s]: the state after s steps
    hs[0] = 0 if h0 is None else h0[b0:b1].T
    c = xp.zeros(HB, dt) if c0 is None else c0[b0:b1].T.astype(dt, order="C", copy=True).reshape(HB)
    if need:
        q, a = _take((T, 4, HB), dt), _take((T, 2, HB), dt)
    else:
        q = a = xp.zeros((T, 4, 1), dt)
    g = xp.empty((4 * H, Bt), dt)
    g4 = g.reshape(4, HB)
    work = threads.split_work(HB, 5.0)
    for s in range(T):
        xp.matmul(w_s, hs[s], out=g)
        threads.parallel(K.lstm_cell_fwd, HB, g4, xproj[s].reshape(4, HB), bias, c, hs[s + 1].reshape(HB),
                         q[s], a[s], need, work=work)
    ys = hs[1:][::-1] if reverse else hs[1:]                                      # (T, H, Bt), time order
    out_tm[:, b0:b1] = ys.transpose(0, 2, 1)
    hn[b0:b1] = hs[T].T
    cn[b0:b1] = c.reshape(H, Bt).T
    if need:
        saved[i] = (xs, q, a, hs)


def _backward_chunk(i, b0, b1, K, saved, dout_tm, dhn, dcn, w_ih, w_hhT, reverse, need, dx_tm, dh0, dc0, parts):
    """Backward through the whole sequence for the batch columns ``b0:b1``; the weight gradients of these
    columns go to ``parts[i]``, summed over the chunks by the caller."""
    xs, q, a, hs = saved[i]
    T, Bt, dt = xs.shape[0], b1 - b0, q.dtype
    H = w_hhT.shape[0]
    HB = H * Bt
    dout_c = dout_tm[:, b0:b1]                                                    # (T, Bt, H), time order
    douts = _take((T, H, Bt), dt)                                                 # feature-major, step order
    douts[...] = (dout_c[::-1] if reverse else dout_c).transpose(0, 2, 1)
    douts = douts.reshape(T, HB)
    dh = dhn[b0:b1].T.astype(dt, order="C", copy=True).reshape(HB)               # (H, Bt) flat
    dc = dcn[b0:b1].T.astype(dt, order="C", copy=True).reshape(HB)
    dg = _take((4, H, T, Bt), dt)
    r = xp.empty((4 * H, Bt), dt)                # the step's gate gradients, contiguous for the GEMM
    r4 = r.reshape(4, HB)
    dh2 = dh.reshape(H, Bt)
    work = threads.split_work(HB, 1.0)
    for s in range(T - 1, -1, -1):
        threads.parallel(K.lstm_cell_bwd, H, s, douts[s], dh, dc, q[s], a[s], r4, dg, work=work)
        xp.matmul(w_hhT, r, out=dh2)
    d2 = dg.reshape(4 * H, T * Bt)                 # column s * Bt + b: step s, sequence b0 + b
    if need[0]:
        dxs = (d2.T @ w_ih).reshape(T, Bt, -1)
        dx_tm[:, b0:b1] = dxs[::-1] if reverse else dxs
    parts[i] = (d2 @ xs.reshape(T * Bt, -1) if need[1] else None,
                d2 @ hs[:T].transpose(0, 2, 1).reshape(T * Bt, H) if need[2] else None,
                d2 @ xp.ones(T * Bt, dt) if need[3] or need[4] else None)
    dh0[b0:b1] = dh2.T
    dc0[b0:b1] = dc.reshape(H, Bt).T


def _total(arrays):
    out = arrays[0]
    for a in arrays[1:]:
        out += a
    return out


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
