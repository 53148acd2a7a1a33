"""Linear regression: least squares and ridge, solved in closed form or by gradient descent.

The model is ``y ≈ X w + b``. With ridge strength ``alpha`` the objective is scikit-learn's Ridge objective

    ‖y - X w - b‖² + alpha ‖w‖²          (the intercept b is not penalised)

Centring X and y first separates the intercept exactly: on centred data b drops out, w solves the
centred problem, and b = ȳ - x̄·w. Then

* ``solver='lstsq'``: least squares on ``[Xc; √alpha I] w ≈ [yc; 0]`` (deepbox.linalg.lstsq; stable
  and correct for rank-deficient X, giving the minimum-norm solution),
* ``solver='normal'``: the normal equations ``(XcᵀXc + alpha I) w = Xcᵀyc`` (deepbox.linalg.solve),
* ``solver='gd'``: gradient descent with deepbox's autograd and ``optim.SGD`` on the same objective
  divided by 2n (full batch, or mini-batches with ``batch_size``). ``lr=None`` takes 1/L, L being the
  largest eigenvalue of the objective's Hessian (σ_max(Xc)² + alpha)/n, the largest step that never
  diverges; it converges to the closed-form solution.
"""
from __future__ import annotations

import math

import deepbox
from deepbox import backend
from deepbox.ml.base import BaseEstimator, RegressorMixin, check_X, check_y, like_input
from deepbox.tensor import _make

xp = backend.xp

_SOLVERS = ("lstsq", "normal", "gd")


