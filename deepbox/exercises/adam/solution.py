"""Exercise 'adam': one step of Adam (optim.Adam), on NumPy arrays.

Write the block between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check adam              (add --train to train an MLP with your Adam)
"""
import numpy as np


def adam_update(w, dw, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Update the parameter w IN PLACE, as torch.optim.Adam does:

        t = t + 1                                   (t counts the steps: 1 at the first)
        g = dw + weight_decay * w                   (L2 weight decay, not AdamW's)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        w = w - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)

    Args:
        w: the parameter (changed in place); dw: its gradient (not to be changed).
        state: a dict kept between the calls for this parameter (empty at the first step).
    """
    # >>> YOUR CODE (about 11 lines)
    beta1, beta2 = betas
    if not state:
        state["t"] = 0
        state["m"] = np.zeros_like(w)
        state["v"] = np.zeros_like(w)
    state["t"] += 1
    t = state["t"]
    g = dw + weight_decay * w
    state["m"] = beta1 * state["m"] + (1 - beta1) * g
    state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
    m_hat = state["m"] / (1 - beta1 ** t)
    v_hat = state["v"] / (1 - beta2 ** t)
    w -= lr * m_hat / (np.sqrt(v_hat) + eps)
    # <<< END
