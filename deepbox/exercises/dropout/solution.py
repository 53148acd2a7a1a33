"""Exercise 'dropout': inverted dropout, forward (training and eval) and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check dropout
"""
import numpy as np


def dropout_forward(x, p=0.5, training=True, rng=None):
    """Zero each element with probability p and scale the survivors by 1/(1-p); the identity in eval mode.

    Args:
        x: an array of any shape; p: the probability of dropping an element, 0 <= p <= 1.
        training: drop only in training. rng: a np.random.Generator: draw the mask with it
            (rng.random(x.shape)), so that the same generator state gives the same mask.
    Returns:
        out: x's shape, and cache.
    """
    # >>> YOUR CODE (about 7 lines)
    if not training or p == 0:
        return x.copy(), None
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    scale = (rng.random(x.shape) >= p) / (1.0 - p)     # the kept elements' factor: 0 or 1/(1-p)
    out = x * scale
    cache = scale
    # <<< END
    return out, cache


def dropout_backward(dout, cache):
    """dx = dout times the same factor the forward applied (dout itself in eval mode)."""
    # >>> YOUR CODE (about 3 lines)
    if cache is None:
        return dout.copy()
    dx = dout * cache
    # <<< END
    return dx
