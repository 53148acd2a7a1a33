"""Exercise 'batchnorm': batch normalisation, forward (training and eval) and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check batchnorm
"""
import numpy as np


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """Normalise each channel over the batch (and the spatial positions), then scale and shift.

    Args:
        x: (N, C) or (N, C, H, W); gamma, beta, running_mean, running_var: (C,).
        training: normalise with the batch's statistics and update running_mean and running_var IN PLACE
            (running = (1 - momentum) * running + momentum * batch statistic, with the unbiased variance);
            in eval mode normalise with the running statistics and leave them alone.
    Returns:
        out: x's shape, and cache.
    """
    # >>> YOUR CODE (about 14 lines)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)          # everything but the channel axis
    shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)   # (C,) -> broadcastable against x
    if training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)                           # biased (divide by the count) for normalising
        count = x.size // x.shape[1]
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * count / (count - 1)   # unbiased for the running estimate
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    out = gamma.reshape(shape) * xhat + beta.reshape(shape)
    cache = (xhat, gamma, inv_std, axes, shape)
    # <<< END
    return out, cache


def batchnorm_backward(dout, cache):
    """dx, dgamma, dbeta for the training-mode forward (the batch statistics depend on x too)."""
    # >>> YOUR CODE (about 8 lines)
    xhat, gamma, inv_std, axes, shape = cache
    m = dout.size // dout.shape[1]                       # values per channel
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    dxhat = dout * gamma.reshape(shape)
    # the three paths from x: directly, through the mean, through the variance
    dx = (inv_std.reshape(shape) / m) * (m * dxhat - dxhat.sum(axis=axes).reshape(shape)
                                         - xhat * (dxhat * xhat).sum(axis=axes).reshape(shape))
    # <<< END
    return dx, dgamma, dbeta
