"""Exercise 'maxpool2d': 2-D max pooling, forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check maxpool2d
"""
import numpy as np


def maxpool2d_forward(x, kernel_size=2, stride=None):
    """out[n, c, i, j] = the maximum of x[n, c] over the window rows i*stride .. i*stride+k-1 (columns likewise).

    Args:
        x: (N, C, H, W); kernel_size: k (square windows); stride: default k (windows side by side).
    Returns:
        out: (N, C, HO, WO) with HO = (H - k) // stride + 1, and cache.
    """
    # >>> YOUR CODE (about 10 lines)
    k = kernel_size
    s = stride or k
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.empty((n, c, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    cache = (x, k, s)
    # <<< END
    return out, cache


def maxpool2d_backward(dout, cache):
    """dx: each dout[n, c, i, j] goes to the position of its window's maximum (the first one when there are
    ties, as PyTorch does), added up where windows overlap."""
    # >>> YOUR CODE (about 12 lines)
    x, k, s = cache
    n, c, _, _ = x.shape
    _, _, ho, wo = dout.shape
    dx = np.zeros_like(x)
    rows, cols = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(n, c, -1)
            first = window.argmax(axis=2)                    # the first maximum, in row-major order
            dx[rows, cols, i * s + first // k, j * s + first % k] += dout[:, :, i, j]
    # <<< END
    return dx
