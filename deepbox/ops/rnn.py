"""Fused recurrent layers: one ``Function`` runs a whole sequence forward and back.

A recurrent layer unrolled op by op makes a graph of about a dozen nodes per time
step, and NumPy pays its per-call overhead on each of them twice. Here one layer in
one direction is one graph node:

* the input projection ``x @ W_ih^T + b`` of every time step is ONE GEMM before the
  loop (it does not depend on the recurrence);
* each step does one recurrent GEMM ``h @ W_hh^T`` and the gate math in place on
  preallocated buffers;
* while the forward pass has a step's values hot in cache it also stores the few
  products that backpropagation through time (BPTT) needs, so the backward loop is
  one GEMM and a handful of multiplies per step;
* after the backward loop, the weight gradients of all steps are again one GEMM each.

Weights keep PyTorch's layout and gate order (LSTM ``i, f, g, o``; GRU ``r, z, n``
with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``), so state dicts move between
the frameworks. Internally the LSTM's gate rows are permuted to ``o, i, f, g``: then
the three sigmoid gates are one contiguous block and the three gates whose gradient
depends on the cell-state gradient (``i, f, g``) are another. Sigmoids are computed
as ``sigmoid(x) = (1 + tanh(x / 2)) / 2`` with the halving folded into a copy of the
weights, so all four gates take one ``tanh`` call.

The LSTM's fast twin (``deepbox/kernels/rnn.py``) keeps the state feature-major, (H, B) instead of
(B, H), and runs each step's gate math as one compiled pass each way; the loops here are the
reference it is tested against (and what runs for projections and packed sequences).

Variable-length batches (packed sequences) are supported through ``batch_sizes``:
the batch is sorted by decreasing length and step ``t`` updates only its first
``batch_sizes[t]`` rows, so a padded batch gives exactly what separate sequences
give. Outputs at padded positions are zero, like ``pad_packed_sequence``'s.
"""
from __future__ import annotations

from deepbox.autograd.function import Function
from deepbox.backend import xp
from deepbox.ops._dispatch import choose  # the twin registry: picks a fast twin where one applies

__all__ = ["lstm_layer", "gru_layer", "rnn_layer", "LSTMFn", "GRUFn", "RNNFn"]


# ----------------------------------------------------------------------------- helpers
def _time_major(a, batch_first):
    """A view of a (T, B, ...) or (B, T, ...) array with time first (no copy)."""
    return a.swapaxes(0, 1) if batch_first else a


