"""Exercise 'relu': the rectified linear unit, forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check relu
"""
import numpy as np


def relu_forward(x):
    """out = max(x, 0), element by element, for an array of any shape.

    Returns:
        out: the same shape as x (a new array: x itself may still be needed), and cache.
    """
    # >>> YOUR CODE (about 2 lines)
    out = np.maximum(x, 0)
    cache = x
    # <<< END
    return out, cache


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (at x == 0 exactly the gradient is 0, as in PyTorch)."""
    # >>> YOUR CODE (about 2 lines)
    x = cache
    dx = dout * (x > 0)
    # <<< END
    return dx
