"""Exercise 'linear_regression': normal equations, the MSE gradient and gradient descent, against deepbox."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import CheckFailed


def _data(r, n, d, noise=0.1):
    X = np.concatenate([r.standard_normal((n, d - 1)), np.ones((n, 1))], axis=1)
    return X, X @ r.standard_normal(d) + noise * r.standard_normal(n)


def _cases():
    r = np.random.default_rng(26)
    X = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    return [("hand-made: a line through 4 points", X, np.array([2.1, 3.9, 6.2, 7.8])),
            ("random: N=50, D=4", *_data(r, 50, 4)), ("N = D = 3", *_data(r, 3, 3, 0.0)),
            ("hidden", *_data(r, 200, 7))]


def _ref_lstsq(X, y):
    import deepbox

    return deepbox.linalg.lstsq(deepbox.tensor(X), deepbox.tensor(y[:, None])).solution.numpy()[:, 0]


def _ref_loss_grad(X, y, w):
    import deepbox
    import deepbox.nn.functional as F

    t = deepbox.tensor(w.copy(), requires_grad=True)
    loss = F.mse_loss(deepbox.tensor(X) @ t, deepbox.tensor(y))
    loss.backward()
    return float(loss), t.grad.numpy()


def _ref_descent(X, y, lr, steps):
    import deepbox
    import deepbox.nn.functional as F

    t = deepbox.zeros(X.shape[1], dtype=deepbox.float64, requires_grad=True)
    opt = deepbox.optim.SGD([t], lr=lr)
    Xt, yt = deepbox.tensor(X), deepbox.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(Xt @ t, yt).backward()
        opt.step()
    return t.detach().numpy()


def _where(label):
    return " (a hidden case)" if label == "hidden" else f" (case '{label}')"


def _check_closed(ck):
    worst = 0.0
    for label, X, y in _cases():
        got = ck.call("fit_closed_form", X.copy(), y.copy())
        try:
            worst = max(worst, ck.expect_close("w", got, _ref_lstsq(X, y), tol=1e-6, where=_where(label),
                                               hidden=label == "hidden"))
        except CheckFailed as f:
            f.what = "closed form against deepbox.linalg.lstsq: " + f.what
            if f.hint is None:
                f.hint = "solve the normal equations X^T X w = X^T y: np.linalg.solve(X.T @ X, X.T @ y)"
            raise
    ck.passed(f"closed form against deepbox.linalg.lstsq: 3 cases and a hidden one; worst relative error {worst:.1e}")
    ck.passed("hidden cases: 1")


def _check_gradient(ck):
    r = np.random.default_rng(27)
    worst = 0.0
    for label, X, y in _cases():
        w = r.standard_normal(X.shape[1])
        res = ck.call("mse_loss_and_grad", X.copy(), y.copy(), w.copy())
        if not isinstance(res, tuple) or len(res) != 2:
            raise CheckFailed("`mse_loss_and_grad` should return (loss, grad)")
        loss, grad = res
        ref_loss, ref_grad = _ref_loss_grad(X, y, w)
        n = X.shape[0]
        factors = {"N": (float(n), "the mean squared error divides by N"),
                   "1/2": (0.5, "the derivative of the square brings a factor 2: (2/N) X^T (X w - y)")}
        try:
            worst = max(worst, ck.expect_close("loss", np.asarray(loss, dtype=float), ref_loss, where=_where(label),
                                               hidden=label == "hidden", factors=factors))
            worst = max(worst, ck.expect_close("grad", grad, ref_grad, where=_where(label), hidden=label == "hidden",
                                               factors=factors))
        except CheckFailed as f:
            f.what = "loss and gradient against F.mse_loss and autograd: " + f.what
            raise
    ck.passed(f"loss and gradient against F.mse_loss and autograd: 3 cases and a hidden one; worst relative error "
              f"{worst:.1e}")
    worst = 0.0
    for label, X, y in _cases()[:2]:
        got = ck.call("fit_gradient_descent", X.copy(), y.copy(), lr=0.05, steps=50)
        exp = _ref_descent(X, y, 0.05, 50)
        try:
            worst = max(worst, ck.expect_close("w", got, exp, where=_where(label) + " after 50 steps, lr 0.05"))
        except CheckFailed as f:
            f.what = "gradient descent against optim.SGD on the same loss: " + f.what
            if f.hint is None:
                f.hint = "start from w = 0 and take exactly `steps` steps of w <- w - lr * grad"
            raise
    label, X, y = _cases()[1]
    got = ck.call("fit_gradient_descent", X.copy(), y.copy(), lr=0.1, steps=500)
    if ck.expect_close("w", got, _ref_lstsq(X, y), tol=1e-4, where=" after 500 steps") > 1e-4:
        raise CheckFailed("gradient descent does not reach the closed form")
    ck.passed(f"gradient descent against optim.SGD (worst relative error {worst:.1e}) and it reaches the closed form")


EXERCISE = Exercise(
    name="linear_regression", lecture="2",
    summary="least squares: the normal equations, the MSE gradient, gradient descent",
    parts=[Part("closed form (fit_closed_form)", ("fit_closed_form",), _check_closed, swap_ok=False),
           Part("gradient descent (mse_loss_and_grad, fit_gradient_descent)",
                ("mse_loss_and_grad", "fit_gradient_descent"), _check_gradient, swap_ok=False)],
    folder=os.path.dirname(os.path.abspath(__file__)))