def _steps(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _check_batch_sizes(batch_sizes, T, B):
    if batch_sizes is None:
        return None
    bs = [int(b) for b in batch_sizes]
    if len(bs) != T:
        raise ValueError(f"batch_sizes has {len(bs)} entries, expected one per time step ({T})")
    if bs and (bs[0] != B or any(b2 > b1 for b1, b2 in zip(bs, bs[1:])) or bs[-1] < 1):
        raise ValueError(f"batch_sizes must start at the batch size {B} and never increase, got {bs}")
    return bs


def _take(shape, dtype, zero=False):
    """A work buffer (all zeros with ``zero``: rows that a ragged batch leaves unwritten)."""
    return (xp.zeros if zero else xp.empty)(shape, dtype)


def _col_sum(a2d):
    # column sums as a matrix-vector product with a ones vector: BLAS beats a reduction here
    return xp.ones(a2d.shape[0], a2d.dtype) @ a2d


def _input_projection(x, w, b):
    """``x @ w^T + b`` for every time step at once: one GEMM over (T*B, in)."""
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ w.T
    if b is not None:
        out += b
    return out.reshape(x.shape[:-1] + (w.shape[0],))


def _input_grads(ctx, dpre, x, w_ih):
    """Gradients of x, W_ih and the input bias from the pre-activation gradients (T, B, G)."""
    d2 = dpre.reshape(-1, dpre.shape[-1])
    dx = dw_ih = db = None
    if ctx.needs_input_grad[0]:
        dx = (d2 @ w_ih).reshape(x.shape)
    if ctx.needs_input_grad[1]:
        dw_ih = d2.T @ x.reshape(-1, x.shape[-1])
    if ctx.needs_input_grad[3]:
        db = _col_sum(d2)
    return dx, dw_ih, db


# ----------------------------------------------------------------------------- LSTM
# Gate-major layout: the gates of one step live in a (G, B, H) buffer, so each gate is one
# contiguous block; a (B, G, H) layout makes the elementwise passes over three of four gates
# strided, which measured 3-4x slower than contiguous ones. The recurrent product is then a
# stacked GEMM (G, P, H), as fast as one (P, G*H) GEMM.
_LSTM_ORDER = (3, 0, 1, 2)   # internal (o, i, f, g) from PyTorch's (i, f, g, o)
_LSTM_BACK = (1, 2, 3, 0)    # and back


def _gate_major(w, order, G):
    """(G*H, K) weight rows → (G, H, K) in ``order``."""
    return w.reshape(G, -1, w.shape[-1])[list(order)]


def _stacked_projection(x_tm, w4, b4, take=_take):
    """``x @ W_g^T + b_g`` for every gate g and every step: (T, B, I) → (G, T, B, H), a pooled buffer.

    One 2-D GEMM per gate into a preallocated block: NumPy's stacked ``matmul`` with a broadcast
    operand measured slower than these plain GEMMs.
    """
    T, B = x_tm.shape[0], x_tm.shape[1]
    G, H = w4.shape[0], w4.shape[1]
    x2 = x_tm.reshape(T * B, -1)
    out = take((G, T * B, H), x2.dtype)
    for k in range(G):
        xp.matmul(x2, w4[k].T, out=out[k])
        if b4 is not None:
            out[k] += b4[k]
    return out.reshape(G, T, B, H)


def _gate_weight_grad(d3, inp2, back):
    """``sum_t dpre_g(t)^T inp(t)`` for every gate g, one GEMM each; rows in PyTorch's gate order."""
    G, _, H = d3.shape
    order = range(G) if back is None else back
    out = xp.empty((G, H, inp2.shape[1]), d3.dtype)
    for k, g in enumerate(order):
        xp.matmul(d3[g].T, inp2, out=out[k])
    return out.reshape(G * H, inp2.shape[1])


def _stacked_input_grads(need, dpre, x_tm, w4, back, batch_first):
    """Gradients of x, W_ih (in PyTorch's row order) and the bias from (G, T, B, H) gradients."""
    G, T, B, H = dpre.shape
    d3 = dpre.reshape(G, T * B, H)
    dx = dw = db = None
    if need[0]:
        dx2 = d3[0] @ w4[0]
        for k in range(1, G):
            dx2 += d3[k] @ w4[k]
        dx = dx2.reshape(T, B, -1)
        if batch_first:
            dx = dx.swapaxes(0, 1)
    if need[1]:
        dw = _gate_weight_grad(d3, x_tm.reshape(T * B, -1), back)
    if need[3] or need[4]:
        ones = xp.ones(T * B, dpre.dtype)
        order = range(G) if back is None else back
        db = xp.concatenate([ones @ d3[g] for g in order])
    return dx, dw, db


def _x_time_major(x, batch_first):
    # the GEMMs over all steps want one flat (T*B, I) layout shared by x and the gradients
    return xp.ascontiguousarray(x.swapaxes(0, 1)) if batch_first else x


def _lstm_weights(w_ih, w_hh, b_ih, b_hh, dt):
    """Gate-major weights in the internal (o, i, f, g) order, and copies with the sigmoid gates halved:
    ``sigmoid(a) = 0.5 * tanh(a / 2) + 0.5``, so one ``tanh`` serves all four gates.

    Returns ``(w_ih4, w_hh4, w_ih4 halved, (w_hh4 halved) transposed, the summed bias halved or None)``.
    """
    H = w_hh.shape[0] // 4
    half = xp.asarray([0.5, 0.5, 0.5, 1.0], dt)[:, None, None]
    w_ih4 = _gate_major(w_ih, _LSTM_ORDER, 4)
    w_hh4 = _gate_major(w_hh, _LSTM_ORDER, 4)
    b4 = None if b_ih is None else (b_ih + b_hh).reshape(4, H)[list(_LSTM_ORDER)] * half[:, 0]
    return w_ih4, w_hh4, w_ih4 * half, (w_hh4 * half).transpose(0, 2, 1), b4


class LSTMFn(Function):
    """One LSTM layer, one direction, over a whole sequence.

    Inputs: ``x`` (T, B, I), or (B, T, I) with ``batch_first``; ``w_ih`` (4H, I), ``w_hh``
    (4H, P), ``b_ih``/``b_hh`` (4H,) or None; ``h0`` (B, P) and ``c0`` (B, H) or None
    (zeros); ``w_hr`` (P, H) or None (then P = H).
    Outputs: the hidden state of every step (T, B, P) in ``x``'s layout, the final ``h``
    (B, P) and the final ``c`` (B, H).
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, *, reverse=False, batch_first=False,
                batch_sizes=None):
        H = w_hh.shape[0] // 4
        P = w_hh.shape[1]
        x_tm = _x_time_major(x, batch_first)
        T, B = x_tm.shape[0], x_tm.shape[1]
        bs = _check_batch_sizes(batch_sizes, T, B)
        dt = x.dtype
        w_ih4, w_hh4, w_ih4_s, w_hh_sT, b4 = _lstm_weights(w_ih, w_hh, b_ih, b_hh, dt)
        xproj = _stacked_projection(x_tm, w_ih4_s, b4)

        need_grad = any(ctx.needs_input_grad)
        out = (xp.zeros if bs is not None else xp.empty)(x.shape[:-1] + (P,), dt)
        out_t = _time_major(out, batch_first)
        h = xp.zeros((B, P), dt) if h0 is None else h0.astype(dt, copy=True)
        c = xp.zeros((B, H), dt) if c0 is None else c0.astype(dt, copy=True)
        gates = xp.empty((4, B, H), dt)
        tmp = xp.empty((B, H), dt)
        r = None
        if need_grad:
            # q: per-gate factors of dL/d(pre-activation), (o, i, f, g); a: o * (1 - tanh(c)^2) and f
            ragged = bs is not None  # rows past a sequence's end must read as zeros in the GEMMs
            q = _take((4, T, B, H), dt)
            a = _take((2, T, B, H), dt)
            hprev = _take((T, B, P), dt, zero=ragged)
            if w_hr is not None:
                r = _take((T, B, H), dt, zero=ragged)  # o * tanh(c) before the projection
        w_hrT = None if w_hr is None else w_hr.T
        for t in _steps(T, reverse):
            n = B if bs is None else bs[t]
            hp, cp, g, tm = h[:n], c[:n], gates[:, :n], tmp[:n]
            xp.matmul(hp, w_hh_sT, out=g)
            g += xproj[:, t, :n]
            xp.tanh(g, out=g)
            sg = g[:3]
            sg *= 0.5
            sg += 0.5
            o, i, f, gg = g[0], g[1], g[2], g[3]
            if need_grad:
                hprev[t, :n] = hp
                qq = q[:, t, :n]
                d = qq[:3]
                xp.subtract(1.0, sg, out=d)
                d *= sg                  # sigmoid' = s (1 - s)
                qq[1] *= gg              # i: dc * g * i'
                qq[2] *= cp              # f: dc * c_prev * f'
                xp.multiply(gg, gg, out=qq[3])
                xp.subtract(1.0, qq[3], out=qq[3])
                qq[3] *= i               # g: dc * i * (1 - g^2)
                a[1, t, :n] = f
            cp *= f
            xp.multiply(i, gg, out=tm)
            cp += tm                      # c = f * c + i * g, in place
            xp.tanh(cp, out=tm)           # tm = tanh(c)
            if need_grad:
                qq[0] *= tm              # o: dh * tanh(c) * o'
                at = a[0, t, :n]
                xp.multiply(tm, tm, out=at)
                xp.subtract(1.0, at, out=at)
                at *= o                   # dc += dh * o * (1 - tanh(c)^2)
            ht = out_t[t, :n]
            if w_hr is None:
                xp.multiply(o, tm, out=ht)
            else:
                tm *= o
                if need_grad:
                    r[t, :n] = tm
                xp.matmul(tm, w_hrT, out=ht)
            hp[...] = ht
        if need_grad:
            ctx.save_for_backward(x_tm, w_ih4, w_hh4, w_hr)
            ctx.seq = (q, a, hprev, r)
            ctx.cfg = (reverse, batch_first, bs, H, P)
        return out, h, c

    @staticmethod
    def backward(ctx, dout, dhn, dcn):
        x_tm, w_ih4, w_hh4, w_hr = ctx.saved_tensors
        q, a, hprev, r = ctx.seq
        reverse, batch_first, bs, H, P = ctx.cfg
        dt = q.dtype
        T, B = q.shape[1], q.shape[2]
        dout_t = _time_major(dout, batch_first)
        dh = dhn.astype(dt, copy=True)
        dc = dcn.astype(dt, copy=True)
        dsum = xp.empty((B, P), dt)
        tmp = xp.empty((B, H), dt)
        dr = dhr = None
        if w_hr is not None:
            dr = _take((T, B, P), dt, zero=True)   # gradient of the projected h, for dW_hr
            dhr = xp.empty((B, H), dt)
        dpre = _take((4, T, B, H), dt, zero=bs is not None)
        w_hh_flat = xp.ascontiguousarray(w_hh4.reshape(4 * H, P))
        for t in _steps(T, not reverse):
            n = B if bs is None else bs[t]
            ds = dsum[:n]
            xp.add(dout_t[t, :n], dh[:n], out=ds)
            if w_hr is not None:
                dr[t, :n] = ds
                xp.matmul(ds, w_hr, out=dhr[:n])
                ds = dhr[:n]
            qq, dg, dcc, tm = q[:, t, :n], dpre[:, t, :n], dc[:n], tmp[:n]
            xp.multiply(ds, a[0, t, :n], out=tm)
            dcc += tm
            xp.multiply(ds, qq[0], out=dg[0])
            xp.multiply(dcc, qq[1:], out=dg[1:])
            dcc *= a[1, t, :n]            # dc_prev = dc * f
            xp.matmul(dg.transpose(1, 0, 2).reshape(n, 4 * H), w_hh_flat, out=dh[:n])

        need = ctx.needs_input_grad
        dx, dw_ih, db = _stacked_input_grads(need, dpre, x_tm, w_ih4, _LSTM_BACK, batch_first)
        dw_hh = dw_hr = None
        if need[2]:
            dw_hh = _gate_weight_grad(dpre.reshape(4, T * B, H), hprev.reshape(T * B, P), _LSTM_BACK)
        db_ih = db if need[3] else None
        db_hh = (db.copy() if need[3] else db) if need[4] else None
        if need[7]:
            dw_hr = dr.reshape(-1, P).T @ r.reshape(-1, H)
        return dx, dw_ih, dw_hh, db_ih, db_hh, dh, dc, dw_hr


def lstm_layer(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, c0=None, w_hr=None, *, reverse=False,
               batch_first=False, batch_sizes=None):
    """Run one LSTM layer in one direction; returns ``(output, h_n, c_n)`` (see ``LSTMFn``)."""
    fn = choose(LSTMFn, x, w_hh, w_hr, batch_sizes)
    return fn.apply(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, reverse=reverse, batch_first=batch_first,
                    batch_sizes=batch_sizes)


# ----------------------------------------------------------------------------- GRU
class GRUFn(Function):
    """One GRU layer, one direction, over a whole sequence.

    ``r = s(W_ir x + b_ir + W_hr h + b_hr)``, ``z = s(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.
    Inputs: ``x`` (T, B, I) or (B, T, I); ``w_ih`` (3H, I), ``w_hh`` (3H, H), biases (3H,) or
    None, ``h0`` (B, H) or None. Outputs: every step's ``h`` and the final ``h``.
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, *, reverse=False, batch_first=False, batch_sizes=None):
        H = w_hh.shape[0] // 3
        x_tm = _x_time_major(x, batch_first)
        T, B = x_tm.shape[0], x_tm.shape[1]
        bs = _check_batch_sizes(batch_sizes, T, B)
        dt = x.dtype
        half = xp.asarray([0.5, 0.5, 1.0], dt)[:, None, None]
        w_ih3 = w_ih.reshape(3, H, -1)
        w_hh3 = w_hh.reshape(3, H, H)
        w_hh_sT = (w_hh3 * half).transpose(0, 2, 1)
        b3 = b_hn = None
        if b_ih is not None:
            # r and z take both biases in the input projection; b_hn stays inside r * (...)
            b3 = b_ih.reshape(3, H) * half[:, 0]
            b3[:2] += 0.5 * b_hh.reshape(3, H)[:2]
            b_hn = b_hh[2 * H :]
        xproj = _stacked_projection(x_tm, w_ih3 * half, b3)
        need_grad = any(ctx.needs_input_grad)
        out = (xp.zeros if bs is not None else xp.empty)(x.shape[:-1] + (H,), dt)
        out_t = _time_major(out, batch_first)
        h = xp.zeros((B, H), dt) if h0 is None else h0.astype(dt, copy=True)
        gates = xp.empty((3, B, H), dt)
        nbuf = xp.empty((B, H), dt)
        if need_grad:
            # q: factors of dL/d(pre-activation): hn * r', (h - n) * z', (1 - z)(1 - n^2), z, r
            q = _take((5, T, B, H), dt)
            hprev = _take((T, B, H), dt, zero=bs is not None)
        for t in _steps(T, reverse):
            n = B if bs is None else bs[t]
            hp, g, nn = h[:n], gates[:, :n], nbuf[:n]
            xt_ = xproj[:, t, :n]
            xp.matmul(hp, w_hh_sT, out=g)
            hn = g[2]
            if b_hn is not None:
                hn += b_hn
            rz = g[:2]
            rz += xt_[:2]
            xp.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            rr, z = g[0], g[1]
            xp.multiply(rr, hn, out=nn)
            nn += xt_[2]
            xp.tanh(nn, out=nn)
            ht = out_t[t, :n]
            xp.subtract(hp, nn, out=ht)
            if need_grad:
                hprev[t, :n] = hp
                qq = q[:, t, :n]
                qq[3] = z
                qq[4] = rr
                xp.subtract(1.0, rr, out=qq[0])
                qq[0] *= rr
                qq[0] *= hn                          # hn * r'
                xp.subtract(1.0, z, out=qq[1])
                qq[1] *= z
                qq[1] *= ht                          # (h - n) * z'
                xp.multiply(nn, nn, out=qq[2])
                xp.subtract(1.0, qq[2], out=qq[2])
                qq[2] *= 1.0 - z                     # (1 - z)(1 - n^2)
            ht *= z
            ht += nn
            hp[...] = ht
        if need_grad:
            ctx.save_for_backward(x_tm, w_ih3, w_hh)
            ctx.seq = (q, hprev)
            ctx.cfg = (reverse, batch_first, bs, H)
        return out, h

    @staticmethod
    def backward(ctx, dout, dhn):
        x_tm, w_ih3, w_hh = ctx.saved_tensors
        q, hprev = ctx.seq
        reverse, batch_first, bs, H = ctx.cfg
        dt = q.dtype
        T, B = q.shape[1], q.shape[2]
        dout_t = _time_major(dout, batch_first)
        dgi = _take((3, T, B, H), dt, zero=bs is not None)      # d pre-activation, input side
        dgh = _take((3, T, B, H), dt, zero=bs is not None)      # d (W_hh h + b_hh)
        dh = dhn.astype(dt, copy=True)
        dsum = xp.empty((B, H), dt)
        tmp = xp.empty((B, H), dt)
        for t in _steps(T, not reverse):
            n = B if bs is None else bs[t]
            ds, qq, di, dhh, tm = dsum[:n], q[:, t, :n], dgi[:, t, :n], dgh[:, t, :n], tmp[:n]
            xp.add(dout_t[t, :n], dh[:n], out=ds)
            xp.multiply(ds, qq[2], out=di[2])          # dn_pre
            xp.multiply(ds, qq[1], out=di[1])          # dz_pre
            xp.multiply(di[2], qq[0], out=di[0])       # dr_pre
            dhh[:2] = di[:2]
            xp.multiply(di[2], qq[4], out=dhh[2])
            xp.multiply(ds, qq[3], out=tm)             # the direct path z * h
            xp.matmul(dhh.transpose(1, 0, 2).reshape(n, 3 * H), w_hh, out=dh[:n])
            dh[:n] += tm
        need = ctx.needs_input_grad
        dx, dw_ih, db_ih = _stacked_input_grads(need[:4] + [False], dgi, x_tm, w_ih3, None, batch_first)
        dw_hh = db_hh = None
        if need[2]:
            dw_hh = _gate_weight_grad(dgh.reshape(3, T * B, H), hprev.reshape(T * B, H), None)
        if need[4]:
            db_hh = xp.concatenate([_col_sum(dgh[g].reshape(T * B, H)) for g in range(3)])
        return dx, dw_ih, dw_hh, db_ih, db_hh, dh


def gru_layer(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, reverse=False, batch_first=False,
              batch_sizes=None):
    """Run one GRU layer in one direction; returns ``(output, h_n)`` (see ``GRUFn``)."""
    fn = choose(GRUFn, x)
    return fn.apply(x, w_ih, w_hh, b_ih, b_hh, h0, reverse=reverse, batch_first=batch_first, batch_sizes=batch_sizes)


# ----------------------------------------------------------------------------- Elman RNN
class RNNFn(Function):
    """One Elman RNN layer, one direction: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act tanh or relu."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, *, nonlinearity="tanh", reverse=False, batch_first=False,
                batch_sizes=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        H = w_hh.shape[0]
        xt = _time_major(x, batch_first)
        T, B = xt.shape[0], xt.shape[1]
        bs = _check_batch_sizes(batch_sizes, T, B)
        dt = x.dtype
        bias = None if b_ih is None else b_ih + b_hh
        xproj = _time_major(_input_projection(x, w_ih, bias), batch_first)
        need_grad = any(ctx.needs_input_grad)
        seq_shape = x.shape[:-1]
        out = (xp.zeros if bs is not None else xp.empty)(seq_shape + (H,), dt)
        out_t = _time_major(out, batch_first)
        h = xp.zeros((B, H), dt) if h0 is None else h0.astype(dt, copy=True)
        if need_grad:
            hprev = xp.zeros(seq_shape + (H,), dt)
            hprev_t = _time_major(hprev, batch_first)
        w_hhT = w_hh.T
        relu = nonlinearity == "relu"
        for t in _steps(T, reverse):
            n = B if bs is None else bs[t]
            hp = h[:n]
            ht = out_t[t, :n]
            if need_grad:
                hprev_t[t, :n] = hp
            xp.matmul(hp, w_hhT, out=ht)
            ht += xproj[t, :n]
            if relu:
                xp.maximum(ht, 0.0, out=ht)
            else:
                xp.tanh(ht, out=ht)
            hp[...] = ht
        if need_grad:
            # out doubles as the saved activation: the version counter guards it against in-place changes
            ctx.save_for_backward(x, w_ih, w_hh, out)
            ctx.seq = hprev
            ctx.cfg = (reverse, batch_first, bs, relu)
        return out, h

    @staticmethod
    def backward(ctx, dout, dhn):
        x, w_ih, w_hh, out = ctx.saved_tensors
        hprev = ctx.seq
        reverse, batch_first, bs, relu = ctx.cfg
        dt = out.dtype
        H = w_hh.shape[0]
        out_t, dout_t = _time_major(out, batch_first), _time_major(dout, batch_first)
        T, B = out_t.shape[0], out_t.shape[1]
        dpre = (xp.zeros if bs is not None else xp.empty)(out.shape, dt)
        dpre_t = _time_major(dpre, batch_first)
        dh = dhn.astype(dt, copy=True)
        for t in _steps(T, not reverse):
            n = B if bs is None else bs[t]
            ht, dp = out_t[t, :n], dpre_t[t, :n]
            if relu:
                xp.multiply(dh[:n], ht > 0, out=dp)
                dp += dout_t[t, :n] * (ht > 0)
            else:
                xp.multiply(ht, ht, out=dp)
                xp.subtract(1.0, dp, out=dp)
                dp *= dout_t[t, :n] + dh[:n]
            xp.matmul(dp, w_hh, out=dh[:n])
        need = ctx.needs_input_grad
        d2 = dpre.reshape(-1, H)
        dx = dw_ih = dw_hh = db_ih = db_hh = None
        if need[0]:
            dx = (d2 @ w_ih).reshape(x.shape)
        if need[1]:
            dw_ih = d2.T @ x.reshape(-1, x.shape[-1])
        if need[2]:
            dw_hh = d2.T @ hprev.reshape(-1, H)
        if need[3] or need[4]:
            db = _col_sum(d2)
            db_ih = db if need[3] else None
            db_hh = (db.copy() if need[3] else db) if need[4] else None
        return dx, dw_ih, dw_hh, db_ih, db_hh, dh


def rnn_layer(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None, *, nonlinearity="tanh", reverse=False,
              batch_first=False, batch_sizes=None):
    """Run one Elman RNN layer in one direction; returns ``(output, h_n)`` (see ``RNNFn``)."""
    fn = choose(RNNFn, x)
    return fn.apply(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity=nonlinearity, reverse=reverse,
                    batch_first=batch_first, batch_sizes=batch_sizes)
