"""Linear support vector classification in the primal, by stochastic subgradient descent.

For labels t ∈ {-1, +1} and scores f(x) = w·x + b the objective (scikit-learn's, divided by C·n) is

    (λ/2) ‖w‖² + (1/n) Σ_i ℓ(t_i f(x_i)),     λ = 1/(C n),    ℓ(m) = max(0, 1 - m)  (hinge)
                                                                   or max(0, 1 - m)²  (squared hinge)

The hinge is not differentiable at m = 1; autograd takes the subgradient 0 there. Mini-batch SGD uses the
step size lr / (1 + lr·λ·t) at step t (Bottou's schedule for a λ-strongly convex objective) and returns the
average of the iterates of the last half of the epochs, which smooths out SGD's noise. More than two classes
are handled one-vs-rest: K binary problems trained together as one K-column weight matrix, since their
objectives do not interact.
"""
from __future__ import annotations

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

_LOSSES = ("hinge", "squared_hinge")


class LinearSVC(LinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """Linear SVM trained on the primal hinge loss with L2 regularisation.

    Args:
        C: inverse regularisation strength (scikit-learn's C).
        loss: 'hinge' or 'squared_hinge'.
        fit_intercept: learn a bias per class (not penalised).
        lr: initial SGD step size; None takes 1.0 for 'hinge' and 0.1 for 'squared_hinge' (whose gradient
            grows with the margin violation, so large steps overshoot).
        epochs: passes over the data.
        batch_size: samples per SGD step.
        average: return the average of the last half of the epochs' iterates instead of the last iterate.
        random_state: seed for the sample order.

    Attributes:
        classes_, coef_ ``(1, n_features)`` for two classes else ``(n_classes, n_features)``, intercept_,
        loss_curve_ (the objective after each epoch).

    Shape: X ``(n_samples, n_features)``, y ``(n_samples,)``.
    """

    def __init__(self, *, C: float = 1.0, loss: str = "hinge", fit_intercept: bool = True, lr: float | None = None,
                 epochs: int = 50, batch_size: int = 32, average: bool = True, random_state: int | None = 0):
        self.C = C
        self.loss = loss
        self.fit_intercept = fit_intercept
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.average = average
        self.random_state = random_state

    def _validate(self):
        if self.loss not in _LOSSES:
            raise ValueError(f"LinearSVC: loss must be one of {_LOSSES}, got {self.loss!r}")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"LinearSVC: C must be a number > 0, got {self.C!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"LinearSVC: lr must be > 0, got {self.lr!r}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"LinearSVC: {name} must be an int >= 1, got {v!r}")

    def _objective(self, W, b, Xb, Tb, lam):
        margins = Tb * (Xb @ W.T + b)
        viol = (1 - margins).relu()
        data = (viol * viol if self.loss == "squared_hinge" else viol).mean(0).sum()
        return data + (lam / 2) * (W * W).sum()

    def fit(self, X, y) -> LinearSVC:
        """Fit the weights by SGD on the primal objective; returns the estimator."""
        self._validate()
        X = check_X(X)
        y = check_y(y, X.shape[0])
        classes, codes = encode_labels(y)
        if len(classes) < 2:
            raise ValueError(f"LinearSVC needs samples of at least 2 classes; y has only {classes.tolist()}")
        n, d = X.shape
        k = 1 if len(classes) == 2 else len(classes)
        # one-vs-rest targets: +1 for the column's class, -1 otherwise
        T = xp.where(codes[:, None] == (xp.arange(k) + (1 if k == 1 else 0)), 1.0, -1.0).astype(X.dtype)
        Xt, Tt = _make(X), _make(T)
        dtype = deepbox.float64 if X.dtype == xp.float64 else deepbox.float32
        W = deepbox.zeros(k, d, dtype=dtype, requires_grad=True)
        b = deepbox.zeros(k, dtype=dtype, requires_grad=self.fit_intercept)
        params = [W, b] if self.fit_intercept else [W]
        lr0 = self.lr if self.lr is not None else (1.0 if self.loss == "hinge" else 0.1)
        opt = deepbox.optim.SGD(params, lr=lr0)
        lam = 1.0 / (self.C * n)
        gen = deepbox.Generator().manual_seed(self.random_state if self.random_state is not None else 0)
        bs = min(self.batch_size, n)
        avg_from = self.epochs // 2 if self.average else self.epochs - 1
        W_sum, b_sum, n_avg = xp.zeros((k, d)), xp.zeros(k), 0
        self.loss_curve_ = []
        t = 0
        for epoch in range(self.epochs):
            order = deepbox.randperm(n, generator=gen)
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                opt.param_groups[0]["lr"] = lr0 / (1 + lr0 * lam * t)
                opt.zero_grad()
                self._objective(W, b, Xt[idx], Tt[idx], lam).backward()
                opt.step()
                t += 1
                if epoch >= avg_from:
                    W_sum += W._data
                    b_sum += b._data
                    n_avg += 1
            with deepbox.no_grad():
                self.loss_curve_.append(float(self._objective(W, b, Xt, Tt, lam)))
        self.classes_ = classes
        self.n_features_in_ = d
        self.coef_ = (W_sum / n_avg).astype(X.dtype)
        self.intercept_ = (b_sum / n_avg).astype(X.dtype)
        self.n_iter_ = self.epochs
        return self

    def predict(self, X):
        """The class with the highest score (for two classes: ``classes_[1]`` where the score is > 0)."""
        z = self.decision_function(X)
        z = z._data if isinstance(z, deepbox.Tensor) else z
        idx = (z > 0).astype(xp.int64) if z.ndim == 1 else z.argmax(1)
        return like_input(self.classes_[idx], X)