class LinearRegression(RegressorMixin, BaseEstimator):
    """Ordinary least squares (``alpha=0``) or ridge regression (``alpha>0``).

    Args:
        fit_intercept: learn a bias term b (not penalised).
        alpha: L2 penalty strength (scikit-learn's ``Ridge(alpha)``); 0 is plain least squares.
        solver: 'lstsq', 'normal' (closed form) or 'gd' (gradient descent), see the module docstring.
        lr: gradient-descent step size; None picks 1/L (see above). Only for ``solver='gd'``.
        epochs: gradient-descent passes over the data.
        batch_size: mini-batch size for 'gd'; None is full-batch gradient descent.
        tol: 'gd' stops once an epoch lowers the objective by less than ``tol`` (relative); 0 never stops early.
        random_state: seed for the mini-batch order.

    Attributes:
        coef_: ``(n_features,)``, or ``(n_targets, n_features)`` for 2-D y.
        intercept_: a float, or ``(n_targets,)``.
        loss_curve_: the objective (divided by 2n) after each 'gd' epoch.
        n_iter_: epochs run by 'gd' (0 for closed forms).

    Shape: X ``(n_samples, n_features)``, y ``(n_samples,)`` or ``(n_samples, n_targets)``.
    """

    def __init__(self, *, fit_intercept: bool = True, alpha: float = 0.0, solver: str = "lstsq",
                 lr: float | None = None, epochs: int = 1000, batch_size: int | None = None, tol: float = 0.0,
                 random_state: int | None = None):
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.solver = solver
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.tol = tol
        self.random_state = random_state

    def _validate(self):
        if self.solver not in _SOLVERS:
            raise ValueError(f"LinearRegression: solver must be one of {_SOLVERS}, got {self.solver!r}")
        if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0):
            raise ValueError(f"LinearRegression: alpha must be a number >= 0, got {self.alpha!r}")
        if self.solver == "gd":
            if self.lr is not None and not self.lr > 0:
                raise ValueError(f"LinearRegression: lr must be > 0 or None, got {self.lr!r}")
            if not (isinstance(self.epochs, int) and self.epochs >= 1):
                raise ValueError(f"LinearRegression: epochs must be an int >= 1, got {self.epochs!r}")
            if self.batch_size is not None and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
                raise ValueError(f"LinearRegression: batch_size must be an int >= 1 or None, got {self.batch_size!r}")

    def fit(self, X, y) -> LinearRegression:
        """Fit w and b to ``X`` and ``y``; returns the estimator."""
        self._validate()
        X = check_X(X)
        y = check_y(y, X.shape[0], allow_2d=True).astype(X.dtype)
        y2 = y.reshape(len(y), -1)
        if self.fit_intercept:
            x_mean, y_mean = X.mean(0), y2.mean(0)
        else:
            x_mean, y_mean = xp.zeros(X.shape[1], X.dtype), xp.zeros(y2.shape[1], X.dtype)
        Xc = _make(X - x_mean)
        yc = _make(y2 - y_mean)
        self.loss_curve_ = []
        self.n_iter_ = 0
        if self.solver == "gd":
            W = self._fit_gd(Xc, yc)
        else:
            W = self._fit_closed(Xc, yc)
        coef = W.T  # (n_targets, n_features)
        intercept = y_mean - coef @ x_mean
        self.n_features_in_ = X.shape[1]
        if y.ndim == 1:
            self.coef_, self.intercept_ = coef[0], float(intercept[0])
        else:
            self.coef_, self.intercept_ = coef, intercept
        return self

    def _fit_closed(self, Xc, yc):
        from deepbox import linalg

        n, d = Xc.shape
        a = float(self.alpha)
        if self.solver == "normal":
            A = Xc.T @ Xc
            if a:
                A = A + a * deepbox.eye(d, dtype=Xc.dtype)
            try:
                return linalg.solve(A, Xc.T @ yc)._data
            except linalg.LinAlgError:
                raise linalg.LinAlgError("LinearRegression(solver='normal'): XᵀX is singular (collinear or fewer "
                                         "samples than features); use solver='lstsq' or alpha > 0") from None
        if a:
            # ridge as least squares on the data stacked over √alpha·I rows with zero targets
            Xc = deepbox.cat([Xc, math.sqrt(a) * deepbox.eye(d, dtype=Xc.dtype)])
            yc = deepbox.cat([yc, deepbox.zeros(d, yc.shape[1], dtype=yc.dtype)])
        return linalg.lstsq(Xc, yc, driver="gelsd").solution._data

    def _fit_gd(self, Xc, yc):
        from deepbox import linalg, optim

        n, d = Xc.shape
        a = float(self.alpha)
        lr = self.lr
        if lr is None:
            L = (float(linalg.matrix_norm(Xc, 2)) ** 2 + a) / n
            lr = 1.0 / L if L > 0 else 1.0
        W = deepbox.zeros(d, yc.shape[1], dtype=Xc.dtype, requires_grad=True)
        opt = optim.SGD([W], lr=lr)
        gen = deepbox.Generator().manual_seed(self.random_state if self.random_state is not None else 0)
        bs = n if self.batch_size is None else min(self.batch_size, n)

        def objective(Xb, yb, m):
            r = Xb @ W - yb
            # (‖r‖² + alpha·(m/n)‖W‖²) / 2m: the full objective / 2n when summed over an epoch's batches
            return ((r * r).sum() + (a * m / n) * (W * W).sum()) / (2 * m)

        prev = math.inf
        for epoch in range(self.epochs):
            order = deepbox.randperm(n, generator=gen) if bs < n else None
            for start in range(0, n, bs):
                if order is None:
                    Xb, yb = Xc, yc
                else:
                    idx = order[start:start + bs]
                    Xb, yb = Xc[idx], yc[idx]
                opt.zero_grad()
                loss = objective(Xb, yb, Xb.shape[0])
                loss.backward()
                opt.step()
            with deepbox.no_grad():
                full = float(objective(Xc, yc, n))
            if not math.isfinite(full):
                raise FloatingPointError(f"LinearRegression(solver='gd'): the objective diverged at epoch {epoch + 1} "
                                         f"with lr={lr:g}; use a smaller lr (or lr=None) or standardise X")
            self.loss_curve_.append(full)
            self.n_iter_ = epoch + 1
            if self.tol and prev - full < self.tol * max(abs(prev), 1e-300):
                break
            prev = full
        return W.detach()._data

    def predict(self, X):
        """``X w + b``: shape ``(n_samples,)`` or ``(n_samples, n_targets)``, the type of ``X``."""
        self._check_fitted("coef_")
        A = check_X(X, n_features=self.n_features_in_)
        out = (_make(A) @ _make(xp.asarray(self.coef_, A.dtype).T))._data + xp.asarray(self.intercept_, A.dtype)
        return like_input(out, X)

