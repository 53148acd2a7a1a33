"""Exercise 'linear_regression': least squares in closed form and by gradient descent, on NumPy arrays.

Write the blocks between '# >>> YOUR CODE' and '# <<< END', then run
    deepbox exercise check linear_regression
"""
import numpy as np


def fit_closed_form(X, y):
    """The w that minimises ||X w - y||^2, from the normal equations X^T X w = X^T y.

    Args:
        X: (N, D) design matrix (a column of ones in it gives a bias); y: (N,) targets.
    Returns:
        w: (D,).
    """
    # >>> YOUR CODE (about 1 line: solve the system, don't invert the matrix)
    w = np.linalg.solve(X.T @ X, X.T @ y)
    # <<< END
    return w


def mse_loss_and_grad(X, y, w):
    """The mean squared error L = (1/N) ||X w - y||^2 and its gradient dL/dw = (2/N) X^T (X w - y).

    Returns:
        loss: a float; grad: (D,).
    """
    # >>> YOUR CODE (about 4 lines)
    n = X.shape[0]
    r = X @ w - y
    loss = float(r @ r) / n
    grad = 2.0 / n * (X.T @ r)
    # <<< END
    return loss, grad


def fit_gradient_descent(X, y, lr=0.1, steps=200):
    """Gradient descent on the mean squared error from w = 0: w <- w - lr * dL/dw, `steps` times.

    Returns:
        w: (D,) after the last step.
    """
    # >>> YOUR CODE (about 4 lines)
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        _, grad = mse_loss_and_grad(X, y, w)
        w = w - lr * grad
    # <<< END
    return w
