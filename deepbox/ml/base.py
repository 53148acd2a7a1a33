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
from deepbox.tensor import Tensor

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


def to_array(a, name: str = "X"):
    """The NumPy array behind a tensor, array or nested list (no copy where possible)."""
    if isinstance(a, Tensor):
        return a.detach()._data
    arr = xp.asarray(a)
    if arr.dtype == object:
        raise TypeError(f"{name} must be numeric (an array or tensor), got an object array")
    return arr


def check_X(X, name: str = "X", n_features: int | None = None):
    """``X`` as a 2-D float array: float32/float64 keep their dtype, anything else becomes float64."""
    arr = to_array(X, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {arr.shape})")
    if arr.dtype not in (xp.float32, xp.float64):
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(xp.float64)
    if not xp.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but the estimator was fitted with {n_features}")
    return arr


def check_y(y, n_samples: int, name: str = "y", allow_2d: bool = False):
    arr = to_array(y, name)
    if arr.ndim == 2 and arr.shape[1] == 1 and not allow_2d:
        arr = arr[:, 0]
    if arr.ndim != 1 and not (allow_2d and arr.ndim == 2):
        raise ValueError(f"{name} must be 1-D (n_samples,){' or 2-D' if allow_2d else ''}, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different numbers of samples: {n_samples} and {arr.shape[0]}")
    return arr


def encode_labels(y):
    """``(classes, codes)``: the sorted distinct labels and each sample's index into them."""
    classes, codes = xp.unique(y, return_inverse=True)
    return classes, codes.reshape(-1).astype(xp.int64)


def like_input(result, X):
    """Return ``result`` (an array) as a tensor when ``X`` was a tensor."""
    from deepbox.tensor import _make

    return _make(xp.ascontiguousarray(result)) if isinstance(X, Tensor) else result


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
        from deepbox.ml.metrics import r2_score

        return r2_score(y, self.predict(X))
