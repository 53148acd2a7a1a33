"""Exercise 'softmax_cross_entropy': the classification loss, forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check softmax_cross_entropy
"""
import numpy as np


def softmax_cross_entropy_forward(logits, targets):
    """The mean over the batch of -log softmax(logits)[n, targets[n]], as F.cross_entropy computes it.

    Args:
        logits: (N, C) scores, any real numbers (also large ones: do not let exp overflow).
        targets: (N,) integer class indices in [0, C).
    Returns:
        loss: a float, and cache: whatever backward needs.
    """
    # >>> YOUR CODE (about 6 lines)
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)   # softmax is unchanged; exp cannot overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), targets].mean()
    cache = (np.exp(log_probs), targets)
    # <<< END
    return loss, cache


def softmax_cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax(logits) - onehot(targets)) / N, shape (N, C)."""
    # >>> YOUR CODE (about 5 lines)
    probs, targets = cache
    n = probs.shape[0]
    dlogits = probs.copy()
    dlogits[np.arange(n), targets] -= 1
    dlogits *= dloss / n
    # <<< END
    return dlogits
