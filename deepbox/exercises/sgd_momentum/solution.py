"""Exercise 'sgd_momentum': one step of SGD with momentum and weight decay (optim.SGD), on NumPy arrays.

Write the block between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check sgd_momentum      (add --train to train an MLP with your optimiser)
"""
import numpy as np  # noqa: F401  (the template's block may use it)


def sgd_momentum_update(w, dw, state, lr, momentum=0.9, weight_decay=0.0):
    """Update the parameter w IN PLACE, as torch.optim.SGD(momentum=..., weight_decay=...) does:

        g = dw + weight_decay * w
        v = momentum * v + g            (v = g at the first step)
        w = w - lr * v

    Args:
        w: the parameter (changed in place); dw: its gradient (not to be changed).
        state: a dict kept between the calls for this parameter (empty at the first step): keep v in it.
        lr, momentum, weight_decay: the hyperparameters.
    """
    # >>> YOUR CODE (about 6 lines)
    g = dw + weight_decay * w
    if "velocity" not in state:
        state["velocity"] = g.copy()
    else:
        state["velocity"] = momentum * state["velocity"] + g
    w -= lr * state["velocity"]
    # <<< END
