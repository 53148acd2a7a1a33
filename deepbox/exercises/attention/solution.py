"""Exercise 'attention': scaled dot-product attention with a mask, forward and backward, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check attention
"""
import numpy as np


def attention_forward(q, k, v, mask=None):
    """out = softmax(q k^T / sqrt(D) with masked scores at -inf) v, batched over the leading axis.

    Args:
        q: (B, Lq, D); k: (B, Lk, D); v: (B, Lk, Dv).
        mask: None, or booleans (Lq, Lk) or (B, Lq, Lk): True where a query may attend to a key
            (F.scaled_dot_product_attention's boolean attn_mask). Every row keeps at least one key.
    Returns:
        out: (B, Lq, Dv), and cache.
    """
    # >>> YOUR CODE (about 8 lines)
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)          # before the softmax: masked keys get weight 0
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)        # softmax over the keys (the last axis)
    out = weights @ v
    cache = (q, k, v, weights)
    # <<< END
    return out, cache


def attention_backward(dout, cache):
    """Returns dq, dk, dv."""
    # >>> YOUR CODE (about 7 lines)
    q, k, v, weights = cache
    dv = weights.transpose(0, 2, 1) @ dout
    dweights = dout @ v.transpose(0, 2, 1)
    # softmax backward, row by row: ds = P * (dP - sum(dP * P))
    dscores = weights * (dweights - (dweights * weights).sum(axis=-1, keepdims=True))
    dscores /= np.sqrt(q.shape[-1])
    dq = dscores @ k
    dk = dscores.transpose(0, 2, 1) @ q
    # <<< END
    return dq, dk, dv
