"""Exercise 'lstm_cell': one step of an LSTM (nn.LSTMCell), forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check lstm_cell         (add --train to train the row-LSTM with your cell)
"""
import numpy as np


def _sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def lstm_cell_forward(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step, gates in PyTorch's order i, f, g, o.

    Args:
        x: (N, I); h_prev, c_prev: (N, H); w_ih: (4H, I); w_hh: (4H, H); b_ih, b_hh: (4H,).
    Returns:
        h, c: (N, H) each, and cache.
    """
    # >>> YOUR CODE (about 9 lines)
    hid = h_prev.shape[1]
    a = x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh          # (N, 4H): the four gates' pre-activations
    i = _sigmoid(a[:, :hid])
    f = _sigmoid(a[:, hid:2 * hid])
    g = np.tanh(a[:, 2 * hid:3 * hid])
    o = _sigmoid(a[:, 3 * hid:])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    cache = (x, h_prev, c_prev, w_ih, w_hh, i, f, g, o, tc)
    # <<< END
    return h, c, cache


def lstm_cell_backward(dh, dc, cache):
    """Given dh and dc (the gradients of h and c from above), returns
    dx, dh_prev, dc_prev, dw_ih, dw_hh, db_ih, db_hh."""
    # >>> YOUR CODE (about 14 lines)
    x, h_prev, c_prev, w_ih, w_hh, i, f, g, o, tc = cache
    dc_total = dc + dh * o * (1.0 - tc * tc)                # c reaches the loss directly and through h
    do = dh * tc
    di = dc_total * g
    df = dc_total * c_prev
    dg = dc_total * i
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
    dx = da @ w_ih
    dh_prev = da @ w_hh
    dc_prev = dc_total * f
    dw_ih = da.T @ x
    dw_hh = da.T @ h_prev
    db_ih = da.sum(axis=0)
    db_hh = db_ih.copy()
    # <<< END
    return dx, dh_prev, dc_prev, dw_ih, dw_hh, db_ih, db_hh
