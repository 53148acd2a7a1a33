"""Exercise 'gradcheck': check gradients with central differences, as deepbox.autograd.gradcheck does.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check gradcheck
"""
import numpy as np


def rel_error(a, b):
    """The largest |a - b| / max(|a| + |b|, 1e-8) over the elements: ~1e-10 or less means they agree."""
    # >>> YOUR CODE (about 1 line)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))
    # <<< END


def numerical_gradient(f, x, h=1e-5):
    """The gradient of the scalar function f at x by central differences, one element at a time:

        df/dx[i] = (f(x + h e_i) - f(x - h e_i)) / (2h)

    f takes the array x itself: change x[i], call f(x), and put x[i] back before moving on.
    Returns an array of x's shape.
    """
    # >>> YOUR CODE (about 10 lines)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    # <<< END
    return grad


def numerical_gradient_array(f, x, dout, h=1e-5):
    """For an array-valued f, the gradient of sum(f(x) * dout) with respect to x: what backward computes
    when dout is the gradient arriving from above. Returns an array of x's shape."""
    # >>> YOUR CODE (about 2 lines)
    return numerical_gradient(lambda z: float(np.sum(f(z) * dout)), x, h)
    # <<< END
