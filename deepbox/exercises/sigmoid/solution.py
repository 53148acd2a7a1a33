"""Exercise 'sigmoid': the logistic function, forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check sigmoid
"""
import numpy as np


def sigmoid_forward(x):
    """out = 1 / (1 + exp(-x)), element by element, without overflow for large |x|.

    Returns:
        out: the same shape as x, and cache.
    """
    # >>> YOUR CODE (about 4 lines)
    # exp of a large positive number overflows: use exp(-|x|), which is at most 1
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    cache = out
    # <<< END
    return out, cache


def sigmoid_backward(dout, cache):
    """dx = dout * s * (1 - s), where s = sigmoid(x) is the forward's output."""
    # >>> YOUR CODE (about 2 lines)
    out = cache
    dx = dout * out * (1.0 - out)
    # <<< END
    return dx
