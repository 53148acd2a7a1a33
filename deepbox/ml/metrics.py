"""Scores for fitted estimators: accuracy, R², mean squared error, confusion matrix."""
from __future__ import annotations

from deepbox import backend
from deepbox.ml.validation import to_array

xp = backend.xp


def _pair(y_true, y_pred):
    a, b = to_array(y_true, "y_true"), to_array(y_pred, "y_pred")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"y_true and y_pred have different numbers of samples: {a.shape[0]} and {b.shape[0]}")
    return a, b.reshape(a.shape) if a.size == b.size else b


def accuracy_score(y_true, y_pred) -> float:
    """The fraction of predictions equal to the true labels."""
    a, b = _pair(y_true, y_pred)
    return float((a == b).mean())


def mean_squared_error(y_true, y_pred) -> float:
    """The mean of the squared errors (over samples and targets)."""
    a, b = _pair(y_true, y_pred)
    return float(((a.astype(xp.float64) - b) ** 2).mean())


def r2_score(y_true, y_pred) -> float:
    """The coefficient of determination 1 - SS_res/SS_tot, averaged uniformly over targets.

    A constant ``y_true`` gives 1.0 for a perfect prediction and 0.0 otherwise, as in scikit-learn.
    """
    a, b = _pair(y_true, y_pred)
    a = a.astype(xp.float64).reshape(a.shape[0], -1)
    b = xp.asarray(b, xp.float64).reshape(a.shape)
    ss_res = ((a - b) ** 2).sum(0)
    ss_tot = ((a - a.mean(0)) ** 2).sum(0)
    with xp.errstate(divide="ignore", invalid="ignore"):
        r2 = xp.where(ss_tot > 0, 1 - ss_res / xp.where(ss_tot > 0, ss_tot, 1), xp.where(ss_res == 0, 1.0, 0.0))
    return float(r2.mean())


def confusion_matrix(y_true, y_pred, labels=None):
    """``C[i, j]``: how many samples of true class ``labels[i]`` were predicted as ``labels[j]``."""
    a, b = _pair(y_true, y_pred)
    labels = xp.unique(xp.concatenate([a.ravel(), b.ravel()])) if labels is None else xp.asarray(labels)
    index = {v: i for i, v in enumerate(labels.tolist())}
    C = xp.zeros((len(labels), len(labels)), xp.int64)
    for t, p in zip(a.ravel().tolist(), b.ravel().tolist()):
        if t in index and p in index:
            C[index[t], index[p]] += 1
    return C
