"""Logistic regression: maximum likelihood for a linear classifier, binary (sigmoid) or multinomial (softmax).

The objective is scikit-learn's, divided by C·n so that it reads as a mean loss plus a penalty:

    (1/n) Σ_i CE(softmax(W x_i + b), y_i) + 1/(2 C n) ‖W‖²       (b is not penalised)

Two classes use one weight vector and the sigmoid (the softmax of two classes with one logit pinned to 0);
more classes use one weight vector per class and the softmax. The objective is strictly convex for finite C,
so every solver that converges finds the same W and b:

* ``solver='lbfgs'``: deepbox.optim.LBFGS with a strong-Wolfe line search (full batch),
* ``solver='gd'``: plain full-batch gradient descent with step ``lr``.
"""
from __future__ import annotations

import math

import deepbox
from deepbox import backend
from deepbox.ml.base import (
    BaseEstimator,
    ClassifierMixin,
    LinearClassifierMixin,
    check_X,
    check_y,
    encode_labels,
    like_input,
)
from deepbox.tensor import _make

xp = backend.xp

_SOLVERS = ("lbfgs", "gd")


class LogisticRegression(LinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """Linear classifier trained by maximum likelihood with an L2 penalty.

    Args:
        penalty: 'l2' or None (no penalty, i.e. C = ∞).
        C: inverse regularisation strength, as in scikit-learn (smaller C, stronger penalty).
        fit_intercept: learn a bias per class (not penalised).
        solver: 'lbfgs' or 'gd' (see the module docstring).
        max_iter: L-BFGS iterations, or gradient-descent steps.
        tol: stop once the largest absolute gradient entry of the objective is below ``tol``.
        lr: gradient-descent step size (only for ``solver='gd'``).

    Attributes:
        classes_: the sorted class labels. coef_: ``(1, n_features)`` for two classes, else
        ``(n_classes, n_features)``. intercept_: ``(1,)`` or ``(n_classes,)``. n_iter_: iterations run.
        loss_curve_: the objective after each 'gd' step.

    Shape: X ``(n_samples, n_features)``, y ``(n_samples,)`` of labels (any sortable values).
    """

    def __init__(self, *, penalty: str | None = "l2", C: float = 1.0, fit_intercept: bool = True,
                 solver: str = "lbfgs", max_iter: int = 100, tol: float = 1e-4, lr: float = 0.1):
        self.penalty = penalty
        self.C = C
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.lr = lr

    def _validate(self):
        if self.solver not in _SOLVERS:
            raise ValueError(f"LogisticRegression: solver must be one of {_SOLVERS}, got {self.solver!r}")
        if self.penalty not in ("l2", None):
            raise ValueError(f"LogisticRegression: penalty must be 'l2' or None, got {self.penalty!r}")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"LogisticRegression: C must be a number > 0, got {self.C!r}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValueError(f"LogisticRegression: max_iter must be an int >= 1, got {self.max_iter!r}")
        if self.solver == "gd" and not self.lr > 0:
            raise ValueError(f"LogisticRegression: lr must be > 0, got {self.lr!r}")

    def fit(self, X, y) -> LogisticRegression:
        """Fit the weights to ``X`` and labels ``y``; returns the estimator."""
        import deepbox.nn.functional as F

        self._validate()
        X = check_X(X)
        y = check_y(y, X.shape[0])
        classes, codes = encode_labels(y)
        if len(classes) < 2:
            raise ValueError(f"LogisticRegression needs samples of at least 2 classes; y has only {classes.tolist()}")
        n, d = X.shape
        k = 1 if len(classes) == 2 else len(classes)
        Xt = _make(X)
        dt = X.dtype
        W = deepbox.zeros(k, d, dtype=deepbox.float64 if dt == xp.float64 else deepbox.float32, requires_grad=True)
        b = deepbox.zeros(k, dtype=W.dtype, requires_grad=self.fit_intercept)
        params = [W, b] if self.fit_intercept else [W]
        reg = 0.0 if self.penalty is None else 1.0 / (2.0 * self.C * n)
        target = _make(codes.astype(dt)) if k == 1 else _make(codes)

        def objective():
            z = Xt @ W.T + b
            if k == 1:
                data = F.binary_cross_entropy_with_logits(z[:, 0], target)
            else:
                data = F.cross_entropy(z, target)
            return data + reg * (W * W).sum() if reg else data

        self.loss_curve_ = []
        if self.solver == "lbfgs":
            opt = deepbox.optim.LBFGS(params, lr=1, max_iter=self.max_iter, max_eval=self.max_iter * 5 // 4 + 1,
                                      tolerance_grad=self.tol, tolerance_change=1e-12, history_size=10,
                                      line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                loss = objective()
                loss.backward()
                return loss

            opt.step(closure)
            self.n_iter_ = int(opt.state[opt._params[0]].get("n_iter", 0))
        else:
            opt = deepbox.optim.SGD(params, lr=self.lr)
            self.n_iter_ = 0
            for it in range(self.max_iter):
                opt.zero_grad()
                loss = objective()
                loss.backward()
                value = float(loss)
                if not math.isfinite(value):
                    raise FloatingPointError(f"LogisticRegression(solver='gd'): the objective diverged at step "
                                             f"{it + 1} with lr={self.lr:g}; use a smaller lr or standardise X")
                self.loss_curve_.append(value)
                self.n_iter_ = it + 1
                if max(float(p.grad.abs().max()) for p in params) < self.tol:
                    break
                opt.step()
        self.classes_ = classes
        self.n_features_in_ = d
        self.coef_ = W.detach()._data.copy()
        self.intercept_ = b.detach()._data.copy()
        return self

    def predict_proba(self, X):
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        z = self._logits(X)
        if z.shape[1] == 1:
            p1 = deepbox.sigmoid(_make(z))._data
            p = xp.concatenate([1 - p1, p1], axis=1)
        else:
            p = deepbox.softmax(_make(z), dim=1)._data
        return like_input(p, X)

    def predict_log_proba(self, X):
        """Log-probabilities ``(n_samples, n_classes)``."""
        z = self._logits(X)
        if z.shape[1] == 1:
            z = xp.concatenate([xp.zeros_like(z), z], axis=1)
        return like_input(deepbox.log_softmax(_make(z), dim=1)._data, X)

    def predict(self, X):
        """The most probable class label of each sample."""
        z = self._logits(X)
        idx = (z[:, 0] > 0).astype(xp.int64) if z.shape[1] == 1 else z.argmax(1)
        return like_input(self.classes_[idx], X)

    def _logits(self, X):
        z = self.decision_function(X)
        z = z._data if isinstance(z, deepbox.Tensor) else z
        return z[:, None] if z.ndim == 1 else z
