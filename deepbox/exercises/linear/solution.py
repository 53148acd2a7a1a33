"""Exercise 'linear': a fully connected layer, forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check linear
"""
import numpy as np  # noqa: F401  (the template's blocks use it)


def linear_forward(x, w, b):
    """out = x w^T + b, as nn.Linear computes it.

    Args:
        x: (N, in_features) inputs, one row per example.
        w: (out_features, in_features) weight (PyTorch's layout: one row per output).
        b: (out_features,) bias.
    Returns:
        out: (N, out_features), and cache: whatever linear_backward needs.
    """
    # >>> YOUR CODE (about 2 lines)
    out = x @ w.T + b
    cache = (x, w)
    # <<< END
    return out, cache


def linear_backward(dout, cache):
    """The gradients of the loss with respect to x, w and b, given dout = dL/dout, shape (N, out_features).

    Returns:
        dx: (N, in_features), dw: (out_features, in_features), db: (out_features,).
    """
    # >>> YOUR CODE (about 4 lines)
    x, w = cache
    dx = dout @ w
    dw = dout.T @ x
    db = dout.sum(axis=0)
    # <<< END
    return dx, dw, db
