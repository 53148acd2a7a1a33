"""The estimator base: explicit keyword hyperparameters, get_params/set_params, clone, input conversion.

deepbox's estimators follow scikit-learn's conventions: every hyperparameter is a keyword argument of
``__init__`` stored under its own name, ``fit`` learns attributes ending in ``_`` and returns the
estimator, and ``predict``/``score`` use what ``fit`` learnt. They accept NumPy arrays or deepbox tensors
and compute with deepbox tensors; learnt attributes (``coef_``, ``intercept_``, ...) are NumPy arrays, and
predictions come back as the type of ``X`` (a Tensor for a Tensor, an array otherwise).
"""
from __future__ import annotations

import inspect

from deepbox import backend
from deepbox.ml.metrics import r2_score
from deepbox.ml.validation import check_X, check_y, encode_labels, like_input, to_array  # noqa: F401
from deepbox.tensor import _make

xp = backend.xp


class BaseEstimator:
    """Hyperparameter bookkeeping shared by every estimator."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict:
        """The hyperparameters as a dict ``{name: value}`` (what ``__init__`` received or ``set_params`` set)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> BaseEstimator:
        """Set hyperparameters by name; unknown names raise ``ValueError`` before anything changes."""
        valid = self._param_names()
        bad = [k for k in params if k not in valid]
        if bad:
            raise ValueError(f"{type(self).__name__}.set_params: invalid parameter(s) {bad}; valid parameters "
                             f"are {valid}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for k, v in self.get_params().items():
            d = defaults.get(k, inspect.Parameter.empty)
            if d is inspect.Parameter.empty or not _same(v, d):
                changed.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise RuntimeError(f"This {type(self).__name__} instance is not fitted yet; call fit(X, y) first")


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - arrays and odd objects compare ambiguously; treat them as changed
        return False


def clone(estimator: BaseEstimator) -> BaseEstimator:
    """A new unfitted estimator with the same hyperparameters."""
    if not isinstance(estimator, BaseEstimator):
        raise TypeError(f"clone expects a deepbox.ml estimator, got {type(estimator).__name__}")
    return type(estimator)(**estimator.get_params())


class ClassifierMixin:
    """``score``: mean accuracy of ``predict``."""

    def score(self, X, y) -> float:
        """Mean accuracy of ``predict(X)`` against ``y``."""
        pred = to_array(self.predict(X))
        y = to_array(y)
        if pred.shape[0] != y.shape[0]:
            raise ValueError(f"X and y have different numbers of samples: {pred.shape[0]} and {y.shape[0]}")
        return float((pred == y.reshape(pred.shape)).mean())


class RegressorMixin:
    """``score``: the coefficient of determination R² of ``predict``."""

    def score(self, X, y) -> float:
        """R² = 1 - SS_res / SS_tot (averaged over targets when y is 2-D)."""
        return r2_score(y, self.predict(X))


class LinearClassifierMixin:
    """``decision_function`` of a linear classifier: ``X @ coef_.T + intercept_``."""

    def decision_function(self, X):
        """Scores (logits for logistic regression): ``(n_samples,)`` for two classes (positive favours
        ``classes_[1]``), else ``(n_samples, n_classes)``."""
        self._check_fitted("coef_")
        A = check_X(X, n_features=self.n_features_in_)
        z = (_make(A) @ _make(self.coef_.astype(A.dtype).T))._data + self.intercept_.astype(A.dtype)
        return like_input(z[:, 0] if z.shape[1] == 1 else z, X)
