"""``deepbox.ml``: classic machine learning on deepbox tensors, with scikit-learn's estimator conventions.

Estimators take their hyperparameters as explicit keywords, learn in ``fit(X, y)``, and answer with
``predict``/``score``; the data may be NumPy arrays or deepbox tensors. See ``deepbox.ml.base``.
"""
from __future__ import annotations

from deepbox.ml.base import BaseEstimator, clone
from deepbox.ml.linear import LinearRegression
from deepbox.ml.logistic import LogisticRegression
from deepbox.ml.metrics import accuracy_score, confusion_matrix, mean_squared_error, r2_score
from deepbox.ml.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
from deepbox.ml.neighbors import KNeighborsClassifier
from deepbox.ml.preprocessing import StandardScaler
from deepbox.ml.svm import LinearSVC

__all__ = ["BaseEstimator", "clone", "LinearRegression", "LogisticRegression", "KNeighborsClassifier", "LinearSVC",
           "StandardScaler", "train_test_split", "KFold", "StratifiedKFold", "cross_val_score", "accuracy_score",
           "r2_score", "mean_squared_error", "confusion_matrix"]
