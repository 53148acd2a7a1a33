"""Exercise 'rnn_cell': one step of an Elman RNN (nn.RNNCell, tanh), forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check rnn_cell
"""
import numpy as np


def rnn_cell_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh):
    """h = tanh(x w_ih^T + b_ih + h_prev w_hh^T + b_hh).

    Args:
        x: (N, I) inputs; h_prev: (N, H) the previous hidden state;
        w_ih: (H, I), w_hh: (H, H), b_ih, b_hh: (H,) (PyTorch's layout).
    Returns:
        h: (N, H), and cache.
    """
    # >>> YOUR CODE (about 3 lines)
    h = np.tanh(x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh)
    cache = (x, h_prev, w_ih, w_hh, h)
    # <<< END
    return h, cache


def rnn_cell_backward(dh, cache):
    """Returns dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh."""
    # >>> YOUR CODE (about 8 lines)
    x, h_prev, w_ih, w_hh, h = cache
    da = dh * (1.0 - h * h)            # tanh' = 1 - tanh^2, written with the output
    dx = da @ w_ih
    dh_prev = da @ w_hh
    dw_ih = da.T @ x
    dw_hh = da.T @ h_prev
    db_ih = da.sum(axis=0)
    db_hh = db_ih.copy()
    # <<< END
    return dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh
