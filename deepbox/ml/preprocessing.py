"""Feature scaling: ``StandardScaler`` (zero mean, unit variance per feature)."""
from __future__ import annotations

from deepbox import backend
from deepbox.ml.base import BaseEstimator, check_X, like_input

xp = backend.xp


class StandardScaler(BaseEstimator):
    """Standardise features: ``(X - mean_) / scale_``, with ``scale_`` the population standard deviation.

    Constant features keep scale 1 (as in scikit-learn), so they map to 0 instead of NaN.

    Args:
        with_mean: subtract the mean. with_std: divide by the standard deviation.
    """

    def __init__(self, *, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    def fit(self, X, y=None) -> StandardScaler:
        X = check_X(X)
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(0) if self.with_mean else xp.zeros(X.shape[1], X.dtype)
        std = X.std(0)
        self.scale_ = xp.where(std > 10 * xp.finfo(X.dtype).eps, std, 1.0).astype(X.dtype) if self.with_std \
            else xp.ones(X.shape[1], X.dtype)
        return self

    def transform(self, X):
        self._check_fitted("mean_")
        A = check_X(X, n_features=self.n_features_in_)
        return like_input(((A - self.mean_) / self.scale_).astype(A.dtype), X)

    def fit_transform(self, X, y=None):
        return self.fit(X).transform(X)

    def inverse_transform(self, X):
        self._check_fitted("mean_")
        A = check_X(X, n_features=self.n_features_in_)
        return like_input((A * self.scale_ + self.mean_).astype(A.dtype), X)
