"""Fast recurrent layers: the LSTM's gate math as one compiled pass per step, work buffers reused.

``LSTMKernelFn`` is the twin of ``deepbox.ops.rnn.LSTMFn`` (same values): each step's four
activations, the cell update and the factors kept for backpropagation through time are one
compiled pass (``lstm_cell_fwd``), and so is the step's backward (``lstm_cell_bwd``); the work
buffers that live from forward to backward (tens of MB) come from the shared workspace, as a fresh
one page-faults on first touch (measured: ~15 % of an LSTM layer's forward).

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
    _check_batch_sizes,
    _col_sum,
    _lstm_weights,
    _stacked_projection,
    _steps,
    _time_major,
    _x_time_major,
)

__all__ = ["LSTMKernelFn", "GRUKernelFn", "RNNKernelFn"]


def _take(shape, dtype, zero=False):
    # work buffers that live from a forward to its backward return to the workspace when the
    # graph node that saved them is freed
    return workspace.get(shape, dtype, tag="rnn", zero=zero)


_NO_BUF4 = xp.zeros((1, 1, 1, 1))   # stands for the per-step factor buffers when no gradient is needed


@kernels.fast_twin(LSTMFn)
class LSTMKernelFn(Function):
    """One LSTM layer, one direction, on the compiled cell kernels (float32/64); see ``LSTMFn``."""

    @staticmethod
    def accepts(x, w_hh):
        return switch.kernels_for(x, w_hh) is not None

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, *, reverse=False, batch_first=False,
                batch_sizes=None):
        threads.blas_multi()
        ctx.compiled = K = switch.kernels()
        H = w_hh.shape[0] // 4
        P = w_hh.shape[1]
        x_tm = _x_time_major(x, batch_first)
        T, B = x_tm.shape[0], x_tm.shape[1]
        bs = _check_batch_sizes(batch_sizes, T, B)
        dt = x.dtype
        w_ih4, w_hh4, w_ih4_s, w_hh_sT, b4 = _lstm_weights(w_ih, w_hh, b_ih, b_hh, dt)
        xproj = _stacked_projection(x_tm, w_ih4_s, b4, _take)
        need_grad = any(ctx.needs_input_grad)
        out = (xp.zeros if bs is not None else xp.empty)(x.shape[:-1] + (P,), dt)
        out_t = _time_major(out, batch_first)
        h = xp.zeros((B, P), dt) if h0 is None else h0.astype(dt, copy=True)
        c = xp.zeros((B, H), dt) if c0 is None else c0.astype(dt, copy=True)
        gates = xp.empty((4, B, H), dt)
        tmp = xp.empty((B, H), dt)
        q = a = hprev = r = None
        if need_grad:
            # q: per-gate factors of dL/d(pre-activation), (o, i, f, g); a: o * (1 - tanh(c)^2) and f
            ragged = bs is not None  # rows past a sequence's end must read as zeros in the GEMMs
            q = _take((4, T, B, H), dt)
            a = _take((2, T, B, H), dt)
            hprev = _take((T, B, P), dt, zero=ragged)
            if w_hr is not None:
                r = _take((T, B, H), dt, zero=ragged)  # o * tanh(c) before the projection
        w_hrT = None if w_hr is None else w_hr.T
        _lstm_steps_kernel(K, T, reverse, bs, B, h, c, gates, tmp, xproj, w_hh_sT, w_hrT, out_t, need_grad,
                           q, a, hprev, r)
        if need_grad:
            ctx.save_for_backward(x_tm, w_ih4, w_hh4, w_hr)
            ctx.seq = (q, a, hprev, r)
            ctx.cfg = (reverse, batch_first, bs, H, P)
        return out, h, c

    @staticmethod
    def backward(ctx, dout, dhn, dcn):
        threads.blas_multi()
        _, _, _, w_hr = ctx.saved_tensors
        q = ctx.seq[0]
        _, batch_first, _, H, P = ctx.cfg
        dt = q.dtype
        T, B = q.shape[1], q.shape[2]
        dout_t = _time_major(dout, batch_first)
        dh = dhn.astype(dt, copy=True)
        dc = dcn.astype(dt, copy=True)
        dsum = xp.empty((B, P), dt)
        dr = dhr = None
        if w_hr is not None:
            dr = _take((T, B, P), dt, zero=True)   # gradient of the projected h, for dW_hr
            dhr = xp.empty((B, H), dt)
        return _lstm_backward_kernel(ctx, ctx.compiled, dout_t, dh, dc, dsum, dr, dhr)


def _lstm_steps_kernel(K, T, reverse, bs, B, h, c, gates, tmp, xproj, w_hh_sT, w_hrT, out_t, need_grad, q, a,
                       hprev, r):
    """``LSTMKernelFn.forward``'s loop over the steps on the compiled cell kernel.

    The recurrent product is one (n, P) x (P, 4H) GEMM per step into a (B, 4, H) buffer, which
    measured 8 % faster than the NumPy loop's stacked (4, P, H) one.
    """
    if not need_grad:
        q = a = _NO_BUF4.astype(c.dtype)
    H = c.shape[1]
    P = h.shape[1]
    w_cat = xp.ascontiguousarray(w_hh_sT.transpose(1, 0, 2)).reshape(P, 4 * H)
    g_rows = xp.empty((B, 4 * H), gates.dtype)
    hn = h if w_hrT is None else tmp   # the kernel's o * tanh(c): straight into h without a projection
    work = threads.split_work(B * H, 5.0)
    for t in _steps(T, reverse):
        n = B if bs is None else bs[t]
        hp = h[:n]
        xp.matmul(hp, w_cat, out=g_rows[:n])
        gates = g_rows.reshape(B, 4, H)
        if need_grad:
            hprev[t, :n] = hp
        threads.parallel(K.lstm_cell_fwd, n, gates, xproj, t, c, hn, q, a, need_grad, work=work)
        ht = out_t[t, :n]
        if w_hrT is None:
            ht[...] = hp
        else:
            tm = tmp[:n]
            if need_grad:
                r[t, :n] = tm
            xp.matmul(tm, w_hrT, out=ht)
            hp[...] = ht


def _lstm_backward_kernel(ctx, K, dout_t, dh, dc, dsum, dr, dhr):
    """``LSTMKernelFn.backward`` on the compiled cell kernel.

    The pre-activation gradients are kept as (T, B, 4, H): each step's rows are then one (B, 4H)
    block, the left operand of the recurrent GEMM without a copy, and the weight and input gradients
    of all steps are one GEMM each over (T*B, 4H).
    """
    x_tm, w_ih4, w_hh4, w_hr = ctx.saved_tensors
    q, a, hprev, r = ctx.seq
    reverse, batch_first, bs, H, P = ctx.cfg
    dt = q.dtype
    T, B = q.shape[1], q.shape[2]
    # a pooled (4, T, B, H) buffer, the shape of the forward's q: the two share the pool's buffers
    buf = _take((4, T, B, H), dt, zero=bs is not None)
    dg = buf.reshape(T, B, 4, H)
    w_hh_flat = xp.ascontiguousarray(w_hh4.reshape(4 * H, P))
    work = threads.split_work(B * H, 1.0)
    for t in _steps(T, not reverse):
        n = B if bs is None else bs[t]
        ds = dsum[:n]
        xp.add(dout_t[t, :n], dh[:n], out=ds)
        if w_hr is not None:
            dr[t, :n] = ds
            xp.matmul(ds, w_hr, out=dhr[:n])
            ds = dhr[:n]
        threads.parallel(K.lstm_cell_bwd, n, ds, dc, q, a, t, dg[t], work=work)
        xp.matmul(dg[t, :n].reshape(n, 4 * H), w_hh_flat, out=dh[:n])

    need = ctx.needs_input_grad
    d2 = dg.reshape(T * B, 4 * H)
    back = list(_LSTM_BACK)

    def torch_rows(m):   # (4H, K) rows in the internal gate order -> PyTorch's
        return m.reshape(4, H, -1)[back].reshape(4 * H, -1)

    dx = dw_ih = dw_hh = db = dw_hr = None
    if need[0]:
        dx = (d2 @ w_ih4.reshape(4 * H, -1)).reshape(T, B, -1)
        if batch_first:
            dx = dx.swapaxes(0, 1)
    if need[1]:
        dw_ih = torch_rows(d2.T @ x_tm.reshape(T * B, -1))
    if need[2]:
        dw_hh = torch_rows(d2.T @ hprev.reshape(T * B, P))
    if need[3] or need[4]:
        db = torch_rows(_col_sum(d2)[:, None]).reshape(4 * H)
    db_ih = db if need[3] else None
    db_hh = (db.copy() if need[3] else db) if need[4] else None
    if need[7]:
        dw_hr = dr.reshape(-1, P).T @ r.reshape(-1, H)
    return dx, dw_ih, dw_hh, db_ih, db_hh, dh, dc, dw_hr


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
